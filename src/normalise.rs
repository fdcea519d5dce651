//! Turn raw CI output into the text a person reads, before any rule sees it.
//!
//! Peers miss keys in CI logs for two reasons this module removes:
//!
//! - **Terminal escapes.** `\x1b[32mAKIA...\x1b[0m` puts `m` right before the key, so a
//!   `\b`-anchored rule sees no word boundary. [`AnsiStripper`] deletes CSI (`ESC [ ... final`),
//!   OSC (`ESC ] ... BEL` or `ESC \`), and two- and three-byte ESC sequences. It is streaming: a
//!   sequence cut between two reads is still removed. An OSC that never ends is closed at the
//!   next line break, so a malicious `ESC ]` cannot hide the rest of a log from the scanner.
//! - **CircleCI step output JSON.** `output_url` serves `[{"message": ..., "time": ...,
//!   "type": "out"|"err"}]` (API reference 4.3); in the raw body newlines are `\r\n` escapes
//!   and colours are `\u001B`. [`StepDecoder`] decodes that shape as it streams in (a step of
//!   any size, a message of any length, in bounded memory) into the joined, unescaped
//!   messages and which stream each came from; lines are then counted within them.
//!
//! Carriage returns are kept: a lone `\r` (a progress-bar redraw) ends a match window like a
//! line break does (see `detect`), and columns restart after it, as on a terminal; line numbers
//! count `\n` only, so they agree with an editor and with CircleCI's line view.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Text,
    /// Saw ESC.
    Esc,
    /// Inside `ESC [`: parameters and intermediates until a final byte.
    Csi,
    /// Inside `ESC ]` (also DCS, SOS, PM, APC): until BEL or `ESC \`.
    Osc,
    /// Saw ESC inside an OSC string.
    OscEsc,
    /// `ESC (` and friends: one more byte (a charset designator).
    Charset,
}

/// Longest OSC string kept hidden; past this the bytes are treated as text again.
const MAX_OSC: usize = 4096;

/// A streaming remover of terminal escape sequences.
#[derive(Clone, Debug)]
pub struct AnsiStripper {
    state: State,
    osc_len: usize,
}

impl Default for AnsiStripper {
    fn default() -> Self {
        AnsiStripper {
            state: State::Text,
            osc_len: 0,
        }
    }
}

impl AnsiStripper {
    /// Append `input` without escape sequences to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        out.reserve(input.len());
        while i < input.len() {
            if self.state == State::Text {
                match memchr::memchr(0x1b, &input[i..]) {
                    None => {
                        out.extend_from_slice(&input[i..]);
                        return;
                    }
                    Some(off) => {
                        out.extend_from_slice(&input[i..i + off]);
                        i += off + 1;
                        self.state = State::Esc;
                        continue;
                    }
                }
            }
            let b = input[i];
            i += 1;
            self.state = match self.state {
                State::Text => unreachable!("handled above"),
                State::Esc => match b {
                    b'[' => State::Csi,
                    b']' | b'P' | b'X' | b'^' | b'_' => {
                        self.osc_len = 0;
                        State::Osc
                    }
                    b'(' | b')' | b'*' | b'+' | b'-' | b'.' | b'/' | b'#' | b'%' => State::Charset,
                    0x1b => State::Esc,
                    // A two-byte sequence (ESC 7, ESC =, ESC M, ...). Control bytes are not part
                    // of it: keep them (a line break must never disappear).
                    0x20..=0x7e => State::Text,
                    _ => {
                        out.push(b);
                        State::Text
                    }
                },
                State::Csi => match b {
                    // Parameter (0x30-0x3f) and intermediate (0x20-0x2f) bytes.
                    0x20..=0x3f => State::Csi,
                    0x40..=0x7e => State::Text,
                    0x1b => State::Esc,
                    // Malformed: give the byte back as text.
                    _ => {
                        out.push(b);
                        State::Text
                    }
                },
                State::Osc => match b {
                    0x07 => State::Text,
                    0x1b => State::OscEsc,
                    b'\n' | b'\r' => {
                        out.push(b);
                        State::Text
                    }
                    _ => {
                        self.osc_len += 1;
                        if self.osc_len > MAX_OSC {
                            State::Text
                        } else {
                            State::Osc
                        }
                    }
                },
                State::OscEsc => match b {
                    b'\\' => State::Text,
                    b'\n' | b'\r' => {
                        out.push(b);
                        State::Text
                    }
                    _ => State::Osc,
                },
                State::Charset => State::Text,
            };
        }
    }
}

/// Strip escape sequences from a complete buffer.
pub fn strip_ansi(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    AnsiStripper::default().push(input, &mut out);
    out
}

/// Whether `head` (the first bytes of an input) starts like a CircleCI step output array.
pub fn looks_like_step_json(head: &[u8]) -> bool {
    let mut it = head
        .iter()
        .copied()
        .skip_while(|b| b.is_ascii_whitespace() || *b == 0xef || *b == 0xbb || *b == 0xbf);
    if it.next() != Some(b'[') {
        return false;
    }
    let mut rest = it.skip_while(u8::is_ascii_whitespace);
    match rest.next() {
        Some(b']') => true,
        Some(b'{') => {
            let tail: Vec<u8> = rest.take(256).collect();
            memchr::memmem::find(&tail, b"\"message\"").is_some()
                || memchr::memmem::find(&tail, b"\"type\"").is_some()
                || memchr::memmem::find(&tail, b"\"time\"").is_some()
        }
        _ => false,
    }
}

/// A decoded step output: the joined messages with escape sequences removed, and where each
/// message starts in that text with its stream (`out`, `err`, or `None` if untyped).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StepText {
    pub text: Vec<u8>,
    pub segments: Vec<(usize, Option<&'static str>)>,
}

impl StepText {
    /// The stream of the message that holds byte `offset` of `text`.
    pub fn stream_at(&self, offset: usize) -> Option<&'static str> {
        let i = self.segments.partition_point(|&(start, _)| start <= offset);
        i.checked_sub(1).and_then(|i| self.segments[i].1)
    }
}

/// Decode a whole CircleCI step output body into its joined, normalised messages, or say why
/// it is not one (the scanner streams instead, through [`StepDecoder`]).
pub fn circleci_step_text(body: &[u8]) -> Result<StepText, StepError> {
    let mut decoder = StepDecoder::new();
    let mut raw = Vec::with_capacity(body.len());
    let mut ends = Vec::new();
    decoder.feed(body, &mut raw, &mut ends)?;
    decoder.finish(&mut raw)?;
    let mut out = StepText {
        text: Vec::with_capacity(raw.len()),
        segments: Vec::with_capacity(ends.len()),
    };
    // One stripper for the whole stream: a sequence split across two messages is removed.
    let mut ansi = AnsiStripper::default();
    let mut start = 0;
    for (end, kind) in ends {
        if out.segments.last().map(|s| s.1) != Some(kind) {
            out.segments.push((out.text.len(), kind));
        }
        ansi.push(&raw[start..end], &mut out.text);
        start = end;
    }
    Ok(out)
}

/// A streaming decoder of CircleCI step output JSON (`[{"message": "...", "type": "out",
/// ...}, ...]`): bytes go in as they arrive, the decoded `message` strings come out, and each
/// element's end is marked with its stream. It holds a few bytes of state, never a message,
/// so a 50 MB step (or a 500 MB one, or a message of a single 50 MB line) costs no memory.
///
/// It is lenient where leniency loses nothing (invalid UTF-8 and raw control characters inside
/// strings pass through, a lone surrogate escape becomes U+FFFD) and strict about structure:
/// anything that is not an array of objects is an error, so text that merely starts with
/// `[{"message"` is handed back to be scanned as text.
#[derive(Debug, Default)]
pub struct StepDecoder {
    /// Open arrays (`true`) and objects (`false`), outermost first.
    stack: Vec<bool>,
    /// What the next token may be.
    expect: Expect,
    lex: Lex,
    /// What the string being read is: a key of an element, the `message` or `type` value, or
    /// something else (skipped).
    role: Role,
    /// The string being read is a key (of any object).
    in_key: bool,
    /// The key of the element's value being read (only the first bytes are kept).
    key: Vec<u8>,
    /// The element's `type` value (only the first bytes are kept).
    kind: Vec<u8>,
    /// `\uXXXX`: digits so far, and a high surrogate waiting for its low half.
    hex: (u8, u32),
    high: Option<u32>,
    /// Bytes consumed in all, for error offsets.
    pos: u64,
    done: bool,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Expect {
    #[default]
    Start,
    Value,
    /// A value or the end of the array just opened.
    ValueOrEnd,
    /// A key or the end of the object just opened.
    KeyOrEnd,
    Key,
    Colon,
    CommaOrEnd,
    Nothing,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Lex {
    #[default]
    Between,
    Str,
    Escape,
    Unicode,
    /// A number, `true`, `false` or `null`.
    Literal,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Role {
    #[default]
    Other,
    Key,
    Message,
    Type,
}

/// Why a body is not CircleCI step output, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepError {
    /// Offset of the offending byte in the whole body.
    pub at: u64,
    pub what: &'static str,
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.what, self.at)
    }
}

/// Arrays and objects nested deeper than this are an error (as in serde_json).
const MAX_NESTING: usize = 128;

impl StepDecoder {
    pub fn new() -> StepDecoder {
        StepDecoder::default()
    }

    /// Decode `input`, the next bytes of the body: message bytes are appended to `text`, and
    /// at the end of each element `(text.len(), stream)` is pushed to `ends`. On an error,
    /// nothing more may be fed; `Err.at` says where the body stopped making sense.
    pub fn feed(
        &mut self,
        input: &[u8],
        text: &mut Vec<u8>,
        ends: &mut Vec<(usize, Option<&'static str>)>,
    ) -> Result<(), StepError> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.lex {
                Lex::Str => {
                    // The bulk of a body: copy a run of plain string bytes at once.
                    let run = input[i..]
                        .iter()
                        .position(|&c| c == b'"' || c == b'\\')
                        .unwrap_or(input.len() - i);
                    if run > 0 {
                        self.flush_high(text);
                        self.string_bytes(&input[i..i + run], text);
                        i += run;
                        continue;
                    }
                    if b == b'"' {
                        self.flush_high(text);
                        self.lex = Lex::Between;
                        self.string_end().map_err(|what| self.error(i, what))?;
                    } else {
                        self.lex = Lex::Escape;
                    }
                }
                Lex::Escape => {
                    let c = match b {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 8,
                        b'f' => 12,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'u' => {
                            self.lex = Lex::Unicode;
                            self.hex = (0, 0);
                            i += 1;
                            continue;
                        }
                        _ => return Err(self.error(i, "invalid escape")),
                    };
                    self.flush_high(text);
                    self.string_bytes(&[c], text);
                    self.lex = Lex::Str;
                }
                Lex::Unicode => {
                    let d = (b as char)
                        .to_digit(16)
                        .ok_or_else(|| self.error(i, "invalid \\u escape"))?;
                    self.hex = (self.hex.0 + 1, self.hex.1 * 16 + d);
                    if self.hex.0 == 4 {
                        self.unicode(self.hex.1, text);
                        self.lex = Lex::Str;
                    }
                }
                Lex::Literal => {
                    if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-') {
                        i += 1;
                        continue;
                    }
                    self.lex = Lex::Between;
                    self.value_done();
                    continue;
                }
                Lex::Between => {
                    if b.is_ascii_whitespace() {
                        i += 1;
                        continue;
                    }
                    self.token(b, text.len(), ends)
                        .map_err(|what| self.error(i, what))?;
                }
            }
            i += 1;
        }
        self.pos += input.len() as u64;
        Ok(())
    }

    /// The body ended: an error unless the array was closed.
    pub fn finish(&mut self, text: &mut Vec<u8>) -> Result<(), StepError> {
        self.flush_high(text);
        if self.done {
            Ok(())
        } else {
            Err(StepError {
                at: self.pos,
                what: "the body ended before the JSON did",
            })
        }
    }

    fn error(&self, i: usize, what: &'static str) -> StepError {
        StepError {
            at: self.pos + i as u64,
            what,
        }
    }

    /// Depth 1 is the top array, depth 2 an element object.
    fn in_element(&self) -> bool {
        self.stack.len() == 2
    }

    fn string_bytes(&mut self, bytes: &[u8], text: &mut Vec<u8>) {
        match self.role {
            Role::Message => text.extend_from_slice(bytes),
            Role::Key if self.key.len() < 16 => {
                let room = 16 - self.key.len();
                self.key.extend_from_slice(&bytes[..bytes.len().min(room)]);
            }
            Role::Type if self.kind.len() < 8 => {
                let room = 8 - self.kind.len();
                self.kind.extend_from_slice(&bytes[..bytes.len().min(room)]);
            }
            _ => {}
        }
    }

    fn flush_high(&mut self, text: &mut Vec<u8>) {
        if self.high.take().is_some() {
            self.string_bytes("\u{fffd}".as_bytes(), text);
        }
    }

    fn unicode(&mut self, u: u32, text: &mut Vec<u8>) {
        let c = match (self.high.take(), u) {
            (Some(h), 0xDC00..=0xDFFF) => {
                char::from_u32(0x10000 + ((h - 0xD800) << 10) + (u - 0xDC00))
            }
            (h, 0xD800..=0xDBFF) => {
                if h.is_some() {
                    self.string_bytes("\u{fffd}".as_bytes(), text);
                }
                self.high = Some(u);
                return;
            }
            (h, _) => {
                if h.is_some() {
                    self.string_bytes("\u{fffd}".as_bytes(), text);
                }
                char::from_u32(u)
            }
        };
        let mut buf = [0u8; 4];
        let s = c.unwrap_or('\u{fffd}').encode_utf8(&mut buf);
        self.string_bytes(s.as_bytes(), text);
    }

    /// A value finished: what may follow.
    fn value_done(&mut self) {
        self.expect = if self.stack.is_empty() {
            self.done = true;
            Expect::Nothing
        } else {
            Expect::CommaOrEnd
        };
        self.role = Role::Other;
    }

    fn string_end(&mut self) -> Result<(), &'static str> {
        if self.in_key {
            self.in_key = false;
            self.role = Role::Other;
            self.expect = Expect::Colon;
            return Ok(());
        }
        self.value_done();
        Ok(())
    }

    fn token(
        &mut self,
        b: u8,
        text_len: usize,
        ends: &mut Vec<(usize, Option<&'static str>)>,
    ) -> Result<(), &'static str> {
        match self.expect {
            Expect::Nothing => Err("trailing characters"),
            Expect::Start => match b {
                // A byte-order mark before the array.
                0xef | 0xbb | 0xbf if self.pos < 3 => Ok(()),
                b'[' => {
                    self.stack.push(true);
                    self.expect = Expect::ValueOrEnd;
                    Ok(())
                }
                _ => Err("not a JSON array"),
            },
            Expect::Colon => {
                if b != b':' {
                    return Err("expected `:`");
                }
                self.expect = Expect::Value;
                Ok(())
            }
            Expect::Key | Expect::KeyOrEnd => match b {
                b'"' => {
                    self.in_key = true;
                    if self.in_element() {
                        self.key.clear();
                        self.role = Role::Key;
                    } else {
                        self.role = Role::Other;
                    }
                    self.lex = Lex::Str;
                    Ok(())
                }
                b'}' if self.expect == Expect::KeyOrEnd => self.close(false, text_len, ends),
                _ => Err("expected a key"),
            },
            Expect::CommaOrEnd => match b {
                b',' => {
                    self.expect = if self.stack.last() == Some(&true) {
                        Expect::Value
                    } else {
                        Expect::Key
                    };
                    Ok(())
                }
                b']' => self.close(true, text_len, ends),
                b'}' => self.close(false, text_len, ends),
                _ => Err("expected `,` or the end of a list"),
            },
            Expect::Value | Expect::ValueOrEnd => {
                if b == b']' && self.expect == Expect::ValueOrEnd {
                    return self.close(true, text_len, ends);
                }
                // The top array holds objects only; inside an element, `message` and `type`
                // are strings (or null).
                let top = self.stack.len() == 1;
                if top && b != b'{' {
                    return Err("an element that is not an object");
                }
                let field = if self.in_element() {
                    match self.key.as_slice() {
                        b"message" => Role::Message,
                        b"type" => Role::Type,
                        _ => Role::Other,
                    }
                } else {
                    Role::Other
                };
                match b {
                    b'"' => {
                        if field == Role::Type {
                            self.kind.clear();
                        }
                        self.role = field;
                        self.lex = Lex::Str;
                        Ok(())
                    }
                    b'{' | b'[' => {
                        if field != Role::Other {
                            return Err("a message or type that is not a string");
                        }
                        if self.stack.len() >= MAX_NESTING {
                            return Err("nested too deep");
                        }
                        if top {
                            self.kind.clear();
                        }
                        self.stack.push(b == b'[');
                        self.expect = if b == b'[' {
                            Expect::ValueOrEnd
                        } else {
                            Expect::KeyOrEnd
                        };
                        Ok(())
                    }
                    b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
                        if field != Role::Other && b != b'n' {
                            return Err("a message or type that is not a string");
                        }
                        self.lex = Lex::Literal;
                        Ok(())
                    }
                    _ => Err("expected a value"),
                }
            }
        }
    }

    fn close(
        &mut self,
        array: bool,
        text_len: usize,
        ends: &mut Vec<(usize, Option<&'static str>)>,
    ) -> Result<(), &'static str> {
        if self.stack.last() != Some(&array) {
            return Err("mismatched bracket");
        }
        if !array && self.in_element() {
            let kind = match self.kind.as_slice() {
                b"out" => Some("out"),
                b"err" => Some("err"),
                _ => None,
            };
            ends.push((text_len, kind));
        }
        self.stack.pop();
        self.value_done();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_csi_osc_and_short_sequences() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"\x1b[32mAKIA\x1b[0m done", b"AKIA done"),
            (b"\x1b[1;31;48;5;200mred\x1b[K\x1b[2J", b"red"),
            (b"a\x1b]0;title\x07b", b"ab"),
            (b"a\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\b", b"alinkb"),
            (b"\x1b(Bplain\x1b7saved\x1b8", b"plainsaved"),
            (b"no escapes\r\nhere", b"no escapes\r\nhere"),
            (b"\x1b[?25lhidden cursor\x1b[?25h", b"hidden cursor"),
        ];
        for (input, want) in cases {
            assert_eq!(
                strip_ansi(input),
                *want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn sequences_split_across_pushes_are_removed() {
        let input = b"x\x1b[38;5;208mkey\x1b]0;t\x07y\x1b[0m";
        for cut in 0..input.len() {
            let mut s = AnsiStripper::default();
            let mut out = Vec::new();
            s.push(&input[..cut], &mut out);
            s.push(&input[cut..], &mut out);
            assert_eq!(out, b"xkeyy", "cut at {cut}");
        }
    }

    #[test]
    fn unterminated_osc_cannot_hide_later_lines() {
        let out = strip_ansi(b"\x1b]0;never ends\nghp_token on next line\n");
        assert_eq!(out, b"\nghp_token on next line\n");
        let mut long = b"\x1b]".to_vec();
        long.extend(std::iter::repeat_n(b'a', MAX_OSC + 10));
        long.extend_from_slice(b"TAIL");
        assert!(strip_ansi(&long).ends_with(b"TAIL"));
    }

    #[test]
    fn malformed_csi_keeps_control_bytes() {
        assert_eq!(strip_ansi(b"a\x1b[12\nb"), b"a\nb");
        assert_eq!(strip_ansi(b"a\x1b\nb"), b"a\nb");
    }

    /// The decoder against serde_json on the same bodies, fed whole and cut at every byte.
    #[test]
    fn step_decoder_agrees_with_serde_at_every_cut() {
        let bodies: &[&[u8]] = &[
            br#"[{"message":"a\"b\\c\/d\b\f\n\r\t","type":"out"},{"type":"err","message":"x"}]"#,
            "[{\"message\":\"caf\\u00e9 \\ud83d\\ude00 \\u001B[0m\",\"time\":\"t\",\"type\":\"out\",\"truncated\":false}]".as_bytes(),
            br#" [ { "nested" : {"message":"not me","type":"err"}, "list":[1,-2.5e3,true,null,{"a":[]}], "message" : "me" } , {"message":null,"type":"out"} ] "#,
            b"\xef\xbb\xbf[{\"message\":\"after a BOM\"}]",
            br#"[]"#,
            br#"[{}]"#,
        ];
        for body in bodies {
            let want: Vec<serde_json::Value> =
                serde_json::from_slice(body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body)).unwrap();
            let want_text: String = want
                .iter()
                .filter_map(|v| v.get("message").and_then(|m| m.as_str()))
                .collect();
            for cut in 0..=body.len() {
                let mut d = StepDecoder::new();
                let (mut text, mut ends) = (Vec::new(), Vec::new());
                d.feed(&body[..cut], &mut text, &mut ends)
                    .and_then(|_| d.feed(&body[cut..], &mut text, &mut ends))
                    .unwrap_or_else(|e| {
                        panic!("{}: cut {cut}: {e}", String::from_utf8_lossy(body))
                    });
                d.finish(&mut text).unwrap();
                assert_eq!(String::from_utf8(text).unwrap(), want_text, "cut {cut}");
                assert_eq!(ends.len(), want.len());
                for (e, v) in ends.iter().zip(&want) {
                    let kind = v.get("type").and_then(|t| t.as_str());
                    assert_eq!(e.1, kind.filter(|k| *k == "out" || *k == "err"));
                }
            }
        }
    }

    #[test]
    fn step_decoder_errors_say_where() {
        let cases: &[(&[u8], u64)] = &[
            (b"{\"message\":\"x\"}", 0),
            (b"[{\"message\":\"x\"}] tail", 18),
            (b"[1]", 1),
            (b"[{\"message\":5}]", 12),
            (b"[{\"message\":\"bad \\q\"}]", 18),
            (b"[{\"message\":\"x\"]", 15),
            (b"[{\"message\":\"cut", 16),
        ];
        for &(body, at) in cases {
            let mut d = StepDecoder::new();
            let (mut text, mut ends) = (Vec::new(), Vec::new());
            let e = d
                .feed(body, &mut text, &mut ends)
                .and_then(|_| d.finish(&mut text))
                .unwrap_err();
            assert_eq!(e.at, at, "{:?}: {e}", String::from_utf8_lossy(body));
        }
        // Nesting has a limit (no stack growth on hostile input).
        let deep = format!("[{{\"a\":{}", "[".repeat(1000));
        let mut d = StepDecoder::new();
        let e = d
            .feed(deep.as_bytes(), &mut Vec::new(), &mut Vec::new())
            .unwrap_err();
        assert_eq!(e.what, "nested too deep");
        // Lone surrogates and invalid UTF-8 pass through as what a person sees.
        let mut d = StepDecoder::new();
        let mut text = Vec::new();
        d.feed(
            b"[{\"message\":\"a\\ud800b\xffc\"}]",
            &mut text,
            &mut Vec::new(),
        )
        .unwrap();
        assert_eq!(text, b"a\xef\xbf\xbdb\xffc");
    }

    #[test]
    fn step_json_is_recognised_and_joined() {
        let body = br#"[{"message":"line one\r\n\u001B[32mgreen\u001B[0m\r\n","time":"2022-08-17T20:18:30.944Z","type":"out"},
 {"message":"\nExited with code exit status 1\n","time":"2022-08-17T20:18:31.007Z","type":"err","truncated":false}]"#;
        assert!(looks_like_step_json(body));
        let st = circleci_step_text(body).unwrap();
        assert_eq!(
            st.text,
            b"line one\r\ngreen\r\n\nExited with code exit status 1\n"
        );
        assert_eq!(st.segments, vec![(0, Some("out")), (17, Some("err"))]);
        assert_eq!(st.stream_at(0), Some("out"));
        assert_eq!(st.stream_at(16), Some("out"));
        assert_eq!(st.stream_at(17), Some("err"));
        assert!(looks_like_step_json(b"  []"));
        assert!(!looks_like_step_json(b"[1, 2]"));
        assert!(!looks_like_step_json(b"plain log [INFO]"));
        assert!(circleci_step_text(b"[{\"message\": \"cut").is_err());
    }
}
