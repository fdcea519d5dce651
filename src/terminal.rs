//! What reaches a terminal. Server messages, file names inside archives and ticket ids are
//! text an attacker can choose; printed raw, an escape sequence clears the screen, sets the
//! window title or hides a line, a bidi override reorders what the user reads, and a newline
//! splits a one-line error into a forged second line. Everything cisleuth prints on stderr
//! goes through [`escape`] first, and a JSON parse error is described by [`json_error`]
//! (kind and position) rather than serde's text, which can quote the input.

use std::borrow::Cow;

/// Whether `c` must not reach a terminal raw: C0 controls and DEL (tab excepted; line feed
/// unless `keep_newlines`), C1 controls, and the bidi embedding, override and isolate marks.
fn unsafe_char(c: char, keep_newlines: bool) -> bool {
    match c {
        '\t' => false,
        '\n' => !keep_newlines,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' => true,
        _ => false,
    }
}

/// `s` with every unsafe character written as `\x1b` / `\u{202e}` (line feeds kept when
/// `keep_newlines`: a TOML or regex error's caret is on its own line).
pub fn escape(s: &str, keep_newlines: bool) -> Cow<'_, str> {
    if !s.chars().any(|c| unsafe_char(c, keep_newlines)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !unsafe_char(c, keep_newlines) {
            out.push(c);
        } else if (c as u32) < 0x100 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

/// One line for stderr: every control character escaped, line feeds included.
pub fn line(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// What went wrong parsing JSON, without serde's quote of the input (a server's answer or a
/// step's output can hold a secret, and this text goes to stderr): the kind of error and where.
pub fn json_error(e: &serde_json::Error) -> String {
    let kind = match e.classify() {
        serde_json::error::Category::Io => "read",
        serde_json::error::Category::Syntax => "syntax",
        serde_json::error::Category::Data => "shape",
        serde_json::error::Category::Eof => "unexpected end",
    };
    format!("{kind} error at line {} column {}", e.line(), e.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_a_terminal_acts_on() {
        assert_eq!(line("plain text: ok"), "plain text: ok");
        assert_eq!(line("a\x1b]0;pwned\x07b"), "a\\x1b]0;pwned\\x07b");
        assert_eq!(line("one\nforged: line"), "one\\x0aforged: line");
        assert_eq!(line("\u{202e}gol.exe"), "\\u{202e}gol.exe");
        assert_eq!(line("\u{9b}2J"), "\\x9b2J");
        assert_eq!(line("tab\tkept, ünïcödé kept"), "tab\tkept, ünïcödé kept");
        assert_eq!(escape("caret\n  ^ here\r", true), "caret\n  ^ here\\x0d");
    }
}
