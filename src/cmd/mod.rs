//! Commands: the glue between the CLI and the library's stages.

pub mod baseline;
pub mod report;
pub mod rules;
pub mod scan;

/// An error as the one line printed on stderr: its whole cause chain, with multi-line
/// messages (regex syntax errors draw a caret under the pattern) folded into one.
pub fn error_line(e: &anyhow::Error) -> String {
    // Causes joined by `: `; line breaks kept (a TOML or regex error's caret stands under the
    // column it points at), every other control character escaped.
    let text = format!("{e:#}");
    crate::terminal::escape(text.trim_end(), true).into_owned()
}

/// Exit codes, in one place (README "Exit codes").
pub mod exit {
    /// No findings, everything scanned.
    pub const CLEAN: u8 = 0;
    /// At least one finding.
    pub const FINDINGS: u8 = 1;
    /// Usage or configuration error, or an incomplete scan with no findings.
    pub const ERROR: u8 = 2;
}
