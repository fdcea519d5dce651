//! What an input is, from its first bytes: text, UTF-16 text, an executable or image (not
//! scanned), or some other binary (only its printable strings are scanned).
//!
//! Build outputs land in CI artifacts next to logs. Executables and images are skipped:
//! scanning them costs time and their strings are compiler and library noise. A binary of
//! unknown type (a bundle, a cache, a core dump, a `.class`) can hold a secret compiled in,
//! so its printable runs of at least [`MIN_STRING`] bytes are scanned, like `strings(1)`
//! output but in place: every other byte becomes a space, so offsets into the scanned text
//! are offsets into the file.

use std::io::{self, Read};

use encoding_rs::Encoding;

pub mod utf16;

pub use utf16::{sniff_utf16, utf16_reader, Utf16Input};

/// Shortest printable run kept from a binary.
pub const MIN_STRING: usize = 8;

/// What an input is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    Text,
    Utf16(&'static Encoding),
    /// Not scanned; the kind, for the note.
    Executable(&'static str),
    Image(&'static str),
    /// Scanned through [`Strings`].
    Binary,
}

/// Classify an input by its first bytes (whatever the first read returned).
pub fn classify(head: &[u8]) -> Content {
    if let Some(kind) = executable(head) {
        return Content::Executable(kind);
    }
    if let Some(kind) = image(head) {
        return Content::Image(kind);
    }
    if let Some(enc) = utf16::sniff_utf16(head) {
        return Content::Utf16(enc);
    }
    let sample = &head[..head.len().min(8192)];
    if sample.contains(&0) {
        return Content::Binary;
    }
    let control = sample
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c | 0x1b | 0x08))
        .count();
    if control * 10 > sample.len() {
        Content::Binary
    } else {
        Content::Text
    }
}

fn executable(h: &[u8]) -> Option<&'static str> {
    let be32 = |at: usize| {
        h.get(at..at + 4)
            .map(|b| u32::from_be_bytes(b.try_into().unwrap()))
    };
    if h.starts_with(b"\x7fELF") {
        return Some("ELF executable");
    }
    // DOS/PE: the header has the offset of the PE header at 0x3c; text never has the NULs.
    if h.starts_with(b"MZ") && h.len() >= 64 && h[2..64].contains(&0) {
        return Some("Windows executable");
    }
    match be32(0) {
        Some(0xfeedface | 0xfeedfacf | 0xcefaedfe | 0xcffaedfe) => {
            return Some("Mach-O executable")
        }
        // Universal Mach-O and Java class files share a magic; a class file's next word is
        // its version (45 or more), a universal binary's its architecture count.
        Some(0xcafebabe) if be32(4).is_some_and(|n| n < 45) => {
            return Some("Mach-O universal executable")
        }
        _ => {}
    }
    if h.starts_with(b"\0asm") {
        return Some("WebAssembly module");
    }
    None
}

fn image(h: &[u8]) -> Option<&'static str> {
    let kind = if h.starts_with(b"\x89PNG\r\n\x1a\n") {
        "PNG image"
    } else if h.starts_with(&[0xff, 0xd8, 0xff]) {
        "JPEG image"
    } else if h.starts_with(b"GIF87a") || h.starts_with(b"GIF89a") {
        "GIF image"
    } else if h.len() >= 12 && h.starts_with(b"RIFF") && &h[8..12] == b"WEBP" {
        "WebP image"
    } else if h.starts_with(b"II*\0") || h.starts_with(b"MM\0*") {
        "TIFF image"
    } else if h.starts_with(&[0, 0, 1, 0]) && h.len() >= 6 && h[4] != 0 {
        "ICO image"
    } else if h.starts_with(b"BM") && h.len() >= 26 && h[6..10] == [0, 0, 0, 0] {
        "BMP image"
    } else if h.len() >= 12 && &h[4..8] == b"ftyp" {
        "video or HEIF image"
    } else {
        return None;
    };
    Some(kind)
}

/// Bytes a kept run is made of (line breaks are kept apart).
#[inline]
fn printable(b: u8) -> bool {
    matches!(b, 0x20..=0x7e | b'\t' | b'\r')
}

/// A reader that yields a binary's printable runs of at least [`MIN_STRING`] bytes in place,
/// with every other byte turned into a space (the output is as long as the input).
pub struct Strings<R> {
    inner: R,
    buf: Vec<u8>,
    /// `buf[..ready]` is final and `buf[..sent]` was returned.
    ready: usize,
    sent: usize,
    /// The final bytes before `ready` belong to a printable run already known to be kept.
    in_kept_run: bool,
    eof: bool,
}

impl<R: Read> Strings<R> {
    pub fn new(inner: R) -> Self {
        Strings {
            inner,
            buf: Vec::with_capacity(64 * 1024),
            ready: 0,
            sent: 0,
            in_kept_run: false,
            eof: false,
        }
    }

    /// Rewrite `buf[ready..]` as far as it can be decided (all of it at the end of input).
    fn settle(&mut self) {
        let n = self.buf.len();
        let mut i = self.ready;
        while i < n {
            // Line breaks stay, so line numbers are the file's; they end a run.
            if self.buf[i] == b'\n' {
                self.in_kept_run = false;
                i += 1;
                continue;
            }
            if !printable(self.buf[i]) {
                self.buf[i] = b' ';
                self.in_kept_run = false;
                i += 1;
                continue;
            }
            let end = self.buf[i..]
                .iter()
                .position(|&b| !printable(b))
                .map_or(n, |p| i + p);
            if end == n && !self.eof && !self.in_kept_run && end - i < MIN_STRING {
                // Too short so far, and it may go on: wait for more.
                break;
            }
            if !self.in_kept_run && end - i < MIN_STRING {
                self.buf[i..end].fill(b' ');
            } else {
                self.in_kept_run = true;
            }
            i = end;
        }
        self.ready = i;
    }
}

impl<R: Read> Read for Strings<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.sent < self.ready {
                let n = (self.ready - self.sent).min(out.len());
                out[..n].copy_from_slice(&self.buf[self.sent..self.sent + n]);
                self.sent += n;
                return Ok(n);
            }
            if self.eof && self.ready == self.buf.len() {
                return Ok(0);
            }
            self.buf.drain(..self.sent);
            self.ready -= self.sent;
            self.sent = 0;
            let have = self.buf.len();
            self.buf.resize(have + 64 * 1024, 0);
            let got = match self.inner.read(&mut self.buf[have..]) {
                Ok(got) => got,
                Err(e) => {
                    self.buf.truncate(have);
                    return Err(e);
                }
            };
            self.buf.truncate(have + got);
            self.eof = got == 0;
            self.settle();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let cases: &[(&[u8], Content)] = &[
            (
                b"\x7fELF\x02\x01\x01\0\0\0\0\0",
                Content::Executable("ELF executable"),
            ),
            (
                &[
                    b'M', b'Z', 0x90, 0, 3, 0, 0, 0, 4, 0, 0, 0, 0xff, 0xff, 0, 0, 0xb8, 0, 0, 0,
                    0, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0,
                ],
                Content::Executable("Windows executable"),
            ),
            (
                b"MZ is a text that starts like a DOS header but has no NULs in it at all, see",
                Content::Text,
            ),
            (
                &[0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1],
                Content::Executable("Mach-O executable"),
            ),
            (
                &[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 2],
                Content::Executable("Mach-O universal executable"),
            ),
            (
                &[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 52, 0, 10],
                Content::Binary,
            ), // Java class
            (
                b"\0asm\x01\0\0\0",
                Content::Executable("WebAssembly module"),
            ),
            (
                b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
                Content::Image("PNG image"),
            ),
            (
                &[0xff, 0xd8, 0xff, 0xe0, 0, 0x10, b'J', b'F'],
                Content::Image("JPEG image"),
            ),
            (b"GIF89a\x01\0\x01\0", Content::Image("GIF image")),
            (b"RIFF\x24\0\0\0WEBPVP8 ", Content::Image("WebP image")),
            (
                b"\0\0\0\x18ftypmp42\0\0\0\0",
                Content::Image("video or HEIF image"),
            ),
            (b"plain log line\n\x1b[32mgreen\x1b[0m\r\n", Content::Text),
            (
                b"latin-1 caf\xe9 and invalid \xc3\x28 UTF-8\n",
                Content::Text,
            ),
            (
                b"\x01\x02\x03\x04\x05 mostly control bytes",
                Content::Binary,
            ),
            (b"some text\0with a NUL", Content::Binary),
            (b"", Content::Text),
        ];
        for (head, want) in cases {
            assert_eq!(classify(head), *want, "{head:?}");
        }
        let utf16: Vec<u8> = "a UTF-16 log line\r\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert!(matches!(classify(&utf16), Content::Utf16(_)));
    }

    fn strings_of(input: &[u8], read_size: usize) -> Vec<u8> {
        use crate::testutil::Trickle;
        let mut out = Vec::new();
        Strings::new(Trickle(input, read_size))
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn strings_keep_long_printable_runs_in_place() {
        let input = b"\x00\x01short\x00key=ghp_Zq3kYb8TfW2mN5rXc\x00\xffabcdefgh\x00abcdefg\n(\nline two!\x00";
        let want = [
            &b"        "[..],
            b"key=ghp_Zq3kYb8TfW2mN5rXc",
            b"  abcdefgh",
            b"        \n \nline two! ",
        ]
        .concat();
        for size in [1, 2, 3, 7, 8, 9, 64, 1 << 16] {
            let out = strings_of(input, size);
            assert_eq!(out.len(), input.len(), "read size {size}");
            assert_eq!(
                out,
                want,
                "read size {size}: {}",
                String::from_utf8_lossy(&out)
            );
        }
        assert!(strings_of(b"", 4).is_empty());
    }
}
