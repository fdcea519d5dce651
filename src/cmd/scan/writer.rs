//! The writer thread: the one owner of the report and of stderr, so output lines never
//! interleave and a slow stdout applies back-pressure. It applies the gates that decide what
//! is reported (`--min-confidence`, `--baseline`, `--fail-on`), keeps the datastore and the
//! resume state in step with what was durably written, and counts the summary.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::time::Instant;

use super::pipeline::{Msg, Run};
use crate::baseline::Baseline;
use crate::finding::Finding;
use crate::report::{Report, Summary};
use crate::rules::{Confidence, Severity};
use crate::source::origin::Origin;
use crate::store::Store;

/// What the writer thread needs besides the report.
pub(crate) struct WriterSetup {
    pub(super) quiet: bool,
    pub(super) streaming: bool,
    pub(super) started: Instant,
    /// Known fingerprints (`--baseline`): not reported.
    pub(super) baseline: Option<Baseline>,
    /// `--fail-on`: only findings at or above it make the exit code 1.
    pub(super) fail_on: Option<Severity>,
    /// `--min-confidence`: less sure findings are counted, not reported.
    pub(super) min_confidence: Confidence,
    /// `--datastore`: every finding is kept there.
    pub(super) store: Option<Store>,
    /// Resume state (CircleCI `--state`): occurrences already reported are not repeated.
    pub(super) state: Option<crate::source::circleci::state::State>,
    pub(super) progress: Option<indicatif::ProgressBar>,
}

/// A stable key of one occurrence (fingerprint and location) for the resume state.
fn occurrence_key(f: &Finding) -> String {
    let loc = serde_json::to_string(&f.location).unwrap_or_default();
    crate::finding::fingerprint(&f.fingerprint, loc.as_bytes())
}

/// The writer thread: owns the report and stderr, counts, and returns the summary counts.
pub(super) fn write_all(
    rx: Receiver<Msg>,
    mut report: Box<dyn Report>,
    run: &Run,
    setup: WriterSetup,
) -> Summary {
    let mut s = Summary::default();
    let mut out_ok = true;
    let pb = setup.progress.clone();
    // Notes and errors must not tear through a progress bar.
    let say = |line: String| match &pb {
        Some(pb) => pb.suspend(|| eprintln!("{}", crate::terminal::line(&line))),
        None => eprintln!("{}", crate::terminal::line(&line)),
    };
    // The first write error stops all output (and the workers), and the scan ends with exit
    // 2: what was not written was not reported, and with --state it is not recorded either.
    let check = |r: io::Result<()>, out_ok: &mut bool, s: &mut Summary| {
        if let Err(e) = r {
            if std::mem::replace(out_ok, false) {
                run.stop.store(true, Ordering::Relaxed);
                s.output_failed = true;
                if e.kind() == io::ErrorKind::BrokenPipe {
                    say(
                        "cisleuth: error: the output was closed by its reader; scan stopped".into(),
                    );
                } else {
                    say(format!(
                        "cisleuth: error: cannot write output, scan stopped: {e}"
                    ));
                }
            }
        }
    };
    // Occurrences of a one-document format (JSON, SARIF, JUnit) are recorded as reported only
    // once the document is written.
    let deferred = !report.durable_per_finding();
    let mut pending: Vec<(String, String)> = Vec::new();
    let mut jobs_done = 0u64;
    let mut store_failing = false;
    let mut setup = setup;
    for msg in rx {
        match msg {
            Msg::Findings(batch) => {
                for f in &batch {
                    if f.confidence < setup.min_confidence {
                        s.below_confidence += 1;
                        continue;
                    }
                    // The datastore keeps every finding, known or not: it is the record.
                    if let Some(store) = &mut setup.store {
                        // A batch that could not be committed stays buffered and is tried
                        // again; said once here, counted at the end if it never lands.
                        if let Err(e) = store.record(f) {
                            if !store_failing {
                                say(format!("cisleuth: error: datastore: {e:#}; will try again"));
                            }
                            store_failing = true;
                        }
                    }
                    if setup
                        .baseline
                        .as_ref()
                        .is_some_and(|b| b.contains(&f.fingerprint))
                    {
                        s.baselined += 1;
                        continue;
                    }
                    let fails = setup.fail_on.is_none_or(|min| f.severity >= min);
                    let key = setup.state.as_ref().map(|_| occurrence_key(f));
                    if let (Some(state), Some(key)) = (&setup.state, &key) {
                        match state.is_recorded(key) {
                            Ok(true) => {
                                s.previously_reported += 1;
                                s.failing += u64::from(fails);
                                continue;
                            }
                            Ok(false) => {}
                            Err(e) => say(format!("cisleuth: error: state file: {e:#}")),
                        }
                    }
                    s.findings += 1;
                    s.failing += u64::from(fails);
                    if out_ok {
                        check(report.finding(f), &mut out_ok, &mut s);
                    }
                    // With a state file, a finding is recorded only once it is out of our
                    // buffers (for a one-document format, once the document is written): a
                    // kill between the two repeats it on resume, never loses it.
                    if let (Some(state), Some(key)) = (&setup.state, key) {
                        let job = job_key(f);
                        if deferred {
                            pending.push((key, job));
                        } else if out_ok {
                            check(report.flush(), &mut out_ok, &mut s);
                            if out_ok {
                                if let Err(e) = state.record_occurrence(&key, &job) {
                                    say(format!("cisleuth: error: state file: {e:#}"));
                                }
                            }
                        }
                    }
                }
                if setup.streaming && out_ok {
                    check(report.flush(), &mut out_ok, &mut s);
                }
            }
            Msg::Note(m) => {
                if !setup.quiet {
                    say(format!("cisleuth: note: {m}"));
                }
            }
            Msg::Skipped(m) => {
                s.skipped += 1;
                if !setup.quiet {
                    say(format!("cisleuth: note: {m}"));
                }
            }
            Msg::NotScanned(m) => {
                s.not_scanned += 1;
                if !setup.quiet {
                    say(format!("cisleuth: note: {m}"));
                }
            }
            Msg::Error(m) => {
                s.errors += 1;
                say(format!("cisleuth: error: {m}"));
            }
            Msg::JobDone { key, complete } => {
                jobs_done += 1;
                // A job whose findings could not be written is not finished: a re-run must
                // report them. For one-document formats, jobs are finished with the document.
                if complete && out_ok && deferred {
                    pending.push((String::new(), key));
                } else if complete && out_ok {
                    if let Some(state) = &setup.state {
                        if let Err(e) = state.finish_job(&key) {
                            say(format!("cisleuth: error: state file: {e:#}"));
                        }
                    }
                }
            }
        }
        if let Some(pb) = &pb {
            pb.set_message(format!(
                "{jobs_done} jobs done, {:.1} MiB scanned, {} findings",
                run.bytes.load(Ordering::Relaxed) as f64 / 1048576.0,
                s.findings
            ));
        }
    }
    if let Some(pb) = &pb {
        pb.finish_and_clear();
    }
    // Every finding is in: commit what the datastore still holds. A finding it did not keep is
    // a scan that is not complete.
    if let Some(store) = &mut setup.store {
        if let Err(e) = store.flush() {
            s.errors += 1;
            say(format!(
                "cisleuth: error: datastore: {} finding(s) not recorded: {e:#}",
                store.unwritten()
            ));
        }
    }
    // Every worker has finished (the channel is closed), so the counters are final.
    s.inputs = run.inputs.load(Ordering::Relaxed);
    s.bytes = run.bytes.load(Ordering::Relaxed);
    s.elapsed_secs = setup.started.elapsed().as_secs_f64();
    let effect = run.options.policy.effect();
    if effect.removed_anything() {
        s.policy = Some(effect);
    }
    if out_ok {
        check(report.finish(&s), &mut out_ok, &mut s);
    }
    if let (Some(state), true) = (&setup.state, out_ok) {
        for (key, job) in pending {
            let done = if key.is_empty() {
                state.finish_job(&job)
            } else {
                state.record_occurrence(&key, &job).map(|_| ())
            };
            if let Err(e) = done {
                say(format!("cisleuth: error: state file: {e:#}"));
            }
        }
    }
    s
}

/// The resume-state key of the job a finding belongs to (`project/number`), so a re-run that
/// skips the job can still count its findings; other inputs are named as they are shown.
fn job_key(f: &Finding) -> String {
    match &*f.location.origin {
        Origin::CircleCi(p) => format!("{}/{}", p.project, p.job_number),
        o => o.display_name(),
    }
}
