//! cisleuth: a secret scanner for CI build output.
//!
//! Data flows one way, and each module imports only from the stages before it:
//!
//! ```text
//! source (files, stdin; CircleCI later) -> normalise -> decode -> detect -> finding -> report
//! ```
//!
//! - [`rules`]: rule files (`patterns/*.toml`), validation, loading.
//! - [`normalise`]: ANSI/VT stripping, CircleCI step-output JSON.
//! - [`decode`]: the decoder stage (encoded runs become more text to scan).
//! - [`detect`]: keyword prefilter, windowed regex confirmation, entropy, placeholders,
//!   checksums; rule self-checks.
//! - [`scan`]: one input stream through normalise, decode and detect, with line numbers.
//! - [`finding`]: findings, secrets, fingerprints, redaction.
//! - [`report`]: output formats as sinks.
//! - [`cmd`]: the only modules that know all of the above.

pub mod baseline;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod content;
pub mod decode;
pub mod detect;
pub mod finding;
#[doc(hidden)]
pub mod fuzz;
pub mod http;
pub mod normalise;
pub mod report;
pub mod rules;
pub mod scan;
pub mod source;
pub mod store;
pub mod terminal;
#[cfg(test)]
pub(crate) mod testutil;
