//! Scan one input stream: read, normalise, decode, detect, and turn matches into findings
//! with true line and column numbers.
//!
//! Inputs can be endless (`make test 2>&1 | cisleuth scan -`) or larger than memory, so text
//! is processed in chunks as it arrives, cut at line ends. Single-line matches never cross a
//! line end (engine windows stop there), so the only context carried from one chunk to the
//! next is what a multi-line match may still need: the lines from the last multi-line keyword
//! (a PEM `BEGIN`) onwards, at most [`MAX_MATCH_LEN`] bytes. A line longer than
//! [`MAX_LINE_CHUNK`] is cut at a delimiter with a small overlap. Findings ending inside the
//! carried context were reported with the previous chunk and are skipped, so each match is
//! reported once whatever the chunking.
//!
//! CircleCI step-output JSON is recognised from the first bytes, read whole (it is capped at
//! 50 MB by CircleCI; here by `max_json_bytes`), decoded and scanned as the joined messages.
//! JSON that does not parse is scanned as plain text with a note: nothing is lost.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::rc::Rc;
use std::sync::Arc;

use memchr::{memchr_iter, memrchr, memrchr2};

use crate::config::Config;
use crate::content::{self, Content, Strings};
use crate::decode::{Classes, Decoded, Decoders};
use crate::detect::evidence::{shape, Evidence, Shape};
use crate::detect::{Engine, Match, Scratch, MAX_MATCH_LEN};
use crate::finding::{Finding, Location, Paired};
use crate::normalise::{circleci_step_text, looks_like_step_json, AnsiStripper, StepText};
use crate::rules::Confidence;
use crate::source::origin::Origin;

/// Size of one read from an input.
pub const READ_SIZE: usize = 1 << 20;
/// Longest run without a line break scanned as one piece; longer lines are cut.
pub const MAX_LINE_CHUNK: usize = 4 << 20;
/// Context kept when a long line is cut (longer than any single-line match).
const LONG_LINE_OVERLAP: usize = 8 * 1024;

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
    /// Largest CircleCI step JSON read whole for decoding; larger is scanned as text.
    pub max_json_bytes: u64,
    /// Allowlists and the inline `cisleuth:allow` marker.
    pub policy: Arc<Config>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_json_bytes: 512 << 20,
            policy: Arc::new(Config::default()),
        }
    }
}

/// The line of `text` holding byte `at` (without its line break).
fn line_around(text: &[u8], at: usize) -> &[u8] {
    let start = memrchr(b'\n', &text[..at]).map_or(0, |i| i + 1);
    let end = memchr::memchr(b'\n', &text[at..]).map_or(text.len(), |i| at + i);
    &text[start..end]
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

/// Chunking state of one input's normalised text.
struct Stream {
    ansi: AnsiStripper,
    /// `text[..done]` was scanned with the previous chunk; matches ending there are reported.
    done: usize,
    /// Line number of `text[0]`.
    line_base: u64,
    /// Characters between the last line or segment start and `text[0]`.
    col_base: u64,
    /// Offset of `text[0]` in the whole normalised input.
    offset_base: u64,
}

impl Stream {
    fn new() -> Stream {
        Stream {
            ansi: AnsiStripper::default(),
            done: 0,
            line_base: 1,
            col_base: 0,
            offset_base: 0,
        }
    }
}

/// Characters (not bytes) in `bytes`; each byte of invalid UTF-8 counts as one.
fn char_count(bytes: &[u8]) -> u64 {
    String::from_utf8_lossy(bytes).chars().count() as u64
}

/// Turns ascending byte offsets of a chunk into line and column numbers without rescanning.
struct LineCounter {
    pos: usize,
    line: u64,
}

impl LineCounter {
    fn new(line_base: u64) -> LineCounter {
        LineCounter {
            pos: 0,
            line: line_base,
        }
    }

    fn at(&mut self, text: &[u8], col_base: u64, line_base: u64, pos: usize) -> (u64, u64) {
        if pos < self.pos {
            *self = LineCounter::new(line_base);
        }
        self.line += memchr_iter(b'\n', &text[self.pos..pos]).count() as u64;
        self.pos = pos;
        let col = match memrchr2(b'\n', b'\r', &text[..pos]) {
            Some(q) => char_count(&text[q + 1..pos]) + 1,
            None => col_base + char_count(&text[..pos]) + 1,
        };
        (self.line, col)
    }
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
            match self.read_json(reader, head, outcome) {
                Ok(mut step) => {
                    // Already normalised; the stripper finds nothing more to remove.
                    let text = std::mem::take(&mut step.text);
                    self.step = step;
                    self.push(&mut stream, &text, true, origin, sink);
                    return;
                }
                Err((raw, why)) => {
                    if let Some(why) = why {
                        sink.note(format!(
                            "{}: not valid CircleCI step output JSON ({why}); scanned as text",
                            origin.display_name()
                        ));
                    }
                    head = raw;
                }
            }
        }
        self.push(&mut stream, &head, outcome.error.is_some(), origin, sink);
        if outcome.error.is_some() {
            return;
        }
        loop {
            match read_some(reader, &mut self.read_buf) {
                Ok(0) => break,
                Ok(n) => {
                    outcome.bytes += n as u64;
                    let data = std::mem::take(&mut self.read_buf);
                    self.push(&mut stream, &data[..n], false, origin, sink);
                    self.read_buf = data;
                }
                Err(e) => {
                    outcome.error = Some(e);
                    break;
                }
            }
        }
        self.push(&mut stream, &[], true, origin, sink);
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

    /// Read the rest of a JSON body and decode it. On failure, give back the raw bytes read so
    /// far (the whole input unless it was over the size cap, in which case the rest is still
    /// in `reader`) and the reason, if it was a parse error.
    fn read_json(
        &mut self,
        reader: &mut dyn Read,
        mut raw: Vec<u8>,
        outcome: &mut Outcome,
    ) -> Result<StepText, (Vec<u8>, Option<String>)> {
        loop {
            if raw.len() as u64 > self.options.max_json_bytes {
                return Err((raw, None));
            }
            match read_some(reader, &mut self.read_buf) {
                Ok(0) => break,
                Ok(n) => {
                    outcome.bytes += n as u64;
                    raw.extend_from_slice(&self.read_buf[..n]);
                }
                Err(e) => {
                    outcome.error = Some(e);
                    return Err((raw, None));
                }
            }
        }
        match circleci_step_text(&raw) {
            Ok(step) => Ok(step),
            // serde's message can quote the input (a secret among it): say only what kind
            // of error and where.
            Err(e) => {
                let why = crate::terminal::json_error(&e);
                Err((raw, Some(why)))
            }
        }
    }

    /// Normalise `raw` into the stream's text and scan every complete chunk.
    fn push(
        &mut self,
        stream: &mut Stream,
        raw: &[u8],
        eof: bool,
        origin: &Arc<Origin>,
        sink: &mut dyn Sink,
    ) {
        let mut text = std::mem::take(&mut self.text);
        // Invariant between calls: the text after `done` holds no `\n` (it would have been
        // scanned), so only the newly appended bytes need searching; a long line arriving in
        // small reads stays linear.
        let mut fresh = text.len();
        stream.ansi.push(raw, &mut text);
        loop {
            let pending = &text[stream.done..];
            let search_from = fresh.max(stream.done);
            let (cut, long_line) = if eof {
                (text.len(), false)
            } else if let Some(i) = memrchr(b'\n', &text[search_from..]) {
                (search_from + i + 1, false)
            } else if pending.len() >= MAX_LINE_CHUNK {
                (stream.done + soft_cut(pending), true)
            } else {
                break;
            };
            if cut > stream.done {
                self.scan_chunk(stream, &text[..cut], origin, sink);
            }
            let keep_from = if eof {
                cut
            } else {
                self.carry_from(&text[..cut], long_line)
            };
            // Advance line and column bookkeeping past the bytes dropped from the front.
            let dropped = &text[..keep_from];
            stream.line_base += memchr_iter(b'\n', dropped).count() as u64;
            stream.col_base = match memrchr2(b'\n', b'\r', dropped) {
                Some(q) => char_count(&dropped[q + 1..]),
                None => stream.col_base + char_count(dropped),
            };
            text.drain(..keep_from);
            stream.offset_base += keep_from as u64;
            stream.done = cut - keep_from;
            fresh = text.len();
            // After a cut at the last line end nothing pending holds a `\n`; only a long line
            // may need cutting again.
            if eof || !long_line {
                break;
            }
        }
        self.text = text;
    }

    /// Where the context carried into the next chunk starts, in a chunk ending at `text.len()`.
    fn carry_from(&self, text: &[u8], long_line: bool) -> usize {
        let n = text.len();
        let mut from = n;
        if long_line {
            from = n.saturating_sub(LONG_LINE_OVERLAP);
        }
        let tail_start = n.saturating_sub(MAX_MATCH_LEN);
        if let Some(hit) = self.engine.last_multiline_keyword(&text[tail_start..]) {
            let at = tail_start + hit;
            let line_start =
                memrchr(b'\n', &text[tail_start..at]).map_or(tail_start, |i| tail_start + i + 1);
            from = from.min(line_start);
        }
        from
    }

    /// Scan `text` (a chunk whose first `stream.done` bytes were scanned before) and report.
    fn scan_chunk(
        &mut self,
        stream: &Stream,
        text: &[u8],
        origin: &Arc<Origin>,
        sink: &mut dyn Sink,
    ) {
        self.matches.clear();
        self.engine.scan(text, &mut self.scratch, &mut self.matches);
        let done = stream.done;
        self.matches.retain(|m| m.end > done);
        let mut lines = LineCounter::new(stream.line_base);
        let placed: Vec<(u64, u64)> = self
            .matches
            .iter()
            .map(|m| lines.at(text, stream.col_base, stream.line_base, m.secret_start))
            .collect();
        let pairing = self.engine.pair_up(text, &mut self.matches);
        let rules = self.engine.rules();
        for (i, m) in self.matches.iter().enumerate() {
            if pairing.consumed[i] && pairing.partner[i].is_none() {
                continue;
            }
            let secret = &text[m.secret_start..m.secret_end];
            let line = line_around(text, m.secret_start);
            if self.options.policy.allows(&rules[m.rule].id, secret, line) {
                continue;
            }
            let (line, column) = placed[i];
            let location = Location {
                origin: origin.clone(),
                line,
                column,
                stream: self
                    .step
                    .stream_at((stream.offset_base as usize) + m.secret_start),
            };
            let mut f = Finding::from_match(&rules[m.rule], m, text, location);
            f.decoded = self.layers.to_vec();
            f.span = (
                stream.offset_base + m.secret_start as u64,
                stream.offset_base + m.secret_end as u64,
            );
            if let Some(j) = pairing.partner[i] {
                let o = &self.matches[j];
                let orule = &rules[o.rule];
                let secret = text[o.secret_start..o.secret_end].to_vec();
                // The pair is a usable credential: it is as severe as its worse half.
                f.severity = f.severity.max(orule.severity);
                f.pair = Some(Box::new(Paired {
                    rule_id: orule.id.clone(),
                    fingerprint: crate::finding::fingerprint(&orule.id, &secret),
                    secret: crate::finding::Secret::new(secret),
                    line: placed[j].0,
                    column: placed[j].1,
                    redact_prefix: orule.redact_prefix,
                }));
            }
            sink.finding(f);
        }
        if self.decoders.is_active() {
            self.scan_decoded(stream, text, origin, sink);
        }
    }

    /// Run the decoders over the chunk (and over what they decode, to the depth limit) and
    /// report matches at the location of the outermost encoded run.
    ///
    /// A match is dropped when the text it was decoded from already matched the same rule
    /// with the same secret (a URL with a plain token and one escaped character elsewhere
    /// decodes to a view that holds the plain token again): each occurrence is reported once,
    /// where it can be read.
    fn scan_decoded(
        &mut self,
        stream: &Stream,
        text: &[u8],
        origin: &Arc<Origin>,
        sink: &mut dyn Sink,
    ) {
        /// Decoded bytes still to scan: where their outermost run is, how they came, and the
        /// (rule, secret) matches of the text they were decoded from.
        struct Pending {
            at: usize,
            end: usize,
            bytes: Vec<u8>,
            via: Vec<&'static str>,
            depth: usize,
            parent: Rc<Vec<(usize, Vec<u8>)>>,
        }
        let plain: Vec<(usize, usize, usize)> = self
            .matches
            .iter()
            .map(|m| (m.rule, m.secret_start, m.secret_end))
            .collect();
        let mut queue: VecDeque<Pending> = VecDeque::new();
        self.decoded.clear();
        self.decoders
            .decode(text, &mut self.classes, &mut self.decoded);
        for run in self.decoded.drain(..).filter(|run| run.end > stream.done) {
            // Plain matches inside this run are what the view must not repeat.
            let parent = plain
                .iter()
                .filter(|&&(_, s, e)| s >= run.start && e <= run.end)
                .map(|&(r, s, e)| (r, text[s..e].to_vec()))
                .collect();
            let mut via = self.layers.to_vec();
            via.extend_from_slice(run.layers);
            queue.push_back(Pending {
                at: run.start,
                end: run.end,
                bytes: run.bytes,
                via,
                depth: 1,
                parent: Rc::new(parent),
            });
        }
        queue.make_contiguous().sort_by_key(|p| p.at);
        let mut lines = LineCounter::new(stream.line_base);
        while let Some(p) = queue.pop_front() {
            self.matches.clear();
            self.engine
                .scan(&p.bytes, &mut self.scratch, &mut self.matches);
            let (line, column) = lines.at(text, stream.col_base, stream.line_base, p.at);
            let mut found: Vec<(usize, Vec<u8>)> = Vec::with_capacity(self.matches.len());
            for m in self.matches.iter_mut() {
                // A decoded view holds no partner: an identifier in it stands alone. And a
                // digest or id that came out of base64 is not a credential (unless its name
                // says which service issued it: see `evidence`).
                self.engine.alone(m);
                if !m.evidence.contains(Evidence::KEY_NAMES_SERVICE)
                    && !m.evidence.contains(Evidence::KEY_NAMES_SECRET)
                    && matches!(
                        shape(&p.bytes[m.secret_start..m.secret_end]),
                        Shape::Hex | Shape::Uuid
                    )
                {
                    m.confidence = Confidence::Low;
                    m.evidence = m.evidence.with(Evidence::DECODED_DIGEST);
                }
                let rule_id = &self.engine.rules()[m.rule].id;
                let secret = &p.bytes[m.secret_start..m.secret_end];
                // All matches of a view are reported at one place: the same secret twice in
                // it is one finding.
                if found.iter().any(|(r, s)| *r == m.rule && s == secret) {
                    continue;
                }
                found.push((m.rule, secret.to_vec()));
                if p.parent.iter().any(|(r, s)| *r == m.rule && s == secret)
                    || self
                        .options
                        .policy
                        .allows(rule_id, secret, line_around(text, p.at))
                {
                    continue;
                }
                let location = Location {
                    origin: origin.clone(),
                    line,
                    column,
                    stream: self.step.stream_at((stream.offset_base as usize) + p.at),
                };
                let mut f =
                    Finding::from_match(&self.engine.rules()[m.rule], m, &p.bytes, location);
                f.decoded = p.via.clone();
                f.span = (
                    stream.offset_base + p.at as u64,
                    stream.offset_base + p.end as u64,
                );
                sink.finding(f);
            }
            if p.depth < self.decoders.max_depth {
                let found = Rc::new(found);
                self.decoded.clear();
                self.decoders
                    .decode(&p.bytes, &mut self.classes, &mut self.decoded);
                for run in self.decoded.drain(..) {
                    let mut via = p.via.clone();
                    via.extend_from_slice(run.layers);
                    queue.push_back(Pending {
                        at: p.at,
                        end: p.end,
                        bytes: run.bytes,
                        via,
                        depth: p.depth + 1,
                        parent: found.clone(),
                    });
                }
            }
        }
    }
}

/// Where to cut a line too long to scan whole: after the last delimiter (a byte that cannot be
/// inside a token) in its final `LONG_LINE_OVERLAP` bytes, or at the end if there is none.
fn soft_cut(pending: &[u8]) -> usize {
    let n = pending.len();
    let lo = n.saturating_sub(LONG_LINE_OVERLAP);
    pending[lo..]
        .iter()
        .rposition(|&b| {
            matches!(
                b,
                b' ' | b'\t' | b',' | b';' | b'"' | b'\'' | b'\r' | b'<' | b'>'
            )
        })
        .map_or(n, |i| lo + i + 1)
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
    fn inline_allow_and_allowlist_drop_findings() {
        let input = format!("a {GH} # cisleuth:allow\nb {GH}\n");
        let found = summary(&scan(input.as_bytes()));
        assert_eq!(found, vec![("github-pat".into(), GH.into(), 2, 3)]);
        let cfg = Config::parse("[[allow]]\nline = '^b '", std::path::Path::new("c.toml")).unwrap();
        let engine = engine();
        let decoders = Decoders::none();
        let options = Options {
            policy: Arc::new(cfg),
            ..Options::default()
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
