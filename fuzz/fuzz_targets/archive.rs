//! The archive walker (`cisleuth::source::archive::Walker`) over arbitrary bytes: zip, tar, gz,
//! bz2, xz and tar inside each, named from the first byte, with small limits (bombs end quickly).
//! Run with `-max_len=1048576`. The harness is `cisleuth::fuzz::fuzz_archive`; crash inputs go in
//! `fuzz/regressions/archive/`, which `cargo test` replays (see README "Fuzzing").
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cisleuth::fuzz::fuzz_archive(data);
});
