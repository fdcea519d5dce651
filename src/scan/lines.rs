//! Line and column bookkeeping: 1-based lines counting `\n`, columns counting characters
//! since the last `\n` or `\r` (a redraw restarts the column, not the line).

use memchr::{memchr_iter, memrchr, memrchr2};

/// The line of `text` holding byte `at` (without its line break).
pub(super) fn line_around(text: &[u8], at: usize) -> &[u8] {
    let start = memrchr(b'\n', &text[..at]).map_or(0, |i| i + 1);
    let end = memchr::memchr(b'\n', &text[at..]).map_or(text.len(), |i| at + i);
    &text[start..end]
}

/// Characters (not bytes) in `bytes`; each byte of invalid UTF-8 counts as one.
pub(super) fn char_count(bytes: &[u8]) -> u64 {
    String::from_utf8_lossy(bytes).chars().count() as u64
}

/// Turns ascending byte offsets of a chunk into line and column numbers without rescanning.
pub(super) struct LineCounter {
    pub(super) pos: usize,
    pub(super) line: u64,
}

impl LineCounter {
    pub(super) fn new(line_base: u64) -> LineCounter {
        LineCounter {
            pos: 0,
            line: line_base,
        }
    }

    pub(super) fn at(
        &mut self,
        text: &[u8],
        col_base: u64,
        line_base: u64,
        pos: usize,
    ) -> (u64, u64) {
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
