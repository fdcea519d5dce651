//! CircleCI API shapes (v1.1 and v2) and slugs, as the real service sends them
//! (`../shared/reference/circleci-api.md`): snake_case keys, with the spec's kebab-case
//! spellings accepted too; every field that is sometimes absent or null is optional.

use serde::Deserialize;

/// A v2 list page: `{"items": [...], "next_page_token": "..." | null}`.
#[derive(Debug, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    #[serde(default, alias = "next-page-token")]
    pub next_page_token: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Pipeline {
    pub id: String,
    pub number: u64,
    #[serde(alias = "project-slug")]
    pub project_slug: String,
    #[serde(alias = "created-at")]
    pub created_at: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Workflow {
    pub id: String,
    pub name: String,
    #[serde(default, alias = "pipeline-number")]
    pub pipeline_number: Option<u64>,
    #[serde(default, alias = "project-slug")]
    pub project_slug: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Job {
    pub name: String,
    /// Absent or null for approval jobs and jobs that never ran.
    #[serde(default, alias = "job-number")]
    pub job_number: Option<u64>,
    #[serde(default, alias = "project-slug")]
    pub project_slug: Option<String>,
}

/// v1.1 `/projects` item.
#[derive(Debug, Clone, Deserialize)]
pub struct V1Project {
    #[serde(default, alias = "vcs-type")]
    pub vcs_type: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub reponame: Option<String>,
    #[serde(default, alias = "vcs-url")]
    pub vcs_url: Option<String>,
}

/// v1.1 build details.
#[derive(Debug, Clone, Deserialize)]
pub struct Build {
    #[serde(default)]
    pub build_url: Option<String>,
    /// `queued`, `not_running`, `running` or `finished`.
    #[serde(default)]
    pub lifecycle: Option<String>,
    #[serde(default)]
    pub steps: Vec<Step>,
    #[serde(default)]
    pub circle_yml: Option<CircleYml>,
    #[serde(default)]
    pub workflows: Option<BuildWorkflow>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CircleYml {
    #[serde(default)]
    pub string: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BuildWorkflow {
    #[serde(default)]
    pub workflow_id: Option<String>,
    #[serde(default)]
    pub workflow_name: Option<String>,
    #[serde(default)]
    pub job_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Step {
    pub name: String,
    #[serde(default)]
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Action {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub index: u64,
    #[serde(default)]
    pub step: u64,
    #[serde(default)]
    pub output_url: Option<String>,
    #[serde(default)]
    pub has_output: Option<bool>,
    #[serde(default)]
    pub bash_command: Option<String>,
}

/// v2 artifact.
#[derive(Debug, Clone, Deserialize)]
pub struct Artifact {
    pub path: String,
    #[serde(default, alias = "node-index")]
    pub node_index: u64,
    pub url: String,
}

/// `vcs/org/repo` in v2 form, with `gh`/`bb` short names.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slug {
    pub vcs: String,
    pub org: String,
    pub repo: String,
}

impl Slug {
    /// Parse `gh/acme/api`, `github/acme/api`, `bb/...`, `circleci/<org>/<project>`.
    pub fn parse(s: &str) -> Option<Slug> {
        let mut parts = s.trim_matches('/').splitn(3, '/');
        let (vcs, org, repo) = (parts.next()?, parts.next()?, parts.next()?);
        if [vcs, org, repo].iter().any(|p| p.is_empty()) || repo.contains('/') {
            return None;
        }
        let vcs = match vcs {
            "github" | "gh" => "gh",
            "bitbucket" | "bb" => "bb",
            "circleci" => "circleci",
            "gitlab" => "gitlab",
            _ => return None,
        };
        Some(Slug {
            vcs: vcs.into(),
            org: org.into(),
            repo: repo.into(),
        })
    }

    /// The v1.1 path form: `github/acme/api`.
    pub fn v1(&self) -> String {
        let vcs = match self.vcs.as_str() {
            "gh" => "github",
            "bb" => "bitbucket",
            other => other,
        };
        format!("{vcs}/{}/{}", enc(&self.org), enc(&self.repo))
    }

    /// The v2 path form: `gh/acme/api` (each segment escaped, slashes kept: CircleCI Server
    /// does not route encoded slashes).
    pub fn v2(&self) -> String {
        format!("{}/{}/{}", self.vcs, enc(&self.org), enc(&self.repo))
    }

    /// v2 org slug: `gh/acme`.
    pub fn org_slug(&self) -> String {
        format!("{}/{}", self.vcs, self.org)
    }

    /// From a v1.1 `/projects` item: `vcs_type` + `username` + `reponame`, or, for
    /// GitHub-App and GitLab projects, `vcs_url` `//circleci.com/<org-id>/<project-id>`.
    pub fn from_v1_project(p: &V1Project) -> Option<Slug> {
        if p.vcs_type.as_deref() == Some("circleci") {
            let url = p.vcs_url.as_deref()?;
            let mut it = url
                .trim_start_matches("https:")
                .trim_start_matches("//")
                .split('/');
            let _host = it.next()?;
            return Slug::parse(&format!("circleci/{}/{}", it.next()?, it.next()?));
        }
        let vcs = p.vcs_type.as_deref().unwrap_or("github");
        Slug::parse(&format!(
            "{vcs}/{}/{}",
            p.username.as_deref()?,
            p.reponame.as_deref()?
        ))
    }
}

impl std::fmt::Display for Slug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.vcs, self.org, self.repo)
    }
}

/// Percent-escape one path segment (everything but unreserved characters).
pub fn enc(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        let s = Slug::parse("github/acme/api").unwrap();
        assert_eq!(s.to_string(), "gh/acme/api");
        assert_eq!(s.v1(), "github/acme/api");
        assert_eq!(s.org_slug(), "gh/acme");
        assert_eq!(Slug::parse("bb/a/b").unwrap().v1(), "bitbucket/a/b");
        let c = Slug::parse("circleci/DrNsW5SW6K42zooKCzkVek/TR2eS1FtBshdqkgqtiiaDa").unwrap();
        assert_eq!(
            c.v1(),
            "circleci/DrNsW5SW6K42zooKCzkVek/TR2eS1FtBshdqkgqtiiaDa"
        );
        assert_eq!(Slug::parse("gh/a b/c").unwrap().v2(), "gh/a%20b/c");
        for bad in ["gh/acme", "svn/a/b", "gh//b", "gh/a/b/c"] {
            assert!(Slug::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn v1_projects_to_slugs() {
        let p: V1Project = serde_json::from_str(
            r#"{"vcs_type":"github","username":"acme","reponame":"api","vcs_url":"https://github.com/acme/api"}"#,
        )
        .unwrap();
        assert_eq!(
            Slug::from_v1_project(&p).unwrap().to_string(),
            "gh/acme/api"
        );
        let p: V1Project = serde_json::from_str(
            r#"{"vcs_type":"circleci","vcs_url":"//circleci.com/68129642-b377-4bd1-a534-a94d01d2db25/d5e87839-c1ac-45d0-a6c1-986f8faeabd5"}"#,
        )
        .unwrap();
        assert_eq!(
            Slug::from_v1_project(&p).unwrap().to_string(),
            "circleci/68129642-b377-4bd1-a534-a94d01d2db25/d5e87839-c1ac-45d0-a6c1-986f8faeabd5"
        );
    }

    #[test]
    fn spec_spellings_are_accepted() {
        let j: Job =
            serde_json::from_str(r#"{"name":"approve","job-number":null,"type":"approval"}"#)
                .unwrap();
        assert_eq!(j.job_number, None);
        let p: Page<Artifact> = serde_json::from_str(
            r#"{"items":[{"path":"a.txt","node-index":1,"url":"https://x/a"}],"next-page-token":"t"}"#,
        )
        .unwrap();
        assert_eq!(p.items[0].node_index, 1);
        assert_eq!(p.next_page_token.as_deref(), Some("t"));
    }
}
