//! The findings datastore (`--datastore PATH`): every finding a scan reports, kept across scans
//! so they can be triaged, reported and ticketed.
//!
//! A finding is one secret (keyed by fingerprint) with its occurrences (each place it was
//! seen). Re-scans add occurrences and move `last_seen`; they never duplicate a finding, and
//! they never reset a status someone set with `cisleuth triage`. Secrets are stored only as
//! SHA-256 unless `--store-secrets`, and then the file is created with mode 0600.

use std::path::Path;

use anyhow::{bail, Context, Result};
use rusqlite::{params, Connection};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::finding::{hex, Finding};
use crate::rules::Severity;

/// Triage states.
pub const STATUSES: &[&str] = &["new", "triaged", "false_positive", "revoked", "ticketed"];

/// An open datastore.
pub struct Store {
    db: Connection,
    store_secrets: bool,
}

/// A stored finding with its occurrences (the group view).
#[derive(Debug, Clone, Serialize)]
pub struct Stored {
    pub fingerprint: String,
    pub rule_id: String,
    pub rule_name: String,
    pub severity: String,
    pub confidence: String,
    pub redacted: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub secret_sha256: String,
    pub remediation: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    pub first_seen: i64,
    pub last_seen: i64,
    pub occurrences: Vec<serde_json::Value>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(unix)]
fn create_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if path.exists() {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    } else {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn create_private(_: &Path) -> Result<()> {
    Ok(())
}

impl Store {
    /// Open or create the datastore at `path`.
    pub fn open(path: &Path, store_secrets: bool) -> Result<Store> {
        // Mode 0600 always: even without --store-secrets the file holds an unsalted SHA-256 of
        // each secret, which brute-forces quickly for short passwords.
        create_private(path)
            .with_context(|| format!("cannot create {} with mode 0600", path.display()))?;
        let db = Connection::open(path)
            .with_context(|| format!("cannot open datastore {}", path.display()))?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS findings (
               fingerprint TEXT PRIMARY KEY, rule_id TEXT NOT NULL, rule_name TEXT NOT NULL,
               severity TEXT NOT NULL, confidence TEXT NOT NULL, redacted TEXT NOT NULL,
               remediation TEXT NOT NULL, secret_sha256 TEXT NOT NULL, secret TEXT,
               first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,
               status TEXT NOT NULL DEFAULT 'new', note TEXT, ticket TEXT);
             CREATE TABLE IF NOT EXISTS occurrences (
               fingerprint TEXT NOT NULL REFERENCES findings(fingerprint), location TEXT NOT NULL,
               first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,
               PRIMARY KEY (fingerprint, location));",
        )
        .with_context(|| format!("{} is not a cisleuth datastore", path.display()))?;
        Ok(Store { db, store_secrets })
    }

    /// Open a datastore a scan wrote, for reading or triage: a missing path is an error (a
    /// typo must not read as "0 findings"), and so is a file that is not a cisleuth
    /// datastore (a resume state file, say).
    pub fn open_existing(path: &Path) -> Result<Store> {
        if !path.is_file() {
            bail!(
                "no datastore at {}: give the file a scan wrote with --datastore",
                path.display()
            );
        }
        let db = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .or_else(|_| Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY))
        .with_context(|| format!("cannot open datastore {}", path.display()))?;
        let _ = db.execute_batch("PRAGMA busy_timeout = 5000;");
        let tables: i64 = db
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('findings', 'occurrences')",
                [],
                |r| r.get(0),
            )
            .with_context(|| format!("{} is not a cisleuth datastore", path.display()))?;
        if tables != 2 {
            bail!(
                "{} is not a cisleuth datastore (a --state file is not one either)",
                path.display()
            );
        }
        let store_secrets = db
            .query_row(
                "SELECT count(*) FROM findings WHERE secret IS NOT NULL",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .unwrap_or(false);
        Ok(Store { db, store_secrets })
    }

    /// Record one reported finding.
    pub fn record(&self, f: &Finding) -> Result<()> {
        let t = now();
        let secret = self
            .store_secrets
            .then(|| String::from_utf8_lossy(f.secret.expose()).into_owned());
        let sha = hex(&Sha256::digest(f.secret.expose()));
        self.db.execute(
            "INSERT INTO findings (fingerprint, rule_id, rule_name, severity, confidence, redacted,
               remediation, secret_sha256, secret, first_seen, last_seen)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)
             ON CONFLICT(fingerprint) DO UPDATE SET last_seen = ?10,
               secret = COALESCE(excluded.secret, findings.secret)",
            params![
                f.fingerprint,
                f.rule_id,
                f.rule_name,
                f.severity.to_string(),
                f.confidence.to_string(),
                f.redacted(),
                f.remediation,
                sha,
                secret,
                t
            ],
        )?;
        let loc = serde_json::to_string(&f.location)?;
        self.db.execute(
            "INSERT INTO occurrences (fingerprint, location, first_seen, last_seen) VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT(fingerprint, location) DO UPDATE SET last_seen = ?3",
            params![f.fingerprint, loc, t],
        )?;
        Ok(())
    }

    /// Resolve a fingerprint or a unique prefix of one (at least 8 hex digits).
    pub fn resolve(&self, prefix: &str) -> Result<String> {
        if prefix.len() < 8 {
            bail!("fingerprint {prefix:?} is too short: give at least 8 hex digits");
        }
        let mut stmt = self
            .db
            .prepare("SELECT fingerprint FROM findings WHERE fingerprint LIKE ?1 || '%' LIMIT 2")?;
        let hits: Vec<String> = stmt
            .query_map(params![prefix.to_ascii_lowercase()], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        match hits.as_slice() {
            [one] => Ok(one.clone()),
            [] => bail!("no finding with fingerprint {prefix:?} in the datastore"),
            _ => bail!("fingerprint prefix {prefix:?} is ambiguous; give more digits"),
        }
    }

    /// Record a triage decision.
    pub fn triage(&self, fingerprint: &str, status: &str, note: Option<&str>) -> Result<()> {
        if !STATUSES.contains(&status) {
            bail!(
                "unknown status {status:?}: use one of {}",
                STATUSES.join(", ")
            );
        }
        self.db.execute(
            "UPDATE findings SET status = ?2, note = COALESCE(?3, note) WHERE fingerprint = ?1",
            params![fingerprint, status, note],
        )?;
        Ok(())
    }

    /// Stored findings matching the filters, most severe first.
    pub fn query(&self, filter: &Filter) -> Result<Vec<Stored>> {
        let mut stmt = self.db.prepare(
            "SELECT fingerprint, rule_id, rule_name, severity, confidence, redacted, secret,
                    secret_sha256, remediation, status, note, ticket, first_seen, last_seen
             FROM findings ORDER BY first_seen, fingerprint",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(Stored {
                fingerprint: r.get(0)?,
                rule_id: r.get(1)?,
                rule_name: r.get(2)?,
                severity: r.get(3)?,
                confidence: r.get(4)?,
                redacted: r.get(5)?,
                secret: r.get(6)?,
                secret_sha256: r.get(7)?,
                remediation: r.get(8)?,
                status: r.get(9)?,
                note: r.get(10)?,
                ticket: r.get(11)?,
                first_seen: r.get(12)?,
                last_seen: r.get(13)?,
                occurrences: Vec::new(),
            })
        })?;
        let mut out = Vec::new();
        let mut occ = self.db.prepare(
            "SELECT location FROM occurrences WHERE fingerprint = ?1 ORDER BY first_seen, location",
        )?;
        for row in rows {
            let mut s = row?;
            if !filter.accepts(&s) {
                continue;
            }
            s.occurrences = occ
                .query_map(params![s.fingerprint], |r| r.get::<_, String>(0))?
                .map(|l| Ok(serde_json::from_str(&l?)?))
                .collect::<Result<_>>()?;
            out.push(s);
        }
        // Most severe first; the sort is stable, so first seen first within a severity.
        out.sort_by_key(|s| std::cmp::Reverse(severity_of(&s.severity)));
        Ok(out)
    }

    /// Record the ticket filed for a finding and mark it `ticketed`.
    pub fn set_ticket(&self, fingerprint: &str, ticket: &str) -> Result<()> {
        self.db.execute(
            "UPDATE findings SET ticket = ?2, status = 'ticketed' WHERE fingerprint = ?1",
            params![fingerprint, ticket],
        )?;
        Ok(())
    }
}

/// `report` filters.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub status: Vec<String>,
    /// Minimum severity.
    pub severity: Option<Severity>,
    pub rule: Vec<String>,
    /// Only findings last seen at or after this Unix time.
    pub since: Option<i64>,
}

impl Filter {
    fn accepts(&self, s: &Stored) -> bool {
        (self.status.is_empty() || self.status.contains(&s.status))
            && self
                .severity
                .is_none_or(|min| severity_of(&s.severity) >= min)
            && (self.rule.is_empty() || self.rule.contains(&s.rule_id))
            && self.since.is_none_or(|t| s.last_seen >= t)
    }
}

fn severity_of(s: &str) -> Severity {
    match s {
        "critical" => Severity::Critical,
        "high" => Severity::High,
        "medium" => Severity::Medium,
        _ => Severity::Low,
    }
}
