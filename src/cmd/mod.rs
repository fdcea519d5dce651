//! Commands: the glue between the CLI and the library's stages.

pub mod baseline;
pub mod circleci;
pub mod report;
pub mod rules;
pub mod scan;

/// An error as the one line printed on stderr: its whole cause chain, with multi-line
/// messages (regex syntax errors draw a caret under the pattern) folded into one.
pub fn error_line(e: &anyhow::Error) -> String {
    let text = format!("{e:#}");
    let parts: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    parts.join(" | ")
}
