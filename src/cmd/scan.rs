//! `cisleuth scan path|-`: the only place that wires sources, the scanner and reports.
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
use flate2::read::MultiGzDecoder;
use rayon::iter::{ParallelBridge, ParallelIterator};

use crate::cli::{Format, ScanCommand, ScanOpts};
use crate::decode::Decoders;
use crate::detect::Engine;
use crate::finding::{Finding, Origin};
use crate::report::{Human, Json, Jsonl, Report, Summary};
use crate::rules;
use crate::scan::{Options, Scanner, Sink, READ_SIZE};

/// What workers tell the writer thread.
enum Msg {
    Findings(Vec<Finding>),
    Note(String),
    Error(String),
    Skipped(String),
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
struct Run {
    engine: Engine,
    decoders: Decoders,
    options: Options,
    max_file_size: u64,
    inputs: AtomicU64,
    bytes: AtomicU64,
    /// Set when stdout is gone (a closed pipe): workers stop early.
    stop: AtomicBool,
}

/// A scan sink that batches findings for the writer (or sends each at once when streaming).
struct ChannelSink<'a> {
    tx: &'a SyncSender<Msg>,
    batch: Vec<Finding>,
    immediate: bool,
}

impl ChannelSink<'_> {
    fn flush(&mut self) {
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

/// Run a `scan` subcommand.
pub fn run(cmd: ScanCommand) -> Result<ExitCode> {
    let opts = match &cmd {
        ScanCommand::Path { opts, .. } | ScanCommand::Stdin { opts } => opts.clone(),
    };
    let rules = rules::load(&opts.rules)?;
    let run = Arc::new(Run {
        engine: Engine::new(rules)?,
        decoders: Decoders::none(),
        options: Options {
            max_json_bytes: opts.max_file_size,
        },
        max_file_size: opts.max_file_size,
        inputs: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let streaming = matches!(cmd, ScanCommand::Stdin { .. });
    let report = make_report(&opts);
    let (tx, rx) = sync_channel::<Msg>(1024);
    let started = Instant::now();
    let writer = {
        let run = run.clone();
        let quiet = opts.quiet;
        std::thread::spawn(move || write_all(rx, report, &run, quiet, streaming, started))
    };
    match cmd {
        ScanCommand::Path { paths, .. } => {
            let mut pool = rayon::ThreadPoolBuilder::new();
            if let Some(n) = opts.threads {
                pool = pool.num_threads(n);
            }
            let pool = pool.build().context("cannot start worker threads")?;
            pool.install(|| scan_paths(&run, &paths, &tx));
        }
        ScanCommand::Stdin { .. } => scan_stdin(&run, &tx),
    }
    drop(tx);
    let counts = writer.join().expect("writer thread panicked");
    // The report is closed by the writer; the summary line goes to stderr.
    if !opts.quiet {
        eprintln!("cisleuth: {}", counts.line());
    }
    let code = if counts.findings > 0 {
        exit::FINDINGS
    } else if counts.errors > 0 || counts.skipped > 0 {
        exit::ERROR
    } else {
        exit::CLEAN
    };
    Ok(ExitCode::from(code))
}

fn make_report(opts: &ScanOpts) -> Box<dyn Report> {
    let tty = io::stdout().is_terminal();
    let format = opts
        .format
        .unwrap_or(if tty { Format::Human } else { Format::Jsonl });
    let out = io::BufWriter::with_capacity(64 * 1024, io::stdout());
    match format {
        Format::Jsonl => Box::new(Jsonl::new(out, opts.show_secrets)),
        Format::Json => Box::new(Json::new(out, opts.show_secrets)),
        Format::Human => {
            let color = tty && std::env::var_os("NO_COLOR").is_none();
            Box::new(Human::new(out, opts.show_secrets, color))
        }
    }
}

/// The writer thread: owns the report and stderr, counts, and returns the summary counts.
fn write_all(
    rx: Receiver<Msg>,
    mut report: Box<dyn Report>,
    run: &Run,
    quiet: bool,
    streaming: bool,
    started: Instant,
) -> Summary {
    let mut s = Summary::default();
    let mut out_ok = true;
    // The first write error stops all output (and the workers); a closed pipe is not an error.
    let check = |r: io::Result<()>, out_ok: &mut bool, s: &mut Summary| {
        if let Err(e) = r {
            if std::mem::replace(out_ok, false) {
                run.stop.store(true, Ordering::Relaxed);
                if e.kind() != io::ErrorKind::BrokenPipe {
                    eprintln!("cisleuth: error: cannot write output: {e}");
                    s.errors += 1;
                }
            }
        }
    };
    for msg in rx {
        match msg {
            Msg::Findings(batch) => {
                s.findings += batch.len() as u64;
                for f in &batch {
                    if out_ok {
                        check(report.finding(f), &mut out_ok, &mut s);
                    }
                }
                if streaming && out_ok {
                    check(report.flush(), &mut out_ok, &mut s);
                }
            }
            Msg::Note(m) => {
                if !quiet {
                    eprintln!("cisleuth: note: {m}");
                }
            }
            Msg::Skipped(m) => {
                s.skipped += 1;
                if !quiet {
                    eprintln!("cisleuth: note: {m}");
                }
            }
            Msg::Error(m) => {
                s.errors += 1;
                eprintln!("cisleuth: error: {m}");
            }
        }
    }
    // Every worker has finished (the channel is closed), so the counters are final.
    s.inputs = run.inputs.load(Ordering::Relaxed);
    s.bytes = run.bytes.load(Ordering::Relaxed);
    s.elapsed_secs = started.elapsed().as_secs_f64();
    if out_ok {
        check(report.finish(&s), &mut out_ok, &mut s);
    }
    s
}

fn scan_paths(run: &Run, paths: &[std::path::PathBuf], tx: &SyncSender<Msg>) {
    paths
        .iter()
        .flat_map(|p| walkdir::WalkDir::new(p).follow_links(false).into_iter())
        .par_bridge()
        .for_each_init(
            || Scanner::new(&run.engine, &run.decoders, run.options.clone()),
            |scanner, entry| {
                if run.stop.load(Ordering::Relaxed) {
                    return;
                }
                match entry {
                    Err(e) => {
                        let _ = tx.send(Msg::Error(walk_error(&e)));
                    }
                    Ok(entry) if entry.file_type().is_file() => {
                        scan_file(run, scanner, entry.path(), tx);
                    }
                    // Folders are walked; links inside them are not followed (a link can
                    // point back up the tree or outside it).
                    Ok(_) => {}
                }
            },
        );
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

/// Wrap `reader` in a gzip decoder when its first bytes are the gzip magic.
fn maybe_gunzip<'a, R: BufRead + 'a>(mut reader: R) -> io::Result<Box<dyn Read + 'a>> {
    let head = reader.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(MultiGzDecoder::new(reader)))
    } else {
        Ok(Box::new(reader))
    }
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
    scan_input(
        run,
        scanner,
        BufReader::with_capacity(READ_SIZE, file),
        &origin,
        false,
        tx,
    );
}

/// Scan one input (gunzipped if it is gzip) and report its findings, bytes and read error.
/// `immediate` sends each finding as soon as it is found (a pipe), instead of in batches.
fn scan_input(
    run: &Run,
    scanner: &mut Scanner<'_>,
    reader: impl BufRead,
    origin: &Arc<Origin>,
    immediate: bool,
    tx: &SyncSender<Msg>,
) {
    let name = origin.display_name();
    let reader = match maybe_gunzip(reader) {
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
    run.inputs.fetch_add(1, Ordering::Relaxed);
    run.bytes.fetch_add(outcome.bytes, Ordering::Relaxed);
    if let Some(e) = outcome.error {
        let _ = tx.send(Msg::Error(format!(
            "{name}: read failed after {} bytes (everything before was scanned): {e}",
            outcome.bytes
        )));
    }
}

fn scan_stdin(run: &Run, tx: &SyncSender<Msg>) {
    let mut scanner = Scanner::new(&run.engine, &run.decoders, run.options.clone());
    let stdin = io::stdin();
    let reader = BufReader::with_capacity(64 * 1024, stdin.lock());
    scan_input(
        run,
        &mut scanner,
        reader,
        &Arc::new(Origin::Stdin),
        true,
        tx,
    );
}
