//! URL percent-encoding (`ghp%5FAbc...`, `pass%3Dx%26y`), as in query strings, form bodies
//! and `curl -v` traces.
//!
//! Candidates are found with `memchr` for `%` followed by two hex digits; the view is the
//! whole run of URL-ish bytes around them with every `%XX` decoded (`+` stays `+`: it is a
//! literal in base64 and in most places a token can be). Runs that decode to binary
//! (`%00%FF...`) are dropped.

use super::{escaped_runs, hex_byte, Classes, Decoded, Decoder};

/// Percent-encoding.
pub struct Percent;

impl Decoder for Percent {
    fn decode(&self, text: &[u8], classes: &Classes, out: &mut Vec<Decoded>) {
        let starts = |text: &[u8], at: usize| hex_byte(text, at + 1).is_some();
        escaped_runs(text, classes, b'%', starts, unescape, &["url"], out);
    }
}

/// Decode every `%XX` in `run` (`+` stays `+`).
fn unescape(run: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(run.len());
    let mut i = 0;
    while i < run.len() {
        match (run[i], hex_byte(run, i + 1)) {
            (b'%', Some(b)) => {
                bytes.push(b);
                i += 3;
            }
            (c, _) => {
                bytes.push(c);
                i += 1;
            }
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::check_table;

    fn views(text: &str) -> Vec<(String, String)> {
        crate::testutil::views(&Percent, text)
    }

    #[test]
    fn table() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            (
                "GET /api?token=ghp%5FZq3kYb8TfW2mN5rXc7vH1jL9pD4sGa0t7Hkq HTTP/1.1",
                &[(
                    "/api?token=ghp%5FZq3kYb8TfW2mN5rXc7vH1jL9pD4sGa0t7Hkq",
                    "/api?token=ghp_Zq3kYb8TfW2mN5rXc7vH1jL9pD4sGa0t7Hkq",
                )],
            ),
            (
                "\"url\":\"https://u:p%40ss%3Aw0rd@host/x\"",
                &[(
                    "https://u:p%40ss%3Aw0rd@host/x",
                    "https://u:p@ss:w0rd@host/x",
                )],
            ),
            // Lower-case hex, `+` kept, two runs.
            (
                "a=%2fx+y b=%7e",
                &[("a=%2fx+y", "a=/x+y"), ("b=%7e", "b=~")],
            ),
            // Not escapes: progress, format strings, a lone % at the end.
            ("50% done 100%", &[]),
            ("printf %s %d %", &[]),
            ("%", &[]),
            ("%4", &[]),
            // Binary is dropped.
            ("%00%01%02%03%FF%FE", &[]),
        ];
        check_table(&Percent, cases);
    }

    #[test]
    fn round_trip_of_every_byte_that_is_text() {
        let plain: String = (0x21u8..0x7f).map(char::from).collect();
        let encoded: String = plain.bytes().map(|b| format!("%{b:02X}")).collect();
        assert_eq!(views(&encoded), vec![(encoded.clone(), plain)]);
    }
}
