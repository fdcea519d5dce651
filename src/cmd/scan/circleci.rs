//! `cisleuth scan circleci`: turn the arguments into source options (failing on configuration
//! before any output), run the CircleCI source on its own thread, and scan what it sends on
//! the rayon pool. Artifacts that are archives are walked member by member.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rayon::iter::{ParallelBridge, ParallelIterator};

use super::pipeline::{scan_named, Body, Msg, Named, Run};
use crate::cli::CircleCiArgs;
use crate::http::Spooled;
use crate::scan::Scanner;
use crate::source::circleci::client::{Settings, Token};
use crate::source::circleci::state::State;
use crate::source::circleci::{self, Event, JobTicket, RequestStats, Scope, Totals};
use crate::source::origin::Origin;

/// A validated `scan circleci` invocation.
pub(crate) struct Prepared {
    opts: circleci::Options,
    state: Option<PathBuf>,
}

/// The token: `--token-file`, else `CIRCLECI_TOKEN`, else `CIRCLE_TOKEN`.
fn read_token(file: Option<&PathBuf>) -> Result<Token> {
    let token = match file {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("cannot read --token-file {}", p.display()))?,
        None => std::env::var("CIRCLECI_TOKEN")
            .or_else(|_| std::env::var("CIRCLE_TOKEN"))
            .unwrap_or_default(),
    };
    if token.trim().is_empty() {
        bail!("no CircleCI token: set CIRCLECI_TOKEN (or CIRCLE_TOKEN), or pass --token-file");
    }
    Ok(Token::new(token))
}

/// Check the arguments and read the token; nothing is sent yet.
pub(crate) fn prepare(a: &CircleCiArgs) -> Result<Prepared> {
    let scope = Scope {
        orgs: a.org.clone(),
        projects: a.project.clone(),
        pipelines: a.pipeline.clone(),
        workflows: a.workflow.clone(),
        jobs: a.job.clone(),
    };
    if scope.is_empty() {
        bail!("nothing to scan: give --org, --project, --pipeline, --workflow or --job");
    }
    let since = a
        .since
        .as_deref()
        .map(|s| crate::cli::parse_time(s, false))
        .transpose()?;
    let until = a
        .until
        .as_deref()
        .map(|s| crate::cli::parse_time(s, true))
        .transpose()?;
    if let (Some(s), Some(u)) = (since, until) {
        if s > u {
            bail!(
                "--since {} is after --until {}: the window is empty",
                a.since.as_deref().unwrap_or(""),
                a.until.as_deref().unwrap_or("")
            );
        }
    }
    let finished = match &a.state {
        Some(p) => State::open(p)?.finished_jobs()?,
        None => Default::default(),
    };
    Ok(Prepared {
        opts: circleci::Options {
            host: a.host.clone(),
            token: read_token(a.token_file.as_ref())?,
            client: Settings {
                concurrency: a.concurrency as usize,
                retries: a.retries,
                max_wait: std::time::Duration::from_secs(a.max_retry_wait),
                ..Settings::default()
            },
            scope,
            since,
            until,
            branch: a.branch.clone(),
            max_jobs: a.max_jobs,
            artifacts: !a.no_artifacts,
            max_artifact_size: a.max_artifact_size,
            max_output_size: a.opts.max_file_size,
            max_pages: a.max_pages as usize,
            finished,
        },
        state: a.state.clone(),
    })
}

/// A progress line on stderr, only when stderr is a terminal.
pub(crate) fn progress_bar(quiet: bool) -> Option<indicatif::ProgressBar> {
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = indicatif::ProgressBar::new_spinner();
    pb.enable_steady_tick(Duration::from_millis(200));
    pb.set_message("listing jobs");
    Some(pb)
}

impl Prepared {
    /// The writer's connection to the resume state.
    pub(crate) fn open_state(&self) -> Result<Option<State>> {
        self.state.as_deref().map(State::open).transpose()
    }

    /// Run the source and scan its inputs. Returns (jobs fetched, jobs skipped as finished,
    /// request counters).
    pub(crate) fn scan(
        self,
        run: &Run,
        tx: &SyncSender<Msg>,
        progress: Option<indicatif::ProgressBar>,
    ) -> Result<(u64, u64, RequestStats)> {
        let (etx, mut erx) = tokio::sync::mpsc::channel::<Event>(64);
        let totals = Arc::new(Totals::default());
        let source = {
            let totals = totals.clone();
            let opts = self.opts;
            std::thread::spawn(move || circleci::run(opts, etx, totals))
        };
        // Stopping (Ctrl-C, a closed output) ends this loop; the source sees its channel
        // closed and starts nothing more.
        std::iter::from_fn(move || {
            if run.stop.load(Ordering::Relaxed) {
                None
            } else {
                erx.blocking_recv()
            }
        })
        .par_bridge()
        .for_each_init(
            || Scanner::new(&run.engine, &run.decoders, run.options.clone()),
            |scanner, event| {
                let ticket = match event {
                    Event::Input(input) => {
                        scan_one(run, scanner, &input.origin, input.body, tx);
                        input.job
                    }
                    Event::Queued(ticket) => ticket,
                    Event::Note(m) => return drop(tx.send(Msg::Note(m))),
                    Event::Error(m) => return drop(tx.send(Msg::Error(m))),
                    Event::Skipped(m) => return drop(tx.send(Msg::Skipped(m))),
                };
                release(&ticket, tx);
            },
        );
        let stats = source.join().expect("CircleCI source thread panicked")?;
        if let Some(pb) = progress {
            pb.set_message("done");
        }
        Ok((
            totals.jobs.load(Ordering::Relaxed),
            totals.jobs_skipped_finished.load(Ordering::Relaxed),
            stats,
        ))
    }
}

fn release(ticket: &JobTicket, tx: &SyncSender<Msg>) {
    if let Some(complete) = ticket.release() {
        let _ = tx.send(Msg::JobDone {
            key: ticket.key.clone(),
            complete,
        });
    }
}

/// Scan one input: handed to the pipeline's one chain, named by its artifact path (so an
/// archive artifact is walked member by member) or by its place.
fn scan_one(
    run: &Run,
    scanner: &mut Scanner<'_>,
    origin: &Arc<Origin>,
    body: Spooled,
    tx: &SyncSender<Msg>,
) {
    let place = match origin.as_ref() {
        Origin::CircleCi(p) => p,
        _ => unreachable!("the CircleCI source names its inputs"),
    };
    let name = place
        .artifact
        .clone()
        .unwrap_or_else(|| origin.display_name());
    let member_origin = |member: &str| {
        let mut place = place.clone();
        place.artifact = Some(member.to_string());
        Arc::new(Origin::CircleCi(place))
    };
    let input = Named {
        name: &name,
        label: origin.display_name(),
        origin,
        member_origin: &member_origin,
        immediate: false,
    };
    match body {
        Spooled::Memory(bytes) => scan_named(run, scanner, &input, Body::Bytes(&bytes), tx),
        Spooled::File(file) => scan_named(run, scanner, &input, Body::File(file), tx),
    }
}
