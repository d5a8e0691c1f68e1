//! A local HTTP server that behaves like n8n 1.123's public API for workflows
//! and credentials, as recorded in tests/fixtures (README.md,
//! api-post-probe.tsv, api-get-probe.txt):
//!
//! - every request needs `X-N8N-API-KEY` (401 `{"message":"unauthorized"}`
//!   otherwise);
//! - `GET /api/v1/workflows` lists with `limit` (1..=250) and a base64
//!   `nextCursor`; `GET /api/v1/workflows/{id}` gives one workflow;
//! - `POST /api/v1/workflows` validates the body as n8n 1.123's schema does,
//!   with the same 400 messages: required `name`, `nodes`, `connections`,
//!   `settings`; read-only `id`, `active`, `tags`, `createdAt`, `updatedAt`,
//!   `shared`, `activeVersion`; no additional properties at the top level, in
//!   `settings` (n8n's settings schema, with its enums) or in a node. A valid
//!   body creates a new, inactive workflow under a new id; duplicate names
//!   are accepted; node credential references are resolved as n8n does (by
//!   id and type, else by a unique name and type, else left dangling; old
//!   references by name alone: the first match by name and type, else
//!   `id: null`);
//! - `GET /api/v1/credentials` (and `/credentials/{id}`) answer 405.
//!
//! It can play an older n8n ([`FakeN8n::reject_settings_key`],
//! [`FakeN8n::reject_node_key`]: that key leaves the schema), and it records
//! every request (method, path, query, whether the key was right, body) so
//! that tests check exactly what was sent. It runs on its own runtime thread,
//! so tests can run the binary synchronously while it answers; dropping it
//! stops it.
#![allow(dead_code)]
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// The key the fake accepts unless told otherwise.
pub const API_KEY: &str = "n8n_api_fake_0123456789abcdef";

/// n8n 1.123's top-level members of a workflow body (writable, then read-only).
const TOP_WRITABLE: &[&str] = &["name", "nodes", "connections", "settings", "staticData"];
const TOP_READ_ONLY: &[&str] = &[
    "id",
    "active",
    "tags",
    "createdAt",
    "updatedAt",
    "shared",
    "activeVersion",
];
const REQUIRED: &[&str] = &["name", "nodes", "connections", "settings"];
/// n8n 1.123's settings schema.
const SETTINGS_KEYS: &[&str] = &[
    "saveExecutionProgress",
    "saveManualExecutions",
    "saveDataErrorExecution",
    "saveDataSuccessExecution",
    "executionTimeout",
    "errorWorkflow",
    "timezone",
    "executionOrder",
    "callerPolicy",
    "callerIds",
    "timeSavedPerExecution",
    "availableInMCP",
];
/// n8n 1.123's node schema (`createdAt`/`updatedAt` are read-only).
const NODE_KEYS: &[&str] = &[
    "id",
    "name",
    "webhookId",
    "disabled",
    "notesInFlow",
    "notes",
    "type",
    "typeVersion",
    "executeOnce",
    "alwaysOutputData",
    "retryOnFail",
    "maxTries",
    "waitBetweenTries",
    "continueOnFail",
    "onError",
    "position",
    "parameters",
    "credentials",
    "createdAt",
    "updatedAt",
];

/// One request as the fake received it.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Whether it carried the right key.
    pub key_ok: bool,
    /// The headers' names (lowercase).
    pub headers: Vec<String>,
    /// The body as JSON (`Value::String` of the text when it was not JSON;
    /// `None` when empty).
    pub body: Option<Value>,
}

#[derive(Default)]
struct Inner {
    workflows: Vec<Value>,
    /// (id, name, type).
    credentials: Vec<(String, String, String)>,
    reject_settings: HashSet<String>,
    reject_node_keys: HashSet<String>,
    requests: Vec<Recorded>,
    counter: u64,
}

#[derive(Clone)]
struct AppState {
    key: String,
    inner: Arc<Mutex<Inner>>,
}

/// The running fake; stopped on drop.
pub struct FakeN8n {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    state: AppState,
    runtime: Option<tokio::runtime::Runtime>,
}

impl FakeN8n {
    pub fn start() -> FakeN8n {
        Self::start_with_key(API_KEY)
    }

    /// A fake that accepts `key` only.
    pub fn start_with_key(key: &str) -> FakeN8n {
        let state = AppState {
            key: key.to_string(),
            inner: Arc::default(),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("fake-n8n")
            .enable_all()
            .build()
            .expect("a runtime for the fake n8n");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route(
                "/api/v1/workflows",
                axum::routing::get(list_workflows).post(create_workflow),
            )
            .route("/api/v1/workflows/{id}", axum::routing::get(get_workflow))
            .route("/api/v1/credentials", axum::routing::get(credentials_405))
            .route(
                "/api/v1/credentials/{id}",
                axum::routing::get(credentials_405),
            )
            .fallback(fallback)
            .with_state(state.clone());
        {
            let _guard = runtime.enter();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            runtime.spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
        }
        FakeN8n {
            url,
            state,
            runtime: Some(runtime),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.state.inner.lock().unwrap()
    }

    /// The target's credentials: (id, name, type).
    pub fn set_credentials(&self, creds: Vec<(String, String, String)>) {
        self.inner().credentials = creds;
    }

    /// Plays an n8n whose settings schema lacks `key`.
    pub fn reject_settings_key(&self, key: &str) {
        self.inner().reject_settings.insert(key.to_string());
    }

    /// Plays an n8n whose node schema lacks `key`.
    pub fn reject_node_key(&self, key: &str) {
        self.inner().reject_node_keys.insert(key.to_string());
    }

    /// Adds a workflow as n8n would list it (e.g. to back it up through the API).
    pub fn add_workflow(&self, w: Value) {
        self.inner().workflows.push(w);
    }

    /// Every workflow it holds, as `GET /api/v1/workflows/{id}` gives them.
    pub fn workflows(&self) -> Vec<Value> {
        self.inner().workflows.iter().map(as_get).collect()
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.inner().requests.clone()
    }

    /// The bodies of every `POST /api/v1/workflows` so far.
    pub fn posted(&self) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path == "/api/v1/workflows")
            .filter_map(|r| r.body)
            .collect()
    }

    pub fn clear_requests(&self) {
        self.inner().requests.clear();
    }
}

impl Drop for FakeN8n {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// A stored workflow as GET shows it.
fn as_get(w: &Value) -> Value {
    let mut w = w.clone();
    if let Some(o) = w.as_object_mut() {
        o.entry("tags").or_insert_with(|| json!([]));
    }
    w
}

fn message(status: StatusCode, m: &str) -> Response {
    (status, Json(json!({ "message": m }))).into_response()
}

/// Records the request; false when it lacks the right key (answer
/// [`unauthorized`] then).
fn record(s: &AppState, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> bool {
    let key_ok = headers.get("x-n8n-api-key").and_then(|v| v.to_str().ok()) == Some(&s.key);
    let body = if body.is_empty() {
        None
    } else {
        Some(
            serde_json::from_slice(body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned())),
        )
    };
    s.inner.lock().unwrap().requests.push(Recorded {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().map(String::from),
        key_ok,
        headers: headers.keys().map(|k| k.as_str().to_string()).collect(),
        body,
    });
    key_ok
}

/// n8n's answer to a missing or wrong key.
fn unauthorized() -> Response {
    message(StatusCode::UNAUTHORIZED, "unauthorized")
}

fn b64_encode(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn b64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

async fn list_workflows(
    State(s): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !record(&s, &method, &uri, &headers, &[]) {
        return unauthorized();
    }
    // As n8n: the cursor is base64 of {"limit", "offset"} and wins over `limit`.
    let (limit, offset) = match q.get("cursor") {
        Some(c) => {
            let Some(v) = b64_decode(c).and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            else {
                return message(StatusCode::BAD_REQUEST, "An invalid cursor was provided");
            };
            (
                v["limit"].as_u64().unwrap_or(100) as usize,
                v["offset"].as_u64().unwrap_or(0) as usize,
            )
        }
        None => match q.get("limit").map(|l| l.parse::<usize>()) {
            None => (100, 0),
            Some(Ok(l)) if (1..=250).contains(&l) => (l, 0),
            _ => {
                return message(
                    StatusCode::BAD_REQUEST,
                    "request/query/limit must be <= 250",
                )
            }
        },
    };
    let all: Vec<Value> = s
        .inner
        .lock()
        .unwrap()
        .workflows
        .iter()
        .map(as_get)
        .collect();
    let end = (offset + limit).min(all.len());
    let data: Vec<Value> = all.get(offset.min(all.len())..end).unwrap_or(&[]).to_vec();
    let next = (end < all.len()).then(|| {
        b64_encode(
            json!({"limit": limit, "offset": end})
                .to_string()
                .as_bytes(),
        )
    });
    Json(json!({ "data": data, "nextCursor": next })).into_response()
}

async fn get_workflow(
    State(s): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !record(&s, &method, &uri, &headers, &[]) {
        return unauthorized();
    }
    let inner = s.inner.lock().unwrap();
    match inner.workflows.iter().find(|w| w["id"] == json!(id)) {
        Some(w) => Json(as_get(w)).into_response(),
        None => message(StatusCode::NOT_FOUND, "Not Found"),
    }
}

async fn credentials_405(
    State(s): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if !record(&s, &method, &uri, &headers, &[]) {
        return unauthorized();
    }
    message(StatusCode::METHOD_NOT_ALLOWED, "GET method not allowed")
}

async fn fallback(
    State(s): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !record(&s, &method, &uri, &headers, &body) {
        return unauthorized();
    }
    message(StatusCode::NOT_FOUND, "not found")
}

/// Validates a body as n8n 1.123's `POST /api/v1/workflows` does; the
/// message of its 400 answer.
fn validate(
    body: &Value,
    reject_settings: &HashSet<String>,
    reject_node: &HashSet<String>,
) -> Result<(), String> {
    let Value::Object(b) = body else {
        return Err("request/body must be object".into());
    };
    if b.keys()
        .any(|k| !TOP_WRITABLE.contains(&k.as_str()) && !TOP_READ_ONLY.contains(&k.as_str()))
    {
        return Err("request/body must NOT have additional properties".into());
    }
    for r in REQUIRED {
        if !b.contains_key(*r) {
            return Err(format!("request/body must have required property '{r}'"));
        }
    }
    for r in TOP_READ_ONLY {
        if let Some(v) = b.get(*r) {
            if *r == "shared" && v.pointer("/0/project/id").is_some() {
                return Err("request/body/shared/0/project/id is read-only".into());
            }
            return Err(format!("request/body/{r} is read-only"));
        }
    }
    if !b["name"].is_string() {
        return Err("request/body/name must be string".into());
    }
    let Some(nodes) = b["nodes"].as_array() else {
        return Err("request/body/nodes must be array".into());
    };
    if !b["connections"].is_object() {
        return Err("request/body/connections must be object".into());
    }
    let Some(settings) = b["settings"].as_object() else {
        return Err("request/body/settings must be object".into());
    };
    for (i, n) in nodes.iter().enumerate() {
        let Some(n) = n.as_object() else {
            return Err(format!("request/body/nodes/{i} must be object"));
        };
        if n.keys()
            .any(|k| !NODE_KEYS.contains(&k.as_str()) || reject_node.contains(k))
        {
            return Err(format!(
                "request/body/nodes/{i} must NOT have additional properties"
            ));
        }
        for ro in ["createdAt", "updatedAt"] {
            if n.contains_key(ro) {
                return Err(format!("request/body/nodes/{i}/{ro} is read-only"));
            }
        }
        if let Some(p) = n.get("position") {
            if !p.as_array().is_some_and(|a| a.iter().all(Value::is_number)) {
                return Err(format!("request/body/nodes/{i}/position must be array"));
            }
        }
        if n.get("parameters").is_some_and(|p| !p.is_object()) {
            return Err(format!("request/body/nodes/{i}/parameters must be object"));
        }
        if n.get("credentials").is_some_and(|c| !c.is_object()) {
            return Err(format!("request/body/nodes/{i}/credentials must be object"));
        }
    }
    if settings
        .keys()
        .any(|k| !SETTINGS_KEYS.contains(&k.as_str()) || reject_settings.contains(k))
    {
        return Err("request/body/settings must NOT have additional properties".into());
    }
    for (k, allowed) in [
        ("saveDataErrorExecution", &["all", "none"][..]),
        ("saveDataSuccessExecution", &["all", "none"][..]),
        (
            "callerPolicy",
            &[
                "any",
                "none",
                "workflowsFromAList",
                "workflowsFromSameOwner",
            ][..],
        ),
    ] {
        if let Some(v) = settings.get(k) {
            if !v.as_str().is_some_and(|v| allowed.contains(&v)) {
                return Err(format!(
                    "request/body/settings/{k} must be equal to one of the allowed values: {}",
                    allowed.join(", ")
                ));
            }
        }
    }
    for k in [
        "saveExecutionProgress",
        "saveManualExecutions",
        "availableInMCP",
    ] {
        if settings.get(k).is_some_and(|v| !v.is_boolean()) {
            return Err(format!("request/body/settings/{k} must be boolean"));
        }
    }
    match b.get("staticData") {
        None | Some(Value::Null) | Some(Value::String(_)) | Some(Value::Object(_)) => {}
        Some(_) => return Err("request/body/staticData must be string,object".into()),
    }
    Ok(())
}

/// n8n's `replaceInvalidCredentials`: every enabled node's references
/// resolved against the instance's credentials.
fn resolve_credentials(nodes: &mut [Value], creds: &[(String, String, String)]) {
    for node in nodes {
        if node.get("disabled") == Some(&Value::Bool(true)) {
            continue;
        }
        let Some(Value::Object(refs)) = node.get_mut("credentials") else {
            continue;
        };
        for (ty, r) in refs.iter_mut() {
            let by_name = |name: &str| -> Vec<&(String, String, String)> {
                creds.iter().filter(|c| c.1 == name && c.2 == *ty).collect()
            };
            let (id, name): (Option<String>, String) = match &*r {
                Value::String(n) => (None, n.clone()),
                Value::Object(o) => (
                    o.get("id").and_then(Value::as_str).map(String::from),
                    o.get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                ),
                _ => continue,
            };
            *r = match id {
                None => match by_name(&name).first() {
                    Some(c) => json!({"id": c.0, "name": c.1}),
                    None => json!({"id": null, "name": name}),
                },
                Some(id) => {
                    if let Some(c) = creds.iter().find(|c| c.0 == id && c.2 == *ty) {
                        json!({"id": c.0, "name": c.1})
                    } else {
                        match by_name(&name).as_slice() {
                            [c] => json!({"id": c.0, "name": c.1}),
                            _ => r.clone(),
                        }
                    }
                }
            };
        }
    }
}

fn new_id(counter: u64) -> String {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut x = counter.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5DEE_CE66_D1CE_4E5B;
    (0..16)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ALNUM[(x % ALNUM.len() as u64) as usize] as char
        })
        .collect()
}

async fn create_workflow(
    State(s): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !record(&s, &method, &uri, &headers, &body) {
        return unauthorized();
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return message(StatusCode::BAD_REQUEST, "request/body must be object");
    };
    let mut inner = s.inner.lock().unwrap();
    if let Err(m) = validate(&v, &inner.reject_settings, &inner.reject_node_keys) {
        return message(StatusCode::BAD_REQUEST, &m);
    }
    let mut b: Map<String, Value> = v.as_object().cloned().unwrap_or_default();
    let mut nodes = b
        .remove("nodes")
        .and_then(|n| n.as_array().cloned())
        .unwrap_or_default();
    resolve_credentials(&mut nodes, &inner.credentials);
    inner.counter += 1;
    let id = new_id(inner.counter);
    let now = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    let created = json!({
        "createdAt": now,
        "updatedAt": now,
        "id": id,
        "name": b["name"],
        "active": false,
        "isArchived": false,
        "nodes": nodes,
        "connections": b["connections"],
        "settings": b["settings"],
        "staticData": b.get("staticData").cloned().unwrap_or(Value::Null),
        "meta": null,
        "pinData": null,
        "versionId": format!("00000000-0000-4000-8000-{:012x}", inner.counter),
        "activeVersionId": null,
        "triggerCount": 0,
    });
    inner.workflows.push(created.clone());
    Json(created).into_response()
}
