//! Provenance: where an input came from (a file, stdin, an archive member, a CircleCI step,
//! config or artifact). Sources build it; findings, the datastore and every report carry it.
//! It is a leaf of the source stage so that a source never imports a later stage (Nosey
//! Parker's `provenance.rs` is the same idea). The serialised form is `location` in
//! docs/OUTPUT.md: the `source` tag plus the variant's fields.

use serde::{Deserialize, Serialize};

/// Where the input came from. Later sources add variants here; the serialised form is the
/// `source` tag plus the variant's fields, inside `location`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "lowercase")]
pub enum Origin {
    /// A file on disk (`path` as given or found by walking).
    File { path: String },
    /// Standard input.
    Stdin,
    /// Something CircleCI printed or stored for a job: a step's output or command, the job's
    /// config, or an artifact. Exactly one of `step`, `config`, `artifact` says which.
    #[serde(rename = "circleci")]
    CircleCi(Box<CircleCiPlace>),
}

/// Provenance of a CircleCI input (see `docs/OUTPUT.md`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CircleCiPlace {
    /// Project slug (`gh/acme/api`, `circleci/<org>/<project>`).
    pub project: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline_number: Option<u64>,
    /// Workflow name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
    /// Job name.
    pub job: String,
    pub job_number: u64,
    /// Step name (step output and `bash_command`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_id: Option<u64>,
    /// Parallel run (`action.index`, or the artifact's `node_index`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_index: Option<u64>,
    /// True when the text is the step's command (`bash_command`) rather than its output.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub bash_command: bool,
    /// True for the job's configuration (`circle_yml`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub config: bool,
    /// Artifact path, with `!/member` for files inside an archive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
    /// The job's page in the CircleCI web app.
    pub url: String,
}

impl Origin {
    /// A short human name for the input.
    pub fn display_name(&self) -> String {
        match self {
            Origin::File { path } => path.clone(),
            Origin::Stdin => "<stdin>".to_string(),
            Origin::CircleCi(p) => {
                let mut s = format!("{} job {} #{}", p.project, p.job, p.job_number);
                if let Some(step) = &p.step {
                    s.push_str(&format!(" step {step:?}"));
                    if p.bash_command {
                        s.push_str(" (command)");
                    }
                } else if p.config {
                    s.push_str(" config");
                } else if let Some(a) = &p.artifact {
                    s.push_str(&format!(" artifact {a}"));
                }
                if let Some(n) = p.node_index.filter(|&n| n > 0) {
                    s.push_str(&format!(" node {n}"));
                }
                s
            }
        }
    }
}
