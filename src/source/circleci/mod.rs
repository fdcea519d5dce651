//! The CircleCI source: find every job in scope through the API and fetch what it printed and
//! stored (step output, step commands, its config, its artifacts) for the scanner.
//!
//! Enumeration follows the v2 tree (organisation → projects → pipelines → workflows → jobs),
//! which carries pipeline numbers and workflow names for provenance; job details and step
//! output come from v1.1 (`steps[].actions[].output_url`), the only API with steps. Pipelines
//! are listed newest first, so paging stops once past `--since`. Every job is fetched at most
//! once (keyed by project slug and job number), however many scopes name it.
//!
//! All of it runs on a tokio runtime on the calling thread; HTTP concurrency is bounded by the
//! [`client::Client`]'s semaphore, and the bytes waiting for the scanner by a second one, so
//! memory stays bounded however large the organisation. Inputs go to the scanner through a
//! bounded channel; the scanner reports back nothing but findings.
//!
//! A job whose requests still fail after retries is reported as an error and the scan goes
//! on; it is not marked finished in the resume state, so a re-run tries it again.

pub mod api;
pub mod client;
mod enumerate;
mod job;
mod paging;
pub mod state;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use reqwest::Url;
use serde::de::DeserializeOwned;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::sync::{mpsc, Semaphore};

use crate::source::origin::Origin;
use api::Slug;
use client::{Auth, Client, HttpError, Settings, Token};

use enumerate::{org_projects, pipeline_by_id, project, workflow};
use job::scan_job;
use paging::Pager;

/// What to scan. At least one field must be non-empty.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    /// Organisation slugs (`gh/acme`, `circleci/<org-id>`).
    pub orgs: Vec<String>,
    pub projects: Vec<String>,
    pub pipelines: Vec<String>,
    pub workflows: Vec<String>,
    /// `SLUG/NUMBER`, e.g. `gh/acme/api/1234`.
    pub jobs: Vec<String>,
}

impl Scope {
    pub fn is_empty(&self) -> bool {
        self.orgs.is_empty()
            && self.projects.is_empty()
            && self.pipelines.is_empty()
            && self.workflows.is_empty()
            && self.jobs.is_empty()
    }
}

/// Source settings.
#[derive(Clone, Debug)]
pub struct Options {
    /// `https://circleci.com` or a CircleCI Server address.
    pub host: String,
    pub token: Token,
    pub client: Settings,
    pub scope: Scope,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
    pub branch: Option<String>,
    pub max_jobs: Option<usize>,
    pub artifacts: bool,
    pub max_artifact_size: u64,
    /// Largest step output fetched (CircleCI records at most 50 MB of output per step).
    pub max_output_size: u64,
    /// Most pages read from one listing (a server that pages forever is stopped here).
    pub max_pages: usize,
    /// Jobs finished in an earlier run with the same state file.
    pub finished: HashSet<String>,
}

/// One thing to scan.
pub struct Input {
    pub origin: Arc<Origin>,
    /// In memory, or (a download past [`client::SPOOL_IN_MEMORY`]) in a temporary file.
    pub body: crate::http::Spooled,
    pub job: Arc<JobTicket>,
    /// A downloaded body's place among the bodies held in memory: released when the input
    /// is dropped, which the scanner does once it is done with the bytes (not when the
    /// download ends), so downloads cannot outrun scanning.
    /// Its share of the memory budget for bodies, if it is held in memory: also released
    /// when the scanner is done.
    pub hold: Vec<tokio::sync::OwnedSemaphorePermit>,
}

/// What the source tells the scan command.
pub enum Event {
    Input(Input),
    /// All of a job's inputs have been sent; release the source's hold on it.
    Queued(Arc<JobTicket>),
    Note(String),
    Error(String),
    /// Something deliberately not scanned (over a size limit): the scan is incomplete.
    Skipped(String),
}

/// Tracks a job until every one of its inputs is scanned.
#[derive(Debug)]
pub struct JobTicket {
    /// `project-slug/job-number`: the resume-state key.
    pub key: String,
    pending: AtomicUsize,
    /// Some input could not be fetched: the job is not finished.
    failed: AtomicBool,
}

impl JobTicket {
    fn new(key: String) -> Arc<JobTicket> {
        Arc::new(JobTicket {
            key,
            pending: AtomicUsize::new(1),
            failed: AtomicBool::new(false),
        })
    }

    /// Release one hold (an input scanned, or the source done queueing). Returns whether the
    /// job is now complete and was fetched in full, once, to the caller that completed it.
    pub fn release(&self) -> Option<bool> {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            Some(!self.failed.load(Ordering::Acquire))
        } else {
            None
        }
    }

    fn fail(&self) {
        self.failed.store(true, Ordering::Release);
    }
}

/// Job counts, updated while the scan runs (for progress and the summary).
#[derive(Debug, Default)]
pub struct Totals {
    /// Jobs fetched.
    pub jobs: AtomicU64,
    /// Jobs skipped because the state file says an earlier run finished them.
    pub jobs_skipped_finished: AtomicU64,
}

/// HTTP counters of a finished run.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestStats {
    pub requests: u64,
    pub retries: u64,
    pub rate_limited: u64,
    pub max_in_flight: u64,
}

/// A job found by enumeration, with what is known of it.
#[derive(Clone, Debug)]
struct JobRef {
    slug: Slug,
    number: u64,
    name: Option<String>,
    pipeline_number: Option<u64>,
    workflow: Option<String>,
    workflow_id: Option<String>,
}

struct Ctx {
    client: Client,
    base: Url,
    opts: Options,
    tx: mpsc::Sender<Event>,
    seen: Mutex<HashSet<String>>,
    scheduled: AtomicUsize,
    /// Bodies fetched but not yet handed to the scanner.
    bodies: Arc<Semaphore>,
    /// Memory for bodies waiting for the scanner ([`MEMORY_FOR_BODIES`]); the others wait in
    /// temporary files.
    memory: crate::http::MemoryBudget,
    /// Jobs being read at once (each holds its parsed build and waits for body permits): a
    /// workflow of 10,000 jobs holds [`jobs_in_flight`] of them in memory, not 10,000.
    jobs: Semaphore,
    totals: Arc<Totals>,
}

/// Whether `host` is a loopback address (plain http is fine there).
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Downloaded bodies held in memory until scanned, all together; past it they wait in
/// temporary files (slower to scan: written and read back).
pub const MEMORY_FOR_BODIES: u64 = 64 << 20;

/// Jobs read at once: enough to keep every request slot busy while some jobs wait for the
/// scanner.
pub(crate) fn jobs_in_flight(concurrency: usize) -> usize {
    concurrency.max(1).saturating_mul(2).max(4)
}

fn parse_api_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// Scan everything in `opts.scope`, sending inputs to `tx`. Blocks until done. Errors only
/// for what stops the whole scan (a refused token, an unreachable host); a failing job is an
/// [`Event::Error`] and the scan goes on.
pub fn run(opts: Options, tx: mpsc::Sender<Event>, totals: Arc<Totals>) -> Result<RequestStats> {
    if !opts.host.contains("://") {
        bail!(
            "--host needs a scheme: https://{} (or http:// for a loopback test server)",
            opts.host
        );
    }
    let base = Url::parse(&opts.host).with_context(|| format!("invalid --host {:?}", opts.host))?;
    if !matches!(base.scheme(), "https" | "http") {
        bail!("--host must be an http(s) URL, not {:?}", opts.host);
    }
    if base.scheme() == "http" && !is_loopback(&base) {
        let _ = tx.blocking_send(Event::Note(format!(
            "--host {} is plain http: the token crosses the network unencrypted",
            opts.host
        )));
    }
    if opts.scope.is_empty() {
        bail!("nothing to scan: give --org, --project, --pipeline, --workflow or --job");
    }
    let notes = tx.clone();
    let closed = tx.clone();
    let client = Client::new(opts.token.clone(), opts.client.clone())?
        .cancelled_when(move || closed.is_closed())
        .on_pause(move |wait| {
            // A note, not an error: the scan goes on after the pause. If the channel is full the
            // note is dropped rather than blocking the request path.
            let _ = notes.try_send(Event::Note(format!(
            "rate limited (HTTP 429): all requests pause for {:.0} s (at most --max-retry-wait)",
            wait.as_secs_f64().ceil()
        )));
        });
    // Bodies downloaded or waiting for the scanner, at most: one per HTTP request in flight.
    let bodies = Arc::new(Semaphore::new(opts.client.concurrency.max(1)));
    let jobs = Semaphore::new(jobs_in_flight(opts.client.concurrency));
    let memory = crate::http::memory_budget(MEMORY_FOR_BODIES);
    let ctx = Arc::new(Ctx {
        client,
        base,
        opts,
        tx,
        seen: Mutex::new(HashSet::new()),
        scheduled: AtomicUsize::new(0),
        bodies,
        memory,
        jobs,
        totals: totals.clone(),
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the HTTP runtime")?;
    let result = rt.block_on(run_async(ctx.clone()));
    let stats = &ctx.client.stats;
    result.map(|()| RequestStats {
        requests: stats.requests.load(Ordering::Relaxed),
        retries: stats.retries.load(Ordering::Relaxed),
        rate_limited: stats.rate_limited.load(Ordering::Relaxed),
        max_in_flight: stats.max_in_flight.load(Ordering::Relaxed),
    })
}

impl Ctx {
    fn api(&self, path: &str) -> String {
        format!("{}{path}", self.base.as_str().trim_end_matches('/'))
    }

    /// The scan is stopping (Ctrl-C, a closed output): the receiver is gone; start nothing.
    fn stopped(&self) -> bool {
        self.tx.is_closed()
    }

    async fn send(&self, e: Event) {
        // The receiver only goes away when the scan is being torn down.
        let _ = self.tx.send(e).await;
    }

    async fn get_json<T: DeserializeOwned>(&self, path_or_url: &str) -> Result<T, String> {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_string()
        } else {
            self.api(path_or_url)
        };
        let body = self
            .client
            .get(&url, Auth::Token, 64 << 20)
            .await
            .map_err(|e| e.to_string())?;
        serde_json::from_slice(&body).map_err(|e| {
            format!(
                "{}: unexpected response ({})",
                crate::http::shown_url(&url),
                crate::terminal::json_error(&e)
            )
        })
    }

    /// Every item of a v2 list, collected (for short lists: a pipeline's workflows, a job's
    /// artifacts). On an error the items of the pages already read come with it.
    async fn pages<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, (Vec<T>, String)> {
        let mut out = Vec::new();
        let mut pager = Pager::new(path);
        loop {
            match pager.next::<T>(self).await {
                Ok(Some(items)) => out.extend(items),
                Ok(None) => return Ok(out),
                Err(e) => return Err((out, e)),
            }
        }
    }
}

async fn run_async(ctx: Arc<Ctx>) -> Result<()> {
    // One clear error before any scanning if the token is missing, wrong or not a user token.
    match ctx
        .client
        .get(&ctx.api("/api/v2/me"), Auth::Token, 1 << 20)
        .await
    {
        Ok(_) => {}
        Err(e @ HttpError::Unauthorized { .. }) => {
            bail!("{e}; check CIRCLECI_TOKEN (a personal API token is needed; project tokens do not work on API v2)")
        }
        Err(HttpError::NotFound { .. }) => {
            bail!(
                "{}/api/v2/me answered 404: is --host a CircleCI address?",
                ctx.base
            )
        }
        Err(e) => bail!("cannot reach CircleCI: {e}"),
    }
    let mut tasks = Vec::new();
    let scope = ctx.opts.scope.clone();
    for j in &scope.jobs {
        let Some((slug, number)) = j
            .rsplit_once('/')
            .and_then(|(s, n)| Some((Slug::parse(s)?, n.parse::<u64>().ok()?)))
        else {
            bail!("invalid --job {j:?}: use PROJECT-SLUG/NUMBER, e.g. gh/acme/api/1234");
        };
        let job = JobRef {
            slug,
            number,
            name: None,
            pipeline_number: None,
            workflow: None,
            workflow_id: None,
        };
        tasks.push((j.clone(), tokio::spawn(scan_job(ctx.clone(), job))));
    }
    for w in &scope.workflows {
        tasks.push((
            format!("workflow {w}"),
            tokio::spawn(workflow(ctx.clone(), w.clone(), None)),
        ));
    }
    for p in &scope.pipelines {
        tasks.push((
            format!("pipeline {p}"),
            tokio::spawn(pipeline_by_id(ctx.clone(), p.clone())),
        ));
    }
    let mut projects: Vec<Slug> = Vec::new();
    for p in &scope.projects {
        projects.push(Slug::parse(p).with_context(|| {
            format!("invalid --project {p:?}: use a slug like gh/acme/api or circleci/<org-id>/<project-id>")
        })?);
    }
    for org in &scope.orgs {
        projects.extend(org_projects(&ctx, org).await?);
    }
    projects.sort();
    projects.dedup();
    for slug in projects {
        tasks.push((slug.to_string(), tokio::spawn(project(ctx.clone(), slug))));
    }
    join_all(&ctx, tasks).await;
    Ok(())
}

/// Wait for spawned tasks; a task that panicked or was cancelled is an error of the scan (it
/// may have left inputs unread), never silence.
async fn join_all(ctx: &Ctx, tasks: Vec<(String, tokio::task::JoinHandle<()>)>) {
    for (what, t) in tasks {
        if let Err(e) = t.await {
            ctx.send(Event::Error(join_error_text(&what, &e))).await;
        }
    }
}

/// A finished task of a [`tokio::task::JoinSet`]: a panic or cancellation is an error.
async fn report_join(
    ctx: &Ctx,
    names: &mut std::collections::HashMap<tokio::task::Id, String>,
    done: Result<(tokio::task::Id, ()), tokio::task::JoinError>,
) {
    match done {
        Ok((id, ())) => {
            names.remove(&id);
        }
        Err(e) => {
            let what = names.remove(&e.id()).unwrap_or_else(|| "a task".into());
            ctx.send(Event::Error(join_error_text(&what, &e))).await;
        }
    }
}

fn join_error_text(what: &str, e: &tokio::task::JoinError) -> String {
    let how = if e.is_panic() {
        "panicked"
    } else {
        "was cancelled"
    };
    format!("{what}: internal error: the task {how}; its inputs may not have been scanned")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_times() {
        assert!(parse_api_time("2026-08-14T23:41:02.5Z").is_some());
        assert!(parse_api_time("yesterday").is_none());
    }

    #[test]
    fn tickets_complete_once() {
        let t = JobTicket::new("k".into());
        t.pending.fetch_add(2, Ordering::AcqRel);
        assert_eq!(t.release(), None);
        assert_eq!(t.release(), None);
        assert_eq!(t.release(), Some(true));
        let t = JobTicket::new("k".into());
        t.fail();
        assert_eq!(t.release(), Some(false));
    }

    #[test]
    fn loopback_hosts() {
        for (u, want) in [
            ("http://127.0.0.1:8080", true),
            ("http://127.0.0.2", true),
            ("http://localhost:1", true),
            ("http://[::1]:9", true),
            ("http://10.0.0.1", false),
            ("https://circleci.com", false),
        ] {
            assert_eq!(is_loopback(&Url::parse(u).unwrap()), want, "{u}");
        }
    }
}
