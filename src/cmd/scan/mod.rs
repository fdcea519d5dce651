//! `cisleuth scan path|-|circleci`: the only place that wires sources, the scanner and
//! reports.
//!
//! Shape (after Nosey Parker's `cmd_scan.rs`): inputs are walked lazily and bridged into rayon
//! workers, each with its own [`Scanner`](crate::scan::Scanner); workers send findings, notes
//! and errors through a bounded channel to one writer thread that owns the report and stderr,
//! so output lines never interleave and a slow stdout applies back-pressure instead of filling
//! memory.
//!
//! | file | what it holds |
//! |---|---|
//! | `setup` | arguments become a configured scan (the one place that can fail on configuration) |
//! | `pipeline` | the runtime every source uses: `Run`, `Msg`, the channel sink, scanning one input or archive |
//! | `writer` | the writer thread: gates, report, datastore, resume state, summary |
//! | `files` | the file and stdin sources |
//! | `circleci` | the CircleCI source's driver |
//!
//! A failed input never stops the scan, but it is counted, and a scan with failures and no
//! findings exits 2, not 0: a partial scan must never look clean.

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::mpsc::sync_channel;
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::cli::ScanCommand;
use crate::cmd::exit;

pub mod circleci;
mod files;
pub(crate) mod pipeline;
mod setup;
mod writer;

use files::{scan_paths, scan_stdin};
use pipeline::{Msg, Run};
use setup::Configured;
use writer::write_all;

/// Ctrl-C and SIGTERM: the first stops the scan the way a closed output does (the current
/// write finishes, findings and finished jobs are recorded, the summary says how to resume);
/// a second one quits at once.
fn on_interrupt(run: Arc<Run>) {
    static SEEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let handler = move || {
        if SEEN.fetch_add(1, Ordering::SeqCst) > 0 {
            std::process::exit(130);
        }
        run.interrupted.store(true, Ordering::SeqCst);
        run.stop.store(true, Ordering::SeqCst);
        eprintln!("cisleuth: interrupted: finishing the current write and recording what is done (again to quit at once)");
    };
    // Only fails when a handler is already set (a second scan in one process): keep that one.
    let _ = ctrlc::set_handler(handler);
}

/// How to go on after an interrupted scan: the same command line (with `--state`, finished
/// jobs are not fetched again and reported findings are not repeated).
fn resume_hint(state: Option<&std::path::Path>) -> String {
    let quote = |a: String| {
        if !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c))
        {
            a
        } else {
            format!("'{}'", a.replace('\'', "'\\''"))
        }
    };
    let line: Vec<String> = std::env::args().map(quote).collect();
    match state {
        Some(_) => format!("resume with: {}", line.join(" ")),
        None => {
            "the scan is incomplete; with --state FILE a re-run resumes instead of starting over"
                .into()
        }
    }
}

/// Run a `scan` subcommand.
pub fn run(cmd: ScanCommand) -> Result<ExitCode> {
    let Configured {
        opts,
        run,
        report,
        writer: setup,
        circleci,
    } = setup::configure(&cmd)?;
    on_interrupt(run.clone());
    let (tx, rx) = sync_channel::<Msg>(1024);
    let progress = setup.progress.clone();
    let writer = {
        let run = run.clone();
        std::thread::spawn(move || write_all(rx, report, &run, setup))
    };
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(n) = opts.threads {
        pool = pool.num_threads(n);
    }
    let pool = pool.build().context("cannot start worker threads")?;
    let mut source_result = Ok(None);
    let state_path = match &cmd {
        ScanCommand::CircleCi(a) => a.state.clone(),
        _ => None,
    };
    match cmd {
        ScanCommand::Path { paths, .. } => pool.install(|| scan_paths(&run, &paths, &tx)),
        ScanCommand::Stdin { .. } => scan_stdin(&run, &tx),
        ScanCommand::CircleCi(_) => {
            let c = circleci.expect("prepared above");
            source_result = pool.install(|| c.scan(&run, &tx, progress)).map(Some);
        }
    }
    drop(tx);
    let mut counts = writer.join().expect("writer thread panicked");
    let source_stats = source_result?;
    if let Some((jobs, skipped, stats)) = &source_stats {
        counts.jobs = Some(*jobs);
        counts.jobs_already_scanned = *skipped;
        // Jobs an earlier run finished are not fetched again, but what it reported in them
        // still stands: the re-run says so and exits 1 (docs/OUTPUT.md).
        if *skipped > 0 {
            if let Some(path) = &state_path {
                let earlier = crate::source::circleci::state::State::open(path)
                    .and_then(|st| st.reported_in_finished_jobs());
                match earlier {
                    Ok(n) => {
                        counts.previously_reported += n;
                        counts.failing += n;
                    }
                    Err(e) => eprintln!("cisleuth: error: state file: {e:#}"),
                }
            }
        }
        counts.requests = Some(stats.requests);
        if !opts.quiet && (stats.retries > 0 || stats.rate_limited > 0) {
            eprintln!(
                "cisleuth: note: {} requests, {} retried, {} rate-limited (429) waits, at most {} in flight",
                stats.requests, stats.retries, stats.rate_limited, stats.max_in_flight
            );
        }
    }
    counts.interrupted = run.interrupted.load(Ordering::SeqCst);
    // The report is closed by the writer; the summary line goes to stderr.
    if !opts.quiet {
        eprintln!("cisleuth: {}", counts.line());
    }
    if let (Some(p), false) = (&counts.policy, opts.quiet) {
        eprintln!("cisleuth: note: {}", crate::terminal::line(&p.line()));
    }
    if counts.interrupted {
        let hint = resume_hint(state_path.as_deref());
        eprintln!("cisleuth: {}", crate::terminal::line(&hint));
    }
    let code = if counts.output_failed {
        exit::ERROR
    } else if counts.failing > 0 {
        exit::FINDINGS
    } else if counts.errors > 0 || counts.skipped > 0 || counts.interrupted {
        exit::ERROR
    } else {
        exit::CLEAN
    };
    Ok(ExitCode::from(code))
}
