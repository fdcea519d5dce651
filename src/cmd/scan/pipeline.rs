//! The scan runtime every source uses: the shared [`Run`] (engine, decoders, limits,
//! counters, the stop flag), the messages workers send the writer ([`Msg`]), the sink that
//! batches findings into them ([`ChannelSink`]), and the one chain every input goes through:
//! [`scan_named`] decides, from its name and first bytes, whether it is an archive (walked
//! member by member under the archive budget), a compressed stream or an input for the
//! scanner (which tells text, UTF-16, binary, executables and step JSON apart). Sources (files
//! and stdin in `files`, CircleCI in `circleci`) only produce named inputs; none of them
//! decides how an input is read, and none imports another.

use std::io::{self, BufRead, BufReader, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;

use crate::decode::Decoders;
use crate::detect::Engine;
use crate::finding::Finding;
use crate::scan::{Options, Scanner, Sink, READ_SIZE};
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

/// Wrap `reader` in a decompressor, under the archive budget, when its first bytes are
/// gzip, bzip2 or xz magic.
fn maybe_decompress<'a, R: BufRead + 'a>(
    mut reader: R,
    limits: &archive::Limits,
) -> io::Result<Box<dyn Read + 'a>> {
    let head = reader.fill_buf()?;
    Ok(match archive::Codec::sniff(head) {
        Some(codec) => archive::budgeted(codec, reader, limits),
        None => Box::new(reader),
    })
}

/// One input as a source hands it over.
pub(crate) struct Named<'a> {
    /// What archive kinds are sniffed by, and the prefix of member names (a path, an artifact
    /// path, `<stdin>`).
    pub(crate) name: &'a str,
    /// How the input is named in messages.
    pub(crate) label: String,
    pub(crate) origin: &'a Arc<Origin>,
    /// The origin of an archive member, from its `archive!/member` name.
    pub(crate) member_origin: &'a dyn Fn(&str) -> Arc<Origin>,
    /// Findings go to the writer one at a time (stdin), not in batches.
    pub(crate) immediate: bool,
}

impl<'a> Named<'a> {
    /// An input whose label is its name.
    pub(crate) fn file(
        name: &'a str,
        origin: &'a Arc<Origin>,
        member_origin: &'a dyn Fn(&str) -> Arc<Origin>,
        immediate: bool,
    ) -> Named<'a> {
        Named {
            name,
            label: name.to_string(),
            origin,
            member_origin,
            immediate,
        }
    }
}

/// The bytes of a named input.
pub(crate) enum Body<'a> {
    /// Already in memory (a CircleCI step output or artifact).
    Bytes(&'a [u8]),
    /// A regular file (its size was checked against `--max-file-size`).
    File(std::fs::File),
    /// A stream of unknown length (stdin, a FIFO, a device), capped by its source.
    Stream(Box<dyn Read + 'a>),
}

/// The one decision of how an input is read, for every source: an archive (zip, tar, a tar
/// inside gzip/bzip2/xz) is walked member by member like the same file on disk; a compressed
/// file or body is walked as a one-member archive (`x.gz!/x`), a compressed stream of unknown
/// length is decompressed (under the archive budget) as it streams; everything else goes to
/// the scanner. Nothing is read whole into memory: files are walked in place, streams as
/// they come.
pub(crate) fn scan_named(
    run: &Run,
    scanner: &mut Scanner<'_>,
    input: &Named<'_>,
    body: Body<'_>,
    tx: &SyncSender<Msg>,
) {
    let head_kind = |reader: &mut dyn BufRead| match reader.fill_buf() {
        Ok(head) => archive::sniff(input.name, head),
        Err(_) => archive::Kind::Plain,
    };
    let plain = |scanner: &mut Scanner<'_>, reader: &mut dyn BufRead| {
        scan_input(run, scanner, reader, input.origin, input.immediate, tx)
    };
    let walk =
        |scanner: &mut Scanner<'_>, how: Walk<'_>| scan_archive(run, scanner, input, how, tx);
    match body {
        Body::Bytes(bytes) => {
            if archive::sniff(input.name, bytes) == archive::Kind::Plain {
                plain(scanner, &mut io::Cursor::new(bytes));
            } else {
                walk(scanner, Walk::Seekable(&mut io::Cursor::new(bytes)));
            }
        }
        Body::File(file) => {
            let mut reader = BufReader::with_capacity(READ_SIZE, file);
            if head_kind(&mut reader) == archive::Kind::Plain {
                plain(scanner, &mut reader);
            } else {
                // The walker reads its own head and seeks back to the start.
                walk(scanner, Walk::Seekable(&mut reader.into_inner()));
            }
        }
        Body::Stream(stream) => {
            let mut reader = BufReader::with_capacity(READ_SIZE, stream);
            match head_kind(&mut reader) {
                archive::Kind::Plain => plain(scanner, &mut reader),
                archive::Kind::Compressed(codec) => {
                    // A tar inside is an archive; anything else streams, decompressed.
                    let mut inner = BufReader::with_capacity(
                        READ_SIZE,
                        archive::budgeted(codec, reader, &run.archive_limits),
                    );
                    if head_kind(&mut inner) == archive::Kind::Plain {
                        plain(scanner, &mut inner);
                    } else {
                        walk(scanner, Walk::Stream(&mut inner));
                    }
                }
                _ => walk(scanner, Walk::Stream(&mut reader)),
            }
        }
    }
}

/// How an archive is handed to the walker.
enum Walk<'a> {
    Seekable(&'a mut dyn archive::ReadSeek),
    Stream(&'a mut dyn Read),
}

/// Walk an archive and scan each member as its own input (named by `member_origin` from the
/// `outer!/inner` chain). Refused members (bombs, nesting too deep) count as skipped; corrupt
/// or truncated archives as errors, after everything readable was scanned.
fn scan_archive(
    run: &Run,
    scanner: &mut Scanner<'_>,
    input: &Named<'_>,
    how: Walk<'_>,
    tx: &SyncSender<Msg>,
) {
    let label = &input.label;
    let mut scan_member = |member: &str, reader: &mut dyn Read| -> io::Result<()> {
        let origin = (input.member_origin)(member);
        let mut sink = ChannelSink {
            tx,
            batch: Vec::new(),
            immediate: input.immediate,
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
    match how {
        Walk::Seekable(s) => walker.walk_seekable(input.name, s),
        Walk::Stream(r) => walker.walk_stream(input.name, r),
    }
    for p in std::mem::take(&mut walker.errors) {
        let line = if p.path.starts_with(label.as_str()) {
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
fn scan_input(
    run: &Run,
    scanner: &mut Scanner<'_>,
    reader: impl BufRead,
    origin: &Arc<Origin>,
    immediate: bool,
    tx: &SyncSender<Msg>,
) {
    let name = origin.display_name();
    let reader = match maybe_decompress(reader, &run.archive_limits) {
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
