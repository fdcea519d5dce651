//! CircleCI step-output JSON, recognised from an input's first bytes and decoded as it streams
//! in ([`StepDecoder`]): the messages go to the chunker like any text, so a step of any size,
//! and a message that is one 50 MB line, is cut and scanned in bounded memory. Each message's
//! stream (`out`/`err`) is known when its element ends; the text of elements already ended is
//! pushed with its stream, an element longer than a chunk is pushed before its end (with the
//! stream of the one before). A body that stops being step JSON (or ends early) keeps what was
//! decoded, and the rest is scanned as text, with a note that never quotes the input.

use std::io::Read;
use std::sync::Arc;

use super::chunk::{Stream, MAX_LINE_CHUNK};
use super::{read_some, Outcome, Scanner, Sink};
use crate::normalise::StepDecoder;
use crate::source::origin::Origin;

/// Stream segments kept behind the scanned text before old ones are dropped.
const MAX_SEGMENTS: usize = 1024;

impl<'e> Scanner<'e> {
    /// Decode and scan the rest of a step JSON body whose first bytes are `head`.
    pub(super) fn scan_step_json(
        &mut self,
        reader: &mut dyn Read,
        head: Vec<u8>,
        stream: &mut Stream,
        outcome: &mut Outcome,
        origin: &Arc<Origin>,
        sink: &mut dyn Sink,
    ) {
        let mut decoder = StepDecoder::new();
        let mut text = Vec::new();
        let mut ends = Vec::new();
        let mut data = head;
        loop {
            if let Err(e) = decoder.feed(&data, &mut text, &mut ends) {
                self.step_elements(stream, &mut text, &mut ends, true, origin, sink);
                sink.note(format!(
                    "{}: not valid CircleCI step output JSON ({e}); the rest scanned as text",
                    origin.display_name()
                ));
                // The bytes from the offending one on, then the rest of the input, as text.
                let seen = outcome.bytes - data.len() as u64;
                let from = (e.at.saturating_sub(seen) as usize).min(data.len());
                self.push(stream, &data[from..], false, origin, sink);
                self.scan_rest(reader, stream, outcome, origin, sink);
                return;
            }
            self.step_elements(stream, &mut text, &mut ends, false, origin, sink);
            match read_some(reader, &mut self.read_buf) {
                Ok(0) => break,
                Ok(n) => {
                    outcome.bytes += n as u64;
                    data.clear();
                    data.extend_from_slice(&self.read_buf[..n]);
                }
                Err(e) => {
                    outcome.error = Some(e);
                    break;
                }
            }
        }
        let ended = decoder.finish(&mut text);
        self.step_elements(stream, &mut text, &mut ends, true, origin, sink);
        if let (Err(e), None) = (ended, &outcome.error) {
            sink.note(format!(
                "{}: not valid CircleCI step output JSON ({e}); what it held was scanned",
                origin.display_name()
            ));
        }
        self.push(stream, &[], true, origin, sink);
    }

    /// Push the text of the elements that ended (each with its stream), and of the open one
    /// too if it is longer than a chunk or `all` is set.
    fn step_elements(
        &mut self,
        stream: &mut Stream,
        text: &mut Vec<u8>,
        ends: &mut Vec<(usize, Option<&'static str>)>,
        all: bool,
        origin: &Arc<Origin>,
        sink: &mut dyn Sink,
    ) {
        let mut start = 0;
        for &(end, kind) in ends.iter() {
            self.step_segment(stream, kind);
            self.push(stream, &text[start..end], false, origin, sink);
            start = end;
        }
        ends.clear();
        if all || text.len() - start >= MAX_LINE_CHUNK {
            let kind = self.step.segments.last().and_then(|s| s.1);
            self.step_segment(stream, kind);
            self.push(stream, &text[start..], false, origin, sink);
            start = text.len();
        }
        text.drain(..start);
    }

    /// The next text pushed is of stream `kind`.
    fn step_segment(&mut self, stream: &Stream, kind: Option<&'static str>) {
        let segments = &mut self.step.segments;
        if segments.last().map(|s| s.1) == Some(kind) {
            return;
        }
        // Offsets in the whole normalised input: the pending text follows `offset_base`.
        let at = stream.offset_base as usize + self.text.len();
        segments.push((at, kind));
        if segments.len() > MAX_SEGMENTS {
            // Findings are only reported from the text not yet dropped: segments that end
            // before it are never asked about again.
            let keep = segments.partition_point(|&(s, _)| s <= stream.offset_base as usize);
            segments.drain(..keep.saturating_sub(1));
        }
    }
}
