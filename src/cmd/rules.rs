//! `cisleuth rules list` and `cisleuth rules check`.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::RulesCommand;
use crate::detect::check::check;
use crate::rules;

/// The reader of a listing went away (`rules list | head -1`): stop quietly; any other
/// write error is an error.
fn gone(e: io::Error) -> Result<ExitCode> {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(anyhow::Error::new(e).context("cannot write the rule list"))
    }
}

/// Run a `rules` subcommand.
pub fn run(cmd: RulesCommand) -> Result<ExitCode> {
    match cmd {
        RulesCommand::List { rules: dirs, json } => {
            let mut set = rules::load(&dirs)?;
            // By provider (catch-all rules last), then as loaded.
            set.sort_by(|a, b| match (&a.provider, &b.provider) {
                (Some(x), Some(y)) => x.to_lowercase().cmp(&y.to_lowercase()),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            });
            if json {
                let list: Vec<_> = set
                    .iter()
                    .map(|r| {
                        serde_json::json!({
                            "id": r.id, "name": r.name, "provider": r.provider,
                            "severity": r.severity, "confidence": r.confidence,
                            "keywords": r.keywords, "origin": r.origin,
                        })
                    })
                    .collect();
                let out = serde_json::to_string_pretty(&list)?;
                if let Err(e) = writeln!(io::stdout().lock(), "{out}") {
                    return gone(e);
                }
            } else {
                let mut out = io::stdout().lock();
                let mut group: Option<Option<&str>> = None;
                let mut providers = 0;
                for r in &set {
                    let provider = r.provider.as_deref();
                    if group != Some(provider) {
                        group = Some(provider);
                        providers += usize::from(provider.is_some());
                        let n = set
                            .iter()
                            .filter(|x| x.provider.as_deref() == provider)
                            .count();
                        let head = provider.unwrap_or("Catch-all (no provider)");
                        if let Err(e) = writeln!(out, "{head} ({n})") {
                            return gone(e);
                        }
                    }
                    let line = writeln!(
                        out,
                        "  {:<40} {:<9} {:<7} {}",
                        r.id, r.severity, r.confidence, r.name
                    );
                    if let Err(e) = line {
                        return gone(e);
                    }
                }
                eprintln!("cisleuth: {} rules, {providers} providers", set.len());
            }
            Ok(ExitCode::SUCCESS)
        }
        RulesCommand::Check { dir } => {
            let dirs: Vec<_> = dir.into_iter().collect();
            let set = match rules::load(&dirs) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("cisleuth: error: {}", super::error_line(&e));
                    return Ok(ExitCode::from(2));
                }
            };
            match check(set) {
                Ok(c) => {
                    println!(
                        "ok: {} rules, {} examples found, {} negative examples not matched",
                        c.rules, c.examples, c.negative_examples
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(problems) => {
                    for p in &problems {
                        eprintln!("cisleuth: error: {p}");
                    }
                    eprintln!("cisleuth: {} rule problem(s)", problems.len());
                    Ok(ExitCode::from(2))
                }
            }
        }
    }
}
