//! Sources: where input bytes come from. Files and stdin are read by the `scan` command
//! directly; the CircleCI API source and archive walking live here.

pub mod archive;
pub mod circleci;

/// What went wrong parsing JSON, without serde's quote of the input (a server's answer or a
/// step's output can hold a secret, and this text goes to stderr): the kind of error and where.
pub fn json_error(e: &serde_json::Error) -> String {
    let kind = match e.classify() {
        serde_json::error::Category::Io => "read",
        serde_json::error::Category::Syntax => "syntax",
        serde_json::error::Category::Data => "shape",
        serde_json::error::Category::Eof => "unexpected end",
    };
    format!("{kind} error at line {} column {}", e.line(), e.column())
}
