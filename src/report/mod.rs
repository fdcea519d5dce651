//! Report sinks: each format is a [`Report`] that receives findings one at a time and a
//! summary at the end, so output streams and formats are interchangeable and testable against
//! a `Vec<u8>`. Redaction happens here and only here: a finding carries the raw secret and a
//! report shows it only when built with `show_secrets`.
//!
//! The JSONL and JSON shapes are a public contract documented in `docs/OUTPUT.md` and
//! `docs/finding.schema.json`; changing them is a breaking change.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::{json, Value};

use crate::finding::{redact, Finding};
use crate::rules::Severity;

/// Totals of a scan, printed on stderr and included in the JSON document.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Inputs scanned (files, stdin).
    pub inputs: u64,
    /// Raw bytes read.
    pub bytes: u64,
    pub elapsed_secs: f64,
    pub findings: u64,
    /// Inputs that could not be read completely.
    pub errors: u64,
    /// Inputs not scanned (over `--max-file-size` or `--max-artifact-size`).
    pub skipped: u64,
    /// Executables and images, recognised by content and not scanned (by design: this does
    /// not make the scan incomplete).
    #[serde(skip_serializing_if = "is_zero")]
    pub not_scanned: u64,
    /// CircleCI jobs fetched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jobs: Option<u64>,
    /// CircleCI jobs skipped because the resume state says they were finished.
    #[serde(skip_serializing_if = "is_zero")]
    pub jobs_already_scanned: u64,
    /// Findings not printed because an earlier run with the same state reported them.
    #[serde(skip_serializing_if = "is_zero")]
    pub previously_reported: u64,
    /// HTTP requests made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    /// Findings suppressed by `--baseline`.
    #[serde(skip_serializing_if = "is_zero")]
    pub baselined: u64,
    /// Findings below `--min-confidence`: not reported, kept nowhere, not counted in the
    /// exit code.
    #[serde(skip_serializing_if = "is_zero")]
    pub below_confidence: u64,
    /// Findings (reported now or by an earlier run) at or above `--fail-on`: these decide the
    /// exit code.
    #[serde(skip)]
    pub failing: u64,
    /// The output could not be written (or its reader went away): the scan stopped and its
    /// exit code is 2 whatever was found.
    #[serde(skip)]
    pub output_failed: bool,
    /// What policy (`.cisleuth.toml`, `--config`, inline allows) removed from the scan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<crate::config::PolicyEffect>,
    /// Stopped by Ctrl-C or SIGTERM: incomplete.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Summary {
    /// Throughput in MiB/s.
    pub fn mib_per_sec(&self) -> f64 {
        if self.elapsed_secs <= 0.0 {
            return 0.0;
        }
        self.bytes as f64 / 1048576.0 / self.elapsed_secs
    }

    /// The one-line summary printed on stderr.
    pub fn line(&self) -> String {
        let jobs = match self.jobs {
            Some(j) => format!(" from {j} job{}", if j == 1 { "" } else { "s" }),
            None => String::new(),
        };
        let mut s = format!(
            "scanned {} input{}{jobs} ({:.1} MiB) in {:.2} s ({:.1} MiB/s): {} finding{}",
            self.inputs,
            if self.inputs == 1 { "" } else { "s" },
            self.bytes as f64 / 1048576.0,
            self.elapsed_secs,
            self.mib_per_sec(),
            self.findings,
            if self.findings == 1 { "" } else { "s" },
        );
        if self.errors > 0 {
            s.push_str(&format!(
                ", {} error(s): the scan is incomplete",
                self.errors
            ));
        }
        if self.interrupted {
            s.push_str(", interrupted: the scan is incomplete");
        }
        if self.skipped > 0 {
            s.push_str(&format!(", {} input(s) skipped", self.skipped));
        }
        if self.not_scanned > 0 {
            s.push_str(&format!(
                ", {} executable or image file(s) not scanned",
                self.not_scanned
            ));
        }
        if self.baselined > 0 {
            s.push_str(&format!(
                ", {} known finding(s) in the baseline",
                self.baselined
            ));
        }
        if self.jobs_already_scanned > 0 {
            s.push_str(&format!(
                ", {} job(s) already scanned by an earlier run",
                self.jobs_already_scanned
            ));
        }
        if self.previously_reported > 0 {
            s.push_str(&format!(
                ", {} finding(s) reported by an earlier run",
                self.previously_reported
            ));
        }
        if self.below_confidence > 0 {
            s.push_str(&format!(
                ", {} more below the confidence shown (see them with --min-confidence low)",
                self.below_confidence
            ));
        }
        s
    }
}

pub mod ci;
pub mod tickets;

pub use ci::{Csv, Junit, RuleInfo, Sarif};

/// A destination for findings.
pub trait Report: Send {
    /// Write one finding.
    fn finding(&mut self, f: &Finding) -> io::Result<()>;
    /// Write whatever closes the output, and flush.
    fn finish(&mut self, summary: &Summary) -> io::Result<()>;
    /// Make what was written so far visible (streaming inputs).
    fn flush(&mut self) -> io::Result<()>;
    /// Whether a finding is in the output once `flush` returns (JSONL, CSV, human); `false`
    /// for one-document formats (JSON, SARIF, JUnit), whose findings exist only once
    /// `finish` has written the document.
    fn durable_per_finding(&self) -> bool {
        true
    }
}

/// The JSON object of one finding (the JSONL line and the JSON array element).
pub fn finding_json(f: &Finding, show_secrets: bool) -> Value {
    let mut v = json!({
        "rule_id": f.rule_id,
        "rule_name": f.rule_name,
        "severity": f.severity,
        "confidence": f.confidence,
        "redacted": f.redacted(),
        "fingerprint": f.fingerprint,
        "entropy": (f.entropy as f64 * 1000.0).round() / 1000.0,
        "checksum_valid": f.checksum_valid,
        "evidence": f.evidence.names(),
        "remediation": f.remediation,
        "location": f.location,
        "span": {"start": f.span.0, "end": f.span.1},
        "decoded": f.decoded,
    });
    let obj = v.as_object_mut().expect("object");
    if show_secrets {
        obj.insert(
            "secret".into(),
            Value::String(String::from_utf8_lossy(f.secret.expose()).into_owned()),
        );
    }
    if let Some(p) = &f.pair {
        let mut pair = json!({
            "rule_id": p.rule_id,
            "redacted": redact(p.secret.expose(), p.redact_prefix),
            "fingerprint": p.fingerprint,
            "line": p.line,
            "column": p.column,
        });
        if show_secrets {
            pair.as_object_mut().expect("object").insert(
                "secret".into(),
                Value::String(String::from_utf8_lossy(p.secret.expose()).into_owned()),
            );
        }
        obj.insert("pair".into(), pair);
    }
    v
}

/// One JSON object per finding per line; nothing else on the stream.
pub struct Jsonl<W: Write + Send> {
    out: W,
    show_secrets: bool,
}

impl<W: Write + Send> Jsonl<W> {
    pub fn new(out: W, show_secrets: bool) -> Self {
        Jsonl { out, show_secrets }
    }
}

impl<W: Write + Send> Report for Jsonl<W> {
    fn finding(&mut self, f: &Finding) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, &finding_json(f, self.show_secrets))?;
        self.out.write_all(b"\n")
    }
    fn finish(&mut self, _: &Summary) -> io::Result<()> {
        self.out.flush()
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// One JSON document: `{"findings": [...], "summary": {...}}`, streamed element by element.
pub struct Json<W: Write + Send> {
    out: W,
    show_secrets: bool,
    count: u64,
}

impl<W: Write + Send> Json<W> {
    pub fn new(out: W, show_secrets: bool) -> Self {
        Json {
            out,
            show_secrets,
            count: 0,
        }
    }
}

impl<W: Write + Send> Report for Json<W> {
    fn finding(&mut self, f: &Finding) -> io::Result<()> {
        self.out.write_all(if self.count == 0 {
            b"{\"findings\":[\n"
        } else {
            b",\n"
        })?;
        self.count += 1;
        serde_json::to_writer(&mut self.out, &finding_json(f, self.show_secrets))?;
        Ok(())
    }
    fn finish(&mut self, summary: &Summary) -> io::Result<()> {
        if self.count == 0 {
            self.out.write_all(b"{\"findings\":[")?;
        }
        self.out.write_all(b"\n],\"summary\":")?;
        let mut s = serde_json::to_value(summary)?;
        s["mib_per_sec"] = json!((summary.mib_per_sec() * 10.0).round() / 10.0);
        serde_json::to_writer(&mut self.out, &s)?;
        self.out.write_all(b"}\n")?;
        self.out.flush()
    }
    fn durable_per_finding(&self) -> bool {
        false
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Human output: findings grouped under their input's name, coloured on a terminal.
pub struct Human<W: Write + Send> {
    out: W,
    show_secrets: bool,
    color: bool,
    last_input: Option<String>,
}

impl<W: Write + Send> Human<W> {
    pub fn new(out: W, show_secrets: bool, color: bool) -> Self {
        Human {
            out,
            show_secrets,
            color,
            last_input: None,
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// Make a value safe to print on a terminal: control bytes (escape sequences in a secret
/// taken from a log) are shown escaped.
/// Text from the input (names, secrets) as the terminal may show it: control characters and
/// bidi marks escaped (see [`crate::terminal`]).
fn printable(s: &str) -> String {
    crate::terminal::line(s).into_owned()
}

impl<W: Write + Send> Report for Human<W> {
    fn finding(&mut self, f: &Finding) -> io::Result<()> {
        let input = f.location.origin.display_name();
        if self.last_input.as_deref() != Some(input.as_str()) {
            if self.last_input.is_some() {
                writeln!(self.out)?;
            }
            writeln!(self.out, "{}", self.paint("1;35", &printable(&input)))?;
            self.last_input = Some(input);
        }
        let sev = match f.severity {
            Severity::Critical => self.paint("1;31", "CRITICAL"),
            Severity::High => self.paint("31", "HIGH    "),
            Severity::Medium => self.paint("33", "MEDIUM  "),
            Severity::Low => self.paint("36", "LOW     "),
        };
        let shown = if self.show_secrets {
            printable(&String::from_utf8_lossy(f.secret.expose()))
        } else {
            printable(&f.redacted())
        };
        let mut line = format!(
            "{:>7}:{:<4} {sev} {}  {}",
            f.location.line,
            f.location.column,
            f.rule_name,
            self.paint("1", &shown)
        );
        match f.checksum_valid {
            Some(true) => line.push_str("  (checksum valid)"),
            Some(false) => line.push_str("  (checksum invalid)"),
            None => {}
        }
        if !f.decoded.is_empty() {
            line.push_str(&format!("  (decoded: {})", f.decoded.join(" > ")));
        }
        writeln!(self.out, "{line}")?;
        if let Some(p) = &f.pair {
            let shown = if self.show_secrets {
                printable(&String::from_utf8_lossy(p.secret.expose()))
            } else {
                redact(p.secret.expose(), p.redact_prefix)
            };
            writeln!(
                self.out,
                "{:>12} paired with {} at {}:{}: {}",
                "",
                p.rule_id,
                p.line,
                p.column,
                self.paint("1", &shown)
            )?;
        }
        let evidence = f.evidence.names();
        let evidence = if evidence.is_empty() {
            String::new()
        } else {
            format!(" ({})", evidence.join(", "))
        };
        let detail = format!(
            "{:>12} {}  confidence {}{evidence}  fingerprint {}  {}",
            "",
            f.rule_id,
            f.confidence,
            &f.fingerprint[..16],
            f.remediation
        );
        writeln!(self.out, "{}", self.paint("2", &detail))
    }
    fn finish(&mut self, _: &Summary) -> io::Result<()> {
        self.out.flush()
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::finding::{Location, Paired, Secret};
    use crate::rules;
    use crate::source::origin::Origin;

    fn finding(secret: &str) -> Finding {
        let rules = rules::builtin().unwrap();
        let rule = rules.iter().find(|r| r.id == "github-pat").unwrap();
        let origin = Arc::new(Origin::File {
            path: "logs/a.log".into(),
        });
        Finding::new(
            rule,
            secret.as_bytes().to_vec(),
            Location {
                origin,
                line: 3,
                column: 7,
                stream: None,
            },
        )
    }

    const TOKEN: &str = "ghp_Zq3kYb8TfW2mN5rXc7vH1jL9pD4sGa0t7Hkq";

    #[test]
    fn jsonl_omits_the_secret_unless_shown() {
        let f = finding(TOKEN);
        for show in [false, true] {
            let mut out = Vec::new();
            let mut r = Jsonl::new(&mut out, show);
            r.finding(&f).unwrap();
            r.finish(&Summary::default()).unwrap();
            let text = String::from_utf8(out).unwrap();
            assert_eq!(text.lines().count(), 1);
            assert_eq!(text.contains(TOKEN), show, "{text}");
            let v: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(v["redacted"], "ghp_…7Hkq");
            assert_eq!(v["location"]["path"], "logs/a.log");
            assert_eq!(v["location"]["source"], "file");
        }
    }

    #[test]
    fn paired_secret_is_redacted_too() {
        let mut f = finding(TOKEN);
        f.pair = Some(Box::new(Paired {
            rule_id: "aws-secret-access-key".into(),
            secret: Secret::new(b"Xq8vR2mN5tY7uI9oP1aS3dF6gH8jK0lZxC4vB6nM".to_vec()),
            fingerprint: "0".repeat(64),
            line: 4,
            column: 1,
            redact_prefix: None,
        }));
        let v = finding_json(&f, false);
        assert_eq!(v["pair"]["redacted"], "…B6nM");
        assert!(v["pair"].get("secret").is_none());
        assert!(!v.to_string().contains("Xq8vR2mN5t"));
        let mut out = Vec::new();
        Human::new(&mut out, false, false).finding(&f).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("paired with aws-secret-access-key at 4:1: …B6nM"),
            "{text}"
        );
        assert!(!text.contains("Xq8vR2mN5t"));
    }

    #[test]
    fn json_document_is_valid_with_and_without_findings() {
        for n in [0, 1, 3] {
            let mut out = Vec::new();
            let mut r = Json::new(&mut out, false);
            for _ in 0..n {
                r.finding(&finding(TOKEN)).unwrap();
            }
            r.finish(&Summary {
                findings: n,
                ..Summary::default()
            })
            .unwrap();
            let v: Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(v["findings"].as_array().unwrap().len(), n as usize);
            assert_eq!(v["summary"]["findings"], n);
        }
    }

    #[test]
    fn human_output_escapes_control_bytes_and_colours_only_when_asked() {
        let f = finding("ghp_\x1b]0;pwned\x07Zq3kYb8TfW2mN5rXc7vH1jL9pD4sGa0t7");
        let mut out = Vec::new();
        Human::new(&mut out, true, false).finding(&f).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text:?}");
        assert!(text.contains("\\x1b]0;pwned\\x07"), "{text}");
        assert!(text.starts_with("logs/a.log\n"));
        let mut out = Vec::new();
        Human::new(&mut out, false, true).finding(&f).unwrap();
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("\x1b[1;31mCRITICAL"));
    }

    #[test]
    fn summary_line() {
        let s = Summary {
            inputs: 2,
            bytes: 3 << 20,
            elapsed_secs: 1.5,
            findings: 1,
            errors: 1,
            ..Summary::default()
        };
        assert_eq!(
            s.line(),
            "scanned 2 inputs (3.0 MiB) in 1.50 s (2.0 MiB/s): 1 finding, 1 error(s): the scan is incomplete"
        );
    }
}
