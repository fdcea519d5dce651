//! The findings datastore: `--datastore`, `report`, `triage`.

use std::fs;

use tempfile::TempDir;

use crate::util::*;

#[test]
fn rescans_add_occurrences_not_findings_and_triage_sticks() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("findings.db");
    let db_s = db.to_str().unwrap();
    let tok = gh_token("ghp", 700);
    let a = dir.path().join("a.log");
    fs::write(&a, format!("{tok}\n")).unwrap();
    run(&["scan", "path", "--datastore", db_s, a.to_str().unwrap()]);
    // Same file again (same occurrence), and a second place.
    let b = dir.path().join("b.log");
    fs::write(&b, format!("x\n{tok}\n{}\n", gh_token("npm", 701))).unwrap();
    run(&[
        "scan",
        "path",
        "--datastore",
        db_s,
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ]);
    let o = run(&["report", "--datastore", db_s, "--format", "jsonl"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let recs = jsonl(&o);
    assert_eq!(recs.len(), 2, "one record per secret");
    let gh = recs.iter().find(|r| r["rule_id"] == "github-pat").unwrap();
    assert_eq!(gh["occurrences"].as_array().unwrap().len(), 2);
    assert_eq!(gh["status"], "new");
    assert!(
        gh.get("secret").is_none(),
        "only the SHA-256 is stored by default"
    );
    assert_eq!(gh["secret_sha256"].as_str().unwrap().len(), 64);
    // The raw secret is nowhere in the file.
    let raw = fs::read(&db).unwrap();
    assert!(!raw.windows(tok.len()).any(|w| w == tok.as_bytes()));
    // Occurrence view: one record per place.
    let o = run(&[
        "report",
        "--datastore",
        db_s,
        "--format",
        "jsonl",
        "--group",
        "occurrence",
    ]);
    assert_eq!(jsonl(&o).len(), 3);
    // Triage by prefix; the status survives a re-scan; filters select by it.
    let fp = gh["fingerprint"].as_str().unwrap();
    let o = run(&[
        "triage",
        &fp[..12],
        "--datastore",
        db_s,
        "--status",
        "false_positive",
        "--note",
        "test fixture",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    run(&["scan", "path", "--datastore", db_s, a.to_str().unwrap()]);
    let o = run(&[
        "report",
        "--datastore",
        db_s,
        "--format",
        "jsonl",
        "--status",
        "false_positive",
    ]);
    let recs = jsonl(&o);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["note"], "test fixture");
    let o = run(&[
        "report",
        "--datastore",
        db_s,
        "--format",
        "jsonl",
        "--status",
        "new",
        "--rule",
        "npm-access-token",
    ]);
    assert_eq!(jsonl(&o).len(), 1);
    // Bad triage input is a clear error.
    let o = run(&[
        "triage",
        &fp[..12],
        "--datastore",
        db_s,
        "--status",
        "ignored",
    ]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("unknown status"));
    let o = run(&[
        "triage",
        "00000000",
        "--datastore",
        db_s,
        "--status",
        "revoked",
    ]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("no finding"));
}

#[test]
fn stored_secrets_need_a_private_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("s.db");
    let tok = gh_token("ghp", 702);
    let a = dir.path().join("a.log");
    fs::write(&a, format!("{tok}\n")).unwrap();
    let o = run(&[
        "scan",
        "path",
        "--datastore",
        db.to_str().unwrap(),
        "--store-secrets",
        a.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1);
    assert_eq!(
        fs::metadata(&db).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let o = run(&[
        "report",
        "--datastore",
        db.to_str().unwrap(),
        "--format",
        "jsonl",
        "--show-secrets",
    ]);
    assert_eq!(jsonl(&o)[0]["secret"], tok.as_str());
    let o = run(&[
        "report",
        "--datastore",
        db.to_str().unwrap(),
        "--format",
        "jsonl",
    ]);
    assert!(
        jsonl(&o)[0].get("secret").is_none(),
        "redacted unless asked"
    );
    // --store-secrets without a datastore is a usage error.
    assert_eq!(
        code(&run(&[
            "scan",
            "path",
            "--store-secrets",
            a.to_str().unwrap()
        ])),
        2
    );
}

#[test]
fn report_formats() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("f.db");
    let ex = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    run(&["scan", "path", "--datastore", db.to_str().unwrap(), ex]);
    let db_s = db.to_str().unwrap();
    let md = stdout(&run(&[
        "report",
        "--datastore",
        db_s,
        "--format",
        "markdown",
    ]));
    assert!(md.starts_with("| severity | rule |"));
    assert_eq!(md.lines().count(), 2 + 6);
    let csv = stdout(&run(&["report", "--datastore", db_s, "--format", "csv"]));
    assert!(csv.starts_with("fingerprint,rule_id,severity,status,redacted,occurrences"));
    assert_eq!(csv.lines().count(), 7);
    let json: serde_json::Value = serde_json::from_str(&stdout(&run(&[
        "report",
        "--datastore",
        db_s,
        "--format",
        "json",
    ])))
    .unwrap();
    assert_eq!(json["findings"].as_array().unwrap().len(), 6);
    // Most severe first.
    assert_eq!(json["findings"][0]["severity"], "critical");
    let human = stdout(&run(&[
        "report",
        "--datastore",
        db_s,
        "--severity",
        "critical",
    ]));
    assert!(human.lines().all(|l| !l.starts_with("HIGH")), "{human}");
}

#[test]
fn report_sarif_and_baseline_from_a_datastore() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("f.db");
    let db_s = db.to_str().unwrap();
    let ex = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    run(&["scan", "path", "--datastore", db_s, ex]);
    // SARIF from stored findings: valid against the official schema, one result per place.
    let o = run(&["report", "--datastore", db_s, "--format", "sarif"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let v = jsonschema::validator_for(&crate::output::sarif_schema()).unwrap();
    assert!(v.is_valid(&doc));
    let results = doc["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 6);
    assert!(results
        .iter()
        .all(|r| r["message"]["text"].as_str().unwrap().contains('…')));
    // A baseline from the datastore silences every stored finding.
    let b = dir.path().join("b.json");
    let o = run(&[
        "baseline",
        "create",
        "--datastore",
        db_s,
        "-o",
        b.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = run(&["scan", "path", "--baseline", b.to_str().unwrap(), ex]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).contains("6 known finding(s) in the baseline"));
}

#[test]
fn report_sarif_keeps_findings_of_custom_rules() {
    // A finding from a `--rules` rule is in the datastore; `report` has no `--rules`, so it
    // must rebuild the SARIF result and rule from what the datastore recorded.
    let dir = TempDir::new().unwrap();
    let rules = dir.path().join("rules");
    fs::create_dir(&rules).unwrap();
    fs::write(rules.join("acme.toml"), crate::rules::EXTRA).unwrap();
    let log = dir.path().join("a.log");
    fs::write(
        &log,
        format!(
            "ACME=acmedk_abcdefghijklmnopqrstuvwx\n{}\n",
            gh_token("ghp", 900)
        ),
    )
    .unwrap();
    let db = dir.path().join("f.db");
    let db_s = db.to_str().unwrap();
    run(&[
        "scan",
        "path",
        "--rules",
        rules.to_str().unwrap(),
        "--datastore",
        db_s,
        log.to_str().unwrap(),
    ]);
    let o = run(&["report", "--datastore", db_s, "--format", "sarif"]);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let v = jsonschema::validator_for(&crate::output::sarif_schema()).unwrap();
    assert!(v.is_valid(&doc));
    let results = doc["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{}", stdout(&o));
    let rules = doc["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap();
    let acme = rules
        .iter()
        .find(|r| r["id"] == "acme-deploy-key")
        .expect("custom rule listed");
    assert_eq!(acme["name"], "Acme deploy key");
    assert!(acme["help"]["text"]
        .as_str()
        .unwrap()
        .contains("deploy.acme.internal"));
}

/// A log with `n` distinct tokens.
fn log_with_tokens(dir: &TempDir, n: u64) -> std::path::PathBuf {
    let text: String = (0..n)
        .map(|i| format!("export TOKEN_{i}={}\n", gh_token("ghp", 900 + i)))
        .collect();
    write(dir, "build.log", text)
}

fn tables(db: &std::path::Path) -> Vec<String> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut st = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn foreign_newer_damaged_and_state_files_are_refused_untouched() {
    let dir = TempDir::new().unwrap();
    let log = log_with_tokens(&dir, 1);
    let log_s = log.to_str().unwrap();
    // Another program's SQLite file.
    let foreign = dir.path().join("app.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE users (name TEXT, password TEXT);")
        .unwrap();
    let o = run(&[
        "scan",
        "path",
        "--datastore",
        foreign.to_str().unwrap(),
        log_s,
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("is not a cisleuth datastore: it holds tables users"),
        "{}",
        stderr(&o)
    );
    assert_eq!(tables(&foreign), ["users"], "nothing was added to it");
    // A datastore from a newer cisleuth.
    let db = dir.path().join("findings.db");
    let db_s = db.to_str().unwrap();
    assert_eq!(code(&run(&["scan", "path", "--datastore", db_s, log_s])), 1);
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99;")
        .unwrap();
    for args in [
        vec!["scan", "path", "--datastore", db_s, log_s],
        vec!["report", "--datastore", db_s],
    ] {
        let o = run(&args);
        assert_eq!(code(&o), 2, "{args:?}");
        assert!(
            stderr(&o).contains("has datastore schema 99, newer than"),
            "{}",
            stderr(&o)
        );
    }
    // Not SQLite at all, or damaged.
    let text = write(
        &dir,
        "notes.db",
        "just some text, not a database\n".repeat(200),
    );
    let o = run(&["report", "--datastore", text.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("not a cisleuth datastore"),
        "{}",
        stderr(&o)
    );
    let good = dir.path().join("good.db");
    assert_eq!(
        code(&run(&[
            "scan",
            "path",
            "--datastore",
            good.to_str().unwrap(),
            log_s
        ])),
        1
    );
    let c = rusqlite::Connection::open(&good).unwrap();
    c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
    drop(c);
    let mut bytes = fs::read(&good).unwrap();
    let page2 = 4096..8192;
    assert!(bytes.len() >= page2.end, "{} bytes", bytes.len());
    for b in &mut bytes[page2] {
        *b = 0xa5;
    }
    fs::write(&good, bytes).unwrap();
    let o = run(&["report", "--datastore", good.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("damaged"), "{}", stderr(&o));
    // A resume state file given as a datastore, and a datastore given as a state file.
    let state = dir.path().join("state.db");
    rusqlite::Connection::open(&state)
        .unwrap()
        .execute_batch(
            "CREATE TABLE jobs (key TEXT PRIMARY KEY, finished_at INTEGER NOT NULL);
             CREATE TABLE occurrences (key TEXT PRIMARY KEY, job TEXT NOT NULL);",
        )
        .unwrap();
    let o = run(&[
        "scan",
        "path",
        "--datastore",
        state.to_str().unwrap(),
        log_s,
    ]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("is a CircleCI resume state file (--state), not a datastore"),
        "{}",
        stderr(&o)
    );
    assert_eq!(tables(&state), ["jobs", "occurrences"]);
    let o = run(&[
        "scan",
        "circleci",
        "--host",
        "http://127.0.0.1:9",
        "--job",
        "gh/a/b/1",
        "--state",
        db_s,
    ]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("is a findings datastore (--datastore), not a resume state file"),
        "{}",
        stderr(&o)
    );
}

/// Create the datastore `db` (a scan of an empty log), so another connection can lock it.
fn create_datastore(dir: &TempDir, db: &str) {
    let empty = write(dir, "empty.log", "x\n");
    let o = run(&["scan", "path", "--datastore", db, empty.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

/// A baseline of every finding in `log` (`baseline create --from` a JSONL report).
fn baseline_of(dir: &TempDir, log: &std::path::Path) -> std::path::PathBuf {
    let report = dir.path().join("baseline-source.jsonl");
    fs::write(
        &report,
        run(&["scan", "path", "--format", "jsonl", log.to_str().unwrap()]).stdout,
    )
    .unwrap();
    let baseline = dir.path().join("baseline.json");
    let b = run(&[
        "baseline",
        "create",
        "--from",
        report.to_str().unwrap(),
        "-o",
        baseline.to_str().unwrap(),
    ]);
    assert_eq!(code(&b), 0, "{}", stderr(&b));
    baseline
}

/// Hold `db`'s write lock from another connection for `secs` seconds (returns once it is held).
fn hold_write_lock(db: &std::path::Path, secs: f64) -> std::thread::JoinHandle<()> {
    let db = db.to_path_buf();
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch("BEGIN IMMEDIATE; CREATE TABLE IF NOT EXISTS lock_holder (x);")
            .unwrap();
        ready_tx.send(()).unwrap();
        std::thread::sleep(std::time::Duration::from_secs_f64(secs));
        c.execute_batch("ROLLBACK;").unwrap();
    });
    ready.recv().unwrap();
    t
}

#[test]
fn a_locked_datastore_is_waited_for_and_never_loses_findings_silently() {
    let dir = TempDir::new().unwrap();
    let log = log_with_tokens(&dir, 3);
    let log_s = log.to_str().unwrap();
    let db = dir.path().join("findings.db");
    let db_s = db.to_str().unwrap();
    // Create it, then hold its write lock from another connection for two seconds.
    create_datastore(&dir, db_s);
    let holder = hold_write_lock(&db, 2.5);
    let o = run(&[
        "scan",
        "path",
        "--format",
        "jsonl",
        "--datastore",
        db_s,
        log_s,
    ]);
    holder.join().unwrap();
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the datastore is locked by another process; waiting"),
        "{}",
        stderr(&o)
    );
    let o = run(&["report", "--datastore", db_s, "--format", "jsonl"]);
    assert_eq!(
        jsonl(&o).len(),
        3,
        "every finding was recorded after the wait"
    );
    // Locked for longer than --datastore-wait, with every finding known to the baseline (so
    // nothing is reported): the scan is not clean, it is incomplete.
    let baseline = baseline_of(&dir, &log);
    let db2 = dir.path().join("second.db");
    let db2_s = db2.to_str().unwrap();
    create_datastore(&dir, db2_s);
    let holder = hold_write_lock(&db2, 4.0);
    let o = run(&[
        "scan",
        "path",
        "--format",
        "jsonl",
        "--datastore",
        db2_s,
        "--datastore-wait",
        "1",
        "--baseline",
        baseline.to_str().unwrap(),
        log_s,
    ]);
    holder.join().unwrap();
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("3 finding(s) not recorded"),
        "{}",
        stderr(&o)
    );
}
