//! UTF-16 fragments inside other bytes (a UTF-16 string in a binary or a mixed log): the
//! [`Utf16Fragments`] decoder finds runs of at least [`MIN_UNITS`] ASCII characters each
//! followed (little-endian) or preceded (big-endian) by a NUL byte. Both byte orders are read
//! by one pass: big-endian text read one byte late is little-endian. A whole UTF-16 input is a
//! property of the input, not a view inside it: [`crate::content::utf16`] recognises and
//! transcodes it.

use super::{Classes, Decoded, Decoder};

/// Shortest UTF-16 fragment decoded.
pub const MIN_UNITS: usize = 8;

#[inline]
fn is_ascii_char(b: u8) -> bool {
    matches!(b, 0x20..=0x7e | b'\t')
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

    use crate::testutil::{be, le};

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
