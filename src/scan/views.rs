//! Decoded views: encoded runs (base64, hex, URL, escapes, UTF-16 fragments, gzip in base64)
//! are decoded and scanned again, to `--max-decode-depth`, each finding reported at the
//! place of the encoded run in the text a person reads.

use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;

use super::chunk::Stream;
use super::lines::{line_around, LineCounter};
use super::{Scanner, Sink};
use crate::detect::evidence::{shape, Evidence, Shape};
use crate::finding::{Finding, Location};
use crate::rules::Confidence;
use crate::source::origin::Origin;

impl<'e> Scanner<'e> {
    /// Run the decoders over the chunk (and over what they decode, to the depth limit) and
    /// report matches at the location of the outermost encoded run.
    ///
    /// A match is dropped when the text it was decoded from already matched the same rule
    /// with the same secret (a URL with a plain token and one escaped character elsewhere
    /// decodes to a view that holds the plain token again): each occurrence is reported once,
    /// where it can be read.
    pub(super) fn scan_decoded(
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
