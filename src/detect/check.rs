//! Rule self-tests: every rule's examples must be found, through the same normaliser and
//! engine a scan uses, and none of its negative examples. `cisleuth rules check` and the test suite both call
//! [`check`], so a rule file that ships has passed it.

use super::{Engine, Match};
use crate::normalise::strip_ansi;
use crate::rules::{Confidence, Rule};

/// Counts of what [`check`] ran.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Checked {
    pub rules: usize,
    pub examples: usize,
    pub negative_examples: usize,
}

/// Check `rules` as one set. Returns what was checked, or every problem found, one line each
/// naming the rule and the example.
pub fn check(rules: Vec<Rule>) -> Result<Checked, Vec<String>> {
    let engine = match Engine::new(rules) {
        Ok(e) => e,
        Err(e) => return Err(vec![format!("{e:#}")]),
    };
    let mut problems = Vec::new();
    // Every regex compiles (a scan compiles them on first use, and must not fail then).
    for rule in engine.rules() {
        if let Err(e) = rule.regex.force() {
            problems.push(format!("{} ({}): bad regex: {e}", rule.id, rule.origin));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut counts = Checked {
        rules: engine.rules().len(),
        ..Checked::default()
    };
    let mut scratch = engine.scratch();
    let mut found: Vec<Match> = Vec::new();
    for (idx, rule) in engine.rules().iter().enumerate() {
        for (n, ex) in rule.examples.iter().enumerate() {
            counts.examples += 1;
            found.clear();
            let text = strip_ansi(ex.text.as_bytes());
            engine.scan(&text, &mut scratch, &mut found);
            engine.pair_up(&text, &mut found);
            let mine: Vec<&Match> = found.iter().filter(|m| m.rule == idx).collect();
            let secrets: Vec<&[u8]> = mine
                .iter()
                .map(|m| &text[m.secret_start..m.secret_end])
                .collect();
            if let Some(m) = mine
                .iter()
                .find(|m| &text[m.secret_start..m.secret_end] == ex.secret.as_bytes())
            {
                // Another provider's rule reporting the same secret names the wrong service
                // to revoke: refused unless either rule declares the overlap.
                for other in &found {
                    let o = &engine.rules()[other.rule];
                    let overlapping =
                        other.secret_start < m.secret_end && m.secret_start < other.secret_end;
                    if other.rule == idx
                        || !overlapping
                        || o.generic
                        || other.confidence < Confidence::Medium
                        || o.provider == rule.provider
                        || rule.overlaps.contains(&o.id)
                        || o.overlaps.contains(&rule.id)
                    {
                        continue;
                    }
                    problems.push(format!(
                        "{} ({}): example {} {:?} is also found by {} ({}), of another provider; make the formats exclusive or declare `overlaps = [{:?}]`",
                        rule.id,
                        rule.origin,
                        n + 1,
                        ex.text,
                        o.id,
                        o.provider.as_deref().unwrap_or("no provider"),
                        o.id
                    ));
                }
                // Without a stated confidence, an example must be reported by default
                // (medium), or at the rule's own confidence if that is lower.
                let ok = match ex.confidence {
                    Some(want) => m.confidence == want,
                    None => m.confidence >= rule.confidence.min(Confidence::Medium),
                };
                if !ok {
                    problems.push(format!(
                        "{} ({}): example {} {:?} was found at confidence {} ({}), not {}",
                        rule.id,
                        rule.origin,
                        n + 1,
                        ex.text,
                        m.confidence,
                        m.evidence.names().join(", "),
                        ex.confidence.map_or_else(
                            || format!("{} or more", rule.confidence.min(Confidence::Medium)),
                            |c| c.to_string()
                        ),
                    ));
                }
            } else {
                let got: Vec<String> = secrets
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect();
                let keyword = rule
                    .keywords
                    .iter()
                    .any(|k| ex.text.to_ascii_lowercase().contains(k.as_str()));
                problems.push(format!(
                    "{} ({}): example {} {:?} did not yield {:?} (found {:?}{})",
                    rule.id,
                    rule.origin,
                    n + 1,
                    ex.text,
                    ex.secret,
                    got,
                    if keyword {
                        ""
                    } else {
                        "; it contains none of the rule's keywords"
                    }
                ));
            }
        }
        for (n, neg) in rule.negative_examples.iter().enumerate() {
            counts.negative_examples += 1;
            found.clear();
            let text = strip_ansi(neg.as_bytes());
            engine.scan(&text, &mut scratch, &mut found);
            if let Some(m) = found.iter().find(|m| m.rule == idx) {
                problems.push(format!(
                    "{} ({}): negative example {} {:?} matched {:?}",
                    rule.id,
                    rule.origin,
                    n + 1,
                    neg,
                    String::from_utf8_lossy(&text[m.secret_start..m.secret_end])
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(counts)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{builtin, parse_file};

    /// The shipped rules pass their own examples (the same check as `cisleuth rules check`).
    #[test]
    fn builtin_rules_pass_their_examples() {
        let rules = builtin().unwrap();
        assert!(rules.len() >= 80, "only {} rules", rules.len());
        match check(rules) {
            Ok(c) => assert!(c.examples >= c.rules && c.negative_examples >= c.rules),
            Err(problems) => panic!("{} problems:\n{}", problems.len(), problems.join("\n")),
        }
    }

    #[test]
    fn an_example_found_at_another_confidence_is_reported() {
        let text = r#"
[[rules]]
id = "demo"
name = "Demo"
description = "d"
keywords = ["demo_"]
regex = '(?P<secret>demo_[a-z]{8})'
severity = "low"
confidence = "medium"
remediation = "r"
examples = [{ text = "demo_abcdefgh", secret = "demo_abcdefgh", confidence = "high" }, { text = "demo_abcdefgi", secret = "demo_abcdefgi" }]
negative_examples = ["demo_abcdefgz"]
"#;
        let problems = check(parse_file(text, "t.toml").unwrap()).unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("example 1") && problems[0].contains("at confidence medium"));
        assert!(problems[0].contains("not high"), "{problems:?}");
        assert!(problems[1].contains("negative example 1"));
    }

    #[test]
    fn a_failing_example_is_reported_with_its_rule() {
        let text = r#"
[[rules]]
id = "demo"
name = "Demo"
description = "d"
keywords = ["demo_"]
regex = '(?P<secret>demo_[a-z]{8})'
severity = "low"
confidence = "low"
remediation = "r"
examples = [{ text = "demo_abcdefgh", secret = "demo_abcdefgh" }, { text = "nokeyword", secret = "x" }]
negative_examples = ["demo_abcdefgz"]
"#;
        let problems = check(parse_file(text, "t.toml").unwrap()).unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].contains("example 2")
                && problems[0].contains("none of the rule's keywords")
        );
        assert!(problems[1].contains("negative example 1"));
    }

    #[test]
    fn an_example_another_providers_rule_also_finds_is_reported() {
        let text = |overlaps: &str| {
            format!(
                r#"
[[rules]]
id = "acme-key"
name = "Acme"
provider = "Acme"
description = "d"
keywords = ["key_"]
regex = '(?P<secret>key_[a-z]{{8}})\b'
severity = "low"
confidence = "high"
remediation = "r"
examples = [{{ text = "key_abcdefgh", secret = "key_abcdefgh" }}]
negative_examples = ["key_abc"]
{overlaps}

[[rules]]
id = "other-key"
name = "Other"
provider = "Other"
description = "d"
keywords = ["key_"]
regex = '(?P<secret>key_[a-z]{{8,9}})'
severity = "low"
confidence = "high"
remediation = "r"
examples = [{{ text = "key_abcdefghi", secret = "key_abcdefghi" }}]
negative_examples = ["key_abc"]
"#
            )
        };
        let problems = check(parse_file(&text(""), "t.toml").unwrap()).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("acme-key") && problems[0].contains("also found by other-key"),
            "{problems:?}"
        );
        let declared = text(r#"overlaps = ["other-key"]"#);
        assert!(check(parse_file(&declared, "t.toml").unwrap()).is_ok());
    }
}
