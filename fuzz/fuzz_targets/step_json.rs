//! CircleCI step-output JSON: `circleci_step_text` alone, then through a scanner. The harness is
//! `cisleuth::fuzz::fuzz_step_json`; crash inputs go in `fuzz/regressions/step_json/`, which `cargo
//! test` replays (see README "Fuzzing").
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cisleuth::fuzz::fuzz_step_json(data);
});
