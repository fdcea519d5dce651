//! The decoder stage: between normalisation and detection, derive more text to scan from
//! encoded runs (base64, hex, percent-encoding, `\u`/`\x`/JSON escapes, UTF-16 fragments,
//! gzip inside base64) in the normalised text.
//!
//! CircleCI masks a secret only where it appears verbatim; `echo $TOKEN | base64`, a URL
//! with the token in its query, a JSON encoder's `\u005f` or an `xxd -p` dump print it
//! unmasked. A decoder only proposes views: the scanner runs the same engine over each view
//! and reports a match at the span of the encoded run, so rules never know about encodings
//! and a new decoder needs no rule change. Views are decoded again up to a depth, so a base64
//! of a URL-encoded token is found.
//!
//! Cost is the design constraint (Gitleaks' decoders double its time on CI logs full of
//! digests). One SIMD pass classifies the text's bytes into bit masks ([`Classes`]) that all
//! decoders share: base64/hex runs, `%`, `\` and NUL are found from the masks, not the
//! bytes. A decoder decodes only the first few bytes of a candidate and gives up as soon as
//! they are not text. Runs that decode to binary (hex
//! digests, docker layer ids, git SHAs, npm `integrity` values, UUIDs, PEM bodies) are
//! dropped there, before any detection.

mod classes;
mod escape;
mod percent;
mod runs;
mod utf16;

pub use classes::Classes;
pub use escape::Escapes;
pub use percent::Percent;
pub use runs::Base64Hex;
pub use utf16::Utf16Fragments;

/// A run of `text` that decodes to `bytes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// Span of the encoded run in the text that was decoded.
    pub start: usize,
    pub end: usize,
    /// The decoded bytes.
    pub bytes: Vec<u8>,
    /// The encodings undone, outermost first (`["base64", "gzip"]`), as findings report them.
    pub layers: &'static [&'static str],
}

/// Finds encoded runs in text and decodes them.
pub trait Decoder: Send + Sync {
    /// Append every candidate run of `text` that decodes to something worth scanning, in
    /// ascending order of `start`. `classes` was built from `text`. Must not panic on any
    /// input.
    fn decode(&self, text: &[u8], classes: &Classes, out: &mut Vec<Decoded>);
}

/// The decoders a scan uses and how deep it may nest them.
#[derive(Default)]
pub struct Decoders {
    pub decoders: Vec<Box<dyn Decoder>>,
    /// Decoding steps applied one inside another; 0 turns decoding off.
    pub max_depth: usize,
}

impl Decoders {
    /// No decoding: only the normalised text itself is scanned.
    pub fn none() -> Decoders {
        Decoders::default()
    }

    /// Every built-in decoder, nested up to `max_depth`.
    pub fn standard(max_depth: usize) -> Decoders {
        Decoders {
            decoders: vec![
                Box::new(Base64Hex),
                Box::new(Percent),
                Box::new(Escapes),
                Box::new(Utf16Fragments),
            ],
            max_depth,
        }
    }

    /// Whether there is anything to decode with.
    pub fn is_active(&self) -> bool {
        !self.decoders.is_empty() && self.max_depth > 0
    }

    /// Run every decoder over `text` and append what they decode (spans are offsets in
    /// `text`). Long texts are classified and decoded in pieces of about [`PIECE`] bytes cut
    /// at line ends, so the bytes a decoder reads are still in cache after the
    /// classification pass (on a 1 MiB chunk this halves the decoders' time).
    pub fn decode(&self, text: &[u8], classes: &mut Classes, out: &mut Vec<Decoded>) {
        let mut from = 0;
        while from < text.len() {
            let to = piece_end(text, from);
            let piece = &text[from..to];
            classes.build(piece);
            let first = out.len();
            for d in &self.decoders {
                d.decode(piece, classes, out);
            }
            for run in &mut out[first..] {
                run.start += from;
                run.end += from;
            }
            from = to;
        }
    }
}

/// Bytes classified and decoded at a time (see [`Decoders::decode`]).
pub const PIECE: usize = 64 * 1024;

/// Where the piece of `text` from `from` ends: after a line break near [`PIECE`] bytes on that
/// is not followed by a base64 character (so a wrapped base64 block stays whole), or after
/// the last line break in the window, or at the end of the text.
fn piece_end(text: &[u8], from: usize) -> usize {
    if text.len() - from <= PIECE + PIECE / 2 {
        return text.len();
    }
    let window = &text[from..from + PIECE];
    let mut last_break = None;
    for nl in memchr::memrchr_iter(b'\n', window) {
        let at = from + nl + 1;
        last_break.get_or_insert(at);
        if !text
            .get(at)
            .is_some_and(|&b| b.is_ascii_alphanumeric() || b"+/-_".contains(&b))
        {
            return at;
        }
        if from + PIECE - at > PIECE / 4 {
            break;
        }
    }
    // One line longer than the piece: decoded whole, as it is found.
    last_break.unwrap_or_else(|| {
        memchr::memchr(b'\n', &text[from + PIECE..]).map_or(text.len(), |i| from + PIECE + i + 1)
    })
}

/// Whether decoded bytes are text worth scanning: at most one byte in ten is a control
/// character (other than tab, line breaks and ESC) or part of invalid UTF-8.
pub fn is_text(bytes: &[u8]) -> bool {
    if bytes.is_empty() {
        return false;
    }
    let mut bad = 0usize;
    for chunk in bytes.utf8_chunks() {
        bad += chunk.invalid().len();
        bad += chunk
            .valid()
            .bytes()
            .filter(|&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x1b)) || b == 0x7f)
            .count();
    }
    bad * 10 <= bytes.len()
}

/// Printable ASCII or whitespace: what the first decoded bytes of a candidate must be before
/// the rest is decoded at all.
#[inline]
pub(crate) fn is_ascii_text(b: u8) -> bool {
    matches!(b, 0x20..=0x7e | b'\t' | b'\n' | b'\r')
}

/// Value of an ASCII hex digit.
#[inline]
pub(crate) const fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The byte two hex digits at `at` spell.
#[inline]
pub(crate) fn hex_byte(text: &[u8], at: usize) -> Option<u8> {
    let hi = hex_value(*text.get(at)?)?;
    let lo = hex_value(*text.get(at + 1)?)?;
    Some(hi << 4 | lo)
}

/// Bytes a run may cover around an escape found by `memchr` (`%`, `\`): tokens, URLs and
/// JSON string contents, but not whitespace or the quotes and brackets around them.
#[inline]
pub(crate) fn is_run_byte(b: u8) -> bool {
    b > 0x20 && !matches!(b, b'"' | b'\'' | b'`' | b'<' | b'>' | 0x7f)
}

/// For each `byte` in `text` where `starts(text, at)`, decode the run around it (see
/// [`run_around`]) with `decode` and keep it if it is text: the shape of the decoders that start
/// at an escape character (`%`, `\`).
pub(crate) fn escaped_runs(
    text: &[u8],
    classes: &Classes,
    byte: u8,
    starts: impl Fn(&[u8], usize) -> bool,
    decode: impl Fn(&[u8]) -> Vec<u8>,
    layers: &'static [&'static str],
    out: &mut Vec<Decoded>,
) {
    /// Longest stretch on either side of an escape taken into its run.
    const MAX_SIDE: usize = 8 * 1024;
    let mut done = 0;
    for at in classes.specials(text, byte) {
        if at < done || !starts(text, at) {
            continue;
        }
        let (start, end) = run_around(text, at, MAX_SIDE);
        done = end;
        let bytes = decode(&text[start..end]);
        if is_text(&bytes) {
            out.push(Decoded {
                start,
                end,
                bytes,
                layers,
            });
        }
    }
}

/// The run of [`is_run_byte`] bytes around `at`, at most `max` bytes on each side.
pub(crate) fn run_around(text: &[u8], at: usize, max: usize) -> (usize, usize) {
    let lo = at.saturating_sub(max);
    let start = text[lo..at]
        .iter()
        .rposition(|&b| !is_run_byte(b))
        .map_or(lo, |i| lo + i + 1);
    let hi = (at + max).min(text.len());
    let end = text[at..hi]
        .iter()
        .position(|&b| !is_run_byte(b))
        .map_or(hi, |i| at + i);
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_or_not() {
        assert!(is_text(b"hello world\n"));
        assert!(is_text("héllo wörld ✔".as_bytes()));
        assert!(is_text(b"\x1b[32mgreen\x1b[0m"));
        assert!(!is_text(b""));
        assert!(!is_text(&[0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02, 0x03]));
        // One bad byte in ten is tolerated, two are not.
        assert!(is_text(b"abcdefghi\x00"));
        assert!(!is_text(b"abcdefgh\x00\x00"));
    }

    #[test]
    fn runs_stop_at_quotes_and_spaces() {
        let t = b"x \"a%41b\" y";
        assert_eq!(run_around(t, 4, 100), (3, 8));
        assert_eq!(run_around(b"%41", 0, 100), (0, 3));
        assert_eq!(run_around(b"aaaa%41aaaa", 4, 2), (2, 6));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use ::base64::Engine as _;
    use proptest::prelude::*;

    /// Bytes biased towards what decoders look for, so the interesting paths are reached.
    fn input() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![
            3 => any::<u8>(),
            5 => proptest::sample::select(
                b"%\\ux0123456789abcdefABCDEFHIJZz+/=-_ \n\r\t\0\"'{}".to_vec()
            ),
        ];
        proptest::collection::vec(byte, 0..1500)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Decoding never panics, and every view's span lies inside its text and in order.
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in input()) {
            let decoders = Decoders::standard(3);
            let mut classes = Classes::default();
            let mut out = Vec::new();
            decoders.decode(&bytes, &mut classes, &mut out);
            for d in &out {
                prop_assert!(d.start < d.end && d.end <= bytes.len(), "{}..{}", d.start, d.end);
                prop_assert!(!d.layers.is_empty());
            }
        }

        /// Base64 and hex of any printable text of 16 bytes or more (the shortest hex run is 32
        /// digits) decode back to it.
        #[test]
        fn printable_text_round_trips(text in "[ -~]{16,120}", hex in any::<bool>()) {
            let encoded = if hex {
                text.bytes().map(|b| format!("{b:02x}")).collect::<String>()
            } else {
                ::base64::engine::general_purpose::STANDARD.encode(&text)
            };
            let line = format!("value: {encoded}\n");
            let mut classes = Classes::default();
            let mut out = Vec::new();
            Decoders::standard(1).decode(line.as_bytes(), &mut classes, &mut out);
            prop_assert!(
                out.iter().any(|d| d.bytes == text.as_bytes()),
                "{line:?} gave {:?}", out
            );
        }
    }
}
