//! The fuzzing harness: one input through the whole stack (content sniffing, UTF-16,
//! strings, ANSI stripping, step JSON, every decoder to depth 3, detection). It sits at the
//! top of the pipeline because it needs all of it; `fuzz/fuzz_targets/normalise_decode.rs`
//! calls [`fuzz_one`], and `cargo test` replays the inputs kept in `fuzz/regressions/`.

use crate::decode::{Classes, Decoders};

/// One fuzzing input through the normaliser + decoder stack: the decoders alone on the raw
/// bytes, then a whole scan (content sniffing, UTF-16, strings, ANSI, step JSON, decoders to
/// depth 3, detection). The `cargo fuzz` target calls this, and `cargo test` replays the inputs
/// kept in `fuzz/regressions/` through it.
#[doc(hidden)]
pub fn fuzz_one(data: &[u8]) {
    use std::sync::{Arc, OnceLock};
    static ENGINE: OnceLock<crate::detect::Engine> = OnceLock::new();
    let engine = ENGINE.get_or_init(|| {
        crate::detect::Engine::new(crate::rules::builtin().expect("built-in rules"))
            .expect("engine")
    });
    let decoders = Decoders::standard(3);
    let mut classes = Classes::default();
    let mut out = Vec::new();
    decoders.decode(data, &mut classes, &mut out);
    for d in &out {
        assert!(d.start < d.end && d.end <= data.len());
    }
    struct Drop;
    impl crate::scan::Sink for Drop {
        fn finding(&mut self, f: crate::finding::Finding) {
            assert!(f.span.0 <= f.span.1);
        }
        fn note(&mut self, _: String) {}
    }
    let mut scanner = crate::scan::Scanner::new(engine, &decoders, Default::default());
    scanner.scan_bytes(
        data,
        &Arc::new(crate::source::origin::Origin::Stdin),
        &mut Drop,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs the fuzzer once crashed on (and seeds worth keeping) stay fixed.
    #[test]
    fn fuzz_regressions_replay() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).expect("fuzz/regressions") {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "md") {
                continue;
            }
            fuzz_one(&std::fs::read(&path).unwrap());
            n += 1;
        }
        assert!(n > 0, "no inputs in {}", dir.display());
    }
}
