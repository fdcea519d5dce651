//! HTTP for the CircleCI source: where the token may go, retries, rate limits, concurrency.
//!
//! The token is a credential to the whole CircleCI account, so this module is the only place
//! that attaches it, and only where the caller says (`Auth::Token`: the API host and the
//! artifact URLs the API returns). Redirects are followed here, by hand: reqwest strips only
//! the standard `Authorization` header on a cross-host redirect, not `Circle-Token`, and
//! artifact downloads redirect to a storage host. A hop to any other origin (scheme, host,
//! port) goes without the token, and so does every hop after it. Step-output URLs are
//! presigned and always fetched with `Auth::None`.
//!
//! Every attempt holds one permit of a semaphore, so at most `concurrency` requests are in
//! flight. 5xx answers, timeouts and connection errors are retried with exponential backoff
//! and full jitter; a 429 pauses *all* requests until its `Retry-After` (seconds or HTTP
//! date), `RateLimit-Reset` or `X-RateLimit-Reset` has passed, since the limit is per token.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{ACCEPT, LOCATION};
use reqwest::{StatusCode, Url};
use tokio::sync::Semaphore;

/// A CircleCI API token. Its `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    pub fn new(token: String) -> Token {
        Token(token.trim().to_string())
    }
    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Whether a request may carry the token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    /// Send `Circle-Token` to the URL's own origin (never to a redirect elsewhere).
    Token,
    /// Never send it (presigned step-output URLs).
    None,
}

/// Why a request failed, for callers that branch on it.
#[derive(Debug)]
pub enum HttpError {
    /// 404: not found, or not visible to this token (CircleCI answers 404 for both).
    NotFound { url: String },
    /// 401 or 403.
    Unauthorized { status: u16, message: String },
    /// Another non-success status after all retries.
    Status {
        status: u16,
        url: String,
        message: String,
    },
    /// The body is larger than the caller's limit.
    TooLarge { url: String, limit: u64 },
    /// Network trouble after all retries.
    Transport { url: String, message: String },
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // URLs without their signatures; server text on one line, without escape sequences.
        let shown = crate::http::shown_url;
        let said = |m: &str| crate::terminal::line(m).into_owned();
        match self {
            HttpError::NotFound { url } => {
                write!(
                    f,
                    "{}: 404, not found or not visible to this token",
                    shown(url)
                )
            }
            HttpError::Unauthorized { status, message } => {
                write!(
                    f,
                    "CircleCI refused the token ({status}: {})",
                    said(message)
                )
            }
            HttpError::Status {
                status,
                url,
                message,
            } => write!(
                f,
                "{}: HTTP {status} after retries: {}",
                shown(url),
                said(message)
            ),
            HttpError::TooLarge { url, limit } => {
                write!(f, "{}: larger than {limit} bytes", shown(url))
            }
            HttpError::Transport { url, message } => write!(f, "{}: {}", shown(url), said(message)),
        }
    }
}

impl std::error::Error for HttpError {}

/// Counters for the summary and the benchmark.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub rate_limited: AtomicU64,
    pub in_flight: AtomicU64,
    pub max_in_flight: AtomicU64,
}

/// Client settings.
#[derive(Clone, Debug)]
pub struct Settings {
    pub concurrency: usize,
    /// Attempts after the first for 5xx, timeouts and connection errors.
    pub retries: u32,
    /// 429 answers honoured per request before giving up.
    pub max_rate_limited: u32,
    pub timeout: Duration,
    /// First backoff step; doubles per attempt, capped at `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// The longest pause a 429 may ask for (`--max-retry-wait`).
    pub max_wait: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            concurrency: 16,
            retries: 5,
            max_rate_limited: 50,
            timeout: Duration::from_secs(60),
            backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(30),
            max_wait: crate::http::DEFAULT_MAX_WAIT,
        }
    }
}

/// The HTTP client shared by all of a scan's tasks.
pub struct Client {
    http: reqwest::Client,
    token: Token,
    settings: Settings,
    permits: Semaphore,
    /// No request starts before this instant (set by 429 answers).
    paused_until: Mutex<Option<Instant>>,
    /// Told when a 429 starts or extends the shared pause (to say so on stderr).
    on_pause: Option<Box<dyn Fn(Duration) + Send + Sync>>,
    /// Whether the scan is stopping (Ctrl-C, a closed output): no request starts then.
    cancelled: Option<Box<dyn Fn() -> bool + Send + Sync>>,
    pub stats: Stats,
}

const MAX_REDIRECTS: usize = 5;

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// `{"message": "..."}` or `{"error": "..."}` from an error body, else its first line.
fn error_message(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        for key in ["message", "error"] {
            if let Some(m) = v.get(key).and_then(|m| m.as_str()) {
                return m.to_string();
            }
        }
    }
    let text = String::from_utf8_lossy(body);
    let line = text.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        "(empty body)".to_string()
    } else {
        line.chars().take(200).collect()
    }
}

/// Bytes of a downloaded body kept in memory; the rest of a longer one waits for the scanner
/// in a temporary file. With `--concurrency` bodies held at once, this is what bounds their
/// memory.
pub const SPOOL_IN_MEMORY: u64 = 1 << 20;

enum Attempt {
    Done(
        crate::http::Spooled,
        Option<tokio::sync::OwnedSemaphorePermit>,
    ),
    /// Retry after this long (5xx, transport); counts against `retries`.
    Retry(Duration, HttpError),
    /// 429: everyone waits this long; counts against `max_rate_limited`.
    RateLimited(Duration),
    Fail(HttpError),
}

impl Client {
    pub fn new(token: Token, settings: Settings) -> anyhow::Result<Client> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .connect_timeout(Duration::from_secs(20))
            .user_agent(concat!("cisleuth/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Client {
            http,
            token,
            permits: Semaphore::new(settings.concurrency.max(1)),
            settings,
            paused_until: Mutex::new(None),
            on_pause: None,
            cancelled: None,
            stats: Stats::default(),
        })
    }

    /// Call `f` with the length of each pause a 429 starts or extends.
    pub fn on_pause(mut self, f: impl Fn(Duration) + Send + Sync + 'static) -> Client {
        self.on_pause = Some(Box::new(f));
        self
    }

    /// Ask `f` before every request (after waiting for a permit) whether the scan is stopping;
    /// if so the request is not sent and fails as cancelled.
    pub fn cancelled_when(mut self, f: impl Fn() -> bool + Send + Sync + 'static) -> Client {
        self.cancelled = Some(Box::new(f));
        self
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let cap = self
            .settings
            .backoff
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.settings.max_backoff);
        // Full jitter: anywhere in [cap/2, cap].
        cap / 2 + cap.mul_f64(fastrand::f64() / 2.0)
    }

    fn is_paused(&self) -> bool {
        self.paused_until
            .lock()
            .expect("pause lock")
            .is_some_and(|t| t > Instant::now())
    }

    async fn wait_for_pause(&self) {
        loop {
            let until = *self.paused_until.lock().expect("pause lock");
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t.into()).await,
                _ => return,
            }
        }
    }

    /// GET `url`, following redirects, with retries. The body may be at most `limit` bytes.
    pub async fn get(&self, url: &str, auth: Auth, limit: u64) -> Result<Vec<u8>, HttpError> {
        // Parsed whole anyway: kept in memory (up to `limit`), never written to disk first.
        let (body, _) = self.fetch(url, auth, limit, limit, None).await?;
        body.into_vec().map_err(|e| HttpError::Transport {
            url: url.to_string(),
            message: format!("cannot read the body back from its temporary file: {e}"),
        })
    }

    /// GET `url` like [`Client::get`], keeping the body in memory if its declared length fits
    /// in `budget` (the share comes with it, to be held until the body is scanned), else at
    /// most [`SPOOL_IN_MEMORY`] bytes of it (the rest goes to a temporary file as it arrives).
    pub async fn download(
        &self,
        url: &str,
        auth: Auth,
        limit: u64,
        budget: Option<&crate::http::MemoryBudget>,
    ) -> Result<
        (
            crate::http::Spooled,
            Option<tokio::sync::OwnedSemaphorePermit>,
        ),
        HttpError,
    > {
        self.fetch(url, auth, limit, SPOOL_IN_MEMORY, budget).await
    }

    /// The request loop of [`Client::get`] and [`Client::download`]: a body without a share of
    /// `budget` keeps `in_memory` bytes in memory, the rest in a temporary file.
    async fn fetch(
        &self,
        url: &str,
        auth: Auth,
        limit: u64,
        in_memory: u64,
        budget: Option<&crate::http::MemoryBudget>,
    ) -> Result<
        (
            crate::http::Spooled,
            Option<tokio::sync::OwnedSemaphorePermit>,
        ),
        HttpError,
    > {
        let url = Url::parse(url).map_err(|e| HttpError::Transport {
            url: url.to_string(),
            message: format!("bad URL: {e}"),
        })?;
        let (mut retries, mut limited) = (0u32, 0u32);
        loop {
            self.wait_for_pause().await;
            let attempt = {
                let _permit = self.permits.acquire().await.expect("semaphore open");
                // A 429 may have come back while this task waited for a permit: then the pause
                // applies to it too (give the permit back and wait it out).
                if self.is_paused() {
                    continue;
                }
                if self.cancelled.as_ref().is_some_and(|f| f()) {
                    return Err(HttpError::Transport {
                        url: url.to_string(),
                        message: "not sent: the scan is stopping".into(),
                    });
                }
                let now = self.stats.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                self.stats.max_in_flight.fetch_max(now, Ordering::SeqCst);
                let a = self.attempt(&url, auth, limit, in_memory, budget).await;
                self.stats.in_flight.fetch_sub(1, Ordering::SeqCst);
                a
            };
            match attempt {
                Attempt::Done(body, share) => return Ok((body, share)),
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry(wait, e) => {
                    if retries >= self.settings.retries {
                        return Err(e);
                    }
                    retries += 1;
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(wait).await;
                }
                Attempt::RateLimited(wait) => {
                    limited += 1;
                    self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                    if limited > self.settings.max_rate_limited {
                        return Err(HttpError::Status {
                            status: 429,
                            url: url.to_string(),
                            message: format!("still rate limited after {limited} waits"),
                        });
                    }
                    let until = Instant::now() + wait;
                    let extended = {
                        let mut p = self.paused_until.lock().expect("pause lock");
                        let extended = p.is_none_or(|t| t < until);
                        if extended {
                            *p = Some(until);
                        }
                        extended
                    };
                    if extended && wait >= Duration::from_secs(1) {
                        if let Some(f) = &self.on_pause {
                            f(wait);
                        }
                    }
                }
            }
        }
    }

    async fn attempt(
        &self,
        first: &Url,
        auth: Auth,
        limit: u64,
        in_memory: u64,
        budget: Option<&crate::http::MemoryBudget>,
    ) -> Attempt {
        let mut url = first.clone();
        let mut with_token = auth == Auth::Token;
        for _ in 0..=MAX_REDIRECTS {
            // The token goes only to the origin it was meant for; once a redirect leaves that
            // origin it is never sent again on this chain.
            with_token = with_token && same_origin(&url, first);
            let mut req = self
                .http
                .get(url.clone())
                .header(ACCEPT, "application/json");
            if with_token {
                req = req.header("Circle-Token", self.token.expose());
            }
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    return Attempt::Retry(
                        self.backoff(0),
                        HttpError::Transport {
                            url: url.to_string(),
                            message: transport_message(&e),
                        },
                    )
                }
            };
            let status = resp.status();
            if status.is_redirection() {
                let Some(next) = resp
                    .headers()
                    .get(LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| url.join(l).ok())
                else {
                    return Attempt::Fail(HttpError::Status {
                        status: status.as_u16(),
                        url: url.to_string(),
                        message: "redirect without a usable Location".into(),
                    });
                };
                url = next;
                continue;
            }
            if status == StatusCode::TOO_MANY_REQUESTS {
                let wait = crate::http::retry_wait(
                    resp.headers(),
                    SystemTime::now(),
                    self.settings.max_wait,
                )
                .unwrap_or_else(|| self.backoff(2));
                return Attempt::RateLimited(wait);
            }
            if status.is_success() {
                // `read_body` refuses a declared Content-Length over the limit before reading.
                return match crate::http::read_body_spooled(resp, limit, in_memory, budget).await {
                    Ok(Some((body, share))) => Attempt::Done(body, share),
                    Ok(None) => Attempt::Fail(HttpError::TooLarge {
                        url: url.to_string(),
                        limit,
                    }),
                    Err(crate::http::SpoolError::Disk(e)) => Attempt::Fail(HttpError::Transport {
                        url: url.to_string(),
                        message: format!("cannot keep the body in a temporary file: {e}"),
                    }),
                    Err(crate::http::SpoolError::Http(e)) => Attempt::Retry(
                        self.backoff(0),
                        HttpError::Transport {
                            url: url.to_string(),
                            message: transport_message(&e),
                        },
                    ),
                };
            }
            // An error page is read for its message only: never more than 64 KiB of it.
            let body = crate::http::read_body(resp, 64 << 10)
                .await
                .ok()
                .flatten()
                .unwrap_or_default();
            let message = error_message(&body);
            return match status.as_u16() {
                401 | 403 => Attempt::Fail(HttpError::Unauthorized {
                    status: status.as_u16(),
                    message,
                }),
                404 => Attempt::Fail(HttpError::NotFound {
                    url: url.to_string(),
                }),
                s if s >= 500 || s == 408 => Attempt::Retry(
                    self.backoff(1),
                    HttpError::Status {
                        status: s,
                        url: url.to_string(),
                        message,
                    },
                ),
                s => Attempt::Fail(HttpError::Status {
                    status: s,
                    url: url.to_string(),
                    message,
                }),
            };
        }
        Attempt::Fail(HttpError::Status {
            status: 310,
            url: first.to_string(),
            message: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }
}

/// A transport error without the URL reqwest puts in its `Display` (we print our own).
fn transport_message(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "connection broken while reading the body"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_debug_is_redacted() {
        let t = Token::new("CCIPAT_secret".into());
        assert!(!format!("{t:?}").contains("secret"));
    }

    #[test]
    fn error_bodies() {
        assert_eq!(
            error_message(br#"{"message":"Project not found"}"#),
            "Project not found"
        );
        assert_eq!(error_message(br#"{"error":"bad"}"#), "bad");
        assert_eq!(error_message(b"Rate limited."), "Rate limited.");
        assert_eq!(error_message(b"{}"), "{}");
        assert_eq!(error_message(b""), "(empty body)");
    }

    #[test]
    fn origins() {
        let a = Url::parse("https://circleci.com/api/v2/me").unwrap();
        assert!(same_origin(
            &a,
            &Url::parse("https://circleci.com:443/x").unwrap()
        ));
        assert!(!same_origin(
            &a,
            &Url::parse("http://circleci.com/x").unwrap()
        ));
        assert!(!same_origin(
            &a,
            &Url::parse("https://circleci.com.evil/x").unwrap()
        ));
        assert!(!same_origin(
            &a,
            &Url::parse("https://circleci.com:8443/x").unwrap()
        ));
    }
}
