//! Resume state for long CircleCI scans (`--state FILE`).
//!
//! An incident scan of a whole organisation's history can run for hours; when it is
//! interrupted (Ctrl-C, `kill -9`, a reboot) the re-run must not start over nor report a
//! finding twice. The state is a SQLite file (WAL, so a process killed mid-write leaves the
//! last committed transaction intact): the jobs whose every input was scanned, and each
//! reported occurrence (fingerprint plus location). A job counts as finished only after all
//! its findings were written, so a job cut short is scanned again and only its new
//! occurrences are reported.
//!
//! An occurrence is recorded right after it is written and flushed to the output. A SIGKILL
//! in the instant between the two repeats that one finding on resume; recording first would
//! instead lose it if the kill came before the write, and losing a leaked secret is worse.

use std::path::Path;

use anyhow::{Context, Result};
use rusqlite::{params, Connection, OptionalExtension};

/// `PRAGMA application_id` of a resume state file ("csLS"; a datastore is "csLD").
pub const APPLICATION_ID: i32 = 0x6373_4c53;

/// An open state file.
pub struct State {
    db: Connection,
}

impl State {
    /// Open or create the state file at `path`.
    pub fn open(path: &Path) -> Result<State> {
        // Mode 0600: it names every job and finding location of the scope.
        crate::source::create_private(path)
            .with_context(|| format!("cannot create {} with mode 0600", path.display()))?;
        let db = Connection::open(path)
            .with_context(|| format!("cannot open state file {}", path.display()))?;
        // A datastore given as a state file (or any other SQLite file) is refused, not
        // grown extra tables.
        let tables: Vec<String> = db
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
            .with_context(|| {
                format!(
                    "{} is not a cisleuth state file (not an SQLite file)",
                    path.display()
                )
            })?;
        if tables.iter().any(|t| t == "findings") {
            anyhow::bail!(
                "{} is a findings datastore (--datastore), not a resume state file (--state)",
                path.display()
            );
        }
        if !(tables.is_empty() || tables == ["jobs", "occurrences"]) {
            anyhow::bail!(
                "{} is not a cisleuth state file: it holds tables {}",
                path.display(),
                tables.join(", ")
            );
        }
        db.execute_batch(&format!("PRAGMA application_id = {};", APPLICATION_ID))?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS jobs (key TEXT PRIMARY KEY, finished_at INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS occurrences (key TEXT PRIMARY KEY, job TEXT NOT NULL);",
        )
        .with_context(|| format!("{} is not a cisleuth state file", path.display()))?;
        Ok(State { db })
    }

    /// Keys of the jobs finished in earlier runs.
    pub fn finished_jobs(&self) -> Result<std::collections::HashSet<String>> {
        let mut stmt = self.db.prepare("SELECT key FROM jobs")?;
        let keys = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<_, _>>()?;
        Ok(keys)
    }

    /// Record an occurrence; false if it was recorded before (already reported).
    pub fn record_occurrence(&self, key: &str, job: &str) -> Result<bool> {
        let n = self.db.execute(
            "INSERT OR IGNORE INTO occurrences (key, job) VALUES (?1, ?2)",
            params![key, job],
        )?;
        Ok(n == 1)
    }

    /// Occurrences recorded in jobs that are finished (what a re-run that skips those jobs
    /// reported earlier).
    pub fn reported_in_finished_jobs(&self) -> Result<u64> {
        let n: i64 = self.db.query_row(
            "SELECT count(*) FROM occurrences WHERE job IN (SELECT key FROM jobs)",
            [],
            |r| r.get(0),
        )?;
        Ok(n.max(0) as u64)
    }

    /// Whether an occurrence was recorded by this or an earlier run.
    pub fn is_recorded(&self, key: &str) -> Result<bool> {
        Ok(self
            .db
            .query_row(
                "SELECT 1 FROM occurrences WHERE key = ?1",
                params![key],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Mark a job finished.
    pub fn finish_job(&self, key: &str) -> Result<()> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.db.execute(
            "INSERT OR REPLACE INTO jobs (key, finished_at) VALUES (?1, ?2)",
            params![key, now],
        )?;
        Ok(())
    }

    /// Whether `key` is finished (for tests and diagnostics).
    pub fn is_finished(&self, key: &str) -> Result<bool> {
        Ok(self
            .db
            .query_row(
                "SELECT 1 FROM jobs WHERE key = ?1",
                params![key],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_reopen() {
        let dir = tempfile::TempDir::new().unwrap();
        let p = dir.path().join("state.db");
        {
            let s = State::open(&p).unwrap();
            assert!(s.record_occurrence("a", "job1").unwrap());
            assert!(!s.record_occurrence("a", "job1").unwrap());
            s.finish_job("job1").unwrap();
        }
        let s = State::open(&p).unwrap();
        assert!(s.is_finished("job1").unwrap());
        assert!(!s.is_finished("job2").unwrap());
        assert!(!s.record_occurrence("a", "job1").unwrap());
        assert_eq!(s.finished_jobs().unwrap().len(), 1);
    }

    #[test]
    fn refuses_a_non_database() {
        let dir = tempfile::TempDir::new().unwrap();
        let p = dir.path().join("x");
        std::fs::write(&p, b"this is not sqlite, it is a text file of some length").unwrap();
        assert!(State::open(&p).is_err());
    }
}
