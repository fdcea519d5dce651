//! The fake CircleCI as a standalone server, for `scripts/bench-circleci.sh`:
//!
//!   cargo run --release --example fake_circleci -- JOBS STEPS LATENCY_MS [RATE_LIMIT_EVERY [ARTIFACTS=1 [OUTPUT_MIB [ARTIFACT_MIB]]]]
//!
//! OUTPUT_MIB pads every step's output with that many MiB of ordinary build lines, and
//! ARTIFACT_MIB gives every job a `build/full.log` artifact of that many MiB of them (for
//! memory benchmarks of the CircleCI path).
//!
//! Prints `api=<url> token=<token>` on the first line, then serves until killed; on stdin EOF
//! it prints its counters (requests, max in flight, 429s, rate-limit violations) and exits.

#[path = "fake_circleci.rs"]
mod fake_circleci;

use std::io::Read;
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let num = |i: usize, d: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (jobs, steps, latency, every) = (num(1, 2000), num(2, 4), num(3, 50), num(4, 0));
    let artifacts = num(5, 0) == 1;
    let output_mib = num(6, 0) as usize;
    let artifact_mib = num(7, 0) as usize;
    // One project, one pipeline per job (the worst case for enumeration).
    let (mut cfg, planted) =
        fake_circleci::generate(1, jobs as usize, 1, steps as usize, artifacts);
    cfg.latency = Duration::from_millis(latency);
    if output_mib > 0 {
        let line = "[INFO] compiling module 0123 of 9999: ok (0.42 s)\r\n";
        let filler = line.repeat((output_mib << 20) / line.len());
        for p in &mut cfg.projects {
            for pl in &mut p.pipelines {
                for w in &mut pl.workflows {
                    for j in &mut w.jobs {
                        for st in &mut j.steps {
                            for a in &mut st.actions {
                                a.messages.insert(0, ("out", filler.clone()));
                            }
                        }
                    }
                }
            }
        }
    }
    if artifact_mib > 0 {
        let line = "[INFO] test suite 0123 of 9999: passed (0.42 s)\n";
        let filler = line.repeat((artifact_mib << 20) / line.len()).into_bytes();
        for p in &mut cfg.projects {
            for pl in &mut p.pipelines {
                for w in &mut pl.workflows {
                    for j in &mut w.jobs {
                        j.artifacts.push(fake_circleci::FakeArtifact {
                            path: "build/full.log".into(),
                            node_index: 0,
                            bytes: filler.clone(),
                        });
                    }
                }
            }
        }
    }
    if every > 0 {
        cfg.rate_limit_every = Some(every as usize);
    }
    let fake = fake_circleci::Fake::start(cfg);
    println!(
        "api={} token={} planted={}",
        fake.api_url(),
        fake.token(),
        planted.len()
    );
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    let log = fake.log();
    println!(
        "requests={} max_in_flight={} status_429={} violations={}",
        log.len(),
        fake.max_in_flight(),
        log.iter().filter(|s| s.status == 429).count(),
        fake.rate_limit_violations()
    );
    for v in fake.violating() {
        eprintln!("violation: {v}");
    }
}
