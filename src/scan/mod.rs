//! Scan one input stream: read, normalise, decode, detect, and turn matches into findings
//! with true line and column numbers.
//!
//! Inputs can be endless (`make test 2>&1 | cisleuth scan -`) or larger than memory, so text
//! is processed in chunks as it arrives, cut at line ends. Single-line matches never cross a
//! line end (engine windows stop there), so the only context carried from one chunk to the
//! next is what a multi-line match may still need: the lines from the last multi-line keyword
//! (a PEM `BEGIN`) onwards, at most [`MAX_MATCH_LEN`](crate::detect::MAX_MATCH_LEN) bytes. A line longer than
//! [`MAX_LINE_CHUNK`] is cut at a delimiter with a small overlap. Findings ending inside the
//! carried context were reported with the previous chunk and are skipped, so each match is
//! reported once whatever the chunking.
//!
//! CircleCI step-output JSON is recognised from the first bytes and decoded as it streams in
//! (`step_json`): the joined messages are scanned like any text, in chunks. JSON that stops
//! parsing is scanned as plain text from there on, with a note: nothing is lost.

use std::io::{self, Read};
use std::sync::Arc;

use crate::config::Config;
use crate::content::{self, Content, Strings};
use crate::decode::{Classes, Decoded, Decoders};
use crate::detect::{Engine, Match, Scratch};
use crate::finding::Finding;
use crate::normalise::{looks_like_step_json, StepText};
use crate::source::origin::Origin;

mod assemble;
mod chunk;
mod lines;
mod step_json;
mod views;

use chunk::Stream;
pub use chunk::MAX_LINE_CHUNK;

/// Size of one read from an input.
pub const READ_SIZE: usize = 1 << 20;

/// What a scan of one input tells its caller besides findings.
pub trait Sink {
    /// A finding, in input order.
    fn finding(&mut self, finding: Finding);
    /// Something the user should know that is not an error (the input was still scanned).
    fn note(&mut self, message: String);
}

/// The result of scanning one input.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Bytes read from the input (for UTF-16 input, after transcoding to UTF-8).
    pub bytes: u64,
    /// The read error that ended the input early, after everything before it was scanned.
    pub error: Option<io::Error>,
    /// Set when the input was recognised as an executable or an image and not scanned.
    pub not_scanned: Option<&'static str>,
}

/// Per-input limits and policy.
#[derive(Clone, Debug)]
pub struct Options {
    /// Allowlists and the inline `cisleuth:allow` marker.
    pub policy: Arc<Config>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            policy: Arc::new(Config::default()),
        }
    }
}

/// A per-thread scanner: the shared engine plus reusable buffers.
pub struct Scanner<'e> {
    engine: &'e Engine,
    decoders: &'e Decoders,
    options: Options,
    scratch: Scratch,
    matches: Vec<Match>,
    decoded: Vec<Decoded>,
    classes: Classes,
    read_buf: Vec<u8>,
    text: Vec<u8>,
    /// The current input's step-output streams (empty unless it is CircleCI step JSON).
    step: StepText,
    /// How the current input was turned into text (`["utf16"]`, `["strings"]`, or nothing):
    /// the first entries of every finding's `decoded`.
    layers: &'static [&'static str],
}

/// A reader that counts the bytes read through it.
struct Counted<'a, R> {
    inner: R,
    read: &'a std::cell::Cell<u64>,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

impl<'e> Scanner<'e> {
    /// A scanner over `engine`, decoding with `decoders`.
    pub fn new(engine: &'e Engine, decoders: &'e Decoders, options: Options) -> Scanner<'e> {
        Scanner {
            engine,
            decoders,
            options,
            scratch: engine.scratch(),
            matches: Vec::new(),
            decoded: Vec::new(),
            classes: Classes::default(),
            read_buf: vec![0; READ_SIZE],
            text: Vec::new(),
            step: StepText::default(),
            layers: &[],
        }
    }

    /// Scan everything `reader` yields. Findings go to `sink` as each chunk is done, so a
    /// pipe's secrets are reported while the pipe is still open.
    ///
    /// What the input is comes from its first read ([`content::classify`]): executables and
    /// images are not scanned, UTF-16 is transcoded, other binaries are scanned through
    /// [`Strings`].
    pub fn scan_reader(
        &mut self,
        mut reader: impl Read,
        origin: &Arc<Origin>,
        sink: &mut dyn Sink,
    ) -> Outcome {
        let mut outcome = Outcome::default();
        self.layers = &[];
        let mut first = Vec::new();
        match read_some(&mut reader, &mut self.read_buf) {
            Ok(n) => first.extend_from_slice(&self.read_buf[..n]),
            Err(e) => outcome.error = Some(e),
        }
        let content = if first.is_empty() {
            Content::Text
        } else {
            content::classify(&first)
        };
        match content {
            Content::Text => {
                self.scan_text(&mut reader, first, &mut outcome, origin, sink);
            }
            Content::Executable(kind) | Content::Image(kind) => {
                outcome.bytes = first.len() as u64;
                outcome.not_scanned = Some(kind);
            }
            Content::Utf16(encoding) => {
                self.layers = &["utf16"];
                // Bytes scanned are the input's bytes, not the UTF-8 they became.
                let read = std::cell::Cell::new(0u64);
                let counted = Counted {
                    inner: io::Cursor::new(first).chain(&mut reader),
                    read: &read,
                };
                let mut text = crate::content::utf16_reader(counted, encoding);
                self.scan_text(&mut text, Vec::new(), &mut outcome, origin, sink);
                outcome.bytes = read.get();
            }
            Content::Binary => {
                self.layers = &["strings"];
                let mut text = Strings::new(io::Cursor::new(first).chain(&mut reader));
                self.scan_text(&mut text, Vec::new(), &mut outcome, origin, sink);
            }
        }
        outcome
    }

    /// Scan a text input whose first bytes (`head`) were already read.
    fn scan_text(
        &mut self,
        reader: &mut dyn Read,
        mut head: Vec<u8>,
        outcome: &mut Outcome,
        origin: &Arc<Origin>,
        sink: &mut dyn Sink,
    ) {
        let mut stream = Stream::new();
        self.text.clear();
        self.step = StepText::default();
        // Look at the first bytes to tell CircleCI step JSON from text.
        loop {
            let first = head.iter().find(|b| !b.is_ascii_whitespace());
            if outcome.error.is_some()
                || (!head.is_empty() && (first != Some(&b'[') || head.len() >= 512))
            {
                break;
            }
            match read_some(reader, &mut self.read_buf) {
                Ok(0) => break,
                Ok(n) => head.extend_from_slice(&self.read_buf[..n]),
                Err(e) => {
                    outcome.error = Some(e);
                    break;
                }
            }
        }
        outcome.bytes = head.len() as u64;
        if outcome.error.is_none() && looks_like_step_json(&head) {
            self.scan_step_json(reader, head, &mut stream, outcome, origin, sink);
            return;
        }
        self.push(&mut stream, &head, outcome.error.is_some(), origin, sink);
        if outcome.error.is_some() {
            return;
        }
        self.scan_rest(reader, &mut stream, outcome, origin, sink);
    }

    /// Read and scan the rest of a text input, to its end.
    fn scan_rest(
        &mut self,
        reader: &mut dyn Read,
        stream: &mut Stream,
        outcome: &mut Outcome,
        origin: &Arc<Origin>,
        sink: &mut dyn Sink,
    ) {
        loop {
            match read_some(reader, &mut self.read_buf) {
                Ok(0) => break,
                Ok(n) => {
                    outcome.bytes += n as u64;
                    let data = std::mem::take(&mut self.read_buf);
                    self.push(stream, &data[..n], false, origin, sink);
                    self.read_buf = data;
                }
                Err(e) => {
                    outcome.error = Some(e);
                    break;
                }
            }
        }
        self.push(stream, &[], true, origin, sink);
    }

    /// Scan an in-memory input.
    pub fn scan_bytes(
        &mut self,
        bytes: &[u8],
        origin: &Arc<Origin>,
        sink: &mut dyn Sink,
    ) -> Outcome {
        self.scan_reader(bytes, origin, sink)
    }
}

fn read_some(reader: &mut (impl Read + ?Sized), buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Decoder;
    use crate::rules;

    #[derive(Default)]
    struct Collect {
        found: Vec<Finding>,
        notes: Vec<String>,
    }

    impl Sink for Collect {
        fn finding(&mut self, f: Finding) {
            self.found.push(f);
        }
        fn note(&mut self, m: String) {
            self.notes.push(m);
        }
    }

    fn engine() -> Engine {
        Engine::new(rules::builtin().unwrap()).unwrap()
    }

    fn scan_with(engine: &Engine, decoders: &Decoders, input: &[u8]) -> Collect {
        let mut s = Scanner::new(engine, decoders, Options::default());
        let mut c = Collect::default();
        let origin = Arc::new(Origin::Stdin);
        let out = s.scan_bytes(input, &origin, &mut c);
        assert!(out.error.is_none());
        assert_eq!(out.bytes, input.len() as u64);
        c
    }

    fn scan(input: &[u8]) -> Collect {
        scan_with(&engine(), &Decoders::none(), input)
    }

    #[test]
    fn step_json_streams_long_messages_and_keeps_their_stream() {
        // One message of 9 MiB on one line (cut like any long line, never held whole), the
        // secret at its end; then a short one on `out`.
        let filler = "word ".repeat((9 << 20) / 5);
        let body = format!(
            "[{{\"message\":\"{filler}token {GH}\\r\\n\",\"type\":\"err\"}},{{\"message\":\"b {GH}\\n\",\"type\":\"out\"}}]"
        );
        let c = scan(body.as_bytes());
        assert!(c.notes.is_empty(), "{:?}", c.notes);
        let got: Vec<_> = c
            .found
            .iter()
            .map(|f| (f.location.line, f.location.stream))
            .collect();
        assert_eq!(got, vec![(1, Some("err")), (2, Some("out"))]);
        // JSON that goes wrong halfway: what was decoded and the raw rest are both scanned.
        let broken = format!("[{{\"message\":\"a {GH}\\n\"}}, oops b {GH}\n");
        let c = scan(broken.as_bytes());
        assert_eq!(c.found.len(), 2, "{:?}", c.notes);
        assert!(
            c.notes[0].contains("not valid CircleCI step output JSON"),
            "{:?}",
            c.notes
        );
        // Cut short: a note, and the partial message is still scanned.
        let cut = format!("[{{\"message\":\"a {GH}\\nmore");
        let c = scan(cut.as_bytes());
        assert_eq!(c.found.len(), 1);
        assert!(
            c.notes[0].contains("ended before the JSON did"),
            "{:?}",
            c.notes
        );
    }

    #[test]
    fn inline_allow_and_allowlist_drop_findings() {
        let input = format!("a {GH} # cisleuth:allow\nb {GH}\n");
        let found = summary(&scan(input.as_bytes()));
        assert_eq!(found, vec![("github-pat".into(), GH.into(), 2, 3)]);
        let cfg = Config::parse("[[allow]]\nline = '^b '", std::path::Path::new("c.toml")).unwrap();
        let engine = engine();
        let decoders = Decoders::none();
        let options = Options {
            policy: Arc::new(cfg),
        };
        let mut s = Scanner::new(&engine, &decoders, options);
        let mut c = Collect::default();
        s.scan_bytes(input.as_bytes(), &Arc::new(Origin::Stdin), &mut c);
        assert!(c.found.is_empty());
    }

    #[test]
    fn spans_are_offsets_in_the_normalised_input() {
        let input = format!(
            "{}\x1b[1mtoken={GH}\x1b[0m\n",
            "noise line\n".repeat(200_000)
        );
        let c = scan(input.as_bytes());
        let normalised = crate::normalise::strip_ansi(input.as_bytes());
        let (s, e) = c.found[0].span;
        assert_eq!(&normalised[s as usize..e as usize], GH.as_bytes());
        assert!(s > READ_SIZE as u64, "the secret is past the first chunk");
    }

    fn summary(c: &Collect) -> Vec<(String, String, u64, u64)> {
        c.found
            .iter()
            .map(|f| {
                (
                    f.rule_id.clone(),
                    String::from_utf8_lossy(f.secret.expose()).into_owned(),
                    f.location.line,
                    f.location.column,
                )
            })
            .collect()
    }

    const GH: &str = "ghp_Zq3kYb8TfW2mN5rXc7vH1jL9pD4sGa0t7Hkq";

    #[test]
    fn line_and_column_after_ansi_and_crlf() {
        let input = format!("one\r\ntwo\r\n\x1b[32mtoken={GH}\x1b[0m\r\nfour\n");
        let c = scan(input.as_bytes());
        assert_eq!(summary(&c), vec![("github-pat".into(), GH.into(), 3, 7)]);
    }

    #[test]
    fn carriage_return_redraws_restart_columns_but_not_lines() {
        let input = format!("a\nDownloading 10%\rDownloading 90%\r{GH}\nb\n");
        let c = scan(input.as_bytes());
        assert_eq!(summary(&c), vec![("github-pat".into(), GH.into(), 2, 1)]);
    }

    #[test]
    fn columns_count_characters() {
        let input = format!("✔ ✔ {GH}\n");
        assert_eq!(summary(&scan(input.as_bytes()))[0].3, 5);
    }

    #[test]
    fn circleci_json_is_decoded_and_lines_count_within_messages() {
        let body = serde_json::to_string(&serde_json::json!([
            {"message": "#!/bin/bash -eo pipefail\r\nnpm ci\r\n", "time": "2022-12-28T10:00:00.000Z", "type": "out"},
            {"message": format!("\u{1b}[33mwarn\u{1b}[0m\r\n+ echo \"{GH}\"\r\n"), "time": "2022-12-28T10:00:01.000Z", "type": "err"}
        ]))
        .unwrap();
        let c = scan(body.as_bytes());
        assert_eq!(summary(&c), vec![("github-pat".into(), GH.into(), 4, 9)]);
    }

    #[test]
    fn malformed_json_is_scanned_as_text_with_a_note() {
        let body = format!("[{{\"message\": \"token {GH}\", \"time\": ");
        let c = scan(body.as_bytes());
        assert_eq!(c.found.len(), 1);
        assert!(
            c.notes[0].contains("not valid CircleCI step output JSON"),
            "{:?}",
            c.notes
        );
    }

    /// Splitting the input at any read size must not change what is found or where.
    #[test]
    fn chunking_does_not_change_findings() {
        let engine = engine();
        let decoders = Decoders::none();
        let mut input = Vec::new();
        for i in 0..3000 {
            input
                .extend_from_slice(format!("line {i} with some ordinary build noise\n").as_bytes());
            if i % 700 == 5 {
                input.extend_from_slice(format!("export GITHUB_TOKEN={GH}\n").as_bytes());
            }
            if i == 1500 {
                input.extend_from_slice(pem().as_bytes());
            }
        }
        let whole = summary(&scan_with(&engine, &decoders, &input));
        assert_eq!(whole.len(), 6, "{whole:?}");
        for step in [1usize, 7, 100, 4096, 65536] {
            let mut s = Scanner::new(&engine, &decoders, Options::default());
            let mut c = Collect::default();
            s.scan_reader(
                crate::testutil::Trickle(&input, step),
                &Arc::new(Origin::Stdin),
                &mut c,
            );
            assert_eq!(summary(&c), whole, "read size {step}");
        }
    }

    fn pem() -> String {
        let body: String = (0..20)
            .map(|i| {
                format!(
                    "{}\n",
                    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"
                        .chars()
                        .cycle()
                        .skip(i * 3)
                        .take(64)
                        .collect::<String>()
                )
            })
            .collect();
        format!("-----BEGIN RSA PRIVATE KEY-----\n{body}-----END RSA PRIVATE KEY-----\n")
    }

    #[test]
    fn long_lines_are_cut_without_losing_secrets() {
        let mut input = vec![b'a'; MAX_LINE_CHUNK - 20];
        input.extend_from_slice(format!(" {GH} ").as_bytes());
        input.extend(std::iter::repeat_n(b'b', MAX_LINE_CHUNK));
        input.extend_from_slice(format!(" {GH}\n").as_bytes());
        let c = scan(&input);
        let s = summary(&c);
        assert_eq!(s.len(), 2, "{s:?}");
        assert_eq!(s[0].3, (MAX_LINE_CHUNK - 20 + 2) as u64);
        assert_eq!(s[1].3, (2 * MAX_LINE_CHUNK + 24) as u64);
    }

    /// Test decoder: text between `<<` and `>>` is ROT1-encoded (letters shifted by one,
    /// `<` `>` written as `{` `}`), so nesting one encoding in another is possible.
    struct Rot1;
    fn rot(c: u8, by: i8) -> u8 {
        let shift = |base: u8| (((c - base) as i8 + by).rem_euclid(26) as u8) + base;
        match c {
            b'a'..=b'z' => shift(b'a'),
            b'A'..=b'Z' => shift(b'A'),
            b'{' if by < 0 => b'<',
            b'}' if by < 0 => b'>',
            b'<' if by > 0 => b'{',
            b'>' if by > 0 => b'}',
            _ => c,
        }
    }
    fn encode(s: &str) -> String {
        format!(
            "<<{}>>",
            String::from_utf8(s.bytes().map(|c| rot(c, 1)).collect()).unwrap()
        )
    }
    impl Decoder for Rot1 {
        fn decode(&self, text: &[u8], _: &Classes, out: &mut Vec<Decoded>) {
            let mut at = 0;
            while let Some(s) = memchr::memmem::find(&text[at..], b"<<") {
                let s = at + s;
                let Some(e) = memchr::memmem::find(&text[s..], b">>") else {
                    break;
                };
                let e = s + e + 2;
                out.push(Decoded {
                    start: s,
                    end: e,
                    bytes: text[s + 2..e - 2].iter().map(|&c| rot(c, -1)).collect(),
                    layers: &["rot1"],
                });
                at = e;
            }
        }
    }

    #[test]
    fn decoded_views_report_the_encoded_runs_location() {
        let engine = engine();
        let decoders = Decoders {
            decoders: vec![Box::new(Rot1)],
            max_depth: 2,
        };
        let input = format!("x\n  see {}\n", encode(GH));
        let c = scan_with(&engine, &decoders, input.as_bytes());
        assert_eq!(summary(&c), vec![("github-pat".into(), GH.into(), 2, 7)]);
        assert_eq!(c.found[0].decoded, vec!["rot1"]);
        // Nested: the outer run decodes to text holding another run.
        let input = format!("{}\n", encode(&encode(GH)));
        let c = scan_with(&engine, &decoders, input.as_bytes());
        assert_eq!(summary(&c), vec![("github-pat".into(), GH.into(), 1, 1)]);
        assert_eq!(c.found[0].decoded, vec!["rot1", "rot1"]);
        // Depth 1 stops before the inner run.
        let shallow = Decoders {
            decoders: vec![Box::new(Rot1)],
            max_depth: 1,
        };
        assert!(scan_with(&engine, &shallow, input.as_bytes())
            .found
            .is_empty());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// The whole stack (content sniffing, UTF-16, strings, ANSI, step JSON, decoders,
        /// detection) never panics on arbitrary input, and every span is in the input.
        #[test]
        fn scanning_arbitrary_bytes_never_panics(
            head in proptest::sample::select(vec![
                &b""[..], b"\xff\xfe", b"[{\"message\":\"", b"\x1b[31m", b"\x7fELF", b"\0\x01",
            ]),
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000),
        ) {
            static ENGINE: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
            let engine = ENGINE.get_or_init(engine);
            let decoders = Decoders::standard(3);
            let input = [head, &bytes[..]].concat();
            let c = scan_with(engine, &decoders, &input);
            for f in &c.found {
                proptest::prop_assert!(f.span.0 <= f.span.1);
            }
        }
    }
}
