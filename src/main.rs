//! The `cisleuth` binary: parse arguments, run a command, map the result to an exit code.
//! Errors print as one `cisleuth: error: ...` line each (with their causes) and exit 2.

use std::process::ExitCode;

use clap::Parser;

use cisleuth::cli::{Cli, Command};
use cisleuth::cmd;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Scan(c) => cmd::scan::run(c),
        Command::Rules(c) => cmd::rules::run(c),
        Command::Baseline(c) => cmd::baseline::run(c),
        Command::Report(a) => cmd::report::report(a),
        Command::Triage(a) => cmd::report::triage(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cisleuth: error: {}", cmd::error_line(&e));
            ExitCode::from(cmd::exit::ERROR)
        }
    }
}
