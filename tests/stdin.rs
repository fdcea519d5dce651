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
