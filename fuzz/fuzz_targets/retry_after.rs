//! `http::retry_wait` over arbitrary Retry-After / RateLimit-Reset headers and clocks. The harness
//! is `cisleuth::fuzz::fuzz_retry_after`; crash inputs go in `fuzz/regressions/retry_after/`, which
//! `cargo test` replays (see README "Fuzzing").
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cisleuth::fuzz::fuzz_retry_after(data);
});
