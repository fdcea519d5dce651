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

use crate::source::origin::{CircleCiPlace, Origin};
use api::{Artifact, Build, Job, Page, Pipeline, Slug, V1Project, Workflow};
use client::{Auth, Client, HttpError, Settings, Token};

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
    pub bytes: Vec<u8>,
    pub job: Arc<JobTicket>,
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
    bodies: Semaphore,
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
    let client = Client::new(opts.token.clone(), opts.client.clone())?.on_pause(move |wait| {
        // A note, not an error: the scan goes on after the pause. If the channel is full the
        // note is dropped rather than blocking the request path.
        let _ = notes.try_send(Event::Note(format!(
            "rate limited (HTTP 429): all requests pause for {:.0} s (at most --max-retry-wait)",
            wait.as_secs_f64().ceil()
        )));
    });
    let bodies = Semaphore::new(opts.client.concurrency.max(1) * 2);
    let ctx = Arc::new(Ctx {
        client,
        base,
        opts,
        tx,
        seen: Mutex::new(HashSet::new()),
        scheduled: AtomicUsize::new(0),
        bodies,
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

/// A v2 list read page by page, each page handed over as it arrives, so what was read is
/// kept when a later page fails. A listing longer than `--max-pages`, a repeated page token
/// or a repeated page (a server paging forever) is an error: the rest is unknown.
struct Pager {
    path: String,
    token: Option<String>,
    read: usize,
    done: bool,
    seen_tokens: HashSet<String>,
    seen_pages: HashSet<u64>,
}

impl Pager {
    fn new(path: &str) -> Pager {
        Pager {
            path: path.to_string(),
            token: None,
            read: 0,
            done: false,
            seen_tokens: HashSet::new(),
            seen_pages: HashSet::new(),
        }
    }

    /// The next page's items; `None` once the list is over.
    async fn next<T: DeserializeOwned>(&mut self, ctx: &Ctx) -> Result<Option<Vec<T>>, String> {
        if self.done || ctx.stopped() {
            return Ok(None);
        }
        // Whatever happens now, this listing ends unless a next token is taken below.
        self.done = true;
        let read = self.read;
        if read >= ctx.opts.max_pages {
            return Err(format!(
                "listing stopped after {read} pages (--max-pages); the rest was not read"
            ));
        }
        let path = &self.path;
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &self.token {
            Some(t) => format!("{path}{sep}page-token={}", api::enc(t)),
            None => path.clone(),
        };
        let page: Page<serde_json::Value> = ctx.get_json(&url).await.map_err(|e| {
            if read == 0 {
                e
            } else {
                format!("page {}: {e}", read + 1)
            }
        })?;
        if !self.seen_pages.insert(page_digest(&page.items)) {
            return Err(format!(
                "page {} repeats an earlier page: the server's paging loops; the rest was not read",
                read + 1
            ));
        }
        let items = page
            .items
            .into_iter()
            .map(serde_json::from_value)
            .collect::<Result<Vec<T>, _>>()
            .map_err(|e| {
                format!(
                    "{}: unexpected response ({})",
                    crate::http::shown_url(&ctx.api(path)),
                    crate::terminal::json_error(&e)
                )
            })?;
        self.read += 1;
        match page.next_page_token {
            Some(t) if !t.is_empty() => {
                if !self.seen_tokens.insert(t.clone()) {
                    return Err(format!(
                        "page {} hands out a page token seen before: the server's paging loops; the rest was not read",
                        read + 1
                    ));
                }
                self.token = Some(t);
                self.done = false;
            }
            _ => {}
        }
        Ok(Some(items))
    }
}

/// A digest of one page's items, to notice a server that serves the same page again.
fn page_digest(items: &[serde_json::Value]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(items)
        .unwrap_or_default()
        .hash(&mut h);
    h.finish()
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

/// Every project of an organisation: v1.1 followed projects, v2 recent pipelines of the org,
/// de-duplicated; `/me/collaborations` says whether the org is visible at all.
async fn org_projects(ctx: &Arc<Ctx>, org: &str) -> Result<Vec<Slug>> {
    let probe = Slug::parse(&format!("{}/x", org.trim_end_matches('/'))).with_context(|| {
        format!("invalid --org {org:?}: use a slug like gh/acme or circleci/<org-id>")
    })?;
    let org_slug = probe.org_slug();
    let mut found: Vec<Slug> = Vec::new();
    #[derive(serde::Deserialize)]
    struct Collab {
        #[serde(default)]
        slug: Option<String>,
    }
    let collabs: Vec<Collab> = ctx
        .get_json("/api/v2/me/collaborations")
        .await
        .unwrap_or_default();
    let visible = collabs.iter().any(|c| {
        c.slug
            .as_deref()
            .and_then(|s| Slug::parse(&format!("{s}/x")))
            .map(|s| s.org_slug())
            == Some(org_slug.clone())
    });
    if !visible {
        ctx.send(Event::Note(format!(
            "{org_slug} is not among this token's collaborations; listing what is visible anyway"
        )))
        .await;
    }
    // Both lists are needed: v1.1 has followed projects without recent pipelines, v2 has
    // projects nobody follows. Either failing leaves projects unlisted: an error, not a note.
    match ctx.get_json::<Vec<V1Project>>("/api/v1.1/projects").await {
        Ok(list) => found.extend(
            list.iter()
                .filter_map(Slug::from_v1_project)
                .filter(|s| s.org_slug().eq_ignore_ascii_case(&org_slug)),
        ),
        Err(e) => {
            ctx.send(Event::Error(format!(
                "{org_slug}: cannot read the followed-project list (v1.1): {e}; projects only it lists are not scanned"
            )))
            .await
        }
    }
    let path = format!("/api/v2/pipeline?org-slug={}", api::enc(&org_slug));
    let (list, failed) = match ctx.pages::<Pipeline>(&path).await {
        Ok(list) => (list, None),
        Err((list, e)) => (list, Some(e)),
    };
    if let Some(e) = failed {
        ctx.send(Event::Error(format!(
            "{org_slug}: cannot read the org's pipeline list (v2): {e}; projects only it lists may not be scanned"
        )))
        .await;
    }
    for p in &list {
        match Slug::parse(&p.project_slug) {
            Some(s) => found.push(s),
            None => {
                ctx.send(Event::Error(format!(
                    "{org_slug} pipeline {}: project slug {:?} is not one cisleuth can read; its project is not scanned",
                    p.number, p.project_slug
                )))
                .await
            }
        }
    }
    found.sort();
    found.dedup();
    if found.is_empty() {
        ctx.send(Event::Error(format!(
            "{org_slug}: no projects found (not found, or not visible to this token)"
        )))
        .await;
    }
    Ok(found)
}

fn in_window(ctx: &Ctx, created: &str) -> (bool, bool) {
    // (inside the window, older than --since)
    let Some(t) = parse_api_time(created) else {
        return (true, false);
    };
    let older = ctx.opts.since.is_some_and(|s| t < s);
    let newer = ctx.opts.until.is_some_and(|u| t >= u);
    (!older && !newer, older)
}

/// Pipelines of a project whose jobs are being scanned at once, at most: the listing waits
/// for one to finish before reading on (a project with years of history is not held in
/// memory as tasks).
const PIPELINES_IN_FLIGHT: usize = 64;

async fn project(ctx: Arc<Ctx>, slug: Slug) {
    let mut path = format!("/api/v2/project/{}/pipeline", slug.v2());
    if let Some(b) = &ctx.opts.branch {
        path.push_str(&format!("?branch={}", api::enc(b)));
    }
    // Each page's pipelines start as soon as the page arrives; a later page failing keeps them.
    let mut tasks = tokio::task::JoinSet::new();
    let mut names = std::collections::HashMap::new();
    let mut pager = Pager::new(&path);
    loop {
        let page = match pager.next::<Pipeline>(&ctx).await {
            Ok(Some(page)) => page,
            Ok(None) => break,
            Err(e) => {
                ctx.send(Event::Error(format!(
                    "{slug}: cannot list pipelines: {e}; the pipelines listed before it are scanned"
                )))
                .await;
                break;
            }
        };
        for p in &page {
            if !in_window(&ctx, &p.created_at).0 {
                continue;
            }
            while tasks.len() >= PIPELINES_IN_FLIGHT {
                if let Some(done) = tasks.join_next_with_id().await {
                    report_join(&ctx, &mut names, done).await;
                }
            }
            let what = format!("{slug} pipeline {}", p.number);
            let handle = tasks.spawn(pipeline(ctx.clone(), p.clone()));
            names.insert(handle.id(), what);
        }
        // Newest first: once a page reaches past --since, later pages are older still.
        if page.iter().any(|p| in_window(&ctx, &p.created_at).1) {
            break;
        }
    }
    while let Some(done) = tasks.join_next_with_id().await {
        report_join(&ctx, &mut names, done).await;
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

async fn pipeline_by_id(ctx: Arc<Ctx>, id: String) {
    match ctx
        .get_json::<Pipeline>(&format!("/api/v2/pipeline/{}", api::enc(&id)))
        .await
    {
        Ok(p) => pipeline(ctx, p).await,
        Err(e) => ctx.send(Event::Error(format!("pipeline {id}: {e}"))).await,
    }
}

async fn pipeline(ctx: Arc<Ctx>, p: Pipeline) {
    let path = format!("/api/v2/pipeline/{}/workflow", api::enc(&p.id));
    let workflows = match ctx.pages::<Workflow>(&path).await {
        Ok(w) => w,
        Err((w, e)) => {
            let msg = format!(
                "{} pipeline {}: cannot list workflows: {e}",
                p.project_slug, p.number
            );
            ctx.send(Event::Error(msg)).await;
            w
        }
    };
    let mut tasks = Vec::new();
    for w in workflows {
        let what = format!(
            "{} pipeline {} workflow {}",
            p.project_slug, p.number, w.name
        );
        tasks.push((
            what,
            tokio::spawn(workflow(ctx.clone(), w.id.clone(), Some((w, p.number)))),
        ));
    }
    join_all(&ctx, tasks).await;
}

async fn workflow(ctx: Arc<Ctx>, id: String, known: Option<(Workflow, u64)>) {
    let (wf, pipeline_number) = match known {
        Some((w, n)) => (w, Some(n)),
        None => match ctx
            .get_json::<Workflow>(&format!("/api/v2/workflow/{}", api::enc(&id)))
            .await
        {
            Ok(w) => {
                let n = w.pipeline_number;
                (w, n)
            }
            Err(e) => {
                ctx.send(Event::Error(format!("workflow {id}: {e}"))).await;
                return;
            }
        },
    };
    let path = format!("/api/v2/workflow/{}/job", api::enc(&id));
    let jobs = match ctx.pages::<Job>(&path).await {
        Ok(j) => j,
        Err((j, e)) => {
            ctx.send(Event::Error(format!(
                "workflow {} ({id}): cannot list jobs: {e}",
                wf.name
            )))
            .await;
            j
        }
    };
    let mut tasks = Vec::new();
    for j in jobs {
        // Approval jobs and jobs that never ran have no number and no output.
        let Some(number) = j.job_number else { continue };
        let raw = j.project_slug.as_deref().or(wf.project_slug.as_deref());
        let Some(slug) = raw.and_then(Slug::parse) else {
            // Not a job we can fetch: say so, the scan is incomplete.
            ctx.send(Event::Error(format!(
                "workflow {} ({id}) job {number}: project slug {:?} is not one cisleuth can read; job not scanned",
                wf.name,
                raw.unwrap_or("")
            )))
            .await;
            continue;
        };
        let job = JobRef {
            slug,
            number,
            name: Some(j.name),
            pipeline_number,
            workflow: Some(wf.name.clone()),
            workflow_id: Some(wf.id.clone()),
        };
        let what = format!("{} job {}", job.slug, job.number);
        tasks.push((what, tokio::spawn(scan_job(ctx.clone(), job))));
    }
    join_all(&ctx, tasks).await;
}

async fn scan_job(ctx: Arc<Ctx>, job: JobRef) {
    if ctx.stopped() {
        return;
    }
    let key = format!("{}/{}", job.slug, job.number);
    if !ctx.seen.lock().expect("seen lock").insert(key.clone()) {
        return;
    }
    if ctx.opts.finished.contains(&key) {
        ctx.totals
            .jobs_skipped_finished
            .fetch_add(1, Ordering::Relaxed);
        return;
    }
    if let Some(max) = ctx.opts.max_jobs {
        if ctx.scheduled.fetch_add(1, Ordering::SeqCst) >= max {
            return;
        }
    }
    ctx.totals.jobs.fetch_add(1, Ordering::Relaxed);
    let ticket = JobTicket::new(key.clone());
    let label = format!("{} job {}", job.slug, job.number);
    let build: Build = match ctx
        .get_json(&format!(
            "/api/v1.1/project/{}/{}",
            job.slug.v1(),
            job.number
        ))
        .await
    {
        Ok(b) => b,
        Err(e) => {
            ticket.fail();
            ctx.send(Event::Error(format!("{label}: {e}"))).await;
            ctx.send(Event::Queued(ticket)).await;
            return;
        }
    };
    let wf = build.workflows.clone();
    let base = CircleCiPlace {
        project: job.slug.to_string(),
        pipeline_number: job.pipeline_number,
        workflow: job
            .workflow
            .clone()
            .or_else(|| wf.as_ref().and_then(|w| w.workflow_name.clone())),
        workflow_id: job
            .workflow_id
            .clone()
            .or_else(|| wf.as_ref().and_then(|w| w.workflow_id.clone())),
        job: job
            .name
            .clone()
            .or_else(|| wf.as_ref().and_then(|w| w.job_name.clone()))
            .unwrap_or_else(|| "?".into()),
        job_number: job.number,
        url: build.build_url.clone().unwrap_or_else(|| {
            format!(
                "{}/{}/{}",
                ctx.base.as_str().trim_end_matches('/'),
                job.slug.v1(),
                job.number
            )
        }),
        ..CircleCiPlace::default()
    };
    let input = |place: CircleCiPlace, bytes: Vec<u8>| Input {
        origin: Arc::new(Origin::CircleCi(Box::new(place))),
        bytes,
        job: ticket.clone(),
    };
    let enqueue = |i: Input| {
        i.job.pending.fetch_add(1, Ordering::AcqRel);
        Event::Input(i)
    };
    if let Some(cfg) = build.circle_yml.as_ref().and_then(|c| c.string.clone()) {
        let place = CircleCiPlace {
            config: true,
            ..base.clone()
        };
        ctx.send(enqueue(input(place, cfg.into_bytes()))).await;
    }
    let mut fetches = Vec::new();
    for step in &build.steps {
        for action in &step.actions {
            let place = CircleCiPlace {
                step: Some(step.name.clone()),
                step_id: Some(action.step),
                node_index: Some(action.index),
                ..base.clone()
            };
            if let Some(cmd) = action.bash_command.as_ref().filter(|c| !c.is_empty()) {
                let place = CircleCiPlace {
                    bash_command: true,
                    ..place.clone()
                };
                ctx.send(enqueue(input(place, cmd.clone().into_bytes())))
                    .await;
            }
            if action.has_output == Some(false) {
                continue;
            }
            let Some(url) = action.output_url.clone() else {
                // A running job's output is not there yet (a note; the job is not recorded as
                // finished, so a --state re-run reads it). A finished job without its output
                // is output cisleuth could not read: the scan is incomplete.
                ticket.fail();
                let running = build.lifecycle.as_deref().is_some_and(|l| l != "finished");
                let msg = format!("{label} step {:?} node {}", step.name, action.index);
                let e = if running {
                    Event::Note(format!(
                        "{msg}: no output yet (the job is still running); not scanned"
                    ))
                } else {
                    Event::Error(format!("{msg}: CircleCI gives no output URL for this finished step; its output was not scanned"))
                };
                ctx.send(e).await;
                continue;
            };
            fetches.push(fetch(
                ctx.clone(),
                url,
                Auth::None,
                ctx.opts.max_output_size,
                place,
                label.clone(),
            ));
        }
    }
    if ctx.opts.artifacts {
        let path = format!("/api/v2/project/{}/{}/artifacts", job.slug.v2(), job.number);
        let list = match ctx.pages::<Artifact>(&path).await {
            Ok(list) => list,
            Err((list, e)) => {
                ticket.fail();
                ctx.send(Event::Error(format!("{label}: cannot list artifacts: {e}")))
                    .await;
                list
            }
        };
        {
            {
                for a in list {
                    let place = CircleCiPlace {
                        artifact: Some(a.path.clone()),
                        node_index: Some(a.node_index),
                        ..base.clone()
                    };
                    // Artifact URLs need the token; a redirect to storage drops it.
                    fetches.push(fetch(
                        ctx.clone(),
                        a.url,
                        Auth::Token,
                        ctx.opts.max_artifact_size,
                        place,
                        label.clone(),
                    ));
                }
            }
        }
    }
    let results = futures_join(fetches).await;
    for r in results {
        match r {
            Fetched::Ok(place, bytes) => ctx.send(enqueue(input(*place, bytes))).await,
            Fetched::Failed => ticket.fail(),
            Fetched::Skipped => {}
        }
    }
    ctx.send(Event::Queued(ticket)).await;
}

enum Fetched {
    Ok(Box<CircleCiPlace>, Vec<u8>),
    Failed,
    Skipped,
}

async fn fetch(
    ctx: Arc<Ctx>,
    url: String,
    auth: Auth,
    limit: u64,
    place: CircleCiPlace,
    label: String,
) -> Fetched {
    let _body_permit = ctx.bodies.acquire().await.expect("semaphore open");
    if ctx.stopped() {
        return Fetched::Failed;
    }
    let what = match (&place.artifact, &place.step) {
        (Some(a), _) => format!("artifact {a}"),
        (_, Some(s)) => format!("step {s:?} node {}", place.node_index.unwrap_or(0)),
        _ => "input".into(),
    };
    match ctx.client.get(&url, auth, limit).await {
        Ok(bytes) => Fetched::Ok(Box::new(place), bytes),
        Err(HttpError::TooLarge { limit, .. }) => {
            ctx.send(Event::Skipped(format!(
                "{label} {what}: skipped, larger than {limit} bytes"
            )))
            .await;
            Fetched::Skipped
        }
        Err(e) => {
            // Never print the URL of a presigned step-output link: it is itself a credential.
            let msg = match (&e, auth) {
                (HttpError::NotFound { .. }, Auth::None) => {
                    "404 (the output link may have expired)".to_string()
                }
                (HttpError::Status { status, .. }, Auth::None) => {
                    format!("HTTP {status} after retries")
                }
                (HttpError::Transport { message, .. }, Auth::None) => message.clone(),
                _ => e.to_string(),
            };
            ctx.send(Event::Error(format!("{label} {what}: {msg}")))
                .await;
            Fetched::Failed
        }
    }
}

/// Run futures concurrently and collect their results in order.
async fn futures_join<F>(futs: Vec<F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("fetch task panicked"));
    }
    out
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
