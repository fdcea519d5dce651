//! UTF-16 text: whole inputs (PowerShell's `Out-File` and `>` write UTF-16LE with a BOM on
//! Windows executors; some tools write it without one) and fragments inside other bytes.
//!
//! A whole input is recognised from its first bytes ([`sniff_utf16`]) and transcoded to
//! UTF-8 as it streams ([`Utf16Input`], `encoding_rs_io` as in ripgrep), so lines and columns
//! are those of the text a person reads. Inside other text (a UTF-16 string in a binary or a
//! mixed log) the [`Utf16Fragments`] decoder finds runs of at least [`MIN_UNITS`] ASCII
//! characters each followed (little-endian) or preceded (big-endian) by a NUL byte. Both
//! byte orders are read by one pass: big-endian text read one byte late is little-endian.

use std::io::Read;

use encoding_rs::{Encoding, UTF_16BE, UTF_16LE};
use encoding_rs_io::{DecodeReaderBytes, DecodeReaderBytesBuilder};

use super::{Classes, Decoded, Decoder};

/// Shortest UTF-16 fragment decoded.
pub const MIN_UNITS: usize = 8;

#[inline]
fn is_ascii_char(b: u8) -> bool {
    matches!(b, 0x20..=0x7e | b'\t')
}

/// Whether `head` (an input's first bytes) is UTF-16, and which byte order.
///
/// With a byte-order mark, at least half of the following code units must be below U+0100
/// (CI output is mostly ASCII; a file that merely starts with `FF FE` is not taken for
/// UTF-16). Without one, at least 16 bytes are needed and four pairs in five must be an ASCII
/// character and a NUL in one order.
pub fn sniff_utf16(head: &[u8]) -> Option<&'static Encoding> {
    let sample = &head[..head.len().min(1024) & !1];
    fn units(bytes: &[u8], le: bool) -> impl Iterator<Item = (u8, u8)> + '_ {
        bytes
            .chunks_exact(2)
            .map(move |p| if le { (p[0], p[1]) } else { (p[1], p[0]) })
    }
    for (bom, le, enc) in [
        ([0xffu8, 0xfe], true, UTF_16LE),
        ([0xfe, 0xff], false, UTF_16BE),
    ] {
        if sample.starts_with(&bom) {
            let rest = &sample[2..];
            let total = rest.len() / 2;
            let narrow = units(rest, le).filter(|&(_, hi)| hi == 0).count();
            return (total == 0 || narrow * 2 >= total).then_some(enc);
        }
    }
    if sample.len() < 16 {
        return None;
    }
    let total = sample.len() / 2;
    for (le, enc) in [(true, UTF_16LE), (false, UTF_16BE)] {
        let ascii = units(sample, le)
            .filter(|&(lo, hi)| hi == 0 && (is_ascii_char(lo) || matches!(lo, b'\n' | b'\r')))
            .count();
        if ascii * 5 >= total * 4 {
            return Some(enc);
        }
    }
    None
}

/// A reader that transcodes a UTF-16 input to UTF-8 (a BOM is dropped, unpaired surrogates
/// become U+FFFD).
pub type Utf16Input<R> = DecodeReaderBytes<R, Vec<u8>>;

/// Wrap `reader` (an input [`sniff_utf16`] recognised) so it yields UTF-8.
pub fn utf16_reader<R: Read>(reader: R, encoding: &'static Encoding) -> Utf16Input<R> {
    DecodeReaderBytesBuilder::new()
        .encoding(Some(encoding))
        .bom_override(true)
        .strip_bom(true)
        .build(reader)
}

/// UTF-16 fragments of ASCII text inside other bytes.
pub struct Utf16Fragments;

impl Decoder for Utf16Fragments {
    fn decode(&self, text: &[u8], classes: &Classes, out: &mut Vec<Decoded>) {
        let n = text.len();
        let mut i = 0;
        for z in classes.specials(text, 0) {
            if z < i {
                continue;
            }
            // A unit is an ASCII byte and the NUL after it; the run starts one byte back.
            if z == 0 || !is_ascii_char(text[z - 1]) {
                i = z + 1;
                continue;
            }
            let start = z - 1;
            let mut end = start;
            while end + 1 < n && text[end + 1] == 0 && is_ascii_char(text[end]) {
                end += 2;
            }
            // Big-endian text read this way lost its last character: a NUL before the run
            // and a character after it give it back.
            let be_tail = start > 0 && text[start - 1] == 0 && end < n && is_ascii_char(text[end]);
            let units = (end - start) / 2;
            if units >= MIN_UNITS {
                let mut bytes: Vec<u8> = text[start..end].iter().step_by(2).copied().collect();
                let (start, end) = if be_tail {
                    bytes.push(text[end]);
                    (start - 1, end + 1)
                } else {
                    (start, end)
                };
                out.push(Decoded {
                    start,
                    end,
                    bytes,
                    layers: &["utf16"],
                });
            }
            i = end.max(z + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn le(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
    }
    fn be(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(|u| u.to_be_bytes()).collect()
    }

    fn fragments(bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        let mut classes = Classes::default();
        classes.build(bytes);
        Utf16Fragments.decode(bytes, &classes, &mut out);
        out.into_iter()
            .map(|d| String::from_utf8(d.bytes).unwrap())
            .collect()
    }

    #[test]
    fn sniffing_whole_inputs() {
        let text = "PS C:\\> echo $env:TOKEN\r\nghp_Zq3kYb8TfW2mN5rXc7vH1jL9pD4sGa0t7Hkq\r\n";
        let with_bom = |bom: &[u8], body: Vec<u8>| [bom.to_vec(), body].concat();
        assert_eq!(
            sniff_utf16(&with_bom(&[0xff, 0xfe], le(text))),
            Some(UTF_16LE)
        );
        assert_eq!(
            sniff_utf16(&with_bom(&[0xfe, 0xff], be(text))),
            Some(UTF_16BE)
        );
        assert_eq!(sniff_utf16(&le(text)), Some(UTF_16LE));
        assert_eq!(sniff_utf16(&be(text)), Some(UTF_16BE));
        assert_eq!(
            sniff_utf16(&[0xff, 0xfe]),
            Some(UTF_16LE),
            "an empty UTF-16 file"
        );
        // Not UTF-16: plain text, a binary that starts like a BOM, too little to tell.
        assert_eq!(sniff_utf16(text.as_bytes()), None);
        assert_eq!(
            sniff_utf16(b"\xff\xfe\x00\xc3\x28\x0a\x80\x81 ghp_Zq3kYb8TfW2mN5rXc7vH1j"),
            None
        );
        assert_eq!(sniff_utf16(&le("short")), None);
        assert_eq!(sniff_utf16(&[0u8; 64]), None);
    }

    #[test]
    fn transcoding_whole_inputs() {
        let text = "héllo ✔\r\ntoken ghp_Zq3kYb8TfW2mN5rXc7vH1jL9pD4sGa0t7Hkq\n";
        for (bytes, enc) in [
            ([vec![0xff, 0xfe], le(text)].concat(), UTF_16LE),
            (be(text), UTF_16BE),
        ] {
            let mut out = String::new();
            utf16_reader(&bytes[..], enc)
                .read_to_string(&mut out)
                .unwrap();
            assert_eq!(out, text);
        }
        // A lone surrogate and an odd trailing byte do not stop the rest.
        let mut bad = le("ab");
        bad.extend_from_slice(&[0x00, 0xd8]);
        bad.extend(le("cd"));
        bad.push(0x41);
        let mut out = Vec::new();
        utf16_reader(&bad[..], UTF_16LE)
            .read_to_end(&mut out)
            .unwrap();
        let out = String::from_utf8_lossy(&out);
        assert!(out.starts_with("ab\u{fffd}cd"), "{out:?}");
    }

    #[test]
    fn fragments_in_binary() {
        let secret = "ghp_Zq3kYb8TfW2mN5rXc7vH1jL9pD4sGa0t7Hkq";
        for encoded in [le(secret), be(secret)] {
            let mut blob = vec![0x7f, 0x00, 0x03, 0xff, 0x00, 0x00];
            blob.extend(&encoded);
            blob.extend([0x00, 0x00, 0x9c, 0x01]);
            assert_eq!(fragments(&blob), vec![secret.to_string()]);
        }
        // A big-endian fragment at the very end keeps its last character.
        let mut blob = vec![0x01, 0x02];
        blob.extend(be(secret));
        assert_eq!(fragments(&blob), vec![secret.to_string()]);
        // Two fragments split by a line break; short ones are ignored.
        let mut two = le("first fragment");
        two.extend(le("\n"));
        two.extend(le("second one"));
        two.extend(le("\nab"));
        assert_eq!(fragments(&two), vec!["first fragment", "second one"]);
        assert!(fragments(&le("seven c")).is_empty());
        assert!(fragments(b"no nul bytes at all").is_empty());
        assert!(fragments(&[0, 0, 0, 0]).is_empty());
    }
}
