//! Rule files: the loader, the detection engine over what loads, and `rules check`. The harness is
//! `cisleuth::fuzz::fuzz_rules`; crash inputs go in `fuzz/regressions/rules/`, which `cargo test`
//! replays (see README "Fuzzing").
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cisleuth::fuzz::fuzz_rules(data);
});
