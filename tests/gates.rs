//! Gates for pre-merge checks: baselines, `.cisleuth.toml`, inline allows, `--fail-on`.

use std::fs;

use tempfile::TempDir;

use crate::util::*;

#[test]
fn baseline_reports_only_new_findings() {
    let dir = TempDir::new().unwrap();
    let old = gh_token("ghp", 500);
    let new = gh_token("ghp", 501);
    let p = write(&dir, "build.log", format!("{old}\n"));
    let report = dir.path().join("report.jsonl");
    let o = run(&["scan", "path", "--format", "jsonl", p.to_str().unwrap()]);
    fs::write(&report, &o.stdout).unwrap();
    let baseline = dir.path().join("baseline.json");
    let o = run(&[
        "baseline",
        "create",
        "--from",
        report.to_str().unwrap(),
        "-o",
        baseline.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = fs::read_to_string(&baseline).unwrap();
    assert!(!text.contains(&old), "the baseline holds no secret");
    // The known secret moved to another line and file: still known. A new one fails.
    let p2 = write(&dir, "later/build.log", format!("x\ny\n{old}\n{new}\n"));
    let o = scan_jsonl(&[&p2], &["--baseline", baseline.to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    let found = jsonl(&o);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["secret"], new);
    assert!(
        stderr(&o).contains("1 known finding(s) in the baseline"),
        "{}",
        stderr(&o)
    );
    // Only known findings: clean.
    let o = run(&[
        "scan",
        "path",
        "--baseline",
        baseline.to_str().unwrap(),
        p.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // A broken baseline is a configuration error.
    fs::write(&baseline, "{}").unwrap();
    let o = run(&[
        "scan",
        "path",
        "--baseline",
        baseline.to_str().unwrap(),
        p.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("not a cisleuth baseline"));
}

#[test]
fn fail_on_sets_the_threshold_for_exit_1() {
    let dir = TempDir::new().unwrap();
    // A JWT is medium severity; a GitHub token critical.
    let jwt = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJjaSIsImF1ZCI6ImFjbWUifQ.c2lnbmF0dXJlLWZvci1hLWZha2Utand0LXRva2Vu";
    let p = write(&dir, "a.log", format!("Authorization: Bearer {jwt}\n"));
    let o = run(&[
        "scan",
        "path",
        "--format",
        "jsonl",
        "--fail-on",
        "high",
        p.to_str().unwrap(),
    ]);
    assert_eq!(jsonl(&o).len(), 1, "still reported");
    assert_eq!(code(&o), 0, "but below the threshold");
    assert_eq!(
        code(&run(&[
            "scan",
            "path",
            "--fail-on",
            "medium",
            p.to_str().unwrap()
        ])),
        1
    );
    let p2 = write(&dir, "b.log", format!("{}\n", gh_token("ghp", 502)));
    assert_eq!(
        code(&run(&[
            "scan",
            "path",
            "--fail-on",
            "critical",
            p2.to_str().unwrap()
        ])),
        1
    );
}

#[test]
fn config_file_disables_allows_ignores_and_overrides() {
    let dir = TempDir::new().unwrap();
    let allowed = gh_token("ghp", 503);
    let kept = gh_token("ghp", 504);
    fs::write(
        dir.path().join(".cisleuth.toml"),
        format!(
            "[rules]\ndisable = [\"url-password\"]\n\n[paths]\nignore = [\"**/vendor/**\"]\n\n[[allow]]\ndescription = \"the documented test token\"\nsecret = '^{allowed}$'\n"
        ),
    )
    .unwrap();
    write(&dir, "vendor/lib/build.log", format!("{kept}\n"));
    write(&dir, "logs/a.log", format!(
        "{allowed}\n{kept}\ninline {} # cisleuth:allow\nDATABASE_URL=postgres://app:Zt7Qp2Lm9Xc4Vb8N@db/app\n",
        gh_token("ghp", 505)
    ));
    // Found in the working directory.
    let o = cisleuth()
        .current_dir(dir.path())
        .args(["scan", "path", "--format", "jsonl", "--show-secrets", "."])
        .output()
        .unwrap();
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let found = jsonl(&o);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["secret"], kept.as_str());
    assert!(found[0]["location"]["path"]
        .as_str()
        .unwrap()
        .contains("logs/a.log"));
    // --config from elsewhere; an entropy override that no real token reaches.
    let cfg = dir.path().join("strict.toml");
    fs::write(&cfg, "[rules]\nentropy = { \"github-pat\" = 7.9 }\n").unwrap();
    let o = run(&[
        "scan",
        "path",
        "--format",
        "jsonl",
        "--config",
        cfg.to_str().unwrap(),
        dir.path().join("logs").to_str().unwrap(),
    ]);
    assert!(
        jsonl(&o).iter().all(|f| f["rule_id"] != "github-pat"),
        "{}",
        stdout(&o)
    );
    // A typo in a rule id is an error, not a silent no-op.
    fs::write(&cfg, "[rules]\ndisable = [\"github-pta\"]\n").unwrap();
    let o = run(&[
        "scan",
        "path",
        "--config",
        cfg.to_str().unwrap(),
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("unknown rule id \"github-pta\""),
        "{}",
        stderr(&o)
    );
}

#[test]
fn what_a_repository_policy_removed_is_named_and_can_be_pinned_off() {
    // The code under test ships a policy that switches the scan off in every way it can.
    let dir = TempDir::new().unwrap();
    let tok = gh_token("ghp", 520);
    fs::write(
        dir.path().join(".cisleuth.toml"),
        "[rules]\ndisable = [\"url-password\"]\ndirs = [\"ci-rules\"]\n\n[paths]\nignore = [\"**\"]\n",
    )
    .unwrap();
    // A rule directory that redefines the GitHub token rule to match nothing.
    write(
        &dir,
        "ci-rules/github.toml",
        "[[rules]]\nid = \"github-pat\"\nname = \"GitHub token\"\nkeywords = [\"zzqq_never\"]\nregex = '(?P<secret>zzqq_never_[0-9]{40})'\n\
         severity = \"low\"\nconfidence = \"high\"\ndescription = \"d\"\nremediation = \"r\"\nexamples = [{ text = \"k zzqq_never_0123456789012345678901234567890123456789\", secret = \"zzqq_never_0123456789012345678901234567890123456789\" }]\nnegative_examples = [\"zzqq_never_\"]\n",
    );
    write(&dir, "build.log", format!("export GH={tok}\n"));
    let scan = |extra: &[&str]| {
        cisleuth()
            .current_dir(dir.path())
            .args(["scan", "path", "--format", "json", "--show-secrets"])
            .args(extra)
            .arg("build.log")
            .output()
            .unwrap()
    };
    let o = scan(&[]);
    let err = stderr(&o);
    assert_eq!(code(&o), 0, "the policy did switch it off: {err}");
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let p = &doc["summary"]["policy"];
    assert_eq!(p["file"], ".cisleuth.toml", "{doc}");
    assert_eq!(p["from_working_directory"], true);
    assert_eq!(p["disabled_rules"], serde_json::json!(["url-password"]));
    assert_eq!(p["replaced_rules"], serde_json::json!(["github-pat"]));
    assert_eq!(p["ignored_inputs"], 1);
    let note = err
        .lines()
        .find(|l| l.contains("removed from this scan"))
        .unwrap_or_else(|| panic!("no policy line: {err}"));
    for want in [
        "from the working directory",
        "--no-repo-config",
        "rules disabled: url-password",
        "built-in rules redefined: github-pat",
        "1 input(s) ignored by [paths]",
    ] {
        assert!(note.contains(want), "{want}: {note}");
    }
    // Pinned: the repository's file is not read, the secret is found.
    for pinned in [
        scan(&["--no-repo-config"]),
        cisleuth()
            .current_dir(dir.path())
            .env("CISLEUTH_NO_REPO_CONFIG", "1")
            .args(["scan", "path", "--format", "json", "build.log"])
            .output()
            .unwrap(),
    ] {
        assert_eq!(code(&pinned), 1, "{}", stderr(&pinned));
        let doc: serde_json::Value = serde_json::from_slice(&pinned.stdout).unwrap();
        assert!(doc["summary"].get("policy").is_none(), "{doc}");
    }
    // An inline allow in the scanned text is counted too.
    write(
        &dir,
        "inline.log",
        format!("export GH={tok} # cisleuth:allow\n"),
    );
    let o = cisleuth()
        .current_dir(dir.path())
        .args(["scan", "path", "--no-repo-config", "inline.log"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 0);
    assert!(
        stderr(&o).contains("1 match(es) on lines marked cisleuth:allow"),
        "{}",
        stderr(&o)
    );
}
