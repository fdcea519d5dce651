//! Ticket sinks: one ticket per new secret (the datastore's group view), filed in a webhook,
//! GitHub issues or Jira, with the ticket id recorded in the datastore so a re-run files
//! nothing twice.
//!
//! A ticket is built only from stored fields that never include the raw secret (redacted form,
//! fingerprint, rule, occurrences), whatever `--show-secrets` says. Requests are retried on
//! 5xx, 429 (honouring `Retry-After`) and connection errors; a ticket that still fails is
//! reported and left unfiled, so the next run tries again.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use serde_json::{json, Value};

use crate::store::Stored;

/// Where tickets go.
#[derive(Debug, Clone)]
pub enum TicketSink {
    Webhook {
        url: String,
    },
    GitHub {
        api: String,
        repo: String,
        token: String,
        labels: Vec<String>,
    },
    Jira {
        base: String,
        project: String,
        issue_type: String,
        auth: String,
    },
}

/// A request, ready to send or to print.
#[derive(Debug, Clone)]
pub struct TicketRequest {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl TicketRequest {
    /// The request as printed by `--dry-run`: credentials replaced.
    pub fn printable(&self) -> Value {
        let headers: serde_json::Map<String, Value> = self
            .headers
            .iter()
            .map(|(k, v)| {
                let v = if k.eq_ignore_ascii_case("authorization") {
                    "<redacted>"
                } else {
                    v.as_str()
                };
                (k.clone(), json!(v))
            })
            .collect();
        json!({ "method": "POST", "url": self.url, "headers": headers, "body": self.body })
    }
}

/// Settings from the command line.
pub struct TicketSinkArgs<'a> {
    pub spec: &'a str,
    pub github_api: &'a str,
    pub labels: &'a [String],
    pub jira_project: Option<&'a str>,
    pub jira_issue_type: &'a str,
    /// Dry runs need no credentials.
    pub dry_run: bool,
}

fn env(name: &str, dry_run: bool) -> Result<String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
        _ if dry_run => Ok(String::new()),
        _ => bail!("{name} is not set"),
    }
}

impl TicketSink {
    pub fn parse(a: &TicketSinkArgs<'_>) -> Result<TicketSink> {
        let (kind, rest) = a.spec.split_once(':').with_context(|| {
            format!(
                "invalid --to {:?}: use webhook:URL, github:OWNER/REPO or jira:URL",
                a.spec
            )
        })?;
        match kind {
            "webhook" => Ok(TicketSink::Webhook {
                url: rest.to_string(),
            }),
            "github" => {
                if rest.split('/').count() != 2 || rest.split('/').any(str::is_empty) {
                    bail!("invalid --to github:{rest}: use github:OWNER/REPO");
                }
                Ok(TicketSink::GitHub {
                    api: a.github_api.trim_end_matches('/').to_string(),
                    repo: rest.to_string(),
                    token: env("GITHUB_TOKEN", a.dry_run)?,
                    labels: a.labels.to_vec(),
                })
            }
            "jira" => {
                let project = a
                    .jira_project
                    .context("--to jira: needs --jira-project KEY")?;
                let creds = format!(
                    "{}:{}",
                    env("JIRA_EMAIL", a.dry_run)?,
                    env("JIRA_API_TOKEN", a.dry_run)?
                );
                Ok(TicketSink::Jira {
                    base: rest.trim_end_matches('/').to_string(),
                    project: project.to_string(),
                    issue_type: a.jira_issue_type.to_string(),
                    auth: base64::engine::general_purpose::STANDARD.encode(creds),
                })
            }
            _ => bail!(
                "invalid --to {:?}: use webhook:URL, github:OWNER/REPO or jira:URL",
                a.spec
            ),
        }
    }

    fn title(s: &Stored) -> String {
        format!("Leaked secret: {} ({})", s.rule_name, s.redacted)
    }

    fn markdown(s: &Stored) -> String {
        let mut b = format!(
            "cisleuth found a leaked credential.\n\n| | |\n|---|---|\n| rule | `{}` ({}) |\n| severity | {} |\n| secret | `{}` |\n| fingerprint | `{}` |\n| occurrences | {} |\n\n**How to fix:** {}\n\n### Where it was seen\n\n",
            s.rule_id, s.rule_name, s.severity, s.redacted, s.fingerprint, s.occurrences.len(), s.remediation
        );
        for o in &s.occurrences {
            let line = o["line"].as_u64().unwrap_or(0);
            let item = match o["source"].as_str() {
                Some("circleci") => {
                    let mut what = format!(
                        "{} job `{}` #{}",
                        o["project"].as_str().unwrap_or("?"),
                        o["job"].as_str().unwrap_or("?"),
                        o["job_number"]
                    );
                    if let Some(step) = o["step"].as_str() {
                        what.push_str(&format!(", step `{step}`"));
                    }
                    if let Some(a) = o["artifact"].as_str() {
                        what.push_str(&format!(", artifact `{a}`"));
                    }
                    format!("[{what}]({}), line {line}", o["url"].as_str().unwrap_or(""))
                }
                Some("file") => format!("`{}` line {line}", o["path"].as_str().unwrap_or("?")),
                _ => format!("stdin line {line}"),
            };
            b.push_str(&format!("- {item}\n"));
        }
        b
    }

    /// The request that files `s`.
    pub fn request(&self, s: &Stored) -> TicketRequest {
        match self {
            TicketSink::Webhook { url } => TicketRequest {
                url: url.clone(),
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: json!({
                    "type": "cisleuth.finding", "version": 1,
                    "fingerprint": s.fingerprint, "rule_id": s.rule_id, "rule_name": s.rule_name,
                    "severity": s.severity, "confidence": s.confidence, "redacted": s.redacted,
                    "status": s.status, "first_seen": s.first_seen, "last_seen": s.last_seen,
                    "remediation": s.remediation, "occurrences": s.occurrences,
                }),
            },
            TicketSink::GitHub {
                api,
                repo,
                token,
                labels,
            } => TicketRequest {
                url: format!("{api}/repos/{repo}/issues"),
                headers: vec![
                    ("Authorization".into(), format!("Bearer {token}")),
                    ("Accept".into(), "application/vnd.github+json".into()),
                    ("X-GitHub-Api-Version".into(), "2022-11-28".into()),
                    ("Content-Type".into(), "application/json".into()),
                ],
                body: json!({ "title": Self::title(s), "body": Self::markdown(s), "labels": labels }),
            },
            TicketSink::Jira {
                base,
                project,
                issue_type,
                auth,
            } => TicketRequest {
                url: format!("{base}/rest/api/2/issue"),
                headers: vec![
                    ("Authorization".into(), format!("Basic {auth}")),
                    ("Content-Type".into(), "application/json".into()),
                ],
                body: json!({ "fields": {
                    "project": { "key": project },
                    "summary": Self::title(s),
                    "description": Self::markdown(s),
                    "issuetype": { "name": issue_type },
                    "labels": ["leaked-secret"],
                }}),
            },
        }
    }

    /// The ticket reference from a successful response.
    pub fn ticket_id(&self, s: &Stored, body: &[u8]) -> String {
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        match self {
            TicketSink::GitHub { .. } => v["html_url"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("#{}", v["number"])),
            TicketSink::Jira { .. } => v["key"].as_str().unwrap_or("?").to_string(),
            TicketSink::Webhook { url } => v["id"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("webhook:{url}#{}", &s.fingerprint[..16])),
        }
    }
}

/// The most read of a ticketing server's answer.
const ANSWER_LIMIT: u64 = 1 << 20;

/// POST with retries: 5xx, 429 (after `Retry-After`) and transport errors, up to `attempts`.
pub async fn post(client: &reqwest::Client, req: &TicketRequest, attempts: u32) -> Result<Vec<u8>> {
    let mut last = String::new();
    for attempt in 0..attempts {
        let mut r = client.post(&req.url).body(serde_json::to_vec(&req.body)?);
        for (k, v) in &req.headers {
            r = r.header(k, v);
        }
        let wait = match r.send().await {
            Ok(resp) if resp.status().is_success() => {
                // A ticket's answer is a small JSON document; a server that streams more is
                // not one to trust with the rest.
                return match crate::http::read_body(resp, ANSWER_LIMIT).await? {
                    Some(body) => Ok(body),
                    None => {
                        bail!("the answer is larger than {ANSWER_LIMIT} bytes; not a ticketing API")
                    }
                };
            }
            Ok(resp) => {
                let status = resp.status();
                let retry = crate::http::retry_wait(
                    resp.headers(),
                    std::time::SystemTime::now(),
                    Duration::from_secs(60),
                );
                let body = crate::http::read_body(resp, 64 << 10)
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                last = format!(
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(&body)
                        .chars()
                        .take(200)
                        .collect::<String>()
                );
                if !(status.is_server_error() || status.as_u16() == 429) {
                    bail!("{last}");
                }
                retry.unwrap_or(Duration::from_millis(200 << attempt.min(6)))
            }
            Err(e) => {
                last = format!("request failed: {e}");
                Duration::from_millis(200 << attempt.min(6))
            }
        };
        if attempt + 1 < attempts {
            tokio::time::sleep(wait.min(Duration::from_secs(60))).await;
        }
    }
    bail!("{last} (after {attempts} attempts)")
}
