//! `cisleuth scan path`: fixtures of real CI-log shapes.

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;
use tempfile::TempDir;

use crate::util::*;

#[test]
fn plain_log_finding_with_line_column_and_exit_1() {
    let dir = TempDir::new().unwrap();
    let tok = gh_token("ghp", 1);
    let p = write(
        &dir,
        "build.log",
        format!("step 1\nstep 2\n+ git push https://{tok}@github.com/a/b\n").as_bytes(),
    );
    let o = scan_jsonl(&[&p], &[]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let found = jsonl(&o);
    assert_eq!(
        summary(&found),
        vec![("github-pat".into(), tok.clone(), 3, 20)]
    );
    assert_eq!(found[0]["checksum_valid"], true);
    assert_eq!(found[0]["location"]["source"], "file");
    assert_eq!(found[0]["location"]["path"], p.display().to_string());
}

#[test]
fn secrets_are_redacted_unless_asked_for() {
    let dir = TempDir::new().unwrap();
    let tok = gh_token("ghp", 2);
    let p = write(&dir, "a.log", format!("token {tok}\n").as_bytes());
    for format in ["jsonl", "json", "human"] {
        let o = run(&["scan", "path", "--format", format, p.to_str().unwrap()]);
        assert_eq!(code(&o), 1);
        let out = stdout(&o);
        assert!(!out.contains(&tok), "{format} leaked the secret: {out}");
        assert!(!stderr(&o).contains(&tok));
        assert!(
            out.contains(&format!("ghp_…{}", &tok[tok.len() - 4..])),
            "{format}: {out}"
        );
    }
    let o = run(&[
        "scan",
        "path",
        "--format",
        "human",
        "--show-secrets",
        p.to_str().unwrap(),
    ]);
    assert!(stdout(&o).contains(&tok));
}

#[test]
fn ansi_coloured_lines_are_found() {
    // Peers miss these: `\x1b[32m` leaves an `m` right before the key, so `\b` fails.
    let dir = TempDir::new().unwrap();
    let key = "AKIAZ7Q3K2M4N5P6R7S2";
    let p = write(
        &dir,
        "c.log",
        format!("\x1b[1;32m{key}\x1b[0m\n\x1b[33mAWS_ACCESS_KEY_ID\x1b[0m=\x1b[36m{key}\x1b[0m\n")
            .as_bytes(),
    );
    // A key id alone is low confidence (an identifier without its secret).
    let found = jsonl(&scan_jsonl(&[&p], &["--min-confidence", "low"]));
    assert_eq!(
        summary(&found),
        vec![
            ("aws-access-key-id".into(), key.into(), 1, 1),
            ("aws-access-key-id".into(), key.into(), 2, 19)
        ]
    );
    assert!(found.iter().all(|f| f["confidence"] == "low"));
}

#[test]
fn carriage_return_redraws() {
    let dir = TempDir::new().unwrap();
    let tok = gh_token("gho", 3);
    let p = write(
        &dir,
        "r.log",
        format!("Pulling  5%\rPulling 50%\r{tok} 100%\nnext\n").as_bytes(),
    );
    let found = jsonl(&scan_jsonl(&[&p], &[]));
    assert_eq!(
        summary(&found),
        vec![("github-oauth-token".into(), tok, 1, 1)]
    );
}

#[test]
fn circleci_step_output_json() {
    let dir = TempDir::new().unwrap();
    let tok = gh_token("ghs", 4);
    let body = serde_json::json!([
        {"message": "#!/bin/bash -eo pipefail\r\nset -x\r\n", "time": "2022-12-28T10:00:00.000Z", "type": "out"},
        {"message": format!("+ curl -u ci:{tok} https://api.github.com\r\n"), "time": "2022-12-28T10:00:00.5Z", "type": "out"},
        {"message": "\nExited with code exit status 1\n", "time": "2022-12-28T10:00:01.007Z", "type": "err"}
    ]);
    let p = write(&dir, "step.json", body.to_string().as_bytes());
    let found = jsonl(&scan_jsonl(&[&p], &[]));
    // Line 3 of the joined messages; the raw JSON is one line.
    assert_eq!(
        summary(&found),
        vec![("github-server-to-server-token".into(), tok, 3, 14)]
    );
}

#[test]
fn gzip_files_are_read_transparently() {
    let dir = TempDir::new().unwrap();
    let tok = gh_token("ghp", 5);
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(format!("a\nb\nexport GH={tok}\n").as_bytes())
        .unwrap();
    let p = write(&dir, "logs/old.log.gz", gz.finish().unwrap());
    let o = scan_jsonl(&[dir.path()], &[]);
    assert_eq!(summary(&jsonl(&o)), vec![("github-pat".into(), tok, 3, 11)]);
    assert!(jsonl(&o)[0]["location"]["path"]
        .as_str()
        .unwrap()
        .ends_with("logs/old.log.gz!/old.log"));
    let _ = p;
}

#[test]
fn truncated_gzip_reports_what_it_read_and_an_error() {
    let dir = TempDir::new().unwrap();
    let tok = gh_token("ghp", 6);
    let mut text = format!("first {tok}\n").into_bytes();
    // Enough incompressible-ish text that the cut falls after the token's chunk.
    for i in 0..20000u32 {
        text.extend_from_slice(format!("{i:08x} {}\n", i.wrapping_mul(2654435761)).as_bytes());
    }
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&text).unwrap();
    let full = gz.finish().unwrap();
    let p = write(&dir, "cut.log.gz", &full[..full.len() * 2 / 3]);
    let o = scan_jsonl(&[&p], &[]);
    assert_eq!(code(&o), 1, "a finding still wins over the error");
    assert_eq!(summary(&jsonl(&o)).len(), 1);
    assert!(
        stderr(&o).contains("cut.log.gz!/cut.log: read failed after"),
        "{}",
        stderr(&o)
    );
    // Without the token, the same truncation must not look clean.
    let p2 = write(&dir, "cut2.log.gz", &{
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&text[text.iter().position(|&b| b == b'\n').unwrap() + 1..])
            .unwrap();
        let f = gz.finish().unwrap();
        f[..f.len() / 2].to_vec()
    });
    let o = scan_jsonl(&[&p2], &[]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
}

#[test]
fn invalid_utf8_and_binary_bytes() {
    let dir = TempDir::new().unwrap();
    let tok = gh_token("ghp", 7);
    let mut bytes = vec![0xff, 0xfe, 0x00, 0xc3, 0x28, b'\n'];
    bytes.extend_from_slice(b"\x80\x81 ");
    bytes.extend_from_slice(tok.as_bytes());
    bytes.extend_from_slice(b" \xe2\x82\n");
    let p = write(&dir, "bin.log", &bytes);
    let found = jsonl(&scan_jsonl(&[&p], &[]));
    assert_eq!(summary(&found), vec![("github-pat".into(), tok, 2, 4)]);
}

#[test]
fn placeholders_and_masked_values_are_not_findings() {
    let dir = TempDir::new().unwrap();
    let text = "GITHUB_TOKEN=****************************************\n\
        AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n\
        aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n\
        password: ${DB_PASSWORD}\n\
        token: ${{ secrets.NPM_TOKEN }}\n\
        api_key=<your-api-key-here>\n\
        ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n\
        export CIRCLE_SHA1=4f1d1e6c1c4b5a0f9e8d7c6b5a4f3e2d1c0b9a88\n";
    let p = write(&dir, "masked.log", text.as_bytes());
    let o = scan_jsonl(&[&p], &[]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(stdout(&o).is_empty());
    assert!(stderr(&o).contains("0 findings"));
}

#[test]
fn aws_key_pair_is_one_finding() {
    let dir = TempDir::new().unwrap();
    let id = "AKIAZ7Q3K2M4N5P6R7S3";
    let secret = "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";
    let p = write(
        &dir,
        "aws.log",
        format!("+ export AWS_ACCESS_KEY_ID={id}\n+ export AWS_SECRET_ACCESS_KEY={secret}\n")
            .as_bytes(),
    );
    let found = jsonl(&scan_jsonl(&[&p], &[]));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["rule_id"], "aws-access-key-id");
    assert_eq!(found[0]["severity"], "critical");
    assert_eq!(found[0]["pair"]["rule_id"], "aws-secret-access-key");
    assert_eq!(found[0]["pair"]["secret"], secret);
    assert_eq!(found[0]["pair"]["line"], 2);
    // Far apart, they are two findings.
    let far = format!(
        "AWS_ACCESS_KEY_ID={id}\n{}AWS_SECRET_ACCESS_KEY={secret}\n",
        "x\n".repeat(20)
    );
    let p = write(&dir, "far.log", far.as_bytes());
    let found = jsonl(&scan_jsonl(&[&p], &["--min-confidence", "low"]));
    assert_eq!(found.len(), 2);
    // By default only the secret key is reported: the key id alone is an identifier.
    let found = jsonl(&scan_jsonl(&[&p], &[]));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["rule_id"], "aws-secret-access-key");
}

#[test]
fn fingerprint_is_location_free_and_documented() {
    let dir = TempDir::new().unwrap();
    let tok = gh_token("ghp", 8);
    let a = write(&dir, "a.log", format!("{tok}\n").as_bytes());
    let b = write(&dir, "b/c.log", format!("x\ny\n  token={tok}\n").as_bytes());
    let found = jsonl(&scan_jsonl(&[&a, &b], &[]));
    assert_eq!(found.len(), 2);
    assert_eq!(found[0]["fingerprint"], found[1]["fingerprint"]);
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"github-pat\0");
    h.update(tok.as_bytes());
    let want: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(found[0]["fingerprint"], want);
}

#[test]
fn clean_input_exits_0_with_empty_stdout() {
    let dir = TempDir::new().unwrap();
    let p = write(&dir, "ok.log", b"npm ci\nadded 1402 packages in 31s\nsha256:4f1d1e6c1c4b5a0f9e8d7c6b5a4f3e2d1c0b9a884f1d1e6c1c4b5a0f9e8d7c6b\n");
    let o = scan_jsonl(&[&p], &[]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).is_empty());
}

#[test]
fn unreadable_inputs_never_look_clean() {
    let dir = TempDir::new().unwrap();
    let missing = dir.path().join("nope.log");
    let o = scan_jsonl(&[&missing], &[]);
    assert_eq!(code(&o), 2);
    let err = stderr(&o);
    assert!(
        err.lines()
            .any(|l| l.starts_with("cisleuth: error:") && l.contains("nope.log")),
        "{err}"
    );
    // A finding elsewhere still exits 1, and the error is still reported.
    let tok = gh_token("ghp", 9);
    let p = write(&dir, "ok.log", format!("{tok}\n").as_bytes());
    let o = scan_jsonl(&[&missing, &p], &[]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("nope.log"));
    assert!(stderr(&o).contains("1 error(s): the scan is incomplete"));
}

#[test]
fn files_over_max_file_size_are_skipped_with_a_note() {
    let dir = TempDir::new().unwrap();
    let p = write(&dir, "big.log", vec![b'a'; 5000]);
    let o = scan_jsonl(&[&p], &["--max-file-size", "4K"]);
    assert_eq!(code(&o), 2, "a skipped file makes the scan incomplete");
    assert!(stderr(&o).contains("big.log: skipped"), "{}", stderr(&o));
    assert_eq!(code(&scan_jsonl(&[&p], &["--max-file-size", "5K"])), 0);
}

#[test]
fn folders_are_walked() {
    let dir = TempDir::new().unwrap();
    let mut want = Vec::new();
    for i in 0..40u64 {
        let tok = gh_token("ghp", 100 + i);
        write(
            &dir,
            &format!("job-{}/step-{}.log", i % 7, i),
            format!("noise\n{tok}\n").as_bytes(),
        );
        want.push(("github-pat".to_string(), tok, 2u64, 1u64));
    }
    want.sort();
    let o = scan_jsonl(&[dir.path()], &["-j", "2"]);
    assert_eq!(summary(&jsonl(&o)), want);
    assert!(stderr(&o).contains("scanned 40 inputs"), "{}", stderr(&o));
}

#[test]
fn quiet_suppresses_the_summary_only() {
    let dir = TempDir::new().unwrap();
    let o = scan_jsonl(&[&dir.path().join("missing")], &["-q"]);
    let err = stderr(&o);
    assert!(!err.contains("scanned"), "{err}");
    assert!(err.contains("error:"), "{err}");
}

#[test]
fn human_output_groups_by_file_without_colour_when_piped() {
    let dir = TempDir::new().unwrap();
    let a = write(
        &dir,
        "a.log",
        format!("{}\n{}\n", gh_token("ghp", 10), gh_token("ghp", 11)).as_bytes(),
    );
    let o = run(&["scan", "path", "--format", "human", a.to_str().unwrap()]);
    let out = stdout(&o);
    assert!(
        !out.contains('\x1b'),
        "no colour when stdout is not a terminal: {out:?}"
    );
    assert_eq!(out.matches(&a.display().to_string()).count(), 1, "{out}");
    assert_eq!(out.matches("GitHub personal access token").count(), 2);
}

#[test]
fn bundled_examples_are_found() {
    let o = run(&[
        "scan",
        "path",
        "--format",
        "jsonl",
        concat!(env!("CARGO_MANIFEST_DIR"), "/examples"),
    ]);
    assert_eq!(code(&o), 1);
    let mut rules: Vec<String> = jsonl(&o)
        .iter()
        .map(|f| f["rule_id"].as_str().unwrap().to_string())
        .collect();
    rules.sort();
    assert_eq!(
        rules,
        [
            "aws-access-key-id",
            "gcp-service-account-key-id",
            "github-pat",
            "npm-access-token",
            "private-key",
            "slack-bot-token"
        ]
    );
}
