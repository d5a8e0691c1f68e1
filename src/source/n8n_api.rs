//! n8n's public REST API (`/api/v1`), the read side: listing workflows with
//! their full bodies, and checking that the API answers and accepts the key.
//!
//! Requests carry the API key in the `X-N8N-API-KEY` header (operators create
//! one in n8n: Settings → n8n API). The key is never logged, never printed by
//! `Debug`, and never sent elsewhere: redirects are not followed (a redirect is
//! reported with where it points, so the operator can fix the URL).
use super::json::Json;
use super::{Result, SourceError};
use reqwest::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::StatusCode;
use serde_json::Value;
use std::collections::HashSet;
use std::time::Duration;
use url::Url;

/// The header n8n reads the API key from.
pub const API_KEY_HEADER: &str = "X-N8N-API-KEY";
/// Workflows per page when listing (n8n accepts up to 250).
pub const DEFAULT_PAGE_SIZE: u32 = 100;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A client of one n8n instance's public API.
#[derive(Clone)]
pub struct N8nApi {
    /// n8n's address, ending in `/` (the API is under `api/v1/`).
    base: Url,
    key: String,
    client: reqwest::Client,
    page_size: u32,
}

impl std::fmt::Debug for N8nApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("N8nApi")
            .field("base", &self.base_url())
            .field("key", &"<redacted>")
            .field("page_size", &self.page_size)
            .finish()
    }
}

impl N8nApi {
    /// `base_url` is n8n's address as a browser reaches it, e.g.
    /// `http://127.0.0.1:5678` or `https://n8n.example.org/` (a trailing
    /// `/api/v1` is accepted and ignored).
    pub fn new(base_url: &str, api_key: String) -> Result<N8nApi> {
        let mut base = Url::parse(base_url.trim()).map_err(|e| {
            SourceError::Invalid(format!(
                "{:?} is not a valid n8n URL: {e} (expected e.g. http://127.0.0.1:5678)",
                base_url.trim()
            ))
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
            return Err(SourceError::Invalid(format!(
                "{:?} is not an http:// or https:// URL of n8n",
                base_url.trim()
            )));
        }
        base.set_query(None);
        base.set_fragment(None);
        let mut path = base.path().trim_end_matches('/').to_string();
        for suffix in ["/api/v1", "/api"] {
            if let Some(p) = path.strip_suffix(suffix) {
                path = p.to_string();
                break;
            }
        }
        path.push('/');
        base.set_path(&path);
        if api_key.trim().is_empty() {
            return Err(SourceError::Invalid(
                "no n8n API key is configured (create one in n8n: Settings → n8n API)".into(),
            ));
        }
        if HeaderValue::from_str(&api_key).is_err() {
            return Err(SourceError::Invalid(
                "the n8n API key holds characters an HTTP header cannot carry (a line break?)"
                    .into(),
            ));
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("n8n-ark/", env!("CARGO_PKG_VERSION")));
        if is_loopback(&base) {
            // n8n on this machine: never through a proxy from the environment.
            builder = builder.no_proxy();
        }
        let client = builder.build().map_err(|e| {
            SourceError::Api(format!("cannot set up an HTTP client: {}", chain(&e)))
        })?;
        Ok(N8nApi {
            base,
            key: api_key,
            client,
            page_size: DEFAULT_PAGE_SIZE,
        })
    }

    /// Workflows per page when listing (1..=250).
    pub fn with_page_size(mut self, n: u32) -> Self {
        self.page_size = n.clamp(1, 250);
        self
    }

    /// n8n's address as given, without a trailing slash and without any user
    /// name or password, e.g. `http://127.0.0.1:5678`.
    pub fn base_url(&self) -> String {
        let mut u = self.base.clone();
        let _ = u.set_username("");
        let _ = u.set_password(None);
        u.as_str().trim_end_matches('/').to_string()
    }

    fn endpoint(&self, path: &str) -> Url {
        let mut u = self.base.clone();
        u.set_path(&format!("{}api/v1/{path}", self.base.path()));
        u
    }

    /// Checks that n8n answers and accepts the key (one small request).
    pub async fn check(&self) -> Result<()> {
        let mut url = self.endpoint("workflows");
        url.query_pairs_mut().append_pair("limit", "1");
        let body = self.get_json(url).await?;
        page(body).map(|_| ()).map_err(|what| self.not_n8n(&what))
    }

    /// Every workflow, with the full body the list gives (nodes, connections,
    /// settings, tags...), page by page following `nextCursor`. A workflow
    /// seen on two pages (the list shifted while it was read) is returned
    /// once. This is not a snapshot: workflows saved while it runs may or may
    /// not be included.
    pub async fn list_workflows(&self) -> Result<Vec<Json>> {
        let mut out = Vec::new();
        let mut ids = HashSet::new();
        let mut cursors = HashSet::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = self.endpoint("workflows");
            {
                let mut q = url.query_pairs_mut();
                q.append_pair("limit", &self.page_size.to_string());
                if let Some(c) = &cursor {
                    q.append_pair("cursor", c);
                }
            }
            let body = self.get_json(url).await?;
            let (data, next) = page(body).map_err(|what| self.not_n8n(&what))?;
            for w in data {
                let id = match w.get("id") {
                    Some(Json::String(s)) => Some(s.clone()),
                    Some(Json::Number(n)) => Some(n.to_string()),
                    _ => None,
                };
                if let Some(id) = id {
                    if !ids.insert(id) {
                        continue;
                    }
                }
                out.push(w);
            }
            match next {
                None => return Ok(out),
                Some(c) => {
                    if !cursors.insert(c.clone()) {
                        return Err(SourceError::Api(format!(
                            "n8n at {} gave the same page cursor twice while listing workflows \
                             (after {} workflows): stopped rather than loop forever",
                            self.base_url(),
                            out.len()
                        )));
                    }
                    cursor = Some(c);
                }
            }
        }
    }

    /// GET `url` with the key; the JSON body of a 2xx answer.
    async fn get_json(&self, url: Url) -> Result<Json> {
        let mut key = HeaderValue::from_str(&self.key)
            .map_err(|_| SourceError::Invalid("the n8n API key is not a valid header".into()))?;
        key.set_sensitive(true);
        let req = self
            .client
            .get(url)
            .header(API_KEY_HEADER, key)
            .header(ACCEPT, "application/json");
        self.send_json(req).await
    }

    /// Sends a request and reads its JSON answer (of any depth), mapping
    /// every failure to a message an operator can act on.
    async fn send_json(&self, req: reqwest::RequestBuilder) -> Result<Json> {
        let resp = req.send().await.map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(String::from);
        let body = resp.bytes().await.map_err(|e| self.unreachable(&e))?;
        if status.is_success() {
            return Json::parse(&body).map_err(|e| {
                self.not_n8n(&format!(
                    "an answer that is not JSON ({e}): {}",
                    snippet(&body)
                ))
            });
        }
        let base = self.base_url();
        Err(SourceError::Api(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => format!(
                "n8n at {base} refused the API key (create one in n8n: Settings → n8n API){}",
                n8n_message(&body)
                    .map(|m| format!(": {status}, {m}"))
                    .unwrap_or_default()
            ),
            s if s.is_redirection() => format!(
                "n8n at {base} answered {s}{}: configure n8n's URL as the address it redirects to",
                location
                    .map(|l| format!(" redirecting to {l}"))
                    .unwrap_or_default()
            ),
            StatusCode::NOT_FOUND => format!(
                "n8n at {base} answered {status}: {} (is this n8n's address, with its public API enabled?)",
                n8n_message(&body).unwrap_or_else(|| snippet(&body))
            ),
            s => format!(
                "n8n at {base} answered {s}: {}",
                n8n_message(&body).unwrap_or_else(|| snippet(&body))
            ),
        }))
    }

    fn unreachable(&self, e: &reqwest::Error) -> SourceError {
        let why = if e.is_timeout() {
            format!(
                "no answer within {} s ({})",
                REQUEST_TIMEOUT.as_secs(),
                chain(e)
            )
        } else {
            chain(e)
        };
        SourceError::Api(format!("n8n at {} does not answer: {why}", self.base_url()))
    }

    fn not_n8n(&self, what: &str) -> SourceError {
        SourceError::Api(format!(
            "n8n at {} gave {what}; is that n8n's address?",
            self.base_url()
        ))
    }
}

/// The `data` and `nextCursor` of a list page.
fn page(body: Json) -> std::result::Result<(Vec<Json>, Option<String>), String> {
    let mut obj = match body.into_object() {
        Ok(o) if o.get("data").is_some_and(Json::is_array) => o,
        Ok(o) => return Err(format!("a list without a data array: {}", short(&o.into()))),
        Err(other) => return Err(format!("a list without a data array: {}", short(&other))),
    };
    let next = match obj.get("nextCursor") {
        None | Some(Json::Null) => None,
        Some(Json::String(s)) if s.is_empty() => None,
        Some(Json::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(format!(
                "a nextCursor that is not a string: {}",
                short(other)
            ))
        }
    };
    let data = obj
        .remove("data")
        .and_then(|d| d.into_array().ok())
        .unwrap_or_default();
    Ok((data, next))
}

/// n8n's error answers are `{"message": "..."}`.
fn n8n_message(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.get("message")
        .and_then(Value::as_str)
        .map(|m| truncate(m.to_string(), 300))
}

fn snippet(body: &[u8]) -> String {
    if body.is_empty() {
        return "(empty body)".into();
    }
    truncate(String::from_utf8_lossy(body).trim().to_string(), 200)
}

fn short(v: &Json) -> String {
    let bytes = v.to_compact();
    truncate(
        String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned(),
        120,
    )
}

/// `s` cut to `max` bytes, with `...` when it was longer.
fn truncate(s: String, max: usize) -> String {
    if s.len() > max {
        format!("{}...", crate::text::truncate(&s, max))
    } else {
        s
    }
}

/// An error and its causes, as one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut src = e.source();
    while let Some(s) = src {
        let m = s.to_string();
        if !parts.iter().any(|p| p.contains(&m)) {
            parts.push(m);
        }
        src = s.source();
    }
    parts.join(": ")
}

fn is_loopback(u: &Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

// ---------------------------------------------------------------------------
// The write side (restores): creating a workflow, reading one back.

/// Why n8n did not create a workflow ([`N8nApi::create_workflow`]).
#[derive(Debug)]
pub enum CreateFailure {
    /// n8n answered with a client error (400 for a body its schema
    /// refuses, 409, 422, ...) other than refusing the key: nothing was
    /// created. `message` is n8n's own (`{"message": ...}`), or the start of
    /// the body when it had none.
    Refused { status: u16, message: String },
    /// Nothing was created: n8n could not be reached (the connection failed
    /// before the request went out), refused the key, redirected, or
    /// answered with a server error.
    Failed(SourceError),
    /// The request went out but no complete answer came back: the workflow
    /// may or may not exist now.
    NoAnswer(SourceError),
}

impl N8nApi {
    /// `POST /api/v1/workflows` with `body`: the created workflow as n8n
    /// answers it (its new `id`, `active: false`, node credentials as n8n
    /// resolved them). The request carries `body` and the key, nothing else.
    pub async fn create_workflow(&self, body: &Json) -> std::result::Result<Json, CreateFailure> {
        let mut key = HeaderValue::from_str(&self.key).map_err(|_| {
            CreateFailure::Failed(SourceError::Invalid(
                "the n8n API key is not a valid header".into(),
            ))
        })?;
        key.set_sensitive(true);
        let req = self
            .client
            .post(self.endpoint("workflows"))
            .header(API_KEY_HEADER, key)
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_compact());
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) if e.is_connect() || e.is_builder() => {
                return Err(CreateFailure::Failed(self.unreachable(&e)))
            }
            Err(e) => return Err(CreateFailure::NoAnswer(self.unreachable(&e))),
        };
        let status = resp.status();
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(String::from);
        let answer = resp
            .bytes()
            .await
            .map_err(|e| CreateFailure::NoAnswer(self.unreachable(&e)))?;
        let base = self.base_url();
        if status.is_success() {
            return Json::parse(&answer).map_err(|e| {
                CreateFailure::NoAnswer(self.not_n8n(&format!(
                    "an answer to creating a workflow that is not JSON ({e}): {}",
                    snippet(&answer)
                )))
            });
        }
        let message = n8n_message(&answer).unwrap_or_else(|| snippet(&answer));
        Err(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                CreateFailure::Failed(SourceError::Api(format!(
                    "n8n at {base} refused the API key (create one in n8n: Settings → n8n API): \
                     {status}, {message}"
                )))
            }
            s if s.is_redirection() => CreateFailure::Failed(SourceError::Api(format!(
                "n8n at {base} answered {s}{}: configure n8n's URL as the address it redirects to",
                location
                    .map(|l| format!(" redirecting to {l}"))
                    .unwrap_or_default()
            ))),
            s if s.is_client_error() => CreateFailure::Refused {
                status: s.as_u16(),
                message,
            },
            s => CreateFailure::Failed(SourceError::Api(format!(
                "n8n at {base} answered {s}: {message}"
            ))),
        })
    }

    /// `GET /api/v1/workflows/{id}`: one workflow's full body.
    pub async fn get_workflow(&self, id: &str) -> Result<Json> {
        let mut url = self.endpoint("workflows");
        url.path_segments_mut()
            .map_err(|_| SourceError::Invalid(format!("{} cannot take a path", self.base_url())))?
            .push(id);
        self.get_json(url).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_normalise() {
        let k = || "k".to_string();
        for (given, base, endpoint) in [
            (
                "http://127.0.0.1:5678",
                "http://127.0.0.1:5678",
                "http://127.0.0.1:5678/api/v1/workflows",
            ),
            (
                "http://127.0.0.1:5678/",
                "http://127.0.0.1:5678",
                "http://127.0.0.1:5678/api/v1/workflows",
            ),
            (
                "http://127.0.0.1:5678/api/v1/",
                "http://127.0.0.1:5678",
                "http://127.0.0.1:5678/api/v1/workflows",
            ),
            (
                "https://example.org/n8n",
                "https://example.org/n8n",
                "https://example.org/n8n/api/v1/workflows",
            ),
            (
                "https://u:p@example.org/n8n/?x=1",
                "https://example.org/n8n",
                "https://u:p@example.org/n8n/api/v1/workflows",
            ),
        ] {
            let api = N8nApi::new(given, k()).unwrap();
            assert_eq!(api.base_url(), base, "{given}");
            assert_eq!(api.endpoint("workflows").as_str(), endpoint, "{given}");
        }
        for bad in ["127.0.0.1:5678", "ftp://x", "not a url", ""] {
            assert!(
                matches!(N8nApi::new(bad, k()), Err(SourceError::Invalid(_))),
                "{bad}"
            );
        }
        assert!(N8nApi::new("http://x", "".into()).is_err());
        assert!(N8nApi::new("http://x", "a\nb".into()).is_err());
    }

    #[test]
    fn debug_never_shows_the_key() {
        let api = N8nApi::new("http://127.0.0.1:5678", "n8n_api_secret_value".into()).unwrap();
        let d = format!("{api:?}");
        assert!(!d.contains("secret"), "{d}");
        assert!(d.contains("127.0.0.1:5678"));
    }
}
