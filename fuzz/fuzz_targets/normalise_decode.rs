//! The normaliser + decoder stack on arbitrary bytes: content sniffing (UTF-16, binary
//! strings), ANSI stripping, CircleCI step JSON, every decoder nested to depth 3, detection.
//! Run with `cargo fuzz run normalise_decode` (see README "Fuzzing"); crash inputs go in
//! `fuzz/regressions/`, which `cargo test` replays.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cisleuth::fuzz::fuzz_one(data);
});
