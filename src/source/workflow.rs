//! Workflows as canonical JSON: one object per workflow whose bytes are a
//! function of the workflow's data alone, so that an unchanged workflow has the
//! same object id in every backup (it costs nothing the next time), and a
//! verification can rebuild the object from restored database rows and demand
//! byte equality.
//!
//! # The canonical form (version [`CANONICAL_FORM`])
//!
//! The canonical workflow is one JSON object, built as follows.
//!
//! **From a database row** ([`canonical_from_db_row`]): the row is
//! `row_to_json(workflow_entity)` as PostgreSQL returns it in a session with
//! `TimeZone=UTC` (the `json` columns `nodes`, `connections`, `settings`,
//! `staticData`, `pinData`, `meta` arrive as nested JSON, not as strings).
//! 1. Every column of the row is a member, under the column's name, with its
//!    value as the row holds it, whatever columns the table has (n8n adds
//!    columns over its versions: none is dropped, none is invented).
//! 2. The caller names the timestamp columns (for n8n: `createdAt`,
//!    `updatedAt`). Each of their values that is a string holding a date-time
//!    with an offset (RFC 3339, e.g. `2026-11-26T07:25:06.173+00:00`; also
//!    PostgreSQL's text form `2026-11-26 07:25:06.173+00`) is rewritten in UTC
//!    as `YYYY-MM-DDTHH:MM:SS.mmmZ`: exactly three fraction digits, finer
//!    digits truncated (not rounded), as n8n's API and `export:workflow` print
//!    them. Any other value (null, `infinity`, a number) is left as it is.
//! 3. A member `tags` is set (replacing a column of that name, if any): an
//!    array of `{"id": <tag id>, "name": <tag name>}` objects, one per tag of
//!    the workflow (given by the caller, from `workflows_tags` ⋈ `tag_entity`),
//!    sorted by name, then by id (byte order), exact duplicates removed. A
//!    workflow without tags has `"tags": []`.
//!
//! **From n8n's public API** ([`canonical_from_api`]): the body of
//! `GET /api/v1/workflows/{id}` (or one element of the list's `data`):
//! 1. Every member of the body, except `shared` and `activeVersion` (both
//!    derived from other tables: project ownership and workflow history).
//! 2. `createdAt` and `updatedAt` are normalised as in step 2 above (n8n
//!    already prints them that way).
//! 3. `tags` is rebuilt as in step 3 above from the body's tags (their
//!    `createdAt`/`updatedAt` are dropped); absent or null tags give `[]`.
//!
//! The two sources do not give the same bytes for the same workflow (the API
//! omits some columns, e.g. `parentFolderId`): a backup records which one it
//! read (`workflow_source` in the manifest).
//!
//! **Serialisation** (both sources), byte for byte:
//! - UTF-8, no whitespace outside strings, no trailing newline;
//! - object members sorted by key in byte order of the keys' UTF-8 (at every
//!   depth), written as `"key":value` separated by `,`; a key appearing twice
//!   in the input text is kept once, with its last value (as serde_json reads
//!   it);
//! - arrays in their order, elements separated by `,`;
//! - `null`, `true`, `false` as such;
//! - numbers as serde_json (without `arbitrary_precision`) prints them: an
//!   integer that fits in `i64`/`u64` in decimal with no sign for positives
//!   and no exponent; any other number as the shortest representation that
//!   reads back as the same `f64`, e.g. `1.2`, `1.0`, `-0.0`, `1e+21` (the
//!   test `serialisation_is_exact` pins these, so that a serde_json update
//!   that prints floats differently is caught before it changes ids);
//! - strings between `"`, escaping `"` as `\"`, `\` as `\\`, U+0008 as `\b`,
//!   U+000C as `\f`, U+000A as `\n`, U+000D as `\r`, U+0009 as `\t`, every
//!   other character below U+0020 as `\u00XX` (lowercase hex), and nothing
//!   else (no escaping of `/`, of U+007F or of non-ASCII characters).
//!
//! Such a document is what `n8n import:workflow` reads: the same member names
//! as `n8n export:workflow` writes (compare `tests/fixtures/cli-export-workflow.json`).
//!
//! **Per-node hashes**: a node's hash is the first 16 bytes (as 32 lowercase
//! hex digits) of BLAKE3 of the node object serialised by the rules above. It
//! tells a changed node from an unchanged one across backups.
use super::json::{Json, Object};
use super::{Result, SourceError};
use std::collections::BTreeSet;
use store_format::contents::{CredentialRef, Node, WorkflowNotStored};

/// The version of the rules above. Changing them changes every workflow's
/// object id (the next backup stores every workflow again), and a verifier
/// must rebuild with the rules the backup was written with.
pub const CANONICAL_FORM: u32 = 1;

/// n8n's timestamp columns of `workflow_entity` (and the API's members).
pub const TIMESTAMP_FIELDS: &[&str] = &["createdAt", "updatedAt"];

/// Members of the API's workflow body that are derived from other tables.
const API_DERIVED: &[&str] = &["shared", "activeVersion"];

/// A workflow in canonical form, with what a manifest says about it.
#[derive(Debug, Clone, PartialEq)]
pub struct CanonicalWorkflow {
    /// The canonical JSON (see the module documentation).
    pub json: Vec<u8>,
    pub summary: WorkflowSummary,
}

/// What a backup's manifest records about a workflow (besides its object).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WorkflowSummary {
    pub id: String,
    pub name: String,
    pub active: bool,
    /// `isArchived`; false when the column does not exist.
    pub archived: bool,
    /// Tag names, sorted.
    pub tags: Vec<String>,
    /// In the workflow's order.
    pub nodes: Vec<Node>,
    /// From `nodes[].credentials`, deduplicated and sorted.
    pub credentials: Vec<CredentialRef>,
    /// Normalised (`YYYY-MM-DDTHH:MM:SS.mmmZ`) when it parsed.
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub version_id: Option<String>,
}

impl WorkflowSummary {
    /// The manifest's entry for this workflow, stored as `item` (one blob,
    /// whose one chunk is `object`) of `size` bytes.
    pub fn into_manifest_entry(
        self,
        item: String,
        object: store_format::ObjectId,
        size: u64,
    ) -> store_format::contents::Workflow {
        store_format::contents::Workflow {
            id: self.id,
            name: self.name,
            active: self.active,
            archived: self.archived,
            tags: self.tags,
            nodes: self.nodes,
            credentials: self.credentials,
            created_at: self.created_at,
            updated_at: self.updated_at,
            version_id: self.version_id,
            item,
            object,
            size,
        }
    }
}

/// The canonical workflow of a `workflow_entity` row (see the module
/// documentation). `tags` are the workflow's tags as (id, name);
/// `timestamp_columns` names the columns to normalise (usually
/// [`TIMESTAMP_FIELDS`]).
pub fn canonical_from_db_row(
    mut row: Object,
    tags: Vec<(String, String)>,
    timestamp_columns: &[String],
) -> Result<CanonicalWorkflow> {
    let id = workflow_id(&row)?;
    for col in timestamp_columns {
        if let Some(v) = row.get_mut(col.as_str()) {
            normalise_timestamp(v);
        }
    }
    row.insert("tags", tags_value(tags));
    finish(row, id)
}

/// The canonical workflow of a row as [`crate::source::postgres`] reads it
/// (`row_to_json` as text, its tags, and its `id` and `name` read beside
/// it), or what the manifest records instead when the row cannot be put in
/// canonical form: a text that is not JSON serde_json reads (a lone UTF-16
/// surrogate `\ud800` in a string, a number beyond `f64`), or a row
/// without the shape n8n gives it (no `nodes` array, a `name` that is not
/// a string). Such a workflow does not stop the backup.
pub fn canonical_from_row_text(
    row_text: &str,
    tags: std::result::Result<Vec<(String, String)>, String>,
    id: &str,
    name: &str,
    timestamp_columns: &[String],
) -> std::result::Result<CanonicalWorkflow, WorkflowNotStored> {
    let not_stored = |reason: String| WorkflowNotStored {
        id: id.to_string(),
        name: name.to_string(),
        reason,
    };
    let row = Json::parse_str(row_text)
        .map_err(|e| not_stored(format!("its row is not JSON that n8n-ark can read: {e}")))?
        .into_object()
        .map_err(|_| not_stored("its row is not a JSON object".into()))?;
    let tags = tags.map_err(|e| not_stored(format!("its tags do not read: {e}")))?;
    canonical_from_db_row(row, tags, timestamp_columns).map_err(|e| not_stored(e.to_string()))
}

/// The canonical workflow of a body of n8n's public API
/// (`GET /api/v1/workflows/{id}`, or an element of the list's `data`).
pub fn canonical_from_api(body: Json) -> Result<CanonicalWorkflow> {
    let Ok(mut obj) = body.into_object() else {
        return Err(SourceError::Invalid(
            "n8n's API gave a workflow that is not a JSON object".into(),
        ));
    };
    let id = workflow_id(&obj)?;
    for k in API_DERIVED {
        obj.remove(k);
    }
    for k in TIMESTAMP_FIELDS {
        if let Some(v) = obj.get_mut(k) {
            normalise_timestamp(v);
        }
    }
    let given = obj.remove("tags").unwrap_or_default();
    let tags = match &given {
        Json::Null => Vec::new(),
        Json::Array(list) => {
            let mut out = Vec::with_capacity(list.len());
            for t in list {
                let tid = t.get("id").and_then(id_string);
                let name = t.get("name").and_then(Json::as_str);
                match (tid, name) {
                    (Some(tid), Some(name)) => out.push((tid, name.to_string())),
                    _ => {
                        return Err(SourceError::Invalid(format!(
                            "workflow {id}: a tag without an id or a name: {}",
                            short(t)
                        )))
                    }
                }
            }
            out
        }
        other => {
            return Err(SourceError::Invalid(format!(
                "workflow {id}: tags is not an array: {}",
                short(other)
            )))
        }
    };
    obj.insert("tags", tags_value(tags));
    finish(obj, id)
}

/// The workflow of an element of n8n's API list, or what the manifest
/// records instead when it cannot be put in canonical form (named with what
/// the element says of its id and name).
pub fn canonical_from_api_or_not(
    body: Json,
) -> std::result::Result<CanonicalWorkflow, WorkflowNotStored> {
    let id = body.get("id").and_then(id_string).unwrap_or_default();
    let name = body
        .get("name")
        .and_then(Json::as_str)
        .unwrap_or("")
        .to_string();
    canonical_from_api(body).map_err(|e| WorkflowNotStored {
        id,
        name,
        reason: e.to_string(),
    })
}

/// `v` serialised by the canonical rules (see the module documentation).
/// Members are sorted because a [`Json`] object keeps them sorted.
pub fn canonical_json(v: &Json) -> Vec<u8> {
    v.to_compact()
}

/// A node's hash: BLAKE3 of its canonical JSON, first 16 bytes, hex.
pub fn node_hash(node: &Json) -> String {
    hex::encode(&blake3::hash(&canonical_json(node)).as_bytes()[..16])
}

/// `s` as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC), when it is a date-time with an
/// offset.
pub fn normalise_timestamp_str(s: &str) -> Option<String> {
    use chrono::{DateTime, FixedOffset, Utc};
    let parsed: Option<DateTime<FixedOffset>> =
        DateTime::parse_from_rfc3339(s).ok().or_else(|| {
            // PostgreSQL's text output (`2026-11-26 07:25:06.173+00`), and a `T`
            // with an hours-only offset.
            ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"]
                .iter()
                .find_map(|f| DateTime::parse_from_str(s, f).ok())
        });
    parsed.map(|t| {
        t.with_timezone(&Utc)
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string()
    })
}

fn normalise_timestamp(v: &mut Json) {
    if let Json::String(s) = v {
        if let Some(n) = normalise_timestamp_str(s) {
            *s = n;
        }
    }
}

/// A workflow's id, as a string (n8n's are strings; very old schemas had
/// integers).
fn workflow_id(obj: &Object) -> Result<String> {
    match obj.get("id") {
        Some(v) => id_string(v).ok_or_else(|| {
            SourceError::Invalid(format!(
                "a workflow whose id is neither a string nor a number: {}",
                short(v)
            ))
        }),
        None => Err(SourceError::Invalid(match obj.get("name") {
            Some(Json::String(n)) => format!("workflow {n:?} has no id"),
            _ => "a workflow without an id".to_string(),
        })),
    }
}

fn id_string(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A short rendering of a value for an error message (the first bytes of
/// its compact form: a deep value is not printed whole).
fn short(v: &Json) -> String {
    let bytes = v.to_compact();
    let mut s = String::from_utf8_lossy(&bytes[..bytes.len().min(80)]).into_owned();
    if bytes.len() > 80 {
        while s.len() > 77 {
            s.pop();
        }
        s.push_str("...");
    }
    s
}

fn tags_value(mut tags: Vec<(String, String)>) -> Json {
    tags.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
    tags.dedup();
    Json::Array(
        tags.into_iter()
            .map(|(id, name)| {
                let mut m = Object::new();
                m.insert("id", Json::String(id));
                m.insert("name", Json::String(name));
                Json::Object(m)
            })
            .collect(),
    )
}

/// Checks the shape, builds the summary, serialises.
fn finish(obj: Object, id: String) -> Result<CanonicalWorkflow> {
    let name = match obj.get("name") {
        Some(Json::String(n)) => n.clone(),
        Some(other) => {
            return Err(SourceError::Invalid(format!(
                "workflow {id}: name is not a string: {}",
                short(other)
            )))
        }
        None => return Err(SourceError::Invalid(format!("workflow {id} has no name"))),
    };
    let nodes = match obj.get("nodes") {
        Some(Json::Array(nodes)) => nodes,
        Some(other) => {
            return Err(SourceError::Invalid(format!(
                "workflow {id} ({name}): nodes is not an array: {}",
                short(other)
            )))
        }
        None => {
            return Err(SourceError::Invalid(format!(
                "workflow {id} ({name}) has no nodes"
            )))
        }
    };
    let mut summary_nodes = Vec::with_capacity(nodes.len());
    let mut credentials = BTreeSet::new();
    for (i, node) in nodes.iter().enumerate() {
        let Json::Object(n) = node else {
            return Err(SourceError::Invalid(format!(
                "workflow {id} ({name}): node {i} is not an object: {}",
                short(node)
            )));
        };
        summary_nodes.push(Node {
            name: n.get("name").and_then(Json::as_str).unwrap_or("").into(),
            node_type: n.get("type").and_then(Json::as_str).unwrap_or("").into(),
            hash: node_hash(node),
        });
        if let Some(Json::Object(creds)) = n.get("credentials") {
            for (cred_type, r) in creds.iter() {
                let (cid, cname) = match r {
                    Json::Object(r) => (
                        r.get("id").and_then(id_string),
                        r.get("name").and_then(Json::as_str).map(String::from),
                    ),
                    // Old n8n referenced credentials by name alone.
                    Json::String(n) => (None, Some(n.clone())),
                    _ => continue,
                };
                credentials.insert(CredentialRef {
                    credential_type: cred_type.clone(),
                    id: cid,
                    name: cname,
                });
            }
        }
    }
    let mut tags: Vec<String> = obj
        .get("tags")
        .and_then(Json::as_array)
        .map(|t| {
            t.iter()
                .filter_map(|t| t.get("name").and_then(Json::as_str).map(String::from))
                .collect()
        })
        .unwrap_or_default();
    tags.sort();
    let text = |k: &str| obj.get(k).and_then(Json::as_str).map(String::from);
    let summary = WorkflowSummary {
        active: obj.get("active").and_then(Json::as_bool).unwrap_or(false),
        archived: obj
            .get("isArchived")
            .and_then(Json::as_bool)
            .unwrap_or(false),
        tags,
        nodes: summary_nodes,
        credentials: credentials.into_iter().collect(),
        created_at: text("createdAt"),
        updated_at: text("updatedAt"),
        version_id: text("versionId"),
        id,
        name,
    };
    let json = obj.to_compact();
    Ok(CanonicalWorkflow { json, summary })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::json::write_str;
    use serde_json::{json, Map, Value};

    /// A serde_json row as the [`Object`] the functions take.
    fn obj(m: Map<String, Value>) -> Object {
        Json::from(Value::Object(m)).into_object().unwrap()
    }
    use std::path::PathBuf;

    fn fixture(name: &str) -> String {
        let local = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        let path = if local.exists() {
            local
        } else {
            PathBuf::from("/work/shared/fixtures").join(name)
        };
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn ts_cols() -> Vec<String> {
        TIMESTAMP_FIELDS.iter().map(|s| s.to_string()).collect()
    }

    /// One `COPY ... FROM stdin` block of the sample dump: column names and rows.
    fn copy_block(sql: &str, table: &str) -> (Vec<String>, Vec<Vec<Option<String>>>) {
        let head = format!("COPY public.{table} (");
        let mut lines = sql.lines();
        let header = lines.find(|l| l.starts_with(&head)).expect("COPY block");
        let cols = header[head.len()..header.find(") FROM").unwrap()]
            .split(", ")
            .map(|c| c.trim_matches('"').to_string())
            .collect();
        let rows = lines
            .take_while(|l| *l != "\\.")
            .map(|l| {
                l.split('\t')
                    .map(|f| (f != "\\N").then(|| unescape_copy(f)))
                    .collect()
            })
            .collect();
        (cols, rows)
    }

    fn unescape_copy(f: &str) -> String {
        let mut out = String::new();
        let mut it = f.chars();
        while let Some(c) = it.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match it.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('b') => out.push('\u{8}'),
                Some('f') => out.push('\u{c}'),
                Some('v') => out.push('\u{b}'),
                Some(o) => out.push(o),
                None => {}
            }
        }
        out
    }

    /// The sample dump's workflows as `row_to_json` would give them (json
    /// columns parsed, timestamps in JSON form), with their tags.
    type Row = (Map<String, Value>, Vec<(String, String)>);

    fn sample_rows() -> Vec<Row> {
        let sql = fixture("n8n-1.123-sample.sql");
        let (cols, rows) = copy_block(&sql, "workflow_entity");
        let (_, tag_rows) = copy_block(&sql, "tag_entity");
        let (_, links) = copy_block(&sql, "workflows_tags");
        let json_cols = [
            "nodes",
            "connections",
            "settings",
            "staticData",
            "pinData",
            "meta",
        ];
        let mut out = Vec::new();
        for r in rows {
            let mut m = Map::new();
            for (c, v) in cols.iter().zip(r) {
                let v = match v {
                    None => Value::Null,
                    Some(v) if json_cols.contains(&c.as_str()) => serde_json::from_str(&v).unwrap(),
                    Some(v) if c == "active" || c == "isArchived" => Value::Bool(v == "t"),
                    Some(v) if c == "triggerCount" || c == "versionCounter" => {
                        json!(v.parse::<i64>().unwrap())
                    }
                    // `2026-11-26 07:28:37.79+00` → `2026-11-26T07:28:37.79+00:00`
                    Some(v) if c == "createdAt" || c == "updatedAt" => {
                        Value::String(format!("{}:00", v.replacen(' ', "T", 1)))
                    }
                    Some(v) => Value::String(v),
                };
                m.insert(c.clone(), v);
            }
            let id = m["id"].as_str().unwrap().to_string();
            let tags = links
                .iter()
                .filter(|l| l[0].as_deref() == Some(id.as_str()))
                .map(|l| {
                    let tid = l[1].clone().unwrap();
                    let t = tag_rows
                        .iter()
                        .find(|t| t[3].as_deref() == Some(tid.as_str()))
                        .unwrap();
                    (tid, t[0].clone().unwrap())
                })
                .collect();
            out.push((m, tags));
        }
        assert!(out.len() >= 40, "the sample has ~40 workflows");
        out
    }

    #[test]
    fn sample_rows_canonicalise_identically_twice_and_parse_back() {
        for (row, tags) in sample_rows() {
            let a = canonical_from_db_row(obj(row.clone()), tags.clone(), &ts_cols()).unwrap();
            let b = canonical_from_db_row(obj(row.clone()), tags.clone(), &ts_cols()).unwrap();
            assert_eq!(a, b);
            // Valid JSON holding every column, with normalised timestamps.
            let back: Value = serde_json::from_slice(&a.json).unwrap();
            for k in row.keys() {
                assert!(back.get(k).is_some(), "{k} missing");
            }
            let created = back["createdAt"].as_str().unwrap();
            assert_eq!(created.len(), 24, "{created}");
            assert!(created.ends_with('Z'));
            assert_eq!(a.summary.created_at.as_deref(), Some(created));
            assert_eq!(
                a.summary.nodes.len(),
                row["nodes"].as_array().unwrap().len()
            );
            // Re-serialising what we wrote gives the same bytes (a fixed point).
            assert_eq!(canonical_json(&Json::from(&back)), a.json);
            // What serde_json prints for the same value (the canonical form's
            // definition, unchanged since it was first written).
            assert_eq!(serde_json::to_vec(&back).unwrap(), a.json);
            // No whitespace outside strings (newlines inside are escaped).
            assert!(!a.json.contains(&b'\n'));
        }
    }

    #[test]
    fn key_order_does_not_matter() {
        for (row, tags) in sample_rows().into_iter().take(10) {
            let a = canonical_from_db_row(obj(row.clone()), tags.clone(), &ts_cols()).unwrap();
            // Reverse every object's key order (at every depth) through text.
            fn reversed(v: &Value) -> String {
                match v {
                    Value::Object(m) => {
                        let mut parts: Vec<String> = m
                            .iter()
                            .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), reversed(v)))
                            .collect();
                        parts.reverse();
                        format!("{{{}}}", parts.join(","))
                    }
                    Value::Array(a) => {
                        format!("[{}]", a.iter().map(reversed).collect::<Vec<_>>().join(","))
                    }
                    v => v.to_string(),
                }
            }
            let text = reversed(&Value::Object(row));
            let row2: Map<String, Value> = serde_json::from_str(&text).unwrap();
            let mut tags2 = tags.clone();
            tags2.reverse();
            let b = canonical_from_db_row(obj(row2), tags2, &ts_cols()).unwrap();
            assert_eq!(a.json, b.json);
        }
    }

    #[test]
    fn whitespace_in_json_columns_does_not_matter() {
        let (row, tags) = sample_rows().swap_remove(3);
        let a = canonical_from_db_row(obj(row.clone()), tags.clone(), &ts_cols()).unwrap();
        // The same row with its json columns as pretty-printed text would give.
        let mut row2 = Map::new();
        for (k, v) in &row {
            let text = serde_json::to_string_pretty(v)
                .unwrap()
                .replace('\n', "\n\t  ");
            row2.insert(k.clone(), serde_json::from_str(&text).unwrap());
        }
        let b = canonical_from_db_row(obj(row2), tags, &ts_cols()).unwrap();
        assert_eq!(a.json, b.json);
    }

    #[test]
    fn a_changed_node_changes_that_nodes_hash_only() {
        let (row, tags) = sample_rows().swap_remove(0);
        let a = canonical_from_db_row(obj(row.clone()), tags.clone(), &ts_cols()).unwrap();
        assert!(a.summary.nodes.len() >= 3);
        let mut row2 = row.clone();
        row2["nodes"][1]["position"] = json!([999, 1]);
        let b = canonical_from_db_row(obj(row2), tags, &ts_cols()).unwrap();
        assert_ne!(a.json, b.json);
        for (i, (x, y)) in a.summary.nodes.iter().zip(&b.summary.nodes).enumerate() {
            assert_eq!(x.name, y.name);
            assert_eq!(x.hash.len(), 32);
            assert_eq!(x.hash == y.hash, i != 1, "node {i}");
        }
        // The node hash is BLAKE3 of the node's canonical JSON.
        let n0 = &row["nodes"][0];
        let expect = blake3::hash(&canonical_json(&Json::from(n0)));
        assert_eq!(
            a.summary.nodes[0].hash,
            hex::encode(&expect.as_bytes()[..16])
        );
    }

    #[test]
    fn timestamps_normalise() {
        for (input, want) in [
            ("2026-11-26T07:25:06.173+00:00", "2026-11-26T07:25:06.173Z"),
            ("2026-11-26T07:25:06.17+00:00", "2026-11-26T07:25:06.170Z"),
            ("2026-11-26T07:25:06+00:00", "2026-11-26T07:25:06.000Z"),
            (
                "2026-11-26T07:25:06.173999+00:00",
                "2026-11-26T07:25:06.173Z",
            ),
            ("2026-11-26T09:25:06.173+02:00", "2026-11-26T07:25:06.173Z"),
            ("2026-11-26T07:25:06.173Z", "2026-11-26T07:25:06.173Z"),
            ("2026-11-26 07:25:06.173+00", "2026-11-26T07:25:06.173Z"),
            ("2026-11-26 02:25:06.173-05", "2026-11-26T07:25:06.173Z"),
        ] {
            assert_eq!(
                normalise_timestamp_str(input).as_deref(),
                Some(want),
                "{input}"
            );
        }
        assert_eq!(normalise_timestamp_str("infinity"), None);
        let row = json!({"id": "w1", "name": "n", "nodes": [], "createdAt": "2026-01-02T03:04:05.6+00:00",
            "updatedAt": "infinity", "other": "2026-01-02T03:04:05.6+00:00"});
        let c = canonical_from_db_row(obj(row.as_object().unwrap().clone()), vec![], &ts_cols())
            .unwrap();
        let back: Value = serde_json::from_slice(&c.json).unwrap();
        assert_eq!(back["createdAt"], "2026-01-02T03:04:05.600Z");
        assert_eq!(back["updatedAt"], "infinity");
        // Only the named columns are timestamps.
        assert_eq!(back["other"], "2026-01-02T03:04:05.6+00:00");
    }

    #[test]
    fn serialisation_is_exact() {
        let v = json!({"b": [1, 1.5, -0.0, 1e21, true, null, "x"], "a": {"é": "\"\\/\u{1}\u{8}\u{c}\n\r\t\u{7f}ü\u{2028}"},
            "B": 18446744073709551615u64, "": -9007199254740993i64});
        let got = String::from_utf8(canonical_json(&Json::from(&v))).unwrap();
        assert_eq!(
            got,
            r#"{"":-9007199254740993,"B":18446744073709551615,"a":{"é":"\"\\/\u0001\b\f\n\r\t"#
                .to_string()
                + "\u{7f}ü\u{2028}\"},\"b\":[1,1.5,-0.0,1e+21,true,null,\"x\"]}"
        );
        // Strings are escaped exactly as serde_json escapes them.
        let s: String = (0u32..0x300).filter_map(char::from_u32).collect();
        let mut mine = Vec::new();
        write_str(&s, &mut mine);
        assert_eq!(mine, serde_json::to_vec(&s).unwrap());
    }

    #[test]
    fn export_as_a_db_row_gives_the_exports_data() {
        let export: Value = serde_json::from_str(&fixture("cli-export-workflow.json")).unwrap();
        let mut row = export.as_object().unwrap().clone();
        let tags: Vec<(String, String)> = row
            .remove("tags")
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["id"].as_str().unwrap().into(),
                    t["name"].as_str().unwrap().into(),
                )
            })
            .collect();
        row.remove("shared");
        row.insert("parentFolderId".into(), Value::Null);
        for k in TIMESTAMP_FIELDS {
            let s = row[*k].as_str().unwrap().replace('Z', "+00:00");
            row.insert(k.to_string(), Value::String(s));
        }
        let c = canonical_from_db_row(obj(row), tags, &ts_cols()).unwrap();
        let back: Value = serde_json::from_slice(&c.json).unwrap();
        for k in [
            "id",
            "name",
            "active",
            "isArchived",
            "nodes",
            "connections",
            "settings",
            "staticData",
            "meta",
            "pinData",
            "versionId",
            "createdAt",
            "updatedAt",
            "description",
        ] {
            assert_eq!(back[k], export[k], "{k}");
        }
        // Same member names as the export (minus `shared`, plus the folder).
        let mut names: Vec<&String> = back.as_object().unwrap().keys().collect();
        let mut want: Vec<&String> = export
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != "shared")
            .collect();
        let folder = "parentFolderId".to_string();
        want.push(&folder);
        names.sort();
        want.sort();
        assert_eq!(names, want);
        assert_eq!(
            back["tags"],
            json!([{"id": "Znx3hXwCCmBL7yZj", "name": "production"}, {"id": "3qoDdhdoBYVGeDss", "name": "webhooks"}])
        );
        let s = &c.summary;
        assert_eq!(s.id, "0iNcgnwjC0dZ9IRp");
        assert_eq!(s.tags, vec!["production", "webhooks"]);
        assert_eq!(s.created_at.as_deref(), Some("2026-11-26T07:25:06.173Z"));
        assert_eq!(s.nodes[0].name, "Schedule Trigger");
        assert_eq!(s.nodes[0].node_type, "n8n-nodes-base.scheduleTrigger");
        assert!(!s.active && !s.archived);
    }

    #[test]
    fn api_body_drops_derived_members() {
        let body: Value = serde_json::from_str(&fixture("api-workflow-get.json")).unwrap();
        let c = canonical_from_api(Json::from(&body)).unwrap();
        let back: Value = serde_json::from_slice(&c.json).unwrap();
        assert!(back.get("shared").is_none());
        assert!(back.get("activeVersion").is_none());
        assert_eq!(
            back["tags"],
            json!([{"id": "Z4wyXNfHd1g0wkKj", "name": "crm"}])
        );
        for k in [
            "nodes",
            "connections",
            "settings",
            "versionId",
            "activeVersionId",
            "createdAt",
        ] {
            assert_eq!(back[k], body[k], "{k}");
        }
        let s = &c.summary;
        assert_eq!(s.id, "ggi9BlSlvU26MEbZ");
        assert!(s.active);
        assert_eq!(
            s.credentials,
            vec![
                CredentialRef {
                    credential_type: "httpBasicAuth".into(),
                    id: Some("3NBe9u3Kr3D4QXsV".into()),
                    name: Some("ACC Billing API (basic)".into()),
                },
                CredentialRef {
                    credential_type: "httpQueryAuth".into(),
                    id: Some("HZ3jIjVvnGTs1gHS".into()),
                    name: Some("ACC Analytics key (query)".into()),
                },
            ]
        );
        assert_eq!(c, canonical_from_api(Json::from(body)).unwrap());
    }

    #[test]
    fn credentials_are_deduplicated_and_sorted() {
        let row = json!({"id": "w", "name": "n", "nodes": [
            {"name": "a", "type": "t", "credentials": {"zType": {"id": "2", "name": "Z"}, "aType": {"id": null, "name": "A"}}},
            {"name": "b", "type": "t", "credentials": {"zType": {"id": "2", "name": "Z"}, "old": "by name"}},
            {"name": "c", "type": "t", "credentials": {"weird": 5}},
        ]});
        let c = canonical_from_db_row(obj(row.as_object().unwrap().clone()), vec![], &[]).unwrap();
        let types: Vec<_> = c
            .summary
            .credentials
            .iter()
            .map(|c| {
                (
                    c.credential_type.as_str(),
                    c.id.as_deref(),
                    c.name.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            types,
            vec![
                ("aType", None, Some("A")),
                ("old", None, Some("by name")),
                ("zType", Some("2"), Some("Z"))
            ]
        );
        let back: Value = serde_json::from_slice(&c.json).unwrap();
        assert_eq!(back["tags"], json!([]));
    }

    #[test]
    fn bad_rows_are_errors_naming_the_workflow() {
        let err = |v: Value| match canonical_from_db_row(
            obj(v.as_object().unwrap().clone()),
            vec![],
            &ts_cols(),
        ) {
            Err(SourceError::Invalid(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(err(json!({"name": "n", "nodes": []})).contains("has no id"));
        assert!(err(json!({"id": "w7", "nodes": []})).contains("w7"));
        assert!(err(json!({"id": "w7", "name": "n", "nodes": {}})).contains("w7"));
        assert!(
            err(json!({"id": "w7", "name": "n", "nodes": "[]"})).contains("nodes is not an array")
        );
        assert!(err(json!({"id": "w7", "name": "n"})).contains("w7"));
        assert!(err(json!({"id": "w7", "name": "n", "nodes": [1]})).contains("w7"));
        assert!(err(json!({"id": [], "name": "n", "nodes": []})).contains("id"));
        assert!(matches!(
            canonical_from_api(Json::from(json!([]))),
            Err(SourceError::Invalid(_))
        ));
        assert!(matches!(
            canonical_from_api(Json::from(json!({"id": "w", "name": "n", "nodes": [], "tags": [{"id": 1}]}))),
            Err(SourceError::Invalid(m)) if m.contains("workflow w")
        ));
        // Odd but well-formed input never panics.
        let odd = json!({"id": 12, "name": "n", "nodes": [{}], "active": "yes", "createdAt": 5, "tags": 3});
        let c = canonical_from_db_row(
            obj(odd.as_object().unwrap().clone()),
            vec![("t".into(), "x".into())],
            &ts_cols(),
        )
        .unwrap();
        assert_eq!(c.summary.id, "12");
        assert!(!c.summary.active);
        assert_eq!(c.summary.tags, vec!["x"]);
    }

    #[test]
    fn a_row_of_any_depth_canonicalises_on_a_small_stack() {
        std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(|| {
                let depth = 100_000;
                let mut deep = String::new();
                for _ in 0..depth {
                    deep.push_str("{\"a\":[");
                }
                deep.push('1');
                for _ in 0..depth {
                    deep.push_str("]}");
                }
                let row = format!(
                    r#"{{"id":"w1","name":"deep","createdAt":"2026-11-26T07:25:06.173+00:00","nodes":[{{"name":"A","type":"t","parameters":{deep}}}],"pinData":{deep}}}"#
                );
                let c = canonical_from_row_text(&row, Ok(vec![]), "w1", "deep", &ts_cols())
                    .unwrap();
                let back = Json::parse(&c.json).unwrap();
                assert_eq!(back.get("pinData").unwrap().depth(), 2 * depth);
                assert_eq!(c.summary.nodes.len(), 1);
                assert_eq!(
                    c.summary.nodes[0].hash,
                    node_hash(back.get("nodes").unwrap().get_index(0).unwrap())
                );
                assert_eq!(canonical_json(&back), c.json);
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn rows_that_cannot_be_canonical_are_named_with_why() {
        let not = |row: &str, tags: std::result::Result<Vec<(String, String)>, String>| {
            canonical_from_row_text(row, tags, "w9", "Nine", &ts_cols()).unwrap_err()
        };
        let n = not(
            r#"{"id":"w9","name":"Nine","nodes":[],"pinData":{"t":"\ud800"}}"#,
            Ok(vec![]),
        );
        assert_eq!((n.id.as_str(), n.name.as_str()), ("w9", "Nine"));
        assert!(n.reason.contains("surrogate"), "{}", n.reason);
        let n = not(
            r#"{"id":"w9","name":"Nine","nodes":[{"n":1e400}]}"#,
            Ok(vec![]),
        );
        assert!(n.reason.contains("number out of range"), "{}", n.reason);
        let n = not(r#"{"id":"w9","name":"Nine","nodes":{}}"#, Ok(vec![]));
        assert!(n.reason.contains("nodes is not an array"), "{}", n.reason);
        let n = not(r#"[1]"#, Ok(vec![]));
        assert!(n.reason.contains("not a JSON object"), "{}", n.reason);
        let n = not(r#"{"id":"w9","name":"Nine","nodes":[]}"#, Err("bad".into()));
        assert!(n.reason.contains("tags"), "{}", n.reason);
        // The same row, well formed, is stored.
        assert!(canonical_from_row_text(
            r#"{"id":"w9","name":"Nine","nodes":[]}"#,
            Ok(vec![]),
            "w9",
            "Nine",
            &ts_cols()
        )
        .is_ok());
    }
}
