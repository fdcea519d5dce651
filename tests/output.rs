//! The output contract: JSONL and JSON validate against docs/finding.schema.json.

use std::fs;

use tempfile::TempDir;

use crate::util::*;

pub(crate) fn schema() -> jsonschema::Validator {
    let text = fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/finding.schema.json"
    ))
    .unwrap();
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
}

pub(crate) fn assert_valid(v: &jsonschema::Validator, f: &serde_json::Value) {
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

/// The official SARIF 2.1.0 schema, as shipped in the `serde-sarif` crate (a dev-dependency),
/// located through `cargo metadata` so that no copy lives in this repository.
pub fn sarif_schema() -> serde_json::Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata");
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let manifest = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "serde-sarif")
        .expect("serde-sarif is a dev-dependency")["manifest_path"]
        .as_str()
        .unwrap()
        .to_string();
    let schema = std::path::Path::new(&manifest)
        .parent()
        .unwrap()
        .join("src/schema.json");
    serde_json::from_str(&fs::read_to_string(schema).unwrap()).unwrap()
}

#[test]
fn sarif_validates_against_the_sarif_2_1_0_schema() {
    let schema = sarif_schema();
    assert_eq!(
        schema["title"],
        "Static Analysis Results Format (SARIF) Version 2.1.0 JSON Schema"
    );
    let v = jsonschema::validator_for(&schema).unwrap();
    let ex = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let o = run(&["scan", "path", "--format", "sarif", "--show-secrets", ex]);
    assert_eq!(code(&o), 1);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let errors: Vec<String> = v
        .iter_errors(&doc)
        .map(|e| format!("{e} at {}", e.instance_path))
        .take(5)
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    let run0 = &doc["runs"][0];
    let results = run0["results"].as_array().unwrap();
    assert_eq!(results.len(), 6);
    let rules = run0["tool"]["driver"]["rules"].as_array().unwrap();
    for r in results {
        let idx = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[idx]["id"], r["ruleId"]);
        assert_eq!(
            r["partialFingerprints"]["cisleuthFingerprint/v1"]
                .as_str()
                .unwrap()
                .len(),
            64
        );
        assert!(
            r["locations"][0]["physicalLocation"]["region"]["startLine"]
                .as_u64()
                .unwrap()
                >= 1
        );
    }
    for rule in rules {
        assert!(
            !rule["help"]["text"].as_str().unwrap().is_empty(),
            "remediation as help"
        );
        assert!(rule["properties"]["security-severity"].as_str().is_some());
    }
    // SARIF never carries the secret, even with --show-secrets.
    let gh = jsonl(&scan_jsonl(&[std::path::Path::new(ex)], &[]))
        .into_iter()
        .find(|f| f["rule_id"] == "github-pat")
        .unwrap();
    assert!(!stdout(&o).contains(gh["secret"].as_str().unwrap()));
    // An empty scan is a valid SARIF log too.
    let dir = TempDir::new().unwrap();
    let o = run(&[
        "scan",
        "path",
        "--format",
        "sarif",
        dir.path().to_str().unwrap(),
    ]);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(v.is_valid(&doc));
    assert_eq!(doc["runs"][0]["results"].as_array().unwrap().len(), 0);
}

#[test]
fn csv_has_a_header_and_one_row_per_finding() {
    let ex = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let o = run(&["scan", "path", "--format", "csv", ex]);
    let text = stdout(&o);
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "rule_id,rule_name,severity,confidence,redacted,fingerprint,source,where,line,column,url"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 6);
    assert!(rows.iter().all(|r| r.split(',').count() >= 11));
    let dir = TempDir::new().unwrap();
    let o = run(&[
        "scan",
        "path",
        "--format",
        "csv",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(stdout(&o).lines().count(), 1, "header only");
}

#[test]
fn junit_has_a_failure_per_finding_and_a_pass_when_clean() {
    let ex = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let o = run(&["scan", "path", "--format", "junit", "--show-secrets", ex]);
    let text = stdout(&o);
    assert!(text.starts_with("<?xml"));
    assert!(
        text.contains("<testsuite name=\"cisleuth\" tests=\"6\" failures=\"6\""),
        "{text}"
    );
    assert_eq!(text.matches("<failure ").count(), 6);
    assert!(
        !text.contains("xoxb-") || text.contains("xoxb-…"),
        "secrets stay redacted"
    );
    let dir = TempDir::new().unwrap();
    let o = run(&[
        "scan",
        "path",
        "--format",
        "junit",
        dir.path().to_str().unwrap(),
    ]);
    assert!(stdout(&o).contains("failures=\"0\"") && stdout(&o).contains("no leaked secrets"));
}
