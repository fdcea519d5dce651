//! Finding assembly for one chunk: run the engine, pair what pairs (AWS key id and secret),
//! apply policy, place each match (line, column, stream) and hand findings to the sink, then
//! queue the decoded views.

use std::sync::Arc;

use super::chunk::Stream;
use super::lines::{line_around, LineCounter};
use super::{Scanner, Sink};
use crate::finding::{Finding, Location, Paired};
use crate::source::origin::Origin;

impl<'e> Scanner<'e> {
    /// Scan `text` (a chunk whose first `stream.done` bytes were scanned before) and report.
    pub(super) fn scan_chunk(
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
}
