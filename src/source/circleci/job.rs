//! One job into inputs: its config, its step commands, each step's output on every parallel
//! node (from presigned URLs, fetched without the token), and its artifacts (with the token,
//! which a redirect to storage drops), with provenance for each.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::api::{Artifact, Build};
use super::client::{Auth, HttpError};
use super::{Ctx, Event, Input, JobRef, JobTicket};
use crate::http::Spooled;
use crate::source::origin::{CircleCiPlace, Origin};

pub(super) async fn scan_job(ctx: Arc<Ctx>, job: JobRef) {
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
    // Held until every input of the job is queued for the scanner.
    let _reading = ctx.jobs.acquire().await.expect("semaphore open");
    if ctx.stopped() {
        return;
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
    let input = |place: CircleCiPlace, body: Spooled| Input {
        origin: Arc::new(Origin::CircleCi(Box::new(place))),
        body,
        job: ticket.clone(),
        hold: Vec::new(),
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
        ctx.send(enqueue(input(place, Spooled::Memory(cfg.into_bytes()))))
            .await;
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
                ctx.send(enqueue(input(
                    place,
                    Spooled::Memory(cmd.clone().into_bytes()),
                )))
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
    // Each body goes to the scanner as soon as it is downloaded, holding its permit until
    // the scanner is done with it.
    let mut downloads = tokio::task::JoinSet::new();
    for f in fetches {
        downloads.spawn(f);
    }
    while let Some(done) = downloads.join_next().await {
        match done {
            Ok(Fetched::Ok(place, body, permits)) => {
                let mut i = input(*place, body);
                i.hold = permits;
                ctx.send(enqueue(i)).await
            }
            Ok(Fetched::Failed) => ticket.fail(),
            Ok(Fetched::Skipped) => {}
            Err(e) => {
                ticket.fail();
                ctx.send(Event::Error(super::join_error_text(&label, &e)))
                    .await;
            }
        }
    }
    ctx.send(Event::Queued(ticket)).await;
}

enum Fetched {
    Ok(
        Box<CircleCiPlace>,
        Spooled,
        Vec<tokio::sync::OwnedSemaphorePermit>,
    ),
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
    let permit = ctx
        .bodies
        .clone()
        .acquire_owned()
        .await
        .expect("semaphore open");
    if ctx.stopped() {
        return Fetched::Failed;
    }
    let what = match (&place.artifact, &place.step) {
        (Some(a), _) => format!("artifact {a}"),
        (_, Some(s)) => format!("step {s:?} node {}", place.node_index.unwrap_or(0)),
        _ => "input".into(),
    };
    match ctx
        .client
        .download(&url, auth, limit, Some(&ctx.memory))
        .await
    {
        Ok((body, share)) => Fetched::Ok(
            Box::new(place),
            body,
            std::iter::once(permit).chain(share).collect(),
        ),
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
