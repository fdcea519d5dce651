//! Rules are data: TOML files of `[[rules]]` entries, embedded from `patterns/` at build
//! time and extended or overridden by `--rules DIR` at run time.
//!
//! A rule is only accepted if the engine can use it safely: it has prefilter keywords (a
//! rule without them would have to run its regex over every byte), its regex compiles with
//! exactly one capture group named `secret`, and it carries at least one positive and one
//! negative example. Whether the examples really behave is checked by
//! [`crate::detect::check::check`], which runs
//! them through the whole engine (prefilter, window, regex, entropy, placeholder filter), so
//! a keyword that never occurs in a rule's own example is caught too. `cargo test` and
//! `cisleuth rules check` both call it.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};
use include_dir::{include_dir, Dir};
use regex::bytes::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

static BUILTIN: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/patterns");

/// How bad a leak of this credential type is.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Low,
    Medium,
    High,
    Critical,
}

/// How sure the rule is that a match is a real credential rather than a look-alike.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash,
)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    #[default]
    Low,
    Medium,
    High,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        })
    }
}

impl fmt::Display for Confidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        })
    }
}

/// Offline checksum a rule's secret can be verified against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Checksum {
    /// GitHub's and npm's token format: `prefix_` + 30 random base62 characters + the CRC32 of
    /// those 30 characters in 6 base62 digits (github.blog, 2021-04-05).
    Crc32Base62,
}

/// Another rule whose match, when found within `within_lines` of this one, is folded into this
/// rule's finding (an AWS access key id and its secret key, for example).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairSpec {
    pub rule: String,
    #[serde(default = "default_pair_lines")]
    pub within_lines: u32,
}

fn default_pair_lines() -> u32 {
    5
}

/// A positive example: text that must yield `secret` for this rule.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    pub text: String,
    pub secret: String,
    /// The confidence the finding must have; absent: `medium` or more (reported by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<Confidence>,
}

/// How a rule's matches are scored beyond its own `confidence` (see `detect::evidence`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EvidenceModel {
    /// The regex captures a `key` name, a `sep`arator and the `secret` value of an
    /// assignment; the key's name, where it stands and the value's shape decide.
    Assignment,
}

/// The on-disk shape of a rule (what users write).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSyntax {
    pub id: String,
    pub name: String,
    /// Who issues the credential (where it is revoked): `rules list` groups by it.
    #[serde(default)]
    pub provider: Option<String>,
    pub description: String,
    #[serde(default)]
    pub keywords: Vec<String>,
    pub regex: String,
    #[serde(default)]
    pub min_entropy: Option<f32>,
    pub severity: Severity,
    pub confidence: Confidence,
    pub remediation: String,
    #[serde(default)]
    pub examples: Vec<Example>,
    #[serde(default)]
    pub negative_examples: Vec<String>,
    /// Regexes on the secret: a match of any of them drops the candidate (stop words).
    #[serde(default)]
    pub allowlist: Vec<String>,
    #[serde(default)]
    pub checksum: Option<Checksum>,
    /// The match may span lines (PEM blocks): the window runs past line ends.
    #[serde(default)]
    pub multiline: bool,
    /// A catch-all rule (assignments, URLs, auth headers): its match is dropped where a
    /// specific rule reports an overlapping secret, so one credential is one finding.
    #[serde(default)]
    pub generic: bool,
    #[serde(default)]
    pub pair: Option<PairSpec>,
    /// How many leading characters of the secret redaction may show (default: a `prefix_`).
    #[serde(default)]
    pub redact_prefix: Option<usize>,
    /// Score matches with an evidence model (`"assignment"`) instead of the rule's confidence.
    #[serde(default)]
    pub evidence: Option<EvidenceModel>,
    /// With `pair`: the confidence of a match whose partner is not nearby (an identifier
    /// alone, such as an AWS access key id without its secret).
    #[serde(default)]
    pub unpaired_confidence: Option<Confidence>,
    /// Regexes on the line before the secret: a match means the secret stands where it is not
    /// a credential (an AWS key id in a presigned URL's `X-Amz-Credential=`), and it is dropped.
    #[serde(default)]
    pub ignore_after: Vec<String>,
    /// Rules of other providers that may find this rule's examples too, deliberately (a
    /// token format two services share); `rules check` refuses any other overlap.
    #[serde(default)]
    pub overlaps: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    rules: Vec<RuleSyntax>,
}

/// A validated, compiled rule.
#[derive(Clone, Debug)]
pub struct Rule {
    pub id: String,
    pub name: String,
    /// Who issues the credential; `None` for catch-all rules (generic, keys, URLs).
    pub provider: Option<String>,
    pub description: String,
    pub keywords: Vec<String>,
    pub regex: LazyRegex,
    pub secret_group: usize,
    pub min_entropy: Option<f32>,
    pub severity: Severity,
    pub confidence: Confidence,
    pub remediation: String,
    pub examples: Vec<Example>,
    pub negative_examples: Vec<String>,
    pub allowlist: Vec<Regex>,
    pub checksum: Option<Checksum>,
    pub multiline: bool,
    pub generic: bool,
    pub pair: Option<PairSpec>,
    pub redact_prefix: Option<usize>,
    pub evidence: Option<EvidenceModel>,
    /// Capture group indices of `key` and `sep` (rules with `evidence = "assignment"`).
    pub key_groups: Option<(usize, usize)>,
    pub unpaired_confidence: Option<Confidence>,
    pub ignore_after: Vec<Regex>,
    pub overlaps: Vec<String>,
    /// Where the rule was loaded from (`builtin:aws.toml` or a path).
    pub origin: String,
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// Compile a rule regex the way the engine runs it: bytes, Unicode off (ASCII classes, `.`
/// matches any byte but `\n`), so invalid UTF-8 and non-ASCII log text never push the regex
/// off its fast DFA path. A rule that wants Unicode can say `(?u)`.
fn compile(pattern: &str) -> Result<Regex> {
    check_pattern_size(pattern)?;
    Ok(RegexBuilder::new(pattern)
        .unicode(false)
        .size_limit(32 << 20)
        .nest_limit(64)
        .build()?)
}

/// A rule's regex, compiled on first use. With 450 rules, compiling every regex up front
/// took longer than scanning a 100 MiB log and held 50 MiB; a scan only ever runs the rules
/// whose keywords it meets. Loading still parses the pattern (syntax, capture groups), and
/// `rules check` (and the test suite, for the built-ins) compiles every one.
pub struct LazyRegex {
    pattern: String,
    cell: OnceLock<Regex>,
}

impl LazyRegex {
    /// Parse `pattern` as [`compile`] would and return its capture group names, groups 1.. in
    /// order; the compile itself waits for [`LazyRegex::get`].
    fn parse(pattern: &str) -> Result<(LazyRegex, Vec<Option<String>>)> {
        check_pattern_size(pattern)?;
        let hir = regex_syntax::ParserBuilder::new()
            .unicode(false)
            .utf8(false)
            .nest_limit(64)
            .build()
            .parse(pattern)?;
        fn walk(h: &regex_syntax::hir::Hir, out: &mut Vec<(u32, Option<String>)>) {
            use regex_syntax::hir::HirKind;
            match h.kind() {
                HirKind::Capture(c) => {
                    out.push((c.index, c.name.as_deref().map(str::to_string)));
                    walk(&c.sub, out);
                }
                HirKind::Concat(v) | HirKind::Alternation(v) => v.iter().for_each(|x| walk(x, out)),
                HirKind::Repetition(r) => walk(&r.sub, out),
                _ => {}
            }
        }
        let mut groups = Vec::new();
        walk(&hir, &mut groups);
        groups.sort_by_key(|g| g.0);
        let lazy = LazyRegex {
            pattern: pattern.to_string(),
            cell: OnceLock::new(),
        };
        Ok((lazy, groups.into_iter().map(|g| g.1).collect()))
    }

    /// The compiled regex (compiled now if this is its first use).
    pub fn get(&self) -> &Regex {
        self.cell.get_or_init(|| {
            compile(&self.pattern)
                .expect("rule regexes are compiled by `rules check` and the tests")
        })
    }

    /// Compile now: an error if the pattern parses but does not compile (over the size limit).
    pub fn force(&self) -> Result<()> {
        if self.cell.get().is_none() {
            let _ = self.cell.set(compile(&self.pattern)?);
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.pattern
    }
}

impl Clone for LazyRegex {
    fn clone(&self) -> Self {
        LazyRegex {
            pattern: self.pattern.clone(),
            cell: self.cell.clone(),
        }
    }
}

impl fmt::Debug for LazyRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LazyRegex").field(&self.pattern).finish()
    }
}

/// The longest regex a rule or policy may have, in bytes. The longest built-in one is about
/// 300; a pattern of megabytes (a generated list, a hostile policy file) is refused before
/// the regex compiler spends time and memory on it.
pub const MAX_PATTERN: usize = 4096;

/// Refuse a regex longer than [`MAX_PATTERN`] before compiling it.
pub fn check_pattern_size(pattern: &str) -> Result<()> {
    if pattern.len() > MAX_PATTERN {
        bail!(
            "the regex is {} bytes long; at most {MAX_PATTERN} are allowed (split it into rules)",
            pattern.len()
        );
    }
    Ok(())
}

impl Rule {
    /// Validate and compile one rule; `origin` names its file in errors.
    pub fn compile(syntax: RuleSyntax, origin: &str) -> Result<Rule> {
        let id = syntax.id.clone();
        let ctx = || format!("rule {id:?} in {origin}");
        if !valid_id(&syntax.id) {
            bail!("{}: id must be kebab-case (a-z, 0-9, single dashes)", ctx());
        }
        let keywords: Vec<String> = syntax
            .keywords
            .iter()
            .map(|k| k.to_ascii_lowercase())
            .collect();
        if keywords.is_empty() || keywords.iter().any(|k| k.is_empty()) {
            bail!(
                "{}: a rule needs non-empty `keywords` so the prefilter can select it",
                ctx()
            );
        }
        let (regex, names) =
            LazyRegex::parse(&syntax.regex).with_context(|| format!("{}: bad regex", ctx()))?;
        let secret_groups = names
            .iter()
            .filter(|n| n.as_deref() == Some("secret"))
            .count();
        if secret_groups != 1 {
            bail!(
                "{}: regex must have exactly one capture group named `secret` (found {secret_groups})",
                ctx()
            );
        }
        if names.iter().any(|n| n.is_none()) {
            bail!(
                "{}: unnamed capture groups are not allowed; use (?:...) or name them",
                ctx()
            );
        }
        let group = |name: &str| {
            names
                .iter()
                .position(|n| n.as_deref() == Some(name))
                .map(|i| i + 1)
        };
        let secret_group = group("secret").expect("counted above");
        if syntax.examples.is_empty() {
            bail!("{}: at least one entry in `examples` is required", ctx());
        }
        if syntax.negative_examples.is_empty() {
            bail!(
                "{}: at least one entry in `negative_examples` is required",
                ctx()
            );
        }
        if syntax.remediation.trim().is_empty() {
            bail!("{}: `remediation` must say how to revoke or rotate", ctx());
        }
        if let Some(e) = syntax.min_entropy {
            if !(0.0..=8.0).contains(&e) {
                bail!(
                    "{}: min_entropy must be between 0 and 8 bits per byte",
                    ctx()
                );
            }
        }
        let allowlist = syntax
            .allowlist
            .iter()
            .map(|p| compile(p).with_context(|| format!("{}: bad allowlist regex {p:?}", ctx())))
            .collect::<Result<Vec<_>>>()?;
        let key_groups = match syntax.evidence {
            Some(EvidenceModel::Assignment) => match (group("key"), group("sep")) {
                (Some(k), Some(s)) => Some((k, s)),
                _ => bail!(
                    "{}: evidence = \"assignment\" needs capture groups named `key` and `sep`",
                    ctx()
                ),
            },
            None => None,
        };
        if syntax.unpaired_confidence.is_some() && syntax.pair.is_none() {
            bail!("{}: `unpaired_confidence` needs `pair`", ctx());
        }
        let ignore_after = syntax
            .ignore_after
            .iter()
            .map(|p| compile(p).with_context(|| format!("{}: bad ignore_after regex {p:?}", ctx())))
            .collect::<Result<Vec<_>>>()?;
        Ok(Rule {
            id: syntax.id,
            name: syntax.name,
            provider: syntax.provider,
            description: syntax.description,
            keywords,
            regex,
            secret_group,
            min_entropy: syntax.min_entropy,
            severity: syntax.severity,
            confidence: syntax.confidence,
            remediation: syntax.remediation,
            examples: syntax.examples,
            negative_examples: syntax.negative_examples,
            allowlist,
            checksum: syntax.checksum,
            multiline: syntax.multiline,
            generic: syntax.generic,
            pair: syntax.pair,
            redact_prefix: syntax.redact_prefix,
            evidence: syntax.evidence,
            key_groups,
            unpaired_confidence: syntax.unpaired_confidence,
            ignore_after,
            overlaps: syntax.overlaps,
            origin: origin.to_string(),
        })
    }
}

/// Parse one TOML rule file. Duplicate ids within the file are refused.
pub fn parse_file(text: &str, origin: &str) -> Result<Vec<Rule>> {
    let file: RuleFile =
        toml::from_str(text).with_context(|| format!("cannot parse rule file {origin}"))?;
    file.rules
        .into_iter()
        .map(|r| Rule::compile(r, origin))
        .collect()
}

/// Add `rules` to `set`, refusing an id that `set` already has unless `replace` is true.
pub(crate) fn merge(set: &mut Vec<Rule>, rules: Vec<Rule>, replace: bool) -> Result<()> {
    let mut index: HashMap<String, usize> = set
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.clone(), i))
        .collect();
    for rule in rules {
        match index.get(&rule.id) {
            Some(&i) if replace => set[i] = rule,
            Some(&i) => bail!(
                "duplicate rule id {:?} in {} (already defined in {})",
                rule.id,
                rule.origin,
                set[i].origin
            ),
            None => {
                index.insert(rule.id.clone(), set.len());
                set.push(rule);
            }
        }
    }
    Ok(())
}

/// The rules compiled into the binary, from `patterns/*.toml`.
pub fn builtin() -> Result<Vec<Rule>> {
    let mut files: Vec<_> = BUILTIN
        .files()
        .filter(|f| f.path().extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort_by_key(|f| f.path().to_path_buf());
    let mut set = Vec::new();
    for f in files {
        let origin = format!("builtin:{}", f.path().display());
        let text = f
            .contents_utf8()
            .with_context(|| format!("{origin} is not UTF-8"))?;
        merge(&mut set, parse_file(text, &origin)?, false)?;
    }
    Ok(set)
}

/// Every `*.toml` rule file in `dir` (not recursive), sorted by name.
pub fn load_dir(dir: &Path) -> Result<Vec<Rule>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read rules directory {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("cannot read rules directory {}", dir.display()))?;
    paths.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    paths.sort();
    if paths.is_empty() {
        bail!("no *.toml rule files in {}", dir.display());
    }
    let mut set = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(&p)
            .with_context(|| format!("cannot read rule file {}", p.display()))?;
        let rules = parse_file(&text, &p.display().to_string())?;
        // A user's rules compile now: a regex over the size limit is an error at load, not
        // in the middle of a scan. (The built-ins are compiled by `rules check` and the tests.)
        for r in &rules {
            r.regex
                .force()
                .with_context(|| format!("rule {:?} in {}: bad regex", r.id, r.origin))?;
        }
        merge(&mut set, rules, false)?;
    }
    Ok(set)
}

/// The built-in rules with each of `dirs` layered on top (same id replaces).
pub fn load(dirs: &[PathBuf]) -> Result<Vec<Rule>> {
    let mut set = builtin()?;
    for d in dirs {
        let extra = load_dir(d)?;
        merge(&mut set, extra, true)?;
    }
    validate_pairs(&set)?;
    Ok(set)
}

pub(crate) fn validate_pairs(set: &[Rule]) -> Result<()> {
    for r in set {
        if let Some(p) = &r.pair {
            if !set.iter().any(|o| o.id == p.rule) {
                bail!(
                    "rule {:?} in {} pairs with unknown rule {:?}",
                    r.id,
                    r.origin,
                    p.rule
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `rules list` groups by provider: every shipped rule names one, except the catch-alls.
    #[test]
    fn builtin_rules_name_their_provider() {
        for r in builtin().unwrap() {
            let catch_all =
                r.origin.ends_with("generic.toml") || r.origin.ends_with("private-key.toml");
            assert!(
                catch_all || r.provider.as_deref().is_some_and(|p| !p.trim().is_empty()),
                "{} ({}) has no provider",
                r.id,
                r.origin
            );
        }
    }

    fn rule(extra: &str) -> String {
        format!(
            r#"[[rules]]
id = "demo-token"
name = "Demo"
description = "d"
regex = '(?P<secret>demo_[a-z0-9]{{8}})'
severity = "high"
confidence = "high"
remediation = "rotate it"
examples = [{{ text = "x demo_abcd1234", secret = "demo_abcd1234" }}]
negative_examples = ["demo_short"]
{extra}"#
        )
    }

    #[test]
    fn accepts_a_complete_rule() {
        let rules = parse_file(&rule("keywords = [\"DEMO_\"]"), "t").unwrap();
        assert_eq!(rules[0].keywords, vec!["demo_"]);
        assert_eq!(rules[0].secret_group, 1);
    }

    #[test]
    fn refuses_rule_without_keywords() {
        let err = parse_file(&rule(""), "t").unwrap_err();
        assert!(format!("{err:#}").contains("keywords"), "{err:#}");
    }

    #[test]
    fn refuses_missing_or_extra_groups() {
        let text = rule("keywords = [\"demo_\"]").replace("(?P<secret>", "(");
        assert!(format!("{:#}", parse_file(&text, "t").unwrap_err()).contains("secret"));
        let text = rule("keywords = [\"demo_\"]").replace("{8})", "{8})(x)?");
        assert!(format!("{:#}", parse_file(&text, "t").unwrap_err()).contains("unnamed"));
    }

    #[test]
    fn refuses_bad_ids_and_duplicates() {
        let text = rule("keywords = [\"demo_\"]").replace("demo-token", "Demo_Token");
        assert!(format!("{:#}", parse_file(&text, "t").unwrap_err()).contains("kebab"));
        let one = parse_file(&rule("keywords = [\"demo_\"]"), "a").unwrap();
        let mut set = one.clone();
        assert!(merge(&mut set, one.clone(), false).is_err());
        merge(&mut set, one, true).unwrap();
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn refuses_rules_without_examples() {
        let text =
            rule("keywords = [\"demo_\"]").replace("negative_examples = [\"demo_short\"]", "");
        assert!(format!("{:#}", parse_file(&text, "t").unwrap_err()).contains("negative"));
    }

    #[test]
    fn valid_ids() {
        assert!(valid_id("aws-access-key-id"));
        assert!(valid_id("npm2"));
        for bad in ["", "-a", "a-", "a--b", "A", "a_b", "a.b"] {
            assert!(!valid_id(bad), "{bad}");
        }
    }
}
