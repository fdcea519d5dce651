//! Arguments become a configured scan here, and only here (ripgrep's "high args"): policy,
//! rules, baseline, datastore, resume state, the report and the shared runtime. Everything
//! that can fail on configuration fails in [`configure`], before any output.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use std::io::{self, IsTerminal};

use super::circleci::Prepared;
use super::pipeline::Run;
use super::writer::WriterSetup;
use crate::baseline::Baseline;
use crate::cli::{Format, ScanCommand, ScanOpts};
use crate::config::Config;
use crate::decode::Decoders;
use crate::detect::Engine;
use crate::report::{Csv, Human, Json, Jsonl, Junit, Report, RuleInfo, Sarif};
use crate::rules;
use crate::scan::Options;
use crate::source::archive;
use crate::store::Store;

/// A scan ready to start.
pub(super) struct Configured {
    pub(super) opts: ScanOpts,
    pub(super) run: Arc<Run>,
    pub(super) report: Box<dyn Report>,
    pub(super) writer: WriterSetup,
    pub(super) circleci: Option<Prepared>,
}

/// Resolve `cmd` into a [`Configured`] scan.
pub(super) fn configure(cmd: &ScanCommand) -> Result<Configured> {
    let opts = match cmd {
        ScanCommand::Path { opts, .. } | ScanCommand::Stdin { opts } => opts.clone(),
        ScanCommand::CircleCi(a) => a.opts.clone(),
    };
    // Everything that can fail on configuration fails here, before any output.
    let mut config = Config::load(opts.config.as_deref(), !opts.no_repo_config)?;
    let mut dirs = config.rule_dirs.clone();
    dirs.extend(opts.rules.iter().cloned());
    let mut rules = rules::load(&dirs)?;
    config.apply(&mut rules)?;
    let baseline = opts.baseline.as_deref().map(Baseline::load).transpose()?;
    let store = opts
        .datastore
        .as_deref()
        .map(|p| {
            Store::open(
                p,
                opts.store_secrets,
                std::time::Duration::from_secs(opts.datastore_wait),
            )
        })
        .transpose()?;
    let circleci = match &cmd {
        ScanCommand::CircleCi(a) => Some(super::circleci::prepare(a)?),
        _ => None,
    };
    let run = Arc::new(Run {
        engine: Engine::new(rules)?,
        decoders: Decoders::standard(opts.max_decode_depth),
        options: Options {
            policy: Arc::new(config),
        },
        max_file_size: opts.max_file_size,
        archive_limits: archive::Limits {
            max_depth: opts.max_archive_depth,
            max_total: opts.max_decompressed,
            max_entries: opts.max_archive_members,
            max_spill: opts.max_file_size,
            ..archive::Limits::default()
        },
        inputs: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        interrupted: AtomicBool::new(false),
    });
    let report = make_report(&opts, run.engine.rules());
    let mut setup = WriterSetup {
        quiet: opts.quiet,
        streaming: matches!(cmd, ScanCommand::Stdin { .. }),
        started: Instant::now(),
        state: None,
        progress: None,
        baseline,
        fail_on: opts.fail_on.map(Into::into),
        min_confidence: opts.min_confidence.into(),
        store,
    };
    if let Some(c) = &circleci {
        setup.state = c.open_state()?;
        setup.progress = super::circleci::progress_bar(opts.quiet);
    }
    Ok(Configured {
        opts,
        run,
        report,
        writer: setup,
        circleci,
    })
}

fn make_report(opts: &ScanOpts, rules: &[crate::rules::Rule]) -> Box<dyn Report> {
    let tty = io::stdout().is_terminal();
    let format = opts
        .format
        .unwrap_or(if tty { Format::Human } else { Format::Jsonl });
    let out = io::BufWriter::with_capacity(64 * 1024, io::stdout());
    match format {
        Format::Jsonl => Box::new(Jsonl::new(out, opts.show_secrets)),
        Format::Json => Box::new(Json::new(out, opts.show_secrets)),
        // Secrets never go into SARIF or JUnit: they end up in dashboards and test reports.
        Format::Sarif => Box::new(Sarif::new(out, RuleInfo::of(rules))),
        Format::Csv => Box::new(Csv::new(out, opts.show_secrets)),
        Format::Junit => Box::new(Junit::new(out)),
        Format::Human => {
            let color = tty && std::env::var_os("NO_COLOR").is_none();
            Box::new(Human::new(out, opts.show_secrets, color))
        }
    }
}
