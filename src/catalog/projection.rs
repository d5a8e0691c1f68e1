//! Applying one journal record to the catalog, in one SQLite transaction.
//!
//! `backup_history` is made from the journal alone (never from a manifest), so
//! a rebuild after manifests were deleted gives the same rows; everything read
//! from a manifest is dropped when its backup is forgotten.
use super::error::Result;
use super::hex32;
use crate::store::journal::JournalProblem;
use sqlx::sqlite::SqliteConnection;
use sqlx::{Row, SqlitePool};
use std::collections::{BTreeMap, BTreeSet};
use store_format::journal::JournalRecord;
use store_format::{Event, Manifest, ObjectId};

/// What was read of a `BackupCompleted`'s manifest before the transaction.
pub(super) enum ManifestRead {
    /// Not a `BackupCompleted`, or one forgotten later in the same catch-up.
    NotNeeded,
    Loaded(Box<Manifest>),
    /// Missing or damaged: the error, for the backup's note.
    Unavailable(String),
}

/// The host part of a record's writer (`host:pid`).
fn host_of(writer: &str) -> &str {
    writer.rsplit_once(':').map(|(h, _)| h).unwrap_or(writer)
}

fn json<T: serde::Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).expect("catalog documents serialize")
}

/// Where the catalog stands: the last journal position applied (a record's
/// sequence number, or the last number a problem covers) and its state hash
/// (see [`state_hash`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Position {
    pub seq: u64,
    pub hash: String,
}

/// The `catalog_state.last_hash` of a position: the hex hash of the file's
/// bytes, or `none` where there was no file (a gap, an empty claim).
pub(super) fn state_hash(h: Option<&[u8; 32]>) -> String {
    match h {
        Some(h) => hex32(h),
        None => "none".to_string(),
    }
}

/// Moves `catalog_state` from `from` to `to` inside `tx`; false when another
/// process moved it since this one looked.
async fn advance(
    tx: &mut SqliteConnection,
    store_id: &str,
    location: &str,
    from: &Position,
    to: &Position,
) -> Result<bool> {
    let moved = sqlx::query(
        "UPDATE catalog_state SET last_seq = ?, last_hash = ?, store_location = ?, updated_ms = ? \
         WHERE id = 1 AND store_id = ? AND last_seq = ? AND last_hash = ?",
    )
    .bind(to.seq as i64)
    .bind(&to.hash)
    .bind(location)
    .bind(crate::store::now_ms())
    .bind(store_id)
    .bind(from.seq as i64)
    .bind(&from.hash)
    .execute(&mut *tx)
    .await?;
    Ok(moved.rows_affected() == 1)
}

/// Records a journal problem (one that loses an event, or a chain break
/// noted beside its record).
async fn insert_problem(tx: &mut SqliteConnection, p: &JournalProblem) -> Result<()> {
    sqlx::query(
        "INSERT INTO journal_problems (seq, through, kind, message, file_hash, written_after_ms, \
         written_before_ms, repaired_by, found_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (seq) DO UPDATE SET through = excluded.through, kind = excluded.kind, \
         message = excluded.message, file_hash = excluded.file_hash, \
         written_after_ms = excluded.written_after_ms, written_before_ms = excluded.written_before_ms, \
         repaired_by = COALESCE(journal_problems.repaired_by, excluded.repaired_by)",
    )
    .bind(p.seq as i64)
    .bind(p.through as i64)
    .bind(p.kind.as_str())
    .bind(&p.message)
    .bind(p.file_hash.as_ref().map(hex32))
    .bind(p.written_after_ms)
    .bind(p.written_before_ms)
    .bind(p.repaired_by.map(|s| s as i64))
    .bind(crate::store::now_ms())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Applies a problem that lost an event (a damaged, missing or misplaced
/// record) at its place in the journal, unless another process moved the
/// catalog since `from`.
pub(super) async fn apply_problem(
    pool: &SqlitePool,
    store_id: &str,
    location: &str,
    from: &Position,
    problem: &JournalProblem,
) -> Result<bool> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let to = Position {
        seq: problem.through,
        hash: state_hash(problem.file_hash.as_ref()),
    };
    if !advance(&mut tx, store_id, location, from, &to).await? {
        tx.rollback().await?;
        return Ok(false);
    }
    insert_problem(&mut tx, problem).await?;
    tx.commit().await?;
    Ok(true)
}

/// Records problems found by a whole replay (`check`) that the catalog did
/// not know, e.g. a record damaged after the catalog applied it.
pub(super) async fn note_problems(pool: &SqlitePool, problems: &[JournalProblem]) -> Result<()> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    for p in problems {
        insert_problem(&mut tx, p).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Applies `rec` unless another process moved the catalog since `from`: then
/// nothing is written and it returns false. `chain` is the chain break
/// reported at this record, if any (the record itself is intact).
#[allow(clippy::too_many_arguments)]
pub(super) async fn apply(
    pool: &SqlitePool,
    store_id: &str,
    location: &str,
    from: &Position,
    rec: &JournalRecord,
    hash: &[u8; 32],
    chain: Option<&JournalProblem>,
    manifest: ManifestRead,
) -> Result<bool> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let to = Position {
        seq: rec.seq,
        hash: hex32(hash),
    };
    if !advance(&mut tx, store_id, location, from, &to).await? {
        tx.rollback().await?;
        return Ok(false);
    }
    if let Some(p) = chain {
        insert_problem(&mut tx, p).await?;
    }
    let (kind, version) = rec.event.kind_version();
    sqlx::query(
        "INSERT INTO events (seq, hash, prev, time_ms, writer, kind, version, body) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(rec.seq as i64)
    .bind(hex32(hash))
    .bind(hex32(&rec.prev))
    .bind(rec.time_ms)
    .bind(&rec.writer)
    .bind(kind)
    .bind(version as i64)
    .bind(rec.event.encode_body())
    .execute(&mut *tx)
    .await?;
    let seq = rec.seq as i64;
    let host = host_of(&rec.writer);
    match &rec.event {
        Event::BackupStarted(e) => {
            sqlx::query(
                "INSERT INTO backup_history (backup_id, kind, host, status, started_ms, sources, first_seq, last_seq) \
                 VALUES (?, ?, ?, 'running', ?, ?, ?, ?) \
                 ON CONFLICT (backup_id) DO UPDATE SET kind = excluded.kind, host = excluded.host, \
                 started_ms = excluded.started_ms, sources = excluded.sources, last_seq = excluded.last_seq",
            )
            .bind(&e.backup_id)
            .bind(&e.kind)
            .bind(if e.host.is_empty() { host } else { e.host.as_str() })
            .bind(rec.time_ms)
            .bind(json(&e.sources))
            .bind(seq)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
        }
        Event::BackupCompleted(e) => {
            let started = rec.time_ms - e.duration_ms as i64;
            let note = match &manifest {
                ManifestRead::Loaded(m) if m.backup_id != e.backup_id => Some(format!(
                    "contents unavailable: manifest {} describes backup {}, not this one",
                    e.manifest.short(),
                    m.backup_id
                )),
                ManifestRead::Loaded(m) if m.contents.is_none() => {
                    Some("the manifest describes no contents (a raw ingest)".to_string())
                }
                ManifestRead::Unavailable(err) => Some(format!("contents unavailable: {err}")),
                _ => e.recovered.clone(),
            };
            let c = &e.counts;
            sqlx::query(
                "INSERT INTO backup_history (backup_id, kind, host, status, started_ms, finished_ms, duration_ms, \
                 manifest, logical_bytes, stored_bytes, new_bytes, new_objects, reused_objects, objects, \
                 database_count, table_count, workflow_count, credential_count, config_file_count, item_count, \
                 note, first_seq, last_seq) \
                 VALUES (?, ?, ?, 'completed', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (backup_id) DO UPDATE SET kind = excluded.kind, \
                 host = COALESCE(backup_history.host, excluded.host), status = 'completed', \
                 started_ms = COALESCE(backup_history.started_ms, excluded.started_ms), \
                 finished_ms = excluded.finished_ms, duration_ms = excluded.duration_ms, \
                 manifest = excluded.manifest, logical_bytes = excluded.logical_bytes, \
                 stored_bytes = excluded.stored_bytes, new_bytes = excluded.new_bytes, \
                 new_objects = excluded.new_objects, reused_objects = excluded.reused_objects, \
                 objects = excluded.objects, database_count = excluded.database_count, \
                 table_count = excluded.table_count, workflow_count = excluded.workflow_count, \
                 credential_count = excluded.credential_count, config_file_count = excluded.config_file_count, \
                 item_count = excluded.item_count, note = excluded.note, last_seq = excluded.last_seq, \
                 from_manifest = 0",
            )
            .bind(&e.backup_id)
            .bind(&e.kind)
            .bind(host)
            .bind(started)
            .bind(rec.time_ms)
            .bind(e.duration_ms as i64)
            .bind(e.manifest.to_hex())
            .bind(e.logical_bytes as i64)
            .bind(e.stored_bytes as i64)
            .bind(e.new_bytes as i64)
            .bind(e.new_objects as i64)
            .bind(e.reused_objects as i64)
            .bind(e.objects as i64)
            .bind(c.databases as i64)
            .bind(c.tables as i64)
            .bind(c.workflows as i64)
            .bind(c.credentials as i64)
            .bind(c.config_files as i64)
            .bind(c.items as i64)
            .bind(note)
            .bind(seq)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
            delete_contents(&mut tx, &e.backup_id).await?;
            if let ManifestRead::Loaded(m) = &manifest {
                if m.backup_id == e.backup_id {
                    insert_contents(&mut tx, &e.backup_id, m).await?;
                }
            }
        }
        Event::BackupFailed(e) => {
            sqlx::query(
                "INSERT INTO backup_history (backup_id, kind, host, status, started_ms, finished_ms, duration_ms, \
                 failed_stage, failed_message, first_seq, last_seq) \
                 VALUES (?, ?, ?, 'failed', ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (backup_id) DO UPDATE SET \
                 status = CASE WHEN backup_history.status IN ('completed', 'forgotten') \
                          THEN backup_history.status ELSE 'failed' END, \
                 finished_ms = CASE WHEN backup_history.status IN ('completed', 'forgotten') \
                          THEN backup_history.finished_ms ELSE excluded.finished_ms END, \
                 duration_ms = CASE WHEN backup_history.status IN ('completed', 'forgotten') \
                          THEN backup_history.duration_ms ELSE excluded.duration_ms END, \
                 host = COALESCE(backup_history.host, excluded.host), \
                 started_ms = COALESCE(backup_history.started_ms, excluded.started_ms), \
                 failed_stage = excluded.failed_stage, failed_message = excluded.failed_message, \
                 last_seq = excluded.last_seq",
            )
            .bind(&e.backup_id)
            .bind(&e.kind)
            .bind(host)
            .bind(rec.time_ms - e.duration_ms as i64)
            .bind(rec.time_ms)
            .bind(e.duration_ms as i64)
            .bind(&e.stage)
            .bind(&e.message)
            .bind(seq)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
        }
        Event::BackupForgotten(e) => {
            let pairs = version_pairs(&mut tx, &e.backup_id).await?;
            delete_contents(&mut tx, &e.backup_id).await?;
            sqlx::query(
                "INSERT INTO backup_history (backup_id, kind, host, status, manifest, forgotten_reason, \
                 forgotten_ms, first_seq, last_seq) \
                 VALUES (?, 'unknown', ?, 'forgotten', ?, ?, ?, ?, ?) \
                 ON CONFLICT (backup_id) DO UPDATE SET status = 'forgotten', \
                 forgotten_reason = excluded.forgotten_reason, forgotten_ms = excluded.forgotten_ms, \
                 note = NULL, last_seq = excluded.last_seq",
            )
            .bind(&e.backup_id)
            .bind(host)
            .bind(e.manifest.to_hex())
            .bind(&e.reason)
            .bind(rec.time_ms)
            .bind(seq)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
            for (wid, oid) in pairs {
                recompute_version(&mut tx, &wid, &oid).await?;
            }
        }
        Event::RestorePerformed(e) => {
            let result = if e.items.iter().any(|i| i.outcome == "failed") {
                "partial"
            } else {
                "ok"
            };
            insert_restore(
                &mut tx,
                RestoreRow {
                    restore_id: &e.restore_id,
                    backup_id: &e.backup_id,
                    what: &e.what,
                    target: &e.target,
                    result,
                    stage: None,
                    message: None,
                    safety_backup: e.safety_backup.as_deref(),
                    items: &e.items,
                    finished_ms: rec.time_ms,
                    duration_ms: e.duration_ms,
                    seq,
                },
            )
            .await?;
        }
        Event::RestoreFailed(e) => {
            insert_restore(
                &mut tx,
                RestoreRow {
                    restore_id: &e.restore_id,
                    backup_id: &e.backup_id,
                    what: &e.what,
                    target: &e.target,
                    result: "failed",
                    stage: Some(&e.stage),
                    message: Some(&e.message),
                    safety_backup: e.safety_backup.as_deref(),
                    items: &e.items,
                    finished_ms: rec.time_ms,
                    duration_ms: e.duration_ms,
                    seq,
                },
            )
            .await?;
        }
        Event::VerificationCompleted(e) => {
            insert_verification(
                &mut tx,
                VerificationRow {
                    verification_id: &e.verification_id,
                    backup_id: &e.backup_id,
                    level: &e.level,
                    result: if e.passed { "passed" } else { "failed" },
                    checks_run: e.checks_run,
                    failures: &e.failures,
                    sandbox: e.sandbox.as_deref(),
                    stage: None,
                    message: None,
                    finished_ms: rec.time_ms,
                    duration_ms: e.duration_ms,
                    seq,
                },
            )
            .await?;
        }
        Event::VerificationFailed(e) => {
            insert_verification(
                &mut tx,
                VerificationRow {
                    verification_id: &e.verification_id,
                    backup_id: &e.backup_id,
                    level: &e.level,
                    result: "error",
                    checks_run: 0,
                    failures: &[],
                    sandbox: None,
                    stage: Some(&e.stage),
                    message: Some(&e.message),
                    finished_ms: rec.time_ms,
                    duration_ms: e.duration_ms,
                    seq,
                },
            )
            .await?;
        }
        Event::VerificationPolicySet(e) => {
            sqlx::query(
                "INSERT OR REPLACE INTO verification_policy (seq, set_ms, set_by, writer, rules) \
                 VALUES (?, ?, ?, ?, ?)",
            )
            .bind(seq)
            .bind(rec.time_ms)
            .bind(&e.set_by)
            .bind(&rec.writer)
            .bind(json(&e.rules))
            .execute(&mut *tx)
            .await?;
        }
        Event::JournalRepaired(e) => {
            for r in &e.problems {
                sqlx::query(
                    "UPDATE journal_problems SET repaired_by = ? WHERE seq = ? AND through = ? AND kind = ? \
                     AND file_hash IS ? AND repaired_by IS NULL",
                )
                .bind(seq)
                .bind(r.seq as i64)
                .bind(r.through as i64)
                .bind(&r.problem)
                .bind(r.file_hash.as_ref().map(hex32))
                .execute(&mut *tx)
                .await?;
            }
        }
        Event::StoreInitialized(_) | Event::GcCompleted(_) | Event::Unknown { .. } => {}
    }
    tx.commit().await?;
    Ok(true)
}

struct RestoreRow<'a> {
    restore_id: &'a str,
    backup_id: &'a str,
    what: &'a str,
    target: &'a str,
    result: &'a str,
    stage: Option<&'a str>,
    message: Option<&'a str>,
    safety_backup: Option<&'a str>,
    items: &'a [store_format::event::RestoredItem],
    finished_ms: i64,
    duration_ms: u64,
    seq: i64,
}

struct VerificationRow<'a> {
    verification_id: &'a str,
    backup_id: &'a str,
    level: &'a str,
    result: &'a str,
    checks_run: u64,
    failures: &'a [store_format::event::VerificationCheck],
    sandbox: Option<&'a str>,
    stage: Option<&'a str>,
    message: Option<&'a str>,
    finished_ms: i64,
    duration_ms: u64,
    seq: i64,
}

async fn insert_verification(conn: &mut SqliteConnection, v: VerificationRow<'_>) -> Result<()> {
    sqlx::query(
        "INSERT OR REPLACE INTO verification_history (verification_id, backup_id, level, result, checks_run, \
         failure_count, failures, sandbox, failed_stage, message, finished_ms, duration_ms, seq) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(v.verification_id)
    .bind(v.backup_id)
    .bind(v.level)
    .bind(v.result)
    .bind(v.checks_run.min(i64::MAX as u64) as i64)
    .bind(v.failures.len() as i64)
    .bind(json(v.failures))
    .bind(v.sandbox)
    .bind(v.stage)
    .bind(v.message)
    .bind(v.finished_ms)
    .bind(v.duration_ms.min(i64::MAX as u64) as i64)
    .bind(v.seq)
    .execute(conn)
    .await?;
    Ok(())
}

async fn insert_restore(conn: &mut SqliteConnection, r: RestoreRow<'_>) -> Result<()> {
    let count = |outcome: &str| r.items.iter().filter(|i| i.outcome == outcome).count() as i64;
    sqlx::query(
        "INSERT OR REPLACE INTO restore_history (restore_id, backup_id, what, target, result, failed_stage, \
         message, safety_backup, restored, skipped, failed, items, finished_ms, duration_ms, seq) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(r.restore_id)
    .bind(r.backup_id)
    .bind(r.what)
    .bind(r.target)
    .bind(r.result)
    .bind(r.stage)
    .bind(r.message)
    .bind(r.safety_backup)
    .bind(count("restored"))
    .bind(count("skipped"))
    .bind(count("failed"))
    .bind(json(r.items))
    .bind(r.finished_ms)
    .bind(r.duration_ms as i64)
    .bind(r.seq)
    .execute(conn)
    .await?;
    Ok(())
}

/// The (workflow id, object id) pairs a backup holds.
async fn version_pairs(
    conn: &mut SqliteConnection,
    backup_id: &str,
) -> Result<Vec<(String, String)>> {
    let rows =
        sqlx::query("SELECT workflow_id, object_id FROM backup_workflows WHERE backup_id = ?")
            .bind(backup_id)
            .fetch_all(&mut *conn)
            .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("workflow_id")?, r.try_get("object_id")?)))
        .collect()
}

async fn delete_contents(conn: &mut SqliteConnection, backup_id: &str) -> Result<()> {
    for sql in [
        "DELETE FROM backup_config_files WHERE backup_id = ?",
        "DELETE FROM backup_tables WHERE backup_id = ?",
        "DELETE FROM backup_databases WHERE backup_id = ?",
        "DELETE FROM backup_credentials WHERE backup_id = ?",
        "DELETE FROM backup_workflows WHERE backup_id = ?",
        "DELETE FROM backup_contents WHERE backup_id = ?",
    ] {
        sqlx::query(sql).bind(backup_id).execute(&mut *conn).await?;
    }
    Ok(())
}

async fn insert_contents(conn: &mut SqliteConnection, backup_id: &str, m: &Manifest) -> Result<()> {
    let c = m.contents.clone().unwrap_or_default();
    let workflows_doc: Vec<serde_json::Value> = c
        .workflows
        .iter()
        .map(|w| {
            serde_json::json!({
                "id": w.id,
                "name": w.name,
                "active": w.active,
                "archived": w.archived,
                "tags": w.tags,
                "created_at": w.created_at,
                "updated_at": w.updated_at,
                "version_id": w.version_id,
                "node_count": w.nodes.len(),
                "object": w.object.to_hex(),
                "size": w.size,
            })
        })
        .collect();
    let checksums: BTreeMap<&str, String> = c
        .workflows
        .iter()
        .map(|w| (w.id.as_str(), w.object.to_hex()))
        .collect();
    let table_count: usize = c.databases.iter().map(|d| d.tables.len()).sum();
    let config_count = c
        .config_files
        .iter()
        .filter(|f| f.file_type != store_format::contents::FileType::Missing)
        .count();
    sqlx::query(
        "INSERT OR REPLACE INTO backup_contents (backup_id, workflow_count, credential_count, config_file_count, \
         database_count, table_count, workflows_manifest, credentials_manifest, config_files_manifest, \
         database_schema_manifest, verification_checksums, encryption_key_fingerprint, encryption_key_source, \
         workflow_source, globals_item, manifest_host, manifest_started_ms, manifest_finished_ms, labels, \
         workflows_not_stored) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(backup_id)
    .bind(c.workflows.len() as i64)
    .bind(c.credentials.len() as i64)
    .bind(config_count as i64)
    .bind(c.databases.len() as i64)
    .bind(table_count as i64)
    .bind(json(&workflows_doc))
    .bind(json(&c.credentials))
    .bind(json(&c.config_files))
    .bind(json(&c.databases))
    .bind(json(&checksums))
    .bind(&c.encryption_key_fingerprint)
    .bind(&c.encryption_key_source)
    .bind(&c.workflow_source)
    .bind(&c.globals_item)
    .bind(&m.host)
    .bind(m.started_ms)
    .bind(m.finished_ms)
    .bind(json(&m.labels))
    .bind(json(&c.workflows_not_stored))
    .execute(&mut *conn)
    .await?;

    // One statement for all the backup's workflows (rows as a JSON array
    // read back with json_each): thousands of single-row statements cost a
    // round trip to sqlx's SQLite thread each, a third of a second for 2,000.
    let rows: Vec<serde_json::Value> = c
        .workflows
        .iter()
        .map(|w| {
            let types: BTreeSet<&str> = w.nodes.iter().map(|n| n.node_type.as_str()).collect();
            serde_json::json!([
                w.id,
                w.name,
                w.active,
                w.archived,
                json(&w.tags),
                w.nodes.len(),
                json(&types),
                json(&w.nodes),
                json(&w.credentials),
                w.created_at,
                w.updated_at,
                w.version_id,
                w.object.to_hex(),
                w.size,
                w.item,
            ])
        })
        .collect();
    sqlx::query(
        "INSERT OR REPLACE INTO backup_workflows (backup_id, workflow_id, name, active, archived, tags, \
         node_count, node_types, nodes, credentials, created_at, updated_at, version_id, object_id, size, item) \
         SELECT ?1, j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4, j.value ->> 5, \
         j.value ->> 6, j.value ->> 7, j.value ->> 8, j.value ->> 9, j.value ->> 10, j.value ->> 11, \
         j.value ->> 12, j.value ->> 13, j.value ->> 14 FROM json_each(?2) j ORDER BY j.key",
    )
    .bind(backup_id)
    .bind(json(&rows))
    .execute(&mut *conn)
    .await?;
    for cr in &c.credentials {
        sqlx::query(
            "INSERT OR REPLACE INTO backup_credentials (backup_id, credential_id, name, credential_type, \
             created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(backup_id)
        .bind(&cr.id)
        .bind(&cr.name)
        .bind(&cr.credential_type)
        .bind(&cr.created_at)
        .bind(&cr.updated_at)
        .execute(&mut *conn)
        .await?;
    }
    for d in &c.databases {
        sqlx::query(
            "INSERT OR REPLACE INTO backup_databases (backup_id, database_name, server_version, \
             server_version_num, pg_dump_version, is_n8n, migration_head, dump_item, snapshot) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(backup_id)
        .bind(&d.name)
        .bind(&d.server_version)
        .bind(d.server_version_num as i64)
        .bind(&d.pg_dump_version)
        .bind(d.is_n8n)
        .bind(&d.migration_head)
        .bind(&d.dump_item)
        .bind(&d.snapshot)
        .execute(&mut *conn)
        .await?;
        for t in &d.tables {
            sqlx::query(
                "INSERT OR REPLACE INTO backup_tables (backup_id, database_name, schema_name, table_name, \
                 row_count, columns) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(backup_id)
            .bind(&d.name)
            .bind(&t.schema)
            .bind(&t.name)
            .bind(t.rows as i64)
            .bind(json(&t.columns))
            .execute(&mut *conn)
            .await?;
        }
    }
    for f in &c.config_files {
        let file_type = serde_json::to_value(f.file_type)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "file".into());
        sqlx::query(
            "INSERT OR REPLACE INTO backup_config_files (backup_id, path, file_type, required, mode, uid, gid, \
             mtime_ms, size, checksum, link_target, item) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(backup_id)
        .bind(&f.path)
        .bind(file_type)
        .bind(f.required)
        .bind(f.mode as i64)
        .bind(f.uid as i64)
        .bind(f.gid as i64)
        .bind(f.mtime_ms)
        .bind(f.size as i64)
        .bind(&f.checksum)
        .bind(&f.link_target)
        .bind(&f.item)
        .execute(&mut *conn)
        .await?;
    }

    // This backup's place in time: the order every query uses.
    let (started, _): (i64, String) = sqlx::query_as(
        "SELECT COALESCE(started_ms, 0), backup_id FROM backup_history WHERE backup_id = ?",
    )
    .bind(backup_id)
    .fetch_one(&mut *conn)
    .await?;
    let mut seen = BTreeSet::new();
    let firsts: Vec<_> = c
        .workflows
        .iter()
        .filter(|w| seen.insert(w.id.as_str()))
        .collect();
    let pairs: Vec<(&str, String)> = firsts
        .iter()
        .map(|w| (w.id.as_str(), w.object.to_hex()))
        .collect();
    let mut existing = load_versions(conn, &pairs).await?;
    let mut merged_rows = Vec::with_capacity(firsts.len());
    for (w, (wid, oid)) in firsts.iter().zip(&pairs) {
        let candidate = Version {
            name: w.name.clone(),
            version_id: w.version_id.clone(),
            updated_at: w.updated_at.clone(),
            first: (started, backup_id.to_string()),
            last: (started, backup_id.to_string()),
            count: 1,
        };
        let merged = match existing.remove(&(wid.to_string(), oid.clone())) {
            Some(v) => v.merge(candidate),
            None => candidate,
        };
        merged_rows.push(serde_json::json!([
            wid,
            oid,
            merged.name,
            merged.version_id,
            merged.updated_at,
            merged.first.1,
            merged.first.0,
            merged.last.1,
            merged.last.0,
            merged.count,
        ]));
    }
    sqlx::query(
        "INSERT OR REPLACE INTO workflow_versions (workflow_id, object_id, name, version_id, updated_at, \
         first_backup_id, first_seen_ms, last_backup_id, last_seen_ms, backup_count) \
         SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4, j.value ->> 5, \
         j.value ->> 6, j.value ->> 7, j.value ->> 8, j.value ->> 9 FROM json_each(?1) j ORDER BY j.key",
    )
    .bind(json(&merged_rows))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The `workflow_versions` rows of these (workflow id, object id) pairs, in one query.
async fn load_versions(
    conn: &mut SqliteConnection,
    pairs: &[(&str, String)],
) -> Result<std::collections::HashMap<(String, String), Version>> {
    let rows = sqlx::query(
        "SELECT workflow_id, object_id, name, version_id, updated_at, first_backup_id, first_seen_ms, \
         last_backup_id, last_seen_ms, backup_count FROM workflow_versions \
         WHERE (workflow_id, object_id) IN (SELECT j.value ->> 0, j.value ->> 1 FROM json_each(?1) j)",
    )
    .bind(json(pairs))
    .fetch_all(&mut *conn)
    .await?;
    let mut out = std::collections::HashMap::with_capacity(rows.len());
    for r in rows {
        out.insert(
            (r.try_get("workflow_id")?, r.try_get("object_id")?),
            Version {
                name: r.try_get("name")?,
                version_id: r.try_get("version_id")?,
                updated_at: r.try_get("updated_at")?,
                first: (r.try_get("first_seen_ms")?, r.try_get("first_backup_id")?),
                last: (r.try_get("last_seen_ms")?, r.try_get("last_backup_id")?),
                count: r.try_get("backup_count")?,
            },
        );
    }
    Ok(out)
}

/// A `workflow_versions` row: one version (object id) of one workflow.
struct Version {
    name: String,
    version_id: Option<String>,
    updated_at: Option<String>,
    /// (started_ms, backup_id) of the first and last backups holding it.
    first: (i64, String),
    last: (i64, String),
    count: i64,
}

impl Version {
    fn merge(self, other: Version) -> Version {
        let (name, version_id, updated_at, first) = if other.first < self.first {
            (other.name, other.version_id, other.updated_at, other.first)
        } else {
            (self.name, self.version_id, self.updated_at, self.first)
        };
        Version {
            name,
            version_id,
            updated_at,
            first,
            last: self.last.max(other.last),
            count: self.count + other.count,
        }
    }
}

async fn store_version(
    conn: &mut SqliteConnection,
    wid: &str,
    oid: &str,
    v: &Version,
) -> Result<()> {
    sqlx::query(
        "INSERT OR REPLACE INTO workflow_versions (workflow_id, object_id, name, version_id, updated_at, \
         first_backup_id, first_seen_ms, last_backup_id, last_seen_ms, backup_count) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(wid)
    .bind(oid)
    .bind(&v.name)
    .bind(&v.version_id)
    .bind(&v.updated_at)
    .bind(&v.first.1)
    .bind(v.first.0)
    .bind(&v.last.1)
    .bind(v.last.0)
    .bind(v.count)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Recomputes one version from the completed backups that still hold it
/// (after one of them was forgotten); removes it when none does.
async fn recompute_version(conn: &mut SqliteConnection, wid: &str, oid: &str) -> Result<()> {
    sqlx::query("DELETE FROM workflow_versions WHERE workflow_id = ? AND object_id = ?")
        .bind(wid)
        .bind(oid)
        .execute(&mut *conn)
        .await?;
    let rows = sqlx::query(
        "SELECT w.name, w.version_id, w.updated_at, w.backup_id, COALESCE(h.started_ms, 0) AS started_ms \
         FROM backup_workflows w JOIN backup_history h ON h.backup_id = w.backup_id \
         WHERE w.workflow_id = ? AND w.object_id = ? AND h.status = 'completed'",
    )
    .bind(wid)
    .bind(oid)
    .fetch_all(&mut *conn)
    .await?;
    let mut acc: Option<Version> = None;
    for r in rows {
        let at: (i64, String) = (r.try_get("started_ms")?, r.try_get("backup_id")?);
        let v = Version {
            name: r.try_get("name")?,
            version_id: r.try_get("version_id")?,
            updated_at: r.try_get("updated_at")?,
            first: at.clone(),
            last: at,
            count: 1,
        };
        acc = Some(match acc {
            Some(a) => a.merge(v),
            None => v,
        });
    }
    if let Some(v) = acc {
        store_version(conn, wid, oid, &v).await?;
    }
    Ok(())
}

/// Shows a backup whose completion record was lost (the journal is damaged)
/// as completed, from its intact manifest: a row with `from_manifest` set and
/// the note given, and its contents. Only where the journal says nothing
/// else of it (no row, or a start without an end); the backup's own record,
/// or the one a repair writes, replaces it. Returns whether it added one.
pub(super) async fn insert_from_manifest(
    pool: &SqlitePool,
    manifest_id: &ObjectId,
    m: &Manifest,
    note: &str,
) -> Result<bool> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM backup_history WHERE backup_id = ?")
            .bind(&m.backup_id)
            .fetch_optional(&mut *tx)
            .await?;
    if status.as_deref().is_some_and(|s| s != "running") {
        tx.rollback().await?;
        return Ok(false);
    }
    let c = crate::store::ingest::counts_of(m);
    let objects: std::collections::HashSet<&ObjectId> = m.object_ids().collect();
    sqlx::query(
        "INSERT INTO backup_history (backup_id, kind, host, status, started_ms, finished_ms, duration_ms, \
         manifest, logical_bytes, objects, database_count, table_count, workflow_count, credential_count, \
         config_file_count, item_count, note, first_seq, last_seq, from_manifest) \
         VALUES (?, ?, ?, 'completed', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 1) \
         ON CONFLICT (backup_id) DO UPDATE SET status = 'completed', finished_ms = excluded.finished_ms, \
         duration_ms = excluded.duration_ms, manifest = excluded.manifest, \
         logical_bytes = excluded.logical_bytes, objects = excluded.objects, \
         database_count = excluded.database_count, table_count = excluded.table_count, \
         workflow_count = excluded.workflow_count, credential_count = excluded.credential_count, \
         config_file_count = excluded.config_file_count, item_count = excluded.item_count, \
         note = excluded.note, from_manifest = 1",
    )
    .bind(&m.backup_id)
    .bind(&m.kind)
    .bind(&m.host)
    .bind(m.started_ms)
    .bind(m.finished_ms)
    .bind((m.finished_ms - m.started_ms).max(0))
    .bind(manifest_id.to_hex())
    .bind(m.logical_size() as i64)
    .bind(objects.len() as i64)
    .bind(c.databases as i64)
    .bind(c.tables as i64)
    .bind(c.workflows as i64)
    .bind(c.credentials as i64)
    .bind(c.config_files as i64)
    .bind(c.items as i64)
    .bind(note)
    .execute(&mut *tx)
    .await?;
    delete_contents(&mut tx, &m.backup_id).await?;
    insert_contents(&mut tx, &m.backup_id, m).await?;
    tx.commit().await?;
    Ok(true)
}
