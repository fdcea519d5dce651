//! JUnit XML: one failing test case per finding, for CI test-report views. It needs its
//! counts in the opening tag, so it keeps the (small) per-finding records until the end.
//! Secrets never go into JUnit.

use std::io::{self, Write};

use super::{Report, Summary};
use crate::finding::Finding;

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
    fn xml_escaping() {
        assert_eq!(xml("a<b & \"c\"\u{1b}"), "a&lt;b &amp; &quot;c&quot;");
    }
}
