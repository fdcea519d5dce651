//! Command-line arguments as the user typed them (clap derive). Turning them into built
//! objects (rules, engine, report) happens in the command modules.

use std::path::PathBuf;

use anyhow::Context;
use clap::builder::TypedValueParser as _;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Find leaked credentials in CI build output.
#[derive(Parser, Debug)]
#[command(name = "cisleuth", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Scan inputs for secrets.
    #[command(subcommand)]
    Scan(ScanCommand),
    /// List or validate detection rules.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Baselines of known findings, for gating only new leaks.
    #[command(subcommand)]
    Baseline(BaselineCommand),
    /// Print the findings kept in a datastore.
    Report(ReportArgs),
    /// Record a decision about a stored finding.
    Triage(TriageArgs),
}

/// How stored findings are listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Group {
    /// One record per secret, with all its occurrences.
    Secret,
    /// One record per place a secret was seen.
    Occurrence,
}

/// Formats of `report`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Human,
    Jsonl,
    Json,
    Csv,
    Markdown,
    /// SARIF 2.1.0, one result per occurrence.
    Sarif,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    #[arg(long, value_name = "PATH")]
    pub datastore: PathBuf,
    #[arg(long, value_enum, default_value = "human")]
    pub format: ReportFormat,
    #[arg(long, value_enum, default_value = "secret")]
    pub group: Group,
    /// Only these statuses (new, triaged, false_positive, revoked, ticketed). Repeatable.
    #[arg(long)]
    pub status: Vec<String>,
    /// Only findings at or above this severity.
    #[arg(long, value_enum)]
    pub severity: Option<SeverityArg>,
    /// Only these rule ids. Repeatable.
    #[arg(long)]
    pub rule: Vec<String>,
    /// Only findings seen at or after this time (RFC 3339 or YYYY-MM-DD).
    #[arg(long)]
    pub since: Option<String>,
    /// Print stored secrets (only present with `scan --store-secrets`).
    #[arg(long)]
    pub show_secrets: bool,
    /// File one ticket per new secret: `webhook:URL`, `github:OWNER/REPO` (token from
    /// GITHUB_TOKEN) or `jira:URL` (with --jira-project; JIRA_EMAIL and JIRA_API_TOKEN).
    #[arg(long, value_name = "SINK")]
    pub to: Option<String>,
    /// Print the ticket requests instead of sending them.
    #[arg(long, requires = "to")]
    pub dry_run: bool,
    /// GitHub API base URL (GitHub Enterprise: https://HOST/api/v3).
    #[arg(long, default_value = "https://api.github.com")]
    pub github_api: String,
    /// Labels for GitHub issues. Repeatable.
    #[arg(long = "label", default_values_t = vec!["security".to_string(), "leaked-secret".to_string()])]
    pub labels: Vec<String>,
    /// Jira project key.
    #[arg(long)]
    pub jira_project: Option<String>,
    /// Jira issue type.
    #[arg(long, default_value = "Task")]
    pub jira_issue_type: String,
}

#[derive(Args, Debug)]
pub struct TriageArgs {
    /// The finding's fingerprint, or a unique prefix of at least 8 digits.
    pub fingerprint: String,
    #[arg(long, value_name = "PATH")]
    pub datastore: PathBuf,
    /// new, triaged, false_positive, revoked or ticketed.
    #[arg(long)]
    pub status: String,
    #[arg(long)]
    pub note: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum BaselineCommand {
    /// Write a baseline from a JSONL report (`scan ... --format jsonl > report.jsonl`) or from
    /// every finding in a datastore.
    Create {
        /// The JSONL report to take the findings from.
        #[arg(
            long,
            value_name = "REPORT.jsonl",
            required_unless_present = "datastore",
            conflicts_with = "datastore"
        )]
        from: Option<PathBuf>,
        /// A datastore to take the findings from instead.
        #[arg(long, value_name = "PATH")]
        datastore: Option<PathBuf>,
        /// Where to write the baseline.
        #[arg(
            short,
            long,
            value_name = "FILE",
            default_value = ".cisleuth-baseline.json"
        )]
        output: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum ScanCommand {
    /// Scan files and folders (walked in parallel; `.gz` read transparently).
    Path {
        /// Files or folders to scan.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        opts: ScanOpts,
    },
    /// Scan standard input as it streams (`make test 2>&1 | cisleuth scan -`).
    #[command(name = "-")]
    Stdin {
        #[command(flatten)]
        opts: ScanOpts,
    },
    /// Scan CircleCI jobs through the API: step output, step commands, configs, artifacts.
    ///
    /// The token is read from CIRCLECI_TOKEN, CIRCLE_TOKEN or --token-file (a personal API
    /// token; it needs read access to the projects, "view-builds" for artifacts).
    #[command(name = "circleci")]
    CircleCi(Box<CircleCiArgs>),
}

#[derive(Args, Debug, Clone)]
pub struct CircleCiArgs {
    /// Every project of an organisation (`gh/acme`, `bb/acme`, `circleci/<org-id>`). Repeatable.
    #[arg(long, value_name = "ORG-SLUG", help_heading = "Scope (at least one)")]
    pub org: Vec<String>,
    /// A project (`gh/acme/api`, `circleci/<org-id>/<project-id>`). Repeatable.
    #[arg(long, value_name = "SLUG", help_heading = "Scope (at least one)")]
    pub project: Vec<String>,
    /// A pipeline id. Repeatable.
    #[arg(long, value_name = "ID", help_heading = "Scope (at least one)")]
    pub pipeline: Vec<String>,
    /// A workflow id (pre-merge: `--workflow $CIRCLE_WORKFLOW_ID`). Repeatable.
    #[arg(long, value_name = "ID", help_heading = "Scope (at least one)")]
    pub workflow: Vec<String>,
    /// One job, `SLUG/NUMBER` (`gh/acme/api/1234`). Repeatable.
    #[arg(
        long,
        value_name = "SLUG/NUMBER",
        help_heading = "Scope (at least one)"
    )]
    pub job: Vec<String>,
    /// Only pipelines created at or after this time (RFC 3339 or YYYY-MM-DD, UTC).
    #[arg(long, value_name = "TIME", help_heading = "Filters")]
    pub since: Option<String>,
    /// Only pipelines created before this time (a YYYY-MM-DD date includes that day).
    #[arg(long, value_name = "TIME", help_heading = "Filters")]
    pub until: Option<String>,
    /// Only pipelines of this branch.
    #[arg(long, help_heading = "Filters")]
    pub branch: Option<String>,
    /// Stop after this many jobs.
    #[arg(long, value_name = "N", help_heading = "Filters")]
    pub max_jobs: Option<usize>,
    /// CircleCI address (CircleCI Server: your installation's URL).
    #[arg(long, env = "CIRCLECI_HOST", default_value = "https://circleci.com")]
    pub host: String,
    /// Read the token from this file instead of CIRCLECI_TOKEN / CIRCLE_TOKEN.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// HTTP requests in flight at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Retries of a request after 5xx answers, timeouts and connection errors.
    #[arg(long, default_value_t = 5)]
    pub retries: u32,
    /// The longest pause (seconds) a server's 429 may impose through `Retry-After` or
    /// `RateLimit-Reset`; a longer or malformed value is cut to this.
    #[arg(long, default_value_t = 300, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub max_retry_wait: u64,
    /// Most pages read from one listing (pipelines of a project, jobs of a workflow; 20 to
    /// 100 items a page). A longer listing, or a server repeating pages, is cut here and the
    /// scan is incomplete.
    #[arg(long, default_value_t = 20_000, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_pages: u64,
    /// Do not download and scan artifacts.
    #[arg(long)]
    pub no_artifacts: bool,
    /// Skip larger artifacts (they make the scan incomplete).
    #[arg(long, default_value = "50M", value_parser = parse_size)]
    pub max_artifact_size: u64,
    /// Resume state (SQLite): finished jobs are skipped and findings already reported are
    /// not reported again when a scan is re-run with the same file.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    #[command(flatten)]
    pub opts: ScanOpts,
}

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Grouped by input, coloured on a terminal.
    Human,
    /// One JSON object per finding per line (docs/OUTPUT.md).
    Jsonl,
    /// One JSON document with all findings and the summary.
    Json,
    /// SARIF 2.1.0 (GitHub code scanning and other SARIF viewers).
    Sarif,
    /// CSV with a header row.
    Csv,
    /// JUnit XML (one failing test case per finding), for CI test-report views.
    Junit,
}

#[derive(Args, Debug, Clone)]
pub struct ScanOpts {
    /// Output format [default: human on a terminal, jsonl otherwise].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Print secrets in full instead of redacted (`ghp_…a1B2`).
    #[arg(long)]
    pub show_secrets: bool,
    /// No summary or notes on stderr (errors are still printed).
    #[arg(short, long)]
    pub quiet: bool,
    /// Extra rule directory (`*.toml`); a rule with a built-in id replaces it. Repeatable.
    #[arg(long = "rules", value_name = "DIR")]
    pub rules: Vec<PathBuf>,
    /// Skip files larger than this (bytes, or with K/M/G suffix); they make the scan incomplete.
    #[arg(long, default_value = "512M", value_parser = parse_size)]
    pub max_file_size: u64,
    /// Encodings undone one inside another (base64, hex, URL, escapes, UTF-16, gzip in
    /// base64); 0 scans only the text as it is; at most 8.
    #[arg(long, default_value_t = 3, value_name = "N", value_parser = clap::value_parser!(u8).range(0..=8).map(usize::from))]
    pub max_decode_depth: usize,
    /// Archives inside archives opened (zip, tar, gz, bz2, xz); 0 scans archives as raw bytes;
    /// at most 16.
    #[arg(long, default_value_t = 3, value_name = "N", value_parser = clap::value_parser!(u8).range(0..=16).map(usize::from))]
    pub max_archive_depth: usize,
    /// Bytes decompressed from one input (all archive members, nested ones included, and any
    /// gzip/bzip2/xz stream); past it the rest is refused as a possible bomb and the scan is
    /// incomplete.
    #[arg(long, default_value = "4G", value_name = "SIZE", value_parser = parse_size)]
    pub max_decompressed: u64,
    /// Archive members read from one input, all levels together; past it the rest is refused.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    pub max_archive_members: usize,
    /// Worker threads [default: number of cores; at most 1024].
    #[arg(short = 'j', long, value_parser = clap::value_parser!(u16).range(1..=1024).map(usize::from))]
    pub threads: Option<usize>,
    /// Policy file [default: ./.cisleuth.toml if present]: disabled rules, extra rule dirs,
    /// allowlists, ignored paths, entropy overrides.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Never read ./.cisleuth.toml: in a pre-merge gate the working directory is the code under
    /// test, and its policy could switch the scan off. Pin policy with --config instead.
    #[arg(long, env = "CISLEUTH_NO_REPO_CONFIG", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_repo_config: bool,
    /// Baseline of known findings (`cisleuth baseline create`): only new ones are reported.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Exit 1 only for findings at or above this severity (others are still reported).
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<SeverityArg>,
    /// Report only findings at least this sure; `low` adds values that are merely shaped like
    /// a credential (an AWS key id alone, a hex or UUID value under a generic key name).
    #[arg(long, value_enum, value_name = "LEVEL", default_value = "medium")]
    pub min_confidence: ConfidenceArg,
    /// Keep every finding in this datastore (SQLite) for `report`, `triage` and tickets.
    #[arg(long, value_name = "PATH")]
    pub datastore: Option<PathBuf>,
    /// Store raw secrets in the datastore (default: only their SHA-256); the file gets mode 0600.
    #[arg(long, requires = "datastore")]
    pub store_secrets: bool,
    /// Seconds a datastore write waits while another process holds its lock; then the
    /// findings not yet written are an error of the scan (they are still reported).
    #[arg(
        long,
        default_value_t = 60,
        value_name = "SECONDS",
        requires = "datastore"
    )]
    pub datastore_wait: u64,
}

/// A severity on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SeverityArg {
    Critical,
    High,
    Medium,
    Low,
}

impl From<SeverityArg> for crate::rules::Severity {
    fn from(s: SeverityArg) -> Self {
        match s {
            SeverityArg::Critical => Self::Critical,
            SeverityArg::High => Self::High,
            SeverityArg::Medium => Self::Medium,
            SeverityArg::Low => Self::Low,
        }
    }
}

/// A confidence on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ConfidenceArg {
    High,
    Medium,
    Low,
}

impl From<ConfidenceArg> for crate::rules::Confidence {
    fn from(c: ConfidenceArg) -> Self {
        match c {
            ConfidenceArg::High => Self::High,
            ConfidenceArg::Medium => Self::Medium,
            ConfidenceArg::Low => Self::Low,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum RulesCommand {
    /// List the rules in effect.
    List {
        /// Extra rule directory, as for `scan`. Repeatable.
        #[arg(long = "rules", value_name = "DIR")]
        rules: Vec<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Validate rules: ids, regexes, `secret` groups, examples and negative examples.
    Check {
        /// A rule directory to check on top of the built-in rules (default: the built-ins).
        dir: Option<PathBuf>,
    },
}

/// `123`, `64K`, `50M`, `2G`, also `64KB`, `50MiB`, `2GB` (binary multiples).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let digits = lower.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let mult = match &lower[digits.len()..] {
        "" | "b" => 1u64,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "invalid size {t:?}: use a number with optional K, M or G (KB, MiB, ...)"
            ))
        }
    };
    digits
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| {
            format!("invalid size {t:?}: use a number with optional K, M or G (KB, MiB, ...)")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10").unwrap(), 10);
        assert_eq!(parse_size("4K").unwrap(), 4096);
        assert_eq!(parse_size("50m").unwrap(), 50 << 20);
        assert_eq!(parse_size("2G").unwrap(), 2 << 30);
        assert_eq!(parse_size("10MB").unwrap(), 10 << 20);
        assert_eq!(parse_size("10MiB").unwrap(), 10 << 20);
        assert_eq!(parse_size("64kb").unwrap(), 64 << 10);
        assert!(parse_size("10XB").is_err());
        assert!(parse_size("x").is_err());
        assert!(parse_size("-1").is_err());
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["cisleuth", "scan", "-", "--format", "jsonl"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Scan(ScanCommand::Stdin { .. })
        ));
    }
}

/// Parse `--since`/`--until`: RFC 3339, or `YYYY-MM-DD` (UTC midnight; with `end_of_day`,
/// the midnight after it, so `--until 2023-01-04` includes that day).
pub fn parse_time(s: &str, end_of_day: bool) -> anyhow::Result<time::OffsetDateTime> {
    if let Ok(t) = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Ok(t);
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let d = time::Date::parse(s, &fmt)
        .with_context(|| format!("invalid time {s:?}: use RFC 3339 or YYYY-MM-DD"))?;
    let d = if end_of_day {
        d.next_day().context("date out of range")?
    } else {
        d
    };
    Ok(d.midnight().assume_utc())
}

#[cfg(test)]
mod time_tests {
    use super::*;

    #[test]
    fn times() {
        let t = parse_time("2022-12-21", false).unwrap();
        assert_eq!(t, time::macros::datetime!(2022-12-21 0:00 UTC));
        let t = parse_time("2023-01-04", true).unwrap();
        assert_eq!(t, time::macros::datetime!(2023-01-05 0:00 UTC));
        let t = parse_time("2022-12-28T10:00:00+02:00", false).unwrap();
        assert_eq!(t, time::macros::datetime!(2022-12-28 8:00 UTC));
        assert!(parse_time("yesterday", false).is_err());
    }
}
