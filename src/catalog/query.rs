//! Questions the catalog answers without touching the store: the list of
//! backups, one backup's contents, and one workflow's history.
//!
//! Backups are in time order everywhere: by start time, then backup id (ids
//! sort by time too). `latest` is the last completed one in that order that
//! is not a safety backup (one a restore took of what it replaced).
use super::error::{CatalogError, Result};
use super::Catalog;
use serde::{Deserialize, Serialize};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;
use std::collections::BTreeMap;
use store_format::contents::{Column, CredentialRef, Node};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackupStatus {
    /// Started and not finished: running, or interrupted (its process stopped).
    Running,
    Completed,
    Failed,
    /// Removed by retention or by hand; its contents are gone from the store.
    Forgotten,
}

impl BackupStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupStatus::Running => "running",
            BackupStatus::Completed => "completed",
            BackupStatus::Failed => "failed",
            BackupStatus::Forgotten => "forgotten",
        }
    }
}

impl std::fmt::Display for BackupStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for BackupStatus {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s {
            "running" => BackupStatus::Running,
            "completed" => BackupStatus::Completed,
            "failed" => BackupStatus::Failed,
            "forgotten" => BackupStatus::Forgotten,
            _ => {
                return Err(format!(
                    "unknown status {s:?} (running, completed, failed or forgotten)"
                ))
            }
        })
    }
}

/// What `latest:safety` names: the newest safety backup (see
/// [`BackupRecord::safety`]).
pub const SAFETY: &str = "safety";

/// One backup as the journal tells it (`backup_history`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackupRecord {
    pub backup_id: String,
    pub kind: String,
    pub host: Option<String>,
    pub status: BackupStatus,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    pub duration_ms: Option<u64>,
    /// The manifest's object id, hex (completed and forgotten backups).
    pub manifest: Option<String>,
    pub logical_bytes: Option<u64>,
    /// What the backup would occupy alone (every object it references, encoded).
    pub stored_bytes: Option<u64>,
    /// What it added to the store.
    pub new_bytes: Option<u64>,
    pub new_objects: Option<u64>,
    pub reused_objects: Option<u64>,
    pub objects: Option<u64>,
    pub database_count: Option<u64>,
    pub table_count: Option<u64>,
    pub workflow_count: Option<u64>,
    pub credential_count: Option<u64>,
    pub config_file_count: Option<u64>,
    pub item_count: Option<u64>,
    pub failed_stage: Option<String>,
    pub failed_message: Option<String>,
    pub forgotten_reason: Option<String>,
    pub forgotten_ms: Option<i64>,
    pub sources: Vec<String>,
    /// Why a completed backup's contents are not in the catalog.
    pub note: Option<String>,
    /// The newest verification of this backup, at any level.
    pub last_verification: Option<VerificationSummary>,
    /// When a `restore`-level verification of this backup last passed (ms
    /// since the epoch): the last time it was proven restorable.
    pub last_proven_restorable_ms: Option<i64>,
    /// A safety backup: taken by a restore of what it was about to replace
    /// (not by an operator or a schedule). Never `latest` nor `latest:KIND`;
    /// `latest:safety` is the newest of them.
    pub safety: bool,
    /// For a safety backup, the restore that took it (when known).
    pub safety_restore: Option<String>,
}

/// A backup's newest verification, as `list` and `show` give it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerificationSummary {
    pub verification_id: String,
    /// `exists`, `data` or `restore`.
    pub level: String,
    /// `passed`, `failed` (a check did not hold) or `error` (it could not run).
    pub result: String,
    pub checks_run: u64,
    pub failure_count: u64,
    /// The first check that did not hold.
    pub first_failure: Option<store_format::event::VerificationCheck>,
    /// Why it could not run (`error`).
    pub message: Option<String>,
    pub finished_ms: i64,
}

/// Which backups [`Catalog::list_backups`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BackupFilter {
    pub kind: Option<String>,
    pub status: Option<BackupStatus>,
    /// Forgotten backups are left out unless asked for (or `status` is forgotten).
    pub include_forgotten: bool,
}

/// Which workflows [`Catalog::show`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WorkflowFilter {
    /// A part of the name, any case.
    pub name_contains: Option<String>,
    pub active: Option<bool>,
    /// A tag the workflow carries (any case).
    pub tag: Option<String>,
}

impl WorkflowFilter {
    pub fn is_empty(&self) -> bool {
        self == &WorkflowFilter::default()
    }

    pub fn matches(&self, w: &WorkflowEntry) -> bool {
        if let Some(n) = &self.name_contains {
            if !w.name.to_lowercase().contains(&n.to_lowercase()) {
                return false;
            }
        }
        if let Some(a) = self.active {
            if w.active != a {
                return false;
            }
        }
        if let Some(t) = &self.tag {
            let t = t.to_lowercase();
            if !w.tags.iter().any(|x| x.to_lowercase() == t) {
                return false;
            }
        }
        true
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkflowEntry {
    pub id: String,
    pub name: String,
    pub active: bool,
    pub archived: bool,
    pub tags: Vec<String>,
    pub node_count: u64,
    /// Distinct node types, sorted.
    pub node_types: Vec<String>,
    /// Credentials the nodes use (type, id, name).
    pub credentials: Vec<CredentialRef>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub version_id: Option<String>,
    /// The object holding the workflow's canonical JSON, hex.
    pub object_id: String,
    pub size: u64,
    /// The nodes (name, type, hash), for diffs; not printed by `show`.
    #[serde(skip)]
    pub nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CredentialEntry {
    pub id: String,
    pub name: String,
    pub credential_type: String,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigFileEntry {
    pub path: String,
    /// `file`, `directory`, `symlink` or `missing`.
    pub file_type: String,
    pub required: bool,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime_ms: i64,
    pub size: u64,
    pub checksum: Option<String>,
    pub link_target: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableEntry {
    pub schema: String,
    pub name: String,
    pub rows: u64,
    pub columns: Vec<Column>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatabaseView {
    pub name: String,
    pub server_version: String,
    pub server_version_num: u32,
    pub pg_dump_version: String,
    pub is_n8n: bool,
    /// The newest applied n8n migration.
    pub migration_head: Option<String>,
    pub total_rows: u64,
    pub tables: Vec<TableEntry>,
}

/// One backup: its history row and what it holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackupView {
    pub backup: BackupRecord,
    /// False when the catalog has no contents for it (see `backup.note`).
    pub contents_available: bool,
    pub workflow_count: u64,
    pub credential_count: u64,
    pub config_file_count: u64,
    pub database_count: u64,
    pub table_count: u64,
    pub workflow_filter: WorkflowFilter,
    /// The workflows that pass the filter, by name.
    pub workflows: Vec<WorkflowEntry>,
    pub credentials: Vec<CredentialEntry>,
    pub config_files: Vec<ConfigFileEntry>,
    pub databases: Vec<DatabaseView>,
    pub workflow_source: Option<String>,
    pub encryption_key_fingerprint: Option<String>,
    pub encryption_key_source: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// The workflows the backup read but could not store (named, with why).
    pub workflows_not_stored: Vec<store_format::contents::WorkflowNotStored>,
}

/// One version (object id) of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkflowVersionView {
    pub object_id: String,
    pub name: String,
    pub version_id: Option<String>,
    pub updated_at: Option<String>,
    pub active: bool,
    pub archived: bool,
    pub node_count: u64,
    pub first_backup_id: String,
    pub first_seen_ms: i64,
    pub last_backup_id: String,
    pub last_seen_ms: i64,
    /// Every completed backup holding this version, in time order.
    pub backups: Vec<String>,
}

/// Every version of one workflow across the completed backups, in time order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkflowHistory {
    pub workflow_id: String,
    /// Its name in the newest backup holding it.
    pub name: String,
    /// Completed backups holding it.
    pub backup_count: u64,
    pub versions: Vec<WorkflowVersionView>,
}

/// For a row of `backup_history`: the restore that took it as its safety
/// backup ('' when that restore is not known), or NULL when it is not a
/// safety backup. Known from its manifest's labels (`safety` naming the
/// restore; before that label, `pinned` reading "safety backup before
/// restore <id>"), or from the journal alone (a restore event naming it).
macro_rules! safety_restore {
    () => {
        "COALESCE(\
    (SELECT CASE WHEN json_extract(c.labels, '$.safety') IS NOT NULL THEN json_extract(c.labels, '$.safety') \
                 ELSE substr(json_extract(c.labels, '$.pinned'), 30) END \
       FROM backup_contents c WHERE c.backup_id = backup_history.backup_id AND json_valid(c.labels) \
        AND (json_extract(c.labels, '$.safety') IS NOT NULL \
             OR substr(json_extract(c.labels, '$.pinned'), 1, 29) = 'safety backup before restore ')), \
    (SELECT r.restore_id FROM restore_history r WHERE r.safety_backup = backup_history.backup_id \
      ORDER BY r.seq LIMIT 1))"
    };
}

const HISTORY_COLUMNS: &str = concat!("backup_id, kind, host, status, started_ms, finished_ms, duration_ms, manifest, \
    logical_bytes, stored_bytes, new_bytes, new_objects, reused_objects, objects, database_count, table_count, \
    workflow_count, credential_count, config_file_count, item_count, failed_stage, failed_message, \
    forgotten_reason, forgotten_ms, sources, note, \
    (SELECT json_object('verification_id', v.verification_id, 'level', v.level, 'result', v.result, \
        'checks_run', v.checks_run, 'failure_count', v.failure_count, \
        'first_failure', json(json_extract(v.failures, '$[0]')), 'message', v.message, 'finished_ms', v.finished_ms) \
       FROM verification_history v WHERE v.backup_id = backup_history.backup_id \
      ORDER BY v.seq DESC LIMIT 1) AS last_verification, \
    (SELECT max(v.finished_ms) FROM verification_history v WHERE v.backup_id = backup_history.backup_id \
        AND v.level = 'restore' AND v.result = 'passed') AS last_proven_restorable_ms, ",
    safety_restore!(),
    " AS safety_restore"
);

fn opt_u64(r: &SqliteRow, col: &str) -> Result<Option<u64>> {
    Ok(r.try_get::<Option<i64>, _>(col)?.map(|v| v.max(0) as u64))
}

fn from_json<T: serde::de::DeserializeOwned>(what: &str, s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| CatalogError::Damaged(format!("{what}: {e}")))
}

fn record_from_row(r: &SqliteRow) -> Result<BackupRecord> {
    let status: String = r.try_get("status")?;
    let sources: String = r.try_get("sources")?;
    Ok(BackupRecord {
        backup_id: r.try_get("backup_id")?,
        kind: r.try_get("kind")?,
        host: r.try_get("host")?,
        status: status.parse().map_err(CatalogError::Damaged)?,
        started_ms: r.try_get("started_ms")?,
        finished_ms: r.try_get("finished_ms")?,
        duration_ms: opt_u64(r, "duration_ms")?,
        manifest: r.try_get("manifest")?,
        logical_bytes: opt_u64(r, "logical_bytes")?,
        stored_bytes: opt_u64(r, "stored_bytes")?,
        new_bytes: opt_u64(r, "new_bytes")?,
        new_objects: opt_u64(r, "new_objects")?,
        reused_objects: opt_u64(r, "reused_objects")?,
        objects: opt_u64(r, "objects")?,
        database_count: opt_u64(r, "database_count")?,
        table_count: opt_u64(r, "table_count")?,
        workflow_count: opt_u64(r, "workflow_count")?,
        credential_count: opt_u64(r, "credential_count")?,
        config_file_count: opt_u64(r, "config_file_count")?,
        item_count: opt_u64(r, "item_count")?,
        failed_stage: r.try_get("failed_stage")?,
        failed_message: r.try_get("failed_message")?,
        forgotten_reason: r.try_get("forgotten_reason")?,
        forgotten_ms: r.try_get("forgotten_ms")?,
        sources: from_json("backup_history.sources", &sources)?,
        note: r.try_get("note")?,
        last_verification: r
            .try_get::<Option<String>, _>("last_verification")?
            .map(|j| from_json("verification_history", &j))
            .transpose()?,
        last_proven_restorable_ms: r.try_get("last_proven_restorable_ms")?,
        safety_restore: r
            .try_get::<Option<String>, _>("safety_restore")?
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty()),
        safety: r.try_get::<Option<String>, _>("safety_restore")?.is_some(),
    })
}

fn workflow_from_row(r: &SqliteRow) -> Result<WorkflowEntry> {
    let tags: String = r.try_get("tags")?;
    let types: String = r.try_get("node_types")?;
    let creds: String = r.try_get("credentials")?;
    let nodes: String = r.try_get("nodes")?;
    Ok(WorkflowEntry {
        id: r.try_get("workflow_id")?,
        name: r.try_get("name")?,
        active: r.try_get("active")?,
        archived: r.try_get("archived")?,
        tags: from_json("backup_workflows.tags", &tags)?,
        node_count: r.try_get::<i64, _>("node_count")?.max(0) as u64,
        node_types: from_json("backup_workflows.node_types", &types)?,
        credentials: from_json("backup_workflows.credentials", &creds)?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        version_id: r.try_get("version_id")?,
        object_id: r.try_get("object_id")?,
        size: r.try_get::<i64, _>("size")?.max(0) as u64,
        nodes: from_json("backup_workflows.nodes", &nodes)?,
    })
}

/// Everything the catalog holds about one backup's contents (unfiltered).
pub(super) struct LoadedContents {
    pub workflows: Vec<WorkflowEntry>,
    pub credentials: Vec<CredentialEntry>,
    pub config_files: Vec<ConfigFileEntry>,
    pub databases: Vec<DatabaseView>,
}

impl Catalog {
    /// The ids of the safety backups (taken by restores before they
    /// replaced anything): not the operator's backups, so never `latest`,
    /// nor counted or picked by the verification policy.
    pub async fn safety_backup_ids(&self) -> Result<std::collections::HashSet<String>> {
        let ids: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(concat!(
            "SELECT backup_id FROM backup_history WHERE ",
            safety_restore!(),
            " IS NOT NULL"
        )))
        .fetch_all(self.pool())
        .await?;
        Ok(ids.into_iter().collect())
    }

    /// Backups in time order (oldest first).
    pub async fn list_backups(&self, filter: &BackupFilter) -> Result<Vec<BackupRecord>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {HISTORY_COLUMNS} FROM backup_history \
             WHERE (?1 IS NULL OR kind = ?1) AND (?2 IS NULL OR status = ?2) \
             AND (?3 OR ?2 = 'forgotten' OR status <> 'forgotten') \
             ORDER BY started_ms, backup_id"
        )))
        .bind(&filter.kind)
        .bind(filter.status.map(|s| s.as_str()))
        .bind(filter.include_forgotten)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(record_from_row).collect()
    }

    /// One backup's history row.
    pub async fn backup(&self, backup_id: &str) -> Result<Option<BackupRecord>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {HISTORY_COLUMNS} FROM backup_history WHERE backup_id = ?"
        )))
        .bind(backup_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    /// The completed backup a reference names: `latest` (the newest completed
    /// backup taken by an operator or a schedule: never a safety backup),
    /// `latest:KIND` (the newest such of that kind), `latest:safety` (the
    /// newest safety backup), a backup id, or a unique prefix of one.
    pub async fn resolve(&self, backup_ref: &str) -> Result<String> {
        let r = backup_ref.trim();
        if r.is_empty() {
            return Err(CatalogError::NotFound(
                "no backup given (a backup id, a unique prefix of one, latest or latest:KIND)"
                    .into(),
            ));
        }
        if r == "latest" || r.starts_with("latest:") {
            let kind = r.strip_prefix("latest:").map(str::trim);
            if kind == Some("") {
                return Err(CatalogError::NotFound(
                    "latest: names no kind (e.g. latest:postgres_n8n)".into(),
                ));
            }
            if let Some(k) = kind.filter(|k| *k != SAFETY && !crate::backup::ALL_KINDS.contains(k))
            {
                return Err(CatalogError::Invalid(format!(
                    "latest:{k}: there is no kind {k:?}; the kinds are {} (and `safety`: the restores' safety backups)",
                    crate::backup::ALL_KINDS.join(", ")
                )));
            }
            // Safety backups are the restores', not the operator's: never
            // `latest` (a restore repeated from `latest` would restore what
            // the previous one replaced), and reached as `latest:safety`.
            let safety = kind == Some(SAFETY);
            let kind = kind.filter(|k| *k != SAFETY);
            let id: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(concat!(
                "SELECT backup_id FROM (SELECT backup_id, kind, started_ms, ",
                safety_restore!(),
                " AS safety_restore FROM backup_history WHERE status = 'completed' AND (?1 IS NULL OR kind = ?1)) \
                 WHERE (safety_restore IS NOT NULL) = ?2 ORDER BY started_ms DESC, backup_id DESC LIMIT 1"
            )))
            .bind(kind)
            .bind(safety)
            .fetch_optional(self.pool())
            .await?;
            if let Some(id) = id {
                return Ok(id);
            }
            let completed: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM backup_history WHERE status = 'completed' AND (?1 IS NULL OR kind = ?1)",
            )
            .bind(kind)
            .fetch_one(self.pool())
            .await?;
            let of_kind = kind.map(|k| format!(" of kind {k}")).unwrap_or_default();
            return Err(CatalogError::NotFound(if safety {
                "there is no safety backup in the catalog (a restore takes one before it replaces anything)"
                    .to_string()
            } else if completed > 0 {
                format!(
                    "there is no completed backup{of_kind} in the catalog but safety backups \
                     (taken by restores; `latest:safety` names the newest of them)"
                )
            } else {
                format!("there is no completed backup{of_kind} in the catalog")
            }));
        }
        let exact = self.backup(r).await?;
        let rec = match exact {
            Some(rec) => rec,
            None => {
                let ids: Vec<String> = sqlx::query_scalar(
                    "SELECT backup_id FROM backup_history WHERE substr(backup_id, 1, length(?1)) = ?1 \
                     ORDER BY started_ms, backup_id LIMIT 11",
                )
                .bind(r)
                .fetch_all(self.pool())
                .await?;
                match ids.len() {
                    0 => {
                        return Err(CatalogError::NotFound(format!(
                            "no backup {r} in the catalog (`n8n-ark list` shows them)"
                        )))
                    }
                    1 => self
                        .backup(&ids[0])
                        .await?
                        .ok_or_else(|| CatalogError::NotFound(format!("no backup {r}")))?,
                    n => {
                        let more = if n > 10 { ", ..." } else { "" };
                        let shown: Vec<&str> = ids.iter().take(10).map(String::as_str).collect();
                        return Err(CatalogError::Ambiguous(format!(
                            "{r} matches several backups ({}{more}): give more of the id",
                            shown.join(", ")
                        )));
                    }
                }
            }
        };
        match rec.status {
            BackupStatus::Completed => Ok(rec.backup_id),
            BackupStatus::Failed => Err(CatalogError::NotCompleted(format!(
                "backup {} failed{}: it holds nothing",
                rec.backup_id,
                match (&rec.failed_stage, &rec.failed_message) {
                    (Some(s), Some(m)) => format!(" at stage {s} ({m})"),
                    (Some(s), None) => format!(" at stage {s}"),
                    _ => String::new(),
                }
            ))),
            BackupStatus::Running => Err(CatalogError::NotCompleted(format!(
                "backup {} has not completed (it is running, or its process stopped before the end)",
                rec.backup_id
            ))),
            BackupStatus::Forgotten => Err(CatalogError::NotCompleted(format!(
                "backup {} was forgotten{}: its contents are gone from the store",
                rec.backup_id,
                rec.forgotten_reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ))),
        }
    }

    /// Whether the catalog holds the contents of a backup.
    async fn has_contents(&self, backup_id: &str) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM backup_contents WHERE backup_id = ?")
            .bind(backup_id)
            .fetch_one(self.pool())
            .await?;
        Ok(n > 0)
    }

    pub(super) async fn load_contents(&self, backup_id: &str) -> Result<LoadedContents> {
        let rows = sqlx::query(
            "SELECT * FROM backup_workflows WHERE backup_id = ? ORDER BY name COLLATE NOCASE, name, workflow_id",
        )
        .bind(backup_id)
        .fetch_all(self.pool())
        .await?;
        let workflows = rows
            .iter()
            .map(workflow_from_row)
            .collect::<Result<Vec<_>>>()?;
        let rows = sqlx::query(
            "SELECT * FROM backup_credentials WHERE backup_id = ? ORDER BY name COLLATE NOCASE, name, credential_id",
        )
        .bind(backup_id)
        .fetch_all(self.pool())
        .await?;
        let credentials = rows
            .iter()
            .map(|r| {
                Ok(CredentialEntry {
                    id: r.try_get("credential_id")?,
                    name: r.try_get("name")?,
                    credential_type: r.try_get("credential_type")?,
                    created_at: r.try_get("created_at")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let rows =
            sqlx::query("SELECT * FROM backup_config_files WHERE backup_id = ? ORDER BY path")
                .bind(backup_id)
                .fetch_all(self.pool())
                .await?;
        let config_files = rows
            .iter()
            .map(|r| {
                Ok(ConfigFileEntry {
                    path: r.try_get("path")?,
                    file_type: r.try_get("file_type")?,
                    required: r.try_get("required")?,
                    mode: r.try_get::<i64, _>("mode")? as u32,
                    uid: r.try_get::<i64, _>("uid")? as u32,
                    gid: r.try_get::<i64, _>("gid")? as u32,
                    mtime_ms: r.try_get("mtime_ms")?,
                    size: r.try_get::<i64, _>("size")?.max(0) as u64,
                    checksum: r.try_get("checksum")?,
                    link_target: r.try_get("link_target")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let rows = sqlx::query(
            "SELECT * FROM backup_databases WHERE backup_id = ? ORDER BY database_name",
        )
        .bind(backup_id)
        .fetch_all(self.pool())
        .await?;
        let mut databases = Vec::new();
        for r in &rows {
            let name: String = r.try_get("database_name")?;
            let trows = sqlx::query(
                "SELECT schema_name, table_name, row_count, columns FROM backup_tables \
                 WHERE backup_id = ? AND database_name = ? ORDER BY schema_name, table_name",
            )
            .bind(backup_id)
            .bind(&name)
            .fetch_all(self.pool())
            .await?;
            let tables = trows
                .iter()
                .map(|t| {
                    let cols: String = t.try_get("columns")?;
                    Ok(TableEntry {
                        schema: t.try_get("schema_name")?,
                        name: t.try_get("table_name")?,
                        rows: t.try_get::<i64, _>("row_count")?.max(0) as u64,
                        columns: from_json("backup_tables.columns", &cols)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            databases.push(DatabaseView {
                name,
                server_version: r.try_get("server_version")?,
                server_version_num: r.try_get::<i64, _>("server_version_num")? as u32,
                pg_dump_version: r.try_get("pg_dump_version")?,
                is_n8n: r.try_get("is_n8n")?,
                migration_head: r.try_get("migration_head")?,
                total_rows: tables.iter().map(|t| t.rows).sum(),
                tables,
            });
        }
        Ok(LoadedContents {
            workflows,
            credentials,
            config_files,
            databases,
        })
    }

    /// One backup and what it holds, with the workflows that pass `filter`.
    /// Answers from the catalog alone.
    pub async fn show(&self, backup_id: &str, filter: &WorkflowFilter) -> Result<BackupView> {
        let backup = self.backup(backup_id).await?.ok_or_else(|| {
            CatalogError::NotFound(format!("no backup {backup_id} in the catalog"))
        })?;
        let row = sqlx::query(
            "SELECT workflow_count, credential_count, config_file_count, database_count, table_count, \
             workflow_source, encryption_key_fingerprint, encryption_key_source, labels, \
             workflows_not_stored FROM backup_contents WHERE backup_id = ?",
        )
        .bind(backup_id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(BackupView {
                backup,
                contents_available: false,
                workflow_count: 0,
                credential_count: 0,
                config_file_count: 0,
                database_count: 0,
                table_count: 0,
                workflow_filter: filter.clone(),
                workflows: vec![],
                credentials: vec![],
                config_files: vec![],
                databases: vec![],
                workflow_source: None,
                encryption_key_fingerprint: None,
                encryption_key_source: None,
                labels: BTreeMap::new(),
                workflows_not_stored: vec![],
            });
        };
        let c = self.load_contents(backup_id).await?;
        let labels: String = row.try_get("labels")?;
        let not_stored: String = row.try_get("workflows_not_stored")?;
        let count = |col: &str| -> Result<u64> { Ok(row.try_get::<i64, _>(col)?.max(0) as u64) };
        Ok(BackupView {
            contents_available: true,
            workflow_count: count("workflow_count")?,
            credential_count: count("credential_count")?,
            config_file_count: count("config_file_count")?,
            database_count: count("database_count")?,
            table_count: count("table_count")?,
            workflow_filter: filter.clone(),
            workflows: c
                .workflows
                .into_iter()
                .filter(|w| filter.matches(w))
                .collect(),
            credentials: c.credentials,
            config_files: c.config_files,
            databases: c.databases,
            workflow_source: row.try_get("workflow_source")?,
            encryption_key_fingerprint: row.try_get("encryption_key_fingerprint")?,
            encryption_key_source: row.try_get("encryption_key_source")?,
            labels: from_json("backup_contents.labels", &labels)?,
            workflows_not_stored: from_json("backup_contents.workflows_not_stored", &not_stored)?,
            backup,
        })
    }

    /// The contents of a completed backup, or why there are none.
    pub(super) async fn contents_of(
        &self,
        backup_id: &str,
    ) -> Result<(BackupRecord, LoadedContents)> {
        let rec = self.backup(backup_id).await?.ok_or_else(|| {
            CatalogError::NotFound(format!("no backup {backup_id} in the catalog"))
        })?;
        if !self.has_contents(backup_id).await? {
            return Err(CatalogError::ContentsUnavailable(format!(
                "the catalog has no contents for backup {backup_id}{}",
                rec.note
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            )));
        }
        Ok((rec, self.load_contents(backup_id).await?))
    }

    /// The workflow a reference names: its id, its exact name, or a part of
    /// its name (any case) that only one workflow's names contain. Looks in
    /// every completed backup.
    pub async fn resolve_workflow(&self, workflow: &str) -> Result<String> {
        let w = workflow.trim();
        if w.is_empty() {
            return Err(CatalogError::NotFound(
                "no workflow given (an id or a name)".into(),
            ));
        }
        let by_id: Option<String> = sqlx::query_scalar(
            "SELECT w.workflow_id FROM backup_workflows w JOIN backup_history h ON h.backup_id = w.backup_id \
             WHERE w.workflow_id = ? AND h.status = 'completed' LIMIT 1",
        )
        .bind(w)
        .fetch_optional(self.pool())
        .await?;
        if let Some(id) = by_id {
            return Ok(id);
        }
        let rows = sqlx::query(
            "SELECT DISTINCT w.workflow_id, w.name FROM backup_workflows w \
             JOIN backup_history h ON h.backup_id = w.backup_id WHERE h.status = 'completed' \
             ORDER BY w.workflow_id, w.name",
        )
        .fetch_all(self.pool())
        .await?;
        let pairs: Vec<(String, String)> = rows
            .iter()
            .map(|r| Ok((r.try_get("workflow_id")?, r.try_get("name")?)))
            .collect::<Result<_>>()?;
        let pick = |hits: Vec<&(String, String)>, how: &str| -> Option<Result<String>> {
            let mut ids: Vec<&str> = hits.iter().map(|(id, _)| id.as_str()).collect();
            ids.dedup();
            match ids.len() {
                0 => None,
                1 => Some(Ok(ids[0].to_string())),
                _ => {
                    let mut seen = Vec::new();
                    for (id, name) in &hits {
                        if !seen.iter().any(|(i, _): &(&str, &str)| i == id) {
                            seen.push((id.as_str(), name.as_str()));
                        }
                    }
                    let list: Vec<String> = seen
                        .iter()
                        .take(10)
                        .map(|(id, name)| format!("{id} ({name:?})"))
                        .collect();
                    Some(Err(CatalogError::Ambiguous(format!(
                        "{} workflows {how} {w:?}: {}{}; name one by its id",
                        ids.len(),
                        list.join(", "),
                        if seen.len() > 10 { ", ..." } else { "" }
                    ))))
                }
            }
        };
        if let Some(r) = pick(pairs.iter().filter(|(_, n)| n == w).collect(), "are named") {
            return r;
        }
        let needle = w.to_lowercase();
        if let Some(r) = pick(
            pairs
                .iter()
                .filter(|(_, n)| n.to_lowercase().contains(&needle))
                .collect(),
            "have names containing",
        ) {
            return r;
        }
        Err(CatalogError::NotFound(format!(
            "no workflow {w:?} in any completed backup (give its id, its name or a part of it)"
        )))
    }

    /// Every version of a workflow (by id, name or part of a name) across the
    /// completed backups, in the order they first appeared.
    pub async fn history(&self, workflow: &str) -> Result<WorkflowHistory> {
        let wid = self.resolve_workflow(workflow).await?;
        let rows = sqlx::query(
            "SELECT w.object_id, w.name, w.active, w.archived, w.node_count, w.backup_id \
             FROM backup_workflows w JOIN backup_history h ON h.backup_id = w.backup_id \
             WHERE w.workflow_id = ? AND h.status = 'completed' ORDER BY h.started_ms, h.backup_id",
        )
        .bind(&wid)
        .fetch_all(self.pool())
        .await?;
        let mut holders: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut state: BTreeMap<String, (bool, bool, u64)> = BTreeMap::new();
        let mut name = String::new();
        for r in &rows {
            let oid: String = r.try_get("object_id")?;
            holders
                .entry(oid.clone())
                .or_default()
                .push(r.try_get("backup_id")?);
            state.entry(oid).or_insert((
                r.try_get("active")?,
                r.try_get("archived")?,
                r.try_get::<i64, _>("node_count")?.max(0) as u64,
            ));
            name = r.try_get("name")?;
        }
        let vrows = sqlx::query(
            "SELECT object_id, name, version_id, updated_at, first_backup_id, first_seen_ms, last_backup_id, \
             last_seen_ms FROM workflow_versions WHERE workflow_id = ? ORDER BY first_seen_ms, first_backup_id",
        )
        .bind(&wid)
        .fetch_all(self.pool())
        .await?;
        let mut versions = Vec::new();
        for r in &vrows {
            let oid: String = r.try_get("object_id")?;
            let (active, archived, node_count) = state.get(&oid).copied().unwrap_or_default();
            versions.push(WorkflowVersionView {
                backups: holders.remove(&oid).unwrap_or_default(),
                object_id: oid,
                name: r.try_get("name")?,
                version_id: r.try_get("version_id")?,
                updated_at: r.try_get("updated_at")?,
                active,
                archived,
                node_count,
                first_backup_id: r.try_get("first_backup_id")?,
                first_seen_ms: r.try_get("first_seen_ms")?,
                last_backup_id: r.try_get("last_backup_id")?,
                last_seen_ms: r.try_get("last_seen_ms")?,
            });
        }
        Ok(WorkflowHistory {
            workflow_id: wid,
            name,
            backup_count: rows.len() as u64,
            versions,
        })
    }
}

/// One restore as the journal tells it (`restore_history`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RestoreRecord {
    pub restore_id: String,
    pub backup_id: String,
    pub what: String,
    pub target: String,
    /// `ok`, `partial` (some items failed) or `failed` (stopped).
    pub result: String,
    pub failed_stage: Option<String>,
    pub message: Option<String>,
    pub safety_backup: Option<String>,
    pub restored: u64,
    pub skipped: u64,
    pub failed: u64,
    pub items: Vec<store_format::event::RestoredItem>,
    pub finished_ms: i64,
    pub duration_ms: u64,
}

impl Catalog {
    /// Restores in the order they finished, optionally only those from one backup.
    pub async fn list_restores(&self, backup_id: Option<&str>) -> Result<Vec<RestoreRecord>> {
        let rows = sqlx::query(
            "SELECT restore_id, backup_id, what, target, result, failed_stage, message, safety_backup, \
             restored, skipped, failed, items, finished_ms, duration_ms FROM restore_history \
             WHERE (?1 IS NULL OR backup_id = ?1) ORDER BY seq",
        )
        .bind(backup_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let items: String = r.try_get("items")?;
                Ok(RestoreRecord {
                    restore_id: r.try_get("restore_id")?,
                    backup_id: r.try_get("backup_id")?,
                    what: r.try_get("what")?,
                    target: r.try_get("target")?,
                    result: r.try_get("result")?,
                    failed_stage: r.try_get("failed_stage")?,
                    message: r.try_get("message")?,
                    safety_backup: r.try_get("safety_backup")?,
                    restored: r.try_get::<i64, _>("restored")? as u64,
                    skipped: r.try_get::<i64, _>("skipped")? as u64,
                    failed: r.try_get::<i64, _>("failed")? as u64,
                    items: serde_json::from_str(&items).map_err(|e| {
                        CatalogError::Damaged(format!("restore_history.items: {e}"))
                    })?,
                    finished_ms: r.try_get("finished_ms")?,
                    duration_ms: r.try_get::<i64, _>("duration_ms")? as u64,
                })
            })
            .collect()
    }
}

/// One verification as the journal tells it (`verification_history`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerificationRecord {
    pub verification_id: String,
    pub backup_id: String,
    /// `exists`, `data` or `restore`.
    pub level: String,
    /// `passed`, `failed` (a check did not hold) or `error` (it could not run).
    pub result: String,
    pub checks_run: u64,
    pub failures: Vec<store_format::event::VerificationCheck>,
    pub sandbox: Option<String>,
    pub failed_stage: Option<String>,
    pub message: Option<String>,
    pub finished_ms: i64,
    pub duration_ms: u64,
}

impl Catalog {
    /// Verifications in the order they finished, optionally only those of one backup.
    pub async fn list_verifications(
        &self,
        backup_id: Option<&str>,
    ) -> Result<Vec<VerificationRecord>> {
        let rows = sqlx::query(
            "SELECT verification_id, backup_id, level, result, checks_run, failures, sandbox, failed_stage, \
             message, finished_ms, duration_ms FROM verification_history \
             WHERE (?1 IS NULL OR backup_id = ?1) ORDER BY seq",
        )
        .bind(backup_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let failures: String = r.try_get("failures")?;
                Ok(VerificationRecord {
                    verification_id: r.try_get("verification_id")?,
                    backup_id: r.try_get("backup_id")?,
                    level: r.try_get("level")?,
                    result: r.try_get("result")?,
                    checks_run: r.try_get::<i64, _>("checks_run")?.max(0) as u64,
                    failures: from_json("verification_history.failures", &failures)?,
                    sandbox: r.try_get("sandbox")?,
                    failed_stage: r.try_get("failed_stage")?,
                    message: r.try_get("message")?,
                    finished_ms: r.try_get("finished_ms")?,
                    duration_ms: r.try_get::<i64, _>("duration_ms")?.max(0) as u64,
                })
            })
            .collect()
    }

    /// The newest verification of `level` that ran to its end on any
    /// backup (passed or failed), or of any level when `level` is None.
    pub async fn last_verification(
        &self,
        level: Option<&str>,
    ) -> Result<Option<VerificationRecord>> {
        let id: Option<String> = sqlx::query_scalar(
            "SELECT verification_id FROM verification_history \
             WHERE (?1 IS NULL OR level = ?1) AND result <> 'error' ORDER BY seq DESC LIMIT 1",
        )
        .bind(level)
        .fetch_optional(self.pool())
        .await?;
        let Some(id) = id else { return Ok(None) };
        let backup: String = sqlx::query_scalar(
            "SELECT backup_id FROM verification_history WHERE verification_id = ?",
        )
        .bind(&id)
        .fetch_one(self.pool())
        .await?;
        Ok(self
            .list_verifications(Some(&backup))
            .await?
            .into_iter()
            .find(|v| v.verification_id == id))
    }
}
