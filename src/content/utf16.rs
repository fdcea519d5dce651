//! Whole UTF-16 inputs: PowerShell's `Out-File` and `>` write UTF-16LE with a BOM on Windows
//! executors; some tools write it without one. The input is recognised from its first bytes
//! ([`sniff_utf16`]) and transcoded to UTF-8 as it streams ([`Utf16Input`], `encoding_rs_io`
//! as in ripgrep), so lines and columns are those of the text a person reads.

use std::io::Read;

use encoding_rs::{Encoding, UTF_16BE, UTF_16LE};
use encoding_rs_io::{DecodeReaderBytes, DecodeReaderBytesBuilder};

#[inline]
fn is_ascii_char(b: u8) -> bool {
    matches!(b, 0x20..=0x7e | b'\t')
}

/// Whether `head` (an input's first bytes) is UTF-16, and which byte order.
///
/// With a byte-order mark, what follows must read as UTF-16 text in any script (a localised
/// PowerShell log starts with Cyrillic or Japanese lines): no unpaired surrogate and at most
/// one control character in ten, so a binary that merely starts with `FF FE` is not taken for
/// UTF-16. Without one, at least 16 bytes are needed and four pairs in five must be an ASCII
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
            return reads_as_text(
                units(&sample[2..], le).map(|(lo, hi)| u16::from_be_bytes([hi, lo])),
            )
            .then_some(enc);
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

/// Whether UTF-16 code units (after a BOM) read as text in some script. Any 16-bit unit is a
/// character, so arbitrary bytes decode too; text differs from them in four ways this checks:
/// every surrogate is paired (one cut off at the end of the sample is fine), no noncharacter,
/// at most one unit in ten a control character (NUL included; tab, line breaks, form feed,
/// escape and backspace are text) or private-use, and the units either include some Latin-1
/// (spaces, digits, line breaks: one in twenty) or stay within a few 256-unit blocks of one
/// script (distinct high bytes at most a third of the non-Latin-1 units).
fn reads_as_text(units: impl Iterator<Item = u16>) -> bool {
    let units: Vec<u16> = units.collect();
    let (mut total, mut narrow, mut odd) = (0usize, 0usize, 0usize);
    let mut blocks = [false; 256];
    let mut decoded = char::decode_utf16(units.iter().copied()).peekable();
    while let Some(c) = decoded.next() {
        total += 1;
        let c = match c {
            Ok(c) => c as u32,
            // A high surrogate whose pair the sample cut off.
            Err(e)
                if decoded.peek().is_none()
                    && (0xd800..0xdc00).contains(&e.unpaired_surrogate()) =>
            {
                continue
            }
            Err(_) => return false,
        };
        let text_control = matches!(c, 0x09 | 0x0a | 0x0d | 0x0c | 0x1b | 0x08);
        if matches!(c, 0xfffe | 0xffff | 0xfdd0..=0xfdef) {
            return false;
        } else if (c < 0x20 && !text_control) || (0xe000..=0xf8ff).contains(&c) {
            odd += 1;
        } else if c <= 0xff {
            narrow += 1;
        } else if c <= 0xffff {
            blocks[(c >> 8) as usize] = true;
        } // astral (emoji, rare CJK): a pair of surrogates, fine
    }
    let wide = total - narrow;
    let distinct = blocks.iter().filter(|&&b| b).count();
    odd * 10 <= total && (narrow * 20 >= total || distinct * 3 <= wide)
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

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testutil::{be, le};

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
        // With a BOM, text in any script: a localised PowerShell log whose first lines are
        // Cyrillic or Japanese, and one that is Japanese with no ASCII at all.
        for script in [
            "Сборка проекта: начало\r\nПредупреждение: файл не найден\r\n",
            "ビルドを開始しています\r\n警告: ファイルが見つかりません\r\n",
            "ビルドを開始しています。警告：ファイルが見つかりません。環境変数を読み込んでいます。",
        ] {
            let body = format!("{}{text}", script.repeat(40));
            assert_eq!(
                sniff_utf16(&with_bom(&[0xff, 0xfe], le(&body))),
                Some(UTF_16LE),
                "{script}"
            );
            assert_eq!(
                sniff_utf16(&with_bom(&[0xfe, 0xff], be(&body))),
                Some(UTF_16BE),
                "{script}"
            );
        }
        // Random bytes after FF FE are not text (any 16-bit unit decodes, but not like a script).
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let noise: Vec<u8> = (0..1024)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        assert_eq!(sniff_utf16(&with_bom(&[0xff, 0xfe], noise)), None);
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
}
