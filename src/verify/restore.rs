//! The `restore` level: every database dump of a backup streamed once from
//! the store into one sandbox, then compared with the manifest by a few
//! queries per database (one for the schema, one counting every table, one
//! for the migration head, one for the workflow rows); config files
//! re-hashed; one credential test-decrypted with the backed-up key.
use super::{needed_by, object_failure, object_users, Checks, Result, VerifyError, VerifyOptions};
use crate::sandbox::{quote_ident, Purpose, Sandbox, SandboxError};
use crate::store::{Store, StoreError};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use store_format::contents::{Column, Database, FileType};
use store_format::{Item, Manifest, ObjectId};
use tokio::io::AsyncRead;
use zeroize::Zeroizing;

/// The first error of reading an item's chunks, kept aside: the sandbox sees
/// only an I/O error, the verification names the object.
type ReadFailure = Arc<Mutex<Option<(ObjectId, StoreError)>>>;

/// An item's bytes as a reader, each chunk read, decoded and checked against
/// its id and length (four ahead), the first failure kept in `failure`.
fn item_reader(store: &Store, item: &Item, failure: ReadFailure) -> Pin<Box<dyn AsyncRead + Send>> {
    let store = store.clone();
    let name = item.name.clone();
    let s = futures::stream::iter(item.chunks.clone())
        .map(move |c| {
            let (store, name, failure) = (store.clone(), name.clone(), failure.clone());
            async move {
                let r = match store.read_object(&c.id).await {
                    Ok((_, plain)) if plain.len() == c.len as usize => Ok(Bytes::from(plain)),
                    Ok((_, plain)) => Err(StoreError::Invalid(format!(
                        "{name}: chunk {} has {} bytes, the manifest says {}",
                        c.id,
                        plain.len(),
                        c.len
                    ))),
                    Err(e) => Err(e),
                };
                r.map_err(|e| {
                    let msg = format!("{name}: {e}");
                    let mut slot = failure.lock().unwrap_or_else(|p| p.into_inner());
                    if slot.is_none() {
                        *slot = Some((c.id, e));
                    }
                    std::io::Error::other(msg)
                })
            }
        })
        .buffered(4);
    Box::pin(tokio_util::io::StreamReader::new(s))
}

/// Records a chunk that could not be read as a failed check (missing,
/// damaged, wrong length), or returns the error when the store itself
/// failed (nothing proven).
fn chunk_failure(
    checks: &mut Checks,
    users: &BTreeMap<ObjectId, Vec<String>>,
    id: ObjectId,
    e: StoreError,
) -> Result<()> {
    let items = users.get(&id).cloned().unwrap_or_default();
    match e {
        StoreError::Invalid(msg) => {
            checks.fail(
                "object_length",
                id.to_hex(),
                format!(
                    "the length the manifest gives (needed by {})",
                    needed_by(&items)
                ),
                msg,
            );
            Ok(())
        }
        e => object_failure(checks, &id, &items, e),
    }
}

fn col_text(c: &Column) -> String {
    format!(
        "{} {}{}",
        c.name,
        c.data_type,
        if c.nullable { "" } else { " not null" }
    )
}

/// What the restored database holds, as the backup described its source.
struct Restored {
    /// (schema, name) -> columns.
    tables: BTreeMap<(String, String), Vec<Column>>,
}

const SCHEMA_SQL: &str = "SELECT n.nspname::text AS schema, c.relname::text AS name, \
      coalesce((SELECT json_agg(json_build_array(a.attname::text, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull) ORDER BY a.attnum) \
                  FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '[]'::json) AS columns \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
    WHERE c.relkind IN ('r', 'p') \
      AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
      AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' \
    ORDER BY 1, 2";

fn bad_answer(what: &str, row: &Value) -> VerifyError {
    let mut s = row.to_string();
    s.truncate(200);
    VerifyError::Sandbox(SandboxError::Failed(format!(
        "the sandbox answered {what} with an unexpected row: {s}"
    )))
}

async fn read_schema(sb: &dyn Sandbox, db: &str) -> Result<Restored> {
    let rows = sb.query_json(db, SCHEMA_SQL).await?;
    let mut tables = BTreeMap::new();
    for row in rows {
        let (Some(schema), Some(name), Some(cols)) = (
            row.get("schema").and_then(Value::as_str),
            row.get("name").and_then(Value::as_str),
            row.get("columns").and_then(Value::as_array),
        ) else {
            return Err(bad_answer("the list of tables", &row));
        };
        let mut columns = Vec::with_capacity(cols.len());
        for c in cols {
            let (Some(n), Some(t), Some(null)) = (
                c.get(0).and_then(Value::as_str),
                c.get(1).and_then(Value::as_str),
                c.get(2).and_then(Value::as_bool),
            ) else {
                return Err(bad_answer("the list of columns", &row));
            };
            columns.push(Column {
                name: n.into(),
                data_type: t.into(),
                nullable: null,
            });
        }
        tables.insert((schema.to_string(), name.to_string()), columns);
    }
    Ok(Restored { tables })
}

/// Tables and columns, then every table's rows counted (one `count(*)` per
/// table, all in one statement), then the migration head.
async fn compare_database(
    sb: &dyn Sandbox,
    sbdb: &str,
    d: &Database,
    checks: &mut Checks,
) -> Result<Restored> {
    let restored = read_schema(sb, sbdb).await?;
    let mut expected: BTreeSet<(String, String)> = BTreeSet::new();
    let mut to_count = Vec::new();
    for t in &d.tables {
        let key = (t.schema.clone(), t.name.clone());
        expected.insert(key.clone());
        let subject = format!("{}.{}.{}", d.name, t.schema, t.name);
        let Some(cols) = restored.tables.get(&key) else {
            checks.fail(
                "table_present",
                subject,
                "present",
                "missing from the restored database",
            );
            continue;
        };
        checks.ok("table_present", subject.clone(), "present");
        if cols == &t.columns {
            checks.ok(
                "columns",
                subject.clone(),
                format!("{} columns", cols.len()),
            );
        } else {
            let want: Vec<String> = t.columns.iter().map(col_text).collect();
            let got: Vec<String> = cols.iter().map(col_text).collect();
            let missing: Vec<&String> = want.iter().filter(|c| !got.contains(c)).collect();
            let extra: Vec<&String> = got.iter().filter(|c| !want.contains(c)).collect();
            let (exp, found) = if missing.is_empty() && extra.is_empty() {
                (
                    format!("columns in the order {}", want.join(", ")),
                    format!("in the order {}", got.join(", ")),
                )
            } else {
                (
                    missing
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    extra
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                )
            };
            checks.fail(
                "columns",
                subject.clone(),
                if exp.is_empty() {
                    "no other columns".into()
                } else {
                    exp
                },
                if found.is_empty() {
                    "these missing".into()
                } else {
                    found
                },
            );
        }
        to_count.push((t, subject));
    }
    for (schema, name) in restored.tables.keys() {
        if !expected.contains(&(schema.clone(), name.clone())) {
            checks.fail(
                "table_present",
                format!("{}.{schema}.{name}", d.name),
                "absent (the manifest does not list it)",
                "present in the restored database",
            );
        }
    }
    if !to_count.is_empty() {
        let sql = to_count
            .iter()
            .enumerate()
            .map(|(i, (t, _))| {
                format!(
                    "SELECT {i} AS i, count(*)::int8 AS n FROM ONLY {}.{}",
                    quote_ident(&t.schema),
                    quote_ident(&t.name)
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let rows = sb.query_json(sbdb, &sql).await?;
        let mut counts: BTreeMap<usize, u64> = BTreeMap::new();
        for row in &rows {
            match (
                row.get("i").and_then(Value::as_u64),
                row.get("n").and_then(Value::as_u64),
            ) {
                (Some(i), Some(n)) => {
                    counts.insert(i as usize, n);
                }
                _ => return Err(bad_answer("the row counts", row)),
            }
        }
        for (i, (t, subject)) in to_count.into_iter().enumerate() {
            let Some(&n) = counts.get(&i) else {
                return Err(VerifyError::Sandbox(SandboxError::Failed(format!(
                    "the sandbox did not count the rows of {subject}"
                ))));
            };
            checks.compare(
                "row_count",
                subject,
                format!("{} rows", t.rows),
                format!("{n} rows"),
            );
        }
    }
    let has_migrations = restored
        .tables
        .get(&("public".to_string(), "migrations".to_string()))
        .is_some_and(|c| {
            c.iter().any(|c| c.name == "timestamp") && c.iter().any(|c| c.name == "name")
        });
    if d.migration_head.is_some() || has_migrations {
        let found = if has_migrations {
            let rows = sb
                .query_json(
                    sbdb,
                    "SELECT name::text AS name FROM public.migrations ORDER BY \"timestamp\" DESC, id DESC LIMIT 1",
                )
                .await?;
            rows.first()
                .and_then(|r| r.get("name"))
                .and_then(Value::as_str)
                .map(str::to_string)
        } else {
            None
        };
        let show = |h: &Option<String>| h.clone().unwrap_or_else(|| "none".into());
        checks.compare(
            "migration_head",
            d.name.clone(),
            show(&d.migration_head),
            show(&found),
        );
    }
    Ok(restored)
}

/// Every workflow rebuilt from the restored rows, exactly as a backup reads
/// them, into its canonical JSON, hashed with the store's codec: equal to
/// the manifest's object id.
async fn compare_workflows(
    store: &Store,
    sb: &dyn Sandbox,
    sbdb: &str,
    m: &Manifest,
    restored: &Restored,
    checks: &mut Checks,
) -> Result<()> {
    let contents = m.contents.as_ref().expect("caller checked");
    let has = |t: &str| {
        restored
            .tables
            .contains_key(&("public".to_string(), t.to_string()))
    };
    let manifest_wfs: BTreeMap<&str, &store_format::contents::Workflow> = contents
        .workflows
        .iter()
        .map(|w| (w.id.as_str(), w))
        .collect();
    let label = |id: &str, name: &str| format!("workflow {id} ({name})");
    if !has("workflow_entity") {
        for w in &contents.workflows {
            checks.fail(
                "workflow_object",
                label(&w.id, &w.name),
                w.object.to_hex(),
                "absent: the restored database has no workflow_entity",
            );
        }
        return Ok(());
    }
    let tags = if has("workflows_tags") && has("tag_entity") {
        "coalesce((SELECT json_agg(json_build_array(t.id, t.name) ORDER BY t.name, t.id) \
                     FROM public.workflows_tags wt JOIN public.tag_entity t ON t.id = wt.\"tagId\" \
                    WHERE wt.\"workflowId\" = w.id), '[]'::json)"
    } else {
        "'[]'::json"
    };
    let timestamp_columns: Vec<String> = restored
        .tables
        .get(&("public".to_string(), "workflow_entity".to_string()))
        .map(|cols| {
            cols.iter()
                .filter(|c| c.data_type.starts_with("timestamp"))
                .map(|c| c.name.clone())
                .collect()
        })
        .unwrap_or_default();
    // Each row as text inside the answer's JSON (a string), parsed by the
    // same reader as a backup's: a row nested any depth reads.
    let rows = sb
        .query_json(
            sbdb,
            &format!(
                "SELECT row_to_json(w)::text AS row, ({tags})::text AS tags, w.id::text AS id, \
                 w.name::text AS name FROM public.workflow_entity w ORDER BY w.id"
            ),
        )
        .await?;
    let codec = store.object_codec();
    let not_stored: BTreeMap<&str, &store_format::contents::WorkflowNotStored> = contents
        .workflows_not_stored
        .iter()
        .map(|w| (w.id.as_str(), w))
        .collect();
    let mut seen = BTreeSet::new();
    for r in rows {
        let text = |k: &str| r.get(k).and_then(Value::as_str);
        let (Some(row_text), Some(tags)) = (text("row"), text("tags")) else {
            return Err(bad_answer("the workflow rows", &r));
        };
        let id_hint = text("id").unwrap_or("").to_string();
        let name_hint = text("name").unwrap_or("").to_string();
        let wf = match crate::source::workflow::canonical_from_row_text(
            row_text,
            crate::source::postgres::parse_tags(tags),
            &id_hint,
            &name_hint,
            &timestamp_columns,
        ) {
            Ok(wf) => wf,
            Err(e) => {
                seen.insert(id_hint.clone());
                match not_stored.get(id_hint.as_str()) {
                    // The backup could not store it either, and said so.
                    Some(n) => checks.notes.push(format!(
                        "{}: not stored by the backup ({}); its row is in the dump and \
                         still does not read: {}",
                        label(&id_hint, &name_hint),
                        n.reason,
                        e.reason
                    )),
                    None => checks.fail(
                        "workflow_object",
                        label(&id_hint, &name_hint),
                        "a workflow row that rebuilds into canonical JSON",
                        e.reason,
                    ),
                }
                continue;
            }
        };
        if let Some(n) = not_stored.get(wf.summary.id.as_str()) {
            seen.insert(wf.summary.id.clone());
            checks.notes.push(format!(
                "{}: not stored by the backup ({}), but its restored row reads",
                label(&n.id, &n.name),
                n.reason
            ));
            continue;
        }
        let id = wf.summary.id.clone();
        let found = codec.id_of(&wf.json);
        seen.insert(id.clone());
        match manifest_wfs.get(id.as_str()) {
            Some(w) if w.object == found => {
                checks.ok("workflow_object", label(&id, &w.name), found.to_hex());
            }
            Some(w) => checks.fail(
                "workflow_object",
                label(&id, &w.name),
                w.object.to_hex(),
                format!(
                    "{} (rebuilt from the restored row{})",
                    found.to_hex(),
                    if w.name != wf.summary.name {
                        format!(", named {:?}", wf.summary.name)
                    } else {
                        String::new()
                    }
                ),
            ),
            None => checks.fail(
                "workflow_object",
                label(&id, &wf.summary.name),
                "absent (the manifest does not list it)",
                format!("present in the restored database as {}", found.to_hex()),
            ),
        }
    }
    for w in &contents.workflows {
        if !seen.contains(&w.id) {
            checks.fail(
                "workflow_object",
                label(&w.id, &w.name),
                w.object.to_hex(),
                "absent from the restored database",
            );
        }
    }
    for n in &contents.workflows_not_stored {
        if !seen.contains(&n.id) {
            checks.notes.push(format!(
                "{}: not stored by the backup ({}), and absent from the restored database",
                label(&n.id, &n.name),
                n.reason
            ));
        }
    }
    Ok(())
}

/// Reads a whole (small) item through [`item_reader`]; a chunk that fails is
/// recorded and gives None.
async fn read_small_item(
    store: &Store,
    item: &Item,
    users: &BTreeMap<ObjectId, Vec<String>>,
    checks: &mut Checks,
) -> Result<Option<Zeroizing<Vec<u8>>>> {
    let failure: ReadFailure = Arc::default();
    let mut r = item_reader(store, item, failure.clone());
    let mut buf = Zeroizing::new(Vec::with_capacity(item.size.min(1 << 24) as usize));
    let res = tokio::io::AsyncReadExt::read_to_end(&mut r, &mut buf).await;
    let taken = failure.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some((id, e)) = taken {
        chunk_failure(checks, users, id, e)?;
        return Ok(None);
    }
    res.map_err(StoreError::Input)?;
    Ok(Some(buf))
}

/// Config files re-hashed from the store (BLAKE3 of the content, as the
/// manifest's checksum); returns n8n's encryption key as the backed-up files
/// give it (found as a backup finds it: [`crate::source::n8n_key`]) and the
/// file holding it, when they do.
async fn compare_config_files(
    store: &Store,
    m: &Manifest,
    users: &BTreeMap<ObjectId, Vec<String>>,
    checks: &mut Checks,
) -> Result<Option<(String, Zeroizing<String>)>> {
    let Some(contents) = &m.contents else {
        return Ok(None);
    };
    // The content of every file that matched its checksum, for the finder.
    let mut texts: BTreeMap<String, Zeroizing<Vec<u8>>> = BTreeMap::new();
    for f in &contents.config_files {
        if f.file_type != FileType::File {
            continue;
        }
        let (Some(item_name), Some(sum)) = (&f.item, &f.checksum) else {
            continue;
        };
        let Some(item) = m.items.iter().find(|i| &i.name == item_name) else {
            checks.fail(
                "config_file",
                f.path.clone(),
                format!("item {item_name}"),
                "no such item in the manifest",
            );
            continue;
        };
        let Some(bytes) = read_small_item(store, item, users, checks).await? else {
            continue;
        };
        let got = blake3::hash(&bytes).to_hex().to_string();
        checks.compare("config_file", f.path.clone(), sum.clone(), got.clone());
        if got == *sum && bytes.len() <= 1 << 20 {
            texts.insert(f.path.clone(), bytes);
        }
    }
    let found = crate::source::n8n_key::find(&contents.config_files, &mut |p: &str| {
        texts.get(p).map(|b| b.to_vec())
    });
    Ok(found.map(|k| (k.source, k.key)))
}

/// One credential of the restored n8n database test-decrypted with the
/// backed-up key (and the key checked against the manifest's fingerprint).
#[allow(clippy::too_many_arguments)]
async fn test_decrypt(
    store: &Store,
    sb: &dyn Sandbox,
    sbdb: &str,
    m: &Manifest,
    d: &Database,
    restored: &Restored,
    env: &(String, Zeroizing<String>),
    checks: &mut Checks,
) -> Result<()> {
    let (path, key) = env;
    if let Some(fp) = m
        .contents
        .as_ref()
        .and_then(|c| c.encryption_key_fingerprint.as_ref())
    {
        let mine = crate::source::config_files::fingerprint(
            &crate::source::config_files::fingerprint_key(store),
            key,
        );
        checks.compare(
            "encryption_key_fingerprint",
            format!("N8N_ENCRYPTION_KEY of {path}"),
            fp.clone(),
            mine,
        );
    }
    if !restored
        .tables
        .contains_key(&("public".to_string(), "credentials_entity".to_string()))
    {
        checks.notes.push(format!(
            "{}: no credentials_entity table, so no credential was test-decrypted",
            d.name
        ));
        return Ok(());
    }
    let rows = sb
        .query_json(
            sbdb,
            "SELECT id::text AS id, name::text AS name, data::text AS data FROM public.credentials_entity \
             WHERE data IS NOT NULL AND data <> '' ORDER BY id LIMIT 1",
        )
        .await?;
    let Some(row) = rows.into_iter().next() else {
        checks.notes.push(format!(
            "{}: no credential to test-decrypt (credentials_entity is empty)",
            d.name
        ));
        return Ok(());
    };
    let id = row
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let name = row
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let data = Zeroizing::new(
        row.get("data")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
    );
    drop(row);
    let subject = format!("credential {id} ({name})");
    match super::cryptojs::decrypts_to_json(&data, key) {
        Ok(()) => {
            checks.ok("credential_decrypt", subject, "decrypts to JSON");
            checks.notes.push(format!(
                "credential {name:?} decrypts with the backed-up key (N8N_ENCRYPTION_KEY of {path})"
            ));
        }
        Err(e) => checks.fail(
            "credential_decrypt",
            subject,
            format!("decrypts to JSON with N8N_ENCRYPTION_KEY of {path}"),
            e.to_string(),
        ),
    }
    Ok(())
}

/// The PostgreSQL major version of the backup's server.
fn major_of(d: &Database) -> Option<u32> {
    if d.server_version_num >= 100_000 {
        return Some(d.server_version_num / 10_000);
    }
    crate::source::postgres::parse_major(&d.server_version).filter(|&v| v >= 10)
}

pub(super) async fn verify_restore(
    store: &Store,
    m: &Manifest,
    opts: &VerifyOptions,
    checks: &mut Checks,
    r: &dyn crate::ops::Reporter,
) -> Result<()> {
    let users = object_users(m);
    let databases: Vec<&Database> = m
        .contents
        .as_ref()
        .map(|c| c.databases.iter().collect())
        .unwrap_or_default();
    r.stage("config files");
    let env = compare_config_files(store, m, &users, checks).await?;
    if databases.is_empty() {
        checks
            .notes
            .push("the backup holds no database dump: nothing to restore into a sandbox".into());
        return Ok(());
    }
    let major = match major_of(databases[0]) {
        Some(v) => v,
        None => {
            return Err(VerifyError::Invalid(format!(
                "the manifest gives no usable server version for database {} ({:?})",
                databases[0].name, databases[0].server_version
            )))
        }
    };
    let spec = opts.sandbox.spec(Purpose::Verify, major);
    let cancel = &opts.cancel;
    let interrupted = |when: &str| {
        VerifyError::Interrupted(format!(
            "{} {when}",
            cancel.interrupted().unwrap_or_default()
        ))
    };
    // Provisioning is not cut short (a half-made sandbox is harder to
    // remove than a whole one): an interruption then is honoured after it.
    r.stage("sandbox");
    let sb = opts
        .sandboxes
        .provision(opts.sandbox.sandbox, &spec, r)
        .await?;
    checks.sandbox = Some(sb.describe());
    let ran = tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(interrupted("while the backup was loaded and compared in the sandbox")),
        ran = in_sandbox(store, m, &databases, &users, env.as_ref(), &*sb, checks, r) => ran,
    };
    r.stage("teardown");
    let down = sb.teardown().await;
    match (ran, down) {
        (Err(VerifyError::Interrupted(m)), Ok(())) => Err(VerifyError::Interrupted(format!(
            "{m}; the sandbox {} was removed",
            checks.sandbox.as_deref().unwrap_or("")
        ))),
        (ran, down) => {
            ran?;
            down?;
            Ok(())
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn in_sandbox(
    store: &Store,
    m: &Manifest,
    databases: &[&Database],
    users: &BTreeMap<ObjectId, Vec<String>>,
    env: Option<&(String, Zeroizing<String>)>,
    sb: &dyn Sandbox,
    checks: &mut Checks,
    r: &dyn crate::ops::Reporter,
) -> Result<()> {
    let workflows_from = m.contents.as_ref().and_then(|c| c.workflow_source.clone());
    for (i, d) in databases.iter().enumerate() {
        // Loaded under a name of ours (the backup's may be one the sandbox
        // reserves, like `postgres`); checks name the backup's.
        let name = format!("ark_verify_{i}");
        let name = name.as_str();
        let Some(item) = m.items.iter().find(|i| i.name == d.dump_item) else {
            checks.fail(
                "dump_load",
                d.name.clone(),
                format!("item {}", d.dump_item),
                "no such item in the manifest",
            );
            continue;
        };
        r.stage(&format!("load {}", d.name));
        let failure: ReadFailure = Arc::default();
        let loaded = sb
            .restore_dump(name, item_reader(store, item, failure.clone()))
            .await;
        let taken = failure.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some((id, e)) = taken {
            // The dump could not be read whole: the chunk is the failure.
            chunk_failure(checks, users, id, e)?;
            checks.fail(
                "dump_load",
                d.name.clone(),
                format!("{} loads into the sandbox", d.dump_item),
                format!("not loaded: object {id} of it could not be read"),
            );
            continue;
        }
        match loaded {
            Ok(()) => checks.ok("dump_load", d.name.clone(), "loaded"),
            Err(SandboxError::Failed(msg)) => {
                checks.fail(
                    "dump_load",
                    d.name.clone(),
                    format!("{} loads into the sandbox", d.dump_item),
                    msg,
                );
                continue;
            }
            Err(e) => return Err(e.into()),
        }
        r.stage(&format!("compare {}", d.name));
        let restored = compare_database(sb, name, d, checks).await?;
        if d.is_n8n {
            if workflows_from.as_deref() == Some(&format!("postgres:{}", d.name)) {
                compare_workflows(store, sb, name, m, &restored, checks).await?;
            } else if let Some(src) = &workflows_from {
                checks.notes.push(format!(
                    "the workflows were read from {src}, not from the dump: not compared with {}'s rows",
                    d.name
                ));
            }
            match env {
                Some(env) => test_decrypt(store, sb, name, m, d, &restored, env, checks).await?,
                None => checks.notes.push(
                    "no backed-up file gives N8N_ENCRYPTION_KEY (a compose file's n8n service, its env files, a .env): no credential was test-decrypted"
                        .into(),
                ),
            }
        }
    }
    Ok(())
}
