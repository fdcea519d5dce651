//! The streaming chunker: text is scanned in chunks cut at line ends, carrying only what a
//! multi-line match may still need (see the module doc of [`crate::scan`]). The most delicate
//! invariant in the crate: the same findings whatever the chunking
//! (`chunking_does_not_change_findings`).

use std::sync::Arc;

use memchr::{memchr_iter, memrchr, memrchr2};

use super::lines::char_count;
use super::{Scanner, Sink};
use crate::detect::MAX_MATCH_LEN;
use crate::normalise::AnsiStripper;
use crate::source::origin::Origin;

/// Longest run without a line break scanned as one piece; longer lines are cut.
pub const MAX_LINE_CHUNK: usize = 4 << 20;

/// Context kept when a long line is cut (longer than any single-line match).
const LONG_LINE_OVERLAP: usize = 8 * 1024;

/// Chunking state of one input's normalised text.
pub(super) struct Stream {
    pub(super) ansi: AnsiStripper,
    /// `text[..done]` was scanned with the previous chunk; matches ending there are reported.
    pub(super) done: usize,
    /// Line number of `text[0]`.
    pub(super) line_base: u64,
    /// Characters between the last line or segment start and `text[0]`.
    pub(super) col_base: u64,
    /// Offset of `text[0]` in the whole normalised input.
    pub(super) offset_base: u64,
}

impl Stream {
    pub(super) fn new() -> Stream {
        Stream {
            ansi: AnsiStripper::default(),
            done: 0,
            line_base: 1,
            col_base: 0,
            offset_base: 0,
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

impl<'e> Scanner<'e> {
    /// Normalise `raw` into the stream's text and scan every complete chunk.
    pub(super) fn push(
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
    pub(super) fn carry_from(&self, text: &[u8], long_line: bool) -> usize {
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
}
