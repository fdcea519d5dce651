//! Enumeration: organisation → projects → pipelines → workflows → jobs. Every listing that
//! fails, every page that fails and every item that does not parse is an error of the scan
//! (never a note); a project's pipelines start while its list is still being read.

use std::sync::Arc;

use super::api::{self, Job, Pipeline, Slug, V1Project, Workflow};
use super::job::scan_job;
use super::paging::Pager;
use super::{join_all, parse_api_time, report_join, Ctx, Event, JobRef};
use anyhow::{Context, Result};

/// Every project of an organisation: v1.1 followed projects, v2 recent pipelines of the org,
/// de-duplicated; `/me/collaborations` says whether the org is visible at all.
pub(super) async fn org_projects(ctx: &Arc<Ctx>, org: &str) -> Result<Vec<Slug>> {
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

pub(super) async fn project(ctx: Arc<Ctx>, slug: Slug) {
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

pub(super) async fn pipeline_by_id(ctx: Arc<Ctx>, id: String) {
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

pub(super) async fn workflow(ctx: Arc<Ctx>, id: String, known: Option<(Workflow, u64)>) {
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
