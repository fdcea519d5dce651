//! `cisleuth scan path|-|circleci`: the only place that wires sources, the scanner and
//! reports (the CircleCI source's part is in `cmd::circleci`).
//!
//! Shape (after Nosey Parker's `cmd_scan.rs`): inputs are walked lazily and bridged into rayon
//! workers, each with its own [`Scanner`]; workers send findings, notes and errors through a
//! bounded channel to one writer thread that owns the report and stderr, so output lines
//! never interleave and a slow stdout applies back-pressure instead of filling memory.
//!
//! A failed input never stops the scan, but it is counted, and a scan with failures and no
//! findings exits 2, not 0: a partial scan must never look clean.

use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Read};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use rayon::iter::{ParallelBridge, ParallelIterator};

use crate::baseline::Baseline;
use crate::cli::{Format, ScanCommand, ScanOpts};
use crate::config::Config;
use crate::decode::Decoders;
use crate::detect::Engine;
use crate::finding::{Finding, Origin};
use crate::report::{Csv, Human, Json, Jsonl, Junit, Report, RuleInfo, Sarif, Summary};
use crate::rules;
use crate::rules::{Confidence, Severity};
use crate::scan::{Options, Scanner, Sink, READ_SIZE};
use crate::source::archive::{self, Walker};
use crate::store::Store;

/// What workers tell the writer thread.
pub(crate) enum Msg {
    Findings(Vec<Finding>),
    Note(String),
    Error(String),
    Skipped(String),
    /// An executable or image, recognised by content and deliberately not scanned.
    NotScanned(String),
    /// Every input of a CircleCI job was scanned; `complete` if all of it could be fetched.
    JobDone {
        key: String,
        complete: bool,
    },
}

/// Findings per message from a worker; a file with more sends several.
const BATCH: usize = 256;

/// Exit codes, in one place (README "Exit codes").
pub mod exit {
    /// No findings, everything scanned.
    pub const CLEAN: u8 = 0;
    /// At least one finding.
    pub const FINDINGS: u8 = 1;
    /// Usage or configuration error, or an incomplete scan with no findings.
    pub const ERROR: u8 = 2;
}

/// Shared state of one scan run.
pub(crate) struct Run {
    pub(crate) engine: Engine,
    pub(crate) decoders: Decoders,
    pub(crate) options: Options,
    max_file_size: u64,
    pub(crate) archive_limits: archive::Limits,
    pub(crate) inputs: AtomicU64,
    pub(crate) bytes: AtomicU64,
    /// Set when stdout is gone (a closed pipe) or on Ctrl-C: workers and sources stop early.
    pub(crate) stop: AtomicBool,
    /// Ctrl-C (or SIGTERM): the scan stops, what was found is written and recorded.
    pub(crate) interrupted: AtomicBool,
}

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

/// A scan sink that batches findings for the writer (or sends each at once when streaming).
pub(crate) struct ChannelSink<'a> {
    pub(crate) tx: &'a SyncSender<Msg>,
    pub(crate) batch: Vec<Finding>,
    pub(crate) immediate: bool,
}

impl ChannelSink<'_> {
    pub(crate) fn flush(&mut self) {
        if !self.batch.is_empty() {
            let _ = self.tx.send(Msg::Findings(std::mem::take(&mut self.batch)));
        }
    }
}

impl Sink for ChannelSink<'_> {
    fn finding(&mut self, f: Finding) {
        self.batch.push(f);
        if self.immediate || self.batch.len() >= BATCH {
            self.flush();
        }
    }
    fn note(&mut self, message: String) {
        let _ = self.tx.send(Msg::Note(message));
    }
}

/// What the writer thread needs besides the report.
pub(crate) struct WriterSetup {
    quiet: bool,
    streaming: bool,
    started: Instant,
    /// Known fingerprints (`--baseline`): not reported.
    baseline: Option<Baseline>,
    /// `--fail-on`: only findings at or above it make the exit code 1.
    fail_on: Option<Severity>,
    /// `--min-confidence`: less sure findings are counted, not reported.
    min_confidence: Confidence,
    /// `--datastore`: every finding is kept there.
    store: Option<Store>,
    /// Resume state (CircleCI `--state`): occurrences already reported are not repeated.
    state: Option<crate::source::circleci::state::State>,
    progress: Option<indicatif::ProgressBar>,
}

/// Run a `scan` subcommand.
pub fn run(cmd: ScanCommand) -> Result<ExitCode> {
    let opts = match &cmd {
        ScanCommand::Path { opts, .. } | ScanCommand::Stdin { opts } => opts.clone(),
        ScanCommand::CircleCi(a) => a.opts.clone(),
    };
    // Everything that can fail on configuration fails here, before any output.
    let mut config = Config::load(opts.config.as_deref(), !opts.no_repo_config)?;
    let mut dirs = config.rule_dirs.clone();
    dirs.extend(opts.rules.iter().cloned());
    let mut rules = rules::load(&dirs)?;
    config.apply(&mut rules)?;
    let baseline = opts.baseline.as_deref().map(Baseline::load).transpose()?;
    let store = opts
        .datastore
        .as_deref()
        .map(|p| {
            Store::open(
                p,
                opts.store_secrets,
                std::time::Duration::from_secs(opts.datastore_wait),
            )
        })
        .transpose()?;
    let circleci = match &cmd {
        ScanCommand::CircleCi(a) => Some(super::circleci::prepare(a)?),
        _ => None,
    };
    let run = Arc::new(Run {
        engine: Engine::new(rules)?,
        decoders: Decoders::standard(opts.max_decode_depth),
        options: Options {
            max_json_bytes: opts.max_file_size,
            policy: Arc::new(config),
        },
        max_file_size: opts.max_file_size,
        archive_limits: archive::Limits {
            max_depth: opts.max_archive_depth,
            ..archive::Limits::default()
        },
        inputs: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        interrupted: AtomicBool::new(false),
    });
    on_interrupt(run.clone());
    let report = make_report(&opts, run.engine.rules());
    let (tx, rx) = sync_channel::<Msg>(1024);
    let mut setup = WriterSetup {
        quiet: opts.quiet,
        streaming: matches!(cmd, ScanCommand::Stdin { .. }),
        started: Instant::now(),
        state: None,
        progress: None,
        baseline,
        fail_on: opts.fail_on.map(Into::into),
        min_confidence: opts.min_confidence.into(),
        store,
    };
    if let Some(c) = &circleci {
        setup.state = c.open_state()?;
        setup.progress = super::circleci::progress_bar(opts.quiet);
    }
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

fn make_report(opts: &ScanOpts, rules: &[crate::rules::Rule]) -> Box<dyn Report> {
    let tty = io::stdout().is_terminal();
    let format = opts
        .format
        .unwrap_or(if tty { Format::Human } else { Format::Jsonl });
    let out = io::BufWriter::with_capacity(64 * 1024, io::stdout());
    match format {
        Format::Jsonl => Box::new(Jsonl::new(out, opts.show_secrets)),
        Format::Json => Box::new(Json::new(out, opts.show_secrets)),
        // Secrets never go into SARIF or JUnit: they end up in dashboards and test reports.
        Format::Sarif => Box::new(Sarif::new(out, RuleInfo::of(rules))),
        Format::Csv => Box::new(Csv::new(out, opts.show_secrets)),
        Format::Junit => Box::new(Junit::new(out)),
        Format::Human => {
            let color = tty && std::env::var_os("NO_COLOR").is_none();
            Box::new(Human::new(out, opts.show_secrets, color))
        }
    }
}

/// A stable key of one occurrence (fingerprint and location) for the resume state.
fn occurrence_key(f: &Finding) -> String {
    let loc = serde_json::to_string(&f.location).unwrap_or_default();
    crate::finding::fingerprint(&f.fingerprint, loc.as_bytes())
}

/// The writer thread: owns the report and stderr, counts, and returns the summary counts.
fn write_all(
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

fn scan_paths(run: &Run, paths: &[std::path::PathBuf], tx: &SyncSender<Msg>) {
    use std::os::unix::fs::FileTypeExt;
    paths
        .iter()
        // Links to files are followed (a link is something the user asked to scan); links to
        // folders inside a tree are not (a link to `/` in a checked-out repository must not
        // turn a pre-merge scan into a scan of the runner), but a folder named on the command
        // line through a link is walked.
        .flat_map(|p| walkdir::WalkDir::new(p).follow_root_links(true).into_iter())
        .par_bridge()
        .for_each_init(
            || Scanner::new(&run.engine, &run.decoders, run.options.clone()),
            |scanner, entry| {
                if run.stop.load(Ordering::Relaxed) {
                    return;
                }
                let entry = match entry {
                    Err(e) => {
                        let _ = tx.send(Msg::Error(walk_error(&e)));
                        return;
                    }
                    Ok(entry) => entry,
                };
                let path = entry.path();
                // Folders are walked into; what policy ignores is counted file by file.
                if !entry.file_type().is_dir() && run.options.policy.ignored(path) {
                    return;
                }
                let ft = if entry.path_is_symlink() {
                    match std::fs::metadata(path) {
                        Ok(m) if m.is_dir() => {
                            let _ = tx.send(Msg::Note(format!(
                                "{}: a link to a folder; not followed (name the folder to scan it)",
                                path.display()
                            )));
                            return;
                        }
                        Ok(m) => m.file_type(),
                        Err(e) => {
                            let _ = tx.send(Msg::Error(format!(
                                "{}: a link that cannot be followed: {e}",
                                path.display()
                            )));
                            return;
                        }
                    }
                } else {
                    entry.file_type()
                };
                if ft.is_dir() {
                    return;
                }
                if ft.is_file() {
                    scan_file(run, scanner, path, tx);
                } else if ft.is_fifo() || ft.is_char_device() {
                    // A pipe (`<(cmd)`, a FIFO) or a device: read as a stream, at most
                    // --max-file-size of it (a device such as /dev/zero never ends).
                    scan_path_stream(run, scanner, path, tx);
                } else {
                    let _ = tx.send(Msg::Error(format!(
                        "{}: not a regular file, folder, FIFO or character device; not scanned",
                        path.display()
                    )));
                }
            },
        );
}

/// A FIFO, process substitution or character device named as a path.
fn scan_path_stream(run: &Run, scanner: &mut Scanner<'_>, path: &Path, tx: &SyncSender<Msg>) {
    let name = path.display().to_string();
    match File::open(path) {
        Ok(f) => {
            let origin = Arc::new(Origin::File { path: name.clone() });
            let capped = Capped {
                inner: f,
                left: run.max_file_size,
                limit: run.max_file_size,
            };
            scan_stream(run, scanner, capped, &name, &origin, false, tx);
        }
        Err(e) => {
            let _ = tx.send(Msg::Error(format!("{name}: {e}")));
        }
    }
}

/// A reader that fails once more than `limit` bytes were asked of it: a stream named as a
/// path is read up to --max-file-size, and the rest is reported, not silently dropped.
struct Capped<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // Is there more? One byte tells.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::other(format!(
                    "longer than --max-file-size ({} bytes); the rest was not read",
                    self.limit
                ))),
            };
        }
        let n = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let got = self.inner.read(&mut buf[..n])?;
        self.left -= got as u64;
        Ok(got)
    }
}

/// Scan a stream (stdin, a FIFO): an archive in it (zip, tar, or a tar inside gzip, bzip2 or
/// xz) is read into memory, at most --max-file-size, and walked member by member like the
/// same archive on disk; anything else streams into the scanner (decompressed if it is a
/// compressed stream).
fn scan_stream(
    run: &Run,
    scanner: &mut Scanner<'_>,
    reader: impl Read,
    name: &str,
    origin: &Arc<Origin>,
    immediate: bool,
    tx: &SyncSender<Msg>,
) {
    let mut reader = BufReader::with_capacity(READ_SIZE, reader);
    let kind = match reader.fill_buf() {
        Ok(head) => archive::sniff(name, head),
        Err(_) => archive::Kind::Plain,
    };
    match kind {
        archive::Kind::Plain => scan_input(run, scanner, reader, origin, immediate, tx),
        archive::Kind::Compressed(codec) => {
            // A compressed stream: a tar inside it is an archive, anything else is text.
            let mut inner = BufReader::with_capacity(READ_SIZE, codec.reader(reader));
            let tar = match inner.fill_buf() {
                Ok(head) => archive::sniff(name, head) != archive::Kind::Plain,
                Err(_) => false,
            };
            if tar {
                buffer_and_walk(run, scanner, &mut inner, name, tx);
            } else {
                scan_input(run, scanner, inner, origin, immediate, tx);
            }
        }
        _ => buffer_and_walk(run, scanner, &mut reader, name, tx),
    }
}

/// Read an archive from a stream into memory (at most --max-file-size) and walk it.
fn buffer_and_walk(
    run: &Run,
    scanner: &mut Scanner<'_>,
    reader: &mut dyn Read,
    name: &str,
    tx: &SyncSender<Msg>,
) {
    let mut bytes = Vec::new();
    if let Err(e) = reader
        .take(run.max_file_size.saturating_add(1))
        .read_to_end(&mut bytes)
    {
        let _ = tx.send(Msg::Error(format!("{name}: {e}")));
        return;
    }
    if bytes.len() as u64 > run.max_file_size {
        let _ = tx.send(Msg::Skipped(format!(
            "{name}: an archive longer than --max-file-size {}; not scanned",
            run.max_file_size
        )));
        return;
    }
    let member_origin = |member: &str| {
        Arc::new(Origin::File {
            path: member.to_string(),
        })
    };
    scan_archive(run, scanner, name, &bytes, name, &member_origin, tx);
}

fn walk_error(e: &walkdir::Error) -> String {
    let path = e
        .path()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    match e.io_error() {
        Some(io) => format!("{path}: {io}"),
        None => format!("{path}: {e}"),
    }
}

/// Wrap `reader` in a decompressor when its first bytes are gzip, bzip2 or xz magic.
fn maybe_decompress<'a, R: BufRead + 'a>(mut reader: R) -> io::Result<Box<dyn Read + 'a>> {
    let head = reader.fill_buf()?;
    Ok(match archive::Codec::sniff(head) {
        Some(codec) => codec.reader(reader),
        None => Box::new(reader),
    })
}

fn scan_file(run: &Run, scanner: &mut Scanner<'_>, path: &Path, tx: &SyncSender<Msg>) {
    let name = path.display().to_string();
    let file = match File::open(path).and_then(|f| f.metadata().map(|m| (f, m))) {
        Ok(x) => x,
        Err(e) => {
            let _ = tx.send(Msg::Error(format!("{name}: {e}")));
            return;
        }
    };
    let (file, meta) = file;
    if meta.len() > run.max_file_size {
        let _ = tx.send(Msg::Skipped(format!(
            "{name}: skipped, {} bytes is over --max-file-size {}",
            meta.len(),
            run.max_file_size
        )));
        return;
    }
    let origin = Arc::new(Origin::File { path: name.clone() });
    let mut reader = BufReader::with_capacity(READ_SIZE, file);
    // Archives and compressed files are walked member by member, within the archive limits
    // (the compressed bytes are read whole, the decompressed ones stream into the scanner).
    let kind = match reader.fill_buf() {
        Ok(head) => archive::sniff(&name, head),
        Err(_) => archive::Kind::Plain,
    };
    if kind != archive::Kind::Plain {
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        if let Err(e) = reader.read_to_end(&mut bytes) {
            let _ = tx.send(Msg::Error(format!("{name}: {e}")));
            return;
        }
        let member_origin = |member: &str| {
            Arc::new(Origin::File {
                path: member.to_string(),
            })
        };
        scan_archive(run, scanner, &name, &bytes, &name, &member_origin, tx);
        return;
    }
    scan_input(run, scanner, reader, &origin, false, tx);
}

/// Walk an archive and scan each member as its own input (named by `member_origin` from the
/// `outer!/inner` chain). Refused members (bombs, nesting too deep) count as skipped; corrupt
/// or truncated archives as errors, after everything readable was scanned.
pub(crate) fn scan_archive(
    run: &Run,
    scanner: &mut Scanner<'_>,
    name: &str,
    bytes: &[u8],
    label: &str,
    member_origin: &dyn Fn(&str) -> Arc<Origin>,
    tx: &SyncSender<Msg>,
) {
    let mut scan_member = |member: &str, reader: &mut dyn Read| -> io::Result<()> {
        let origin = member_origin(member);
        let mut sink = ChannelSink {
            tx,
            batch: Vec::new(),
            immediate: false,
        };
        let outcome = scanner.scan_reader(reader, &origin, &mut sink);
        sink.flush();
        tell_not_scanned(&outcome, member, tx);
        run.inputs.fetch_add(1, Ordering::Relaxed);
        run.bytes.fetch_add(outcome.bytes, Ordering::Relaxed);
        outcome.error.map_or(Ok(()), |e| {
            // A refusal speaks for itself; the kind is kept either way.
            if e.kind() == archive::REFUSED {
                return Err(e);
            }
            Err(io::Error::new(
                e.kind(),
                format!(
                    "read failed after {} bytes (everything before was scanned): {e}",
                    outcome.bytes
                ),
            ))
        })
    };
    let mut walker = Walker::new(run.archive_limits.clone(), &mut scan_member);
    walker.walk(name, bytes);
    for p in std::mem::take(&mut walker.errors) {
        let line = if p.path.starts_with(label) {
            format!("{}: {}", p.path, p.message)
        } else {
            format!("{label}: {}: {}", p.path, p.message)
        };
        // A refused bomb was deliberately not expanded: the scan is incomplete, not broken.
        let _ = tx.send(if p.refused {
            Msg::Skipped(line)
        } else {
            Msg::Error(line)
        });
    }
}

/// Scan one input (decompressed if it is gzip, bzip2 or xz) and report its findings, bytes and read error.
/// `immediate` sends each finding as soon as it is found (a pipe), instead of in batches.
pub(crate) fn scan_input(
    run: &Run,
    scanner: &mut Scanner<'_>,
    reader: impl BufRead,
    origin: &Arc<Origin>,
    immediate: bool,
    tx: &SyncSender<Msg>,
) {
    let name = origin.display_name();
    let reader = match maybe_decompress(reader) {
        Ok(r) => r,
        Err(e) => {
            let _ = tx.send(Msg::Error(format!("{name}: {e}")));
            return;
        }
    };
    let mut sink = ChannelSink {
        tx,
        batch: Vec::new(),
        immediate,
    };
    let outcome = scanner.scan_reader(reader, origin, &mut sink);
    sink.flush();
    tell_not_scanned(&outcome, &name, tx);
    run.inputs.fetch_add(1, Ordering::Relaxed);
    run.bytes.fetch_add(outcome.bytes, Ordering::Relaxed);
    if let Some(e) = outcome.error {
        let _ = tx.send(Msg::Error(format!(
            "{name}: read failed after {} bytes (everything before was scanned): {e}",
            outcome.bytes
        )));
    }
}

/// An input recognised as an executable or image is counted and named, not an error.
fn tell_not_scanned(outcome: &crate::scan::Outcome, name: &str, tx: &SyncSender<Msg>) {
    if let Some(kind) = outcome.not_scanned {
        let _ = tx.send(Msg::NotScanned(format!("{name}: not scanned: {kind}")));
    }
}

fn scan_stdin(run: &Run, tx: &SyncSender<Msg>) {
    let mut scanner = Scanner::new(&run.engine, &run.decoders, run.options.clone());
    let stdin = io::stdin();
    scan_stream(
        run,
        &mut scanner,
        stdin.lock(),
        "<stdin>",
        &Arc::new(Origin::Stdin),
        true,
        tx,
    );
}
