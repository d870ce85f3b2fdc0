//! Standard base64 (padded), decoded 32 characters at a time with AVX2
//! where the CPU has it, the `base64` crate doing the rest: the last
//! characters (padding, trailing bits), CPUs without AVX2, and any input
//! the vector loop does not take, which the crate then reads whole, so its
//! answer and its errors are exactly the crate's.
//!
//! The vector loop is Wojciech Muła's and Daniel Lemire's ("Faster Base64
//! Encoding and Decoding Using AVX2 Instructions", 2018), as aklomp/base64
//! writes it: the characters' nibbles index two tables whose AND is zero
//! exactly for the alphabet, a third table gives each character's offset
//! to its six bits, and two multiply-adds and two shuffles pack them.

use base64::Engine;

/// Decodes `data` (no whitespace) and appends the bytes to `out`.
pub(crate) fn decode(data: &[u8], out: &mut Vec<u8>) -> Result<(), base64::DecodeError> {
    let engine = base64::engine::general_purpose::STANDARD;
    let start = out.len();
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        out.reserve(data.len() / 4 * 3 + 3);
        // SAFETY: the CPU has AVX2, as just checked.
        let taken = unsafe { avx2::decode(data, out) };
        if engine.decode_vec(&data[taken..], out).is_ok() {
            return Ok(());
        }
        // The crate's error, with its offset in the whole input.
        out.truncate(start);
    }
    engine.decode_vec(data, out)
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256i, _mm256_add_epi8, _mm256_and_si256, _mm256_cmpeq_epi8, _mm256_loadu_si256,
        _mm256_madd_epi16, _mm256_maddubs_epi16, _mm256_permutevar8x32_epi32, _mm256_set1_epi8,
        _mm256_set1_epi32, _mm256_setr_epi8, _mm256_setr_epi32, _mm256_shuffle_epi8,
        _mm256_srli_epi32, _mm256_storeu_si256, _mm256_testz_si256,
    };

    /// Decodes whole blocks of 32 characters from the start of `data`,
    /// leaving at least the last four (where padding is) and stopping at
    /// the first block holding anything but the alphabet; appends their
    /// bytes to `out` and returns how many characters it took (a multiple
    /// of four).
    ///
    /// # Safety
    ///
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn decode(data: &[u8], out: &mut Vec<u8>) -> usize {
        let lut_lo = _mm256_setr_epi8(
            0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x13, 0x1A, 0x1B, 0x1B,
            0x1B, 0x1A, 0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x13, 0x1A,
            0x1B, 0x1B, 0x1B, 0x1A,
        );
        let lut_hi = _mm256_setr_epi8(
            0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10,
            0x10, 0x10, 0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08, 0x10, 0x10, 0x10, 0x10,
            0x10, 0x10, 0x10, 0x10,
        );
        let lut_roll = _mm256_setr_epi8(
            0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 19, 4, -65, -65, -71,
            -71, 0, 0, 0, 0, 0, 0, 0, 0,
        );
        let mask_2f = _mm256_set1_epi8(0x2F);
        let pack_lanes = _mm256_setr_epi8(
            2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1, 2, 1, 0, 6, 5, 4, 10, 9, 8, 14,
            13, 12, -1, -1, -1, -1,
        );
        let pack_words = _mm256_setr_epi32(0, 1, 2, 4, 5, 6, -1, -1);
        let mut taken = 0;
        let mut bytes = [0u8; 32];
        while taken + 32 + 4 <= data.len() {
            // SAFETY: 32 bytes from `taken` are in `data` (the loop's
            // condition); an unaligned load.
            let s = unsafe { _mm256_loadu_si256(data[taken..].as_ptr().cast::<__m256i>()) };
            let hi_nibbles = _mm256_and_si256(_mm256_srli_epi32(s, 4), mask_2f);
            let lo_nibbles = _mm256_and_si256(s, mask_2f);
            let hi = _mm256_shuffle_epi8(lut_hi, hi_nibbles);
            let lo = _mm256_shuffle_epi8(lut_lo, lo_nibbles);
            if _mm256_testz_si256(lo, hi) == 0 {
                break;
            }
            let eq_2f = _mm256_cmpeq_epi8(s, mask_2f);
            let roll = _mm256_shuffle_epi8(lut_roll, _mm256_add_epi8(eq_2f, hi_nibbles));
            // Six bits a byte, `00aaaaaa 00bbbbbb 00cccccc 00dddddd`,
            // packed to 24 bits a word, then 12 bytes a lane, then 24.
            let sextets = _mm256_add_epi8(s, roll);
            let pairs = _mm256_maddubs_epi16(sextets, _mm256_set1_epi32(0x0140_0140));
            let words = _mm256_madd_epi16(pairs, _mm256_set1_epi32(0x0001_1000));
            let packed =
                _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(words, pack_lanes), pack_words);
            // SAFETY: `bytes` holds 32 bytes; an unaligned store.
            unsafe { _mm256_storeu_si256(bytes.as_mut_ptr().cast::<__m256i>(), packed) };
            out.extend_from_slice(&bytes[..24]);
            taken += 32;
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn by_crate(data: &[u8]) -> Result<Vec<u8>, base64::DecodeError> {
        base64::engine::general_purpose::STANDARD.decode(data)
    }

    fn ours(data: &[u8]) -> Result<Vec<u8>, base64::DecodeError> {
        let mut out = b"kept".to_vec();
        decode(data, &mut out).map(|()| out[4..].to_vec())
    }

    #[test]
    fn every_character_in_every_place_of_a_block() {
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for at in 0..72 {
            for c in 0..=255u8 {
                let mut data: Vec<u8> = (0..72).map(|i| alphabet[(i * 7) % 64]).collect();
                data[at] = c;
                assert_eq!(ours(&data), by_crate(&data), "{c} at {at}");
            }
        }
    }

    proptest! {
        /// Any bytes round-trip, and any mangled text gives the crate's
        /// answer, error and offset included.
        #[test]
        fn agrees_with_the_crate(
            bytes in proptest::collection::vec(any::<u8>(), 0..400),
            mangle in proptest::option::of((any::<prop::sample::Index>(), any::<u8>())),
        ) {
            let mut text = base64::engine::general_purpose::STANDARD.encode(&bytes).into_bytes();
            if let Some((at, c)) = mangle {
                if !text.is_empty() {
                    let i = at.index(text.len());
                    text[i] = c;
                }
            } else {
                prop_assert_eq!(ours(&text), Ok(bytes.clone()));
            }
            prop_assert_eq!(ours(&text), by_crate(&text));
        }
    }
}
