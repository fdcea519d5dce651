//! The normaliser + decoder stack on arbitrary bytes: content sniffing (UTF-16, binary strings),
//! ANSI stripping, CircleCI step JSON, every decoder nested to depth 3, detection. The harness is
//! `cisleuth::fuzz::fuzz_one`; crash inputs go in `fuzz/regressions/normalise_decode/`, which
//! `cargo test` replays (see README "Fuzzing").
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cisleuth::fuzz::fuzz_one(data);
});
