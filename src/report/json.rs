//! JSONL (one finding per line) and the JSON document (findings and the summary). Both shapes
//! are a public contract: `docs/OUTPUT.md` and `docs/finding.schema.json`.

use std::io::{self, Write};

use serde_json::{json, Value};

use super::{Report, Summary};
use crate::finding::{redact, Finding};

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
