//! Baselines: the fingerprints of findings a team has already seen (and rotated, or accepted),
//! so a pre-merge gate fails only on new leaks.
//!
//! A baseline is JSON: `{"version": 1, "findings": [{"fingerprint", "rule_id", "redacted"}]}`,
//! sorted by fingerprint so that it diffs well in review. It holds no secret: fingerprints are
//! SHA-256 and `redacted` shows at most a prefix and four characters. Because fingerprints do
//! not depend on where a secret was printed, a baselined secret stays baselined when it moves.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub fingerprint: String,
    pub rule_id: String,
    pub redacted: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: u32,
    findings: Vec<Entry>,
}

/// Known fingerprints.
#[derive(Debug, Default)]
pub struct Baseline {
    fingerprints: HashSet<String>,
}

impl Baseline {
    pub fn load(path: &Path) -> Result<Baseline> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read baseline {}", path.display()))?;
        let f: File = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a cisleuth baseline", path.display()))?;
        if f.version != 1 {
            bail!(
                "{}: baseline version {} is not supported (1 is)",
                path.display(),
                f.version
            );
        }
        Ok(Baseline {
            fingerprints: f.findings.into_iter().map(|e| e.fingerprint).collect(),
        })
    }

    pub fn contains(&self, fingerprint: &str) -> bool {
        self.fingerprints.contains(fingerprint)
    }

    pub fn len(&self) -> usize {
        self.fingerprints.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fingerprints.is_empty()
    }
}

/// Build a baseline from a JSONL report: one entry per fingerprint. Lines that are not
/// findings are an error naming the line (a baseline made from the wrong file would silence
/// nothing, or everything).
pub fn from_jsonl(text: &str, origin: &str) -> Result<String> {
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("{origin}:{}: not JSON", n + 1))?;
        let field = |k: &str| {
            v.get(k)
                .and_then(|x| x.as_str())
                .map(str::to_string)
                .with_context(|| format!("{origin}:{}: not a cisleuth finding (no {k:?})", n + 1))
        };
        let fp = field("fingerprint")?;
        entries.entry(fp.clone()).or_insert(Entry {
            fingerprint: fp,
            rule_id: field("rule_id")?,
            redacted: field("redacted")?,
        });
    }
    let file = File {
        version: 1,
        findings: entries.into_values().collect(),
    };
    Ok(serde_json::to_string_pretty(&file)? + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_dedup() {
        let report = concat!(
            r#"{"fingerprint":"bb","rule_id":"github-pat","redacted":"ghp_…1234","secret":"x"}"#,
            "\n",
            r#"{"fingerprint":"aa","rule_id":"npm-access-token","redacted":"npm_…9999"}"#,
            "\n",
            r#"{"fingerprint":"bb","rule_id":"github-pat","redacted":"ghp_…1234"}"#,
            "\n",
        );
        let text = from_jsonl(report, "r.jsonl").unwrap();
        assert!(!text.contains("\"secret\""), "no secret in a baseline");
        let dir = tempfile::TempDir::new().unwrap();
        let p = dir.path().join("b.json");
        std::fs::write(&p, &text).unwrap();
        let b = Baseline::load(&p).unwrap();
        assert_eq!(b.len(), 2);
        assert!(b.contains("aa") && b.contains("bb") && !b.contains("cc"));
        assert!(
            text.find("\"aa\"").unwrap() < text.find("\"bb\"").unwrap(),
            "sorted"
        );
    }

    #[test]
    fn refuses_what_is_not_a_report_or_baseline() {
        assert!(format!("{:#}", from_jsonl("{\"a\":1}\n", "r").unwrap_err())
            .contains("r:1: not a cisleuth finding"));
        assert!(format!("{:#}", from_jsonl("nope\n", "r").unwrap_err()).contains("not JSON"));
        let dir = tempfile::TempDir::new().unwrap();
        let p = dir.path().join("b.json");
        std::fs::write(&p, r#"{"version":2,"findings":[]}"#).unwrap();
        assert!(format!("{:#}", Baseline::load(&p).unwrap_err()).contains("version 2"));
    }
}
