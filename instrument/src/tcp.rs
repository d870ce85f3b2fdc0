//! The TCP settings of a tonic `Endpoint` that tonic gives only to its own
//! connector (hyper-util's `HttpConnector`): keepalive probes, `TCP_NODELAY`
//! and the connect timeout. With a custom connector tonic drops the first
//! two, so the [`Connector`](crate::Connector) reads them from the
//! `Endpoint` and applies them here the way `HttpConnector` does.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

/// What a connection takes from its `Endpoint`; tonic's defaults when
/// built from an `Endpoint` with none set.
#[derive(Debug, Clone)]
pub(crate) struct TcpSettings {
    keepalive: Option<TcpKeepalive>,
    nodelay: bool,
    connect_timeout: Option<Duration>,
}

impl From<&tonic::transport::Endpoint> for TcpSettings {
    fn from(endpoint: &tonic::transport::Endpoint) -> Self {
        TcpSettings {
            keepalive: keepalive(
                endpoint.get_tcp_keepalive(),
                endpoint.get_tcp_keepalive_interval(),
                endpoint.get_tcp_keepalive_retries(),
            ),
            nodelay: endpoint.get_tcp_nodelay(),
            connect_timeout: endpoint.get_connect_timeout(),
        }
    }
}

/// The keepalive to set, as `HttpConnector` builds it: none unless one of
/// the three is given; an interval or a count of retries the platform
/// cannot set is left out.
fn keepalive(
    time: Option<Duration>,
    interval: Option<Duration>,
    retries: Option<u32>,
) -> Option<TcpKeepalive> {
    let mut set = false;
    let mut keepalive = TcpKeepalive::new();
    if let Some(time) = time {
        keepalive = keepalive.with_time(time);
        set = true;
    }
    if let Some(interval) = interval {
        keepalive = with_interval(keepalive, interval, &mut set);
    }
    if let Some(retries) = retries {
        keepalive = with_retries(keepalive, retries, &mut set);
    }
    set.then_some(keepalive)
}

// The platforms on which hyper-util 0.1 sets the keepalive interval and
// retries; elsewhere it leaves them out, and so do we.
#[cfg(any(
    target_os = "android",
    target_os = "dragonfly",
    target_os = "freebsd",
    target_os = "fuchsia",
    target_os = "illumos",
    target_os = "ios",
    target_os = "visionos",
    target_os = "linux",
    target_os = "macos",
    target_os = "netbsd",
    target_os = "tvos",
    target_os = "watchos",
    target_os = "windows",
))]
fn with_interval(keepalive: TcpKeepalive, interval: Duration, set: &mut bool) -> TcpKeepalive {
    *set = true;
    keepalive.with_interval(interval)
}

#[cfg(not(any(
    target_os = "android",
    target_os = "dragonfly",
    target_os = "freebsd",
    target_os = "fuchsia",
    target_os = "illumos",
    target_os = "ios",
    target_os = "visionos",
    target_os = "linux",
    target_os = "macos",
    target_os = "netbsd",
    target_os = "tvos",
    target_os = "watchos",
    target_os = "windows",
)))]
fn with_interval(keepalive: TcpKeepalive, _: Duration, _: &mut bool) -> TcpKeepalive {
    keepalive
}

#[cfg(any(
    target_os = "android",
    target_os = "dragonfly",
    target_os = "freebsd",
    target_os = "fuchsia",
    target_os = "illumos",
    target_os = "ios",
    target_os = "visionos",
    target_os = "linux",
    target_os = "macos",
    target_os = "netbsd",
    target_os = "tvos",
    target_os = "watchos",
))]
fn with_retries(keepalive: TcpKeepalive, retries: u32, set: &mut bool) -> TcpKeepalive {
    *set = true;
    keepalive.with_retries(retries)
}

#[cfg(not(any(
    target_os = "android",
    target_os = "dragonfly",
    target_os = "freebsd",
    target_os = "fuchsia",
    target_os = "illumos",
    target_os = "ios",
    target_os = "visionos",
    target_os = "linux",
    target_os = "macos",
    target_os = "netbsd",
    target_os = "tvos",
    target_os = "watchos",
)))]
fn with_retries(keepalive: TcpKeepalive, _: u32, _: &mut bool) -> TcpKeepalive {
    keepalive
}

impl TcpSettings {
    /// When the whole connect (resolution and TCP) must be done by, counted
    /// from now. tonic bounds a custom connector's future by the same
    /// timeout, starting when it first polls it, so ours expires first (or
    /// on the same timer tick, when tokio polls the inner future first) and
    /// the failure is ours to report.
    pub(crate) fn deadline(&self) -> Option<Deadline> {
        let timeout = self.connect_timeout?;
        Some(Deadline {
            at: Instant::now().checked_add(timeout)?,
            timeout,
            shared_by: 1,
        })
    }

    /// Opens a TCP connection to `peer` with the keepalive and `TCP_NODELAY`
    /// settings. `whole` is the deadline of the whole connect; this attempt
    /// gets its share of the timeout, split evenly over the `addresses` the
    /// name resolved to, as `HttpConnector` splits it, so an address that
    /// never answers leaves time for the next.
    pub(crate) async fn connect(
        &self,
        peer: SocketAddr,
        whole: Option<Deadline>,
        addresses: usize,
    ) -> io::Result<TcpStream> {
        let deadline = whole.map(|whole| whole.share(Instant::now(), addresses));
        let socket = if peer.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        // Like HttpConnector: keepalive set before connecting, TCP_NODELAY
        // after, and a socket that refuses either is still used.
        if let Some(keepalive) = &self.keepalive
            && let Err(e) = SockRef::from(&socket).set_tcp_keepalive(keepalive)
        {
            tracing::warn!(peer = %peer, error = %e, "could not set TCP keepalive");
        }
        let stream = within(
            deadline,
            || format!("connecting to {peer}"),
            socket.connect(peer),
        )
        .await?;
        if let Err(e) = stream.set_nodelay(self.nodelay) {
            tracing::warn!(peer = %peer, error = %e, "could not set TCP_NODELAY");
        }
        Ok(stream)
    }
}

/// The time left to connect, and the timeout it came from (for the error).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    at: Instant,
    timeout: Duration,
    /// How many addresses share `timeout`.
    shared_by: usize,
}

impl Deadline {
    /// Whether there is no time left.
    pub(crate) fn passed(&self) -> bool {
        Instant::now() >= self.at
    }

    /// The deadline of an attempt started at `now`: its share of the
    /// timeout, never past the whole connect's.
    fn share(self, now: Instant, addresses: usize) -> Deadline {
        let shared_by = addresses.max(1);
        let share = self
            .timeout
            .checked_div(u32::try_from(shared_by).unwrap_or(u32::MAX))
            .unwrap_or(self.timeout);
        let at = now.checked_add(share).map_or(self.at, |at| at.min(self.at));
        Deadline {
            at,
            timeout: self.timeout,
            shared_by,
        }
    }

    fn expired(&self, what: String) -> io::Error {
        let message = if self.shared_by > 1 {
            format!(
                "{what} timed out: its share of the {:?} connect timeout ({} addresses) expired",
                self.timeout, self.shared_by
            )
        } else {
            format!(
                "{what} timed out: the {:?} connect timeout expired",
                self.timeout
            )
        };
        io::Error::new(io::ErrorKind::TimedOut, message)
    }
}

/// Runs `step` to completion or until `deadline`, then fails with an error
/// of kind `TimedOut` that names `what` timed out. A deadline already passed
/// fails at once, without starting `step`.
pub(crate) async fn within<T>(
    deadline: Option<Deadline>,
    what: impl FnOnce() -> String,
    step: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    let Some(deadline) = deadline else {
        return step.await;
    };
    if deadline.passed() {
        return Err(deadline.expired(what()));
    }
    match tokio::time::timeout_at(deadline.at, step).await {
        Ok(result) => result,
        Err(_) => Err(deadline.expired(what())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deadline(timeout: Duration) -> Deadline {
        TcpSettings {
            keepalive: None,
            nodelay: true,
            connect_timeout: Some(timeout),
        }
        .deadline()
        .unwrap()
    }

    #[tokio::test]
    async fn a_step_that_never_ends_times_out() {
        let step = std::future::pending::<io::Result<()>>();
        let error = within(
            Some(deadline(Duration::from_millis(1))),
            || "connecting to 127.0.0.1:1".into(),
            step,
        )
        .await
        .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(
            error.to_string(),
            "connecting to 127.0.0.1:1 timed out: the 1ms connect timeout expired"
        );
    }

    #[tokio::test]
    async fn a_step_past_its_deadline_is_not_started() {
        let mut started = false;
        let step = async {
            started = true;
            Ok(())
        };
        let error = within(
            Some(deadline(Duration::ZERO)),
            || "resolving orders.internal".into(),
            step,
        )
        .await
        .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(!started);
    }

    #[tokio::test]
    async fn without_a_timeout_the_step_decides() {
        let error = within(None, || unreachable!(), async {
            Err::<(), _>(io::Error::from(io::ErrorKind::ConnectionRefused))
        })
        .await
        .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
    }

    #[test]
    fn each_address_gets_its_share_and_none_outlives_the_whole() {
        let start = Instant::now();
        let whole = Deadline {
            at: start + Duration::from_secs(60),
            timeout: Duration::from_secs(60),
            shared_by: 1,
        };
        let first = whole.share(start, 3);
        assert_eq!(first.at, start + Duration::from_secs(20));
        assert_eq!(
            first
                .expired("connecting to 127.0.0.1:1".into())
                .to_string(),
            "connecting to 127.0.0.1:1 timed out: its share of the 60s connect timeout (3 addresses) expired"
        );
        // The last address, started late, gets what is left.
        let last = whole.share(start + Duration::from_secs(50), 3);
        assert_eq!(last.at, whole.at);
    }

    #[test]
    fn keepalive_is_off_unless_asked_for() {
        assert!(keepalive(None, None, None).is_none());
        assert!(keepalive(Some(Duration::from_secs(7)), None, None).is_some());
        let endpoint = tonic::transport::Endpoint::from_static("http://127.0.0.1:1");
        let settings = TcpSettings::from(&endpoint);
        assert!(settings.keepalive.is_none());
        assert!(settings.nodelay);
        assert!(settings.connect_timeout.is_none());
    }
}
