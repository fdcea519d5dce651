//! What a scan reports: a rule's match turned into a self-contained record with a stable
//! fingerprint and a location.
//!
//! The fingerprint is location-free (hex SHA-256 of the rule id, a NUL byte, and the secret),
//! so the same secret printed in 40 builds or two files has one fingerprint in every build of
//! cisleuth, which is what baselines and ticket de-duplication key on.
//!
//! The raw secret lives only in [`Secret`], whose `Debug` redacts; a report asks for it with
//! [`Secret::expose`] and only when the user passed `--show-secrets`.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::detect::evidence::Evidence;
use crate::detect::Match;
use crate::rules::{Confidence, Rule, Severity};
use crate::source::origin::Origin;

/// Secret bytes. `Debug` never shows them.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret(bytes)
    }

    /// The raw secret. Call only where the user asked to see secrets.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes redacted>)", self.0.len())
    }
}

/// Hex SHA-256 of `rule_id`, a NUL byte and `secret`.
pub fn fingerprint(rule_id: &str, secret: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(rule_id.as_bytes());
    h.update([0u8]);
    h.update(secret);
    hex(&h.finalize())
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// A redacted form that lets a person recognise a secret without revealing it: the token's
/// public format prefix (`ghp_`, `xoxb-`, `AKIA`: a rule's `redact_prefix`, or letters up to
/// the first `_` or `-`), an ellipsis, and the last four characters. At most a third of the
/// secret's own characters (after the prefix) is shown: a short secret shows only its prefix,
/// and under 12 characters nothing of itself.
pub fn redact(secret: &[u8], prefix_len: Option<usize>) -> String {
    // A PEM block: the header line names the key type and is not secret; the body is.
    if secret.starts_with(b"-----BEGIN ") {
        if let Some(end) = memchr::memmem::find(&secret[11..], b"-----") {
            return format!("{}…", String::from_utf8_lossy(&secret[..11 + end + 5]));
        }
    }
    let text = String::from_utf8_lossy(secret);
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    if n < 8 {
        return "…".to_string();
    }
    let prefix = match prefix_len {
        Some(p) => p.min(n / 3),
        // A format prefix is letters (`ghp_`, `glpat-`, `sk_live_`); digits before a `-` are
        // the secret's own (a UUID's first group).
        None => chars
            .iter()
            .take(12)
            .position(|&c| c == '_' || c == '-')
            .filter(|&i| {
                chars[..i]
                    .iter()
                    .all(|c| c.is_ascii_alphabetic() || *c == '_')
            })
            .map(|i| i + 1)
            .filter(|&p| p <= n / 3)
            .unwrap_or(0),
    };
    let head: String = chars[..prefix].iter().collect();
    let own = n - prefix;
    if own < 12 {
        return format!("{head}…");
    }
    let tail: String = chars[n - 4..].iter().collect();
    format!("{head}…{tail}")
}

/// A place in an input: 1-based line (counting `\n`) and column (characters since the last
/// `\n` or `\r`), in the normalised text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Location {
    #[serde(flatten)]
    pub origin: Arc<Origin>,
    pub line: u64,
    pub column: u64,
    /// `out` or `err` for CircleCI step output (from the message's `type`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<&'static str>,
}

/// The second half of a paired credential (an AWS secret key next to its key id).
#[derive(Clone, Debug)]
pub struct Paired {
    pub rule_id: String,
    pub secret: Secret,
    pub fingerprint: String,
    pub line: u64,
    pub column: u64,
    pub redact_prefix: Option<usize>,
}

/// One reported occurrence of a secret.
#[derive(Clone, Debug)]
pub struct Finding {
    pub rule_id: String,
    pub rule_name: String,
    pub severity: Severity,
    pub confidence: Confidence,
    pub remediation: String,
    pub redact_prefix: Option<usize>,
    pub secret: Secret,
    pub fingerprint: String,
    pub entropy: f32,
    pub checksum_valid: Option<bool>,
    /// The evidence features that decided `confidence` (`key:strong`, `value:random`, ...).
    pub evidence: Evidence,
    pub location: Location,
    /// Byte offsets `[start, end)` of the secret in the normalised input (after escape removal
    /// and step-JSON decoding); for a decoded secret, of the encoded run that holds it.
    pub span: (u64, u64),
    /// Encodings peeled off to reach the secret, outermost first (empty for plain text).
    pub decoded: Vec<&'static str>,
    pub pair: Option<Box<Paired>>,
    /// The redacted form when the secret itself is not at hand (a finding read back from the
    /// datastore, which keeps only its hash).
    pub shown: Option<String>,
}

impl Finding {
    /// A finding of `rule` for `secret` at `location`.
    pub fn new(rule: &Rule, secret: Vec<u8>, location: Location) -> Finding {
        Finding {
            rule_id: rule.id.clone(),
            rule_name: rule.name.clone(),
            severity: rule.severity,
            confidence: rule.confidence,
            remediation: rule.remediation.clone(),
            // A catch-all rule's value has no public prefix: all of it is secret.
            redact_prefix: rule.redact_prefix.or(rule.generic.then_some(0)),
            fingerprint: fingerprint(&rule.id, &secret),
            secret: Secret::new(secret),
            entropy: 0.0,
            checksum_valid: None,
            evidence: Evidence::default(),
            location,
            span: (0, 0),
            decoded: Vec::new(),
            pair: None,
            shown: None,
        }
    }

    /// A finding for engine match `m` of `rule` in `hay`, reported at `location`.
    pub fn from_match(rule: &Rule, m: &Match, hay: &[u8], location: Location) -> Finding {
        let mut f = Finding::new(rule, hay[m.secret_start..m.secret_end].to_vec(), location);
        f.entropy = m.entropy;
        f.checksum_valid = m.checksum_valid;
        f.confidence = m.confidence;
        f.evidence = m.evidence;
        f
    }

    /// The redacted form of the secret.
    pub fn redacted(&self) -> String {
        match &self.shown {
            Some(s) => s.clone(),
            None => redact(self.secret.expose(), self.redact_prefix),
        }
    }
}

impl Location {
    /// Read back a serialised location (as stored in the datastore).
    pub fn from_json(v: &serde_json::Value) -> Option<Location> {
        let origin: Origin = serde_json::from_value(v.clone()).ok()?;
        Some(Location {
            origin: Arc::new(origin),
            line: v["line"].as_u64()?,
            column: v["column"].as_u64()?,
            stream: match v["stream"].as_str() {
                Some("out") => Some("out"),
                Some("err") => Some("err"),
                _ => None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_sha256_of_rule_nul_secret() {
        // printf 'github-pat\0ghp_abc' | sha256sum
        assert_eq!(
            fingerprint("github-pat", b"ghp_abc"),
            "2cc6aae5df5444fe03dd0cd9aea742e1b6d03fc33473291c8850a736483d0113"
        );
        assert_ne!(fingerprint("a", b"bc"), fingerprint("ab", b"c"));
        assert_eq!(fingerprint("a", b"x").len(), 64);
    }

    #[test]
    fn redaction_keeps_prefix_and_last_four() {
        assert_eq!(
            redact(b"ghp_Zq3kYb8TfW2mN5rXc7vH1jL9pD4sGa1Qa1B2", None),
            "ghp_…a1B2"
        );
        assert_eq!(redact(b"AKIAZ7Q3K2M4N5P6WXYZ", Some(4)), "AKIA…WXYZ");
        assert_eq!(redact(b"hunter2", None), "…");
        // At most a third of a secret shows.
        assert_eq!(redact(b"pass_word1", None), "…");
        assert_eq!(redact(b"hunter2-abcd", Some(0)), "…abcd");
        assert_eq!(redact(b"hunter2-abcd", None), "…abcd");
        assert_eq!(redact(b"plainsecretvalue", None), "…alue");
        assert_eq!(
            redact(b"a035343f-e922-40b3-aa3c-06b3ea635c48", None),
            "…5c48"
        );
        assert_eq!(redact(b"zaM3ywFV", Some(0)), "…");
        assert_eq!(
            redact(
                b"-----BEGIN RSA PRIVATE KEY-----\nMIIEsecret\n-----END RSA PRIVATE KEY-----",
                None
            ),
            "-----BEGIN RSA PRIVATE KEY-----…"
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let s = Secret::new(b"ghp_topsecret".to_vec());
        assert!(!format!("{s:?}").contains("topsecret"));
    }
}
