//! `cisleuth baseline create`.

use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::baseline;
use crate::cli::BaselineCommand;

/// Run a `baseline` subcommand.
pub fn run(cmd: BaselineCommand) -> Result<ExitCode> {
    match cmd {
        BaselineCommand::Create {
            from,
            datastore,
            output,
        } => {
            let json = match (from, datastore) {
                (Some(from), _) => {
                    let text = std::fs::read_to_string(&from)
                        .with_context(|| format!("cannot read report {}", from.display()))?;
                    baseline::from_jsonl(&text, &from.display().to_string())?
                }
                (None, Some(db)) => {
                    // Every stored finding, as the JSONL records a report would hold.
                    let store = crate::store::Store::open_existing(&db, false)?;
                    let lines: Vec<String> = store
                        .query(&crate::store::Filter::default())?
                        .iter()
                        .map(|s| {
                            serde_json::json!({"fingerprint": s.fingerprint, "rule_id": s.rule_id, "redacted": s.redacted})
                                .to_string()
                        })
                        .collect();
                    baseline::from_jsonl(&lines.join("\n"), &db.display().to_string())?
                }
                (None, None) => unreachable!("clap requires one"),
            };
            std::fs::write(&output, &json)
                .with_context(|| format!("cannot write baseline {}", output.display()))?;
            let n = json.matches("\"fingerprint\"").count();
            eprintln!(
                "cisleuth: wrote {} ({n} known finding(s))",
                output.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
