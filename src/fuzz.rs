//! The fuzzing harnesses, one per `cargo fuzz` target in `fuzz/fuzz_targets/` (each target is
//! a thin file calling its function here). They sit at the top of the pipeline because some
//! need all of it, and they live in the library so that `cargo test` can replay the inputs
//! kept in `fuzz/regressions/<target>/` through the same code ([`TARGETS`]).
//!
//! | target | harness | what it feeds |
//! |---|---|---|
//! | `normalise_decode` | [`fuzz_one`] | content sniffing, UTF-16, strings, ANSI, step JSON, decoders, detection |
//! | `archive` | [`fuzz_archive`] | the archive walker, every kind, with small limits |
//! | `step_json` | [`fuzz_step_json`] | CircleCI step-output JSON, alone and through a scanner |
//! | `rules` | [`fuzz_rules`] | the rule loader, the engine, `rules check` |
//! | `config` | [`fuzz_config`] | `.cisleuth.toml` parsing and applying it to the built-in rules |
//! | `circleci_api` | [`fuzz_circleci_api`] | serde of every CircleCI API model, slugs |
//! | `retry_after` | [`fuzz_retry_after`] | `Retry-After` and the rate-limit reset headers |

use std::io::{self, Read};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use crate::decode::{Classes, Decoders};

/// A fuzz harness: one input, and a panic for a bug.
#[doc(hidden)]
pub type Harness = fn(&[u8]);

/// Every fuzz target by name, with its harness: `cargo test` replays
/// `fuzz/regressions/<name>/*` through these.
#[doc(hidden)]
pub const TARGETS: &[(&str, Harness)] = &[
    ("normalise_decode", fuzz_one),
    ("archive", fuzz_archive),
    ("step_json", fuzz_step_json),
    ("rules", fuzz_rules),
    ("config", fuzz_config),
    ("circleci_api", fuzz_circleci_api),
    ("retry_after", fuzz_retry_after),
];

/// The built-in rules, compiled once per process.
fn builtin_rules() -> &'static [crate::rules::Rule] {
    static RULES: OnceLock<Vec<crate::rules::Rule>> = OnceLock::new();
    RULES.get_or_init(|| crate::rules::builtin().expect("built-in rules"))
}

/// An engine over the built-in rules, built once per process.
fn builtin_engine() -> &'static crate::detect::Engine {
    static ENGINE: OnceLock<crate::detect::Engine> = OnceLock::new();
    ENGINE.get_or_init(|| crate::detect::Engine::new(builtin_rules().to_vec()).expect("engine"))
}

/// A sink that checks what it is given and keeps nothing.
struct Check {
    /// The normalised text is at most this long (findings' spans lie inside it).
    max_text: Option<usize>,
}

impl crate::scan::Sink for Check {
    fn finding(&mut self, f: crate::finding::Finding) {
        assert!(f.span.0 <= f.span.1, "span {:?}", f.span);
        assert!(!f.secret.is_empty(), "an empty secret");
        assert!(f.location.line >= 1, "lines are 1-based");
        if let Some(max) = self.max_text {
            assert!(f.span.1 <= max as u64, "span {:?} past {max}", f.span);
        }
    }
    fn note(&mut self, _: String) {}
}

/// One fuzzing input through the normaliser + decoder stack: the decoders alone on the raw
/// bytes, then a whole scan (content sniffing, UTF-16, strings, ANSI, step JSON, decoders to
/// depth 3, detection). The `normalise_decode` target calls this.
#[doc(hidden)]
pub fn fuzz_one(data: &[u8]) {
    let engine = builtin_engine();
    let decoders = Decoders::standard(3);
    let mut classes = Classes::default();
    let mut out = Vec::new();
    decoders.decode(data, &mut classes, &mut out);
    for d in &out {
        assert!(d.start < d.end && d.end <= data.len());
    }
    let mut scanner = crate::scan::Scanner::new(engine, &decoders, Default::default());
    scanner.scan_bytes(
        data,
        &Arc::new(crate::source::origin::Origin::Stdin),
        &mut Check { max_text: None },
    );
}

/// The archive walker over arbitrary bytes, named after the first byte (`x.zip`, `x.tar`,
/// `x.tar.gz`, ...; the kind is sniffed from the content first, so every name meets every
/// kind), with limits small enough that a bomb ends quickly. Checks that the members handed
/// on stay within the limits: no more of them than `max_entries`, no more bytes in all than
/// `max_total` (the top-level input scanned as it is aside), every path under the archive's
/// name, and every refusal says so.
#[doc(hidden)]
pub fn fuzz_archive(data: &[u8]) {
    use crate::source::archive::{Limits, Walker};
    const NAMES: [&str; 8] = [
        "x.zip",
        "x.tar",
        "x.tar.gz",
        "x.gz",
        "x.bz2",
        "x.tar.bz2",
        "x.xz",
        "x.tar.xz",
    ];
    let Some((&first, bytes)) = data.split_first() else {
        return;
    };
    let name = NAMES[first as usize % NAMES.len()];
    let limits = Limits {
        max_depth: 3,
        max_total: 4 << 20,
        max_entries: 64,
        max_ratio: 100,
        max_spill: 4 << 20,
    };
    // (path, bytes read) per member.
    let mut seen: Vec<(String, u64)> = Vec::new();
    let mut scan = |path: &str, r: &mut dyn Read| -> io::Result<()> {
        let mut buf = [0u8; 16 << 10];
        let mut n = 0u64;
        let res = loop {
            match r.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(k) => n += k as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        seen.push((path.to_string(), n));
        res
    };
    let mut walker = Walker::new(limits.clone(), &mut scan);
    walker.walk(name, bytes);
    let errors = std::mem::take(&mut walker.errors);
    drop(walker);
    for p in &errors {
        assert!(p.path.starts_with(name), "problem path {:?}", p.path);
        if p.refused {
            assert!(
                p.message.starts_with("refused") || p.message.starts_with("not opened"),
                "a refusal that does not say so: {:?}",
                p.message
            );
        }
    }
    if seen.iter().any(|(path, _)| path == name) {
        // Not an archive: the input itself, once, whole.
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].1, bytes.len() as u64);
        return;
    }
    assert!(
        seen.len() <= limits.max_entries,
        "{} members, limit {}",
        seen.len(),
        limits.max_entries
    );
    let prefix = format!("{name}!/");
    for (path, _) in &seen {
        assert!(path.starts_with(&prefix), "member path {path:?}");
    }
    let total: u64 = seen.iter().map(|s| s.1).sum();
    assert!(
        total <= limits.max_total,
        "{total} bytes handed on, limit {}",
        limits.max_total
    );
}

/// CircleCI step-output JSON: decoded alone ([`circleci_step_text`]), checked (the joined text
/// is never longer than the body, segments are in order and alternate streams), then scanned
/// through a [`Scanner`](crate::scan::Scanner) as a step's output is, once with the default
/// size cap and once with a cap that the input may exceed (scanned as text instead).
///
/// [`circleci_step_text`]: crate::normalise::circleci_step_text
#[doc(hidden)]
pub fn fuzz_step_json(data: &[u8]) {
    use crate::normalise::{circleci_step_text, looks_like_step_json};
    let looks = looks_like_step_json(data);
    let step = circleci_step_text(data).ok();
    if let Some(step) = &step {
        assert!(
            step.text.len() <= data.len(),
            "{} bytes of text from {} of JSON",
            step.text.len(),
            data.len()
        );
        for w in step.segments.windows(2) {
            assert!(
                w[0].0 <= w[1].0,
                "segments out of order: {:?}",
                step.segments
            );
            assert_ne!(w[0].1, w[1].1, "two segments in a row of one stream");
        }
        if let Some(last) = step.segments.last() {
            assert!(last.0 <= step.text.len());
        }
        for at in [0, step.text.len() / 2, step.text.len()] {
            step.stream_at(at);
        }
    }
    let decoders = Decoders::standard(3);
    let origin = Arc::new(crate::source::origin::Origin::Stdin);
    // Decoded as step JSON (as it streams): spans are offsets in the joined messages.
    // Only text is read as step JSON: an input the first read calls binary is scanned through
    // its printable runs, with spans in the raw bytes.
    let text = matches!(
        crate::content::classify(&data[..data.len().min(crate::scan::READ_SIZE)]),
        crate::content::Content::Text
    );
    let max_text = match &step {
        Some(s) if looks && text => Some(s.text.len()),
        _ => None,
    };
    let mut scanner = crate::scan::Scanner::new(builtin_engine(), &decoders, Default::default());
    scanner.scan_bytes(data, &origin, &mut Check { max_text });
}

/// A rule file as `cisleuth rules check --dir` reads one: parsed and compiled
/// ([`parse_file`](crate::rules::parse_file)), layered over the built-in rules with pairs
/// validated; if it compiles, an engine is built over its rules, the file's own text and
/// every example are scanned with it, and the examples are checked
/// ([`check`](crate::detect::check::check)). Anything may fail; nothing may panic.
#[doc(hidden)]
pub fn fuzz_rules(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(rules) = crate::rules::parse_file(&text, "fuzz/rules.toml") else {
        return;
    };
    let mut set = builtin_rules().to_vec();
    if crate::rules::merge(&mut set, rules.clone(), true).is_ok() {
        let _ = crate::rules::validate_pairs(&set);
    }
    let Ok(engine) = crate::detect::Engine::new(rules.clone()) else {
        return;
    };
    let mut scratch = engine.scratch();
    let mut found = Vec::new();
    let mut hays: Vec<&[u8]> = vec![text.as_bytes()];
    for r in engine.rules() {
        hays.extend(r.examples.iter().map(|e| e.text.as_bytes()));
        hays.extend(r.negative_examples.iter().map(|e| e.as_bytes()));
    }
    for hay in hays {
        found.clear();
        engine.scan(hay, &mut scratch, &mut found);
        for m in &found {
            assert!(m.start <= m.end && m.end <= hay.len(), "{m:?}");
            assert!(m.secret_start < m.secret_end && m.secret_end <= hay.len());
            assert!(m.rule < engine.rules().len());
        }
        let pairing = engine.pair_up(hay, &mut found);
        assert_eq!(pairing.partner.len(), found.len());
    }
    let _ = crate::detect::check::check(rules);
}

/// A `.cisleuth.toml`: parsed, and if it parses, applied to the built-in rules (which may
/// refuse unknown ids but must leave no disabled rule and every entropy override in place);
/// its globs and allowlists are then asked about a few paths and lines.
#[doc(hidden)]
pub fn fuzz_config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(mut config) = crate::config::Config::parse(&text, Path::new("/repo/.cisleuth.toml"))
    else {
        return;
    };
    for d in &config.rule_dirs {
        assert!(d.is_absolute(), "{}", d.display());
    }
    let mut rules = builtin_rules().to_vec();
    let n = rules.len();
    if config.apply(&mut rules).is_ok() {
        assert!(rules.len() <= n);
        for r in &rules {
            assert!(!config.disable.contains(&r.id), "{} still enabled", r.id);
            if let Some(&e) = config.entropy.get(&r.id) {
                assert_eq!(r.min_entropy, Some(e));
            }
        }
    }
    for path in [
        "web/node_modules/x/build.log",
        "build.log",
        "",
        "a/b/c.tar.gz!/d",
    ] {
        config.ignored(Path::new(path));
    }
    for line in [
        &b"token ghp_x # cisleuth:allow"[..],
        b"AKIAZZ000",
        b"",
        data,
    ] {
        config.allows("github-pat", b"ghp_x", line);
        config.allows("aws-access-key-id", line, line);
    }
    let _ = config.effect().line();
}

/// Every CircleCI API model the client deserialises, from the same bytes, and slugs: every
/// line of the input through [`Slug::parse`](crate::source::circleci::api::Slug::parse), and
/// what parses must come back from its own `Display`, `v1()` and `v2()` (unescaped) forms;
/// v1.1 projects through `Slug::from_v1_project` likewise.
#[doc(hidden)]
pub fn fuzz_circleci_api(data: &[u8]) {
    use crate::source::circleci::api::{
        Artifact, Build, Job, Page, Pipeline, Slug, V1Project, Workflow,
    };
    fn parse<T: serde::de::DeserializeOwned>(data: &[u8]) -> Option<T> {
        serde_json::from_slice(data).ok()
    }
    let _ = parse::<Page<Pipeline>>(data);
    let _ = parse::<Page<Workflow>>(data);
    let _ = parse::<Page<Job>>(data);
    let _ = parse::<Page<Artifact>>(data);
    let _ = parse::<Vec<Artifact>>(data);
    let _ = parse::<Pipeline>(data);
    let _ = parse::<Workflow>(data);
    let _ = parse::<Job>(data);
    let _ = parse::<Build>(data);
    let mut projects = parse::<Vec<V1Project>>(data).unwrap_or_default();
    projects.extend(parse::<V1Project>(data));

    fn unescape(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).expect("escapes are ASCII");
                out.push(u8::from_str_radix(hex, 16).expect("escapes are hex"));
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).expect("unescaped UTF-8")
    }
    fn round_trips(s: &Slug) {
        assert_eq!(Slug::parse(&s.to_string()).as_ref(), Some(s), "display");
        assert_eq!(Slug::parse(&unescape(&s.v1())).as_ref(), Some(s), "v1");
        assert_eq!(Slug::parse(&unescape(&s.v2())).as_ref(), Some(s), "v2");
        for form in [s.v1(), s.v2()] {
            assert!(
                form.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.~%/".contains(&b)),
                "{form:?} is not escaped"
            );
            assert_eq!(form.matches('/').count(), 2, "{form:?}");
        }
        assert_eq!(s.org_slug(), format!("{}/{}", s.vcs, s.org));
    }
    let text = String::from_utf8_lossy(data);
    for s in std::iter::once(text.as_ref())
        .chain(text.lines())
        .filter_map(Slug::parse)
    {
        round_trips(&s);
    }
    for p in &projects {
        if let Some(s) = Slug::from_v1_project(p) {
            round_trips(&s);
        }
    }
}

/// [`retry_wait`](crate::http::retry_wait) with arbitrary `Retry-After`, `RateLimit-Reset` and
/// `X-RateLimit-Reset` values (any bytes a header can carry, repeated headers too), an
/// arbitrary `now` and cap: never above the cap, and nothing without a header.
///
/// Input: 8 bytes of `now` (seconds since the epoch, little-endian), 4 of the cap (seconds),
/// then lines: the first byte of each picks the header, the rest is its value.
#[doc(hidden)]
pub fn fuzz_retry_after(data: &[u8]) {
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
    if data.len() < 12 {
        return;
    }
    let now_secs = u64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
    let now = SystemTime::UNIX_EPOCH
        .checked_add(Duration::from_secs(now_secs))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let cap =
        Duration::from_secs(u32::from_le_bytes(data[8..12].try_into().expect("4 bytes")) as u64);
    const NAMES: [&str; 3] = ["retry-after", "ratelimit-reset", "x-ratelimit-reset"];
    let mut headers = HeaderMap::new();
    for line in data[12..].split(|&b| b == b'\n') {
        let Some((&which, value)) = line.split_first() else {
            continue;
        };
        let Ok(value) = HeaderValue::from_bytes(value) else {
            continue;
        };
        let name = HeaderName::from_static(NAMES[which as usize % NAMES.len()]);
        headers.append(name, value);
    }
    let wait = crate::http::retry_wait(&headers, now, cap);
    if headers.is_empty() {
        assert_eq!(wait, None);
    }
    if let Some(w) = wait {
        assert!(w <= cap, "{w:?} above the cap {cap:?}");
    }
    for default_cap in [Duration::ZERO, crate::http::DEFAULT_MAX_WAIT, Duration::MAX] {
        if let Some(w) = crate::http::retry_wait(&headers, now, default_cap) {
            assert!(w <= default_cap, "{w:?} above the cap {default_cap:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs the fuzzers once crashed on (and seeds worth keeping) stay fixed: every
    /// `fuzz/regressions/<target>/*` through that target's harness.
    #[test]
    fn fuzz_regressions_replay() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
        let mut replayed: Vec<(String, usize)> = Vec::new();
        for entry in std::fs::read_dir(&dir).expect("fuzz/regressions") {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_file() && name == "README.md" {
                continue;
            }
            assert!(
                path.is_dir(),
                "{}: inputs go in a subdirectory named after their fuzz target",
                path.display()
            );
            let Some(&(_, harness)) = TARGETS.iter().find(|(t, _)| *t == name) else {
                panic!(
                    "{}: no fuzz target {name:?} (known: {:?})",
                    path.display(),
                    TARGETS.iter().map(|t| t.0).collect::<Vec<_>>()
                );
            };
            let mut n = 0;
            for input in std::fs::read_dir(&path).unwrap() {
                let input = input.unwrap().path();
                let data = std::fs::read(&input).unwrap();
                eprintln!("replaying {}", input.display());
                harness(&data);
                n += 1;
            }
            replayed.push((name, n));
        }
        for (target, _) in TARGETS {
            let n = replayed.iter().find(|r| r.0 == *target).map_or(0, |r| r.1);
            assert!(n > 0, "no inputs in {}/{target}", dir.display());
        }
    }

    /// Every `cargo fuzz` target has a harness here and the other way round.
    #[test]
    fn every_fuzz_target_has_a_harness() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .expect("fuzz/fuzz_targets")
            .map(|e| {
                let p = e.unwrap().path();
                p.file_stem().unwrap().to_string_lossy().into_owned()
            })
            .collect();
        files.sort();
        let mut names: Vec<String> = TARGETS.iter().map(|t| t.0.to_string()).collect();
        names.sort();
        assert_eq!(files, names);
        let manifest = std::fs::read_to_string(dir.with_file_name("Cargo.toml")).unwrap();
        for name in names {
            assert!(
                manifest.contains(&format!("path = \"fuzz_targets/{name}.rs\"")),
                "fuzz/Cargo.toml has no [[bin]] for {name}"
            );
        }
    }
}
