//! The output contract: JSONL and JSON validate against docs/finding.schema.json.

use std::fs;

use tempfile::TempDir;

use crate::util::*;

fn schema() -> jsonschema::Validator {
    let text = fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/finding.schema.json"
    ))
    .unwrap();
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
}

fn assert_valid(v: &jsonschema::Validator, f: &serde_json::Value) {
    let errors: Vec<String> = v
        .iter_errors(f)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{f}\n{errors:?}");
}

#[test]
fn jsonl_matches_the_documented_schema() {
    let v = schema();
    let dir = TempDir::new().unwrap();
    let p = dir.path().join("x.log");
    fs::write(
        &p,
        format!(
            "{}\nAWS_ACCESS_KEY_ID=AKIAZ7Q3K2M4N5P6R7S4\nAWS_SECRET_ACCESS_KEY=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\nDATABASE_URL=postgres://app:Zt7Qp2Lm9Xc4Vb8N@db:5432/app\n",
            gh_token("ghp", 40)
        ),
    )
    .unwrap();
    for extra in [&[][..], &["--show-secrets"][..]] {
        let mut args = vec!["scan", "path", "--format", "jsonl", p.to_str().unwrap()];
        args.extend_from_slice(extra);
        let o = run(&args);
        let found = jsonl(&o);
        assert_eq!(found.len(), 3, "{}", stdout(&o));
        for f in &found {
            assert_valid(&v, f);
            assert_eq!(f.get("secret").is_some(), !extra.is_empty());
        }
        assert!(found.iter().any(|f| f.get("pair").is_some()));
    }
    // stdin locations too.
    let mut child = cisleuth()
        .args(["scan", "-", "--format", "jsonl"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(gh_token("ghp", 41).as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let found = jsonl(&o);
    assert_eq!(found.len(), 1);
    assert_valid(&v, &found[0]);
}

#[test]
fn the_schema_rejects_what_it_should() {
    // Guard against a schema that accepts anything.
    let v = schema();
    let dir = TempDir::new().unwrap();
    let p = dir.path().join("x.log");
    fs::write(&p, gh_token("ghp", 42)).unwrap();
    let good = jsonl(&run(&[
        "scan",
        "path",
        "--format",
        "jsonl",
        p.to_str().unwrap(),
    ]))
    .remove(0);
    assert!(v.is_valid(&good));
    for (field, bad) in [
        ("fingerprint", serde_json::json!("abc")),
        ("severity", serde_json::json!("urgent")),
        ("extra", serde_json::json!(1)),
    ] {
        let mut f = good.clone();
        f[field] = bad;
        assert!(!v.is_valid(&f), "{field}");
    }
    let mut f = good.clone();
    f["location"]["source"] = serde_json::json!("stdin");
    assert!(!v.is_valid(&f), "stdin location with a path");
}

#[test]
fn json_document_has_findings_and_summary() {
    let v = schema();
    let ex = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let o = run(&["scan", "path", "--format", "json", ex]);
    assert_eq!(code(&o), 1);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let findings = doc["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 6);
    findings.iter().for_each(|f| assert_valid(&v, f));
    assert_eq!(doc["summary"]["findings"], 6);
    assert_eq!(doc["summary"]["inputs"], 3);
    assert_eq!(doc["summary"]["errors"], 0);
    // An empty scan is still a valid document.
    let dir = TempDir::new().unwrap();
    let o = run(&[
        "scan",
        "path",
        "--format",
        "json",
        dir.path().to_str().unwrap(),
    ]);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(doc["findings"].as_array().unwrap().len(), 0);
}
