//! Human output: findings grouped by input, coloured on a terminal, with every name and
//! secret escaped for the terminal (see [`crate::terminal`]).

use std::io::{self, Write};

use super::{Report, Summary};
use crate::finding::{redact, Finding};
use crate::rules::Severity;

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
