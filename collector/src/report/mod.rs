//! What a finding becomes for a person (text) or a program (JSON lines).

pub mod html;
pub mod json;
pub mod printable;
pub mod text;

use thawtrace_analyzers::parse::Library;
use thawtrace_analyzers::{Finding, FindingKind};

/// What to do about a finding, naming the library's own options.
pub fn advice(f: &Finding) -> &'static str {
    match (f.kind, f.library) {
        (FindingKind::KeepaliveFreezeTimeout, Library::GrpcJs) => {
            "Lambda froze this environment with a keepalive ping in flight; at the thaw the ack timer fired before the ack was read, and a healthy connection was closed. In Lambda, leave client keepalive off (omit 'grpc.keepalive_time_ms'), or set 'grpc.keepalive_timeout_ms' above the longest freeze you expect; retry UNAVAILABLE on the first call after a thaw."
        }
        (FindingKind::KeepaliveFreezeTimeout, Library::Grpcio) => {
            "Lambda froze this environment with a PING in flight; at the thaw C-core's ping timer fired first and closed the transport. In Lambda, leave keepalive off (omit 'grpc.keepalive_time_ms'; 'grpc.http2.bdp_probe': 0 stops BDP pings too), or set 'grpc.keepalive_timeout_ms' and 'grpc.http2.ping_timeout_ms' above the longest freeze you expect; retry UNAVAILABLE after a thaw."
        }
        (FindingKind::KeepaliveFreezeTimeout, Library::Tonic) => {
            "Lambda froze this environment with a PING in flight; at the thaw hyper's keepalive timer fired before h2 read the ack and closed the connection, so the first call after the thaw failed (often Cancelled, sometimes Unavailable). In Lambda, leave keepalive off (do not call Endpoint::http2_keep_alive_interval), or set Endpoint::keep_alive_timeout above the longest freeze you expect; retry Cancelled as well as Unavailable on the first call after a thaw."
        }
        (kind, _) => kind.advice(),
    }
}
