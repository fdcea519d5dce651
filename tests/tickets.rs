//! Ticket sinks against local servers that check method, path, headers and body.

use std::process::Output;

use tempfile::TempDir;

use crate::capture::Capture;
use crate::util::*;

/// A datastore holding the bundled examples' 6 findings, and the raw secrets (to prove no
/// ticket carries one).
fn datastore(dir: &TempDir) -> (String, Vec<String>) {
    let db = dir.path().join("f.db").to_str().unwrap().to_string();
    let ex = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    run(&["scan", "path", "--datastore", &db, ex]);
    let secrets = jsonl(&scan_jsonl(&[std::path::Path::new(ex)], &[]))
        .iter()
        .map(|f| f["secret"].as_str().unwrap().to_string())
        .collect();
    (db, secrets)
}

fn report(db: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = cisleuth();
    c.args(["report", "--datastore", db]).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn assert_no_secret(bodies: &[String], secrets: &[String]) {
    for b in bodies {
        for s in secrets {
            // The JSON-escaped form too (a PEM holds newlines and backslashes).
            let escaped = serde_json::to_string(s).unwrap();
            assert!(
                !b.contains(s.as_str()) && !b.contains(&escaped[1..escaped.len() - 1]),
                "a raw secret went into a ticket"
            );
        }
    }
}

#[test]
fn github_issues_once_per_secret_with_retries() {
    let dir = TempDir::new().unwrap();
    let (db, secrets) = datastore(&dir);
    let gh = Capture::start(
        vec![(502, "{\"message\":\"Server Error\"}".into())],
        (
            201,
            "{\"number\":{n},\"html_url\":\"https://github.example/acme/sec/issues/{n}\"}".into(),
        ),
    );
    let env = [("GITHUB_TOKEN", "ghp_TicketTokenForTests")];
    let o = report(
        &db,
        &["--to", "github:acme/sec", "--github-api", &gh.url],
        &env,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let seen = gh.seen();
    assert_eq!(seen.len(), 7, "6 tickets and one retry after the 502");
    for r in &seen {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/repos/acme/sec/issues");
        assert_eq!(
            r.header("Authorization"),
            Some("Bearer ghp_TicketTokenForTests")
        );
        assert_eq!(r.header("Accept"), Some("application/vnd.github+json"));
        let b = r.json();
        assert!(b["title"].as_str().unwrap().starts_with("Leaked secret: "));
        assert!(b["body"].as_str().unwrap().contains("**How to fix:**"));
        assert_eq!(
            b["labels"],
            serde_json::json!(["security", "leaked-secret"])
        );
    }
    assert_no_secret(
        &seen.iter().map(|r| r.body.clone()).collect::<Vec<_>>(),
        &secrets,
    );
    // Re-run: nothing new to file.
    let o = report(
        &db,
        &["--to", "github:acme/sec", "--github-api", &gh.url],
        &env,
    );
    assert_eq!(code(&o), 0);
    assert_eq!(gh.seen().len(), 7, "no duplicate tickets");
    let recs = jsonl(&report(&db, &["--format", "jsonl"], &[]));
    assert!(recs.iter().all(|r| r["status"] == "ticketed"
        && r["ticket"]
            .as_str()
            .unwrap()
            .starts_with("https://github.example/")));
    // Without a token: a clear error.
    let o = cisleuth()
        .args(["report", "--datastore", &db, "--to", "github:acme/sec"])
        .env_remove("GITHUB_TOKEN")
        .output()
        .unwrap();
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("GITHUB_TOKEN is not set"));
}

#[test]
fn jira_issues_with_basic_auth() {
    let dir = TempDir::new().unwrap();
    let (db, secrets) = datastore(&dir);
    let jira = Capture::start(
        vec![],
        (
            201,
            "{\"id\":\"1000{n}\",\"key\":\"SEC-{n}\",\"self\":\"x\"}".into(),
        ),
    );
    let env = [
        ("JIRA_EMAIL", "bot@acme.io"),
        ("JIRA_API_TOKEN", "jira-token"),
    ];
    let o = report(
        &db,
        &[
            "--to",
            &format!("jira:{}", jira.url),
            "--jira-project",
            "SEC",
            "--jira-issue-type",
            "Bug",
        ],
        &env,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let seen = jira.seen();
    assert_eq!(seen.len(), 6);
    use base64::Engine as _;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("bot@acme.io:jira-token")
    );
    for r in &seen {
        assert_eq!(r.path, "/rest/api/2/issue");
        assert_eq!(r.header("Authorization"), Some(basic.as_str()));
        let f = &r.json()["fields"];
        assert_eq!(f["project"]["key"], "SEC");
        assert_eq!(f["issuetype"]["name"], "Bug");
    }
    assert_no_secret(
        &seen.iter().map(|r| r.body.clone()).collect::<Vec<_>>(),
        &secrets,
    );
    let recs = jsonl(&report(&db, &["--format", "jsonl"], &[]));
    assert!(recs
        .iter()
        .all(|r| r["ticket"].as_str().unwrap().starts_with("SEC-")));
}

#[test]
fn failed_webhooks_are_not_marked_filed_and_dry_runs_send_nothing() {
    let dir = TempDir::new().unwrap();
    let (db, secrets) = datastore(&dir);
    let down = Capture::start(vec![], (500, "{}".into()));
    let o = report(&db, &["--to", &format!("webhook:{}/hook", down.url)], &[]);
    assert_eq!(code(&o), 2, "failed tickets are an error");
    assert!(stderr(&o).contains("will retry next run"));
    assert_eq!(down.seen().len(), 6 * 4, "each retried 4 times");
    // A dry run prints what would be sent, with credentials hidden, and sends nothing.
    let o = report(
        &db,
        &[
            "--to",
            "github:acme/sec",
            "--dry-run",
            "--github-api",
            &down.url,
        ],
        &[("GITHUB_TOKEN", "ghp_DryRunSecretToken")],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let reqs = jsonl(&o);
    assert_eq!(reqs.len(), 6);
    assert!(!stdout(&o).contains("ghp_DryRunSecretToken"));
    assert_eq!(reqs[0]["headers"]["Authorization"], "<redacted>");
    assert_eq!(down.seen().len(), 24);
    // The webhook comes back: everything is filed now, each once.
    let up = Capture::start(vec![], (200, "{\"id\":\"evt-{n}\"}".into()));
    let o = report(&db, &["--to", &format!("webhook:{}/hook", up.url)], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let seen = up.seen();
    assert_eq!(seen.len(), 6);
    let doc = seen[0].json();
    assert_eq!(doc["type"], "cisleuth.finding");
    assert!(!doc["occurrences"].as_array().unwrap().is_empty());
    assert_no_secret(
        &seen.iter().map(|r| r.body.clone()).collect::<Vec<_>>(),
        &secrets,
    );
}

/// A server that answers every request with `status` and a body without Content-Length that
/// would go on for `total` bytes; returns its URL and how many bytes it managed to send.
fn endless_body(status: u16) -> (String, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::sync::atomic::{AtomicU64, Ordering};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let sent = std::sync::Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    std::thread::spawn(move || {
        for stream in l.incoming().flatten() {
            let counter = counter.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(stream.try_clone().unwrap());
                let mut len = 0usize;
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap_or(0) == 0 {
                        return;
                    }
                    let h = h.trim_end().to_ascii_lowercase();
                    if h.is_empty() {
                        break;
                    }
                    if let Some(v) = h.strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; len];
                let _ = r.read_exact(&mut body);
                let mut w = stream;
                let head = format!("HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n");
                if w.write_all(head.as_bytes()).is_err() {
                    return;
                }
                let chunk = vec![b' '; 1 << 20];
                for _ in 0..256 {
                    if w.write_all(&chunk).is_err() {
                        return;
                    }
                    counter.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                }
            });
        }
    });
    (url, sent)
}

#[test]
fn a_ticket_server_cannot_stream_an_endless_answer_into_memory() {
    let dir = TempDir::new().unwrap();
    let (db, _) = datastore(&dir);
    for status in [200, 500] {
        let (url, sent) = endless_body(status);
        let o = report(&db, &["--to", &format!("webhook:{url}/hook")], &[]);
        assert_eq!(code(&o), 2, "{}", stderr(&o));
        assert!(stderr(&o).contains("not filed"), "{}", stderr(&o));
        // Reading stopped near the limit: the server could not push its 256 MiB per request.
        let mib = sent.load(std::sync::atomic::Ordering::SeqCst) >> 20;
        // Six findings; a 500 is tried four times each. Unbounded, each request takes 256 MiB.
        let requests = if status == 200 { 6 } else { 24 };
        assert!(
            mib < requests * 64,
            "HTTP {status}: the server sent {mib} MiB"
        );
    }
}
