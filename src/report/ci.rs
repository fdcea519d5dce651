//! Reports for CI systems: SARIF 2.1.0 (GitHub code scanning), CSV, JUnit XML.
//!
//! SARIF results are written as they arrive and the rules that produced them at the end (JSON
//! key order does not matter to SARIF consumers), so a large scan is not held in memory.
//! JUnit needs its counts in the opening tag, so it keeps the (small) per-finding records
//! until the end.

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

/// One CSV field, quoted when it needs to be (RFC 4180).
pub(crate) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// CSV with a header row; one finding per row.
pub struct Csv<W: Write + Send> {
    out: W,
    show_secrets: bool,
    header: bool,
}

impl<W: Write + Send> Csv<W> {
    pub fn new(out: W, show_secrets: bool) -> Self {
        Csv {
            out,
            show_secrets,
            header: false,
        }
    }

    fn header(&mut self) -> io::Result<()> {
        if !self.header {
            self.header = true;
            let mut cols = vec!["rule_id", "rule_name", "severity", "confidence", "redacted"];
            if self.show_secrets {
                cols.push("secret");
            }
            cols.extend(["fingerprint", "source", "where", "line", "column", "url"]);
            writeln!(self.out, "{}", cols.join(","))?;
        }
        Ok(())
    }
}

impl<W: Write + Send> Report for Csv<W> {
    fn finding(&mut self, f: &Finding) -> io::Result<()> {
        self.header()?;
        let (source, place, url) = match f.location.origin.as_ref() {
            Origin::File { path } => ("file", path.clone(), String::new()),
            Origin::Stdin => ("stdin", String::new(), String::new()),
            Origin::CircleCi(p) => ("circleci", f.location.origin.display_name(), p.url.clone()),
        };
        let mut row = vec![
            f.rule_id.clone(),
            f.rule_name.clone(),
            f.severity.to_string(),
            f.confidence.to_string(),
            f.redacted(),
        ];
        if self.show_secrets {
            row.push(String::from_utf8_lossy(f.secret.expose()).into_owned());
        }
        row.extend([
            f.fingerprint.clone(),
            source.to_string(),
            place,
            f.location.line.to_string(),
            f.location.column.to_string(),
            url,
        ]);
        let row: Vec<String> = row.iter().map(|c| csv_field(c)).collect();
        writeln!(self.out, "{}", row.join(","))
    }

    fn finish(&mut self, _: &Summary) -> io::Result<()> {
        self.header()?;
        self.out.flush()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

fn xml(s: &str) -> String {
    s.chars()
        .filter(|&c| c == '\t' || c == '\n' || c == '\r' || c >= ' ')
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&apos;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// JUnit XML: one failing test case per finding (secrets always redacted), or one passing case
/// when the scan is clean, so CI test-report views show the result.
pub struct Junit<W: Write + Send> {
    out: W,
    cases: Vec<String>,
}

impl<W: Write + Send> Junit<W> {
    pub fn new(out: W) -> Self {
        Junit {
            out,
            cases: Vec::new(),
        }
    }
}

impl<W: Write + Send> Report for Junit<W> {
    fn finding(&mut self, f: &Finding) -> io::Result<()> {
        let place = format!(
            "{}:{}:{}",
            f.location.origin.display_name(),
            f.location.line,
            f.location.column
        );
        self.cases.push(format!(
            "  <testcase classname=\"cisleuth.{}\" name=\"{}\">\n    <failure type=\"{}\" message=\"{} leaked: {}\">{}&#10;fingerprint {}&#10;{}</failure>\n  </testcase>\n",
            xml(&f.rule_id),
            xml(&place),
            xml(&f.severity.to_string()),
            xml(&f.rule_name),
            xml(&f.redacted()),
            xml(&place),
            xml(&f.fingerprint),
            xml(&f.remediation),
        ));
        Ok(())
    }

    fn finish(&mut self, summary: &Summary) -> io::Result<()> {
        writeln!(self.out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>")?;
        let failures = self.cases.len();
        let tests = failures.max(1);
        writeln!(
            self.out,
            "<testsuites tests=\"{tests}\" failures=\"{failures}\">\n<testsuite name=\"cisleuth\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{}\" time=\"{:.3}\">",
            summary.errors, summary.elapsed_secs
        )?;
        if self.cases.is_empty() {
            writeln!(
                self.out,
                "  <testcase classname=\"cisleuth\" name=\"no leaked secrets\"/>"
            )?;
        }
        for c in &self.cases {
            self.out.write_all(c.as_bytes())?;
        }
        writeln!(self.out, "</testsuite>\n</testsuites>")?;
        self.out.flush()
    }

    fn durable_per_finding(&self) -> bool {
        false
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }

    #[test]
    fn xml_escaping() {
        assert_eq!(xml("a<b & \"c\"\u{1b}"), "a&lt;b &amp; &quot;c&quot;");
    }
}
