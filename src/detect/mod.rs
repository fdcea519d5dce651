//! The detection engine: keyword prefilter, windowed regex confirmation, then filters.
//!
//! CI logs are mostly noise with a keyword every few hundred bytes (`key`, `token`, `secret`
//! are everywhere), so the prefilter is cheap and the confirmation stage decides the speed.
//! The engine therefore never runs a rule's regex over the whole input:
//!
//! 1. One Aho-Corasick DFA over every rule's keywords (ASCII case-insensitive, overlapping
//!    matches, so a keyword inside another keyword, `key` in `api_key`, still triggers its
//!    rules: a prefilter must have zero false negatives).
//! 2. Each keyword hit opens a window for the rules that own the keyword: the line around the
//!    hit (a `\n` or `\r` ends it), clipped to [`WINDOW_BEFORE`] / [`WINDOW_AFTER`] bytes, or for
//!    `multiline` rules (PEM blocks) up to [`MULTILINE_WINDOW`] bytes forward. Windows of one
//!    rule that touch are merged, so a regex runs at most once over any byte per rule.
//! 3. The regex (`regex::bytes`, Unicode off) runs inside the window only, with the bytes
//!    before the window still visible to `\b`.
//! 4. Filters drop what is not a credential: the rule's `min_entropy` on the `secret` group,
//!    masked and placeholder values ([`placeholder`]), the rule's allowlist and `ignore_after`
//!    contexts; checksums are verified where the format has one.
//! 5. The evidence model ([`evidence`]) gives each match a confidence: from the rule and its
//!    checksum, or for assignment-shaped rules from the key name, where it stands and the
//!    value's shape. Pairing ([`Engine::pair_up`]) folds an AWS key id and its secret into one
//!    match and lowers an identifier found alone.
//!
//! [`Engine`] is built once and is `Send + Sync`; each thread brings its own [`Scratch`].

pub mod check;
pub mod checksum;
pub mod evidence;
pub mod placeholder;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use memchr::{memchr2, memrchr2};
use regex::bytes::CaptureLocations;

use crate::rules::{Confidence, Rule};
use evidence::{Assignment, Evidence};

/// Bytes before a keyword hit (on the same line) that a window may start at.
pub const WINDOW_BEFORE: usize = 512;
/// Bytes after a keyword hit (on the same line) that a window may reach.
pub const WINDOW_AFTER: usize = 1024;
/// Forward reach of a window for `multiline` rules (a 4096-bit RSA PEM is about 3.3 KiB).
pub const MULTILINE_WINDOW: usize = 16 * 1024;
/// The longest match any rule can report: a chunked stream keeps at least this much context.
pub const MAX_MATCH_LEN: usize = MULTILINE_WINDOW + WINDOW_BEFORE;

/// A confirmed match of one rule in a haystack.
#[derive(Clone, Debug, PartialEq)]
pub struct Match {
    /// Index of the rule in [`Engine::rules`].
    pub rule: usize,
    /// Span of the whole regex match.
    pub start: usize,
    pub end: usize,
    /// Span of the `secret` group.
    pub secret_start: usize,
    pub secret_end: usize,
    /// Shannon entropy of the secret, bits per byte.
    pub entropy: f32,
    /// `Some` for rules with an offline checksum.
    pub checksum_valid: Option<bool>,
    /// How sure the evidence makes this match.
    pub confidence: Confidence,
    /// The features that decided `confidence`.
    pub evidence: Evidence,
}

/// Which matches pair up ([`Engine::pair_up`]).
#[derive(Debug, Default)]
pub struct Pairing {
    /// Per match: the index of the partner folded into it.
    pub partner: Vec<Option<usize>>,
    /// Per match: folded into another match, not reported alone.
    pub consumed: Vec<bool>,
}

/// Per-thread reusable buffers.
pub struct Scratch {
    /// Open window per rule (start, end), merged as hits arrive.
    open: Vec<Option<(usize, usize)>>,
    /// Rules with an open window, to close without a pass over every rule.
    touched: Vec<usize>,
    windows: Vec<(usize, usize, usize)>,
    /// Per rule, made when the rule first runs (its regex compiles then).
    locs: Vec<Option<CaptureLocations>>,
}

/// Compiled rules and the keyword automaton. Shared by all threads.
pub struct Engine {
    rules: Vec<Rule>,
    ac: AhoCorasick,
    /// Automaton pattern id to the rules it triggers (its own, and those of every keyword
    /// that occurs inside it).
    triggers: Vec<Vec<usize>>,
    /// Keywords of `multiline` rules only: where a chunked stream must keep context.
    multiline_ac: Option<AhoCorasick>,
    /// Per rule: the rule it pairs with and the line distance.
    pairs: Vec<Option<(usize, u32)>>,
}

impl Engine {
    /// Build the automaton over `rules`' keywords.
    pub fn new(rules: Vec<Rule>) -> anyhow::Result<Engine> {
        let mut keywords: Vec<String> = rules.iter().flat_map(|r| r.keywords.clone()).collect();
        keywords.sort();
        keywords.dedup();
        let triggers = keywords
            .iter()
            .map(|kw| {
                let mut ids: Vec<usize> = rules
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.keywords.iter().any(|k| kw.contains(k.as_str())))
                    .map(|(i, _)| i)
                    .collect();
                ids.dedup();
                ids
            })
            .collect();
        let ac = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&keywords)
            .map_err(|e| anyhow::anyhow!("cannot build keyword automaton: {e}"))?;
        let multiline: Vec<&String> = rules
            .iter()
            .filter(|r| r.multiline)
            .flat_map(|r| r.keywords.iter())
            .collect();
        let multiline_ac = if multiline.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    .build(&multiline)
                    .map_err(|e| anyhow::anyhow!("cannot build keyword automaton: {e}"))?,
            )
        };
        let pairs = rules
            .iter()
            .map(|r| {
                r.pair.as_ref().and_then(|p| {
                    rules
                        .iter()
                        .position(|o| o.id == p.rule)
                        .map(|i| (i, p.within_lines))
                })
            })
            .collect();
        Ok(Engine {
            rules,
            ac,
            triggers,
            multiline_ac,
            pairs,
        })
    }

    /// Start of the last keyword of a multi-line rule in `hay`, if any.
    pub fn last_multiline_keyword(&self, hay: &[u8]) -> Option<usize> {
        self.multiline_ac
            .as_ref()?
            .find_iter(hay)
            .last()
            .map(|m| m.start())
    }

    /// The rules, in the order match indices refer to.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Fresh per-thread buffers for [`Engine::scan`].
    pub fn scratch(&self) -> Scratch {
        Scratch {
            open: vec![None; self.rules.len()],
            touched: Vec::new(),
            windows: Vec::new(),
            locs: vec![None; self.rules.len()],
        }
    }

    /// Find every match in `hay`, appending them to `out` in order of position.
    pub fn scan(&self, hay: &[u8], scratch: &mut Scratch, out: &mut Vec<Match>) {
        let first = out.len();
        self.collect_windows(hay, scratch);
        let Scratch { windows, locs, .. } = scratch;
        for &(rule_idx, wstart, wend) in windows.iter() {
            let locs = locs[rule_idx]
                .get_or_insert_with(|| self.rules[rule_idx].regex.get().capture_locations());
            self.confirm(rule_idx, hay, wstart, wend, locs, out);
        }
        let found = &mut out[first..];
        found.sort_unstable_by_key(|m| (m.secret_start, m.rule, m.secret_end));
        // Windows of one rule can still overlap when a hit's window starts before an earlier
        // one; the same match found twice is reported once.
        let mut kept = first;
        for i in first..out.len() {
            if kept > first {
                let prev = &out[kept - 1];
                let cur = &out[i];
                if prev.rule == cur.rule && prev.secret_start == cur.secret_start {
                    continue;
                }
            }
            out.swap(kept, i);
            kept += 1;
        }
        out.truncate(kept);
        self.drop_shadowed(out, first);
    }

    /// Drop matches of generic rules whose secret overlaps a specific rule's secret.
    fn drop_shadowed(&self, out: &mut Vec<Match>, first: usize) {
        let found = &out[first..];
        if !found.iter().any(|m| self.rules[m.rule].generic) {
            return;
        }
        let specific: Vec<(usize, usize)> = found
            .iter()
            .filter(|m| !self.rules[m.rule].generic)
            .map(|m| (m.secret_start, m.secret_end))
            .collect();
        if specific.is_empty() {
            return;
        }
        let mut i = first;
        out.retain(|m| {
            let keep = i < first
                || !self.rules[m.rule].generic
                || !specific
                    .iter()
                    .any(|&(s, e)| m.secret_start < e && s < m.secret_end);
            i += 1;
            keep
        });
    }

    fn collect_windows(&self, hay: &[u8], scratch: &mut Scratch) {
        let Scratch {
            open,
            touched,
            windows,
            ..
        } = scratch;
        windows.clear();
        for m in self.ac.find_overlapping_iter(hay) {
            for &rule_idx in &self.triggers[m.pattern().as_usize()] {
                let (ws, we) = self.window(rule_idx, hay, m.start(), m.end());
                match &mut open[rule_idx] {
                    Some((os, oe)) if ws <= *oe && we >= *os => {
                        *os = (*os).min(ws);
                        *oe = (*oe).max(we);
                    }
                    slot => {
                        match slot.take() {
                            Some((os, oe)) => windows.push((rule_idx, os, oe)),
                            None => touched.push(rule_idx),
                        }
                        *slot = Some((ws, we));
                    }
                }
            }
        }
        // Only the rules this haystack triggered (matches are sorted afterwards, so their
        // order does not matter here).
        for rule_idx in touched.drain(..) {
            if let Some((s, e)) = open[rule_idx].take() {
                windows.push((rule_idx, s, e));
            }
        }
    }

    fn window(&self, rule_idx: usize, hay: &[u8], start: usize, end: usize) -> (usize, usize) {
        let lo = start.saturating_sub(WINDOW_BEFORE);
        let ws = memrchr2(b'\n', b'\r', &hay[lo..start]).map_or(lo, |i| lo + i + 1);
        let we = if self.rules[rule_idx].multiline {
            (end + MULTILINE_WINDOW).min(hay.len())
        } else {
            let hi = (end + WINDOW_AFTER).min(hay.len());
            memchr2(b'\n', b'\r', &hay[end..hi]).map_or(hi, |i| end + i)
        };
        (ws, we)
    }

    fn confirm(
        &self,
        rule_idx: usize,
        hay: &[u8],
        wstart: usize,
        wend: usize,
        locs: &mut CaptureLocations,
        out: &mut Vec<Match>,
    ) {
        let rule = &self.rules[rule_idx];
        // The haystack ends at the window, but starts at 0 so that `\b` and look-behind at the
        // window's start see the real preceding byte.
        let hay = &hay[..wend];
        let mut at = wstart;
        while at <= wend {
            let Some(m) = rule.regex.get().captures_read_at(locs, hay, at) else {
                break;
            };
            at = if m.end() > m.start() {
                m.end()
            } else {
                m.end() + 1
            };
            let Some((ss, se)) = locs.get(rule.secret_group) else {
                continue;
            };
            if let Some(found) = self.accept(rule_idx, hay, m.start(), m.end(), ss, se, locs) {
                out.push(found);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn accept(
        &self,
        rule_idx: usize,
        hay: &[u8],
        start: usize,
        end: usize,
        ss: usize,
        se: usize,
        locs: &CaptureLocations,
    ) -> Option<Match> {
        let rule = &self.rules[rule_idx];
        let secret = &hay[ss..se];
        if secret.is_empty() || placeholder::is_placeholder(secret) {
            return None;
        }
        let entropy = entropy::shannon_entropy(secret);
        if rule.min_entropy.is_some_and(|min| entropy < min) {
            return None;
        }
        if rule.allowlist.iter().any(|re| re.is_match(secret)) {
            return None;
        }
        let line_start = |at: usize| {
            let lo = at.saturating_sub(WINDOW_BEFORE);
            memrchr2(b'\n', b'\r', &hay[lo..at]).map_or(lo, |i| lo + i + 1)
        };
        if !rule.ignore_after.is_empty() {
            let before = &hay[line_start(ss)..ss];
            if rule.ignore_after.iter().any(|re| re.is_match(before)) {
                return None;
            }
        }
        let checksum_valid = rule.checksum.map(|c| checksum::verify(c, secret));
        let (confidence, evidence) = match rule.key_groups {
            Some((k, s)) => {
                let (ks, ke) = locs.get(k)?;
                let (sep_s, sep_e) = locs.get(s)?;
                evidence::assess_assignment(&Assignment {
                    before: &hay[line_start(ks)..ks],
                    key: &hay[ks..ke],
                    sep: &hay[sep_s..sep_e],
                    value: secret,
                })?
            }
            None if rule.generic => evidence::assess_generic_value(rule.confidence, secret)?,
            None => evidence::assess_format(rule.confidence, checksum_valid),
        };
        Some(Match {
            rule: rule_idx,
            start,
            end,
            secret_start: ss,
            secret_end: se,
            entropy,
            checksum_valid,
            confidence,
            evidence,
        })
    }

    /// Fold each match of a rule with `pair` together with the nearest match of its partner
    /// rule within the rule's line distance in `hay` (`matches` in order of position, as
    /// [`Engine::scan`] leaves them). A pair is as sure as its surer half; a match of a rule
    /// with `unpaired_confidence` and no partner gets that confidence.
    pub fn pair_up(&self, hay: &[u8], matches: &mut [Match]) -> Pairing {
        let n = matches.len();
        let mut pairing = Pairing {
            partner: vec![None; n],
            consumed: vec![false; n],
        };
        if !matches.iter().any(|m| self.pairs[m.rule].is_some()) {
            return pairing;
        }
        // Line index of each match, counted once in position order.
        let mut lines = Vec::with_capacity(n);
        let (mut pos, mut line) = (0usize, 0u64);
        for m in matches.iter() {
            let at = m.secret_start.max(pos);
            line += memchr::memchr_iter(b'\n', &hay[pos..at]).count() as u64;
            pos = at;
            lines.push(line);
        }
        for i in 0..n {
            let Some((other, within)) = self.pairs[matches[i].rule] else {
                continue;
            };
            let best = (0..n)
                .filter(|&j| matches[j].rule == other && !pairing.consumed[j])
                .map(|j| (j, lines[i].abs_diff(lines[j])))
                .filter(|&(_, d)| d <= within as u64)
                .min_by_key(|&(j, d)| (d, j));
            match best {
                Some((j, _)) => {
                    pairing.consumed[j] = true;
                    pairing.partner[i] = Some(j);
                    let (c, e) = (matches[j].confidence, matches[j].evidence);
                    let m = &mut matches[i];
                    m.confidence = m.confidence.max(c);
                    m.evidence = m.evidence.with(e).with(Evidence::PAIRED);
                }
                None => self.alone(&mut matches[i]),
            }
        }
        pairing
    }

    /// A match of a paired rule seen without its partner (in a decoded view every match is).
    pub fn alone(&self, m: &mut Match) {
        if let Some(c) = self.rules[m.rule].unpaired_confidence {
            m.confidence = m.confidence.min(c);
            m.evidence = m.evidence.with(Evidence::UNPAIRED);
        }
    }
}

/// The engine is shared by reference across rayon workers.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Engine>();
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::parse_file;

    fn engine(toml: &str) -> Engine {
        Engine::new(parse_file(toml, "test").unwrap()).unwrap()
    }

    const RULES: &str = r#"
[[rules]]
id = "short-key"
name = "k"
description = "d"
keywords = ["key"]
regex = '\bkey=(?P<secret>[a-z0-9]{12})\b'
severity = "low"
confidence = "low"
remediation = "r"
examples = [{ text = "key=abcdef123456", secret = "abcdef123456" }]
negative_examples = ["key=abc"]

[[rules]]
id = "api-key"
name = "a"
description = "d"
keywords = ["api_key"]
regex = '\bapi_key: (?P<secret>[A-Z0-9]{10})\b'
severity = "high"
confidence = "high"
remediation = "r"
examples = [{ text = "api_key: ABCDEFGH12", secret = "ABCDEFGH12" }]
negative_examples = ["api_key: x"]

[[rules]]
id = "pem"
name = "p"
description = "d"
keywords = ["-----begin"]
regex = '(?s)(?P<secret>-----BEGIN KEY-----.+?-----END KEY-----)'
severity = "high"
confidence = "high"
remediation = "r"
multiline = true
examples = [{ text = "-----BEGIN KEY-----\nAAAA\n-----END KEY-----", secret = "-----BEGIN KEY-----\nAAAA\n-----END KEY-----" }]
negative_examples = ["-----BEGIN KEY-----"]
"#;

    fn secrets(e: &Engine, hay: &[u8]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        e.scan(hay, &mut e.scratch(), &mut out);
        out.iter()
            .map(|m| {
                (
                    e.rules()[m.rule].id.clone(),
                    String::from_utf8_lossy(&hay[m.secret_start..m.secret_end]).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn keyword_inside_a_longer_keyword_still_triggers() {
        // `api_key` and `key` overlap: the `key` rule must still see its window.
        let e = engine(RULES);
        let found = secrets(&e, b"x api_key=zzzz key=abcdef123456\n");
        assert_eq!(found, vec![("short-key".into(), "abcdef123456".into())]);
        let found = secrets(&e, b"api_key: ABCDEFGH12\n");
        assert_eq!(found, vec![("api-key".into(), "ABCDEFGH12".into())]);
    }

    #[test]
    fn keywords_are_case_insensitive_and_windows_stop_at_line_ends() {
        let e = engine(RULES);
        assert_eq!(secrets(&e, b"KEY\nkey=abcdef123456").len(), 1);
        // The keyword is on another line than the value: no window covers the value.
        let e2 = engine(&RULES.replace(r"\bkey=", r"\bkey\s*=\s*"));
        assert!(secrets(&e2, b"key\n=abcdef123456").is_empty());
        assert!(secrets(&e2, b"key\r=abcdef123456").is_empty());
    }

    #[test]
    fn word_boundary_sees_bytes_before_the_window() {
        let e = engine(RULES);
        // `xkey=` is not a `\bkey=`, even though the window starts right at the keyword's line.
        assert!(secrets(&e, b"xkey=abcdef123456").is_empty());
    }

    #[test]
    fn multiline_rules_reach_past_line_ends() {
        let e = engine(RULES);
        let found = secrets(
            &e,
            b"log\n-----BEGIN KEY-----\nAB\nCD\n-----END KEY-----\nmore",
        );
        assert_eq!(found.len(), 1);
        assert!(found[0].1.ends_with("END KEY-----"));
    }

    #[test]
    fn repeated_hits_report_each_match_once() {
        let e = engine(RULES);
        let line = b"key key key=abcdef123456 key key=123456abcdef key\n";
        let found = secrets(&e, line);
        assert_eq!(
            found,
            vec![
                ("short-key".into(), "abcdef123456".into()),
                ("short-key".into(), "123456abcdef".into())
            ]
        );
    }

    #[test]
    fn invalid_utf8_is_fine() {
        let e = engine(RULES);
        let mut hay = vec![0xff, 0xfe, b' '];
        hay.extend_from_slice(b"key=abcdef123456 \xc3\x28\n");
        assert_eq!(secrets(&e, &hay).len(), 1);
    }
}
