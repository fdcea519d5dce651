//! The file and stdin sources: walk paths (following links to files, not to folders inside
//! a tree), read FIFOs and devices as capped streams, open archives and compressed files, and
//! stream stdin. Each input goes to the pipeline ([`super::pipeline`]).

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc::SyncSender;
use std::sync::Arc;

use rayon::iter::{ParallelBridge, ParallelIterator};

use super::pipeline::{scan_named, Body, Msg, Named, Run};
use crate::scan::Scanner;
use crate::source::origin::Origin;

pub(super) fn scan_paths(run: &Run, paths: &[std::path::PathBuf], tx: &SyncSender<Msg>) {
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
            let input = Named::file(&name, &origin, &file_member, false);
            scan_named(run, scanner, &input, Body::Stream(Box::new(capped)), tx);
        }
        Err(e) => {
            let _ = tx.send(Msg::Error(format!("{name}: {e}")));
        }
    }
}

/// A member of an archive read from a file or a stream is named `archive!/member`.
fn file_member(member: &str) -> Arc<Origin> {
    Arc::new(Origin::File {
        path: member.to_string(),
    })
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
    let input = Named::file(&name, &origin, &file_member, false);
    scan_named(run, scanner, &input, Body::File(file), tx);
}

pub(super) fn scan_stdin(run: &Run, tx: &SyncSender<Msg>) {
    let mut scanner = Scanner::new(&run.engine, &run.decoders, run.options.clone());
    let stdin = io::stdin();
    let origin = Arc::new(Origin::Stdin);
    let input = Named::file("<stdin>", &origin, &file_member, true);
    scan_named(
        run,
        &mut scanner,
        &input,
        Body::Stream(Box::new(stdin.lock())),
        tx,
    );
}
