//! A partial scan never looks clean: every path is scanned or counted as not scanned, and
//! archives are found whatever way they arrive (issue 10).

use std::io::Write;
use std::os::unix::fs::symlink;
use std::process::{Command, Stdio};

use tempfile::TempDir;

use crate::archives::{tar_gz_of, zip_of};
use crate::util::*;

fn secrets(o: &std::process::Output) -> Vec<String> {
    jsonl(o)
        .iter()
        .map(|f| f["secret"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn links_to_files_and_folders_of_links_are_scanned() {
    let dir = TempDir::new().unwrap();
    let tok = gh_token("ghp", 40);
    let target = write(&dir, "real/deploy.log", format!("token {tok}\n").as_bytes());
    // A link named on the command line.
    let link = dir.path().join("link.log");
    symlink(&target, &link).unwrap();
    let o = scan_jsonl(&[&link], &[]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert_eq!(secrets(&o), vec![tok.clone()]);
    // A folder holding only a link to a file.
    let only = dir.path().join("only");
    std::fs::create_dir(&only).unwrap();
    symlink(&target, only.join("l.log")).unwrap();
    let o = scan_jsonl(&[&only], &[]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert_eq!(secrets(&o), vec![tok]);
}

#[test]
fn links_to_folders_inside_a_tree_are_not_followed_and_a_broken_link_is_an_error() {
    let dir = TempDir::new().unwrap();
    let tok = gh_token("ghp", 45);
    write(&dir, "a/clean.log", b"nothing here\n");
    write(
        &dir,
        "outside/secret.log",
        format!("token {tok}\n").as_bytes(),
    );
    // A loop, and a link out of the tree (as a checked-out repository could hold `evil -> /`).
    symlink(dir.path().join("a"), dir.path().join("a/again")).unwrap();
    symlink(dir.path().join("outside"), dir.path().join("a/out")).unwrap();
    let o = scan_jsonl(&[&dir.path().join("a")], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("a link to a folder; not followed"),
        "{}",
        stderr(&o)
    );
    // Named on the command line, a link to a folder is walked.
    let o = scan_jsonl(&[&dir.path().join("a/out")], &[]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    symlink(dir.path().join("gone.log"), dir.path().join("a/broken.log")).unwrap();
    let o = scan_jsonl(&[&dir.path().join("a")], &[]);
    assert_eq!(
        code(&o),
        2,
        "a broken link is input not read: {}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("broken.log"), "{}", stderr(&o));
}

#[test]
fn fifos_and_process_substitution_are_read_as_streams() {
    let dir = TempDir::new().unwrap();
    let tok = gh_token("ghp", 41);
    let fifo = dir.path().join("pipe");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let writer = {
        let fifo = fifo.clone();
        let tok = tok.clone();
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
            writeln!(f, "export GITHUB_TOKEN={tok}").unwrap();
        })
    };
    let o = scan_jsonl(&[&fifo], &[]);
    writer.join().unwrap();
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert_eq!(secrets(&o), vec![tok.clone()]);
    // `scan path <(cat deploy.log)`: bash hands over /dev/fd/N, a link to a pipe.
    let log = write(&dir, "deploy.log", format!("token {tok}\n").as_bytes());
    let o = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "{} scan path <(cat {}) --format jsonl --show-secrets",
            env!("CARGO_BIN_EXE_cisleuth"),
            log.display()
        ))
        .output()
        .unwrap();
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert_eq!(secrets(&o), vec![tok]);
}

#[test]
fn devices_are_read_up_to_the_size_limit_and_sockets_are_errors() {
    // An empty device is a clean input.
    let o = scan_jsonl(&[std::path::Path::new("/dev/null")], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).contains("scanned 1 input"), "{}", stderr(&o));
    // An endless one is read up to --max-file-size, and the rest is reported.
    let o = scan_jsonl(
        &[std::path::Path::new("/dev/zero")],
        &["--max-file-size", "1M"],
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("longer than --max-file-size"),
        "{}",
        stderr(&o)
    );
    // A socket cannot be scanned: the scan is incomplete.
    let dir = TempDir::new().unwrap();
    let sock = dir.path().join("s.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let o = scan_jsonl(&[&sock], &[]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("not a regular file"), "{}", stderr(&o));
}

#[test]
fn archives_on_stdin_are_walked_like_archives_on_disk() {
    let tok = gh_token("ghp", 42);
    let log = format!("step\nexport GITHUB_TOKEN={tok}\n");
    for (kind, bytes) in [
        ("zip", zip_of(&[("logs/build.log", log.as_bytes())])),
        ("tar.gz", tar_gz_of(&[("logs/build.log", log.as_bytes())])),
    ] {
        let o = run_with_stdin(
            &["scan", "-", "--format", "jsonl", "--show-secrets"],
            &bytes,
        );
        assert_eq!(code(&o), 1, "{kind}: {}", stderr(&o));
        let found = jsonl(&o);
        assert_eq!(found.len(), 1, "{kind}: {found:?}");
        assert_eq!(found[0]["secret"], tok.as_str());
        assert_eq!(
            found[0]["location"]["path"], "<stdin>!/logs/build.log",
            "{kind}"
        );
        assert_eq!(found[0]["location"]["line"], 2);
    }
}

#[test]
fn read_commands_never_create_a_datastore_and_scans_create_it_private() {
    let dir = TempDir::new().unwrap();
    let typo = dir.path().join("typo.db");
    for args in [
        vec!["report", "--datastore", typo.to_str().unwrap()],
        vec![
            "baseline",
            "create",
            "--datastore",
            typo.to_str().unwrap(),
            "-o",
            "/dev/null",
        ],
        vec![
            "triage",
            "0123456789abcdef",
            "--datastore",
            typo.to_str().unwrap(),
            "--status",
            "revoked",
        ],
    ] {
        let o = run(&args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("no datastore at"),
            "{args:?}: {}",
            stderr(&o)
        );
        assert!(!typo.exists(), "{args:?} created the file");
    }
    let not_db = write(&dir, "notes.txt", b"just text, not SQLite\n");
    let o = run(&["report", "--datastore", not_db.to_str().unwrap()]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not a cisleuth datastore"),
        "{}",
        stderr(&o)
    );
    // A scan creates it with mode 0600: it holds hashes of secrets.
    let log = write(
        &dir,
        "a.log",
        format!("token {}\n", gh_token("ghp", 43)).as_bytes(),
    );
    let db = dir.path().join("findings.db");
    let o = scan_jsonl(&[&log], &["--datastore", db.to_str().unwrap()]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let o = run(&[
        "report",
        "--datastore",
        db.to_str().unwrap(),
        "--format",
        "jsonl",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 1);
}

#[test]
fn a_listing_whose_reader_goes_away_does_not_panic() {
    let mut child = cisleuth()
        .args(["rules", "list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Read;
        let mut out = child.stdout.take().unwrap();
        let mut first = [0u8; 16];
        out.read_exact(&mut first).unwrap();
        // Dropping the read end closes the pipe, as `| head -1` does.
    }
    let o = child.wait_with_output().unwrap();
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn bad_options_are_one_clear_error() {
    let dir = TempDir::new().unwrap();
    let log = write(&dir, "a.log", b"clean\n");
    // Size suffixes people write.
    for size in ["10MB", "10MiB", "512k"] {
        let o = scan_jsonl(&[&log], &["--max-file-size", size]);
        assert_eq!(code(&o), 0, "{size}: {}", stderr(&o));
    }
    // A config entropy that cannot be one.
    for bad in ["nan", "9.5", "-1.0"] {
        let cfg = write(
            &dir,
            "c.toml",
            format!("[rules]\nentropy = {{ \"github-pat\" = {bad} }}\n").as_bytes(),
        );
        let o = scan_jsonl(&[&log], &["--config", cfg.to_str().unwrap()]);
        assert_eq!(code(&o), 2, "{bad}: {}", stderr(&o));
        assert!(stderr(&o).contains("from 0 to 8"), "{bad}: {}", stderr(&o));
    }
    // An empty time window.
    let o = cisleuth()
        .args([
            "scan",
            "circleci",
            "--project",
            "gh/acme/api",
            "--since",
            "2023-01-05",
            "--until",
            "2023-01-01",
        ])
        .env("CIRCLECI_TOKEN", "CCIPAT_x_0123")
        .output()
        .unwrap();
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("is after --until"), "{}", stderr(&o));
    assert_eq!(stderr(&o).trim().lines().count(), 1, "{}", stderr(&o));
}

#[test]
fn a_broken_step_json_note_never_quotes_the_input() {
    let dir = TempDir::new().unwrap();
    let tok = gh_token("ghp", 44);
    // Step-output shaped, but an element is a string: serde's message would quote it.
    let p = write(
        &dir,
        "step.json",
        format!("[{{\"message\": \"ok\", \"type\": \"out\"}}, \"{tok}\"]").as_bytes(),
    );
    let o = scan_jsonl(&[&p], &[]);
    assert_eq!(
        code(&o),
        1,
        "scanned as text, so the token is found: {}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("not valid CircleCI step output JSON"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains(&tok[4..]), "{}", stderr(&o));
}

#[test]
fn utf16_with_a_bom_is_text_whatever_the_script_of_its_first_lines() {
    let dir = TempDir::new().unwrap();
    let tok = gh_token("ghp", 46);
    for (i, first) in [
        "Сборка проекта: начало\r\nПредупреждение: файл не найден\r\n",
        "ビルドを開始しています\r\n警告: ファイルが見つかりません\r\n",
    ]
    .iter()
    .enumerate()
    {
        let text = format!("{}PS C:\\> echo token {tok}\r\n", first.repeat(30));
        let mut bytes = vec![0xff, 0xfe];
        bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let p = write(&dir, &format!("ps{i}.log"), &bytes);
        let o = scan_jsonl(&[&p], &[]);
        assert_eq!(code(&o), 1, "{first}: {}", stderr(&o));
        assert_eq!(secrets(&o), vec![tok.clone()]);
        // The line is the line of the text a person reads.
        assert_eq!(jsonl(&o)[0]["location"]["line"], 61, "{}", stdout(&o));
    }
}

#[test]
fn file_names_reach_the_terminal_escaped() {
    let dir = TempDir::new().unwrap();
    let tok = gh_token("ghp", 47);
    let evil = "build\x1b]0;pwned\x07\u{202e}gol.log";
    write(&dir, evil, format!("token {tok}\n"));
    // A broken link with a newline in its name: the error stays one line.
    symlink(
        dir.path().join("missing"),
        dir.path().join("x\ncisleuth: 0 findings"),
    )
    .unwrap();
    let o = cisleuth()
        .args(["scan", "path", "--format", "human"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let (out, err) = (stdout(&o), stderr(&o));
    for text in [&out, &err] {
        assert!(
            !text.contains('\x1b') && !text.contains('\x07') && !text.contains('\u{202e}'),
            "{text:?}"
        );
    }
    assert!(
        out.contains("build\\x1b]0;pwned\\x07\\u{202e}gol.log"),
        "{out}"
    );
    assert!(
        !err.lines().any(|l| l.starts_with("cisleuth: 0 findings")),
        "a forged line: {err}"
    );
}

#[test]
fn every_source_opens_an_input_the_same_way() {
    // One chain decides how an input is read: the same archive or compressed log as a file,
    // through a FIFO and on stdin gives the same secret at the same member and line.
    let dir = TempDir::new().unwrap();
    let tok = gh_token("ghp", 48);
    let log = format!("step one\nstep two\nexport GITHUB_TOKEN={tok}\n");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(log.as_bytes()).unwrap();
    for (name, bytes, member) in [
        (
            "a.zip",
            zip_of(&[("logs/build.log", log.as_bytes())]),
            Some("logs/build.log"),
        ),
        (
            "a.tar.gz",
            tar_gz_of(&[("logs/build.log", log.as_bytes())]),
            Some("logs/build.log"),
        ),
        ("a.log", log.clone().into_bytes(), None),
        ("a.log.gz", gz.finish().unwrap(), None),
    ] {
        let path = write(&dir, name, &bytes);
        let fifo = dir.path().join(format!("{name}.fifo"));
        assert!(Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let writer = {
            let (fifo, bytes) = (fifo.clone(), bytes.clone());
            std::thread::spawn(move || std::fs::write(fifo, bytes).unwrap())
        };
        let from_fifo = scan_jsonl(&[&fifo], &[]);
        writer.join().unwrap();
        let from_stdin = run_with_stdin(
            &["scan", "-", "--format", "jsonl", "--show-secrets"],
            &bytes,
        );
        for (how, o) in [
            ("file", scan_jsonl(&[&path], &[])),
            ("fifo", from_fifo),
            ("stdin", from_stdin),
        ] {
            assert_eq!(code(&o), 1, "{name} as {how}: {}", stderr(&o));
            let found = jsonl(&o);
            assert_eq!(found.len(), 1, "{name} as {how}: {found:?}");
            assert_eq!(found[0]["secret"], tok.as_str(), "{name} as {how}");
            assert_eq!(found[0]["location"]["line"], 3, "{name} as {how}");
            if let Some(member) = member {
                let p = found[0]["location"]["path"].as_str().unwrap().to_string();
                assert!(p.ends_with(&format!("!/{member}")), "{name} as {how}: {p}");
            }
        }
    }
}

#[test]
fn depth_and_thread_options_have_hard_caps() {
    let dir = TempDir::new().unwrap();
    let log = write(&dir, "a.log", "nothing\n");
    for (flag, value) in [
        ("-j", "100000"),
        ("--max-archive-depth", "5000"),
        ("--max-decode-depth", "100"),
    ] {
        let o = run(&["scan", "path", flag, value, log.to_str().unwrap()]);
        assert_eq!(code(&o), 2, "{flag} {value}");
        assert!(stderr(&o).contains("not in"), "{flag}: {}", stderr(&o));
    }
    // At the cap, a gzip nested deeper still than that is opened to the cap without
    // exhausting a worker's stack, and what is deeper is reported, not dropped silently.
    let tok = gh_token("ghp", 49);
    let mut bytes = format!("export GITHUB_TOKEN={tok}\n").into_bytes();
    for _ in 0..20 {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&bytes).unwrap();
        bytes = gz.finish().unwrap();
    }
    let deep = write(&dir, "deep.log.gz", &bytes);
    let o = scan_jsonl(&[&deep], &["--max-archive-depth", "16"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("deep.log.gz"), "{}", stderr(&o));
}
