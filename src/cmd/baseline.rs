//! `cisleuth baseline create`.

use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::baseline;
use crate::cli::BaselineCommand;

/// Run a `baseline` subcommand.
pub fn run(cmd: BaselineCommand) -> Result<ExitCode> {
    match cmd {
        BaselineCommand::Create { from, output } => {
            let text = std::fs::read_to_string(&from)
                .with_context(|| format!("cannot read report {}", from.display()))?;
            let json = baseline::from_jsonl(&text, &from.display().to_string())?;
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
