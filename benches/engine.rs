//! Engine throughput on generated CI-log text (criterion, `Throughput::Bytes`).
//!
//! The corpus is built in code, deterministically: ANSI-coloured test output, npm/pip noise,
//! docker digests, UUID request ids, `set -x` exports, with a known number of planted
//! secrets. Each benchmark asserts the finding count first, so a fast but wrong engine fails.
//!
//! - `scan/ci-log`: the whole per-input pipeline (normalise, chunk, detect, findings), with
//!   decoding off; `scan/ci-log+decoders` the same with every decoder at the default depth
//!   (the issue-5 budget: within 15% of the first).
//! - `scan/keyword-dense`: every line has a generic keyword and a value (the stress case
//!   where peers collapse, see ../shared/reference/landscape.md 2.2).
//! - `engine/ci-log-normalised`: the engine over already-normalised text.
//! - `decode/ci-log-normalised`: the decoders alone (one classification pass, every decoder).

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use cisleuth::decode::Decoders;
use cisleuth::detect::Engine;
use cisleuth::finding::Finding;
use cisleuth::rules;
use cisleuth::scan::{Options, Scanner, Sink};
use cisleuth::source::origin::Origin;

struct Count(usize);
impl Sink for Count {
    fn finding(&mut self, _: Finding) {
        self.0 += 1;
    }
    fn note(&mut self, _: String) {}
}

/// A small xorshift generator: the corpus is the same on every run and machine.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize] as char)
            .collect()
    }
}

const HEX: &[u8] = b"0123456789abcdef";
const B62: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz";

/// About `mib` MiB of CI-log lines with `secrets` planted GitHub tokens.
fn ci_log(mib: usize, secrets: usize) -> Vec<u8> {
    let mut r = Rng(0x9e3779b97f4a7c15);
    let mut out = String::new();
    let target = mib << 20;
    let every = target / secrets.max(1);
    let mut next_secret = every / 2;
    let mut planted = 0;
    while out.len() < target {
        let line = match r.next() % 10 {
            0 => format!(
                "\x1b[32m✔\x1b[0m {} tests passed ({}ms)",
                r.pick(LOWER, 8),
                r.next() % 999
            ),
            1 => format!(
                "npm WARN deprecated {}@1.{}.0: this package is no longer supported",
                r.pick(LOWER, 6),
                r.next() % 20
            ),
            2 => format!("sha256:{}: Pull complete", r.pick(HEX, 64)),
            3 => format!("      \"integrity\": \"sha512-{}==\",", r.pick(B62, 86)),
            4 => format!(
                "[12:00:{:02}] INFO request id={}-{}-{} status=200",
                r.next() % 60,
                r.pick(HEX, 8),
                r.pick(HEX, 4),
                r.pick(HEX, 12)
            ),
            5 => format!(
                "export CIRCLE_SHA1={} CIRCLE_BUILD_NUM={}",
                r.pick(HEX, 40),
                r.next() % 99999
            ),
            6 => format!(
                "  at org.junit.runners.ParentRunner.runChildren(ParentRunner.java:{})",
                r.next() % 400
            ),
            7 => format!("Collecting {}==1.{}.0", r.pick(LOWER, 7), r.next() % 30),
            8 => format!("Downloading {} {}%\r", r.pick(LOWER, 5), r.next() % 100),
            _ => r.pick(b"abcdefghijklmnopqrstuvwxyz      ", 60),
        };
        out.push_str(&line);
        out.push('\n');
        if out.len() >= next_secret && planted < secrets {
            out.push_str(&format!("+ echo \"token=ghp_{}\"\n", r.pick(B62, 36)));
            planted += 1;
            next_secret += every;
        }
    }
    out.into_bytes()
}

/// Lines that each carry a generic keyword and a low-entropy value.
fn keyword_dense(mib: usize) -> Vec<u8> {
    let mut r = Rng(42);
    let mut out = String::new();
    let kws = ["token", "secret", "password", "api_key", "key", "auth"];
    while out.len() < mib << 20 {
        let kw = kws[(r.next() % kws.len() as u64) as usize];
        out.push_str(&format!(
            "{kw}={} {kw} used for {}\n",
            r.pick(LOWER, 8),
            r.pick(LOWER, 12)
        ));
    }
    out.into_bytes()
}

fn bench(c: &mut Criterion) {
    let engine = Engine::new(rules::builtin().unwrap()).unwrap();
    let none = Decoders::none();
    let standard = Decoders::standard(3);
    let origin = Arc::new(Origin::Stdin);
    let log = ci_log(16, 40);
    let inputs = [
        ("ci-log", &log, &none, 40),
        ("ci-log+decoders", &log, &standard, 40),
        ("keyword-dense", &keyword_dense(4), &none, 0),
    ];
    let mut g = c.benchmark_group("scan");
    for (name, data, decoders, expect) in inputs {
        let mut scanner = Scanner::new(&engine, decoders, Options::default());
        let mut n = Count(0);
        scanner.scan_bytes(data, &origin, &mut n);
        assert_eq!(n.0, expect, "{name}: wrong number of findings");
        g.throughput(Throughput::Bytes(data.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut n = Count(0);
                scanner.scan_bytes(data, &origin, &mut n);
                n.0
            })
        });
    }
    g.finish();
    let text = cisleuth::normalise::strip_ansi(&log);
    let mut scratch = engine.scratch();
    let mut out = Vec::new();
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("ci-log-normalised", |b| {
        b.iter(|| {
            out.clear();
            engine.scan(&text, &mut scratch, &mut out);
            out.len()
        })
    });
    g.finish();
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Bytes(text.len() as u64));
    let mut classes = cisleuth::decode::Classes::default();
    let mut views = Vec::new();
    g.bench_function("ci-log-normalised", |b| {
        b.iter(|| {
            views.clear();
            // The scanner decodes a chunk (about 1 MiB, cut at a line end) at a time.
            for chunk in text.chunks(1 << 20) {
                standard.decode(chunk, &mut classes, &mut views);
            }
            views.len()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(std::time::Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);
