//! `cisleuth rules list|check` and `--rules DIR`.

use std::fs;

use tempfile::TempDir;

use crate::util::*;

/// A custom rule file, also used by the datastore tests.
pub(crate) const EXTRA: &str = r#"
[[rules]]
id = "acme-deploy-key"
name = "Acme deploy key"
description = "An internal deploy key."
keywords = ["acmedk_"]
regex = '\b(?P<secret>acmedk_[a-z0-9]{24})\b'
severity = "high"
confidence = "high"
remediation = "Revoke it at https://deploy.acme.internal/keys"
examples = [{ text = "ACME=acmedk_0123456789abcdefghijklmn", secret = "acmedk_0123456789abcdefghijklmn" }]
negative_examples = ["acmedk_short"]
"#;

#[test]
fn builtin_rules_check_and_list() {
    let o = run(&["rules", "check"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).starts_with("ok: "));
    let o = run(&["rules", "list", "--json"]);
    let list: Vec<serde_json::Value> = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(list.len() >= 80, "{}", list.len());
    for id in [
        "aws-access-key-id",
        "github-pat",
        "circleci-personal-token",
        "circleci-project-token",
        "circleci-legacy-token",
        "private-key",
        "generic-secret-assignment",
    ] {
        assert!(list.iter().any(|r| r["id"] == id), "missing {id}");
    }
}

#[test]
fn extra_rules_add_and_override() {
    let dir = TempDir::new().unwrap();
    let rules = dir.path().join("rules");
    fs::create_dir(&rules).unwrap();
    fs::write(rules.join("acme.toml"), EXTRA).unwrap();
    // Override a built-in: same id, stricter severity.
    let builtin =
        fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/patterns/github.toml")).unwrap();
    let first = builtin
        .split("[[rules]]")
        .nth(1)
        .unwrap()
        .replace("severity = \"critical\"", "severity = \"low\"");
    fs::write(rules.join("override.toml"), format!("[[rules]]{first}")).unwrap();
    let log = dir.path().join("x.log");
    let tok = gh_token("ghp", 30);
    fs::write(
        &log,
        format!("ACME=acmedk_abcdefghijklmnopqrstuvwx\n{tok}\n"),
    )
    .unwrap();
    let o = scan_jsonl(&[&log], &["--rules", rules.to_str().unwrap()]);
    let found = jsonl(&o);
    assert_eq!(found.len(), 2, "{}", stderr(&o));
    assert_eq!(found[0]["rule_id"], "acme-deploy-key");
    assert_eq!(found[1]["rule_id"], "github-pat");
    assert_eq!(found[1]["severity"], "low");
    let o = run(&["rules", "check", rules.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn broken_rules_are_refused_with_a_clear_error() {
    let dir = TempDir::new().unwrap();
    let log = dir.path().join("x.log");
    fs::write(&log, "nothing\n").unwrap();
    let cases = [
        (EXTRA.replace("keywords = [\"acmedk_\"]\n", ""), "keywords"),
        (EXTRA.replace("(?P<secret>", "("), "secret"),
        (EXTRA.replace("[a-z0-9]{24})", "[a-z0-9]{24}"), "regex"),
        (format!("{EXTRA}{EXTRA}"), "duplicate rule id"),
        ("not toml [[".to_string(), "cannot parse"),
        // A megabyte of alternatives is refused before the regex compiler sees it.
        (
            EXTRA.replace(
                "[a-z0-9]{24})",
                &format!("[a-z0-9]{{24}}(?:{}))", vec!["x"; 500_000].join("|")),
            ),
            "at most 4096",
        ),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let rules = dir.path().join(format!("r{i}"));
        fs::create_dir(&rules).unwrap();
        fs::write(rules.join("bad.toml"), text).unwrap();
        let o = scan_jsonl(&[&log], &["--rules", rules.to_str().unwrap()]);
        assert_eq!(code(&o), 2, "case {i}");
        let err = stderr(&o);
        assert!(
            err.starts_with("cisleuth: error:") && err.contains(want),
            "case {i}: {err}"
        );
        // One message; a regex or TOML error keeps its line breaks so its caret stands under
        // what it points at.
        assert_eq!(
            err.lines().filter(|l| l.starts_with("cisleuth:")).count(),
            1,
            "one message: {err}"
        );
        if want == &"regex" {
            let lines: Vec<&str> = err.lines().collect();
            let caret = lines
                .iter()
                .position(|l| l.trim() == "^")
                .expect("a caret line");
            let col = lines[caret].find('^').unwrap();
            assert_eq!(
                &lines[caret - 1][col..col + 1],
                "(",
                "the caret points at the open group: {err}"
            );
        }
        if want == &"cannot parse" {
            assert!(err.lines().any(|l| l.trim_end().ends_with('^')), "{err}");
        }
        assert_eq!(code(&run(&["rules", "check", rules.to_str().unwrap()])), 2);
    }
}

#[test]
fn rules_check_reports_a_failing_example() {
    let dir = TempDir::new().unwrap();
    fs::write(
        dir.path().join("a.toml"),
        EXTRA.replace(
            "negative_examples = [\"acmedk_short\"]",
            "negative_examples = [\"acmedk_zzzzzzzzzzzzzzzzzzzzzzz9\"]",
        ),
    )
    .unwrap();
    let o = run(&["rules", "check", dir.path().to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("acme-deploy-key") && stderr(&o).contains("negative example 1"),
        "{}",
        stderr(&o)
    );
}
