//! What one stream says about the neighbouring failures: NAT idle resets
//! (decided here, from the stream alone), and the signals the cross-stream
//! analysis ([`crate::Neighbours`]) needs.

use std::collections::BTreeMap;

use super::{StreamCorrelator, What};
use crate::finding::{Detail, FindingKind, FindingSink, Incident, Signal, SignalKind};
use crate::parse::NetCause;

impl StreamCorrelator {
    /// `nat_idle_reset`: a reset on the first use after a freeze at least as
    /// long as the NAT idle timeout (one finding per invocation, every reset
    /// line of it as evidence), or a read timeout whose call sat silent that
    /// long (a reply the NAT could no longer deliver): the function silent,
    /// since its own last line or its invocation's START, for that long.
    pub(super) fn nat_idle_resets(&self, sink: &mut impl FindingSink) {
        let threshold = self.config.nat_idle_timeout_ms;
        // Per owning invocation (by epoch, in order): the incident so far.
        let mut resets: BTreeMap<i64, Incident> = BTreeMap::new();
        let mut timeouts: Vec<Incident> = Vec::new();
        for mark in &self.marks {
            let What::Net(net, gap_before) = &mark.what else {
                continue;
            };
            let owner = self.owner(mark);
            let Some(request_id) = owner.request_id.clone() else {
                continue;
            };
            let idle = match net.cause {
                NetCause::Reset => match owner.frozen_before_ms {
                    Some(frozen) if frozen >= threshold => frozen,
                    _ => continue,
                },
                NetCause::ReadTimeout | NetCause::FunctionTimeout if *gap_before >= threshold => {
                    *gap_before
                }
                _ => continue,
            };
            let incident = || Incident {
                kind: FindingKind::NatIdleReset,
                log_group: self.log_group.clone(),
                log_stream: self.log_stream.clone(),
                log_streams: vec![self.log_stream.clone()],
                request_ids: vec![request_id.clone()],
                first_at_ms: mark.ts,
                last_at_ms: mark.ts,
                detail: Detail::NatIdleReset {
                    cause: net.cause,
                    idle_ms: idle,
                    nat_idle_timeout_ms: threshold,
                    destination: net.destination.clone(),
                },
                evidence: Vec::new(),
            };
            let found = if net.cause == NetCause::Reset {
                resets.entry(owner.epoch).or_insert_with(incident)
            } else {
                timeouts.push(incident());
                timeouts.last_mut().expect("pushed")
            };
            found.last_at_ms = mark.ts;
            found.evidence.push(mark.id.clone());
            if let Detail::NatIdleReset { destination, .. } = &mut found.detail
                && destination.is_none()
            {
                destination.clone_from(&net.destination);
            }
        }
        let mut all: Vec<Incident> = resets.into_values().chain(timeouts).collect();
        all.sort_by_key(|i| i.first_at_ms);
        for incident in all {
            sink.incident(incident);
        }
    }

    /// Invocation starts, connect timeouts and idempotency keys, each with
    /// the invocation that owns it.
    pub(super) fn signals(&self, sink: &mut impl FindingSink) {
        let group: std::sync::Arc<str> = self.log_group.as_str().into();
        let stream: std::sync::Arc<str> = self.log_stream.as_str().into();
        let signal = |request_id: Option<String>, at_ms, event_id: &str, what| Signal {
            log_group: group.clone(),
            log_stream: stream.clone(),
            request_id,
            at_ms,
            event_id: event_id.to_owned(),
            what,
        };
        for inv in &self.invocations {
            if let (Some(at), Some((_, id))) = (inv.start_ms, &inv.start_event) {
                sink.signal(signal(
                    Some(inv.request_id.clone()),
                    at,
                    id,
                    SignalKind::Start,
                ));
            }
        }
        for mark in &self.marks {
            let what = match &mark.what {
                What::Net(net, _) if net.cause == NetCause::ConnectTimeout => {
                    SignalKind::ConnectTimeout {
                        destination: net.destination.clone(),
                    }
                }
                What::Key(key) => SignalKind::Key { key: key.clone() },
                _ => continue,
            };
            sink.signal(signal(self.owner(mark).request_id, mark.ts, &mark.id, what));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::correlate::IdempotencyKey;
    use crate::parse::RawText;
    use crate::{Collected, Config, FindingKind, LogEvent, StreamCorrelator};

    const A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
    const B: &str = "bbbbbbbb-0000-4000-8000-000000000002";

    fn run(lines: &[(i64, String)], config: Config) -> Collected {
        let mut c = StreamCorrelator::new("/aws/lambda/f", "s", config);
        let ids: Vec<String> = (0..lines.len()).map(|i| format!("e{i}")).collect();
        for (i, (ts, msg)) in lines.iter().enumerate() {
            c.push(&LogEvent {
                id: ids[i].as_str().into(),
                timestamp_ms: *ts,
                text: RawText::Plain(msg),
            });
        }
        let mut out = Collected::default();
        c.finish(&mut out);
        out
    }

    fn reset_after_freeze(frozen_ms: i64) -> Vec<(i64, String)> {
        let reset = format!(
            "2026-11-28T10:24:23.108Z\t{B}\tERROR\techo call 0 failed: 14 14 UNAVAILABLE: Connection dropped"
        );
        vec![
            (0, format!("START RequestId: {A} Version: $LATEST")),
            (50, format!("END RequestId: {A}")),
            (
                50 + frozen_ms,
                format!("START RequestId: {B} Version: $LATEST"),
            ),
            (60 + frozen_ms, reset),
            (70 + frozen_ms, format!("END RequestId: {B}")),
        ]
    }

    #[test]
    fn a_reset_after_a_long_freeze_is_a_nat_idle_reset_and_after_a_short_one_not() {
        let config = Config {
            nat_idle_timeout_ms: 6_000,
            ..Config::default()
        };
        let out = run(&reset_after_freeze(8_000), config.clone());
        assert_eq!(out.incidents.len(), 1);
        let i = &out.incidents[0];
        assert_eq!(i.kind, FindingKind::NatIdleReset);
        assert_eq!(i.request_ids, [B]);
        assert_eq!(i.evidence, ["e3"]);
        assert!(run(&reset_after_freeze(3_000), config).incidents.is_empty());
        // AWS's 350 s by default.
        assert!(
            run(&reset_after_freeze(8_000), Config::default())
                .incidents
                .is_empty()
        );
    }

    #[test]
    fn a_read_timeout_logged_after_end_keeps_the_functions_silence() {
        // Recorded: the runtime flushed botocore's error line in the same
        // millisecond as END and REPORT, which sort before it.
        let config = Config {
            nat_idle_timeout_ms: 6_000,
            ..Config::default()
        };
        let error = r#"[ERROR] ReadTimeoutError: Read timeout on endpoint URL: "http://127.0.0.1:46669/slow-8000?list-type=2&encoding-type=url""#;
        let lines = vec![
            (0, format!("START RequestId: {A} Version: $LATEST")),
            (
                1,
                format!(
                    "[INFO]\t2026-11-28T12:23:53.887Z\t{A}\tevent {{\"bucket\": \"slow-8000\"}}"
                ),
            ),
            (12_045, format!("END RequestId: {A}")),
            (
                12_045,
                format!("REPORT RequestId: {A}\tDuration: 12045.37 ms"),
            ),
            (12_045, error.to_owned()),
        ];
        let out = run(&lines, config);
        assert_eq!(out.incidents.len(), 1, "{:?}", out.incidents);
        assert_eq!(out.incidents[0].request_ids, [A]);
        assert!(matches!(
            out.incidents[0].detail,
            crate::Detail::NatIdleReset {
                idle_ms: 12_044,
                ..
            }
        ));
    }

    #[test]
    fn idempotency_keys_in_plain_and_escaped_lines() {
        let key = IdempotencyKey::new("messageId").unwrap();
        let plain = r#"event {"Records": [{"messageId": "ff04f3f5-6ed3", "body": "x"}, {"messageId": "9020d123"}]}"#;
        assert_eq!(
            key.find(plain).collect::<Vec<_>>(),
            ["ff04f3f5-6ed3", "9020d123"]
        );
        // A JSON-format line inside a subscription message: escaped twice.
        let escaped = r#"{\"message\": \"event {\\\"Records\\\": [{\\\"messageId\\\": \\\"ff04f3f5\\\"}]}\"}"#;
        assert_eq!(key.find(escaped).collect::<Vec<_>>(), ["ff04f3f5"]);
        // Not a key: a word in text, or a longer name.
        assert_eq!(key.find("the messageId is unknown").count(), 0);
        assert_eq!(key.find(r#"{"messageIds": ["a"]}"#).count(), 0);
        assert!(IdempotencyKey::new("detail..orderId").is_err());
        assert!(IdempotencyKey::new("").is_err());
    }
}
