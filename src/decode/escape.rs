//! Backslash escapes: `\uXXXX` (with surrogate pairs), `\xNN` and the JSON/C escapes
//! (`\/`, `\n`, `\"`, ...), as JSON encoders, `printf`, Python `repr` and log libraries
//! write them.
//!
//! Only a run holding a `\u`, `\x` or `\/` escape becomes a view: the others (`\n`, `\"`)
//! separate tokens but never hide a token's characters, and the plain scan already treats
//! them as boundaries. The view is the whole run of non-space bytes around the escapes with
//! every escape decoded.

use super::{escaped_runs, hex_byte, Classes, Decoded, Decoder};

/// Backslash escapes.
pub struct Escapes;

/// The value of `\uXXXX` at `at` (the backslash).
fn unicode_at(text: &[u8], at: usize) -> Option<u16> {
    if text.get(at + 1) != Some(&b'u') {
        return None;
    }
    let hi = hex_byte(text, at + 2)?;
    let lo = hex_byte(text, at + 4)?;
    Some(u16::from(hi) << 8 | u16::from(lo))
}

/// Whether the escape at `at` hides characters a token could be made of.
fn is_hiding(text: &[u8], at: usize) -> bool {
    match text.get(at + 1) {
        Some(b'u') => unicode_at(text, at).is_some(),
        Some(b'x') => hex_byte(text, at + 2).is_some(),
        Some(b'/') => true,
        _ => false,
    }
}

/// Decode every escape in `run`.
pub fn unescape(run: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(run.len());
    let mut i = 0;
    while i < run.len() {
        if run[i] != b'\\' || i + 1 >= run.len() {
            out.push(run[i]);
            i += 1;
            continue;
        }
        let simple = match run[i + 1] {
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'0' => Some(0),
            c @ (b'"' | b'\'' | b'\\' | b'/') => Some(c),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            i += 2;
        } else if let Some(unit) = unicode_at(run, i) {
            let mut units = vec![unit];
            i += 6;
            // A high surrogate takes the low one after it.
            if (0xd800..0xdc00).contains(&unit) {
                if let Some(low @ 0xdc00..=0xdfff) = unicode_at(run, i) {
                    units.push(low);
                    i += 6;
                }
            }
            for c in char::decode_utf16(units) {
                let c = c.unwrap_or(char::REPLACEMENT_CHARACTER);
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
            }
        } else if let (b'x', Some(b)) = (run[i + 1], hex_byte(run, i + 2)) {
            out.push(b);
            i += 4;
        } else {
            out.push(b'\\');
            i += 1;
        }
    }
    out
}

impl Decoder for Escapes {
    fn decode(&self, text: &[u8], classes: &Classes, out: &mut Vec<Decoded>) {
        escaped_runs(text, classes, b'\\', is_hiding, unescape, &["escape"], out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::check_table;

    fn views(text: &str) -> Vec<(String, String)> {
        crate::testutil::views(&Escapes, text)
    }

    #[test]
    fn table() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            (
                r#"{"token":"ghp\u005fZq3kYb8TfW2mN5rXc7vH1jL9pD4sGa0t7Hkq"}"#,
                &[(
                    r"ghp\u005fZq3kYb8TfW2mN5rXc7vH1jL9pD4sGa0t7Hkq",
                    "ghp_Zq3kYb8TfW2mN5rXc7vH1jL9pD4sGa0t7Hkq",
                )],
            ),
            (
                r"b'\x67\x68\x70\x5fabc'",
                &[(r"\x67\x68\x70\x5fabc", "ghp_abc")],
            ),
            (
                r#""url":"https:\/\/user:pw@host\/x""#,
                &[(r"https:\/\/user:pw@host\/x", "https://user:pw@host/x")],
            ),
            // Upper-case hex, a surrogate pair, JSON escapes decoded along.
            (
                r"\u0041\uD83D\uDE00\n",
                &[(r"\u0041\uD83D\uDE00\n", "A😀\n")],
            ),
            // A lone surrogate becomes U+FFFD instead of failing.
            (r"x\uD800y", &[(r"x\uD800y", "x\u{fffd}y")]),
            // Escapes that hide nothing make no view; malformed ones are kept as they are.
            (r#"line\none\ttab \"q\""#, &[]),
            (r"\u12 \x \xZZ \", &[]),
            // Binary is dropped.
            (r"\x00\x01\x02\x03\x04\x05", &[]),
        ];
        check_table(&Escapes, cases);
    }

    #[test]
    fn round_trip_through_json() {
        let secret = "AKIA/ghp_tok\u{e9}n\u{1F600}";
        // serde_json escapes only what it must; escape every char by hand instead.
        let encoded: String = secret
            .encode_utf16()
            .map(|u| format!("\\u{u:04x}"))
            .collect();
        assert_eq!(views(&encoded), vec![(encoded.clone(), secret.to_string())]);
    }
}
