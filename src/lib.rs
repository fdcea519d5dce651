//! cisleuth: a secret scanner for CI build output.
//!
//! Data flows one way, and each module imports only from the stages before it:
//!
//! ```text
//! source (files, stdin, CircleCI, archives) -> content -> normalise -> decode -> detect
//!   -> scan (one input through all of them) -> finding -> store / baseline -> report
//! ```
//!
//! The rule, which `tests/layering.rs` enforces on every `src/**/*.rs` (production code; a
//! stage may always use itself):
//!
//! | stage | may import |
//! |---|---|
//! | [`rules`], [`http`], [`terminal`], [`source::origin`] | nothing of the crate (leaves) |
//! | [`source`] (CircleCI API, archives, resume state) | `source::origin`, `http`, `terminal` |
//! | [`content`] (what an input is: text, UTF-16, binary, executable) | nothing |
//! | [`normalise`] (ANSI/VT, CircleCI step JSON) | nothing |
//! | [`decode`] (encoded runs become views) | nothing |
//! | [`detect`] (prefilter, regex, entropy, checksums, evidence) | `rules`, `normalise` |
//! | [`config`] (`.cisleuth.toml` policy) | `rules` |
//! | [`finding`] | `detect`, `rules`, `source::origin` |
//! | [`scan`] (one input stream through the stages) | `config`, `content`, `normalise`, `decode`, `detect`, `finding`, `rules`, `source::origin`, `terminal` |
//! | [`store`], [`baseline`] | `finding`, `rules`, `source` (store), `store` (baseline) |
//! | [`report`] (formats, summary, tickets) | `finding`, `rules`, `store`, `config`, `http`, `terminal`, `source::origin` |
//! | [`cli`] | `rules` |
//! | [`cmd`], [`fuzz`] | anything: the only glue |
//!
//! Where new work goes: a new source in `source/` (and its driver in `cmd/scan/`), a new
//! decoder in `decode/`, a new output format in `report/` (a type implementing
//! [`report::Report`]), a new ticket sink in `report/tickets.rs`, a new rule in
//! `patterns/*.toml`. `unsafe` is denied except in `decode/classes/avx2.rs`.

#![deny(unsafe_code)]

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
