//! One classification pass over a text, shared by every decoder: bit masks of the bytes that
//! make base64 and hex runs and of the places such a run of *text* can start, and the offsets
//! of the bytes where the other decoders start (`%`, `\`, NUL).
//!
//! Decoding must cost little next to detection, and most of a CI log is not encoded but is
//! full of runs that look encoded (digests, UUIDs, paths, npm `integrity`). So decoders work
//! on masks, not bytes: a candidate is a run start, or a position after a `/` inside a run,
//! whose bytes can begin the encoding of text: for base64 the first character of each of the
//! first three 4-character groups is `C`, `D`, `I`-`Z` or `a`-`f` (printable ASCII, tabs and
//! line breaks keep the top bits of a byte in that range), for hex the high digit of each of
//! the first three bytes is `0` or `2`-`7`; a gzip stream in base64 starts with `H`. On the
//! 256 MiB benchmark corpus that leaves 450,728 candidates of 2,373,556 runs (about one in
//! five) before any byte is read again. The masks are built
//! 32 bytes at a time with AVX2 where the CPU has it (checked at run time), and a byte at a
//! time elsewhere and for the last bytes of a text.

/// Per-byte classes of a text as bit masks (bit `k` of word `w` is byte `64 w + k`).
#[derive(Default)]
pub struct Classes {
    words: Vec<Word>,
    /// Offsets of `%`, `\` and NUL.
    specials: Vec<u32>,
    len: usize,
}

/// What the decoders need of 64 bytes.
#[derive(Clone, Copy, Default)]
struct Word {
    /// Base64 alphabets (both).
    b64: u64,
    /// Hex digits.
    hex: u64,
    /// Candidates before the length test: run starts and bytes after a `/` in a run whose
    /// bytes can begin encoded text.
    cand: u64,
}

/// The masks of a 64-byte block, as the SIMD code gives them.
#[derive(Clone, Copy, Default)]
struct Raw {
    b64: u64,
    sep: u64,
    hex: u64,
    /// The bytes from here can begin encoded text (the look-ahead test above).
    text_like: u64,
    special: u64,
}

/// Bytes after a position that [`text_like_at`] reads.
const LOOK_AHEAD: usize = 8;

/// Nibble lookup tables for the SIMD classification: bit `i` of `lo[l] & hi[h]` is set for the
/// byte `0xhl` when `l` is in the `i`th low-nibble set and `h` in the `i`th high-nibble set.
/// Both are built from (high nibbles, low nibbles) bit sets.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const fn luts(sets: [(u16, u16); 8]) -> ([u8; 16], [u8; 16]) {
    let mut lo = [0u8; 16];
    let mut hi = [0u8; 16];
    let mut bit = 0;
    while bit < 8 {
        let mut n = 0;
        while n < 16 {
            if sets[bit].0 >> n & 1 == 1 {
                hi[n] |= 1 << bit;
            }
            if sets[bit].1 >> n & 1 == 1 {
                lo[n] |= 1 << bit;
            }
            n += 1;
        }
        bit += 1;
    }
    (lo, hi)
}

const fn nibbles(list: &[u8]) -> u16 {
    let mut set = 0u16;
    let mut i = 0;
    while i < list.len() {
        set |= 1 << list[i];
        i += 1;
    }
    set
}

/// Table A: `0-9`; `A-O a-o`; `P-Z p-z`; `+ - /`; `_`; `/`; hex letters; `0 2-7` (bit 7).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const LUT_A: ([u8; 16], [u8; 16]) = luts([
    (nibbles(&[3]), nibbles(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9])),
    (nibbles(&[4, 6]), 0xfffe),
    (nibbles(&[5, 7]), 0x07ff),
    (nibbles(&[2]), nibbles(&[0xb, 0xd, 0xf])),
    (nibbles(&[5]), nibbles(&[0xf])),
    (nibbles(&[2]), nibbles(&[0xf])),
    (nibbles(&[4, 6]), nibbles(&[1, 2, 3, 4, 5, 6])),
    (nibbles(&[3]), nibbles(&[0, 2, 3, 4, 5, 6, 7])),
]);
const A_B64: u8 = 0b0001_1111;
const A_SLASH_BIT: i32 = 5;
const A_HEX: u8 = 0b0100_0001;

/// Table B: `C D I-O`; `P-Z`; `a-f` (together: a base64 group start of text); `H`; `%`; `\`;
/// NUL.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const LUT_B: ([u8; 16], [u8; 16]) = luts([
    (
        nibbles(&[4]),
        nibbles(&[3, 4, 9, 0xa, 0xb, 0xc, 0xd, 0xe, 0xf]),
    ),
    (nibbles(&[5]), 0x07ff),
    (nibbles(&[6]), nibbles(&[1, 2, 3, 4, 5, 6])),
    (nibbles(&[4]), nibbles(&[8])),
    (nibbles(&[2]), nibbles(&[5])),
    (nibbles(&[5]), nibbles(&[0xc])),
    (nibbles(&[0]), nibbles(&[0])),
    (0, 0),
]);
const B_GROUP: u8 = 0b0000_0111;
const B_GZIP_BIT: i32 = 3;
const B_SPECIAL: u8 = 0b0111_0000;

/// The classes of one byte: base64, `/`, hex, hex high digit of text, base64 group start of
/// text, gzip start, special. The first and third come from the decoders' own tables, so the
/// SIMD lookup tables, checked against this, agree with what the decoders decode.
#[inline]
fn classes_of(b: u8) -> [bool; 7] {
    [
        super::runs::is_b64(b),
        b == b'/',
        super::hex_value(b).is_some(),
        matches!(b, b'0' | b'2'..=b'7'),
        matches!(b, b'C' | b'D' | b'I'..=b'Z' | b'a'..=b'f'),
        b == b'H',
        matches!(b, b'%' | b'\\' | 0),
    ]
}

/// Whether the bytes from `at` can begin hex or base64 of text, or base64 of gzip.
#[inline]
fn text_like_at(text: &[u8], at: usize) -> bool {
    let class = |o: usize, c: usize| text.get(at + o).is_some_and(|&b| classes_of(b)[c]);
    (class(0, 3) && class(2, 3) && class(4, 3))
        || (class(0, 4) && class(4, 4) && class(8, 4))
        || class(0, 5)
}

/// Masks of the (up to) 64 bytes of `text` from `base`, a byte at a time.
fn classify_scalar(text: &[u8], base: usize) -> Raw {
    let mut r = Raw::default();
    for (i, &b) in text[base..text.len().min(base + 64)].iter().enumerate() {
        let c = classes_of(b);
        r.b64 |= u64::from(c[0]) << i;
        r.sep |= u64::from(c[1]) << i;
        r.hex |= u64::from(c[2]) << i;
        r.text_like |= u64::from(text_like_at(text, base + i)) << i;
        r.special |= u64::from(c[6]) << i;
    }
    r
}

/// Whether byte `at` is in the base64 alphabet.
#[inline]
fn is_set(words: &[Word], at: usize) -> bool {
    words[at / 64].b64 >> (at % 64) & 1 == 1
}

impl Classes {
    /// Classify `text` (the buffers are reused from one text to the next).
    pub fn build(&mut self, text: &[u8]) {
        assert!(
            text.len() <= u32::MAX as usize,
            "texts are decoded in pieces"
        );
        self.len = text.len();
        self.words.clear();
        self.words.reserve(text.len().div_ceil(64));
        self.specials.clear();
        // Blocks whose look-ahead stays inside the text can go 32 bytes at a time.
        let simd = text.len().saturating_sub(LOOK_AHEAD) / 64 * 64;
        let mut carry = (0, 0);
        #[cfg(target_arch = "x86_64")]
        let done = if avx2::build_if_available(text, simd, self, &mut carry) {
            simd
        } else {
            0
        };
        #[cfg(not(target_arch = "x86_64"))]
        let done = 0;
        for base in (done..text.len()).step_by(64) {
            self.push(classify_scalar(text, base), base, &mut carry);
        }
    }

    /// Record the masks of the block at `base`. `carry` holds the top base64 and `/` bits of
    /// the block before.
    #[inline]
    fn push(&mut self, r: Raw, base: usize, carry: &mut (u64, u64)) {
        let mut sp = r.special;
        while sp != 0 {
            self.specials
                .push((base + sp.trailing_zeros() as usize) as u32);
            sp &= sp - 1;
        }
        let starts = r.b64 & !(r.b64 << 1 | carry.0);
        let after_slash = r.b64 & (r.sep << 1 | carry.1);
        *carry = (r.b64 >> 63, r.sep >> 63);
        self.words.push(Word {
            b64: r.b64,
            hex: r.hex,
            cand: (starts | after_slash) & r.text_like,
        });
    }

    /// Call `f(at, end, run_start)` for every candidate: a position `at` that starts a run of
    /// base64-alphabet bytes (`run_start`) or follows a `/` inside one, whose bytes can begin
    /// hex or base64 of printable text or base64 of gzip (see the module docs), and from which
    /// the run goes on to `end`, at least `MIN` (at most 64) bytes away. In order of `at`.
    pub fn for_each_candidate<const MIN: usize>(&self, mut f: impl FnMut(usize, usize, bool)) {
        const { assert!(MIN >= 1 && MIN <= 64) };
        for (w, word) in self.words.iter().enumerate() {
            let mut cand = word.cand;
            if cand == 0 {
                continue;
            }
            let b = word.b64;
            let next = self.words.get(w + 1).map_or(0, |n| n.b64);
            let wide = |a: u64, b: u64| (b as u128) << 64 | a as u128;
            // Bit k of `long`: the MIN bytes from k are all in the alphabet.
            let mut long = wide(b, next);
            let mut have = 1;
            while have < MIN {
                let step = if have < MIN - have { have } else { MIN - have };
                long &= long >> step;
                have += step;
            }
            cand &= long as u64;
            while cand != 0 {
                let k = cand.trailing_zeros() as usize;
                cand &= cand - 1;
                let at = w * 64 + k;
                let run_start = k == 0 && w == 0 || !is_set(&self.words, at - 1);
                f(at, self.run_end(w, k), run_start);
            }
        }
    }

    /// Where the run of base64-alphabet bytes holding bit `k` of word `w` ends.
    #[inline]
    fn run_end(&self, mut w: usize, k: usize) -> usize {
        let ones = (self.words[w].b64 >> k).trailing_ones() as usize;
        if k + ones < 64 {
            return w * 64 + k + ones;
        }
        loop {
            w += 1;
            match self.words.get(w) {
                Some(m) if m.b64 == u64::MAX => {}
                Some(m) => return w * 64 + m.b64.trailing_ones() as usize,
                None => return self.len,
            }
        }
    }

    /// Whether every byte in `[start, end)` is a hex digit.
    pub fn all_hex(&self, start: usize, end: usize) -> bool {
        if start >= end {
            return false;
        }
        let (mut w, last) = (start / 64, (end - 1) / 64);
        let mut want = u64::MAX << (start % 64);
        while w <= last {
            if w == last {
                want &= u64::MAX >> (63 - (end - 1) % 64);
            }
            if self.words[w].hex & want != want {
                return false;
            }
            want = u64::MAX;
            w += 1;
        }
        true
    }

    /// Offsets of every `byte` (`%`, `\` or NUL) in `text`, in order.
    pub fn specials<'a>(&'a self, text: &'a [u8], byte: u8) -> impl Iterator<Item = usize> + 'a {
        self.specials
            .iter()
            .map(|&at| at as usize)
            .filter(move |&at| text[at] == byte)
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2;

#[cfg(test)]
mod tests {
    use super::*;

    /// Candidates computed a byte at a time from the definition.
    fn candidates_slow(text: &[u8], min: usize) -> Vec<(usize, usize, bool)> {
        let is = |i: usize, c: usize| classes_of(text[i])[c];
        let mut out = Vec::new();
        let mut i = 0;
        while i < text.len() {
            if !is(i, 0) {
                i += 1;
                continue;
            }
            let start = i;
            let end = (start..text.len())
                .find(|&j| !is(j, 0))
                .unwrap_or(text.len());
            for at in start..end {
                let run_start = at == start;
                let after_slash = at > start && text[at - 1] == b'/';
                let all = |class: usize, offsets: &[usize]| {
                    offsets
                        .iter()
                        .all(|&o| at + o < text.len() && is(at + o, class))
                };
                let text_like = all(3, &[0, 2, 4]) || all(4, &[0, 4, 8]) || is(at, 5);
                if (run_start || after_slash) && text_like && end - at >= min {
                    out.push((at, end, run_start));
                }
            }
            i = end;
        }
        out
    }

    fn text_of(len: usize) -> Vec<u8> {
        (0..len as u32)
            .map(|i| {
                let r = (i / 3).wrapping_mul(2654435761) >> 7;
                match r % 40 {
                    0..=1 => b' ',
                    2 => b'=',
                    3 => 0xff,
                    4 => b'%',
                    5 => 0,
                    6..=7 => b'/',
                    8..=20 => b"0123456789abcdefABCDEF"[(r % 22) as usize],
                    21..=30 => b"CDIJKLMNOPQRSTUVWXYZabcdef0234567"[(r % 33) as usize],
                    _ => b"aZH9+/-_.:\\"[(r % 11) as usize],
                }
            })
            .collect()
    }

    #[test]
    fn masks_match_a_byte_at_a_time_scan() {
        // Long runs across word boundaries, short runs, text ending inside a run.
        for len in [0usize, 1, 15, 16, 63, 64, 65, 127, 128, 129, 20_000] {
            let text = text_of(len);
            let mut c = Classes::default();
            c.build(&text);
            for min in [1usize, 16, 17, 64] {
                let mut fast = Vec::new();
                match min {
                    1 => c.for_each_candidate::<1>(|a, e, s| fast.push((a, e, s))),
                    16 => c.for_each_candidate::<16>(|a, e, s| fast.push((a, e, s))),
                    17 => c.for_each_candidate::<17>(|a, e, s| fast.push((a, e, s))),
                    _ => c.for_each_candidate::<64>(|a, e, s| fast.push((a, e, s))),
                }
                assert_eq!(fast, candidates_slow(&text, min), "len {len} min {min}");
            }
            for (at, end, _) in candidates_slow(&text, 1) {
                let hex = text[at..end].iter().all(u8::is_ascii_hexdigit);
                assert_eq!(c.all_hex(at, end), hex, "{at}..{end}");
            }
            for b in [b'%', b'\\', 0] {
                let want: Vec<usize> = (0..len).filter(|&i| text[i] == b).collect();
                assert_eq!(c.specials(&text, b).collect::<Vec<_>>(), want, "len {len}");
            }
        }
    }

    #[test]
    fn lookup_tables_agree_with_the_reference() {
        for b in 0..=255u8 {
            let (lo, hi) = ((b & 0xf) as usize, (b >> 4) as usize);
            let a = LUT_A.0[lo] & LUT_A.1[hi];
            let bb = LUT_B.0[lo] & LUT_B.1[hi];
            let c = classes_of(b);
            assert_eq!(a & A_B64 != 0, c[0], "base64 {b:#x}");
            assert_eq!(a >> A_SLASH_BIT & 1 == 1, c[1], "slash {b:#x}");
            assert_eq!(a & A_HEX != 0, c[2], "hex {b:#x}");
            assert_eq!(a >> 7 == 1, c[3], "hex high digit {b:#x}");
            assert_eq!(bb & B_GROUP != 0, c[4], "group {b:#x}");
            assert_eq!(bb >> B_GZIP_BIT & 1 == 1, c[5], "gzip {b:#x}");
            assert_eq!(bb & B_SPECIAL != 0, c[6], "special {b:#x}");
        }
    }

    #[test]
    fn every_byte_is_classified_as_the_reference_says() {
        // Every byte value in every lane of both SIMD halves, and in the scalar tail.
        let all: Vec<u8> = (0..64 * 256 + 100)
            .map(|i| (i * 7 + i / 64) as u8)
            .collect();
        let mut c = Classes::default();
        c.build(&all);
        for (i, &b) in all.iter().enumerate() {
            assert_eq!(is_set(&c.words, i), classes_of(b)[0], "byte {b:#x} at {i}");
            assert_eq!(
                c.words[i / 64].hex >> (i % 64) & 1 == 1,
                b.is_ascii_hexdigit()
            );
        }
        let want: Vec<usize> = (0..all.len()).filter(|&i| all[i] == 0).collect();
        assert_eq!(c.specials(&all, 0).collect::<Vec<_>>(), want);
    }
}
