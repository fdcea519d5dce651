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
//!   and colours are `\u001B`. [`circleci_step_text`] recognises that shape and returns the
//!   joined, unescaped messages and which stream each came from; lines are then counted
//!   within them.
//!
//! Carriage returns are kept: a lone `\r` (a progress-bar redraw) ends a match window like a
//! line break does (see `detect`), and columns restart after it, as on a terminal; line numbers
//! count `\n` only, so they agree with an editor and with CircleCI's line view.

use serde::Deserialize;

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

/// One element of a CircleCI step output array. Unknown fields (`truncated`, newer
/// additions) are ignored; a missing `message` is empty.
#[derive(Deserialize)]
struct StepMessage {
    message: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
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
/// it is not one.
pub fn circleci_step_text(body: &[u8]) -> Result<StepText, serde_json::Error> {
    let body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    let messages: Vec<StepMessage> = serde_json::from_slice(body)?;
    let mut out = StepText {
        text: Vec::with_capacity(body.len()),
        segments: Vec::with_capacity(messages.len()),
    };
    // One stripper for the whole stream: a sequence split across two messages is removed.
    let mut ansi = AnsiStripper::default();
    for m in messages {
        let kind = match m.kind.as_deref() {
            Some("out") => Some("out"),
            Some("err") => Some("err"),
            _ => None,
        };
        if out.segments.last().map(|s| s.1) != Some(kind) {
            out.segments.push((out.text.len(), kind));
        }
        if let Some(text) = m.message {
            ansi.push(text.as_bytes(), &mut out.text);
        }
    }
    Ok(out)
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
