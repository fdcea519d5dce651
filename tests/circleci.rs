//! `cisleuth scan circleci` against the fake CircleCI (tests/support/fake_circleci.rs).

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::fake_circleci::{generate, Fake, Planted};
use crate::util::*;

fn scan(fake: &Fake, args: &[&str]) -> Output {
    cmd(fake, args).output().unwrap()
}

fn cmd(fake: &Fake, args: &[&str]) -> Command {
    let mut c = cisleuth();
    c.args([
        "scan",
        "circleci",
        "--host",
        fake.api_url(),
        "--format",
        "jsonl",
        "--show-secrets",
    ])
    .args(args)
    .env("CIRCLECI_TOKEN", fake.token())
    .env_remove("CIRCLE_TOKEN")
    .env_remove("CIRCLECI_HOST");
    c
}

/// The planted secret each finding matches, keyed by secret.
fn by_secret(found: &[Value]) -> HashMap<String, Value> {
    found
        .iter()
        .map(|f| (f["secret"].as_str().unwrap().to_string(), f.clone()))
        .collect()
}

fn assert_no_credential_left_the_api(fake: &Fake) {
    for s in fake.log() {
        if s.host == "storage" {
            assert!(
                !s.had_any_auth,
                "a credential reached the storage host: {}",
                s.path
            );
        }
    }
}

#[test]
fn org_scan_finds_every_planted_secret_with_provenance() {
    let (cfg, planted) = generate(2, 3, 2, 4, true);
    let fake = Fake::start(cfg);
    let o = scan(&fake, &["--org", "gh/acme"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let found = jsonl(&o);
    let map = by_secret(&found);
    for p in &planted {
        let f = map
            .get(&p.secret)
            .unwrap_or_else(|| panic!("missed {p:?}\n{}", stderr(&o)));
        let loc = &f["location"];
        assert_eq!(loc["source"], "circleci");
        assert_eq!(loc["job_number"], p.job_number);
        assert!(loc["project"].as_str().unwrap().starts_with("gh/acme/svc"));
        assert_eq!(
            loc["workflow"], "build-and-test",
            "v2 names win over v1.1's"
        );
        assert!(loc["pipeline_number"].as_u64().is_some());
        assert!(loc["job"].as_str().unwrap().starts_with("build-"));
        assert!(loc["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/{}", p.job_number)));
        match p.kind.as_str() {
            "out" => {
                assert_eq!(loc["stream"], "out");
                assert_eq!(loc["step"], "Step 3");
                assert_eq!(loc["step_id"], 103);
                assert_eq!(loc["node_index"], 0);
                assert_eq!(loc["line"], 3, "lines count within the joined messages");
            }
            "err" => {
                assert_eq!(loc["stream"], "err");
                assert_eq!(loc["node_index"], 1);
            }
            "bash_command" => {
                assert_eq!(loc["bash_command"], true);
                assert_eq!(loc["step_id"], 102);
            }
            "config" => assert_eq!(loc["config"], true),
            a => assert_eq!(
                loc["artifact"].as_str().unwrap(),
                a.strip_prefix("artifact:").unwrap()
            ),
        }
    }
    assert_eq!(found.len(), planted.len(), "no extra findings");
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/finding.schema.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let v = jsonschema::validator_for(&schema).unwrap();
    for f in &found {
        assert!(v.is_valid(f), "{f}");
    }
    // Every job once, although v1.1 /projects and v2 org pipelines both list every project.
    let fetches = fake.build_fetches();
    let jobs: BTreeSet<u64> = planted.iter().map(|p| p.job_number).collect();
    assert_eq!(fetches.len(), jobs.len());
    assert!(fetches.values().all(|&n| n == 1), "{fetches:?}");
    // The token went to the API and the artifact host, never to storage (step output and
    // the artifacts' redirect target).
    assert_no_credential_left_the_api(&fake);
    assert!(fake
        .log()
        .iter()
        .any(|s| s.host == "artifacts" && s.had_token));
    assert!(fake
        .log()
        .iter()
        .any(|s| s.host == "storage" && s.path.starts_with("/blob/")));
    assert!(!stdout(&o).contains(fake.token()) && !stderr(&o).contains(fake.token()));
    assert!(
        stderr(&o).contains(&format!("from {} jobs", jobs.len())),
        "{}",
        stderr(&o)
    );
}

#[test]
fn missing_or_wrong_token_is_one_clear_error() {
    let (cfg, _) = generate(1, 1, 1, 3, false);
    let fake = Fake::start(cfg);
    let o = cmd(&fake, &["--project", "gh/acme/svc0"])
        .env_remove("CIRCLECI_TOKEN")
        .output()
        .unwrap();
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("no CircleCI token"), "{}", stderr(&o));
    let o = cmd(&fake, &["--project", "gh/acme/svc0"])
        .env("CIRCLECI_TOKEN", "CCIPAT_wrong_0000")
        .output()
        .unwrap();
    assert_eq!(code(&o), 2);
    let err = stderr(&o);
    assert!(
        err.contains("CircleCI refused the token (401: Invalid token provided.)"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(stdout(&o).is_empty());
    assert!(!err.contains("CCIPAT_wrong"));
    // Only /me was asked.
    assert!(fake.log().iter().all(|s| s.path == "/api/v2/me"));
    // --token-file works too.
    let dir = tempfile::TempDir::new().unwrap();
    let tf = dir.path().join("token");
    std::fs::write(&tf, format!("{}\n", fake.token())).unwrap();
    let o = cmd(
        &fake,
        &[
            "--project",
            "gh/acme/svc0",
            "--token-file",
            tf.to_str().unwrap(),
        ],
    )
    .env_remove("CIRCLECI_TOKEN")
    .output()
    .unwrap();
    assert_eq!(code(&o), 1, "{}", stderr(&o));
}

#[test]
fn rate_limits_and_bad_gateways_are_survived() {
    // Many tasks queued behind few permits, with latency: when a 429 comes back, tasks that
    // were already waiting for a permit must wait for the pause too.
    let (mut cfg, planted) = generate(1, 40, 1, 3, true);
    cfg.rate_limit_every = Some(97);
    cfg.fail_every = Some(13);
    cfg.latency = Duration::from_millis(30);
    let fake = Fake::start(cfg);
    let o = scan(&fake, &["--project", "gh/acme/svc0", "--concurrency", "8"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let map = by_secret(&jsonl(&o));
    assert!(
        planted.iter().all(|p| map.contains_key(&p.secret)),
        "{}",
        stderr(&o)
    );
    assert!(fake.log().iter().any(|s| s.status == 429));
    assert!(fake.log().iter().any(|s| s.status == 502));
    assert_eq!(
        fake.rate_limit_violations(),
        0,
        "requests started while rate limited: {:?}",
        fake.violating()
    );
    assert!(
        stderr(&o).contains("rate-limited (429) waits"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("error:"), "{}", stderr(&o));
}

#[test]
fn a_hostile_retry_after_neither_crashes_nor_stalls_the_scan() {
    // `Retry-After: 1e20` made `Duration::from_secs_f64` panic inside a task, and the panic
    // vanished: exit 0 with nothing scanned. Now the wait is cut to --max-retry-wait, a note
    // says so, and every planted secret is found.
    for value in [
        "1e20",
        "18446744073709551615",
        "Fri, 31 Dec 9999 23:59:59 GMT",
    ] {
        let (mut cfg, planted) = generate(1, 3, 1, 3, true);
        cfg.rate_limit_every = Some(4);
        cfg.retry_after = Some(value.to_string());
        let fake = Fake::start(cfg);
        let started = std::time::Instant::now();
        let o = scan(
            &fake,
            &[
                "--project",
                "gh/acme/svc0",
                "--max-retry-wait",
                "1",
                "--min-confidence",
                "low",
            ],
        );
        assert_eq!(code(&o), 1, "{value}: {}", stderr(&o));
        let map = by_secret(&jsonl(&o));
        let missing: Vec<&Planted> = planted
            .iter()
            .filter(|p| !map.contains_key(&p.secret))
            .collect();
        assert!(missing.is_empty(), "{value}: {missing:?} {}", stderr(&o));
        assert!(
            stderr(&o).contains("rate limited (HTTP 429): all requests pause for 1 s"),
            "{value}: {}",
            stderr(&o)
        );
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
        assert!(started.elapsed() < std::time::Duration::from_secs(60));
    }
}

#[test]
fn concurrency_is_bounded() {
    let (mut cfg, _) = generate(1, 4, 3, 4, true);
    cfg.latency = Duration::from_millis(15);
    let fake = Fake::start(cfg);
    let o = scan(&fake, &["--project", "gh/acme/svc0", "--concurrency", "3"]);
    assert_eq!(code(&o), 1);
    assert!(
        fake.max_in_flight() <= 3,
        "{} in flight",
        fake.max_in_flight()
    );
    assert!(fake.max_in_flight() >= 2, "no concurrency at all");
}

#[test]
fn filters_and_scopes() {
    let (cfg, planted) = generate(1, 6, 1, 3, false);
    let fake = Fake::start(cfg.clone());
    let pipelines = &cfg.projects[0].pipelines;
    let jobs_of = |o: &Output| -> BTreeSet<u64> {
        jsonl(o)
            .iter()
            .map(|f| f["location"]["job_number"].as_u64().unwrap())
            .collect()
    };
    let job_of_pipeline = |i: usize| pipelines[i].workflows[0].jobs[0].number.unwrap();
    // Newest first: pipelines 0..6 were created on Jan 10, 9, 8, 7, 6, 5.
    let o = scan(
        &fake,
        &[
            "--project",
            "gh/acme/svc0",
            "--since",
            "2023-01-08",
            "--until",
            "2023-01-09",
        ],
    );
    assert_eq!(
        jobs_of(&o),
        [job_of_pipeline(1), job_of_pipeline(2)]
            .into_iter()
            .collect()
    );
    let o = scan(&fake, &["--project", "gh/acme/svc0", "--branch", "feature"]);
    assert_eq!(
        jobs_of(&o),
        [1, 3, 5].into_iter().map(job_of_pipeline).collect()
    );
    let o = scan(&fake, &["--workflow", &pipelines[4].workflows[0].id]);
    assert_eq!(jobs_of(&o), [job_of_pipeline(4)].into_iter().collect());
    let f = &jsonl(&o)[0];
    assert_eq!(f["location"]["pipeline_number"], pipelines[4].number);
    let o = scan(&fake, &["--pipeline", &pipelines[2].id]);
    assert_eq!(jobs_of(&o), [job_of_pipeline(2)].into_iter().collect());
    let o = scan(
        &fake,
        &["--job", &format!("gh/acme/svc0/{}", job_of_pipeline(3))],
    );
    assert_eq!(jobs_of(&o), [job_of_pipeline(3)].into_iter().collect());
    let o = scan(&fake, &["--project", "gh/acme/svc0", "--max-jobs", "2"]);
    assert_eq!(jobs_of(&o).len(), 2);
    // Per job: stdout, stderr, a step command, the config.
    assert_eq!(planted.len(), 6 * 4);
}

#[test]
fn running_jobs_are_noted_and_missing_projects_reported() {
    let (mut cfg, planted) = generate(1, 2, 1, 3, false);
    cfg.projects[0].pipelines[0].workflows[0].jobs[0].running = true;
    let running = cfg.projects[0].pipelines[0].workflows[0].jobs[0]
        .number
        .unwrap();
    let fake = Fake::start(cfg);
    let o = scan(
        &fake,
        &["--project", "gh/acme/svc0", "--project", "gh/acme/nope"],
    );
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(
        err.contains("note:") && err.contains("no output yet (the job is still running)"),
        "{err}"
    );
    assert!(
        err.contains("gh/acme/nope") && err.contains("not found or not visible to this token"),
        "{err}"
    );
    let map = by_secret(&jsonl(&o));
    for p in &planted {
        // The running job's config and commands are still scanned; its output is not.
        let expect =
            p.job_number != running || matches!(p.kind.as_str(), "config" | "bash_command");
        assert_eq!(map.contains_key(&p.secret), expect, "{p:?}");
    }
}

#[test]
fn a_failing_job_is_reported_and_the_scan_goes_on() {
    let (mut cfg, planted) = generate(1, 2, 1, 3, false);
    let broken = planted[0].job_number;
    cfg.broken_jobs = vec![broken];
    let fake = Fake::start(cfg);
    let o = scan(&fake, &["--project", "gh/acme/svc0", "--retries", "1"]);
    assert_eq!(code(&o), 1, "findings elsewhere still exit 1");
    let err = stderr(&o);
    assert!(
        err.contains(&format!("gh/acme/svc0 job {broken}")) && err.contains("HTTP 500"),
        "{err}"
    );
    let map = by_secret(&jsonl(&o));
    assert!(planted
        .iter()
        .filter(|p| p.job_number != broken)
        .all(|p| map.contains_key(&p.secret)));
    // Only that job in scope: no findings, an error: exit 2, never "clean".
    let o = scan(
        &fake,
        &["--job", &format!("gh/acme/svc0/{broken}"), "--retries", "0"],
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
}

/// An organisation slow enough (25 ms a request) to stop a scan half way, and a folder for
/// its state file.
fn slow_org(artifacts: bool) -> (Fake, Vec<Planted>, tempfile::TempDir) {
    let (mut cfg, planted) = generate(2, 4, 2, 3, artifacts);
    cfg.latency = Duration::from_millis(25);
    (Fake::start(cfg), planted, tempfile::TempDir::new().unwrap())
}

fn resumable_args(state: &std::path::Path) -> [&str; 6] {
    [
        "--org",
        "gh/acme",
        "--state",
        state.to_str().unwrap(),
        "--concurrency",
        "4",
    ]
}

/// Read `n` findings from a running scan's stdout; the rest of its lines follow.
fn read_findings(
    child: &mut std::process::Child,
    n: usize,
) -> (
    Vec<Value>,
    std::io::Lines<BufReader<std::process::ChildStdout>>,
) {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut found = Vec::new();
    while found.len() < n {
        let line = lines.next().expect("the scan ended early").unwrap();
        found.push(serde_json::from_str(&line).unwrap());
    }
    (found, lines)
}

#[test]
fn resume_after_kill_loses_nothing_and_repeats_nothing() {
    let (fake, planted, dir) = slow_org(true);
    let state = dir.path().join("scan.state");
    let args = resumable_args(&state);
    let mut child = cmd(&fake, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Half way: some jobs are finished, others are in flight.
    let (mut first, lines) = read_findings(&mut child, planted.len() / 2);
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    // Whatever was printed after our read but before the kill is also "reported".
    for line in lines.map_while(Result::ok) {
        if let Ok(v) = serde_json::from_str::<Value>(&line) {
            first.push(v);
        }
    }
    assert!(
        first.len() < planted.len(),
        "the kill came too late to test anything"
    );
    let fetched_first = fake.build_fetches().values().sum::<usize>();
    let o = scan(&fake, &args);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let second = jsonl(&o);
    let key = |f: &Value| {
        (
            f["fingerprint"].as_str().unwrap().to_string(),
            f["location"].to_string(),
        )
    };
    let a: BTreeSet<_> = first.iter().map(key).collect();
    let b: BTreeSet<_> = second.iter().map(key).collect();
    // A finding is recorded right after it is written and flushed, so a SIGKILL landing in
    // between (this test kills the moment it reads a line) repeats that one finding on
    // resume; the other order could lose it. Never more than the one in flight.
    let rep: Vec<_> = a.intersection(&b).collect();
    assert!(
        rep.len() <= 1,
        "the re-run repeated {} findings: {:?}",
        rep.len(),
        rep.iter().take(3).collect::<Vec<_>>()
    );
    let all: BTreeSet<String> = first
        .iter()
        .chain(&second)
        .map(|f| f["secret"].as_str().unwrap().to_string())
        .collect();
    let want: BTreeSet<String> = planted.iter().map(|p: &Planted| p.secret.clone()).collect();
    assert_eq!(all, want, "secrets lost across the kill");
    assert!(
        stderr(&o).contains("already scanned by an earlier run"),
        "{}",
        stderr(&o)
    );
    // Finished jobs were not fetched again.
    let jobs = planted
        .iter()
        .map(|p| p.job_number)
        .collect::<BTreeSet<_>>()
        .len();
    let fetched_second = fake.build_fetches().values().sum::<usize>() - fetched_first;
    assert!(
        fetched_second < jobs,
        "re-run fetched {fetched_second} of {jobs} jobs"
    );
    // A third run has nothing left to print, but the earlier findings still stand (exit 1,
    // as docs/OUTPUT.md says).
    let o = scan(&fake, &args);
    assert!(jsonl(&o).is_empty());
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("reported by an earlier run"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn loopback_http_is_quiet_and_bad_scopes_fail() {
    let (cfg, _) = generate(1, 1, 1, 3, false);
    let fake = Fake::start(cfg);
    let o = scan(&fake, &["--job", "gh/acme/svc0"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("invalid --job"), "{}", stderr(&o));
    let o = scan(&fake, &["--project", "svn/x/y"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("invalid --project"), "{}", stderr(&o));
    // Loopback http is fine: no warning.
    let o = scan(&fake, &["--project", "gh/acme/svc0"]);
    assert!(!stderr(&o).contains("plain http"), "{}", stderr(&o));
}

#[test]
fn fake_circleci_is_faithful_to_the_reference() {
    // Spot checks of the fake itself, so the tests above exercise real shapes.
    let (cfg, _) = generate(1, 25, 1, 3, false);
    let fake = Fake::start(cfg);
    let get = |path: &str, token: Option<&str>| ureq_like(fake.api_url(), path, token);
    let (s, body) = get("/api/v2/me", None);
    assert_eq!((s, body.contains("You must log in first.")), (401, true));
    let (s, body) = get("/api/v2/project/gh/acme/svc0/pipeline", Some(fake.token()));
    assert_eq!(s, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 20);
    assert_eq!(v["next_page_token"], "p20");
    let (_, body) = get("/api/v1.1/projects", Some(fake.token()));
    assert!(serde_json::from_str::<Value>(&body).unwrap().is_array());
}

/// A minimal HTTP/1.0 GET (the tests have no HTTP client of their own).
fn ureq_like(base: &str, path: &str, token: Option<&str>) -> (u16, String) {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let auth = token
        .map(|t| format!("Circle-Token: {t}\r\n"))
        .unwrap_or_default();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n{auth}\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp[9..12].parse().unwrap();
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn a_rerun_reports_what_earlier_runs_found_and_lost_output_is_not_recorded() {
    let (cfg, planted) = generate(1, 2, 1, 3, true);
    let fake = Fake::start(cfg);
    let dir = tempfile::TempDir::new().unwrap();
    let state = dir.path().join("scan.state");
    let args = [
        "--project",
        "gh/acme/svc0",
        "--state",
        state.to_str().unwrap(),
    ];
    // The output fails (a full disk): exit 2, and nothing is recorded as reported or finished.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let o = cmd(&fake, &args).stdout(full).output().unwrap();
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot write output"), "{}", stderr(&o));
    // So the re-run reports everything.
    let o = scan(&fake, &args);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let map = by_secret(&jsonl(&o));
    assert!(
        planted.iter().all(|p| map.contains_key(&p.secret)),
        "{}",
        stderr(&o)
    );
    // A third run has nothing new to print, but what was found still stands: exit 1.
    let o = scan(&fake, &args);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(jsonl(&o).is_empty());
    assert!(
        stderr(&o).contains(&format!(
            "{} finding(s) reported by an earlier run",
            planted.len()
        )),
        "{}",
        stderr(&o)
    );
}

#[test]
fn one_document_formats_record_findings_only_once_written() {
    let (cfg, planted) = generate(1, 1, 1, 3, true);
    let fake = Fake::start(cfg);
    let dir = tempfile::TempDir::new().unwrap();
    let state = dir.path().join("scan.state");
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let args = [
        "--project",
        "gh/acme/svc0",
        "--state",
        state.to_str().unwrap(),
        "--format",
        "junit",
    ];
    let o = cmd(&fake, &args).stdout(full).output().unwrap();
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let o = scan(&fake, &args[..4]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert_eq!(by_secret(&jsonl(&o)).len(), planted.len(), "{}", stderr(&o));
}

/// Findings' secrets.
fn secrets_of(o: &Output) -> BTreeSet<String> {
    jsonl(o)
        .iter()
        .map(|f| f["secret"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn org_listing_failures_are_errors_never_notes() {
    let (mut cfg, planted) = generate(2, 1, 1, 3, false);
    cfg.v1_projects_status = Some(404);
    let fake = Fake::start(cfg);
    let o = scan(&fake, &["--org", "gh/acme", "--retries", "0"]);
    let err = stderr(&o);
    assert_eq!(code(&o), 1, "{err}");
    assert!(
        err.lines().any(|l| l.starts_with("cisleuth: error:")
            && l.contains("cannot read the followed-project list")),
        "{err}"
    );
    assert!(
        err.contains("1 error(s): the scan is incomplete"),
        "the summary counts it: {err}"
    );
    // The v2 list still found every project.
    let found = secrets_of(&o);
    assert!(planted.iter().all(|p| found.contains(&p.secret)), "{err}");
}

#[test]
fn a_truncated_later_page_keeps_the_pages_already_read() {
    // Two pipelines a page; the second page of every list comes back cut off mid-JSON.
    let (mut cfg, planted) = generate(1, 5, 1, 3, false);
    cfg.page_size = 2;
    cfg.truncate_pages_from = Some(1);
    // The fake lists pipelines in the order they are configured.
    let newest: Vec<u64> = cfg.projects[0]
        .pipelines
        .iter()
        .take(2)
        .flat_map(|pl| {
            pl.workflows
                .iter()
                .flat_map(|w| w.jobs.iter().filter_map(|j| j.number))
        })
        .collect();
    let fake = Fake::start(cfg);
    let o = scan(&fake, &["--project", "gh/acme/svc0", "--retries", "0"]);
    let err = stderr(&o);
    assert_eq!(code(&o), 1, "{err}");
    assert!(
        err.contains("cannot list pipelines: page 2:") && err.contains("unexpected"),
        "{err}"
    );
    let found = secrets_of(&o);
    let first_page: Vec<&Planted> = planted
        .iter()
        .filter(|p| newest.contains(&p.job_number))
        .collect();
    assert!(!first_page.is_empty() && first_page.len() < planted.len());
    for p in first_page {
        assert!(found.contains(&p.secret), "lost {p:?} from page 1\n{err}");
    }
}

#[test]
fn a_server_that_pages_forever_is_stopped_and_the_scan_is_incomplete() {
    let (mut cfg, planted) = generate(1, 3, 1, 3, false);
    cfg.page_size = 2;
    cfg.endless_pages = true;
    let fake = Fake::start(cfg);
    // Repeated pages are noticed at once.
    let o = scan(&fake, &["--project", "gh/acme/svc0"]);
    let err = stderr(&o);
    assert_eq!(code(&o), 1, "{err}");
    assert!(err.contains("repeats an earlier page"), "{err}");
    let found = secrets_of(&o);
    let missed: Vec<&Planted> = planted
        .iter()
        .filter(|p| !found.contains(&p.secret))
        .collect();
    assert!(missed.is_empty(), "{missed:?}\n{err}");
    // And every listing stops at --max-pages.
    let o = scan(&fake, &["--project", "gh/acme/svc0", "--max-pages", "1"]);
    let err = stderr(&o);
    assert!(
        err.contains("listing stopped after 1 pages (--max-pages)"),
        "{err}"
    );
    let requests = fake
        .log()
        .iter()
        .filter(|s| s.path.contains("/pipeline?"))
        .count();
    assert!(requests < 20, "{requests} pipeline-list requests");
}

#[test]
fn a_finished_job_without_output_urls_is_incomplete() {
    let (mut cfg, planted) = generate(1, 1, 1, 2, false);
    cfg.null_output_urls = true;
    let job = planted[0].job_number;
    let fake = Fake::start(cfg);
    let o = scan(&fake, &["--job", &format!("gh/acme/svc0/{job}")]);
    let err = stderr(&o);
    assert!(
        err.lines().any(|l| l.starts_with("cisleuth: error:")
            && l.contains("no output URL for this finished step")),
        "{err}"
    );
    // Config and commands are still scanned (exit 1).
    assert_eq!(code(&o), 1, "{err}");
    // Without secrets in them nothing is found and the scan is incomplete: exit 2, not clean.
    let (mut cfg, _) = generate(1, 1, 1, 2, false);
    cfg.null_output_urls = true;
    for j in cfg.projects[0].pipelines[0].workflows[0].jobs.iter_mut() {
        j.config = "version: 2.1\n".into();
        for s in j.steps.iter_mut() {
            for a in s.actions.iter_mut() {
                a.bash_command = Some("make test".into());
            }
        }
    }
    let fake = Fake::start(cfg);
    let o = scan(&fake, &["--job", &format!("gh/acme/svc0/{job}")]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
}

#[test]
fn server_text_reaches_stderr_escaped_on_one_line() {
    let (mut cfg, planted) = generate(1, 1, 1, 1, false);
    cfg.broken_jobs = vec![planted[0].job_number];
    cfg.error_message = "boom\x1b]0;pwned\x07\x1b[2J\ncisleuth: 0 findings, scan complete".into();
    let fake = Fake::start(cfg);
    let o = scan(
        &fake,
        &[
            "--job",
            &format!("gh/acme/svc0/{}", planted[0].job_number),
            "--retries",
            "0",
        ],
    );
    assert_eq!(code(&o), 2);
    let err = stderr(&o);
    assert!(!err.contains('\x1b') && !err.contains('\x07'), "{err:?}");
    assert!(err.contains("boom\\x1b]0;pwned\\x07"), "{err}");
    assert!(
        !err.lines().any(|l| l.starts_with("cisleuth: 0 findings")),
        "a forged line: {err}"
    );
}

#[test]
fn ctrl_c_finishes_the_write_records_finished_jobs_and_says_how_to_resume() {
    let (fake, planted, dir) = slow_org(false);
    let state = dir.path().join("scan.state");
    let args = resumable_args(&state);
    let mut child = cmd(&fake, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut first, lines) = read_findings(&mut child, planted.len() * 2 / 3);
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    // Everything written after the signal is complete JSON: the current write finished.
    for line in lines.map_while(Result::ok) {
        first.push(serde_json::from_str(&line).expect("a whole line after Ctrl-C"));
    }
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "findings were reported: {err}");
    assert!(
        first.len() < planted.len(),
        "Ctrl-C came too late to test anything"
    );
    assert!(err.contains("interrupted: the scan is incomplete"), "{err}");
    let hint = err
        .lines()
        .find(|l| l.starts_with("cisleuth: resume with: "))
        .unwrap_or_else(|| panic!("no resume hint: {err}"));
    assert!(
        hint.contains("--state") && hint.contains("--org gh/acme"),
        "{hint}"
    );
    // Every job recorded as finished had all its secrets reported before the scan stopped.
    let finished: Vec<String> = {
        let c = rusqlite::Connection::open(&state).unwrap();
        let mut st = c.prepare("SELECT key FROM jobs").unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let reported: BTreeSet<&str> = first
        .iter()
        .map(|f| f["secret"].as_str().unwrap())
        .collect();
    for key in &finished {
        let number: u64 = key.rsplit('/').next().unwrap().parse().unwrap();
        for p in planted.iter().filter(|p| p.job_number == number) {
            assert!(
                reported.contains(p.secret.as_str()),
                "{key} finished without {p:?}"
            );
        }
    }
    // The resume command finds the rest and repeats nothing that was reported.
    let o = scan(&fake, &args);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let second = jsonl(&o);
    let key = |f: &Value| (f["fingerprint"].to_string(), f["location"].to_string());
    let a: BTreeSet<_> = first.iter().map(key).collect();
    let b: BTreeSet<_> = second.iter().map(key).collect();
    assert_eq!(a.intersection(&b).count(), 0, "repeated after Ctrl-C");
    let all: BTreeSet<String> = first
        .iter()
        .chain(&second)
        .map(|f| f["secret"].as_str().unwrap().to_string())
        .collect();
    let want: BTreeSet<String> = planted.iter().map(|p| p.secret.clone()).collect();
    assert_eq!(all, want, "secrets lost across Ctrl-C");
    if !finished.is_empty() {
        let said = format!(
            "{} job(s) already scanned by an earlier run",
            finished.len()
        );
        assert!(stderr(&o).contains(&said), "{}", stderr(&o));
    }
}

#[test]
fn a_reader_that_goes_away_stops_the_downloads() {
    // `cisleuth scan circleci --org X | head -1`: once the output is closed, no more jobs are
    // fetched (the writer stops the workers, the source sees its channel closed).
    // With --state every finding is flushed as it is recorded (without it, JSONL is written
    // in 64 KiB blocks, and the closed pipe is noticed at the first full block).
    let (fake, planted, dir) = slow_org(false);
    let state = dir.path().join("s.db");
    let mut args = resumable_args(&state).to_vec();
    args[5] = "2";
    let mut child = cmd(&fake, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (first, lines) = read_findings(&mut child, 1);
    assert_eq!(first.len(), 1);
    drop(lines); // closes our end of the pipe
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let jobs = planted
        .iter()
        .map(|p| p.job_number)
        .collect::<BTreeSet<_>>()
        .len();
    let fetched = fake.build_fetches().values().sum::<usize>();
    assert!(
        fetched < jobs,
        "fetched {fetched} of {jobs} jobs after the reader left"
    );
}
