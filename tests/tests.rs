//! Integration tests: run the `cisleuth` binary on fixtures and check what a user sees
//! (stdout, stderr, exit code).

mod util;

mod output;
mod rules;
mod scan;
mod stdin;
