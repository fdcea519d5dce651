//! `cisleuth report` and `cisleuth triage`: read and annotate the findings datastore.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Result;
use serde_json::{json, Value};

use crate::cli::{Group, ReportArgs, ReportFormat, TriageArgs};
use crate::finding::{Finding, Location, Secret};
use crate::report::csv::csv_field;
use crate::report::tickets::{post, TicketSink, TicketSinkArgs};
use crate::report::{Report, RuleInfo, Sarif};
use crate::store::{Filter, Store, Stored};

/// The records of the chosen view.
fn records(found: &[Stored], group: Group, show_secrets: bool) -> Vec<Value> {
    let strip = |mut v: Value| {
        if !show_secrets {
            v.as_object_mut().expect("object").remove("secret");
        }
        v
    };
    match group {
        Group::Secret => found
            .iter()
            .map(|s| strip(serde_json::to_value(s).expect("serialisable")))
            .collect(),
        Group::Occurrence => found
            .iter()
            .flat_map(|s| {
                s.occurrences.iter().map(move |loc| {
                    strip(json!({
                        "fingerprint": s.fingerprint, "rule_id": s.rule_id, "rule_name": s.rule_name,
                        "severity": s.severity, "confidence": s.confidence, "redacted": s.redacted,
                        "secret": s.secret, "remediation": s.remediation, "status": s.status,
                        "location": loc,
                    }))
                })
            })
            .collect(),
    }
}

fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The first 16 digits of a record's fingerprint.
fn short(fp: &Value) -> &str {
    let fp = fp.as_str().unwrap_or("");
    &fp[..16.min(fp.len())]
}

/// A severity or confidence as stored (its serialised name).
fn parse<T: serde::de::DeserializeOwned + Default>(s: &str) -> T {
    serde_json::from_value(json!(s)).unwrap_or_default()
}

/// A stored occurrence as a finding for the report sinks; the secret itself is not at hand,
/// only its stored redacted form.
fn stored_finding(s: &Stored, location: Location) -> Finding {
    Finding {
        rule_id: s.rule_id.clone(),
        rule_name: s.rule_name.clone(),
        severity: parse(&s.severity),
        confidence: parse(&s.confidence),
        remediation: s.remediation.clone(),
        redact_prefix: None,
        secret: Secret::new(Vec::new()),
        fingerprint: s.fingerprint.clone(),
        entropy: 0.0,
        checksum_valid: None,
        evidence: Default::default(),
        location,
        span: (0, 0),
        decoded: Vec::new(),
        pair: None,
        shown: Some(s.redacted.clone()),
    }
}

/// Where an occurrence is, in one short string.
fn place(loc: &Value) -> String {
    let line = loc["line"].as_u64().unwrap_or(0);
    match loc["source"].as_str() {
        Some("file") => format!("{}:{line}", loc["path"].as_str().unwrap_or("?")),
        Some("circleci") => format!(
            "{} job {} #{}:{line} {}",
            loc["project"].as_str().unwrap_or("?"),
            loc["job"].as_str().unwrap_or("?"),
            loc["job_number"],
            loc["url"].as_str().unwrap_or("")
        ),
        _ => format!("stdin:{line}"),
    }
}

/// File one ticket per new, unticketed secret in `found`; returns an error count.
fn file_tickets(a: &ReportArgs, store: &Store, found: &[Stored]) -> Result<usize> {
    let sink = TicketSink::parse(&TicketSinkArgs {
        spec: a.to.as_deref().expect("checked by caller"),
        github_api: &a.github_api,
        labels: &a.labels,
        jira_project: a.jira_project.as_deref(),
        jira_issue_type: &a.jira_issue_type,
        dry_run: a.dry_run,
    })?;
    let todo: Vec<&Stored> = found.iter().filter(|s| s.ticket.is_none()).collect();
    if a.dry_run {
        let mut out = io::stdout().lock();
        for s in &todo {
            writeln!(out, "{}", sink.request(s).printable())?;
        }
        eprintln!(
            "cisleuth: dry run: {} ticket request(s) printed, none sent",
            todo.len()
        );
        return Ok(0);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .user_agent(concat!("cisleuth/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let mut failed = 0;
    for s in todo {
        match rt.block_on(post(&client, &sink.request(s), 4)) {
            Ok(body) => {
                let id = sink.ticket_id(s, &body);
                store.set_ticket(&s.fingerprint, &id)?;
                let line = format!("cisleuth: filed {id} for {} ({})", s.rule_name, s.redacted);
                eprintln!("{}", crate::terminal::line(&line));
            }
            Err(e) => {
                failed += 1;
                let line = format!(
                    "cisleuth: error: ticket for {} ({}) not filed, will retry next run: {e:#}",
                    s.fingerprint, s.redacted
                );
                eprintln!("{}", crate::terminal::line(&line));
            }
        }
    }
    Ok(failed)
}

/// Run `report`.
pub fn report(a: ReportArgs) -> Result<ExitCode> {
    // Filing tickets records them; a plain report only reads (a read-only copy will do).
    let store = Store::open_existing(&a.datastore, a.to.is_some() && !a.dry_run)?;
    let mut status = a.status.clone();
    if a.to.is_some() && status.is_empty() {
        // Tickets are for new secrets unless the user says otherwise.
        status.push("new".into());
    }
    let since = a
        .since
        .as_deref()
        .map(|s| crate::cli::parse_time(s, false).map(|t| t.unix_timestamp()))
        .transpose()?;
    let found = store.query(&Filter {
        status,
        severity: a.severity.map(Into::into),
        rule: a.rule.clone(),
        since,
    })?;
    if a.to.is_some() {
        let failed = file_tickets(&a, &store, &found)?;
        return Ok(ExitCode::from(if failed > 0 { 2 } else { 0 }));
    }
    let recs = records(&found, a.group, a.show_secrets);
    let mut out = io::BufWriter::new(io::stdout());
    match a.format {
        ReportFormat::Sarif => {
            // One result per occurrence. Everything comes from the datastore's record, so
            // findings of rules loaded with `scan --rules` are kept; built-in rules only add
            // their longer description.
            let mut rules = RuleInfo::of(&crate::rules::builtin()?);
            for s in &found {
                rules.entry(s.rule_id.clone()).or_insert_with(|| RuleInfo {
                    id: s.rule_id.clone(),
                    name: s.rule_name.clone(),
                    description: s.rule_name.clone(),
                    remediation: s.remediation.clone(),
                    severity: parse(&s.severity),
                    confidence: s.confidence.clone(),
                });
            }
            let mut sarif = Sarif::new(&mut out, rules);
            for s in &found {
                for loc in s.occurrences.iter().filter_map(Location::from_json) {
                    sarif.finding(&stored_finding(s, loc))?;
                }
            }
            sarif.finish(&crate::report::Summary::default())?;
        }
        ReportFormat::Jsonl => {
            for r in &recs {
                writeln!(out, "{r}")?;
            }
        }
        ReportFormat::Json => writeln!(out, "{}", json!({ "findings": recs }))?,
        ReportFormat::Csv => {
            let tail = match a.group {
                Group::Secret => "occurrences,first_seen,last_seen",
                Group::Occurrence => "where",
            };
            writeln!(out, "fingerprint,rule_id,severity,status,redacted,{tail}")?;
            for r in &recs {
                let head = [
                    &r["fingerprint"],
                    &r["rule_id"],
                    &r["severity"],
                    &r["status"],
                    &r["redacted"],
                ]
                .iter()
                .map(|v| csv_field(v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",");
                let rest = match a.group {
                    Group::Secret => format!(
                        "{},{},{}",
                        r["occurrences"].as_array().map_or(0, Vec::len),
                        r["first_seen"],
                        r["last_seen"]
                    ),
                    Group::Occurrence => csv_field(&place(&r["location"])),
                };
                writeln!(out, "{head},{rest}")?;
            }
        }
        ReportFormat::Markdown => {
            writeln!(
                out,
                "| severity | rule | secret | status | where | fingerprint |"
            )?;
            writeln!(out, "|---|---|---|---|---|---|")?;
            for r in &recs {
                let wher = match a.group {
                    Group::Secret => {
                        let occ = r["occurrences"].as_array().cloned().unwrap_or_default();
                        let first = occ.first().map(place).unwrap_or_default();
                        if occ.len() > 1 {
                            format!("{first} (+{} more)", occ.len() - 1)
                        } else {
                            first
                        }
                    }
                    Group::Occurrence => place(&r["location"]),
                };
                writeln!(
                    out,
                    "| {} | {} | `{}` | {} | {} | `{}` |",
                    md(r["severity"].as_str().unwrap_or("")),
                    md(r["rule_name"].as_str().unwrap_or("")),
                    md(r["redacted"].as_str().unwrap_or("")),
                    md(r["status"].as_str().unwrap_or("")),
                    md(&wher),
                    short(&r["fingerprint"])
                )?;
            }
        }
        ReportFormat::Human => {
            for r in &recs {
                writeln!(
                    out,
                    "{:<8} {:<13} {}  {}  {}",
                    r["severity"].as_str().unwrap_or("").to_uppercase(),
                    r["status"].as_str().unwrap_or(""),
                    r["rule_name"].as_str().unwrap_or(""),
                    r["redacted"].as_str().unwrap_or(""),
                    short(&r["fingerprint"])
                )?;
                let occ: Vec<Value> = match a.group {
                    Group::Secret => r["occurrences"].as_array().cloned().unwrap_or_default(),
                    Group::Occurrence => vec![r["location"].clone()],
                };
                for o in occ {
                    writeln!(out, "           {}", place(&o))?;
                }
            }
        }
    }
    out.flush()?;
    eprintln!(
        "cisleuth: {} finding(s) in {}",
        found.len(),
        a.datastore.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Run `triage`.
pub fn triage(a: TriageArgs) -> Result<ExitCode> {
    let store = Store::open_existing(&a.datastore, true)?;
    let fp = store.resolve(&a.fingerprint)?;
    store.triage(&fp, &a.status, a.note.as_deref())?;
    eprintln!("cisleuth: {fp} is now {}", a.status);
    Ok(ExitCode::SUCCESS)
}
