//! Commands: the glue between the CLI and the library's stages.

pub mod baseline;
pub mod circleci;
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
