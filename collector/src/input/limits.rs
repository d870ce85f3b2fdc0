//! Limits on what one input, and one run, may cost, and the gunzip that
//! honours them.

use std::io::Read;

use super::InputError;

/// Bounds on input size. Defaults fit CloudWatch Logs: an event is at most
/// 1 MiB, a subscription batch at most 1 MiB compressed.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Most bytes decompressed from one input file, every payload in it
    /// together (gzip bombs, and files of many payloads, are refused).
    pub max_decompressed_bytes: usize,
    /// Largest single log event or input line accepted: an event's size
    /// is its message as the JSON holds it, escaped, quotes included
    /// ([`Limits::message_fits`]), the same in every input shape and in
    /// the scan and the Lambda handler alike; a plain line's is its length.
    pub max_event_bytes: usize,
    /// Most bytes of text held for a whole run: every file read, every
    /// payload decompressed. It bounds the memory of a scan.
    pub max_total_bytes: usize,
}

impl Limits {
    /// Default of [`Limits::max_decompressed_bytes`], in MiB.
    pub const DECOMPRESSED_MB: usize = 64;
    /// Default of [`Limits::max_event_bytes`], in KiB.
    pub const EVENT_KB: usize = 1024;
    /// Default of [`Limits::max_total_bytes`], in MiB.
    pub const TOTAL_MB: usize = 1024;

    /// Whether an event whose message is `json` (a JSON string's content,
    /// still escaped, without its quotes) is within
    /// [`Limits::max_event_bytes`]. The one rule for an event's size.
    ///
    /// ```
    /// use thawtrace::input::Limits;
    /// let limits = Limits { max_event_bytes: 8, ..Limits::default() };
    /// assert!(limits.message_fits(r"ab\ncd")); // 6 bytes + 2 quotes
    /// assert!(!limits.message_fits(r"ab\ncde"));
    /// ```
    pub fn message_fits(&self, json: &str) -> bool {
        json.len().saturating_add(2) <= self.max_event_bytes
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_decompressed_bytes: Limits::DECOMPRESSED_MB << 20,
            max_event_bytes: Limits::EVENT_KB << 10,
            max_total_bytes: Limits::TOTAL_MB << 20,
        }
    }
}

/// What one input may still cost: what is left of its own decompression
/// limit and of the run's total. Decoding charges it; a decoder that would
/// go past it stops there and says which limit it met.
#[derive(Clone, Debug)]
pub struct Budget {
    file_left: usize,
    total_left: usize,
    limits: Limits,
}

impl Budget {
    /// The budget of one input of a run that has already used `used`
    /// bytes of its total.
    pub fn for_input(limits: &Limits, used: usize) -> Budget {
        Budget {
            file_left: limits.max_decompressed_bytes,
            total_left: limits.max_total_bytes.saturating_sub(used),
            limits: *limits,
        }
    }

    /// Bytes of the run's total used so far, this input's included.
    pub fn total_used(&self) -> usize {
        self.limits.max_total_bytes.saturating_sub(self.total_left)
    }

    /// Bytes of the run's total still unused.
    pub fn total_left(&self) -> usize {
        self.total_left
    }

    /// Most bytes that may still be decompressed from this input.
    pub fn decompress_left(&self) -> usize {
        self.file_left.min(self.total_left)
    }

    /// Charges `n` bytes read as they are (plain text): the run's total only.
    pub fn charge_read(&mut self, n: usize) {
        self.total_left = self.total_left.saturating_sub(n);
    }

    /// Charges `n` decompressed bytes: this input's limit and the run's total.
    fn charge_decompressed(&mut self, n: usize) {
        self.file_left = self.file_left.saturating_sub(n);
        self.total_left = self.total_left.saturating_sub(n);
    }

    /// Why reading plain text stopped at the run's total.
    pub fn over_total(&self) -> InputError {
        InputError::limit(format!(
            "over the run's {} MiB total of text read and decompressed (--max-total-mb); not read",
            self.limits.max_total_bytes >> 20
        ))
    }

    /// Why decompressing stopped: the limit that ran out.
    fn over_decompressed(&self) -> InputError {
        if self.file_left <= self.total_left {
            InputError::limit(format!(
                "gzip data expands beyond the {} MiB limit of one input (--max-decompressed-mb, every payload in the file together; THAWTRACE_MAX_DECOMPRESSED_MB for the Lambda, every payload of an event); refused as a possible gzip bomb",
                self.limits.max_decompressed_bytes >> 20
            ))
        } else {
            self.over_total()
        }
    }

    /// Gunzips `data` into `out` within what is left, and charges it.
    ///
    /// # Errors
    ///
    /// Invalid gzip data, or more than is left.
    pub fn gunzip(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), InputError> {
        match gunzip_bounded(data, self.decompress_left(), out) {
            Ok(()) => {
                self.charge_decompressed(out.len());
                Ok(())
            }
            Err(Gunzip::TooLarge) => Err(self.over_decompressed()),
            Err(Gunzip::Invalid(e)) => Err(InputError::new(format!("invalid gzip data: {e}"))),
        }
    }
}

enum Gunzip {
    TooLarge,
    Invalid(std::io::Error),
}

/// Gunzips `data` into `out`, refusing more than `limit` bytes.
///
/// # Errors
///
/// Invalid gzip data, or more than `limit` bytes of it.
pub fn gunzip_into(data: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), InputError> {
    gunzip_bounded(data, limit, out).map_err(|e| match e {
        Gunzip::TooLarge => InputError::new(format!(
            "gzip data expands beyond the {} MiB limit (--max-decompressed-mb); refused as a possible gzip bomb",
            limit >> 20
        )),
        Gunzip::Invalid(e) => InputError::new(format!("invalid gzip data: {e}")),
    })
}

/// CloudWatch Logs sends one gzip member whose trailer states its size:
/// libdeflate inflates that into a buffer of exactly that size in one call
/// (the fast path), and says how much of the input the member took, so
/// the fast path stands only when that member is the whole input.
/// Anything else (several members, a trailer that lies, corrupt data)
/// goes through the streaming decoder, which reads every member, enforces
/// the limit byte by byte and names the error.
fn gunzip_bounded(data: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), Gunzip> {
    if let Some(at) = data.len().checked_sub(4) {
        let stated: [u8; 4] = [data[at], data[at + 1], data[at + 2], data[at + 3]];
        let size = u32::from_le_bytes(stated) as usize;
        if size <= limit {
            if out.capacity() < size {
                // Zeroed memory straight from the allocator (fresh pages are
                // zero already): no pass that writes zeros before libdeflate
                // writes the text.
                *out = vec![0; size];
            } else if out.len() < size {
                out.resize(size, 0);
            } else {
                // The bytes of the previous payload are there already:
                // libdeflate writes over them, no need to zero them first.
                out.truncate(size);
            }
            // One decompressor per thread, kept: making one allocates and
            // clears its tables, per payload otherwise.
            thread_local! {
                static INFLATER: std::cell::RefCell<Option<Inflater>> =
                    std::cell::RefCell::new(Inflater::new());
            }
            let inflated = INFLATER.with(|i| i.borrow_mut().as_mut()?.gzip(data, out));
            if inflated == Some((data.len(), size)) {
                return Ok(());
            }
        }
    }
    out.clear();
    let mut decoder =
        flate2::read::MultiGzDecoder::new(data).take((limit as u64).saturating_add(1));
    decoder.read_to_end(out).map_err(Gunzip::Invalid)?;
    if out.len() > limit {
        out.clear();
        return Err(Gunzip::TooLarge);
    }
    Ok(())
}

/// A libdeflate decompressor of its own, freed when dropped: libdeflate's
/// own interface, for `libdeflate_gzip_decompress_ex`, which says how many
/// input bytes the member took (the `libdeflater` crate does not).
struct Inflater(std::ptr::NonNull<libdeflate_sys::libdeflate_decompressor>);

impl Inflater {
    /// `None` when libdeflate cannot allocate one.
    fn new() -> Option<Inflater> {
        // SAFETY: no arguments; the result is null or a decompressor we own.
        std::ptr::NonNull::new(unsafe { libdeflate_sys::libdeflate_alloc_decompressor() })
            .map(Inflater)
    }

    /// Inflates the gzip member at the start of `data` into `out`: the
    /// input bytes it took and the bytes it wrote, or `None` for data
    /// that is not one gzip member fitting `out`.
    fn gzip(&mut self, data: &[u8], out: &mut [u8]) -> Option<(usize, usize)> {
        let (mut taken, mut written) = (0usize, 0usize);
        // SAFETY: the decompressor is ours and alive, used by one thread
        // (`&mut self`); libdeflate reads at most `data.len()` bytes of
        // `data`, writes at most `out.len()` bytes of `out`, and writes
        // the two counts, which outlive the call.
        let result = unsafe {
            libdeflate_sys::libdeflate_gzip_decompress_ex(
                self.0.as_ptr(),
                data.as_ptr().cast(),
                data.len(),
                out.as_mut_ptr().cast(),
                out.len(),
                &mut taken,
                &mut written,
            )
        };
        (result == libdeflate_sys::libdeflate_result_LIBDEFLATE_SUCCESS).then_some((taken, written))
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        // SAFETY: allocated by `libdeflate_alloc_decompressor`, freed once.
        unsafe { libdeflate_sys::libdeflate_free_decompressor(self.0.as_ptr()) }
    }
}

/// True when `data` starts with the gzip magic number.
pub fn is_gzip(data: &[u8]) -> bool {
    data.starts_with(&[0x1f, 0x8b])
}
