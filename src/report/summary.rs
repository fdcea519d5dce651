//! The scan's result: counts every format ends with, the stderr summary line, and what
//! decides the exit code (`failing`, `output_failed`, `interrupted`).

use serde::Serialize;

/// Totals of a scan, printed on stderr and included in the JSON document.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Inputs scanned (files, stdin).
    pub inputs: u64,
    /// Raw bytes read.
    pub bytes: u64,
    pub elapsed_secs: f64,
    pub findings: u64,
    /// Inputs that could not be read completely.
    pub errors: u64,
    /// Inputs not scanned (over `--max-file-size` or `--max-artifact-size`).
    pub skipped: u64,
    /// Executables and images, recognised by content and not scanned (by design: this does
    /// not make the scan incomplete).
    #[serde(skip_serializing_if = "is_zero")]
    pub not_scanned: u64,
    /// CircleCI jobs fetched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jobs: Option<u64>,
    /// CircleCI jobs skipped because the resume state says they were finished.
    #[serde(skip_serializing_if = "is_zero")]
    pub jobs_already_scanned: u64,
    /// Findings not printed because an earlier run with the same state reported them.
    #[serde(skip_serializing_if = "is_zero")]
    pub previously_reported: u64,
    /// HTTP requests made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    /// Findings suppressed by `--baseline`.
    #[serde(skip_serializing_if = "is_zero")]
    pub baselined: u64,
    /// Findings below `--min-confidence`: not reported, kept nowhere, not counted in the
    /// exit code.
    #[serde(skip_serializing_if = "is_zero")]
    pub below_confidence: u64,
    /// Findings (reported now or by an earlier run) at or above `--fail-on`: these decide the
    /// exit code.
    #[serde(skip)]
    pub failing: u64,
    /// The output could not be written (or its reader went away): the scan stopped and its
    /// exit code is 2 whatever was found.
    #[serde(skip)]
    pub output_failed: bool,
    /// What policy (`.cisleuth.toml`, `--config`, inline allows) removed from the scan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<crate::config::PolicyEffect>,
    /// Stopped by Ctrl-C or SIGTERM: incomplete.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Summary {
    /// Throughput in MiB/s.
    pub fn mib_per_sec(&self) -> f64 {
        if self.elapsed_secs <= 0.0 {
            return 0.0;
        }
        self.bytes as f64 / 1048576.0 / self.elapsed_secs
    }

    /// The one-line summary printed on stderr.
    pub fn line(&self) -> String {
        let jobs = match self.jobs {
            Some(j) => format!(" from {j} job{}", if j == 1 { "" } else { "s" }),
            None => String::new(),
        };
        let mut s = format!(
            "scanned {} input{}{jobs} ({:.1} MiB) in {:.2} s ({:.1} MiB/s): {} finding{}",
            self.inputs,
            if self.inputs == 1 { "" } else { "s" },
            self.bytes as f64 / 1048576.0,
            self.elapsed_secs,
            self.mib_per_sec(),
            self.findings,
            if self.findings == 1 { "" } else { "s" },
        );
        if self.errors > 0 {
            s.push_str(&format!(
                ", {} error(s): the scan is incomplete",
                self.errors
            ));
        }
        if self.interrupted {
            s.push_str(", interrupted: the scan is incomplete");
        }
        if self.skipped > 0 {
            s.push_str(&format!(", {} input(s) skipped", self.skipped));
        }
        if self.not_scanned > 0 {
            s.push_str(&format!(
                ", {} executable or image file(s) not scanned",
                self.not_scanned
            ));
        }
        if self.baselined > 0 {
            s.push_str(&format!(
                ", {} known finding(s) in the baseline",
                self.baselined
            ));
        }
        if self.jobs_already_scanned > 0 {
            s.push_str(&format!(
                ", {} job(s) already scanned by an earlier run",
                self.jobs_already_scanned
            ));
        }
        if self.previously_reported > 0 {
            s.push_str(&format!(
                ", {} finding(s) reported by an earlier run",
                self.previously_reported
            ));
        }
        if self.below_confidence > 0 {
            s.push_str(&format!(
                ", {} more below the confidence shown (see them with --min-confidence low)",
                self.below_confidence
            ));
        }
        s
    }
}
