//! Trace and span IDs derived from what the log says, so a re-delivered
//! batch (Lambda retries, overlapping scans) produces the same IDs and
//! backends deduplicate instead of doubling.

use opentelemetry::trace::{SpanId, TraceId};

/// FNV-1a over the parts (each followed by a separator), finished with the
/// splitmix64 mixer for a well-spread result. Stable across Rust versions
/// and platforms, unlike `std`'s hashers.
fn hash64(seed: u64, parts: &[&str]) -> u64 {
    let [h] = hashes([seed], parts);
    h
}

/// [`hash64`] for several seeds over the same parts, in one pass: each
/// byte's multiply waits on the one before, so independent chains run side
/// by side at the cost of one.
fn hashes<const N: usize>(seeds: [u64; N], parts: &[&str]) -> [u64; N] {
    let mut h = seeds.map(|seed| 0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0xff)) {
            for h in &mut h {
                *h ^= u64::from(b);
                *h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
    }
    h.map(|mut h| {
        h ^= h >> 30;
        h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^= h >> 27;
        h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^ (h >> 31)
    })
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
    let [hi, lo] = hashes([1, 2], &["trace", group, stream, request_id]);
    let lo = nonzero(lo);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// IDs are kept across versions too: a batch re-delivered to an
    /// upgraded collector names the same trace (values from the byte-by-byte
    /// FNV-1a, computed outside this code).
    #[test]
    fn ids_are_stable() {
        let (g, s) = ("/aws/lambda/f", "2026/11/28/[$LATEST]abc");
        assert_eq!(
            invocation_trace_id(g, s, "r1").to_string(),
            "9c7f69f355e82d978dab3387caf443a1"
        );
        assert_eq!(
            invocation_span_id(g, s, "r1").to_string(),
            "619f5e7a5dabd6b2"
        );
    }
}
