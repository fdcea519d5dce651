//! `cisleuth scan -`: streaming from a pipe.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use crate::util::*;

#[test]
fn findings_arrive_while_the_pipe_is_still_open() {
    let mut child = cisleuth()
        .args(["scan", "-", "--format", "jsonl"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let tok = gh_token("ghp", 20);
    writeln!(input, "building...\nexport GITHUB_TOKEN={tok}").unwrap();
    input.flush().unwrap();
    // The producer has not finished: the finding must come out now, not at EOF.
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("no finding while stdin is open");
    let f: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(f["rule_id"], "github-pat");
    assert_eq!(f["location"]["source"], "stdin");
    assert_eq!(f["location"]["line"], 2);
    assert!(f.get("secret").is_none());
    let tok2 = gh_token("ghp", 21);
    writeln!(input, "more\n{tok2}").unwrap();
    drop(input);
    let line = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    let f: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(f["location"]["line"], 4);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
}

#[test]
fn stdin_gzip_and_json_are_recognised() {
    use flate2::write::GzEncoder;
    let tok = gh_token("ghp", 22);
    let body =
        serde_json::json!([{"message": format!("a\r\nb {tok}\r\n"), "time": "t", "type": "out"}])
            .to_string();
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(body.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let o = run_with_stdin(&["scan", "-", "--format", "jsonl", "--show-secrets"], &gz);
    assert_eq!(summary(&jsonl(&o)), vec![("github-pat".into(), tok, 2, 3)]);
}

#[test]
fn empty_stdin_is_clean() {
    let o = cisleuth().args(["scan", "-"]).output().unwrap();
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).is_empty());
}

/// Decompression on stdin is budgeted like an archive member: a bzip2 bomb of a few hundred
/// bytes is refused by ratio, and a stream that compresses like text meets
/// `--max-decompressed`. Before, both were expanded to the end (785 bytes -> 1 GiB scanned).
#[test]
fn decompression_bombs_on_stdin_are_refused() {
    use std::io::Write;
    let tok = gh_token("ghp", 23);
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
    writeln!(bz, "export GITHUB_TOKEN={tok}").unwrap();
    bz.write_all(&vec![0u8; 64 << 20]).unwrap();
    let bomb = bz.finish().unwrap();
    assert!(bomb.len() < 1024, "{}", bomb.len());
    let out = run_with_stdin(&["scan", "-", "--format", "jsonl"], &bomb);
    // What came before the refusal was scanned; the scan is incomplete, not clean.
    assert_eq!(jsonl(&out).len(), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("refused"), "{}", stderr(&out));
    let text: String = (0..200_000u32)
        .map(|i| format!("{:08x} step {i} ok\n", i.wrapping_mul(2654435761)))
        .collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let out = run_with_stdin(
        &["scan", "-", "--format", "jsonl", "--max-decompressed", "1M"],
        &gz,
    );
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--max-decompressed"),
        "{}",
        stderr(&out)
    );
    let out = run_with_stdin(&["scan", "-", "--format", "jsonl"], &gz);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}
