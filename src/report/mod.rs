//! Report sinks: each format is a [`Report`] that receives findings one at a time and a
//! summary at the end, so output streams and formats are interchangeable and testable against
//! a `Vec<u8>`. Redaction happens here and only here: a finding carries the raw secret and a
//! report shows it only when built with `show_secrets`.
//!
//! One file per format: `json` (JSONL and the JSON document, the public contract in
//! `docs/OUTPUT.md` and `docs/finding.schema.json`), `human`, `sarif`, `csv`, `junit`;
//! `summary` is the scan's result every format ends with; `tickets` files tickets from the
//! datastore. A new format is a new file with a type that implements [`Report`].

use std::io;

use crate::finding::Finding;

pub mod csv;
pub mod human;
pub mod json;
pub mod junit;
pub mod sarif;
pub mod summary;
pub mod tickets;

pub use self::csv::Csv;
pub use human::Human;
pub use json::{finding_json, Json, Jsonl};
pub use junit::Junit;
pub use sarif::{RuleInfo, Sarif};
pub use summary::Summary;

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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::Value;

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
