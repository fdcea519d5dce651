//! Integration tests: run the `cisleuth` binary on fixtures and check what a user sees
//! (stdout, stderr, exit code).

mod util;

#[path = "support/capture.rs"]
mod capture;
#[path = "support/fake_circleci.rs"]
mod fake_circleci;

mod archives;
mod circleci;
mod decoders;
mod forms;
mod gates;
mod integrity;
mod layering;
mod output;
mod rules;
mod scan;
mod stdin;
mod store;
mod tickets;
