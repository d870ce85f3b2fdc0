//! Limits on what one input may cost, and the gunzip that honours them.

use std::io::Read;

use super::InputError;

/// Bounds on input size. Defaults fit CloudWatch Logs: an event is at most
/// 1 MiB, a subscription batch at most 1 MiB compressed.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest decompressed payload accepted (gzip bombs are refused).
    pub max_decompressed_bytes: usize,
    /// Largest single log event or input line accepted.
    pub max_event_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_decompressed_bytes: 64 << 20,
            max_event_bytes: 1 << 20,
        }
    }
}

/// Gunzips `data` into `out`, refusing more than `limit` bytes.
///
/// CloudWatch Logs sends one gzip member whose trailer states its size:
/// libdeflate inflates that into a buffer of exactly that size in one call
/// (the fast path). Anything else (several members, a trailer that lies,
/// corrupt data) goes through the streaming decoder, which enforces the
/// limit byte by byte and names the error.
pub fn gunzip_into(data: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), InputError> {
    out.clear();
    if let Some(trailer) = data.len().checked_sub(4).map(|at| &data[at..]) {
        let stated = u32::from_le_bytes(trailer.try_into().expect("4 bytes")) as usize;
        if stated <= limit {
            out.resize(stated, 0);
            let mut inflater = libdeflater::Decompressor::new();
            if let Ok(n) = inflater.gzip_decompress(data, out) {
                if n == stated {
                    return Ok(());
                }
            }
            out.clear();
        }
    }
    let mut decoder = flate2::read::MultiGzDecoder::new(data).take(limit as u64 + 1);
    decoder
        .read_to_end(out)
        .map_err(|e| InputError::new(format!("invalid gzip data: {e}")))?;
    if out.len() > limit {
        return Err(InputError::new(format!(
            "gzip data expands beyond the {} MiB limit (--max-decompressed-mb); refused as a possible gzip bomb",
            limit >> 20
        )));
    }
    Ok(())
}

/// True when `data` starts with the gzip magic number.
pub fn is_gzip(data: &[u8]) -> bool {
    data.starts_with(&[0x1f, 0x8b])
}
