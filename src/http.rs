//! What both HTTP clients (the CircleCI source and the ticket sinks) need to read from a
//! server that asks them to wait: one parser for `Retry-After` and the rate-limit reset
//! headers, safe for any value a hostile or broken server sends, and capped, so a server
//! cannot stall a scan for days or crash it with `Retry-After: 1e20`.
//!
//! And how a URL is shown in a message: a presigned storage link (a step's output, an
//! artifact behind a redirect) carries its signature in the query, and the link is a
//! credential until it expires, so messages show such parameters as `…`.
//!
//! Both read bodies through [`read_body`], bounded with or without a Content-Length.
//!
//! A leaf module: it imports nothing of the crate.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};

/// The longest pause a server may ask for by default (`--max-retry-wait`).
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(300);

/// Seconds as a duration: any finite non-negative number, however large (then `cap`).
fn seconds(v: &str, cap: Duration) -> Option<Duration> {
    let secs = v.trim().parse::<f64>().ok()?;
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    Some(Duration::try_from_secs_f64(secs).unwrap_or(cap).min(cap))
}

/// How long a 429 or 503 asks us to wait, at most `cap`: `Retry-After` (seconds or an HTTP
/// date), then `RateLimit-Reset`, then `X-RateLimit-Reset` (seconds). `None` when no header
/// says (or none parses): the caller backs off on its own schedule.
pub fn retry_wait(headers: &HeaderMap, now: SystemTime, cap: Duration) -> Option<Duration> {
    if let Some(v) = headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()) {
        if let Some(d) = seconds(v, cap) {
            return Some(d);
        }
        if let Ok(at) = httpdate::parse_http_date(v.trim()) {
            return Some(at.duration_since(now).unwrap_or(Duration::ZERO).min(cap));
        }
    }
    ["ratelimit-reset", "x-ratelimit-reset"]
        .iter()
        .find_map(|name| {
            headers
                .get(*name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| seconds(v, cap))
        })
}

/// `url` for a message: the values of query parameters that can grant access (signatures,
/// credentials, tokens, keys) and any password in the authority replaced by `…`. A string
/// that is not a URL is shown without its query.
pub fn shown_url(url: &str) -> String {
    let Ok(mut u) = url::Url::parse(url) else {
        return url.split('?').next().unwrap_or(url).to_string();
    };
    if u.password().is_some() {
        let _ = u.set_password(Some("…"));
    }
    let sensitive = |k: &str| {
        let k = k.to_ascii_lowercase();
        [
            "sig",
            "credential",
            "token",
            "key",
            "secret",
            "password",
            "auth",
            "security",
        ]
        .iter()
        .any(|w| k.contains(w))
    };
    if u.query_pairs().any(|(k, _)| sensitive(&k)) {
        let kept: Vec<String> = u
            .query_pairs()
            .map(|(k, v)| {
                if sensitive(&k) {
                    format!("{k}=…")
                } else {
                    format!("{k}={v}")
                }
            })
            .collect();
        u.set_query(None);
        return format!("{u}?{}", kept.join("&"));
    }
    u.to_string()
}

/// Read a response body, streaming, giving up (None) past `limit` bytes: the same bound
/// whether or not the server sent a Content-Length (a body without one could otherwise grow
/// until memory runs out).
pub async fn read_body(
    mut resp: reqwest::Response,
    limit: u64,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let declared = resp.content_length();
    if declared.is_some_and(|n| n > limit) {
        return Ok(None);
    }
    // Sized up front when the server says how long it is: a growing Vec doubles, and the
    // spare half of every body held for the scanner is memory the bound does not count.
    let mut body = Vec::with_capacity(declared.unwrap_or(0).min(limit).min(64 << 20) as usize);
    while let Some(chunk) = resp.chunk().await? {
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    if body.capacity() > body.len() + body.len() / 8 {
        body.shrink_to_fit();
    }
    Ok(Some(body))
}

/// A downloaded body: in memory up to a threshold, in an unnamed temporary file (gone when
/// dropped) past it, so bodies waiting for the scanner hold disk, not memory.
#[derive(Debug)]
pub enum Spooled {
    Memory(Vec<u8>),
    /// Rewound to the start.
    File(std::fs::File),
}

impl Spooled {
    /// The whole body in memory (for JSON that is parsed whole anyway).
    pub fn into_vec(self) -> std::io::Result<Vec<u8>> {
        match self {
            Spooled::Memory(v) => Ok(v),
            Spooled::File(mut f) => {
                let mut v = Vec::new();
                std::io::Read::read_to_end(&mut f, &mut v)?;
                Ok(v)
            }
        }
    }
}

/// Why a spooled body could not be read.
#[derive(Debug)]
pub enum SpoolError {
    Http(reqwest::Error),
    /// The temporary file could not be written.
    Disk(std::io::Error),
}

/// Memory set aside for downloaded bodies, counted in KiB: a body whose declared length fits
/// what is left is kept in memory (its share held until the scanner is done with it), any
/// other goes to a temporary file. Scanning from memory is faster; the budget keeps the sum
/// bounded however many bodies wait.
pub type MemoryBudget = std::sync::Arc<tokio::sync::Semaphore>;

/// A new [`MemoryBudget`] of `bytes`.
pub fn memory_budget(bytes: u64) -> MemoryBudget {
    std::sync::Arc::new(tokio::sync::Semaphore::new((bytes >> 10) as usize))
}

/// [`read_body`], keeping in memory a body whose declared length fits in `budget` (its share
/// comes back with it) or, without a declared length, its first `in_memory` bytes; the rest
/// goes to an unnamed temporary file as it arrives.
pub async fn read_body_spooled(
    mut resp: reqwest::Response,
    limit: u64,
    in_memory: u64,
    budget: Option<&MemoryBudget>,
) -> Result<Option<(Spooled, Option<tokio::sync::OwnedSemaphorePermit>)>, SpoolError> {
    use std::io::{Seek, SeekFrom, Write};
    let declared = resp.content_length();
    if declared.is_some_and(|n| n > limit) {
        return Ok(None);
    }
    let mut share = None;
    let mut keep = in_memory;
    if let (Some(n), Some(b)) = (declared, budget) {
        let kib = u32::try_from(n.div_ceil(1024)).unwrap_or(u32::MAX);
        if let Ok(p) = b.clone().try_acquire_many_owned(kib) {
            share = Some(p);
            keep = n;
        }
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(0).min(keep) as usize);
    let mut file: Option<std::fs::File> = None;
    let mut len = 0u64;
    while let Some(chunk) = resp.chunk().await.map_err(SpoolError::Http)? {
        len += chunk.len() as u64;
        if len > limit {
            return Ok(None);
        }
        match &mut file {
            Some(f) => f.write_all(&chunk).map_err(SpoolError::Disk)?,
            None if len > keep => {
                let mut f = tempfile::tempfile().map_err(SpoolError::Disk)?;
                f.write_all(&body).map_err(SpoolError::Disk)?;
                f.write_all(&chunk).map_err(SpoolError::Disk)?;
                body = Vec::new();
                file = Some(f);
                share = None;
            }
            None => body.extend_from_slice(&chunk),
        }
    }
    Ok(Some(match file {
        Some(mut f) => {
            f.seek(SeekFrom::Start(0)).map_err(SpoolError::Disk)?;
            (Spooled::File(f), None)
        }
        None => (Spooled::Memory(body), share),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(name: &'static str, v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(name, v.parse().unwrap());
        m
    }

    /// A response with the length declared, or streamed in 4 KiB pieces without one.
    fn response(body: Vec<u8>, declared: bool) -> reqwest::Response {
        let r = http::Response::builder();
        if declared {
            return reqwest::Response::from(r.body(body).unwrap());
        }
        let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
            body.chunks(4096).map(|c| Ok(c.to_vec())).collect();
        let stream = reqwest::Body::wrap_stream(futures_util::stream::iter(pieces));
        reqwest::Response::from(r.body(stream).unwrap())
    }

    /// Bodies in memory while they fit (the budget for a declared length, else `in_memory`),
    /// in a temporary file past it, the same bytes either way; over `limit`, none.
    #[tokio::test]
    async fn bodies_spool_to_disk_past_their_memory() {
        let body: Vec<u8> = (0..10_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let budget = memory_budget(64 << 10);
        let cases = [
            (true, Some(&budget), 1024, true),
            (false, Some(&budget), 1024, false),
            (false, None, 1 << 20, true),
            (true, None, 1024, false),
        ];
        for (declared, budget, in_memory, memory) in cases {
            let (got, share) =
                read_body_spooled(response(body.clone(), declared), 1 << 20, in_memory, budget)
                    .await
                    .unwrap()
                    .unwrap();
            assert_eq!(
                matches!(got, Spooled::Memory(_)),
                memory,
                "{declared} {in_memory}"
            );
            assert_eq!(share.is_some(), memory && budget.is_some());
            assert_eq!(got.into_vec().unwrap(), body);
        }
        // The budget is spent while a body is held, and back when it is dropped.
        let (held, share) =
            read_body_spooled(response(body.clone(), true), 1 << 20, 0, Some(&budget))
                .await
                .unwrap()
                .unwrap();
        assert!(matches!(held, Spooled::Memory(_)));
        assert_eq!(budget.available_permits(), 64 - 40);
        let (second, _) =
            read_body_spooled(response(body.clone(), true), 1 << 20, 0, Some(&budget))
                .await
                .unwrap()
                .unwrap();
        assert!(matches!(second, Spooled::File(_)), "no room left: on disk");
        drop(share);
        assert_eq!(budget.available_permits(), 64);
        for declared in [true, false] {
            let over = read_body_spooled(response(body.clone(), declared), 1000, 0, None).await;
            assert!(over.unwrap().is_none());
        }
    }

    #[test]
    fn every_form_and_every_hostile_value() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let cap = Duration::from_secs(300);
        let table: &[(&'static str, &str, Option<u64>)] = &[
            ("retry-after", "3", Some(3)),
            ("retry-after", " 2.5 ", Some(2)),
            ("retry-after", "0", Some(0)),
            ("retry-after", "100000", Some(300)),
            ("retry-after", "1e20", Some(300)),
            ("retry-after", "18446744073709551615", Some(300)),
            ("retry-after", "1e400", None),
            ("retry-after", "NaN", None),
            ("retry-after", "-5", None),
            ("retry-after", "soon", None),
            ("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT", Some(300)),
            ("retry-after", "Tue, 14 Nov 2023 22:13:27 GMT", Some(7)),
            ("retry-after", "Mon, 01 Jan 2001 00:00:00 GMT", Some(0)),
            ("ratelimit-reset", "7", Some(7)),
            ("x-ratelimit-reset", "99999999999", Some(300)),
        ];
        for &(name, v, want) in table {
            let got = retry_wait(&h(name, v), now, cap).map(|d| d.as_secs());
            assert_eq!(got, want, "{name}: {v}");
        }
        assert_eq!(retry_wait(&HeaderMap::new(), now, cap), None);
    }

    #[test]
    fn urls_in_messages_lose_their_signatures() {
        let presigned = "https://circle-production-action-output.s3.amazonaws.com/abc?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20230104&X-Amz-Expires=431999&X-Amz-Signature=01c9f00d&X-Amz-Security-Token=FQoG";
        let shown = shown_url(presigned);
        assert!(
            !shown.contains("01c9f00d") && !shown.contains("AKIA") && !shown.contains("FQoG"),
            "{shown}"
        );
        assert!(shown.contains("X-Amz-Expires=431999"), "{shown}");
        assert_eq!(
            shown_url("https://circleci.com/api/v2/pipeline?org-slug=gh/acme"),
            "https://circleci.com/api/v2/pipeline?org-slug=gh/acme"
        );
        assert!(!shown_url("https://u:hunter2@h.example/x").contains("hunter2"));
        assert_eq!(shown_url("not a url?sig=abc"), "not a url");
    }
}
