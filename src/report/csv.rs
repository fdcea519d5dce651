//! CSV with a header row, one row per finding.

use std::io::{self, Write};

use super::{Report, Summary};
use crate::finding::Finding;
use crate::source::origin::Origin;

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
}
