//! The AVX2 kernel of [`super::Classes::build`]: the only `unsafe` code in the crate (the
//! crate root denies it everywhere else). The safe entry point checks the CPU first.
#![allow(unsafe_code)]

use std::arch::x86_64::*;

/// [`super::Classes::build`] for the 64-byte blocks of `text[..end]`, 32 bytes at a time.
///
/// # Safety
/// The CPU must support AVX2, `end` must be a multiple of 64 and `end + LOOK_AHEAD` at
/// most `text.len()`.
#[target_feature(enable = "avx2")]
pub unsafe fn build(text: &[u8], end: usize, classes: &mut super::Classes, carry: &mut (u64, u64)) {
    assert!(end.is_multiple_of(64) && (end == 0 || end + super::LOOK_AHEAD <= text.len()));
    for base in (0..end).step_by(64) {
        // SAFETY: both halves and their look-ahead are inside `text` (asserted above).
        let (lo, hi) = unsafe {
            let p = text.as_ptr().add(base);
            (half(p), half(p.add(32)))
        };
        // LLVM merges two 32-lane movemasks joined this way into one 64-lane mask that
        // AVX2 cannot make, and lowers it byte by byte (ten times slower): the opaque
        // `black_box` keeps them apart.
        let hi = std::hint::black_box(hi);
        let join = |k: usize| lo[k] as u64 | (hi[k] as u64) << 32;
        let raw = super::Raw {
            b64: join(0),
            sep: join(1),
            hex: join(2),
            text_like: join(3),
            special: join(4),
        };
        classes.push(raw, base, carry);
    }
}

/// Masks of the 32 bytes from `p`: base64, `/`, hex, text-like, special (see
/// [`super::classes_of`] and [`super::text_like_at`]).
///
/// Bytes are classified by nibble lookups: each bit of [`super::LUT_A`] and
/// [`super::LUT_B`] is a set of (high nibble, low nibble) pairs, so one `vpshufb` per
/// nibble and an `and` give eight classes at once.
///
/// # Safety
/// `32 + LOOK_AHEAD` bytes from `p` must be readable, and the CPU must support AVX2.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn half(p: *const u8) -> [u32; 5] {
    // SAFETY (all loads): as the caller promises; the tables are 16 bytes each.
    let table = |t: &[u8; 16]| unsafe {
        _mm256_broadcastsi128_si256(_mm_loadu_si128(t.as_ptr() as *const __m128i))
    };
    let (a_lo, a_hi) = (table(&super::LUT_A.0), table(&super::LUT_A.1));
    let (b_lo, b_hi) = (table(&super::LUT_B.0), table(&super::LUT_B.1));
    let nib = _mm256_set1_epi8(0x0f);
    let nibbles = |x: __m256i| {
        (
            _mm256_and_si256(x, nib),
            _mm256_and_si256(_mm256_srli_epi16(x, 4), nib),
        )
    };
    let look = |(lo, hi): (__m256i, __m256i), t_lo: __m256i, t_hi: __m256i| {
        _mm256_and_si256(_mm256_shuffle_epi8(t_lo, lo), _mm256_shuffle_epi8(t_hi, hi))
    };
    let load = |o: usize| unsafe { _mm256_loadu_si256(p.add(o) as *const __m256i) };
    let (n0, n2, n4, n8) = (
        nibbles(load(0)),
        nibbles(load(2)),
        nibbles(load(4)),
        nibbles(load(8)),
    );
    let (a0, b0) = (look(n0, a_lo, a_hi), look(n0, b_lo, b_hi));
    let a2 = look(n2, a_lo, a_hi);
    let (a4, b4) = (look(n4, a_lo, a_hi), look(n4, b_lo, b_hi));
    let b8 = look(n8, b_lo, b_hi);
    let zero = _mm256_setzero_si256();
    // Lanes where none of `bits` is set, as a movemask (to be inverted).
    let none = |x: __m256i, bits: u8| {
        _mm256_cmpeq_epi8(_mm256_and_si256(x, _mm256_set1_epi8(bits as i8)), zero)
    };
    let mask = |x: __m256i| _mm256_movemask_epi8(x) as u32;
    let b64 = !mask(none(a0, super::A_B64));
    let slash = mask(_mm256_slli_epi16(a0, 7 - super::A_SLASH_BIT));
    let hex = !mask(none(a0, super::A_HEX));
    // High hex digit of text at +0, +2, +4 (bit 7 of A).
    let hex_text = mask(_mm256_and_si256(a0, _mm256_and_si256(a2, a4)));
    let group = super::B_GROUP;
    let not_group = mask(_mm256_or_si256(
        none(b0, group),
        _mm256_or_si256(none(b4, group), none(b8, group)),
    ));
    let gzip = mask(_mm256_slli_epi16(b0, 7 - super::B_GZIP_BIT));
    let special = !mask(none(b0, super::B_SPECIAL));
    [b64, slash, hex, hex_text | !not_group | gzip, special]
}

/// Build the masks of the 64-byte blocks of `text[..end]` with AVX2 if this CPU has it;
/// false (nothing done) if not. `end` must be a multiple of 64 and `end + LOOK_AHEAD` at most
/// `text.len()`, as [`super::Classes::build`] computes it.
pub(super) fn build_if_available(
    text: &[u8],
    end: usize,
    classes: &mut super::Classes,
    carry: &mut (u64, u64),
) -> bool {
    if !is_x86_feature_detected!("avx2") {
        return false;
    }
    // SAFETY: the CPU has AVX2 (checked just above); `build` asserts the bounds.
    unsafe { build(text, end, classes, carry) };
    true
}
