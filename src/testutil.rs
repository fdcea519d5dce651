//! Helpers the unit tests of several modules share: a reader that trickles its bytes (as a
//! pipe or a decompressor does) and the decoder table checks. Test-only, so no production
//! module depends on another's tests.

use std::io::{self, Read};

/// Test reader: yields its bytes at most `.1` at a time, as a pipe or a decompressor may.
pub(crate) struct Trickle<'a>(pub &'a [u8], pub usize);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.1.min(self.0.len()).min(buf.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

/// Test helper: `(encoded run, decoded text)` of every view `decoder` finds in `text`.
pub(crate) fn views(decoder: &dyn crate::decode::Decoder, text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut classes = crate::decode::Classes::default();
    classes.build(text.as_bytes());
    decoder.decode(text.as_bytes(), &classes, &mut out);
    out.into_iter()
        .map(|d| {
            (
                text[d.start..d.end].to_string(),
                String::from_utf8_lossy(&d.bytes).into_owned(),
            )
        })
        .collect()
}

/// Test helper: check `(text, [(encoded run, decoded)])` cases against `decoder`.
pub(crate) fn check_table(decoder: &dyn crate::decode::Decoder, cases: &[(&str, &[(&str, &str)])]) {
    for (text, want) in cases {
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(views(decoder, text), want, "{text}");
    }
}

/// `s` as UTF-16LE bytes.
pub(crate) fn le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

/// `s` as UTF-16BE bytes.
pub(crate) fn be(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_be_bytes()).collect()
}
