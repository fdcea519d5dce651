//! v2 list paging: a [`Pager`] reads a list page by page, handing each page over as it
//! arrives, and stops a server that pages forever (`--max-pages`, a repeated page token, a
//! repeated page).

use std::collections::HashSet;

use serde::de::DeserializeOwned;

use super::api::{self, Page};
use super::Ctx;
use anyhow::Result;

/// A v2 list read page by page, each page handed over as it arrives, so what was read is
/// kept when a later page fails. A listing longer than `--max-pages`, a repeated page token
/// or a repeated page (a server paging forever) is an error: the rest is unknown.
pub(super) struct Pager {
    path: String,
    token: Option<String>,
    read: usize,
    done: bool,
    seen_tokens: HashSet<String>,
    seen_pages: HashSet<u64>,
}

impl Pager {
    pub(super) fn new(path: &str) -> Pager {
        Pager {
            path: path.to_string(),
            token: None,
            read: 0,
            done: false,
            seen_tokens: HashSet::new(),
            seen_pages: HashSet::new(),
        }
    }

    /// The next page's items; `None` once the list is over.
    pub(super) async fn next<T: DeserializeOwned>(
        &mut self,
        ctx: &Ctx,
    ) -> Result<Option<Vec<T>>, String> {
        if self.done || ctx.stopped() {
            return Ok(None);
        }
        // Whatever happens now, this listing ends unless a next token is taken below.
        self.done = true;
        let read = self.read;
        if read >= ctx.opts.max_pages {
            return Err(format!(
                "listing stopped after {read} pages (--max-pages); the rest was not read"
            ));
        }
        let path = &self.path;
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &self.token {
            Some(t) => format!("{path}{sep}page-token={}", api::enc(t)),
            None => path.clone(),
        };
        let page: Page<serde_json::Value> = ctx.get_json(&url).await.map_err(|e| {
            if read == 0 {
                e
            } else {
                format!("page {}: {e}", read + 1)
            }
        })?;
        if !self.seen_pages.insert(page_digest(&page.items)) {
            return Err(format!(
                "page {} repeats an earlier page: the server's paging loops; the rest was not read",
                read + 1
            ));
        }
        let items = page
            .items
            .into_iter()
            .map(serde_json::from_value)
            .collect::<Result<Vec<T>, _>>()
            .map_err(|e| {
                format!(
                    "{}: unexpected response ({})",
                    crate::http::shown_url(&ctx.api(path)),
                    crate::terminal::json_error(&e)
                )
            })?;
        self.read += 1;
        match page.next_page_token {
            Some(t) if !t.is_empty() => {
                if !self.seen_tokens.insert(t.clone()) {
                    return Err(format!(
                        "page {} hands out a page token seen before: the server's paging loops; the rest was not read",
                        read + 1
                    ));
                }
                self.token = Some(t);
                self.done = false;
            }
            _ => {}
        }
        Ok(Some(items))
    }
}

/// A digest of one page's items, to notice a server that serves the same page again.
fn page_digest(items: &[serde_json::Value]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(items)
        .unwrap_or_default()
        .hash(&mut h);
    h.finish()
}
