//! Helpers: run the binary, write fixtures, make well-formed fake tokens.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use cisleuth::detect::checksum::encode_base62;

/// Write `bytes` to `name` (parent folders created) under `dir`; returns the path.
pub fn write(dir: &tempfile::TempDir, name: &str, bytes: impl AsRef<[u8]>) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::create_dir_all(p.parent().expect("a file name")).unwrap();
    std::fs::write(&p, bytes).unwrap();
    p
}

/// The binary under test.
pub fn cisleuth() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cisleuth"));
    c.env_remove("NO_COLOR").stdin(Stdio::null());
    c
}

/// Run with `args`, return the output.
pub fn run(args: &[&str]) -> Output {
    cisleuth().args(args).output().expect("run cisleuth")
}

/// Exit code (panics on a signal).
pub fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 stdout")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Parse JSONL stdout into values.
pub fn jsonl(o: &Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSONL line {l:?}: {e}")))
        .collect()
}

/// Scan `paths` as JSONL with secrets shown.
pub fn scan_jsonl(paths: &[&Path], extra: &[&str]) -> Output {
    let mut c = cisleuth();
    c.args(["scan", "path", "--format", "jsonl", "--show-secrets"]);
    c.args(extra);
    c.args(paths);
    c.output().expect("run cisleuth")
}

/// A GitHub-style token (`prefix_` + 30 base62 + CRC32 checksum) derived from `seed`.
pub fn gh_token(prefix: &str, seed: u64) -> String {
    const B62: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let body: String = (0..30)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            B62[((x >> 33) % 62) as usize] as char
        })
        .collect();
    format!(
        "{prefix}_{body}{}",
        encode_base62(crc32fast::hash(body.as_bytes()))
    )
}

/// (rule_id, secret, line, column) of each finding, sorted.
pub fn summary(found: &[serde_json::Value]) -> Vec<(String, String, u64, u64)> {
    let mut v: Vec<_> = found
        .iter()
        .map(|f| {
            (
                f["rule_id"].as_str().unwrap().to_string(),
                f["secret"].as_str().unwrap_or("").to_string(),
                f["location"]["line"].as_u64().unwrap(),
                f["location"]["column"].as_u64().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Run with `args`, writing `input` to its stdin (as a pipe: `... | cisleuth scan -`).
pub fn run_with_stdin(args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = cisleuth()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run cisleuth");
    // The scan may stop reading early (an error); a closed pipe is its answer, not ours.
    let _ = child.stdin.take().expect("stdin").write_all(input);
    child.wait_with_output().expect("wait for cisleuth")
}
