//! How the shared state is laid out in its DynamoDB table: every key,
//! attribute name and expiry rule has its home here.
//!
//! | item | `pk` | `sk` | attributes |
//! |---|---|---|---|
//! | an invocation start | `start#<group>#<request id>` | `<at_ms, 20 digits>#<event id>` | the signal's fields, `expires` |
//! | an idempotency key logged | `key#<group>#<key>` | the same | the same |
//! | a connect timeout | `stall#<group>` | the same | the same |
//! | an incident reported | its signals' partition | `reported#<identity>` | `n` (its size when reported), `expires` |
//! | the event-time watermark | `watermark` | `watermark` | `t`: the newest event time any collector has seen |
//! | a group with connect timeouts | `stalls` | `<group>` | `last`: its newest connect timeout; `checked`: the `last` whose windows were all closed and reported |
//!
//! A signal's sort key starts with its event time, so a partition reads
//! in time order (and, within a millisecond, by event ID, the order the
//! analyzers use); `reported#` sorts after every digit, so a partition's
//! markers come after its signals.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use thawtrace_analyzers::{Signal, SignalKind};

/// An item, as the SDK takes and gives it.
pub type Item = HashMap<String, AttributeValue>;

/// The partition key.
pub const PK: &str = "pk";
/// The sort key.
pub const SK: &str = "sk";
/// The TTL attribute (epoch seconds), which the table's TTL setting names.
pub const EXPIRES: &str = "expires";
/// A marker's size when its incident was last reported.
pub const REPORTED_SIZE: &str = "n";
/// The watermark's event time.
pub const WATERMARK_TIME: &str = "t";
/// The newest connect timeout of a group (its `stalls` item).
pub const STALLS_LAST: &str = "last";
/// The `last` up to which a group's windows were all closed and reported.
pub const STALLS_CHECKED: &str = "checked";
/// The watermark item's partition and sort key.
pub const WATERMARK: &str = "watermark";
/// The partition listing the groups with connect timeouts.
pub const STALLS: &str = "stalls";
/// Markers' sort-key prefix.
pub const REPORTED: &str = "reported#";

const GROUP: &str = "group";
const STREAM: &str = "stream";
const REQUEST_ID: &str = "rid";
const AT: &str = "at";
const EVENT: &str = "event";
const KIND: &str = "kind";
const DESTINATION: &str = "destination";
const KEY: &str = "key";

/// How long past its window an item is kept: a backlog replayed later
/// than this (by the wall clock, which is what DynamoDB's TTL compares
/// `expires` with) finds its earlier signals gone and should be read by
/// `thawtrace scan` instead.
pub const GRACE_MS: i64 = 7 * 24 * 3_600_000;

/// The partition a signal is stored in; `None` for one the analysis
/// ignores (a start or key with no request ID).
///
/// ```
/// use thawtrace::state::item::partition;
/// use thawtrace_analyzers::{Signal, SignalKind};
/// let s = Signal {
///     log_group: "/aws/lambda/orders".into(),
///     log_stream: "a".into(),
///     request_id: Some("r1".into()),
///     at_ms: 1_000,
///     event_id: "1".into(),
///     what: SignalKind::Key { key: "messageId=m-1".into() },
/// };
/// assert_eq!(partition(&s).as_deref(), Some("key#/aws/lambda/orders#messageId=m-1"));
/// ```
pub fn partition(signal: &Signal) -> Option<String> {
    let group = &signal.log_group;
    match (&signal.what, &signal.request_id) {
        (SignalKind::Start, Some(rid)) => Some(format!("start#{group}#{rid}")),
        (SignalKind::Key { key }, Some(_)) => Some(format!("key#{group}#{key}")),
        (SignalKind::Start | SignalKind::Key { .. }, None) => None,
        (SignalKind::ConnectTimeout { .. }, _) => Some(stall_partition(group)),
    }
}

/// The partition of a group's connect timeouts.
pub fn stall_partition(group: &str) -> String {
    format!("stall#{group}")
}

/// A signal's sort key: its event time (zero-padded, so text order is
/// time order; times before 1970 read as 0), then its event ID.
pub fn sort_key(at_ms: i64, event_id: &str) -> String {
    format!("{:020}#{event_id}", at_ms.max(0))
}

/// The sort key of an incident's marker.
pub fn marker_key(identity: &str) -> String {
    format!("{REPORTED}{identity}")
}

/// When an item about an event at `at_ms` expires (epoch seconds): its
/// event time plus the longer of the windows plus [`GRACE_MS`], never the
/// wall clock.
///
/// ```
/// use thawtrace::state::item::{GRACE_MS, expires_s};
/// assert_eq!(expires_s(1_000, 60_000), (1_000 + 60_000 + GRACE_MS) / 1000);
/// ```
pub fn expires_s(at_ms: i64, longest_window_ms: i64) -> i64 {
    at_ms
        .saturating_add(longest_window_ms)
        .saturating_add(GRACE_MS)
        .div_euclid(1000)
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

/// A number attribute.
pub fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The item storing `signal` (`None`: see [`partition`]).
pub fn signal_item(signal: &Signal, expires: i64) -> Option<Item> {
    let pk = partition(signal)?;
    let mut item = Item::from([
        (PK.to_owned(), AttributeValue::S(pk)),
        (
            SK.to_owned(),
            AttributeValue::S(sort_key(signal.at_ms, &signal.event_id)),
        ),
        (GROUP.to_owned(), s(&signal.log_group)),
        (STREAM.to_owned(), s(&signal.log_stream)),
        (AT.to_owned(), n(signal.at_ms)),
        (EVENT.to_owned(), s(&signal.event_id)),
        (EXPIRES.to_owned(), n(expires)),
    ]);
    if let Some(rid) = &signal.request_id {
        item.insert(REQUEST_ID.to_owned(), s(rid));
    }
    let kind = match &signal.what {
        SignalKind::Start => "start",
        SignalKind::ConnectTimeout { destination } => {
            if let Some(d) = destination {
                item.insert(DESTINATION.to_owned(), s(d));
            }
            "connect_timeout"
        }
        SignalKind::Key { key } => {
            item.insert(KEY.to_owned(), s(key));
            "key"
        }
    };
    item.insert(KIND.to_owned(), s(kind));
    Some(item)
}

/// A string attribute of an item.
pub fn string<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)?.as_s().ok().map(String::as_str)
}

/// A number attribute of an item.
pub fn number(item: &Item, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

/// The signal an item stores; `None` for a marker or an item this
/// version does not know.
pub fn signal_of(item: &Item) -> Option<Signal> {
    let what = match string(item, KIND)? {
        "start" => SignalKind::Start,
        "connect_timeout" => SignalKind::ConnectTimeout {
            destination: string(item, DESTINATION).map(str::to_owned),
        },
        "key" => SignalKind::Key {
            key: string(item, KEY)?.to_owned(),
        },
        _ => return None,
    };
    Some(Signal {
        log_group: Arc::from(string(item, GROUP)?),
        log_stream: Arc::from(string(item, STREAM)?),
        request_id: string(item, REQUEST_ID).map(str::to_owned),
        at_ms: number(item, AT)?,
        event_id: string(item, EVENT)?.to_owned(),
        what,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal(what: SignalKind, request_id: Option<&str>) -> Signal {
        Signal {
            log_group: "/aws/lambda/a#b".into(),
            log_stream: "2026/11/28/[$LATEST]abc".into(),
            request_id: request_id.map(str::to_owned),
            at_ms: 1_795_867_067_621,
            event_id: "37958670676210000000000000000000000000000000000000000001".into(),
            what,
        }
    }

    #[test]
    fn every_kind_of_signal_comes_back_from_its_item() {
        for s in [
            signal(SignalKind::Start, Some("r1")),
            signal(
                SignalKind::ConnectTimeout {
                    destination: Some("10.0.0.1:443".into()),
                },
                None,
            ),
            signal(SignalKind::ConnectTimeout { destination: None }, Some("r2")),
            signal(
                SignalKind::Key {
                    key: "detail.orderId=o-#1".into(),
                },
                Some("r3"),
            ),
        ] {
            let item = signal_item(&s, 42).unwrap();
            assert_eq!(signal_of(&item), Some(s.clone()));
            assert_eq!(number(&item, EXPIRES), Some(42));
            assert_eq!(
                string(&item, SK),
                Some(
                    "00000001795867067621#37958670676210000000000000000000000000000000000000000001"
                )
            );
        }
    }

    #[test]
    fn what_the_analysis_ignores_is_not_stored() {
        assert!(signal_item(&signal(SignalKind::Start, None), 1).is_none());
        let key = SignalKind::Key { key: "k=v".into() };
        assert!(signal_item(&signal(key, None), 1).is_none());
    }

    #[test]
    fn sort_keys_order_by_time_then_event_and_markers_come_last() {
        let mut keys = vec![
            marker_key("connect_stall#g#1"),
            sort_key(10_000, "2"),
            sort_key(9_999, "9"),
            sort_key(10_000, "1"),
            sort_key(-5, "0"),
        ];
        keys.sort();
        assert_eq!(
            keys,
            [
                sort_key(-5, "0"),
                sort_key(9_999, "9"),
                sort_key(10_000, "1"),
                sort_key(10_000, "2"),
                marker_key("connect_stall#g#1"),
            ]
        );
        assert!(keys[0].starts_with("00000000000000000000#"));
    }

    #[test]
    fn expiry_runs_on_event_time_past_the_window_and_the_grace() {
        // An event of 1970 expires in 1970, whatever today is: DynamoDB
        // deletes it (the reason a late backlog goes through `scan`).
        assert_eq!(expires_s(0, 0), GRACE_MS / 1000);
        assert_eq!(expires_s(1_999, 1_000), (2_999 + GRACE_MS) / 1000);
        assert!(expires_s(i64::MAX, i64::MAX) > 0);
    }

    #[test]
    fn a_marker_or_a_foreign_item_is_no_signal() {
        let marker = Item::from([
            (PK.to_owned(), s("stall#g")),
            (SK.to_owned(), s(&marker_key("x"))),
            (REPORTED_SIZE.to_owned(), n(3)),
        ]);
        assert_eq!(signal_of(&marker), None);
        let mut odd = signal_item(&signal(SignalKind::Start, Some("r")), 1).unwrap();
        odd.insert(KIND.to_owned(), s("something_new"));
        assert_eq!(signal_of(&odd), None);
    }
}
