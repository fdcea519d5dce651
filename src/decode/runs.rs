//! Base64 (standard and URL-safe, padded or not) and hex runs.
//!
//! Candidates come from [`Classes`]: runs of at least [`MIN_BASE64`] characters of the base64
//! alphabets (hex digits are a subset) that start with a byte that can begin encoded text,
//! and the same after a `/` inside a run, because base64 often ends a URL or a path without a
//! break (`/api/v1/secrets/SGVsbG8...`). A whole run of only hex digits (at least [`MIN_HEX`])
//! is tried as hex and never as base64; anything else as base64 with one table for both
//! alphabets (`+`/`-` and `/`/`_` mean the same; a string never mixes them unless it is not
//! base64). Only the first six bytes are decoded before a candidate is given up: digests,
//! UUIDs, paths and the like fail there. Base64 that decodes to a gzip stream is inflated (at
//! most [`MAX_INFLATE`] bytes).
//!
//! `base64 -w 76` and PEM-style output wrap long strings: a run that fills a line of 60 or
//! more characters (a multiple of four) continues with the run that starts the next line.

use std::io::Read;

use super::{hex_value, is_ascii_text, is_text, Classes, Decoded, Decoder};

/// Shortest base64 run decoded.
pub const MIN_BASE64: usize = 16;
/// Shortest hex run decoded.
pub const MIN_HEX: usize = 32;
/// Most bytes inflated from one gzip stream found in base64.
pub const MAX_INFLATE: u64 = 1 << 20;
/// Shortest line taken as wrapped base64 output.
const MIN_WRAP: usize = 60;

/// Base64 value + 1 of every byte (0 = not base64), both alphabets in one table.
static VALUE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 26 {
        t[b'A' as usize + i] = i as u8 + 1;
        t[b'a' as usize + i] = i as u8 + 27;
        i += 1;
    }
    let mut d = 0;
    while d < 10 {
        t[b'0' as usize + d] = d as u8 + 53;
        d += 1;
    }
    t[b'+' as usize] = 63;
    t[b'-' as usize] = 63;
    t[b'/' as usize] = 64;
    t[b'_' as usize] = 64;
    t
};
/// Value of every hex digit (0 for other bytes: only used on runs known to be hex).
static HEX_VALUE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        if let Some(v) = hex_value(i as u8) {
            t[i] = v;
        }
        i += 1;
    }
    t
};

/// Whether `b` is in either base64 alphabet.
#[inline]
pub(crate) fn is_b64(b: u8) -> bool {
    VALUE[b as usize] != 0
}

/// Base64 and hex runs.
pub struct Base64Hex;

impl Decoder for Base64Hex {
    fn decode(&self, text: &[u8], classes: &Classes, out: &mut Vec<Decoded>) {
        let mut skip_to = 0;
        classes.for_each_candidate::<MIN_BASE64>(|at, end, run_start| {
            if at >= skip_to {
                skip_to = try_at(text, classes, at, end, run_start, out);
            }
        });
    }
}

/// Decode from the candidate `at` to the run's `end` as hex (whole runs only) or base64 if it
/// is text; returns where the next candidate may start (past the run when a view was made,
/// past the lines a wrapped base64 run was joined with).
///
/// Every candidate comes here, nearly all to be rejected in a few lookups; decoding proper is
/// out of line.
#[inline]
fn try_at(
    text: &[u8],
    classes: &Classes,
    at: usize,
    end: usize,
    run_start: bool,
    out: &mut Vec<Decoded>,
) -> usize {
    if run_start && classes.all_hex(at, end) {
        if end - at >= MIN_HEX && hex_starts_as_text(&text[at..end]) {
            hex_view(text, at, end, out);
        }
        // Digests are not base64.
        return end;
    }
    let run = &text[at..end];
    if base64_starts_as_text(run) || run.starts_with(b"H4sI") {
        if let Some(next) = base64_run(text, at, run_start, end, out) {
            return next;
        }
    }
    at
}

#[inline(never)]
fn hex_view(text: &[u8], start: usize, end: usize, out: &mut Vec<Decoded>) {
    if let Some(bytes) = hex(&text[start..end]) {
        out.push(Decoded {
            start,
            end,
            bytes,
            layers: &["hex"],
        });
    }
}

/// A run (or its suffix after a `/`) from `at` that starts like base64 of text: decode it,
/// joining wrapped lines first. `Some(next start)` when a view was made or lines were joined.
#[inline(never)]
fn base64_run(
    text: &[u8],
    at: usize,
    run_start: bool,
    end: usize,
    out: &mut Vec<Decoded>,
) -> Option<usize> {
    let mut pad = 0;
    while pad < 2 && text.get(end + pad) == Some(&b'=') {
        pad += 1;
    }
    if run_start {
        if let (Some(body), wrapped_end) = unwrap_lines(text, at, end, pad) {
            if let Some(d) = base64_view(&body, at, wrapped_end) {
                out.push(d);
            }
            return Some(wrapped_end);
        }
    }
    let d = base64_view(&text[at..end], at, end + pad)?;
    out.push(d);
    Some(end)
}

/// Whether the first six bytes a hex run spells are ASCII text (checked as they are decoded,
/// so a digest costs one or two lookups).
#[inline]
fn hex_starts_as_text(digits: &[u8]) -> bool {
    if digits.len() < 12 {
        return false;
    }
    for i in 0..6 {
        let hi = HEX_VALUE[digits[2 * i] as usize];
        let lo = HEX_VALUE[digits[2 * i + 1] as usize];
        if !is_ascii_text(hi << 4 | lo) {
            return false;
        }
    }
    true
}

/// Whether the first six bytes a base64 run spells are ASCII text (checked three at a time).
#[inline]
fn base64_starts_as_text(run: &[u8]) -> bool {
    if run.len() < 8 {
        return false;
    }
    for g in 0..2 {
        let v = |i: usize| (VALUE[run[4 * g + i] as usize] as u32).wrapping_sub(1) & 63;
        let n = v(0) << 18 | v(1) << 12 | v(2) << 6 | v(3);
        if !(is_ascii_text((n >> 16) as u8)
            && is_ascii_text((n >> 8) as u8)
            && is_ascii_text(n as u8))
        {
            return false;
        }
    }
    true
}

/// If the run `[start, end)` (plus `pad` `=`) fills a line of wrapped base64 and the next
/// lines continue it, the joined body (without line breaks and padding) and where it ends.
fn unwrap_lines(text: &[u8], start: usize, end: usize, pad: usize) -> (Option<Vec<u8>>, usize) {
    let line_break = |at: usize| -> Option<usize> {
        match text.get(at..at + 2) {
            Some(b"\r\n") => Some(2),
            _ if text.get(at) == Some(&b'\n') => Some(1),
            _ => None,
        }
    };
    let width = end - start;
    if pad > 0 || width < MIN_WRAP || !width.is_multiple_of(4) || line_break(end).is_none() {
        return (None, end);
    }
    // The run must start its line, as the wrapped lines after it do.
    if start > 0 && !matches!(text[start - 1], b'\n' | b' ' | b'\t' | b'"' | b':') {
        return (None, end);
    }
    let mut body = text[start..end].to_vec();
    let mut at = end;
    while let Some(nl) = line_break(at) {
        let next = at + nl;
        let len = text[next..].iter().take_while(|&&b| is_b64(b)).count();
        if len == 0 || len > width {
            break;
        }
        let mut pad = 0;
        while pad < 2 && text.get(next + len + pad) == Some(&b'=') {
            pad += 1;
        }
        body.extend_from_slice(&text[next..next + len]);
        at = next + len + pad;
        // A shorter line, or padding, ends the string.
        if len < width || pad > 0 {
            break;
        }
    }
    if at == end {
        return (None, end);
    }
    (Some(body), at)
}

/// Decode `run` (base64 without padding) if it is text or gzip-compressed text.
fn base64_view(run: &[u8], start: usize, end: usize) -> Option<Decoded> {
    if run.len() < MIN_BASE64 {
        return None;
    }
    // gzip's magic 1f 8b 08 is "H4sI" in base64.
    if run.starts_with(b"H4sI") {
        let packed = base64(run);
        let mut text = Vec::new();
        let _ = flate2::read::GzDecoder::new(&packed[..])
            .take(MAX_INFLATE)
            .read_to_end(&mut text);
        return is_text(&text).then_some(Decoded {
            start,
            end,
            bytes: text,
            layers: &["base64", "gzip"],
        });
    }
    // The first eight characters are six bytes: they must be text before the rest is read.
    if !base64(&run[..8]).into_iter().all(is_ascii_text) {
        return None;
    }
    // And the first 48 bytes must read as text before a long run is decoded whole: random
    // bytes pass the six-byte check one time in a few hundred, and a run that starts at every
    // `/` of a long line would otherwise be decoded once per start (quadratic).
    if run.len() > 64 && !is_text(&base64(&run[..64])) {
        return None;
    }
    let bytes = base64(run);
    is_text(&bytes).then_some(Decoded {
        start,
        end,
        bytes,
        layers: &["base64"],
    })
}

/// Decode base64 characters (no padding, either alphabet). A final lone character carries no
/// whole byte and is dropped.
pub fn base64(run: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(run.len() / 4 * 3 + 2);
    let mut acc = 0u32;
    let mut bits = 0;
    for &c in run {
        let v = VALUE[c as usize];
        if v == 0 {
            break;
        }
        acc = acc << 6 | (v - 1) as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// Decode a hex run if it is text (an odd last digit is dropped).
fn hex(run: &[u8]) -> Option<Vec<u8>> {
    let byte = |i: usize| HEX_VALUE[run[2 * i] as usize] << 4 | HEX_VALUE[run[2 * i + 1] as usize];
    if !(0..6).all(|i| is_ascii_text(byte(i))) {
        return None;
    }
    let bytes: Vec<u8> = (0..run.len() / 2).map(byte).collect();
    is_text(&bytes).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use ::base64::Engine as _;

    fn views(text: &str) -> Vec<(String, String, &'static [&'static str])> {
        let mut out = Vec::new();
        let mut classes = Classes::default();
        classes.build(text.as_bytes());
        Base64Hex.decode(text.as_bytes(), &classes, &mut out);
        out.into_iter()
            .map(|d| {
                (
                    text[d.start..d.end].to_string(),
                    String::from_utf8_lossy(&d.bytes).into_owned(),
                    d.layers,
                )
            })
            .collect()
    }

    const SECRET: &str = "ghp_Zq3kYb8TfW2mN5rXc7vH1jL9pD4sGa0t7Hkq";

    #[test]
    fn round_trips() {
        let cases: Vec<(String, &[&str])> = vec![
            (STANDARD.encode(SECRET), &["base64"]),
            (URL_SAFE_NO_PAD.encode(SECRET), &["base64"]),
            (STANDARD.encode(format!("{SECRET}\n")), &["base64"]),
            (STANDARD.encode(format!("user:{SECRET}")), &["base64"]),
            (
                SECRET.bytes().map(|b| format!("{b:02x}")).collect(),
                &["hex"],
            ),
            (
                SECRET.bytes().map(|b| format!("{b:02X}")).collect(),
                &["hex"],
            ),
        ];
        for (encoded, layers) in cases {
            for text in [
                encoded.clone(),
                format!("echo {encoded} | base64 -d"),
                format!("{{\"auth\":\"{encoded}\"}}"),
                format!("TOKEN_B64={encoded}\n"),
            ] {
                let v = views(&text);
                assert_eq!(v.len(), 1, "{text}: {v:?}");
                assert_eq!(
                    v[0].0.trim_end_matches('='),
                    encoded.trim_end_matches('='),
                    "{text}"
                );
                assert!(v[0].1.contains(SECRET), "{text}: {v:?}");
                assert_eq!(v[0].2, layers);
            }
        }
    }

    #[test]
    fn padding_is_part_of_the_run() {
        let enc = STANDARD.encode("a secret value!!");
        assert!(enc.ends_with("=="));
        let v = views(&format!("[{enc}]"));
        assert_eq!(v[0].0, enc);
        assert_eq!(v[0].1, "a secret value!!");
    }

    #[test]
    fn base64_after_a_path_is_found_from_a_separator() {
        let enc = STANDARD.encode(format!("token {SECRET}"));
        for prefix in ["https://x.example/api/v1/secrets/", "a/b/c/", "path/"] {
            let v = views(&format!("{prefix}{enc}"));
            assert_eq!(v.len(), 1, "{prefix}: {v:?}");
            assert!(v[0].1.contains(SECRET));
        }
    }

    #[test]
    fn wrapped_base64_is_joined() {
        let long = format!("{SECRET} {SECRET} {SECRET} and some more text to wrap");
        let enc = STANDARD.encode(&long);
        let wrapped: Vec<String> = enc
            .as_bytes()
            .chunks(76)
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect();
        assert!(wrapped.len() >= 2);
        let text = format!("$ base64 creds.txt\n{}\n$ next\n", wrapped.join("\n"));
        let v = views(&text);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].1, long);
        assert!(v[0].0.contains('\n'));
        // CRLF too.
        let text = format!("{}\r\n", wrapped.join("\r\n"));
        assert_eq!(views(&text)[0].1, long);
    }

    #[test]
    fn gzip_inside_base64_is_inflated() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(format!("config: token={SECRET}\n").as_bytes())
            .unwrap();
        let enc = STANDARD.encode(gz.finish().unwrap());
        let v = views(&format!("payload: {enc}"));
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].2, &["base64", "gzip"]);
        assert!(v[0].1.contains(SECRET));
        // Gzip of binary noise is dropped.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&(0..=255u8).cycle().take(4000).collect::<Vec<_>>())
            .unwrap();
        assert!(views(&STANDARD.encode(gz.finish().unwrap())).is_empty());
    }

    #[test]
    fn binary_and_digests_are_not_views() {
        let texts = [
            // sha256, sha1 / git SHA, sha512 hex, docker layer id
            "sha256:5db839930a5284992a05aaf71b5c05c48d393e4f8bffe9bc56183d0ddd2ecc19",
            "HEAD is now at 39b7f9d80bb927bfde3e65838cd5e419fa3be839",
            "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
            " ---> 51655ab70c57 sha256:a0e6e13f16254f60d59fe5bc57a017e44b91fb30ca38d2ff4e2422440a05f6d8",
            // npm integrity (base64 of a sha512)
            "\"integrity\": \"sha512-HaPv1G5kn3wVpVCDcWE0uCn9x1K0Q7Cj5ozI919THWMsXd4ToNjNupycjIqSyr8skda+I/1Hmt6UTSnixwCidE==\"",
            // UUIDs
            "request id=fbeba4cd-dd0f-021e-3f13-1e2869bd9dde status=200",
            "550e8400-e29b-41d4-a716-446655440000",
            // words, paths, identifiers
            "/home/circleci/project/node_modules/some_package/dist/index",
            "com.example.ServiceImplementationFactoryBean",
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            // a PEM body line
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj",
        ];
        for t in texts {
            assert!(views(t).is_empty(), "{t}: {:?}", views(t));
        }
        // Base64 of random bytes.
        let noise: Vec<u8> = (0..48u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        assert!(views(&STANDARD.encode(noise)).is_empty());
    }

    #[test]
    fn malformed_input_never_panics_and_short_runs_are_ignored() {
        for t in [
            "",
            "=",
            "====",
            "A",
            "AAAA=",
            "Zm9v",
            "Zm9vYmFy",
            "SGVsbG8gd29ybGQ",
            "SGVsbG8gd29ybGQh=====",
            "-_-_-_-_-_-_-_-_-_-_",
            "////////////////",
            "4142434445464748494a4b4c4d4e4f505",
            "0x414243444546474849",
        ] {
            let _ = views(t);
        }
        assert!(
            views("SGVsbG8gd29ybGQ").is_empty(),
            "15 characters: below the minimum"
        );
        assert_eq!(views("SGVsbG8gd29ybGQhIQ")[0].1, "Hello world!!");
        // An odd hex digit count drops the last digit.
        let odd = format!("{}4", "41".repeat(16));
        assert_eq!(views(&odd)[0].1, "A".repeat(16));
    }
}
