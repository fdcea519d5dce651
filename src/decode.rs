//! The decoder stage: between normalisation and detection, derive more text to scan from
//! encoded runs (base64, percent-encoding, hex, escapes) in the normalised text.
//!
//! A decoder only proposes views; the scanner runs the same engine over each view and maps
//! a match back to the span of the encoded run, so rules never know about encodings and a
//! new decoder needs no rule change. Views are decoded again up to a depth limit, so a
//! base64 of a URL-encoded token is reachable. No decoder ships yet (a later issue adds
//! them); the plumbing is exercised by the scanner's tests.

/// A run of `text` that decodes to `bytes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// Span of the encoded run in the text that was decoded.
    pub start: usize,
    pub end: usize,
    /// The decoded bytes.
    pub bytes: Vec<u8>,
}

/// Finds encoded runs in text and decodes them.
pub trait Decoder: Send + Sync {
    /// Name reported in a finding's `decoded` list (`"base64"`, `"url"`, ...).
    fn name(&self) -> &'static str;
    /// Append every candidate run of `text` that decodes to something worth scanning.
    fn decode(&self, text: &[u8], out: &mut Vec<Decoded>);
}

/// The decoders a scan uses and how deep it may nest them.
#[derive(Default)]
pub struct Decoders {
    pub decoders: Vec<Box<dyn Decoder>>,
    pub max_depth: usize,
}

impl Decoders {
    /// No decoding: only the normalised text itself is scanned.
    pub fn none() -> Decoders {
        Decoders::default()
    }

    /// Whether there is anything to decode with.
    pub fn is_active(&self) -> bool {
        !self.decoders.is_empty() && self.max_depth > 0
    }
}
