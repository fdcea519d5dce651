//! The one-way pipeline, enforced: every `src/**/*.rs` file may name (`crate::…`, outside
//! test code and comments) only the stages before it, as the table in `src/lib.rs` says.

use std::collections::BTreeSet;
use std::path::Path;

/// Each stage and the stages it may import (itself always allowed). `cmd`, the crate root
/// and `fuzz` (the harness over the whole stack) may import anything.
const ALLOWED: &[(&str, &[&str])] = &[
    ("rules", &[]),
    ("http", &[]),
    ("terminal", &[]),
    ("origin", &[]),
    ("source", &["origin", "http", "terminal"]),
    ("content", &[]),
    ("normalise", &[]),
    ("decode", &[]),
    ("detect", &["rules", "normalise"]),
    ("config", &["rules"]),
    ("finding", &["detect", "rules", "origin"]),
    (
        "scan",
        &[
            "config",
            "content",
            "decode",
            "detect",
            "finding",
            "normalise",
            "rules",
            "origin",
            "terminal",
        ],
    ),
    ("store", &["finding", "rules", "source", "origin"]),
    ("baseline", &["finding", "rules", "store"]),
    (
        "report",
        &[
            "finding", "rules", "store", "http", "terminal", "config", "origin",
        ],
    ),
    ("cli", &["rules"]),
];

/// The stage a file belongs to (None: may import anything).
fn stage_of(rel: &str) -> Option<&'static str> {
    let rel = rel.trim_end_matches(".rs");
    if rel == "source/origin" {
        return Some("origin");
    }
    let top = rel.split('/').next().unwrap();
    match top {
        "lib" | "main" | "cmd" | "fuzz" | "testutil" => None,
        other => Some(
            ALLOWED
                .iter()
                .find(|(s, _)| *s == other)
                .unwrap_or_else(|| panic!("src/{rel}.rs: stage {other:?} is not in the table"))
                .0,
        ),
    }
}

/// The stage a `crate::a::b` path names.
fn stage_named(a: &str, b: Option<&str>) -> String {
    match (a, b) {
        ("source", Some("origin")) => "origin".into(),
        _ => a.to_string(),
    }
}

/// Production code only: comment lines and `#[cfg(test)]` items removed.
fn production(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if t.starts_with("//") {
            continue;
        }
        if t.starts_with("#[cfg(test)]") {
            // Skip the item: one line ending in `;`, or up to its closing brace.
            let mut depth = 0i32;
            let mut opened = false;
            for l in lines.by_ref() {
                depth += l.matches('{').count() as i32 - l.matches('}').count() as i32;
                opened |= l.contains('{');
                if (!opened && l.trim_end().ends_with(';')) || (opened && depth <= 0) {
                    break;
                }
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Every stage `code` names through `crate::`.
fn imports(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `use crate::{a::x, b};`
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let mut segs = part.trim().split("::");
                if let Some(a) = segs.next().filter(|a| !a.is_empty()) {
                    found.insert(stage_named(a, segs.next()));
                }
            }
            continue;
        }
        let path: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let mut segs = path.split("::");
        if let Some(a) = segs.next().filter(|a| !a.is_empty()) {
            found.insert(stage_named(a, segs.next()));
        }
    }
    found
}

/// Violations in one file, as `scan imports report: not allowed (src/scan.rs)`.
fn check(rel: &str, text: &str) -> Vec<String> {
    let Some(stage) = stage_of(rel) else {
        return Vec::new();
    };
    let allowed = ALLOWED.iter().find(|(s, _)| *s == stage).unwrap().1;
    imports(&production(text))
        .into_iter()
        .filter(|i| i != stage && !allowed.contains(&i.as_str()))
        .map(|i| format!("{stage} imports {i}: not allowed (src/{rel})"))
        .collect()
}

fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, root, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            out.push((rel, std::fs::read_to_string(&p).unwrap()));
        }
    }
}

#[test]
fn every_module_imports_only_earlier_stages() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    assert!(files.len() > 30, "read {} files", files.len());
    let problems: Vec<String> = files.iter().flat_map(|(r, t)| check(r, t)).collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_check_catches_a_backward_import() {
    let bad = "//! doc mentioning crate::report is fine\nuse crate::detect::Engine;\nfn f() { crate::report::Summary::default(); }\n#[cfg(test)]\nmod tests { use crate::store::Store; }\n";
    assert_eq!(
        check("scan.rs", bad),
        vec!["scan imports report: not allowed (src/scan.rs)"]
    );
    assert_eq!(
        check(
            "source/circleci/mod.rs",
            "use crate::{finding::Finding, http};"
        ),
        vec!["source imports finding: not allowed (src/source/circleci/mod.rs)"]
    );
    assert!(check("cmd/scan/mod.rs", "use crate::report::Summary;").is_empty());
}
