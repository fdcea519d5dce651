//! URL percent-encoding (`ghp%5FAbc...`, `pass%3Dx%26y`), as in query strings, form bodies
//! and `curl -v` traces.
//!
//! Candidates are found with `memchr` for `%` followed by two hex digits; the view is the
//! whole run of URL-ish bytes around them with every `%XX` decoded (`+` stays `+`: it is a
//! literal in base64 and in most places a token can be). Runs that decode to binary
//! (`%00%FF...`) are dropped.

use super::{hex_byte, is_text, run_around, Classes, Decoded, Decoder};

/// Longest stretch on either side of an escape taken into its run.
const MAX_SIDE: usize = 8 * 1024;

/// Percent-encoding.
pub struct Percent;

impl Decoder for Percent {
    fn name(&self) -> &'static str {
        "url"
    }

    fn decode(&self, text: &[u8], classes: &Classes, out: &mut Vec<Decoded>) {
        let mut done = 0;
        for at in classes.specials(text, b'%') {
            if at < done || hex_byte(text, at + 1).is_none() {
                continue;
            }
            let (start, end) = run_around(text, at, MAX_SIDE);
            done = end;
            let run = &text[start..end];
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
            if is_text(&bytes) {
                out.push(Decoded {
                    start,
                    end,
                    bytes,
                    layers: &["url"],
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn views(text: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut classes = Classes::default();
        classes.build(text.as_bytes());
        Percent.decode(text.as_bytes(), &classes, &mut out);
        out.into_iter()
            .map(|d| {
                (
                    text[d.start..d.end].to_string(),
                    String::from_utf8_lossy(&d.bytes).into_owned(),
                )
            })
            .collect()
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
        for (text, want) in cases {
            let got = views(text);
            let want: Vec<(String, String)> = want
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
            assert_eq!(got, want, "{text}");
        }
    }

    #[test]
    fn round_trip_of_every_byte_that_is_text() {
        let plain: String = (0x21u8..0x7f).map(char::from).collect();
        let encoded: String = plain.bytes().map(|b| format!("%{b:02X}")).collect();
        assert_eq!(views(&encoded), vec![(encoded.clone(), plain)]);
    }
}
