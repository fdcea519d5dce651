//! `.cisleuth.toml`: per-repository policy for the gates a pre-merge check needs. Found in the
//! working directory, or given with `--config`; absent means no policy.
//!
//! ```toml
//! [rules]
//! disable = ["generic-secret-assignment"]   # rule ids not to run
//! dirs = ["ci/secret-rules"]                # extra rule directories (like --rules)
//! entropy = { "generic-secret-assignment" = 4.0 }   # per-rule min_entropy overrides
//!
//! [paths]
//! ignore = ["**/node_modules/**", "vendor/**"]     # inputs never scanned (globs)
//!
//! [[allow]]                                  # findings to drop; every given field must match
//! description = "test fixtures use this fake key"
//! secret = '^AKIAZZZZ'                       # regex on the secret
//! line = 'fixtures/'                         # regex on the line holding it
//! rules = ["aws-access-key-id"]              # only these rules (default: all)
//! ```
//!
//! Besides the file, a line containing `cisleuth:allow` is never reported (an inline allow, like
//! `gitleaks:allow`), so a deliberate test value can be marked where it is.
//!
//! In a pre-merge check the working directory is the code under test: a change can add a
//! `.cisleuth.toml` that disables every rule or ignores `**`, and a log line can carry
//! `cisleuth:allow`. Policy cannot be made safe from its author, so it is made visible: the
//! summary names every rule the policy disabled, replaced or weakened and counts the inputs
//! and matches it dropped ([`PolicyEffect`]), and `--no-repo-config` (or `--config` with a
//! file from outside the checkout) pins policy for a gate.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use globset::{Glob, GlobSet, GlobSetBuilder};
use regex::bytes::Regex;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::rules::Rule;

/// The marker that allows every finding on its line.
pub const INLINE_ALLOW: &[u8] = b"cisleuth:allow";

/// The file name looked for in the working directory.
pub const FILE_NAME: &str = ".cisleuth.toml";

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    rules: RulesSection,
    #[serde(default)]
    paths: PathsSection,
    #[serde(default)]
    allow: Vec<AllowSyntax>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RulesSection {
    #[serde(default)]
    disable: Vec<String>,
    #[serde(default)]
    dirs: Vec<PathBuf>,
    #[serde(default)]
    entropy: HashMap<String, f32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PathsSection {
    #[serde(default)]
    ignore: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowSyntax {
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    line: Option<String>,
    #[serde(default)]
    rules: Vec<String>,
}

/// One allowlist entry: a finding matching every given part is dropped.
#[derive(Clone, Debug)]
pub struct Allow {
    pub secret: Option<Regex>,
    pub line: Option<Regex>,
    pub rules: Vec<String>,
}

impl Allow {
    /// Whether a finding of `rule_id` for `secret` on `line` is allowed.
    pub fn matches(&self, rule_id: &str, secret: &[u8], line: &[u8]) -> bool {
        (self.rules.is_empty() || self.rules.iter().any(|r| r == rule_id))
            && matches_if_given(&self.secret, secret)
            && matches_if_given(&self.line, line)
    }
}

/// An absent regex matches everything.
fn matches_if_given(re: &Option<Regex>, hay: &[u8]) -> bool {
    re.as_ref().is_none_or(|re| re.is_match(hay))
}

/// What policy dropped during a scan, counted as it happens (workers share it).
#[derive(Debug, Default)]
pub struct Tally {
    pub ignored_inputs: AtomicU64,
    pub allowed_by_entries: AtomicU64,
    pub allowed_inline: AtomicU64,
}

/// What the policy took away from a scan, for the summary (JSON: `summary.policy`).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct PolicyEffect {
    /// The policy file, if one was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Read from the working directory (the checkout, in a pre-merge check), not `--config`.
    pub from_working_directory: bool,
    pub disabled_rules: Vec<String>,
    /// Built-in rules that the policy's `rules.dirs` redefined.
    pub replaced_rules: Vec<String>,
    /// Rules whose `min_entropy` the policy set.
    pub entropy_overrides: Vec<String>,
    pub ignored_inputs: u64,
    pub allowed_by_entries: u64,
    /// Matches on lines marked `cisleuth:allow` (in any input).
    pub allowed_inline: u64,
}

impl PolicyEffect {
    /// Whether the policy removed anything from this scan.
    pub fn removed_anything(&self) -> bool {
        !self.disabled_rules.is_empty()
            || !self.replaced_rules.is_empty()
            || !self.entropy_overrides.is_empty()
            || self.ignored_inputs + self.allowed_by_entries + self.allowed_inline > 0
    }

    /// One line for stderr.
    pub fn line(&self) -> String {
        let mut parts = Vec::new();
        let list = |v: &[String]| v.join(", ");
        if !self.disabled_rules.is_empty() {
            parts.push(format!("rules disabled: {}", list(&self.disabled_rules)));
        }
        if !self.replaced_rules.is_empty() {
            parts.push(format!(
                "built-in rules redefined: {}",
                list(&self.replaced_rules)
            ));
        }
        if !self.entropy_overrides.is_empty() {
            parts.push(format!(
                "entropy set for: {}",
                list(&self.entropy_overrides)
            ));
        }
        if self.ignored_inputs > 0 {
            parts.push(format!(
                "{} input(s) ignored by [paths]",
                self.ignored_inputs
            ));
        }
        if self.allowed_by_entries > 0 {
            parts.push(format!(
                "{} match(es) allowed by [[allow]]",
                self.allowed_by_entries
            ));
        }
        if self.allowed_inline > 0 {
            parts.push(format!(
                "{} match(es) on lines marked cisleuth:allow",
                self.allowed_inline
            ));
        }
        let whose = match (&self.file, self.from_working_directory) {
            (Some(f), true) => {
                format!("policy {f} from the working directory (pin policy with --no-repo-config)")
            }
            (Some(f), false) => format!("policy {f}"),
            (None, _) => "policy".to_string(),
        };
        format!("{whose} removed from this scan: {}", parts.join("; "))
    }
}

/// The loaded policy.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Where it came from (None: no file).
    pub source: Option<PathBuf>,
    /// Found in the working directory rather than named with `--config`.
    pub from_working_directory: bool,
    /// Built-in rule ids a policy rule directory redefined (set by [`Config::apply`]).
    pub replaced: Vec<String>,
    /// What was dropped so far.
    pub tally: std::sync::Arc<Tally>,
    pub disable: Vec<String>,
    pub rule_dirs: Vec<PathBuf>,
    pub entropy: HashMap<String, f32>,
    pub ignore: Option<GlobSet>,
    pub allow: Vec<Allow>,
}

impl Config {
    /// `--config FILE` if given, else `.cisleuth.toml` in the working directory if present
    /// and `repo_config` (false with `--no-repo-config`).
    pub fn load(explicit: Option<&Path>, repo_config: bool) -> Result<Config> {
        let (path, implicit) = match explicit {
            Some(p) => (p.to_path_buf(), false),
            None => {
                let p = PathBuf::from(FILE_NAME);
                if !repo_config || !p.exists() {
                    return Ok(Config::default());
                }
                (p, true)
            }
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read config {}", path.display()))?;
        let mut c = Config::parse(&text, &path)?;
        c.from_working_directory = implicit;
        Ok(c)
    }

    /// What this policy removed from the scan so far.
    pub fn effect(&self) -> PolicyEffect {
        let mut entropy: Vec<String> = self.entropy.keys().cloned().collect();
        entropy.sort();
        PolicyEffect {
            file: self.source.as_ref().map(|p| p.display().to_string()),
            from_working_directory: self.from_working_directory,
            disabled_rules: self.disable.clone(),
            replaced_rules: self.replaced.clone(),
            entropy_overrides: entropy,
            ignored_inputs: self.tally.ignored_inputs.load(Ordering::Relaxed),
            allowed_by_entries: self.tally.allowed_by_entries.load(Ordering::Relaxed),
            allowed_inline: self.tally.allowed_inline.load(Ordering::Relaxed),
        }
    }

    /// Parse a config file's text; relative rule dirs are relative to the file.
    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        let ctx = || format!("config {}", path.display());
        let file: ConfigFile = toml::from_str(text).with_context(ctx)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let ignore = if file.paths.ignore.is_empty() {
            None
        } else {
            let mut b = GlobSetBuilder::new();
            for g in &file.paths.ignore {
                b.add(Glob::new(g).with_context(|| format!("{}: bad glob {g:?}", ctx()))?);
            }
            Some(b.build().with_context(ctx)?)
        };
        let mut allow = Vec::new();
        for (i, a) in file.allow.into_iter().enumerate() {
            if a.secret.is_none() && a.line.is_none() && a.rules.is_empty() {
                bail!(
                    "{}: [[allow]] entry {} matches everything; give secret, line or rules",
                    ctx(),
                    i + 1
                );
            }
            let re = |p: &Option<String>| {
                p.as_deref()
                    .map(|p| {
                        crate::rules::check_pattern_size(p)
                            .and_then(|()| {
                                Ok(regex::bytes::RegexBuilder::new(p)
                                    .size_limit(8 << 20)
                                    .nest_limit(64)
                                    .build()?)
                            })
                            .with_context(|| {
                                format!("{}: [[allow]] entry {}: bad regex", ctx(), i + 1)
                            })
                    })
                    .transpose()
            };
            allow.push(Allow {
                secret: re(&a.secret)?,
                line: re(&a.line)?,
                rules: a.rules,
            });
        }
        for (id, e) in &file.rules.entropy {
            if !(0.0..=8.0).contains(e) {
                bail!(
                    "{}: entropy for {id:?} must be a number from 0 to 8 bits per byte, not {e}",
                    ctx()
                );
            }
        }
        Ok(Config {
            source: Some(path.to_path_buf()),
            from_working_directory: false,
            replaced: Vec::new(),
            tally: Default::default(),
            disable: file.rules.disable,
            rule_dirs: file.rules.dirs.iter().map(|d| base.join(d)).collect(),
            entropy: file.rules.entropy,
            ignore,
            allow,
        })
    }

    /// Remove disabled rules and apply entropy overrides; unknown ids are an error (a typo
    /// must not silently leave a rule on).
    pub fn apply(&mut self, rules: &mut Vec<Rule>) -> Result<()> {
        let builtin: Vec<String> = crate::rules::builtin()?.into_iter().map(|r| r.id).collect();
        self.replaced = rules
            .iter()
            .filter(|r| builtin.contains(&r.id))
            .filter(|r| {
                self.rule_dirs
                    .iter()
                    .any(|d| Path::new(&r.origin).starts_with(d))
            })
            .map(|r| r.id.clone())
            .collect();
        for id in self.disable.iter().chain(self.entropy.keys()) {
            if !rules.iter().any(|r| &r.id == id) {
                bail!(
                    "config {}: unknown rule id {id:?}",
                    self.source.as_deref().unwrap_or(Path::new("?")).display()
                );
            }
        }
        rules.retain(|r| !self.disable.contains(&r.id));
        for r in rules.iter_mut() {
            if let Some(&e) = self.entropy.get(&r.id) {
                r.min_entropy = Some(e);
            }
        }
        Ok(())
    }

    /// Whether an input at `path` is excluded by `[paths] ignore`.
    /// Counted when true: call it once per input.
    pub fn ignored(&self, path: &Path) -> bool {
        let hit = self.ignore.as_ref().is_some_and(|g| g.is_match(path));
        if hit {
            self.tally.ignored_inputs.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }

    /// Whether a finding is allowed (inline marker or an `[[allow]]` entry). Counted when
    /// true: call it once per match.
    pub fn allows(&self, rule_id: &str, secret: &[u8], line: &[u8]) -> bool {
        let counter = if memchr::memmem::find(line, INLINE_ALLOW).is_some() {
            &self.tally.allowed_inline
        } else if self.allow.iter().any(|a| a.matches(rule_id, secret, line)) {
            &self.tally.allowed_by_entries
        } else {
            return false;
        };
        counter.fetch_add(1, Ordering::Relaxed);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"
[rules]
disable = ["generic-secret-assignment"]
entropy = { "github-pat" = 5.5 }
dirs = ["more-rules"]

[paths]
ignore = ["**/node_modules/**"]

[[allow]]
secret = '^AKIAZZ'
rules = ["aws-access-key-id"]

[[allow]]
line = 'fixtures/'
"#;

    #[test]
    fn parses_and_applies() {
        let mut c = Config::parse(TEXT, Path::new("/repo/.cisleuth.toml")).unwrap();
        assert_eq!(c.rule_dirs, vec![PathBuf::from("/repo/more-rules")]);
        let mut rules = crate::rules::builtin().unwrap();
        let n = rules.len();
        c.apply(&mut rules).unwrap();
        assert_eq!(rules.len(), n - 1);
        assert_eq!(
            rules
                .iter()
                .find(|r| r.id == "github-pat")
                .unwrap()
                .min_entropy,
            Some(5.5)
        );
        assert!(c.ignored(Path::new("web/node_modules/x/build.log")));
        assert!(!c.ignored(Path::new("web/build.log")));
        assert!(c.allows("aws-access-key-id", b"AKIAZZ000", b"x"));
        assert!(!c.allows("github-pat", b"AKIAZZ000", b"x"));
        assert!(c.allows("github-pat", b"ghp_x", b"see fixtures/keys"));
        assert!(c.allows("github-pat", b"ghp_x", b"token ghp_x # cisleuth:allow"));
        assert!(!c.allows("github-pat", b"ghp_x", b"token ghp_x"));
    }

    #[test]
    fn refuses_bad_configs() {
        for (text, want) in [
            ("[rules]\ndisable = [\"no-such-rule\"]", "unknown rule id"),
            ("[[allow]]\ndescription = \"all\"", "matches everything"),
            ("[[allow]]\nsecret = '('", "bad regex"),
            ("[paths]\nignore = ['a/{']", "bad glob"),
            ("[rulez]", "unknown field"),
        ] {
            let r = Config::parse(text, Path::new("c.toml"))
                .and_then(|mut c| c.apply(&mut crate::rules::builtin().unwrap()));
            let e = format!("{:#}", r.unwrap_err());
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn no_file_is_no_policy() {
        let c = Config::default();
        assert!(!c.allows("x", b"s", b"line"));
        assert!(c.allows("x", b"s", b"line cisleuth:allow"));
    }
}
