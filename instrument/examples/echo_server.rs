//! A tonic gRPC server serving `thawtrace.Echo/Echo` on loopback: the real
//! peer of the instrument's end-to-end recordings.
//!
//! Usage: `echo_server PORT_FILE` binds 127.0.0.1:0 and writes the port.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

#[derive(Clone, PartialEq, prost::Message)]
struct EchoMessage {
    #[prost(bytes = "vec", tag = "1")]
    payload: Vec<u8>,
}

struct Echo;

impl tonic::server::UnaryService<EchoMessage> for Echo {
    type Response = EchoMessage;
    type Future =
        Pin<Box<dyn Future<Output = Result<tonic::Response<EchoMessage>, tonic::Status>> + Send>>;

    fn call(&mut self, request: tonic::Request<EchoMessage>) -> Self::Future {
        Box::pin(async move { Ok(tonic::Response::new(request.into_inner())) })
    }
}

#[derive(Clone)]
struct EchoService;

impl tonic::server::NamedService for EchoService {
    const NAME: &'static str = "thawtrace.Echo";
}

impl tower::Service<http::Request<tonic::body::Body>> for EchoService {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(async move {
            if request.uri().path() != "/thawtrace.Echo/Echo" {
                return Ok(tonic::Status::unimplemented("only thawtrace.Echo/Echo").into_http());
            }
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::<
                EchoMessage,
                EchoMessage,
            >::default());
            Ok(grpc.unary(Echo, request).await)
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port_file = std::env::args()
        .nth(1)
        .ok_or("usage: echo_server PORT_FILE")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    std::fs::write(format!("{port_file}.tmp"), port.to_string())?;
    std::fs::rename(format!("{port_file}.tmp"), &port_file)?;
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tonic::transport::Server::builder()
        .add_service(EchoService)
        .serve_with_incoming(incoming)
        .await?;
    Ok(())
}
