//! The scan runtime every source uses: the shared [`Run`] (engine, decoders, limits,
//! counters, the stop flag), the messages workers send the writer ([`Msg`]), the sink that
//! batches findings into them ([`ChannelSink`]), and scanning one named input or one archive
//! ([`scan_input`], [`scan_archive`]). Sources (files and stdin in `files`, CircleCI in
//! `circleci`) only produce inputs and call these; none of them imports another.

use std::io::{self, BufRead, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;

use crate::decode::Decoders;
use crate::detect::Engine;
use crate::finding::Finding;
use crate::scan::{Options, Scanner, Sink};
use crate::source::archive::{self, Walker};
use crate::source::origin::Origin;

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

/// Shared state of one scan run.
pub(crate) struct Run {
    pub(crate) engine: Engine,
    pub(crate) decoders: Decoders,
    pub(crate) options: Options,
    pub(crate) max_file_size: u64,
    pub(crate) archive_limits: archive::Limits,
    pub(crate) inputs: AtomicU64,
    pub(crate) bytes: AtomicU64,
    /// Set when stdout is gone (a closed pipe) or on Ctrl-C: workers and sources stop early.
    pub(crate) stop: AtomicBool,
    /// Ctrl-C (or SIGTERM): the scan stops, what was found is written and recorded.
    pub(crate) interrupted: AtomicBool,
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

/// Wrap `reader` in a decompressor when its first bytes are gzip, bzip2 or xz magic.
fn maybe_decompress<'a, R: BufRead + 'a>(mut reader: R) -> io::Result<Box<dyn Read + 'a>> {
    let head = reader.fill_buf()?;
    Ok(match archive::Codec::sniff(head) {
        Some(codec) => codec.reader(reader),
        None => Box::new(reader),
    })
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
