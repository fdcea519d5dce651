//! A fake CircleCI for tests and benchmarks, following section 11 of
//! `../shared/reference/circleci-api.md`. Three hosts, all on loopback:
//!
//! - the API (127.0.0.1): v2 and v1.1 routes with CircleCI's real shapes (snake_case, bare
//!   arrays where CircleCI sends them, `{items, next_page_token}` pages of a fixed size,
//!   approval jobs without `job_number`, non-sequential step ids, parallel actions,
//!   `has_output: false`, `output_url: null` for a running job, 401 bodies for a missing or
//!   wrong token, optional 429s with `Retry-After` and a plain-text body, optional 502s);
//! - the artifact host (127.0.0.3): needs the token, answers 302 to storage;
//! - storage (127.0.0.2): presigned-looking step output and artifact bodies, no auth. It
//!   records any credential it receives: tests assert it never receives one.
//!
//! Every request is logged with its host, path, whether it carried the token, and when.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Cursor, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};

use serde_json::{json, Value};

/// A response of the fake: status, headers, body.
pub struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn new(status: u16, body: Vec<u8>) -> Resp {
        Resp {
            status,
            headers: Vec::new(),
            body,
        }
    }
    fn with_header(mut self, name: &str, value: &str) -> Resp {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        _ => "Status",
    }
}

/// A request as the fake's HTTP/1.1 loop parsed it (GET only; no bodies).
struct Req {
    url: String,
    headers: Vec<(String, String)>,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Serve one connection: requests one after another (keep-alive) until the client closes.
fn serve_connection(stream: TcpStream, sh: Arc<Shared>, host: &'static str) {
    // One write per response and no Nagle: otherwise delayed ACKs add ~40 ms per request.
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (_method, url) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("/").to_string(),
        );
        let http10 = parts.next() == Some("HTTP/1.0");
        let mut headers = Vec::new();
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let mut discard = vec![0; length];
        let _ = reader.read_exact(&mut discard);
        let req = Req { url, headers };
        let close = http10
            || req
                .header("Connection")
                .is_some_and(|c| c.eq_ignore_ascii_case("close"));
        let resp = handle(&sh, host, req);
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Length: {}\r\n",
            resp.status,
            reason(resp.status),
            resp.body.len()
        );
        for (k, v) in &resp.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        if writer
            .write_all(head.as_bytes())
            .and_then(|_| writer.write_all(&resp.body))
            .and_then(|_| writer.flush())
            .is_err()
            || close
        {
            return;
        }
    }
}

/// A step action: one parallel run of a step.
#[derive(Clone, Debug)]
pub struct FakeAction {
    pub index: u64,
    pub has_output: bool,
    /// `(type, message)` pairs of the step output.
    pub messages: Vec<(&'static str, String)>,
    pub bash_command: Option<String>,
}

#[derive(Clone, Debug)]
pub struct FakeStep {
    pub name: String,
    pub step_id: u64,
    pub actions: Vec<FakeAction>,
}

#[derive(Clone, Debug)]
pub struct FakeArtifact {
    pub path: String,
    pub node_index: u64,
    pub bytes: Vec<u8>,
}

#[derive(Clone, Debug)]
pub struct FakeJob {
    pub name: String,
    /// None for approval jobs.
    pub number: Option<u64>,
    pub running: bool,
    pub steps: Vec<FakeStep>,
    pub artifacts: Vec<FakeArtifact>,
    pub config: String,
}

#[derive(Clone, Debug)]
pub struct FakeWorkflow {
    pub id: String,
    pub name: String,
    pub jobs: Vec<FakeJob>,
}

#[derive(Clone, Debug)]
pub struct FakePipeline {
    pub id: String,
    pub number: u64,
    pub created_at: String,
    pub branch: String,
    pub workflows: Vec<FakeWorkflow>,
}

#[derive(Clone, Debug)]
pub struct FakeProject {
    /// `gh/acme/api`.
    pub slug: String,
    /// Newest first.
    pub pipelines: Vec<FakePipeline>,
}

/// What the fake serves and how it misbehaves.
#[derive(Clone, Debug)]
pub struct FakeConfig {
    pub token: String,
    pub projects: Vec<FakeProject>,
    pub page_size: usize,
    /// Added before every answer.
    pub latency: Duration,
    /// Every Nth API request is answered 429 (Retry-After: `rate_limit_secs`).
    pub rate_limit_every: Option<usize>,
    pub rate_limit_secs: u64,
    /// The `Retry-After` value sent instead of `rate_limit_secs` (a hostile server's).
    pub retry_after: Option<String>,
    /// Every Nth API request is answered 502.
    pub fail_every: Option<usize>,
    /// Jobs whose v1.1 details always answer 500.
    pub broken_jobs: Vec<u64>,
    /// `/api/v1.1/projects` answers this status (a failing followed-project list).
    pub v1_projects_status: Option<u16>,
    /// v2 list pages from this index on (0 = the first) come back cut off mid-JSON.
    pub truncate_pages_from: Option<usize>,
    /// v2 lists never end: past the last page the server serves it again with a new token.
    pub endless_pages: bool,
    /// Finished jobs' steps have `output_url: null`.
    pub null_output_urls: bool,
    /// The `message` of error answers (a hostile server's text for stderr).
    pub error_message: String,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            token: "CCIPAT_FakeTokenForTestsOnly0_0123456789abcdef0123456789abcdef01234567".into(),
            projects: Vec::new(),
            page_size: 20,
            latency: Duration::ZERO,
            rate_limit_every: None,
            rate_limit_secs: 1,
            retry_after: None,
            fail_every: None,
            broken_jobs: Vec::new(),
            v1_projects_status: None,
            truncate_pages_from: None,
            endless_pages: false,
            null_output_urls: false,
            error_message: "Internal Server Error".into(),
        }
    }
}

/// One request as the fake saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub host: &'static str,
    pub path: String,
    pub had_token: bool,
    pub had_any_auth: bool,
    pub at: Instant,
    pub status: u16,
}

struct Shared {
    cfg: FakeConfig,
    api: String,
    artifacts: String,
    storage: String,
    log: Mutex<Vec<Seen>>,
    api_count: AtomicUsize,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    /// After a 429: requests arriving later than the grace and before this are violations.
    paused: Mutex<Option<(Instant, Instant)>>,
    violations: AtomicUsize,
    violating: Mutex<Vec<String>>,
    /// Storage bodies by key.
    blobs: HashMap<String, Vec<u8>>,
}

/// A running fake. Dropping it leaves the threads parked (tests are short-lived).
pub struct Fake {
    shared: Arc<Shared>,
}

fn bind(ip: &str) -> (TcpListener, String) {
    let l = TcpListener::bind(format!("{ip}:0")).expect("bind fake server");
    let port = l.local_addr().expect("addr").port();
    (l, format!("http://{ip}:{port}"))
}

impl Fake {
    /// Start the three hosts.
    pub fn start(cfg: FakeConfig) -> Fake {
        let (api_srv, api) = bind("127.0.0.1");
        let (art_srv, artifacts) = bind("127.0.0.3");
        let (sto_srv, storage) = bind("127.0.0.2");
        let mut blobs = HashMap::new();
        for p in &cfg.projects {
            for pl in &p.pipelines {
                for w in &pl.workflows {
                    for j in &w.jobs {
                        let Some(num) = j.number else { continue };
                        for s in &j.steps {
                            for a in &s.actions {
                                let body: Vec<Value> = a
                                    .messages
                                    .iter()
                                    .map(|(t, m)| json!({"message": m, "time": "2022-12-28T10:00:00.000Z", "type": t}))
                                    .collect();
                                blobs.insert(
                                    output_key(&p.slug, num, s.step_id, a.index),
                                    serde_json::to_vec(&body).unwrap(),
                                );
                            }
                        }
                        for a in &j.artifacts {
                            blobs.insert(
                                artifact_key(&p.slug, num, a.node_index, &a.path),
                                a.bytes.clone(),
                            );
                        }
                    }
                }
            }
        }
        let shared = Arc::new(Shared {
            cfg,
            api,
            artifacts,
            storage,
            log: Mutex::new(Vec::new()),
            api_count: AtomicUsize::new(0),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
            paused: Mutex::new(None),
            violations: AtomicUsize::new(0),
            violating: Mutex::new(Vec::new()),
            blobs,
        });
        for (listener, host) in [
            (api_srv, "api"),
            (art_srv, "artifacts"),
            (sto_srv, "storage"),
        ] {
            let shared = shared.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    let shared = shared.clone();
                    std::thread::spawn(move || serve_connection(stream, shared, host));
                }
            });
        }
        Fake { shared }
    }

    pub fn api_url(&self) -> &str {
        &self.shared.api
    }
    pub fn token(&self) -> &str {
        &self.shared.cfg.token
    }
    pub fn log(&self) -> Vec<Seen> {
        self.shared.log.lock().unwrap().clone()
    }
    /// Requests started during a 429 pause (after a grace for those already in flight).
    pub fn rate_limit_violations(&self) -> usize {
        self.shared.violations.load(Ordering::SeqCst)
    }
    /// The first requests that violated a pause.
    pub fn violating(&self) -> Vec<String> {
        self.shared
            .violating
            .lock()
            .unwrap()
            .iter()
            .take(5)
            .cloned()
            .collect()
    }
    pub fn max_in_flight(&self) -> u64 {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }
    /// v1.1 build-detail requests per job number that got a 200.
    pub fn build_fetches(&self) -> HashMap<u64, usize> {
        let mut m = HashMap::new();
        for s in self.log() {
            if s.host == "api" && s.status == 200 && s.path.starts_with("/api/v1.1/project/") {
                if let Some(n) = s
                    .path
                    .rsplit('/')
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
                {
                    *m.entry(n).or_default() += 1;
                }
            }
        }
        m
    }
}

fn output_key(slug: &str, num: u64, step: u64, index: u64) -> String {
    format!("{}-{num}-{step}-{index}", slug.replace('/', "-"))
}

fn artifact_key(slug: &str, num: u64, node: u64, path: &str) -> String {
    format!(
        "{}-{num}-{node}-{}",
        slug.replace('/', "-"),
        path.replace('/', "~")
    )
}

fn v1_slug(slug: &str) -> String {
    slug.replacen("gh/", "github/", 1)
        .replacen("bb/", "bitbucket/", 1)
}

fn json_response(status: u16, v: &Value) -> Resp {
    // CircleCI pretty-prints with a space before the colon; any JSON parser copes.
    Resp::new(status, serde_json::to_vec_pretty(v).unwrap())
        .with_header("Content-Type", "application/json;charset=utf-8")
}

fn page<T: Clone>(items: &[T], page_size: usize, token: Option<&str>) -> (Vec<T>, Option<String>) {
    let start: usize = token
        .and_then(|t| t.strip_prefix("p"))
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let end = (start + page_size).min(items.len());
    let next = (end < items.len()).then(|| format!("p{end}"));
    (items[start.min(items.len())..end].to_vec(), next)
}

/// One `{items, next_page_token}` answer, misbehaving as configured.
fn page_response(cfg: &FakeConfig, all: &[Value], token: Option<&str>) -> Resp {
    let ps = cfg.page_size;
    let (mut items, mut next) = page(all, ps, token);
    let start: usize = token
        .and_then(|t| t.strip_prefix("p"))
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    if cfg.endless_pages {
        if items.is_empty() {
            // Past the end: the last page again.
            let last = all.len().saturating_sub(1) / ps.max(1) * ps;
            items = all[last.min(all.len())..].to_vec();
        }
        next = Some(format!("p{}", start + ps));
    }
    let resp = json_response(200, &json!({"items": items, "next_page_token": next}));
    match cfg.truncate_pages_from {
        Some(n) if start / ps.max(1) >= n => {
            let cut = resp.body.len() / 2;
            Resp::new(200, resp.body[..cut].to_vec())
                .with_header("Content-Type", "application/json;charset=utf-8")
        }
        _ => resp,
    }
}

fn query(url: &str) -> HashMap<String, String> {
    url.split_once('?')
        .map(|(_, q)| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), percent_decode(v)))
                .collect()
        })
        .unwrap_or_default()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn handle(sh: &Shared, host: &'static str, req: Req) -> Resp {
    let now = Instant::now();
    let n = sh.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    sh.max_in_flight.fetch_max(n, Ordering::SeqCst);
    let token = req.header("Circle-Token").map(str::to_string);
    let any_auth = token.is_some()
        || req.header("Authorization").is_some()
        || req.url.contains("circle-token");
    if host == "api" {
        if let Some((from, until)) = *sh.paused.lock().unwrap() {
            // The grace covers requests the client sent before it read the 429 (scheduling
            // jitter on a loaded machine); a request released by the end of another one that
            // was in flight arrives a full latency later and is still caught.
            if now > from + Duration::from_millis(15) && now < until {
                sh.violations.fetch_add(1, Ordering::SeqCst);
                sh.violating.lock().unwrap().push(format!(
                    "{:?} after the 429: {}",
                    now - from,
                    req.url
                ));
            }
        }
    }
    if !sh.cfg.latency.is_zero() {
        std::thread::sleep(sh.cfg.latency);
    }
    let url = req.url.clone();
    let resp = answer(sh, host, &url, token.as_deref());
    let status = resp.status;
    sh.log.lock().unwrap().push(Seen {
        host,
        path: url,
        had_token: token.as_deref() == Some(sh.cfg.token.as_str()),
        had_any_auth: any_auth,
        at: now,
        status,
    });
    sh.in_flight.fetch_sub(1, Ordering::SeqCst);
    resp
}

fn unauthorized(token: Option<&str>, want: &str) -> Option<Resp> {
    match token {
        None => Some(json_response(
            401,
            &json!({"message": "You must log in first."}),
        )),
        Some(t) if t != want => Some(json_response(
            401,
            &json!({"message": "Invalid token provided."}),
        )),
        _ => None,
    }
}

fn not_found(what: &str) -> Resp {
    json_response(404, &json!({"message": format!("{what} not found")}))
}

fn answer(sh: &Shared, host: &str, url: &str, token: Option<&str>) -> Resp {
    let path = url.split('?').next().unwrap_or(url);
    match host {
        "storage" => {
            let key = path
                .trim_start_matches("/output/")
                .trim_start_matches("/blob/");
            match sh.blobs.get(key) {
                Some(b) => Resp::new(200, b.clone()),
                None => Resp::new(403, b"<Error><Code>AccessDenied</Code></Error>".to_vec()),
            }
        }
        "artifacts" => {
            if let Some(r) = unauthorized(token, &sh.cfg.token) {
                return r;
            }
            // /<slug-with-dashes>-<num>/<node>/<path...>
            let rest = path.trim_start_matches('/');
            let mut it = rest.splitn(3, '/');
            let (job, node, apath) = (
                it.next().unwrap_or(""),
                it.next().unwrap_or(""),
                it.next().unwrap_or(""),
            );
            let key = format!("{job}-{node}-{}", apath.replace('/', "~"));
            if !sh.blobs.contains_key(&key) {
                return not_found("Artifact");
            }
            Resp::new(302, Vec::new()).with_header(
                "Location",
                &format!(
                    "{}/blob/{key}?X-Amz-Expires=60&X-Amz-Signature=f00d",
                    sh.storage
                ),
            )
        }
        _ => api(sh, path, url, token),
    }
}

fn api(sh: &Shared, path: &str, url: &str, token: Option<&str>) -> Resp {
    if let Some(r) = unauthorized(token, &sh.cfg.token) {
        return r;
    }
    let n = sh.api_count.fetch_add(1, Ordering::SeqCst) + 1;
    if sh.cfg.rate_limit_every.is_some_and(|k| n.is_multiple_of(k)) {
        let now = Instant::now();
        let wait = Duration::from_secs(sh.cfg.rate_limit_secs);
        *sh.paused.lock().unwrap() = Some((now, now + wait));
        return Resp::new(429, b"Rate limited.".to_vec())
            .with_header(
                "Retry-After",
                &sh.cfg
                    .retry_after
                    .clone()
                    .unwrap_or_else(|| sh.cfg.rate_limit_secs.to_string()),
            )
            .with_header("X-RateLimit-Limit", "300")
            .with_header("X-RateLimit-Remaining", "0")
            .with_header("Content-Type", "text/plain");
    }
    if sh.cfg.fail_every.is_some_and(|k| n.is_multiple_of(k)) {
        return Resp::new(
            502,
            b"<html><body><h1>502 Bad Gateway</h1></body></html>".to_vec(),
        );
    }
    let q = query(url);
    let seg: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let projects = &sh.cfg.projects;
    let find_project = |slug: &str| projects.iter().find(|p| p.slug == slug);
    match seg.as_slice() {
        ["api", "v2", "me"] => json_response(
            200,
            &json!({"name": "CI Bot", "login": "ci-bot", "id": "79c369ca-21e9-41b7-bcdd-41f58de01a9a", "avatar_url": null}),
        ),
        ["api", "v2", "me", "collaborations"] => {
            let mut orgs: Vec<String> = projects
                .iter()
                .map(|p| p.slug.rsplit_once('/').unwrap().0.to_string())
                .collect();
            orgs.dedup();
            let v: Vec<Value> = orgs
                .iter()
                .map(|o| json!({"vcs_type": "github", "slug": o, "name": o.rsplit('/').next(), "id": "bcda95c5-49cc-4399-a4f5-699409399c08", "avatar_url": "https://avatars.example/u/1"}))
                .collect();
            json_response(200, &Value::Array(v))
        }
        ["api", "v1.1", "projects"] if sh.cfg.v1_projects_status.is_some() => json_response(
            sh.cfg.v1_projects_status.unwrap(),
            &json!({"message": sh.cfg.error_message}),
        ),
        ["api", "v1.1", "projects"] => {
            let v: Vec<Value> = projects
                .iter()
                .map(|p| {
                    let parts: Vec<&str> = p.slug.split('/').collect();
                    json!({"vcs_type": "github", "username": parts[1], "reponame": parts[2], "vcs_url": format!("https://github.com/{}/{}", parts[1], parts[2]), "followed": true, "branches": {}})
                })
                .collect();
            json_response(200, &Value::Array(v))
        }
        ["api", "v2", "pipeline"] => {
            let org = q.get("org-slug").cloned().unwrap_or_default();
            let all: Vec<Value> = projects
                .iter()
                .filter(|p| p.slug.starts_with(&format!("{org}/")))
                .flat_map(|p| p.pipelines.iter().map(move |pl| pipeline_json(&p.slug, pl)))
                .take(250)
                .collect();
            page_response(&sh.cfg, &all, q.get("page-token").map(String::as_str))
        }
        ["api", "v2", "pipeline", id] => {
            for p in projects {
                if let Some(pl) = p.pipelines.iter().find(|pl| pl.id == *id) {
                    return json_response(200, &pipeline_json(&p.slug, pl));
                }
            }
            not_found("Pipeline")
        }
        ["api", "v2", "pipeline", id, "workflow"] => {
            for p in projects {
                if let Some(pl) = p.pipelines.iter().find(|pl| pl.id == *id) {
                    let all: Vec<Value> = pl
                        .workflows
                        .iter()
                        .map(|w| workflow_json(&p.slug, pl, w))
                        .collect();
                    return page_response(&sh.cfg, &all, q.get("page-token").map(String::as_str));
                }
            }
            not_found("Pipeline")
        }
        ["api", "v2", "workflow", id] => match find_workflow(projects, id) {
            Some((slug, pl, w)) => json_response(200, &workflow_json(slug, pl, w)),
            None => not_found("Workflow"),
        },
        ["api", "v2", "workflow", id, "job"] => match find_workflow(projects, id) {
            Some((slug, _, w)) => {
                let all: Vec<Value> = w
                    .jobs
                    .iter()
                    .map(|j| match j.number {
                        Some(num) => json!({"id": format!("job-{num}"), "name": j.name, "type": "build", "status": if j.running {"running"} else {"success"}, "job_number": num, "project_slug": slug, "dependencies": [], "started_at": "2022-12-28T10:00:00Z", "stopped_at": null}),
                        None => json!({"id": "58ae7914-6179-4a77-8b30-d324afaf048f", "name": j.name, "type": "approval", "status": "on_hold", "dependencies": [], "started_at": null, "stopped_at": null, "approval_request_id": "58ae7914-6179-4a77-8b30-d324afaf048f"}),
                    })
                    .collect();
                page_response(&sh.cfg, &all, q.get("page-token").map(String::as_str))
            }
            None => not_found("Workflow"),
        },
        ["api", "v2", "project", vcs, org, repo, "pipeline"] => {
            let Some(p) = find_project(&format!("{vcs}/{org}/{repo}")) else {
                return not_found("Project");
            };
            let all: Vec<Value> = p
                .pipelines
                .iter()
                .filter(|pl| q.get("branch").is_none_or(|b| &pl.branch == b))
                .map(|pl| pipeline_json(&p.slug, pl))
                .collect();
            page_response(&sh.cfg, &all, q.get("page-token").map(String::as_str))
        }
        ["api", "v2", "project", vcs, org, repo, num, "artifacts"] => {
            let slug = format!("{vcs}/{org}/{repo}");
            let Some(job) = find_job(projects, &slug, num) else {
                return not_found("Job");
            };
            let items: Vec<Value> = job
                .artifacts
                .iter()
                .map(|a| json!({"path": a.path, "node_index": a.node_index, "url": format!("{}/{}-{num}/{}/{}", sh.artifacts, slug.replace('/', "-"), a.node_index, a.path)}))
                .collect();
            json_response(200, &json!({"items": items, "next_page_token": null}))
        }
        ["api", "v1.1", "project", vcs, org, repo, num] => {
            let slug = format!("{}/{org}/{repo}", if *vcs == "github" { "gh" } else { vcs });
            let Some(job) = find_job(projects, &slug, num) else {
                return not_found("Build");
            };
            if job.number.is_some_and(|n| sh.cfg.broken_jobs.contains(&n)) {
                return json_response(500, &json!({"message": sh.cfg.error_message}));
            }
            json_response(200, &build_json(sh, &slug, job))
        }
        _ => json_response(404, &json!({"message": "Not Found"})),
    }
}

fn find_workflow<'a>(
    projects: &'a [FakeProject],
    id: &str,
) -> Option<(&'a str, &'a FakePipeline, &'a FakeWorkflow)> {
    projects.iter().find_map(|p| {
        p.pipelines.iter().find_map(|pl| {
            pl.workflows
                .iter()
                .find(|w| w.id == id)
                .map(|w| (p.slug.as_str(), pl, w))
        })
    })
}

fn find_job<'a>(projects: &'a [FakeProject], slug: &str, num: &str) -> Option<&'a FakeJob> {
    let num: u64 = num.parse().ok()?;
    projects
        .iter()
        .filter(|p| p.slug == slug)
        .flat_map(|p| p.pipelines.iter())
        .flat_map(|pl| pl.workflows.iter())
        .flat_map(|w| w.jobs.iter())
        .find(|j| j.number == Some(num))
}

fn pipeline_json(slug: &str, pl: &FakePipeline) -> Value {
    json!({"id": pl.id, "errors": [], "project_slug": slug, "updated_at": pl.created_at, "number": pl.number,
           "state": "created", "created_at": pl.created_at,
           "trigger": {"received_at": pl.created_at, "type": "webhook", "actor": {"login": "dev", "avatar_url": null}},
           "vcs": {"provider_name": "GitHub", "branch": pl.branch, "revision": "ca67134f650e362133e51a9ffdb8e5ddc7fa53a5",
                   "origin_repository_url": "https://github.com/x/y", "target_repository_url": "https://github.com/x/y"}})
}

fn workflow_json(slug: &str, pl: &FakePipeline, w: &FakeWorkflow) -> Value {
    json!({"pipeline_id": pl.id, "id": w.id, "name": w.name, "project_slug": slug, "status": "success",
           "started_by": "98209bd9-c440-45b0-b1d7-749a15860f58", "pipeline_number": pl.number,
           "created_at": pl.created_at, "stopped_at": null})
}

fn build_json(sh: &Shared, slug: &str, job: &FakeJob) -> Value {
    let num = job.number.unwrap();
    let steps: Vec<Value> = job
        .steps
        .iter()
        .map(|s| {
            let actions: Vec<Value> = s
                .actions
                .iter()
                .map(|a| {
                    let output_url = if job.running || sh.cfg.null_output_urls {
                        Value::Null
                    } else {
                        json!(format!(
                            "{}/output/{}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=431999&X-Amz-SignedHeaders=host&X-Amz-Signature=01c9f00d",
                            sh.storage,
                            output_key(slug, num, s.step_id, a.index)
                        ))
                    };
                    json!({"truncated": false, "index": a.index, "parallel": true, "failed": null, "name": s.name,
                           "bash_command": a.bash_command, "status": if job.running {"running"} else {"success"},
                           "type": "test", "output_url": output_url, "step": s.step_id, "has_output": a.has_output,
                           "background": false, "exit_code": 0, "messages": []})
                })
                .collect();
            json!({"name": s.name, "actions": actions})
        })
        .collect();
    let parts: Vec<&str> = slug.split('/').collect();
    json!({"build_num": num, "build_url": format!("https://circleci.com/gh/{}/{}/{num}", parts[1], parts[2]),
           "lifecycle": if job.running {"running"} else {"finished"}, "status": "success", "vcs_type": "github",
           "username": parts[1], "reponame": parts[2], "steps": steps, "has_artifacts": !job.artifacts.is_empty(),
           "circle_yml": {"string": job.config},
           "workflows": {"job_name": job.name, "workflow_name": "unknown-to-v1", "workflow_id": "unknown"}})
}

/// A GitHub-style token with a valid checksum, unique per `seed`.
pub fn token(seed: u64) -> String {
    const B62: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) ^ 0xD1B54A32D192ED03;
    let body: String = (0..30)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            B62[(x % 62) as usize] as char
        })
        .collect();
    format!(
        "ghp_{body}{}",
        cisleuth::detect::checksum::encode_base62(crc32fast::hash(body.as_bytes()))
    )
}

/// Where a planted secret was put.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Planted {
    pub job_number: u64,
    /// "out", "err", "bash_command", "config", or "artifact:<path>".
    pub kind: String,
    pub secret: String,
}

/// A generated organisation: `projects` projects in `gh/acme`, each with `pipelines`
/// pipelines of one workflow with `jobs` jobs (plus an approval job) of `steps` steps; every
/// job has a secret in stdout, stderr (on a parallel node), its config, a step command and,
/// with `artifacts`, a zip artifact holding a nested .gz log. Returns the config and what was
/// planted.
pub fn generate(
    projects: usize,
    pipelines: usize,
    jobs: usize,
    steps: usize,
    artifacts: bool,
) -> (FakeConfig, Vec<Planted>) {
    let mut planted = Vec::new();
    let mut num = 1000u64;
    let mut seed = 1u64;
    let mut next = |planted: &mut Vec<Planted>, n: u64, kind: &str| {
        seed += 1;
        let t = token(seed);
        planted.push(Planted {
            job_number: n,
            kind: kind.into(),
            secret: t.clone(),
        });
        t
    };
    let mut out = Vec::new();
    for p in 0..projects {
        let slug = format!("gh/acme/svc{p}");
        let mut pls = Vec::new();
        for i in 0..pipelines {
            // Newest first, one day apart, from 2023-01-10 backwards.
            let day = 10i64 - i as i64;
            let created = time_string(day);
            let mut js = Vec::new();
            for j in 0..jobs {
                num += 1;
                let mut st = Vec::new();
                for s in 0..steps {
                    let step_id = match s {
                        0 => 0,
                        1 => 99,
                        k => 100 + k as u64,
                    };
                    let mut msgs = vec![(
                        "out",
                        format!("\u{1b}[32mstep {s} of job {num}\u{1b}[0m\r\nnpm ci\r\n"),
                    )];
                    if s == steps - 1 {
                        let t = next(&mut planted, num, "out");
                        msgs.push(("out", format!("+ export GITHUB_TOKEN={t}\r\ndone\r\n")));
                    }
                    let mut actions = vec![FakeAction {
                        index: 0,
                        has_output: s != 1,
                        messages: msgs,
                        bash_command: None,
                    }];
                    if s == steps - 1 {
                        let t = next(&mut planted, num, "err");
                        actions.push(FakeAction {
                            index: 1,
                            has_output: true,
                            messages: vec![
                                ("out", "parallel node 1\r\n".into()),
                                ("err", format!("warning: token {t} exposed\r\n")),
                            ],
                            bash_command: None,
                        });
                    }
                    if s == 2 {
                        let t = next(&mut planted, num, "bash_command");
                        actions[0].bash_command = Some(format!("#!/bin/bash -eo pipefail\ncurl -H \"Authorization: token {t}\" https://api.github.com"));
                    }
                    st.push(FakeStep {
                        name: format!("Step {s}"),
                        step_id,
                        actions,
                    });
                }
                let cfg_tok = next(&mut planted, num, "config");
                let mut arts = Vec::new();
                if artifacts {
                    let t = next(
                        &mut planted,
                        num,
                        "artifact:reports/logs.zip!/app/debug.log.gz!/debug.log",
                    );
                    arts.push(FakeArtifact {
                        path: "reports/logs.zip".into(),
                        node_index: 0,
                        bytes: zip_with_gz(&format!("debug: using {t}\n")),
                    });
                    arts.push(FakeArtifact {
                        path: "junit.xml".into(),
                        node_index: 0,
                        bytes: b"<testsuite tests=\"1\"/>".to_vec(),
                    });
                }
                js.push(FakeJob {
                    name: format!("build-{j}"),
                    number: Some(num),
                    running: false,
                    steps: st,
                    artifacts: arts,
                    config: format!("version: 2.1\njobs:\n  build:\n    environment:\n      API_TOKEN: {cfg_tok}\n"),
                });
            }
            js.push(FakeJob {
                name: "approve-release".into(),
                number: None,
                running: false,
                steps: vec![],
                artifacts: vec![],
                config: String::new(),
            });
            pls.push(FakePipeline {
                id: format!("00000000-0000-4000-8000-{:012}", p * 100_000 + i),
                number: (pipelines - i) as u64,
                created_at: created,
                branch: if i % 2 == 0 {
                    "main".into()
                } else {
                    "feature".into()
                },
                workflows: vec![FakeWorkflow {
                    id: format!("10000000-0000-4000-8000-{:012}", p * 100_000 + i),
                    name: "build-and-test".into(),
                    jobs: js,
                }],
            });
        }
        out.push(FakeProject {
            slug,
            pipelines: pls,
        });
    }
    (
        FakeConfig {
            projects: out,
            ..FakeConfig::default()
        },
        planted,
    )
}

fn time_string(day_of_jan_2023: i64) -> String {
    // 2023-01-01T10:00:00Z plus (day - 1) days; earlier days run back through December.
    let t =
        time::OffsetDateTime::from_unix_timestamp(1_672_567_200 + (day_of_jan_2023 - 1) * 86_400)
            .unwrap();
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn zip_with_gz(text: &str) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    w.start_file("app/debug.log.gz", zip::write::SimpleFileOptions::default())
        .unwrap();
    w.write_all(&gz).unwrap();
    w.finish().unwrap().into_inner()
}
