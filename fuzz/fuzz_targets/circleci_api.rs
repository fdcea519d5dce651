//! Every CircleCI API model's deserialiser, and slugs with their round trips. The harness is
//! `cisleuth::fuzz::fuzz_circleci_api`; crash inputs go in `fuzz/regressions/circleci_api/`, which
//! `cargo test` replays (see README "Fuzzing").
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cisleuth::fuzz::fuzz_circleci_api(data);
});
