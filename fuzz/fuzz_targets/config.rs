//! `.cisleuth.toml`: `Config::parse`, and `apply` onto the built-in rules. The harness is
//! `cisleuth::fuzz::fuzz_config`; crash inputs go in `fuzz/regressions/config/`, which `cargo test`
//! replays (see README "Fuzzing").
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cisleuth::fuzz::fuzz_config(data);
});
