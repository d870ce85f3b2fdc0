//! Trace and span IDs derived from what the log says, so a re-delivered
//! batch (Lambda retries, overlapping scans) produces the same IDs and
//! backends deduplicate instead of doubling.

use opentelemetry::trace::{SpanId, TraceId};

/// FNV-1a over the parts (each followed by a separator), finished with the
/// splitmix64 mixer for a well-spread result. Stable across Rust versions
/// and platforms, unlike `std`'s hashers.
fn hash64(seed: u64, parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

fn nonzero(v: u64) -> u64 {
    if v == 0 { 1 } else { v }
}

/// The trace of one invocation.
///
/// ```
/// use thawtrace::export::ids::invocation_trace_id;
/// let a = invocation_trace_id("/aws/lambda/f", "s", "r1");
/// assert_eq!(a, invocation_trace_id("/aws/lambda/f", "s", "r1"));
/// assert_ne!(a, invocation_trace_id("/aws/lambda/f", "s", "r2"));
/// ```
pub fn invocation_trace_id(group: &str, stream: &str, request_id: &str) -> TraceId {
    let parts = ["trace", group, stream, request_id];
    let hi = hash64(1, &parts);
    let lo = nonzero(hash64(2, &parts));
    TraceId::from_bytes(((u128::from(hi) << 64) | u128::from(lo)).to_be_bytes())
}

/// The span of one invocation.
pub fn invocation_span_id(group: &str, stream: &str, request_id: &str) -> SpanId {
    SpanId::from_bytes(nonzero(hash64(3, &["invocation", group, stream, request_id])).to_be_bytes())
}

/// The span of one finding, named by its timeout line.
pub fn finding_span_id(group: &str, stream: &str, kind: &str, timeout_event_id: &str) -> SpanId {
    SpanId::from_bytes(
        nonzero(hash64(
            4,
            &["finding", group, stream, kind, timeout_event_id],
        ))
        .to_be_bytes(),
    )
}
