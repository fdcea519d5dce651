//! The findings datastore (`--datastore PATH`): every finding a scan reports, kept across scans
//! so they can be triaged, reported and ticketed.
//!
//! A finding is one secret (keyed by fingerprint) with its occurrences (each place it was
//! seen). Re-scans add occurrences and move `last_seen`; they never duplicate a finding, and
//! they never reset a status someone set with `cisleuth triage`. Secrets are stored only as
//! SHA-256 unless `--store-secrets`. The file is mode 0600 either way: an unsalted SHA-256
//! of a short password is found by brute force in minutes, so the datastore (and every
//! report) is as sensitive as the secrets.
//!
//! A datastore is the record of an incident, so it is never silently damaged or lost:
//! - It says what it is (`PRAGMA application_id`) and which schema it has (`user_version`,
//!   moved forward by `MIGRATIONS`); a resume state file, another program's SQLite file,
//!   a newer schema or a damaged file is refused with one clear error before any scanning.
//! - Findings are written in batched transactions ([`Store::record`] buffers, [`Store::flush`]
//!   commits); a batch that fails stays buffered and is tried again, and what is still
//!   unwritten at the end is an error of the scan.
//! - Locked by another process, a write waits (saying so after a second) up to the
//!   `--datastore-wait` limit instead of failing per finding.

use std::path::Path;

use anyhow::{bail, Context, Result};
use rusqlite::{params, Connection};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::finding::{hex, Finding};
use crate::rules::Severity;
use crate::source::circleci::state::APPLICATION_ID as STATE_APPLICATION_ID;

/// Triage states.
pub const STATUSES: &[&str] = &["new", "triaged", "false_positive", "revoked", "ticketed"];

/// An open datastore.
pub struct Store {
    db: Connection,
    store_secrets: bool,
    /// Findings recorded but not yet committed.
    pending: Vec<Row>,
    last_flush: std::time::Instant,
}

/// One finding's row and occurrence, ready to write.
struct Row {
    fingerprint: String,
    rule_id: String,
    rule_name: String,
    severity: String,
    confidence: String,
    redacted: String,
    remediation: String,
    sha256: String,
    secret: Option<String>,
    location: String,
    at: i64,
}

/// `PRAGMA application_id` of a cisleuth datastore ("csLD").
const APPLICATION_ID: i32 = 0x6373_4c44;

/// Schema migrations: entry `n` moves a datastore from `user_version` n to n + 1. Version 0
/// is an empty file or a datastore from before versions (the same tables, so the first step
/// is idempotent). Append, never edit.
const MIGRATIONS: &[&str] = &["CREATE TABLE IF NOT EXISTS findings (
       fingerprint TEXT PRIMARY KEY, rule_id TEXT NOT NULL, rule_name TEXT NOT NULL,
       severity TEXT NOT NULL, confidence TEXT NOT NULL, redacted TEXT NOT NULL,
       remediation TEXT NOT NULL, secret_sha256 TEXT NOT NULL, secret TEXT,
       first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,
       status TEXT NOT NULL DEFAULT 'new', note TEXT, ticket TEXT);
     CREATE TABLE IF NOT EXISTS occurrences (
       fingerprint TEXT NOT NULL REFERENCES findings(fingerprint), location TEXT NOT NULL,
       first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,
       PRIMARY KEY (fingerprint, location));"];

/// The schema this cisleuth writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Findings buffered before a batch is committed (also committed every [`FLUSH_EVERY`]).
const BATCH: usize = 256;
const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// How long a write waits for another process's lock (`--datastore-wait`), in ms; read by
/// the busy handler, which SQLite calls with a plain function.
static WAIT_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(60_000);

/// SQLite's busy handler: sleep and try again, up to the wait limit; say so once the wait
/// passes a second, so a stalled scan explains itself.
fn busy(attempt: i32) -> bool {
    const STEP_MS: u64 = 50;
    let waited = attempt.max(0) as u64 * STEP_MS;
    let limit = WAIT_MS.load(std::sync::atomic::Ordering::Relaxed);
    if waited == 1000 {
        eprintln!(
            "cisleuth: note: the datastore is locked by another process; waiting up to {} s (--datastore-wait)",
            limit / 1000
        );
    }
    if waited >= limit {
        return false;
    }
    std::thread::sleep(std::time::Duration::from_millis(STEP_MS));
    true
}

/// What an SQLite file holds, from its tables and ids.
fn check_kind(db: &Connection, path: &Path) -> Result<i64> {
    let what = || path.display().to_string();
    let app: i32 = db
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .with_context(|| {
            format!(
                "{} is not a cisleuth datastore (not an SQLite file)",
                what()
            )
        })?;
    let version: i64 = db.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let mut stmt =
        db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")?;
    let tables: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if app == STATE_APPLICATION_ID || tables.iter().any(|t| t == "jobs") {
        bail!(
            "{} is a CircleCI resume state file (--state), not a datastore (--datastore)",
            what()
        );
    }
    let ours = tables.is_empty() || tables == ["findings", "occurrences"];
    if (app != 0 && app != APPLICATION_ID) || !ours {
        bail!(
            "{} is not a cisleuth datastore: it holds tables {} (another program's database?)",
            what(),
            tables.join(", ")
        );
    }
    if version > SCHEMA_VERSION {
        bail!(
            "{} has datastore schema {version}, newer than this cisleuth reads ({SCHEMA_VERSION}); use a newer cisleuth",
            what()
        );
    }
    let check: String = db
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .with_context(|| format!("{} is damaged", what()))?;
    if check != "ok" {
        bail!("{} is damaged (SQLite: {check})", what());
    }
    Ok(version)
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

impl Store {
    /// Open or create the datastore at `path` for a scan; a write waits up to `wait` for
    /// another process's lock.
    pub fn open(path: &Path, store_secrets: bool, wait: std::time::Duration) -> Result<Store> {
        WAIT_MS.store(
            wait.as_millis().min(u64::MAX as u128) as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        // Mode 0600 always: even without --store-secrets the file holds an unsalted SHA-256 of
        // each secret, which brute-forces quickly for short passwords.
        crate::source::create_private(path)
            .with_context(|| format!("cannot create {} with mode 0600", path.display()))?;
        let db = Connection::open(path)
            .with_context(|| format!("cannot open datastore {}", path.display()))?;
        db.busy_handler(Some(busy))?;
        let version = check_kind(&db, path)?;
        db.execute_batch("PRAGMA journal_mode = WAL;")
            .with_context(|| format!("cannot open datastore {}", path.display()))?;
        migrate(&db, version).with_context(|| {
            format!(
                "cannot bring datastore {} to schema {SCHEMA_VERSION}",
                path.display()
            )
        })?;
        Ok(Store {
            db,
            store_secrets,
            pending: Vec::new(),
            last_flush: std::time::Instant::now(),
        })
    }

    /// Open a datastore a scan wrote, for reading (`writable` false: `report`, `baseline
    /// create`; a read-only file or folder is fine) or for triage and tickets. A missing path
    /// is an error (a typo must not read as "0 findings"), and so is a file that is not a
    /// cisleuth datastore (a resume state file, say).
    pub fn open_existing(path: &Path, writable: bool) -> Result<Store> {
        if !path.is_file() {
            bail!(
                "no datastore at {}: give the file a scan wrote with --datastore",
                path.display()
            );
        }
        use rusqlite::OpenFlags as F;
        let flags = if writable {
            F::SQLITE_OPEN_READ_WRITE | F::SQLITE_OPEN_NO_MUTEX
        } else {
            F::SQLITE_OPEN_READ_ONLY | F::SQLITE_OPEN_NO_MUTEX
        };
        let mut db = Connection::open_with_flags(path, flags)
            .with_context(|| format!("cannot open datastore {}", path.display()))?;
        db.busy_handler(Some(busy))?;
        let version = match check_kind(&db, path) {
            Ok(v) => v,
            // A WAL file in a folder this user cannot write (a copy handed to a responder,
            // a read-only mount) cannot be opened for reading the usual way; opened as
            // immutable it can.
            Err(_) if !writable => {
                let uri = format!(
                    "file:{}?immutable=1",
                    path.display()
                        .to_string()
                        .replace('%', "%25")
                        .replace('?', "%3f")
                        .replace('#', "%23")
                );
                db = Connection::open_with_flags(uri, flags | F::SQLITE_OPEN_URI)
                    .with_context(|| format!("cannot open datastore {}", path.display()))?;
                check_kind(&db, path)?
            }
            Err(e) => return Err(e),
        };
        if version == 0 && !has_findings_table(&db) {
            bail!(
                "{} is not a cisleuth datastore (an empty file); give the file a scan wrote with --datastore",
                path.display()
            );
        }
        // Reading an older schema needs no migration while the tables are the same.
        if writable {
            migrate(&db, version)?;
        }
        let store_secrets = db
            .query_row(
                "SELECT count(*) FROM findings WHERE secret IS NOT NULL",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .unwrap_or(false);
        Ok(Store {
            db,
            store_secrets,
            pending: Vec::new(),
            last_flush: std::time::Instant::now(),
        })
    }

    /// Record one reported finding: buffered, committed with its batch ([`Store::flush`] runs
    /// every `BATCH` findings or `FLUSH_EVERY`). An error here is a batch that could not be
    /// committed; its findings stay buffered for the next attempt.
    pub fn record(&mut self, f: &Finding) -> Result<()> {
        let secret = self
            .store_secrets
            .then(|| String::from_utf8_lossy(f.secret.expose()).into_owned());
        self.pending.push(Row {
            fingerprint: f.fingerprint.clone(),
            rule_id: f.rule_id.clone(),
            rule_name: f.rule_name.clone(),
            severity: f.severity.to_string(),
            confidence: f.confidence.to_string(),
            redacted: f.redacted(),
            remediation: f.remediation.clone(),
            sha256: hex(&Sha256::digest(f.secret.expose())),
            secret,
            location: serde_json::to_string(&f.location)?,
            at: now(),
        });
        if self.pending.len() >= BATCH || self.last_flush.elapsed() >= FLUSH_EVERY {
            self.flush()?;
        }
        Ok(())
    }

    /// Findings recorded but not committed yet.
    pub fn unwritten(&self) -> usize {
        self.pending.len()
    }

    /// Commit every buffered finding in one transaction. On failure they stay buffered.
    pub fn flush(&mut self) -> Result<()> {
        self.last_flush = std::time::Instant::now();
        if self.pending.is_empty() {
            return Ok(());
        }
        // Immediate: take the write lock first (waiting in the busy handler), so the batch
        // never fails half-way on a lock another writer took after it started reading.
        let tx = self
            .db
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut finding = tx.prepare_cached(
                "INSERT INTO findings (fingerprint, rule_id, rule_name, severity, confidence, redacted,
                   remediation, secret_sha256, secret, first_seen, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)
                 ON CONFLICT(fingerprint) DO UPDATE SET last_seen = ?10,
                   secret = COALESCE(excluded.secret, findings.secret)",
            )?;
            let mut occurrence = tx.prepare_cached(
                "INSERT INTO occurrences (fingerprint, location, first_seen, last_seen) VALUES (?1, ?2, ?3, ?3)
                 ON CONFLICT(fingerprint, location) DO UPDATE SET last_seen = ?3",
            )?;
            for r in &self.pending {
                finding.execute(params![
                    r.fingerprint,
                    r.rule_id,
                    r.rule_name,
                    r.severity,
                    r.confidence,
                    r.redacted,
                    r.remediation,
                    r.sha256,
                    r.secret,
                    r.at
                ])?;
                occurrence.execute(params![r.fingerprint, r.location, r.at])?;
            }
        }
        tx.commit()?;
        self.pending.clear();
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

/// Move `db` from schema `from` to [`SCHEMA_VERSION`] in one transaction and mark it ours.
fn migrate(db: &Connection, from: i64) -> Result<()> {
    if from >= SCHEMA_VERSION {
        return Ok(());
    }
    let mut sql = String::from("BEGIN IMMEDIATE;");
    for step in &MIGRATIONS[from as usize..] {
        sql.push_str(step);
    }
    sql.push_str(&format!(
        "PRAGMA user_version = {SCHEMA_VERSION}; PRAGMA application_id = {APPLICATION_ID}; COMMIT;"
    ));
    db.execute_batch(&sql).inspect_err(|_| {
        let _ = db.execute_batch("ROLLBACK;");
    })?;
    Ok(())
}

fn has_findings_table(db: &Connection) -> bool {
    db.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'findings'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .is_ok_and(|n| n == 1)
}

fn severity_of(s: &str) -> Severity {
    match s {
        "critical" => Severity::Critical,
        "high" => Severity::High,
        "medium" => Severity::Medium,
        _ => Severity::Low,
    }
}
