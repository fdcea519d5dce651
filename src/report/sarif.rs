//! SARIF 2.1.0 (GitHub code scanning and other SARIF viewers). Results are written as they
//! arrive and the rules that produced them at the end (JSON key order does not matter to SARIF
//! consumers), so a large scan is not held in memory. Secrets never go into SARIF.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde_json::{json, Value};

use super::{Report, Summary};
use crate::finding::Finding;
use crate::rules::{Rule, Severity};
use crate::source::origin::Origin;

/// What a report needs to know of a rule beyond the finding.
#[derive(Clone, Debug)]
pub struct RuleInfo {
    pub id: String,
    pub name: String,
    pub description: String,
    pub remediation: String,
    pub severity: Severity,
    pub confidence: String,
}

impl RuleInfo {
    pub fn of(rules: &[Rule]) -> BTreeMap<String, RuleInfo> {
        rules
            .iter()
            .map(|r| {
                (
                    r.id.clone(),
                    RuleInfo {
                        id: r.id.clone(),
                        name: r.name.clone(),
                        description: r.description.clone(),
                        remediation: r.remediation.clone(),
                        severity: r.severity,
                        confidence: r.confidence.to_string(),
                    },
                )
            })
            .collect()
    }
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "note",
    }
}

/// GitHub's `security-severity` (CVSS-like 0-10) for its severity buckets.
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
    }
}

/// Where a finding is, as a SARIF artifact URI: the file path, or the CircleCI job URL.
fn uri(f: &Finding) -> String {
    match f.location.origin.as_ref() {
        Origin::File { path } => path.trim_start_matches("./").to_string(),
        Origin::Stdin => "stdin".to_string(),
        Origin::CircleCi(p) => p.url.clone(),
    }
}

/// Everything before the first result.
const SARIF_HEAD: &[u8] =
    b"{\"$schema\":\"https://json.schemastore.org/sarif-2.1.0.json\",\"version\":\"2.1.0\",\"runs\":[{\"results\":[\n";

/// SARIF 2.1.0.
pub struct Sarif<W: Write + Send> {
    out: W,
    rules: BTreeMap<String, RuleInfo>,
    seen: Vec<String>,
    count: u64,
}

impl<W: Write + Send> Sarif<W> {
    pub fn new(out: W, rules: BTreeMap<String, RuleInfo>) -> Self {
        Sarif {
            out,
            rules,
            seen: Vec::new(),
            count: 0,
        }
    }

    fn rule_index(&mut self, id: &str) -> usize {
        match self.seen.iter().position(|r| r == id) {
            Some(i) => i,
            None => {
                self.seen.push(id.to_string());
                self.seen.len() - 1
            }
        }
    }
}

impl<W: Write + Send> Report for Sarif<W> {
    fn finding(&mut self, f: &Finding) -> io::Result<()> {
        let index = self.rule_index(&f.rule_id);
        let mut props = json!({ "confidence": f.confidence, "entropy": (f.entropy as f64 * 1000.0).round() / 1000.0 });
        if let Some(c) = f.checksum_valid {
            props["checksum_valid"] = json!(c);
        }
        if let Origin::CircleCi(p) = f.location.origin.as_ref() {
            props["circleci"] = serde_json::to_value(p).unwrap_or(Value::Null);
        }
        let result = json!({
            "ruleId": f.rule_id,
            "ruleIndex": index,
            "level": level(f.severity),
            "message": { "text": format!("{} leaked: {}. {}", f.rule_name, f.redacted(), f.remediation) },
            "locations": [{
                "physicalLocation": {
                    "artifactLocation": { "uri": uri(f) },
                    "region": { "startLine": f.location.line, "startColumn": f.location.column }
                }
            }],
            "partialFingerprints": { "cisleuthFingerprint/v1": f.fingerprint },
            "properties": props,
        });
        self.out
            .write_all(if self.count == 0 { SARIF_HEAD } else { b",\n" })?;
        self.count += 1;
        serde_json::to_writer(&mut self.out, &result)?;
        Ok(())
    }

    fn finish(&mut self, _: &Summary) -> io::Result<()> {
        if self.count == 0 {
            self.out.write_all(SARIF_HEAD)?;
        }
        let rules: Vec<Value> = self
            .seen
            .iter()
            .map(|id| match self.rules.get(id) {
                Some(r) => json!({
                    "id": r.id,
                    "name": r.name,
                    "shortDescription": { "text": r.name },
                    "fullDescription": { "text": r.description },
                    "help": {
                        "text": r.remediation,
                        "markdown": format!("**{}**\n\n{}\n\n**Remediation:** {}", r.name, r.description, r.remediation)
                    },
                    "defaultConfiguration": { "level": level(r.severity) },
                    "properties": {
                        "tags": ["security", "secret"],
                        "precision": match r.confidence.as_str() { "high" => "high", "medium" => "medium", _ => "low" },
                        "security-severity": security_severity(r.severity)
                    }
                }),
                None => json!({ "id": id }),
            })
            .collect();
        let driver = json!({
            "name": "cisleuth",
            "version": env!("CARGO_PKG_VERSION"),
            "semanticVersion": env!("CARGO_PKG_VERSION"),
            "rules": rules,
        });
        self.out.write_all(b"\n],\"tool\":{\"driver\":")?;
        serde_json::to_writer(&mut self.out, &driver)?;
        self.out.write_all(b"}}]}\n")?;
        self.out.flush()
    }

    fn durable_per_finding(&self) -> bool {
        false
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
