//! Commands: the glue between the CLI and the library's stages.

pub mod rules;
pub mod scan;
