//! Archives inside inputs (local files and CircleCI artifacts): zip (jar, whl, nupkg, ...),
//! tar, gz, bz2 and xz, and tar inside any of the three compressors, opened as streams and
//! walked member by member, nested up to a depth.
//!
//! Decompression is where hostile input hurts, so every byte out of a decompressor is counted
//! against budgets: the total for the whole artifact, and per member its compressed size
//! times a ratio. Past a budget the member fails with a "refused" error (a zip bomb is
//! stopped, not expanded). A truncated or corrupt archive yields the members before the
//! damage and then an error; what was read is scanned.

use std::cell::Cell;
use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};
use std::rc::Rc;

use bzip2::read::MultiBzDecoder;
use flate2::read::MultiGzDecoder;
use liblzma::read::XzDecoder;

/// Limits for one top-level archive.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Archives inside archives: 1 opens the top level only.
    pub max_depth: usize,
    /// Decompressed bytes, all members together.
    pub max_total: u64,
    /// Members, all levels together.
    pub max_entries: usize,
    /// Decompressed / compressed, per member or stream (past 1 MiB out).
    pub max_ratio: u64,
    /// A zip found inside a stream is copied out to be opened: at most this many bytes.
    pub max_spill: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 3,
            max_total: 4 << 30,
            max_entries: 100_000,
            max_ratio: 200,
            max_spill: 512 << 20,
        }
    }
}

/// What a file is, from its name and first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Zip,
    Tar,
    /// A single compressed stream: its content is a member named without the suffix.
    Compressed(Codec),
    /// A tar inside a compressed stream (`.tar.gz`, `.tgz`, `.tar.bz2`, `.tar.xz`, ...).
    CompressedTar(Codec),
    Plain,
}

/// A stream compressor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    Gzip,
    Bzip2,
    Xz,
}

impl Codec {
    /// The codec whose magic bytes start `head`.
    pub fn sniff(head: &[u8]) -> Option<Codec> {
        if head.starts_with(&[0x1f, 0x8b]) {
            Some(Codec::Gzip)
        } else if head.len() >= 4 && head.starts_with(b"BZh") && (b'1'..=b'9').contains(&head[3]) {
            Some(Codec::Bzip2)
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Some(Codec::Xz)
        } else {
            None
        }
    }

    /// A decompressing reader (multi-member/concatenated streams are read to the end).
    pub fn reader<'a, R: Read + 'a>(self, inner: R) -> Box<dyn Read + 'a> {
        match self {
            Codec::Gzip => Box::new(MultiGzDecoder::new(inner)),
            Codec::Bzip2 => Box::new(MultiBzDecoder::new(inner)),
            Codec::Xz => Box::new(XzDecoder::new_multi_decoder(inner)),
        }
    }

    /// File name suffixes, and those that mean a tar inside.
    fn suffixes(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            Codec::Gzip => (&[".gz", ".gzip"], &[".tar.gz", ".tgz", ".taz"]),
            Codec::Bzip2 => (&[".bz2", ".bz"], &[".tar.bz2", ".tbz2", ".tbz", ".tb2"]),
            Codec::Xz => (&[".xz"], &[".tar.xz", ".txz"]),
        }
    }
}

/// Recognise an archive by magic bytes first, the name second.
pub fn sniff(name: &str, head: &[u8]) -> Kind {
    let lower = name.to_ascii_lowercase();
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Kind::Zip;
    }
    if let Some(codec) = Codec::sniff(head) {
        let (_, tar) = codec.suffixes();
        return if tar.iter().any(|s| lower.ends_with(s)) {
            Kind::CompressedTar(codec)
        } else {
            Kind::Compressed(codec)
        };
    }
    if head.len() > 262 && &head[257..262] == b"ustar" {
        return Kind::Tar;
    }
    Kind::Plain
}

/// `logs/app.log.gz` holds `logs/app.log.gz!/app.log`.
fn compressed_member_name(name: &str, codec: Codec) -> String {
    let base = name.rsplit(['/', '!']).next().unwrap_or(name);
    let lower = base.to_ascii_lowercase();
    let inner = codec
        .suffixes()
        .0
        .iter()
        .find(|s| lower.ends_with(*s))
        .map_or(base, |s| &base[..base.len() - s.len()]);
    let inner = if inner.is_empty() { "content" } else { inner };
    format!("{name}!/{inner}")
}

/// Counts decompressed bytes against the shared total and a ratio cap: a fixed one when the
/// compressed size is known (a zip member), else a live one against the compressed bytes
/// read so far (a gzip, bzip2 or xz stream of unknown length).
struct Budget<R> {
    inner: R,
    total: Rc<Cell<u64>>,
    max_total: u64,
    /// Bytes out of this decompressor so far.
    out: u64,
    cap: RatioCap,
}

enum RatioCap {
    /// At most this many bytes out.
    Fixed(u64),
    /// At most `ratio` times the compressed bytes read so far (and at least 1 MiB).
    Live {
        compressed: Rc<Cell<u64>>,
        ratio: u64,
    },
}

/// Output below this is never a bomb by ratio (small members compress arbitrarily well).
const RATIO_FLOOR: u64 = 1 << 20;

impl<R: Read> Read for Budget<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let used = self.total.get() + n as u64;
        if used > self.max_total {
            return Err(io::Error::new(
                REFUSED,
                format!(
                    "refused: more than {} bytes decompressed from one input (possible zip bomb; --max-decompressed)",
                    self.max_total
                ),
            ));
        }
        let out = self.out + n as u64;
        let cap = match &self.cap {
            RatioCap::Fixed(cap) => *cap,
            RatioCap::Live { compressed, ratio } => {
                compressed.get().saturating_mul(*ratio).max(RATIO_FLOOR)
            }
        };
        if out > cap {
            return Err(io::Error::new(
                REFUSED,
                "refused: decompresses far beyond its compressed size (possible zip bomb)",
            ));
        }
        self.total.set(used);
        self.out = out;
        Ok(n)
    }
}

/// Counts the bytes read through it (the compressed side of a stream).
struct Counting<R> {
    inner: R,
    n: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n.set(self.n.get() + n as u64);
        Ok(n)
    }
}

/// A decompressor of `inner` counted against `total` (at most `limits.max_total`) and a live
/// ratio (at most `limits.max_ratio` times what was read in, past 1 MiB).
fn stream_budget<'a, R: Read + 'a>(
    codec: Codec,
    inner: R,
    total: Rc<Cell<u64>>,
    limits: &Limits,
) -> Budget<Box<dyn Read + 'a>> {
    let compressed = Rc::new(Cell::new(0));
    Budget {
        inner: codec.reader(Counting {
            inner,
            n: compressed.clone(),
        }),
        total,
        max_total: limits.max_total,
        out: 0,
        cap: RatioCap::Live {
            compressed,
            ratio: limits.max_ratio,
        },
    }
}

/// A decompressing reader for an input that is not walked as an archive (stdin, a stream
/// inside a stream), under its own budget: `limits.max_total` bytes out, and at most
/// `limits.max_ratio` times what was read in (past 1 MiB).
pub fn budgeted<'a, R: Read + 'a>(codec: Codec, inner: R, limits: &Limits) -> Box<dyn Read + 'a> {
    Box::new(stream_budget(codec, inner, Rc::new(Cell::new(0)), limits))
}

/// The kind of the read error a budget ends a member with: callers that wrap the error keep
/// the kind, so the walker can tell a refusal from a broken archive.
pub const REFUSED: io::ErrorKind = io::ErrorKind::QuotaExceeded;

/// Something the walker could not or would not do.
#[derive(Debug)]
pub struct Problem {
    /// The member (or archive) it concerns, as `outer!/inner`.
    pub path: String,
    pub message: String,
    /// Deliberately not expanded (a bomb, too many members, nested too deep): the scan is
    /// incomplete, but nothing is broken.
    pub refused: bool,
}

/// A readable, seekable input (a file, bytes in memory, a spilled member): what a zip needs.
pub trait ReadSeek: Read + Seek {}
impl<T: Read + Seek> ReadSeek for T {}

/// Bytes read from a stream to sniff what it is.
const HEAD: usize = 512;

/// A zip inside a stream held in memory up to this size, in an unnamed temporary file above.
pub const SPILL_IN_MEMORY: u64 = 4 << 20;

/// Walks archives and hands each non-archive member to `scan`.
///
/// Nothing is held whole in memory: tar and compressed streams are read as they come, member
/// by member, nested ones straight from the outer stream; a zip needs to seek, so a zip found
/// inside a stream is copied out first (to memory up to [`SPILL_IN_MEMORY`], else to a
/// temporary file, at most `limits.max_spill` bytes).
pub struct Walker<'f> {
    limits: Limits,
    total: Rc<Cell<u64>>,
    entries: Cell<usize>,
    /// `scan(path, reader)`: scan one member; its error ends that member only.
    scan: &'f mut dyn FnMut(&str, &mut dyn Read) -> io::Result<()>,
    /// What went wrong or was refused, in order.
    pub errors: Vec<Problem>,
}

impl<'f> Walker<'f> {
    pub fn new(
        limits: Limits,
        scan: &'f mut dyn FnMut(&str, &mut dyn Read) -> io::Result<()>,
    ) -> Self {
        Walker {
            limits,
            total: Rc::new(Cell::new(0)),
            entries: Cell::new(0),
            scan,
            errors: Vec::new(),
        }
    }

    /// Walk `bytes`, named `name` (members are reported as `name!/member`).
    pub fn walk(&mut self, name: &str, bytes: &[u8]) {
        self.walk_seekable(name, &mut Cursor::new(bytes))
    }

    /// Walk a seekable input from its start (a file on disk: nothing of it is read into
    /// memory).
    pub fn walk_seekable(&mut self, name: &str, input: &mut dyn ReadSeek) {
        let mut head = Vec::with_capacity(HEAD);
        let read = input
            .seek(SeekFrom::Start(0))
            .and_then(|_| (&mut *input).take(HEAD as u64).read_to_end(&mut head));
        if let Err(e) = read.and_then(|_| input.seek(SeekFrom::Start(0))) {
            self.fail(name, &e);
            return;
        }
        let kind = sniff(name, &head);
        self.walk_kind(name, kind, Input::Seekable(input), 0);
    }

    /// Walk a stream (stdin, a pipe): read as it comes; a zip in it is spilled first.
    pub fn walk_stream(&mut self, name: &str, input: &mut dyn Read) {
        self.walk_read(name, input, 0)
    }

    fn walk_read(&mut self, name: &str, input: &mut dyn Read, depth: usize) {
        let mut head = Vec::with_capacity(HEAD);
        if let Err(e) = (&mut *input).take(HEAD as u64).read_to_end(&mut head) {
            self.fail(name, &e);
            return;
        }
        let kind = sniff(name, &head);
        let mut chained = Cursor::new(head).chain(input);
        self.walk_kind(name, kind, Input::Stream(&mut chained), depth);
    }

    /// A decompressor under the walker's budget (the total, and a live ratio).
    fn decompressed<'a>(
        &self,
        codec: Codec,
        inner: &'a mut dyn Read,
    ) -> Budget<Box<dyn Read + 'a>> {
        stream_budget(codec, inner, self.total.clone(), &self.limits)
    }

    /// A refusal.
    fn refuse(&mut self, path: &str, message: String) {
        self.errors.push(Problem {
            path: path.to_string(),
            message,
            refused: true,
        });
    }

    /// An error; a refusal if a budget ended the read.
    fn fail(&mut self, path: &str, e: &io::Error) {
        self.errors.push(Problem {
            path: path.to_string(),
            message: e.to_string(),
            refused: e.kind() == REFUSED,
        });
    }

    /// A broken archive.
    fn corrupt(&mut self, path: &str, message: String) {
        self.errors.push(Problem {
            path: path.to_string(),
            message,
            refused: false,
        });
    }

    fn refuse_depth(&mut self, path: &str) {
        let message = format!(
            "not opened: archive nesting deeper than {} (--max-archive-depth)",
            self.limits.max_depth
        );
        self.refuse(path, message);
    }

    fn count_entry(&mut self, path: &str) -> bool {
        self.entries.set(self.entries.get() + 1);
        if self.entries.get() > self.limits.max_entries {
            if self.entries.get() == self.limits.max_entries + 1 {
                let message = format!(
                    "refused: more than {} archive members (--max-archive-members)",
                    self.limits.max_entries
                );
                self.refuse(path, message);
            }
            return false;
        }
        true
    }

    /// Every byte read from `input` is input or already counted against the budget;
    /// decompressors inside are counted as they run.
    fn walk_kind(&mut self, name: &str, kind: Kind, input: Input<'_>, depth: usize) {
        if kind == Kind::Plain || depth >= self.limits.max_depth {
            if kind != Kind::Plain {
                self.refuse_depth(name);
            }
            if let Err(e) = (self.scan)(name, input.reader()) {
                self.fail(name, &e);
            }
            return;
        }
        match kind {
            Kind::Zip => match input {
                Input::Seekable(s) => self.walk_zip(name, s, depth),
                Input::Stream(r) => {
                    if let Some(mut spilled) = self.spill(name, r) {
                        self.walk_zip(name, &mut spilled, depth)
                    }
                }
            },
            Kind::Tar => self.walk_tar(name, input.reader(), depth),
            // Every decompressed byte counts, the headers, padding and data a walk skips
            // included: a tar "directory" declaring 1 TiB is decompressed to be skipped.
            Kind::CompressedTar(codec) => {
                let mut stream = self.decompressed(codec, input.reader());
                self.walk_tar(name, &mut stream, depth)
            }
            Kind::Compressed(codec) => {
                let member = compressed_member_name(name, codec);
                if self.count_entry(&member) {
                    let mut stream = self.decompressed(codec, input.reader());
                    self.member(&member, &mut stream, depth);
                }
            }
            Kind::Plain => unreachable!(),
        }
    }

    /// Copy a zip found in a stream out, so it can be opened: memory up to
    /// [`SPILL_IN_MEMORY`], then an unnamed temporary file, at most `limits.max_spill`.
    fn spill(&mut self, name: &str, r: &mut dyn Read) -> Option<Spilled> {
        let mut mem = Vec::new();
        let res = (&mut *r).take(SPILL_IN_MEMORY + 1).read_to_end(&mut mem);
        if let Err(e) = res {
            self.fail(name, &e);
            return None;
        }
        if mem.len() as u64 <= SPILL_IN_MEMORY {
            return Some(Spilled::Memory(Cursor::new(mem)));
        }
        let copied = tempfile::tempfile().and_then(|mut f| {
            f.write_all(&mem)?;
            drop(std::mem::take(&mut mem));
            let left = self.limits.max_spill.saturating_sub(SPILL_IN_MEMORY + 1);
            let n = io::copy(&mut (&mut *r).take(left.saturating_add(1)), &mut f)?;
            f.seek(SeekFrom::Start(0))?;
            Ok((f, n > left))
        });
        match copied {
            Ok((_, true)) => {
                self.refuse(
                    name,
                    format!(
                        "refused: a zip inside a stream longer than {} bytes (--max-file-size); not opened",
                        self.limits.max_spill
                    ),
                );
                None
            }
            Ok((f, false)) => Some(Spilled::File(f)),
            Err(e) => {
                self.fail(
                    name,
                    &io::Error::new(
                        e.kind(),
                        format!("cannot copy a zip out of its stream: {e}"),
                    ),
                );
                None
            }
        }
    }

    /// One member: an archive inside is walked straight from it; anything else is scanned
    /// as a stream.
    fn member(&mut self, path: &str, reader: &mut dyn Read, depth: usize) {
        let mut head = Vec::with_capacity(HEAD);
        if let Err(e) = (&mut *reader).take(HEAD as u64).read_to_end(&mut head) {
            self.fail(path, &e);
            return;
        }
        let kind = sniff(path, &head);
        let nested = kind != Kind::Plain;
        let mut chained = Cursor::new(head).chain(reader);
        if nested && depth + 1 >= self.limits.max_depth {
            // Scanned below as raw bytes, but the caller must know it was not opened.
            self.refuse_depth(path);
        } else if nested {
            self.walk_kind(path, kind, Input::Stream(&mut chained), depth + 1);
            return;
        }
        if let Err(e) = (self.scan)(path, &mut chained) {
            self.fail(path, &e);
        }
    }

    fn walk_zip(&mut self, name: &str, input: &mut dyn ReadSeek, depth: usize) {
        let mut zip = match zip::ZipArchive::new(input) {
            Ok(z) => z,
            Err(e) => {
                self.corrupt(name, format!("corrupt zip: {e}"));
                return;
            }
        };
        for i in 0..zip.len() {
            let entry = match zip.by_index(i) {
                Ok(e) => e,
                Err(e) => {
                    self.corrupt(name, format!("corrupt zip entry {i}: {e}"));
                    continue;
                }
            };
            if entry.is_dir() {
                continue;
            }
            let path = format!("{name}!/{}", entry.name());
            if !self.count_entry(&path) {
                return;
            }
            let cap = entry
                .compressed_size()
                .max(1)
                .saturating_mul(self.limits.max_ratio)
                .max(RATIO_FLOOR);
            let mut limited = Budget {
                inner: entry,
                total: self.total.clone(),
                max_total: self.limits.max_total,
                out: 0,
                cap: RatioCap::Fixed(cap),
            };
            self.member(&path, &mut limited, depth);
        }
    }

    fn walk_tar(&mut self, name: &str, reader: &mut dyn Read, depth: usize) {
        let mut tar = tar::Archive::new(reader);
        // Raw entries: GNU long names and PAX headers are read here, capped at
        // [`MAX_TAR_META`]; the tar crate would read a 2 GiB long name whole into memory.
        let entries = match tar.entries() {
            Ok(e) => e.raw(true),
            Err(e) => {
                self.corrupt(name, format!("corrupt tar: {e}"));
                return;
            }
        };
        let mut long_name: Option<String> = None;
        let mut pax_path: Option<String> = None;
        for entry in entries {
            let mut entry = match entry {
                Ok(e) => e,
                // A budget refusal surfaces here when skipping data decompressed past it.
                Err(e) if e.kind() == REFUSED => {
                    self.fail(name, &e);
                    return;
                }
                Err(e) => {
                    self.corrupt(name, format!("truncated or corrupt tar: {e}"));
                    return;
                }
            };
            let kind = entry.header().entry_type();
            let meta = kind.is_gnu_longname()
                || kind.is_gnu_longlink()
                || kind.is_pax_local_extensions()
                || kind.is_pax_global_extensions();
            if meta {
                if entry.size() > MAX_TAR_META {
                    self.refuse(
                        name,
                        format!(
                            "refused: a tar name or PAX header of {} bytes (at most {MAX_TAR_META}); the rest of the archive was not read",
                            entry.size()
                        ),
                    );
                    return;
                }
                let mut data = Vec::new();
                if let Err(e) = entry.read_to_end(&mut data) {
                    self.fail(name, &e);
                    return;
                }
                if kind.is_gnu_longname() {
                    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
                    long_name = Some(String::from_utf8_lossy(&data[..end]).into_owned());
                } else if kind.is_pax_local_extensions() {
                    pax_path = pax_record(&data, "path");
                }
                continue;
            }
            let member = pax_path
                .take()
                .or(long_name.take())
                .unwrap_or_else(|| String::from_utf8_lossy(&entry.path_bytes()).into_owned());
            // Every member that carries data is scanned as a file, whatever its type says:
            // GNU tar extracts contiguous (`7`) and unknown types as regular files, and data
            // hidden behind a directory, link or FIFO header is data all the same.
            if !kind.is_file() && entry.size() == 0 {
                continue;
            }
            let path = format!("{name}!/{member}");
            if !self.count_entry(&path) {
                return;
            }
            // Tar members are stored, not compressed: what they hold was counted when the
            // stream around them was decompressed (or is input as it is).
            self.member(&path, &mut entry, depth);
        }
    }
}

/// What is walked: something that seeks (a zip is opened in place) or a stream.
enum Input<'a> {
    Seekable(&'a mut dyn ReadSeek),
    Stream(&'a mut dyn Read),
}

impl<'a> Input<'a> {
    fn reader(self) -> &'a mut dyn Read {
        match self {
            Input::Seekable(s) => s,
            Input::Stream(r) => r,
        }
    }
}

/// A zip copied out of a stream.
enum Spilled {
    Memory(Cursor<Vec<u8>>),
    File(std::fs::File),
}

impl Read for Spilled {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Spilled::Memory(c) => c.read(buf),
            Spilled::File(f) => f.read(buf),
        }
    }
}

impl Seek for Spilled {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        match self {
            Spilled::Memory(c) => c.seek(pos),
            Spilled::File(f) => f.seek(pos),
        }
    }
}

/// The longest GNU long name, long link or PAX header read from a tar.
pub const MAX_TAR_META: u64 = 64 << 10;

/// The value of `key` in PAX extended-header records (`LEN key=value\n`).
fn pax_record(data: &[u8], key: &str) -> Option<String> {
    let mut rest = data;
    while !rest.is_empty() {
        let sp = rest.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&rest[..sp]).ok()?.parse().ok()?;
        if len <= sp || len > rest.len() {
            return None;
        }
        let record = &rest[sp + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(eq) = record.iter().position(|&b| b == b'=') {
            if &record[..eq] == key.as_bytes() {
                return Some(String::from_utf8_lossy(&record[eq + 1..]).into_owned());
            }
        }
        rest = &rest[len..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, data) in files {
            w.start_file(*name, opts).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    fn tar_gz_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        compress(Codec::Gzip, &tar_of(files))
    }

    type Seen = Vec<(String, Vec<u8>)>;
    type Errors = Vec<Problem>;

    fn walk(name: &str, bytes: &[u8], limits: Limits) -> (Seen, Errors) {
        let mut seen = Vec::new();
        let mut scan = |path: &str, r: &mut dyn Read| {
            let mut v = Vec::new();
            let res = r.read_to_end(&mut v);
            seen.push((path.to_string(), v));
            res.map(|_| ())
        };
        let mut w = Walker::new(limits, &mut scan);
        w.walk(name, bytes);
        let errors = w.errors;
        (seen, errors)
    }

    #[test]
    fn tar_members_of_every_type_that_carries_data_are_scanned() {
        let mut b = tar::Builder::new(Vec::new());
        for (i, t) in [b'0', b'7', b'Z', b'D', b'V', b'1', b'6']
            .iter()
            .enumerate()
        {
            let data = format!("member {i} of type {}", *t as char);
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::new(*t));
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, format!("m{i}"), data.as_bytes())
                .unwrap();
        }
        // A directory and a symlink without data are not inputs.
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        h.set_cksum();
        b.append_data(&mut h, "dir/", &[][..]).unwrap();
        let (seen, errors) = walk("t.tar", &b.into_inner().unwrap(), Limits::default());
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            seen.len(),
            7,
            "{:?}",
            seen.iter().map(|s| &s.0).collect::<Vec<_>>()
        );
        assert!(seen.iter().all(|(_, data)| data.starts_with(b"member ")));
    }

    #[test]
    fn nested_archives_are_walked_with_chained_paths() {
        let inner = tar_gz_of(&[("logs/app.log", b"hello token")]);
        let outer = zip_of(&[("reports/inner.tar.gz", &inner), ("a.txt", b"plain")]);
        let (seen, errors) = walk("reports.zip", &outer, Limits::default());
        assert!(errors.is_empty(), "{errors:?}");
        let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "reports.zip!/reports/inner.tar.gz!/logs/app.log",
                "reports.zip!/a.txt"
            ]
        );
        assert_eq!(seen[0].1, b"hello token");
    }

    #[test]
    fn depth_limit_scans_the_inner_archive_as_bytes() {
        let inner = zip_of(&[("x.txt", b"x")]);
        let outer = zip_of(&[("in.zip", &inner)]);
        let (seen, errors) = walk(
            "o.zip",
            &outer,
            Limits {
                max_depth: 1,
                ..Limits::default()
            },
        );
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].0, "o.zip!/in.zip");
        assert_eq!(seen[0].1, inner, "scanned as raw bytes");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].message.starts_with("not opened"), "{errors:?}");
        assert!(errors[0].refused, "not opening is a refusal, not an error");
        let (_, errors) = walk(
            "o.zip",
            &outer,
            Limits {
                max_depth: 0,
                ..Limits::default()
            },
        );
        assert!(errors[0].message.contains("nesting"), "{errors:?}");
    }

    #[test]
    fn a_zip_bomb_is_refused() {
        // 64 MiB of zeros deflate to about 64 KiB: a ratio far above 200.
        let zeros = vec![0u8; 64 << 20];
        let bomb = zip_of(&[("bomb.txt", &zeros), ("after.txt", b"still scanned")]);
        assert!(bomb.len() < 1 << 20);
        let (seen, errors) = walk("b.zip", &bomb, Limits::default());
        assert!(
            errors
                .iter()
                .any(|e| e.path == "b.zip!/bomb.txt" && e.refused && e.message.contains("refused")),
            "{errors:?}"
        );
        assert!(seen[0].1.len() < 64 << 20, "the bomb was not expanded");
        assert_eq!(seen.last().unwrap().1, b"still scanned");
        // And the total budget holds across members.
        let (_, errors) = walk(
            "b.zip",
            &bomb,
            Limits {
                max_total: 1000,
                max_ratio: u64::MAX / 2,
                ..Limits::default()
            },
        );
        assert!(errors
            .iter()
            .any(|e| e.refused && e.message.contains("refused")));
    }

    #[test]
    fn truncated_tar_gz_yields_what_it_can_and_an_error() {
        let big: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let tgz = tar_gz_of(&[("first.log", b"first member"), ("second.bin", &big)]);
        let cut = &tgz[..tgz.len() / 2];
        let (seen, errors) = walk("a.tar.gz", cut, Limits::default());
        assert_eq!(seen[0].1, b"first member");
        assert!(!errors.is_empty());
    }

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn compress(codec: Codec, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match codec {
            Codec::Gzip => {
                let mut w = flate2::write::GzEncoder::new(&mut out, flate2::Compression::fast());
                w.write_all(data).unwrap();
                w.finish().unwrap();
            }
            Codec::Bzip2 => {
                let mut w = bzip2::write::BzEncoder::new(&mut out, bzip2::Compression::fast());
                w.write_all(data).unwrap();
                w.finish().unwrap();
            }
            Codec::Xz => {
                let mut w = liblzma::write::XzEncoder::new(&mut out, 1);
                w.write_all(data).unwrap();
                w.finish().unwrap();
            }
        }
        out
    }

    #[test]
    fn every_codec_alone_and_around_a_tar() {
        let tar = tar_of(&[("logs/a.log", b"alpha"), ("logs/b.log", b"beta")]);
        for (codec, ext, tar_ext) in [
            (Codec::Gzip, "gz", "tgz"),
            (Codec::Bzip2, "bz2", "tar.bz2"),
            (Codec::Xz, "xz", "txz"),
        ] {
            let (seen, errors) = walk(
                &format!("app.log.{ext}"),
                &compress(codec, b"line\n"),
                Limits::default(),
            );
            assert!(errors.is_empty(), "{codec:?}: {errors:?}");
            assert_eq!(
                seen,
                vec![(format!("app.log.{ext}!/app.log"), b"line\n".to_vec())]
            );
            let name = format!("logs.{tar_ext}");
            let (seen, errors) = walk(&name, &compress(codec, &tar), Limits::default());
            assert!(errors.is_empty(), "{codec:?}: {errors:?}");
            assert_eq!(
                seen,
                vec![
                    (format!("{name}!/logs/a.log"), b"alpha".to_vec()),
                    (format!("{name}!/logs/b.log"), b"beta".to_vec())
                ]
            );
            // A tar inside a stream that is not named as one is found by its content.
            let (seen, _) = walk(
                &format!("blob.{ext}"),
                &compress(codec, &tar),
                Limits::default(),
            );
            assert_eq!(seen[0].0, format!("blob.{ext}!/blob!/logs/a.log"));
        }
    }

    #[test]
    fn bzip2_and_xz_bombs_are_refused_and_truncation_is_an_error() {
        let zeros = vec![0u8; 64 << 20];
        for codec in [Codec::Bzip2, Codec::Xz] {
            let bomb = compress(codec, &zeros);
            assert!(bomb.len() < 64 << 10, "{codec:?}: {}", bomb.len());
            let (seen, errors) = walk("z.bin", &bomb, Limits::default());
            assert!(
                errors[0].refused && errors[0].message.contains("refused"),
                "{codec:?}: {errors:?}"
            );
            assert!(seen[0].1.len() <= 200 * bomb.len().max(1 << 20) + (1 << 20));
            let text: Vec<u8> = (0..100_000u32)
                .flat_map(|i| format!("line {i}\n").into_bytes())
                .collect();
            let packed = compress(codec, &text);
            let (seen, errors) = walk("t.log", &packed[..packed.len() / 2], Limits::default());
            assert!(!errors.is_empty(), "{codec:?}: truncation must be reported");
            assert!(
                errors.iter().all(|e| !e.refused),
                "{codec:?}: truncation is an error"
            );
            assert!(
                text.starts_with(&seen[0].1),
                "{codec:?}: what was read is a prefix"
            );
        }
    }

    #[test]
    fn corrupt_zip_is_an_error() {
        let (seen, errors) = walk("x.zip", b"PK\x03\x04garbage", Limits::default());
        assert!(seen.is_empty());
        assert!(errors[0].message.contains("corrupt zip") && !errors[0].refused);
    }

    #[test]
    fn sniffing() {
        assert_eq!(sniff("a.zip", b"PK\x03\x04"), Kind::Zip);
        assert_eq!(sniff("a.jar", b"PK\x03\x04"), Kind::Zip);
        assert_eq!(
            sniff("a.tgz", &[0x1f, 0x8b]),
            Kind::CompressedTar(Codec::Gzip)
        );
        assert_eq!(
            sniff("a.log.gz", &[0x1f, 0x8b]),
            Kind::Compressed(Codec::Gzip)
        );
        assert_eq!(
            sniff("x.TBZ2", b"BZh91AY&SY"),
            Kind::CompressedTar(Codec::Bzip2)
        );
        assert_eq!(sniff("x", b"BZh91AY&SY"), Kind::Compressed(Codec::Bzip2));
        assert_eq!(sniff("BZh", b"BZh"), Kind::Plain, "too short for bzip2");
        let xz = [0xfd, b'7', b'z', b'X', b'Z', 0, 0, 4];
        assert_eq!(sniff("a.tar.xz", &xz), Kind::CompressedTar(Codec::Xz));
        assert_eq!(sniff("a.log.xz", &xz), Kind::Compressed(Codec::Xz));
        assert_eq!(
            compressed_member_name("r.zip!/logs/app.log.bz2", Codec::Bzip2),
            "r.zip!/logs/app.log.bz2!/app.log"
        );
        assert_eq!(compressed_member_name("blob", Codec::Xz), "blob!/blob");
        assert_eq!(compressed_member_name(".gz", Codec::Gzip), ".gz!/content");
        assert_eq!(sniff("a.txt", b"hello"), Kind::Plain);
    }

    #[test]
    fn tar_long_names_are_kept_and_huge_ones_refused() {
        let secret = b"token ghp_Zq3kYb8TfW2mN5rXc7vH1jL9pD4sGa0t7Hkq\n";
        let long = format!("deep/{}/build.log", "d".repeat(300));
        let (seen, errors) = walk(
            "a.tar",
            &tar_of(&[(long.as_str(), secret)]),
            Limits::default(),
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(seen[0].0, format!("a.tar!/{long}"));
        // A GNU long name over the cap: refused, nothing read past it.
        let huge = format!("{}/x.log", "n".repeat(MAX_TAR_META as usize + 10));
        let (seen, errors) = walk(
            "a.tar",
            &tar_of(&[(huge.as_str(), secret), ("b.log", secret)]),
            Limits::default(),
        );
        assert!(
            seen.is_empty(),
            "{:?}",
            seen.iter().map(|s| s.0.len()).collect::<Vec<_>>()
        );
        assert!(
            errors[0].refused && errors[0].message.contains("tar name or PAX header"),
            "{errors:?}"
        );
        // A PAX header over the cap (1 GiB in the full-size bomb): refused the same way.
        let mut b = tar::Builder::new(Vec::new());
        let big = vec![b'p'; MAX_TAR_META as usize + 100];
        b.append_pax_extensions([("path", &big[..])]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(secret.len() as u64);
        h.set_cksum();
        b.append_data(&mut h, "b.log", &secret[..]).unwrap();
        let (seen, errors) = walk("p.tar", &b.into_inner().unwrap(), Limits::default());
        assert!(seen.is_empty());
        assert!(
            errors[0].refused && errors[0].message.contains("tar name or PAX header"),
            "{errors:?}"
        );
        assert_eq!(
            pax_record(b"18 path=a/b/c.log\n12 uid=100\n", "path").as_deref(),
            Some("a/b/c.log")
        );
        assert_eq!(pax_record(b"12 uid=100\n", "path"), None);
    }
    #[test]
    fn data_a_walk_skips_is_decompressed_under_the_budget() {
        // A directory entry "holding" 64 MiB of zeros in a tar.bz2 of a few hundred bytes:
        // nobody reads the member, the tar reader skips it by decompressing it. That counts.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(64 << 20);
        h.set_cksum();
        b.append_data(&mut h, "dir/", io::repeat(0).take(64 << 20))
            .unwrap();
        let bomb = compress(Codec::Bzip2, &b.into_inner().unwrap());
        assert!(bomb.len() < 4096, "{}", bomb.len());
        let mut members = 0;
        let mut skip = |_: &str, _: &mut dyn Read| {
            members += 1;
            Ok(())
        };
        let limits = Limits {
            max_total: 8 << 20,
            max_ratio: u64::MAX / 2,
            ..Limits::default()
        };
        let mut w = Walker::new(limits.clone(), &mut skip);
        w.walk("d.tar.bz2", &bomb);
        let errors = w.errors;
        assert!(
            errors
                .iter()
                .any(|e| e.refused && e.message.contains("--max-decompressed")),
            "{errors:?}"
        );
        // And by ratio alone, without a total.
        let mut skip = |_: &str, _: &mut dyn Read| Ok(());
        let mut w = Walker::new(Limits::default(), &mut skip);
        w.walk("d.tar.bz2", &bomb);
        assert!(w.errors.iter().any(|e| e.refused), "{:?}", w.errors);
        assert_eq!(members, 1);
    }

    /// A reader that counts what was taken from it.
    struct Tell<R> {
        inner: R,
        at: Rc<Cell<u64>>,
    }

    impl<R: Read> Read for Tell<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.at.set(self.at.get() + n as u64);
            Ok(n)
        }
    }

    #[test]
    fn nested_archives_stream_from_the_outer_one() {
        // outer.tar holds inner.tar.gz holding a small log then 16 MiB of noise: the log is
        // scanned before the outer stream is read past it (the nested archive is not
        // buffered whole first).
        let noise: Vec<u8> = (0..(16u32 << 20))
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let inner = tar_gz_of(&[("a.log", b"first"), ("b.bin", &noise)]);
        let outer = tar_of(&[("inner.tar.gz", &inner)]);
        let at = Rc::new(Cell::new(0u64));
        let mut seen_at = Vec::new();
        let mut scan = |path: &str, r: &mut dyn Read| {
            seen_at.push((path.to_string(), at.get()));
            io::copy(r, &mut io::sink()).map(|_| ())
        };
        let mut w = Walker::new(Limits::default(), &mut scan);
        let mut stream = Tell {
            inner: Cursor::new(&outer),
            at: at.clone(),
        };
        w.walk_stream("outer.tar", &mut stream);
        assert!(w.errors.is_empty(), "{:?}", w.errors);
        assert_eq!(seen_at[0].0, "outer.tar!/inner.tar.gz!/a.log");
        assert!(
            seen_at[0].1 < (outer.len() as u64) / 4,
            "{} of {} bytes read before the first member",
            seen_at[0].1,
            outer.len()
        );
        assert_eq!(seen_at.len(), 2);
    }

    #[test]
    fn a_zip_in_a_stream_is_spilled_and_capped() {
        let noise: Vec<u8> = (0..(6u32 << 20))
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let z = {
            let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored);
            w.start_file("noise.bin", opts).unwrap();
            w.write_all(&noise).unwrap();
            w.start_file("last.log", opts).unwrap();
            w.write_all(b"after the noise").unwrap();
            w.finish().unwrap().into_inner()
        };
        assert!(z.len() as u64 > SPILL_IN_MEMORY, "spills to a file");
        let mut seen = Vec::new();
        let mut scan = |path: &str, r: &mut dyn Read| {
            let mut v = Vec::new();
            r.read_to_end(&mut v)?;
            seen.push((path.to_string(), v.len()));
            Ok(())
        };
        let mut w = Walker::new(Limits::default(), &mut scan);
        w.walk_stream("<stdin>", &mut Cursor::new(&z));
        assert!(w.errors.is_empty(), "{:?}", w.errors);
        assert_eq!(
            seen,
            [
                ("<stdin>!/noise.bin".to_string(), noise.len()),
                ("<stdin>!/last.log".to_string(), 15)
            ]
        );
        let mut none = |_: &str, _: &mut dyn Read| Ok(());
        let mut w = Walker::new(
            Limits {
                max_spill: 5 << 20,
                ..Limits::default()
            },
            &mut none,
        );
        w.walk_stream("<stdin>", &mut Cursor::new(&z));
        assert!(
            w.errors[0].refused && w.errors[0].message.contains("--max-file-size"),
            "{:?}",
            w.errors
        );
    }

    #[test]
    fn a_stream_decompressed_alone_is_budgeted() {
        let bomb = compress(Codec::Bzip2, &vec![0u8; 64 << 20]);
        assert!(bomb.len() < 1024, "{}", bomb.len());
        let mut r = budgeted(Codec::Bzip2, Cursor::new(&bomb), &Limits::default());
        let e = io::copy(&mut r, &mut io::sink()).unwrap_err();
        assert_eq!(e.kind(), REFUSED, "{e}");
        // Text that compresses like text passes the ratio, then meets the total.
        let text: Vec<u8> = (0..400_000u32)
            .flat_map(|i| format!("{:x} line\n", i.wrapping_mul(2654435761)).into_bytes())
            .collect();
        let packed = compress(Codec::Gzip, &text);
        let mut r = budgeted(Codec::Gzip, Cursor::new(&packed), &Limits::default());
        assert_eq!(
            io::copy(&mut r, &mut io::sink()).unwrap(),
            text.len() as u64
        );
        let small = Limits {
            max_total: 1 << 20,
            ..Limits::default()
        };
        let mut r = budgeted(Codec::Gzip, Cursor::new(&packed), &small);
        let e = io::copy(&mut r, &mut io::sink()).unwrap_err();
        assert!(
            e.kind() == REFUSED && e.to_string().contains("--max-decompressed"),
            "{e}"
        );
    }
}
