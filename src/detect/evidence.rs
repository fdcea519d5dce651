//! How sure a match is: the evidence model that turns a regex match into a confidence.
//!
//! A regex says "something of this shape stands here"; a person reading the log decides
//! whether it is a credential from more than that. They look at *where a key name stands* (an
//! `export`, an env dump, a YAML or JSON key, a `--password` flag, an HTTP header; not the
//! middle of a test name, a file path or a sentence), at *what the name says* (`DEPLOY_TOKEN`
//! and `api_key` name a credential; `token_file` names a file; a bare `token` could be
//! anything), and at *what the value looks like* (random characters of a credential's length,
//! not a version, a `file.py:123` reference, a Maven coordinate, a dotted identifier, a digest,
//! a UUID, a URL or a few words). This module writes those judgements down as named features
//! with points, so that each is tested on its own and the total is explainable: every finding
//! carries the names of the features that scored it ([`Evidence`]).
//!
//! Provider rules start from their rule's confidence (a `ghp_` prefix is evidence by itself)
//! and move with their own structural evidence: a valid checksum makes a match `high`, a
//! failed one costs a level. Rules with `evidence = "assignment"` (the generic detector) are
//! scored from the key, its place and the value: [`assess_assignment`].
//!
//! Nothing here names a log, a project or a line of a corpus: the features are about the
//! shape of text, so they carry over to logs they were never tried on.

use crate::rules::Confidence;

/// Names of the features that decided a match's confidence (a small bit set).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Evidence(u32);

macro_rules! features {
    ($($name:ident = $bit:expr, $text:expr;)*) => {
        impl Evidence {
            $(pub const $name: Evidence = Evidence(1 << $bit);)*
            const NAMES: &'static [(Evidence, &'static str)] = &[$((Evidence::$name, $text)),*];
        }
    };
}

features! {
    KEY_STRONG = 0, "key:strong";
    KEY_PLAIN = 1, "key:plain";
    KEY_WEAK = 2, "key:weak";
    AT_ASSIGNMENT = 3, "at:assignment";
    AT_FLAG = 4, "at:flag";
    AT_QUOTED_KEY = 5, "at:quoted-key";
    AT_LINE_START = 6, "at:line-start";
    AT_FIELD = 7, "at:field";
    VALUE_RANDOM = 8, "value:random";
    VALUE_MIXED = 9, "value:mixed";
    VALUE_PLAIN = 10, "value:plain";
    VALUE_HEX = 11, "value:hex";
    VALUE_UUID = 12, "value:uuid";
    CHECKSUM_VALID = 13, "checksum:valid";
    CHECKSUM_INVALID = 14, "checksum:invalid";
    FORMAT = 15, "format";
    UNPAIRED = 16, "unpaired";
    PAIRED = 17, "paired";
    DECODED_DIGEST = 18, "decoded:digest-shaped";
    VALUE_PLACEHOLDER_WORD = 19, "value:placeholder-word";
    KEY_NAMES_SERVICE = 20, "key:names-service";
    KEY_NAMES_SECRET = 21, "key:names-secret";
}

impl Evidence {
    /// Both sets.
    pub fn with(self, other: Evidence) -> Evidence {
        Evidence(self.0 | other.0)
    }

    /// Whether every feature of `other` is in the set.
    pub fn contains(self, other: Evidence) -> bool {
        self.0 & other.0 == other.0
    }

    /// The feature names, in a fixed order.
    pub fn names(self) -> Vec<&'static str> {
        Evidence::NAMES
            .iter()
            .filter(|(e, _)| self.0 & e.0 != 0)
            .map(|&(_, n)| n)
            .collect()
    }

    /// Read back names (a stored finding); unknown names are ignored.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Evidence {
        let mut e = Evidence::default();
        for n in names {
            if let Some((f, _)) = Evidence::NAMES.iter().find(|(_, t)| *t == n) {
                e = e.with(*f);
            }
        }
        e
    }
}

/// One level less sure (`low` stays `low`).
pub fn lower(c: Confidence) -> Confidence {
    match c {
        Confidence::High => Confidence::Medium,
        _ => Confidence::Low,
    }
}

/// A provider rule's match: the rule's confidence, moved by its checksum.
pub fn assess_format(base: Confidence, checksum_valid: Option<bool>) -> (Confidence, Evidence) {
    match checksum_valid {
        Some(true) => (
            Confidence::High,
            Evidence::FORMAT.with(Evidence::CHECKSUM_VALID),
        ),
        Some(false) => (
            lower(base),
            Evidence::FORMAT.with(Evidence::CHECKSUM_INVALID),
        ),
        None => (base, Evidence::FORMAT),
    }
}

/// A match of a catch-all rule whose regex fixes the key (a URL's password, an
/// `Authorization` header, `_authToken=`): the rule's confidence, unless the value is not a
/// secret's shape at all (a word, a reference, a path, escaped punctuation): then it is
/// dropped. A hex or UUID value keeps the rule's confidence here, because the fixed key says
/// what it is (npm's legacy tokens and many bearer tokens are UUIDs).
pub fn assess_generic_value(base: Confidence, value: &[u8]) -> Option<(Confidence, Evidence)> {
    match shape(value) {
        Shape::Not => None,
        _ => Some((base, Evidence::FORMAT)),
    }
}

/// Words that make a value a stand-in, whatever its shape: `Password123!`, `my-test-token-1`,
/// `example_secret_42`.
const PLACEHOLDER_WORDS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "example",
    "sample",
    "dummy",
    "placeholder",
    "changeme",
    "changeit",
    "fake",
    "test",
];

/// The parts of an assignment-shaped match (`KEY=value`, `"key": "value"`, `--key value`).
#[derive(Clone, Copy, Debug)]
pub struct Assignment<'a> {
    /// The line before the key.
    pub before: &'a [u8],
    /// The key name as written (`READ_ONLY_TOKEN`, `--password`, `-Dsonar.login`).
    pub key: &'a [u8],
    /// What joins key and value, with the spaces around it (`=`, `: `, ` `).
    pub sep: &'a [u8],
    /// The value (the candidate secret).
    pub value: &'a [u8],
}

/// What the key's name says about its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyName {
    /// Names a credential specifically: `DEPLOY_TOKEN`, `api_key`, `client_secret`, `password`.
    Strong,
    /// A bare or qualified-after word: `token`, `secret`, `TOKEN_PROD`.
    Plain,
    /// Could name many things: `pwd`, `credentials`.
    Weak,
    /// Names something about a credential, not the credential: `token_file`, `password_url`,
    /// `secretName`, `TOKEN_TYPE`; or no credential word at all (`tokenizer`).
    NotTheValue,
    /// Too long for a variable: a function or test name (`test_password_kwarg_works_for_auth`).
    Identifier,
}

/// Where the key stands on its line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// `KEY=value`, `KEY := value`, `key => value`, `?token=value`.
    Assignment,
    /// `--password value`, `--password=value`, `-Dx.password=value`.
    Flag,
    /// `"password": "value"`, `'token' => 'value'`.
    QuotedKey,
    /// `key: value` where the key starts the line (YAML, env dumps, HTTP headers).
    LineStart,
    /// `key: value` in the middle of a line (a log field, or a sentence).
    Field,
    /// Not a place a credential is assigned: inside a path (`/passwd_1:4.2`), an identifier
    /// (`a::token_x`, `botocore.credentials:file.py`), `key:value` without a space (a
    /// coordinate or a logger name), or a key followed by a word in prose.
    Not,
}

/// What the value looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Random characters of a credential's length: mixed classes, entropy near its maximum.
    Random,
    /// Password-like: letters with digits or symbols, 8+ characters, less random.
    Mixed,
    /// A weak value a person may still call a password (`Summer`, `hunter22`).
    Plain,
    /// Only hex digits: a digest, a git object id, a build id (or a hex token).
    Hex,
    /// A UUID.
    Uuid,
    /// Something else that is not a secret: a URL, a path, a file name, a version, a number
    /// or timestamp, `file.py:123`, a package coordinate, a dotted or `::` identifier, a
    /// template reference, a word or words.
    Not,
}

/// Credential words a key name is built from.
const CREDENTIAL_WORDS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "pass",
    "pwd",
    "secret",
    "secrets",
    "token",
    "apikey",
    "credential",
    "credentials",
];

/// Words after which `key` names a credential (`api_key`, `secret_key`, `private_key`).
const KEY_QUALIFIERS: &[&str] = &[
    "api",
    "access",
    "auth",
    "private",
    "secret",
    "signing",
    "encryption",
    "master",
    "client",
    "app",
    "license",
    "service",
    "account",
    "deploy",
    "ssh",
    "admin",
];

/// Words that, right before `token` (or `key`, `secret`), make it something other than a
/// credential: a page cursor (`nextPageToken`, `NextToken`, `continuation_token`), a CSRF or
/// form token, a cancellation or idempotency token, a lexer's token.
const NOT_A_CREDENTIAL_BEFORE: &[&str] = &[
    "page",
    "next",
    "prev",
    "previous",
    "continuation",
    "cursor",
    "pagination",
    "sync",
    "csrf",
    "xsrf",
    "antiforgery",
    "forgery",
    "verification",
    "cancellation",
    "cancel",
    "idempotency",
    "correlation",
    "trace",
    "lexer",
    "parser",
    "syntax",
    "nonce",
    "state",
    "cache",
    "public",
    "starting",
    "delta",
    "authenticity",
    "change",
    "lock",
    "resume",
    "resumption",
    "marker",
    "existing",
    "pull",
    "image",
    "hashed",
    "hash",
    "salted",
    "encrypted",
];

/// Services whose credentials CI jobs carry, as they appear in variable names
/// (`SAUCE_ACCESS_KEY`, `DANGER_GITHUB_API_TOKEN`, `CODECLIMATE_REPO_TOKEN`). Many of them issue
/// hex or UUID tokens, so a hex or UUID value under a name that names one is a credential's
/// shape, not a digest's.
const SERVICE_WORDS: &[&str] = &[
    "github",
    "gh",
    "gitlab",
    "bitbucket",
    "gitea",
    "npm",
    "yarn",
    "docker",
    "dockerhub",
    "quay",
    "ghcr",
    "heroku",
    "aws",
    "azure",
    "gcp",
    "gcloud",
    "google",
    "firebase",
    "slack",
    "discord",
    "teams",
    "telegram",
    "sentry",
    "sauce",
    "saucelabs",
    "browserstack",
    "lambdatest",
    "codecov",
    "coveralls",
    "codeclimate",
    "codacy",
    "sonar",
    "sonarqube",
    "sonarcloud",
    "snyk",
    "datadog",
    "newrelic",
    "relic",
    "honeycomb",
    "rollbar",
    "bugsnag",
    "circle",
    "circleci",
    "travis",
    "jenkins",
    "buildkite",
    "artifactory",
    "jfrog",
    "nexus",
    "sonatype",
    "ossrh",
    "pypi",
    "twine",
    "rubygems",
    "gem",
    "nuget",
    "cocoapods",
    "cargo",
    "crates",
    "hex",
    "packagist",
    "bintray",
    "cloudsmith",
    "stripe",
    "twilio",
    "sendgrid",
    "mailgun",
    "mailchimp",
    "postmark",
    "cloudflare",
    "digitalocean",
    "linode",
    "netlify",
    "vercel",
    "surge",
    "fastly",
    "transifex",
    "crowdin",
    "algolia",
    "mapbox",
    "okta",
    "auth0",
    "vault",
    "terraform",
    "pulumi",
    "openai",
    "anthropic",
    "huggingface",
    "hf",
    "percy",
    "chromatic",
    "applitools",
    "cypress",
    "expo",
    "fastlane",
    "appcenter",
    "testflight",
    "danger",
    "renovate",
    "dependabot",
    "shopify",
    "paypal",
    "braintree",
];

/// Words that, after the credential word, make the key name something other than the
/// credential: its file, location, name, kind, size, lifetime, or how it is handled.
const NOT_THE_VALUE: &[&str] = &[
    "file",
    "files",
    "path",
    "paths",
    "dir",
    "directory",
    "url",
    "uri",
    "endpoint",
    "host",
    "name",
    "names",
    "id",
    "ids",
    "type",
    "types",
    "kind",
    "length",
    "len",
    "size",
    "count",
    "env",
    "var",
    "variable",
    "ref",
    "reference",
    "field",
    "header",
    "param",
    "parameter",
    "policy",
    "expiry",
    "expires",
    "expiration",
    "expired",
    "ttl",
    "timeout",
    "age",
    "lifetime",
    "prefix",
    "suffix",
    "format",
    "mode",
    "method",
    "provider",
    "manager",
    "helper",
    "command",
    "cmd",
    "script",
    "source",
    "location",
    "hash",
    "digest",
    "sha",
    "fingerprint",
    "version",
    "enabled",
    "disabled",
    "required",
    "set",
    "present",
    "exists",
    "valid",
    "invalid",
    "status",
    "error",
    "errors",
    "missing",
    "label",
    "description",
    "template",
    "store",
    "storage",
    "server",
    "service",
    "scope",
    "scopes",
    "audience",
    "issuer",
    "regex",
    "pattern",
    "auth",
    "kwarg",
    "arg",
    "args",
    "option",
    "options",
    "test",
    "tests",
    "spec",
    "rotation",
    "hint",
    "min",
    "max",
    "changed",
    "reset",
    "input",
    "output",
    "login",
    "user",
    "username",
    "owner",
    "pair",
    "request",
    "response",
    "callback",
    "handler",
    "class",
    "module",
    "plugin",
    "arn",
    "namespace",
    "mount",
    "volume",
    "checksum",
    "sum",
    "etag",
];

/// Split a key name into lower-case words: `READ_ONLY_TOKEN`, `apiKey`, `sonar.login`,
/// `--password`.
fn words(key: &[u8]) -> Vec<String> {
    // A Java system property flag: `-Dapi.key` is `api.key`.
    let key = match key.strip_prefix(b"-D") {
        Some(rest) if rest.first().is_some_and(u8::is_ascii_lowercase) => rest,
        _ => key,
    };
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev: Option<u8> = None;
    for &b in key {
        if !b.is_ascii_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev = None;
            continue;
        }
        // camelCase boundary: a lower-case letter or digit, then an upper-case letter.
        if b.is_ascii_uppercase()
            && prev.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit())
            && !cur.is_empty()
        {
            out.push(std::mem::take(&mut cur));
        }
        cur.push(b.to_ascii_lowercase() as char);
        prev = Some(b);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The index of the last word of `w` that names a credential; `key` only after a qualifier
/// (`api_key`).
fn credential_word(w: &[String]) -> Option<usize> {
    (0..w.len()).rev().find(|&i| {
        let word = w[i].as_str();
        CREDENTIAL_WORDS.contains(&word)
            || (word == "key" && i > 0 && KEY_QUALIFIERS.contains(&w[i - 1].as_str()))
            // Run together: `PGPASSWORD`, `NGROK_AUTHTOKEN`, `npmAuthToken` as one word.
            || ["password", "passwd", "passphrase", "token", "secret", "apikey"]
                .iter()
                .any(|c| word.len() > c.len() + 1 && word.ends_with(c))
    })
}

/// Whether the key names a password (people choose those: they may be short and less random
/// than a token, which a service generates at a fixed, longer length).
pub fn names_password(key: &[u8]) -> bool {
    let w = words(key);
    credential_word(&w).is_some_and(|i| w[i].contains("pass") || w[i] == "pwd")
}

/// Whether the key's credential word is `secret`, or a key named for what it does
/// (`JWT_SECRET`, `SECRET_KEY_BASE`, `RAILS_MASTER_KEY`): digests are filed under `token`,
/// `hash`, `id` or `password` names (a stored password's MD5 or bcrypt), hardly ever under
/// these, while `openssl rand -hex` secrets are.
pub fn names_secret(key: &[u8]) -> bool {
    let w = words(key);
    credential_word(&w).is_some_and(|i| {
        let word = w[i].as_str();
        word.starts_with("secret")
            || (word == "key"
                && i > 0
                && ["secret", "master", "encryption", "signing", "private"]
                    .contains(&w[i - 1].as_str()))
    })
}

/// Whether the key names a service that issues credentials (see `SERVICE_WORDS`).
pub fn names_service(key: &[u8]) -> bool {
    words(key)
        .iter()
        .any(|w| SERVICE_WORDS.contains(&w.as_str()))
}

/// What the key's name says (see [`KeyName`]).
pub fn key_name(key: &[u8]) -> KeyName {
    let w = words(key);
    let last = credential_word(&w);
    let Some(i) = last else {
        return KeyName::NotTheValue;
    };
    // A long lower-case snake_case name is a function or test name; environment variables,
    // Java properties and Gradle properties (`ORG_GRADLE_PROJECT_mavenCentralPassword`,
    // `javax.net.ssl.keyStorePassword`) may be as long.
    if w.len() > 5 && !key.iter().any(|b| b.is_ascii_uppercase() || *b == b'.') {
        return KeyName::Identifier;
    }
    if i > 0 && NOT_A_CREDENTIAL_BEFORE.contains(&w[i - 1].as_str()) {
        return KeyName::NotTheValue;
    }
    let after = &w[i + 1..];
    if after.iter().any(|a| NOT_THE_VALUE.contains(&a.as_str())) {
        return KeyName::NotTheValue;
    }
    let word = w[i].as_str();
    // `PASS` alone is a test result (`--- PASS: TestX`); `DB_PASS` is a password.
    if word == "pass" && i == 0 {
        return KeyName::NotTheValue;
    }
    // `PWD` alone is the shell's working directory; `MYSQL_PWD` is a password.
    if (word == "pwd" && i == 0) || word.starts_with("credential") {
        return KeyName::Weak;
    }
    let qualified_before = i > 0;
    // `api_key`, `apiKey`, and words run together (`PGPASSWORD`, `npmauthtoken`).
    let compound = word == "key" || !CREDENTIAL_WORDS.contains(&word) || word == "apikey";
    if after.is_empty() && (qualified_before || compound || word.starts_with("pass")) {
        KeyName::Strong
    } else {
        KeyName::Plain
    }
}

/// Whether `before` (the line before a key) is only a line prefix: indentation, a timestamp,
/// `[INFO]`-like tags, shell prompts and trace markers (`+`, `$`, `>`), list markers, and the
/// words that introduce an assignment (`export`, `declare -x`, `set`, `ENV`, `ARG`, ...).
fn only_line_prefix(before: &[u8]) -> bool {
    const WORDS: &[&str] = &[
        "export", "declare", "-x", "-r", "set", "setenv", "local", "readonly", "typeset", "env",
        "ENV", "ARG", "SET", "info", "debug", "warn", "warning", "error", "trace", "notice",
        "INFO", "DEBUG", "WARN", "WARNING", "ERROR", "TRACE", "NOTICE",
    ];
    String::from_utf8_lossy(before)
        .split_ascii_whitespace()
        .all(|tok| {
            WORDS.contains(&tok)
                // Prompts, trace and list markers, separators: `+`, `++`, `$`, `>`, `-`, `|`.
                || tok.bytes().all(|b| b"+$>#-*|:".contains(&b))
                // Timestamps and counters: `2022-06-16T22:22:54.2999347Z`, `12:01:02`, `[0001]`.
                || tok
                    .trim_matches(|c| c == '[' || c == ']' || c == '(' || c == ')')
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b"-:.TZ+,/".contains(&b))
                // Tags: `[INFO]`, `[build]`, `(step)`.
                || (tok.starts_with('[') && tok.ends_with(']'))
                || (tok.starts_with('(') && tok.ends_with(')'))
        })
}

/// Where the key stands (see [`Place`]).
pub fn place(a: &Assignment) -> Place {
    let prev = a.before.last().copied();
    // Inside a path, an identifier, an address or a reference: `/passwd_1:`, `a::token`,
    // `@secret`, `$TOKEN`.
    // A Ruby symbol key (`:api_key=>`) and PowerShell's `$env:NAME =` are assignments.
    let ruby_symbol = prev == Some(b':')
        && a.sep
            .iter()
            .filter(|b| !b.is_ascii_whitespace())
            .take(2)
            .eq(b"=>".iter());
    let powershell_env =
        a.before.len() >= 5 && a.before[a.before.len() - 5..].eq_ignore_ascii_case(b"$env:");
    if !ruby_symbol
        && !powershell_env
        && matches!(
            prev,
            Some(
                b'/' | b'\\' | b':' | b'@' | b'#' | b'%' | b'~' | b'*' | b'!' | b'^' | b'$' | b'['
            )
        )
    {
        return Place::Not;
    }
    let is_quote = |b: &u8| *b == b'"' || *b == b'\'';
    // The separator without spaces, quotes and the backslashes of JSON inside a JSON string
    // (`{\"token\": \"…\"}`): `=`, `:`, `:=`, `=>`, or nothing (a space).
    let core: Vec<u8> = a
        .sep
        .iter()
        .filter(|b| !b.is_ascii_whitespace() && !is_quote(b) && **b != b'\\')
        .copied()
        .collect();
    let sep = a.sep.strip_prefix(b"\\").unwrap_or(a.sep);
    let quoted_key = prev.as_ref().is_some_and(is_quote) && sep.first() == prev.as_ref();
    let flag = a.key.starts_with(b"-");
    match core.as_slice() {
        b"=" | b":=" | b"=>" if a.value.first() != Some(&b'=') => {
            if flag {
                Place::Flag
            } else if quoted_key {
                Place::QuotedKey
            } else {
                Place::Assignment
            }
        }
        b":" => {
            let spaced = a
                .sep
                .last()
                .is_some_and(|b| b.is_ascii_whitespace() || is_quote(b));
            if quoted_key {
                Place::QuotedKey
            } else if !spaced {
                // `group:artifact:version`, `logger:file.py:12`, `user:pass` in an address.
                Place::Not
            } else if flag {
                Place::Flag
            } else if only_line_prefix(a.before) {
                Place::LineStart
            } else {
                Place::Field
            }
        }
        // Whitespace only: a flag and its argument (`--password hunter2`).
        b"" if flag => Place::Flag,
        _ => Place::Not,
    }
}

/// Whether every piece of `s`, split at `_ - . :` and camelCase, is letters only (an English
/// or identifier word).
fn wordish(s: &[u8]) -> bool {
    let w = words(s);
    !w.is_empty() && w.iter().all(|w| w.bytes().all(|b| b.is_ascii_alphabetic()))
}

/// `8-4-4-4-12` hex.
fn is_uuid(v: &[u8]) -> bool {
    v.len() == 36
        && v.iter().enumerate().all(|(i, &b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// `value` with `%XX` escapes undone, if it has any (a value in a URL query is escaped).
fn percent_decoded(value: &[u8]) -> Option<Vec<u8>> {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(value.len());
    let mut changed = false;
    let mut i = 0;
    while i < value.len() {
        if value[i] == b'%' && i + 2 < value.len() {
            if let (Some(h), Some(l)) = (hex(value[i + 1]), hex(value[i + 2])) {
                out.push((h * 16 + l) as u8);
                changed = true;
                i += 3;
                continue;
            }
        }
        out.push(value[i]);
        i += 1;
    }
    changed.then_some(out)
}

/// What the value looks like (see [`Shape`]).
pub fn shape(value: &[u8]) -> Shape {
    if let Some(decoded) = percent_decoded(value) {
        // Mostly escapes: an encoded blob, which the decoders open and scan as what it is.
        if (value.len() - decoded.len()) * 2 >= value.len() / 2 {
            return Shape::Not;
        }
        return shape(&decoded);
    }
    let v = value;
    let n = v.len();
    if n == 0 {
        return Shape::Not;
    }
    let has = |f: fn(&u8) -> bool| v.iter().any(f);
    let contains = |needle: &[u8]| memchr::memmem::find(v, needle).is_some();
    // Addresses and paths: `https://…`, `/etc/x`, `./x`, `~/x`, `C:\x`, `\\host\x`.
    if contains(b"://")
        || v[0] == b'/'
        || v.starts_with(b"./")
        || v.starts_with(b"../")
        || v.starts_with(b"~/")
        || v.starts_with(b"\\\\")
        || (n > 2 && v[0].is_ascii_alphabetic() && v[1] == b':' && v[2] == b'\\')
    {
        return Shape::Not;
    }
    // Relative paths and scopes: `AKIA…/20200617/us-east-1/s3/aws4_request`,
    // `build/libs/app.jar`: three or more `/` pieces, all but one of them plain.
    let pieces: Vec<&[u8]> = v.split(|&b| b == b'/').collect();
    let lower_path = |p: &[u8]| {
        p.iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(b))
    };
    if pieces.len() == 2 && pieces.iter().all(|p| !p.is_empty() && lower_path(p)) {
        return Shape::Not;
    }
    if pieces.len() >= 3 {
        let plain = |p: &[u8]| {
            p.len() <= 3
                || wordish(p)
                || p.iter()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(b))
        };
        if pieces.iter().filter(|p| !plain(p)).count() <= 1 {
            return Shape::Not;
        }
    }
    // Resource names: `arn:aws:secretsmanager:…`.
    if v.starts_with(b"arn:") {
        return Shape::Not;
    }
    // References and templates: `$VAR`, `%VAR%`, `@file`, `#{x}`, `&anchor`, `*alias`, `=x`.
    if b"$%@#&*=!?".contains(&v[0]) || contains(b"${") || contains(b"{{") || contains(b"$(") {
        return Shape::Not;
    }
    // Numbers, dates, times, versions, IP addresses: `1975`, `2022-06-16T22:22:54Z`, `10.0.0.1`.
    if v.iter()
        .all(|b| b.is_ascii_digit() || b"-:.+TZ_/".contains(b))
    {
        return Shape::Not;
    }
    // A version at the start: `4.2-3+deb8u4_amd64.deb`, `0.11.2-SNAPSHOT`, `v1.2.3`.
    let ver = v
        .strip_prefix(b"v")
        .or_else(|| v.strip_prefix(b"V"))
        .unwrap_or(v);
    let digits = ver.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits > 0
        && ver.get(digits) == Some(&b'.')
        && ver.get(digits + 1).is_some_and(u8::is_ascii_digit)
    {
        return Shape::Not;
    }
    // `file.py:1975`, `Foo.java:12`, anything ending in `:<line>`.
    if let Some(p) = memchr::memrchr(b':', v) {
        let tail = &v[p + 1..];
        if !tail.is_empty() && tail.iter().all(u8::is_ascii_digit) {
            return Shape::Not;
        }
    }
    // Dotted or `::`/`->` identifiers and calls: `config.auth.githubToken`, `a::b`, `f()`.
    if contains(b"::") || contains(b"->") {
        return Shape::Not;
    }
    let ident_segment = |s: &[u8]| {
        !s.is_empty()
            && (s[0].is_ascii_alphabetic() || s[0] == b'_')
            && s.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
    };
    let dotted: Vec<&[u8]> = v.split(|&b| b == b'.').collect();
    if dotted.len() >= 2 && dotted.iter().all(|s| ident_segment(s)) {
        // `name.ext` and `a.b.c`; a random value rarely has a `.` between identifier parts,
        // but one that does still has its randomness inside the parts.
        if dotted.iter().all(|s| wordish(s) || s.len() <= 5) {
            return Shape::Not;
        }
    }
    // Package coordinates and `key:value` chains of words: `jjwt-api:jar:0.11.2`,
    // `app:unspecified`, `sha256:…` is handled as hex below.
    let colon: Vec<&[u8]> = v.split(|&b| b == b':').collect();
    if colon.len() >= 2
        && colon.iter().all(|s| {
            wordish(s) || s.first().is_some_and(u8::is_ascii_digit) && shape(s) == Shape::Not
        })
    {
        return Shape::Not;
    }
    // Digest-shaped: a UUID, or hex of 16+ digits (also after `sha256:`/`md5-`).
    if is_uuid(v) {
        return Shape::Uuid;
    }
    let hex_part = match memchr::memchr2(b':', b'-', v) {
        Some(p) if p <= 7 && v[..p].iter().all(u8::is_ascii_alphanumeric) => &v[p + 1..],
        _ => v,
    };
    if hex_part.len() >= 16 && hex_part.iter().all(u8::is_ascii_hexdigit) {
        return Shape::Hex;
    }
    // A file name: `id_rsa.pub`, `service-account.json`, `creds.tar.gz`.
    if let Some(p) = memchr::memrchr(b'.', v) {
        let ext = &v[p + 1..];
        if (1..=5).contains(&ext.len())
            && ext.iter().all(|b| b.is_ascii_lowercase())
            && v[..p]
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(b))
            && !has(|b| b.is_ascii_uppercase())
        {
            return Shape::Not;
        }
    }
    // A name made of words, perhaps with a short version or year: `grafana-admin-creds-v2`,
    // `keycloak-db-2024`, `regcred-ghcr-2024` (a Kubernetes secret's name, not its value).
    let pieces: Vec<&[u8]> = v
        .split(|b| b"-_./".contains(b))
        .filter(|p| !p.is_empty())
        .collect();
    if pieces.len() >= 2
        && pieces.iter().all(|p| wordish(p) || p.len() <= 4)
        && pieces.iter().filter(|p| wordish(p) && p.len() >= 3).count() >= 2
        && !has(u8::is_ascii_uppercase)
    {
        return Shape::Not;
    }
    // A word or words: `postgres`, `my-app-secret`, `nextToken`, `Bearer`.
    if wordish(v) {
        return if n >= 8
            && has(u8::is_ascii_uppercase)
            && has(u8::is_ascii_lowercase)
            && words(v).len() == 1
        {
            Shape::Plain
        } else {
            Shape::Not
        };
    }
    // Typed, not generated: runs of the alphabet or of digits (`abcdefgh…012345`,
    // `abc123XYZ789def456`) fill half the value.
    let steps = v
        .windows(2)
        .filter(|w| w[1] == w[0].wrapping_add(1))
        .count();
    if n >= 8 && steps * 2 >= n - 1 {
        return Shape::Plain;
    }
    // Base64 of a JSON document or a URL is an encoded structure (a pagination cursor, a
    // redirect), not random bytes.
    if n >= 16 {
        use base64::Engine as _;
        let trimmed = v
            .strip_suffix(b"==")
            .or_else(|| v.strip_suffix(b"="))
            .unwrap_or(v);
        let engines = [
            base64::engine::general_purpose::STANDARD_NO_PAD,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ];
        if let Some(d) = engines.iter().find_map(|e| e.decode(trimmed).ok()) {
            if d.starts_with(b"{\"") || d.starts_with(b"[{") || d.starts_with(b"http") {
                return Shape::Not;
            }
        }
    }
    let lower = has(u8::is_ascii_lowercase);
    let upper = has(u8::is_ascii_uppercase);
    let digit = has(u8::is_ascii_digit);
    let symbol = has(|b| !b.is_ascii_alphanumeric());
    let classes = [lower, upper, digit, symbol].iter().filter(|&&c| c).count();
    let h = entropy::shannon_entropy(v) as f64;
    // Entropy per length: random text of n characters from an alphabet of 62 reaches close
    // to log2(min(n, 62)); words and counters stay far below it.
    let ceiling = (n.min(62) as f64).log2();
    let ratio = if ceiling > 0.0 { h / ceiling } else { 0.0 };
    if n >= 16 && classes >= 2 && (lower || upper) && digit && ratio >= 0.8 {
        Shape::Random
    } else if n >= 16 && lower && upper && ratio >= 0.85 {
        // Mixed-case letters only (base64 runs without digits are rare but exist).
        Shape::Random
    } else if n >= 8 && (lower || upper) && (digit || symbol) && ratio >= 0.7 {
        Shape::Mixed
    } else if n >= 6 {
        Shape::Plain
    } else {
        Shape::Not
    }
}

/// Points of each feature; see [`assess_assignment`].
const HIGH: i32 = 7;
const MEDIUM: i32 = 5;
const LOW: i32 = 3;

/// Score an assignment-shaped match: `None` when it is not a credential at all, else its
/// confidence and the features that decided it.
///
/// | feature | points |
/// |---|---|
/// | key `Strong` / `Plain` / `Weak` | 3 / 2 / 1 |
/// | place `Assignment`, `Flag`, `QuotedKey`, `LineStart` / `Field` | 2 / 1 |
/// | value `Random` / `Mixed` / `Plain` | 2 / 1 / -1 |
/// | value `Hex` / `Uuid` | 2, and `low` at most |
///
/// `high` from 7, `medium` from 5, `low` from 3. A key that names something else, a place
/// that is not an assignment, or a value that is not a secret's shape rules the match out;
/// a hex or UUID value (shaped like a digest or an id) is `low` at most, `medium` at most when
/// the key names a service that issues such tokens.
pub fn assess_assignment(a: &Assignment) -> Option<(Confidence, Evidence)> {
    let (kp, ke) = match key_name(a.key) {
        KeyName::Strong => (3, Evidence::KEY_STRONG),
        KeyName::Plain => (2, Evidence::KEY_PLAIN),
        KeyName::Weak => (1, Evidence::KEY_WEAK),
        KeyName::NotTheValue | KeyName::Identifier => return None,
    };
    let (pp, pe) = match place(a) {
        Place::Assignment => (2, Evidence::AT_ASSIGNMENT),
        Place::Flag => (2, Evidence::AT_FLAG),
        Place::QuotedKey => (2, Evidence::AT_QUOTED_KEY),
        Place::LineStart => (2, Evidence::AT_LINE_START),
        Place::Field => (1, Evidence::AT_FIELD),
        Place::Not => return None,
    };
    // A service generates tokens and keys at a fixed length, 16 characters and more; only a
    // password (chosen by a person) is plausible shorter.
    let value_shape = match shape(a.value) {
        Shape::Random | Shape::Mixed if a.value.len() < 16 && !names_password(a.key) => {
            Shape::Plain
        }
        s => s,
    };
    // A value that says what it is (`Password123!`, `test-token-42`) stands in for a secret.
    let lower = a.value.to_ascii_lowercase();
    let wordy = matches!(value_shape, Shape::Random | Shape::Mixed)
        && PLACEHOLDER_WORDS
            .iter()
            .any(|w| memchr::memmem::find(&lower, w.as_bytes()).is_some());
    let value_shape = if wordy { Shape::Plain } else { value_shape };
    let (vp, ve, cap) = match value_shape {
        Shape::Random => (2, Evidence::VALUE_RANDOM, None),
        Shape::Mixed => (1, Evidence::VALUE_MIXED, None),
        Shape::Plain => (-1, Evidence::VALUE_PLAIN, None),
        Shape::Hex => (2, Evidence::VALUE_HEX, Some(Confidence::Low)),
        Shape::Uuid => (2, Evidence::VALUE_UUID, Some(Confidence::Low)),
        Shape::Not => return None,
    };
    let score = kp + pp + vp;
    let confidence = if score >= HIGH {
        Confidence::High
    } else if score >= MEDIUM {
        Confidence::Medium
    } else if score >= LOW {
        Confidence::Low
    } else {
        return None;
    };
    // A hex or UUID value is a digest's or an id's shape (`low` at most), unless the name says
    // which service issued it: many issue exactly such tokens (GitHub's classic 40 hex, Sauce
    // Labs' UUIDs); then `medium` at most.
    let lifted = match cap {
        None => None,
        Some(_) if names_service(a.key) => Some(Evidence::KEY_NAMES_SERVICE),
        Some(_) if names_secret(a.key) => Some(Evidence::KEY_NAMES_SECRET),
        Some(_) => None,
    };
    let confidence = match (cap, lifted) {
        (Some(_), Some(_)) => confidence.min(Confidence::Medium),
        (Some(c), None) => confidence.min(c),
        (None, _) => confidence,
    };
    let ke = lifted.map_or(ke, |l| ke.with(l));
    let ve = if wordy {
        ve.with(Evidence::VALUE_PLACEHOLDER_WORD)
    } else {
        ve
    };
    Some((confidence, ke.with(pe).with(ve)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names() {
        use KeyName::*;
        let table: &[(&str, KeyName)] = &[
            ("DEPLOY_PASSWORD", Strong),
            ("READ_ONLY_TOKEN", Strong),
            ("api_key", Strong),
            ("apiKey", Strong),
            ("APIKEY", Strong),
            ("client_secret", Strong),
            ("AWS_SECRET_ACCESS_KEY", Strong),
            ("secret_key", Strong),
            ("password", Strong),
            ("--password", Strong),
            ("-Dfoo.password", Strong),
            ("GithubToken", Strong),
            ("token", Plain),
            ("secret", Plain),
            ("TOKEN_PROD", Plain),
            ("pwd", Weak),
            ("credentials", Weak),
            ("token_file", NotTheValue),
            ("PASSWORD_URL", NotTheValue),
            ("secretName", NotTheValue),
            ("TOKEN_TYPE", NotTheValue),
            ("tokenizer", NotTheValue),
            ("keyword", NotTheValue),
            ("monkey", NotTheValue),
            ("test_password_kwarg_works_for_password_auth", Identifier),
            ("next_page_token", NotTheValue),
            ("existingSecret", NotTheValue),
            ("imagePullSecrets", NotTheValue),
            ("--starting-token", NotTheValue),
            ("deltaToken", NotTheValue),
            ("authenticity_token", NotTheValue),
            ("SECRET_NAMESPACE", NotTheValue),
            ("DB_PASS", Strong),
            ("PASS", NotTheValue),
            ("PGPASSWORD", Strong),
            ("NGROK_AUTHTOKEN", Strong),
            ("-Dapi.key", Strong),
            ("MYSQL_PWD", Strong),
            ("hashed_secret", NotTheValue),
            ("SECRETS_CHECKSUM", NotTheValue),
            ("GPG_PASSPHRASE", Strong),
            ("-Djavax.net.ssl.keyStorePassword", Strong),
            ("ORG_GRADLE_PROJECT_mavenCentralPassword", Strong),
            ("NextToken", NotTheValue),
            ("continuationToken", NotTheValue),
            ("csrf_token", NotTheValue),
            ("__RequestVerificationToken", NotTheValue),
            ("SECRET_ARN", NotTheValue),
            ("secretKeyRef", NotTheValue),
        ];
        for (key, want) in table {
            assert_eq!(key_name(key.as_bytes()), *want, "{key}");
        }
    }

    fn a<'x>(before: &'x str, key: &'x str, sep: &'x str, value: &'x str) -> Assignment<'x> {
        Assignment {
            before: before.as_bytes(),
            key: key.as_bytes(),
            sep: sep.as_bytes(),
            value: value.as_bytes(),
        }
    }

    #[test]
    fn places() {
        use Place::*;
        let table: &[(super::Assignment, Place)] = &[
            (a("+ export ", "TOKEN", "=", "x"), Assignment),
            (a("docker run -e ", "TOKEN", "=", "x"), Assignment),
            (a("curl https://h/x?", "access_token", "=", "x"), Assignment),
            (a("", "--password", " ", "x"), Flag),
            (a("mvn -B ", "-Dsonar.login", "=", "x"), Flag),
            (a("  {\"", "password", "\": \"", "x"), QuotedKey),
            (a("'", "token", "' => '", "x"), QuotedKey),
            (a("\"{\\\"", "api_key", "\\\": \\\"", "x"), QuotedKey),
            (
                a(
                    "2022-06-16T22:22:54.2999347Z   ",
                    "CODECOV_TOKEN",
                    ": ",
                    "x",
                ),
                LineStart,
            ),
            (a("  - ", "api_key", ": ", "x"), LineStart),
            (a("[INFO] ", "token", ": ", "x"), LineStart),
            (a("Using the ", "token", ": ", "x"), Field),
            (a("io.jsonwebtoken:", "jjwt-api", ":", "jar:0.11.2"), Not),
            (
                a("  ", "Android-Password-Store", ":", "app:unspecified"),
                Not,
            ),
            (
                a(
                    "DEBUG    ",
                    "botocore.credentials",
                    ":",
                    "credentials.py:1975",
                ),
                Not,
            ),
            (a("Preparing to unpack .../", "passwd_1", ":", "4.2-3"), Not),
            (
                a("tests/test_client.py::", "test_password", " ", "PASSED"),
                Not,
            ),
            (a("", "token", " ", "is"), Not),
            (a("if ", "token", " == ", "x"), Not),
            (a("{:", "api_key", "=>\"", "x"), Assignment),
            (a("$env:", "AZURE_CLIENT_SECRET", " = \"", "x"), Assignment),
            (
                a("tests/test_x.py::test_parse_env[", "API_TOKEN", "=", "x"),
                Not,
            ),
        ];
        for (asg, want) in table {
            assert_eq!(
                place(asg),
                *want,
                "{:?}",
                String::from_utf8_lossy(asg.before).to_string()
                    + std::str::from_utf8(asg.key).unwrap()
            );
        }
    }

    #[test]
    fn shapes() {
        use Shape::*;
        let table: &[(&str, Shape)] = &[
            ("Q5GPwLvmKgorgmIxwNOk7479", Random),
            ("S6xxMYHxq2B5kRP0r6UV1cZB3urJ1mKpWx+KA7Ev", Random),
            ("4vXF8sEWRTjZvtsKlVbS89wrtnBmbGwCPvGS6niz_lLggmlE", Random),
            ("Summer2023!", Mixed),
            ("hunter2-abcd", Mixed),
            ("Yksrocks", Plain),
            ("9ffd28faf1c5d120b63be99b2d585156816e3789", Hex),
            ("sha256:9ffd28faf1c5d120b63be99b2d585156", Hex),
            ("56731c25-9b1f-4340-8b58-35739bfbc52d", Uuid),
            ("postgres", Not),
            ("testpassword", Not),
            ("my-app-secret", Not),
            ("credentials.py:1975", Not),
            ("jjwt-api:jar:0.11.2", Not),
            ("app:unspecified", Not),
            ("4.2-3+deb8u4_amd64.deb", Not),
            ("4.8.1-1ubuntu5.20.04_amd64.deb", Not),
            ("0.11.2", Not),
            ("v1.2.3-rc1", Not),
            ("2022-06-16T22:22:54Z", Not),
            ("123456", Not),
            ("config.auth.githubToken", Not),
            ("frames.nextToken", Not),
            ("Foo::bar", Not),
            ("https://example.com/x", Not),
            ("/var/run/secrets/token", Not),
            (
                "AKIAIWNJYAX4CSVEH53A/20200617/us-east-1/s3/aws4_request",
                Not,
            ),
            (
                "AKIAIWNJYAX4CSVEH53A%2F20190729%2Fus-east-1%2Fs3%2Faws4_request",
                Not,
            ),
            (
                "%25%21%2A%27%28%29%3B%3A%40%26%3D%2B%24%2C%2F%3F%23%5B%5D%20",
                Not,
            ),
            ("Q5GPwLvmKg%2BorgmIxwNOk7479", Random),
            ("build/libs/app-1.0.jar", Not),
            ("./secrets/token.txt", Not),
            ("service-account.json", Not),
            ("$GITHUB_TOKEN", Not),
            (
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbC123",
                Not,
            ),
            ("${{secrets.X}}", Not),
            (":test_password_kwarg_works", Not),
            ("test_password_kwarg_works_for_password_auth", Not),
        ];
        for (v, want) in table {
            assert_eq!(shape(v.as_bytes()), *want, "{v}");
        }
    }

    #[test]
    fn scores() {
        use Confidence::*;
        let table: &[(Assignment, Option<Confidence>)] = &[
            (
                a(
                    "+ export ",
                    "DEPLOY_PASSWORD",
                    "=",
                    "Q5GPwLvmKgorgmIxwNOk7479",
                ),
                Some(High),
            ),
            (
                a("", "api_key", ": ", "Q5GPwLvmKgorgmIxwNOk7479"),
                Some(High),
            ),
            (
                a("+ echo \"", "token", "=", "Q5GPwLvmKgorgmIxwNOk7479"),
                Some(Medium),
            ),
            (a("", "DB_PASSWORD", "=", "Summer2023!"), Some(Medium)),
            (a("{\"", "password", "\": \"", "Password123!"), Some(Low)),
            (
                a("", "API_TOKEN", "=", "my-test-token-4f9a8b7c6d5e"),
                Some(Low),
            ),
            (
                a("Using ", "token", ": ", "Q5GPwLvmKgorgmIxwNOk7479"),
                Some(Medium),
            ),
            (
                a("ok id=1280281190 status=200 ", "token", "=", "zaM3ywFV"),
                Some(Low),
            ),
            (a("", "password", "=", "zaM3ywFV"), Some(Medium)),
            (a("", "password", "=", "Yksrocks"), Some(Low)),
            (
                a(
                    "$ export ",
                    "READ_ONLY_TOKEN",
                    "=",
                    "9ffd28faf1c5d120b63be99b2d585156816e3789",
                ),
                Some(Low),
            ),
            (
                a(
                    "",
                    "SESSION_TOKEN",
                    "=",
                    "56731c25-9b1f-4340-8b58-35739bfbc52d",
                ),
                Some(Low),
            ),
            (a("", "token_file", "=", "Q5GPwLvmKgorgmIxwNOk7479"), None),
            (a("", "DATABASE_PASSWORD", ": ", "postgres"), None),
            (a("", "ROOT_PASSWORD", "=", "123456"), None),
            (
                a("  ", "Android-Password-Store", ":", "app:unspecified"),
                None,
            ),
        ];
        for (asg, want) in table {
            assert_eq!(
                assess_assignment(asg).map(|(c, _)| c),
                *want,
                "{}{}",
                String::from_utf8_lossy(asg.key),
                String::from_utf8_lossy(asg.value)
            );
        }
    }

    #[test]
    fn evidence_names_round_trip() {
        let e = Evidence::KEY_STRONG.with(Evidence::VALUE_RANDOM);
        assert_eq!(e.names(), vec!["key:strong", "value:random"]);
        assert_eq!(Evidence::from_names(e.names()), e);
    }

    #[test]
    fn checksums_move_a_format_match() {
        assert_eq!(
            assess_format(Confidence::High, Some(true)).0,
            Confidence::High
        );
        assert_eq!(
            assess_format(Confidence::Medium, Some(true)).0,
            Confidence::High
        );
        assert_eq!(
            assess_format(Confidence::High, Some(false)).0,
            Confidence::Medium
        );
        assert_eq!(
            assess_format(Confidence::Medium, None).0,
            Confidence::Medium
        );
    }
}
