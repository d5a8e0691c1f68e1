//! Questions the catalog answers without touching the store: the list of
//! backups, one backup's contents, and one workflow's history.
//!
//! Backups are in time order everywhere: by start time, then backup id (ids
//! sort by time too). `latest` is the last completed one in that order that
//! is not a safety backup (one a restore took of what it replaced).
use super::error::{CatalogError, Result};
use super::Catalog;
use serde::{Deserialize, Serialize};
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

impl TryFrom<String> for BackupStatus {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, String> {
        s.parse()
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

/// One backup as the journal tells it (`backup_history`, read with
/// [`HISTORY_COLUMNS`]).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct BackupRecord {
    pub backup_id: String,
    pub kind: String,
    pub host: Option<String>,
    #[sqlx(try_from = "String")]
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
    #[sqlx(json)]
    pub sources: Vec<String>,
    /// Why a completed backup's contents are not in the catalog.
    pub note: Option<String>,
    /// The newest verification of this backup, at any level.
    #[sqlx(json(nullable))]
    pub last_verification: Option<VerificationSummary>,
    /// When a `restore`-level verification of this backup last passed (ms
    /// since the epoch): the last time it was proven restorable.
    pub last_proven_restorable_ms: Option<i64>,
    /// A safety backup: taken by a restore of what it was about to replace
    /// (not by an operator or a schedule). Never `latest` nor `latest:KIND`;
    /// `latest:safety` is the newest of them.
    #[sqlx(skip)]
    pub safety: bool,
    /// For a safety backup, the restore that took it (when known).
    #[sqlx(skip)]
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

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct WorkflowEntry {
    #[sqlx(rename = "workflow_id")]
    pub id: String,
    pub name: String,
    pub active: bool,
    pub archived: bool,
    #[sqlx(json)]
    pub tags: Vec<String>,
    pub node_count: u64,
    /// Distinct node types, sorted.
    #[sqlx(json)]
    pub node_types: Vec<String>,
    /// Credentials the nodes use (type, id, name).
    #[sqlx(json)]
    pub credentials: Vec<CredentialRef>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub version_id: Option<String>,
    /// The object holding the workflow's canonical JSON, hex.
    pub object_id: String,
    pub size: u64,
    /// The nodes (name, type, hash), for diffs; not printed by `show`.
    #[serde(skip)]
    #[sqlx(json)]
    pub nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct CredentialEntry {
    #[sqlx(rename = "credential_id")]
    pub id: String,
    pub name: String,
    pub credential_type: String,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
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

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct TableEntry {
    #[sqlx(rename = "schema_name")]
    pub schema: String,
    #[sqlx(rename = "table_name")]
    pub name: String,
    #[sqlx(rename = "row_count")]
    pub rows: u64,
    #[sqlx(json)]
    pub columns: Vec<Column>,
}

/// One database of a backup (`backup_databases`; its tables are read apart).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct DatabaseView {
    #[sqlx(rename = "database_name")]
    pub name: String,
    pub server_version: String,
    pub server_version_num: u32,
    pub pg_dump_version: String,
    pub is_n8n: bool,
    /// The newest applied n8n migration.
    pub migration_head: Option<String>,
    #[sqlx(skip)]
    pub total_rows: u64,
    #[sqlx(skip)]
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

/// One version (object id) of a workflow (`workflow_versions`; its state
/// and the backups holding it are read apart).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct WorkflowVersionView {
    pub object_id: String,
    pub name: String,
    pub version_id: Option<String>,
    pub updated_at: Option<String>,
    #[sqlx(skip)]
    pub active: bool,
    #[sqlx(skip)]
    pub archived: bool,
    #[sqlx(skip)]
    pub node_count: u64,
    pub first_backup_id: String,
    pub first_seen_ms: i64,
    pub last_backup_id: String,
    pub last_seen_ms: i64,
    /// Every completed backup holding this version, in time order.
    #[sqlx(skip)]
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
    " AS safety_restore_or_empty"
);

/// The rows' mapping ([`sqlx::FromRow`]) failing on a value of `table`
/// (JSON that does not parse, a negative count, an unknown status): the
/// catalog is damaged, and is set aside and made again like any damage.
fn decoded(table: &'static str) -> impl Fn(sqlx::Error) -> CatalogError {
    move |e| match e {
        sqlx::Error::ColumnDecode { index, source } => {
            CatalogError::Damaged(format!("{table}.{}: {source}", index.trim_matches('"')))
        }
        e => e.into(),
    }
}

/// A history row as [`HISTORY_COLUMNS`] reads it: the restore that took
/// a safety backup comes as '' when that restore is not known.
#[derive(sqlx::FromRow)]
struct HistoryRow {
    #[sqlx(flatten)]
    record: BackupRecord,
    safety_restore_or_empty: Option<String>,
}

impl From<HistoryRow> for BackupRecord {
    fn from(r: HistoryRow) -> BackupRecord {
        BackupRecord {
            safety: r.safety_restore_or_empty.is_some(),
            safety_restore: r
                .safety_restore_or_empty
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
            ..r.record
        }
    }
}

/// A backup's row of `backup_contents`, as [`Catalog::show`] reads it.
#[derive(sqlx::FromRow)]
struct ContentsRow {
    workflow_count: u64,
    credential_count: u64,
    config_file_count: u64,
    database_count: u64,
    table_count: u64,
    workflow_source: Option<String>,
    encryption_key_fingerprint: Option<String>,
    encryption_key_source: Option<String>,
    #[sqlx(json)]
    labels: BTreeMap<String, String>,
    #[sqlx(json)]
    workflows_not_stored: Vec<store_format::contents::WorkflowNotStored>,
}

/// A workflow in one backup, as [`Catalog::history`] reads it.
#[derive(sqlx::FromRow)]
struct HeldVersion {
    object_id: String,
    name: String,
    active: bool,
    archived: bool,
    node_count: u64,
    backup_id: String,
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
        let rows: Vec<HistoryRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {HISTORY_COLUMNS} FROM backup_history \
             WHERE (?1 IS NULL OR kind = ?1) AND (?2 IS NULL OR status = ?2) \
             AND (?3 OR ?2 = 'forgotten' OR status <> 'forgotten') \
             ORDER BY started_ms, backup_id"
        )))
        .bind(&filter.kind)
        .bind(filter.status.map(|s| s.as_str()))
        .bind(filter.include_forgotten)
        .fetch_all(self.pool())
        .await
        .map_err(decoded("backup_history"))?;
        Ok(rows.into_iter().map(BackupRecord::from).collect())
    }

    /// One backup's history row.
    pub async fn backup(&self, backup_id: &str) -> Result<Option<BackupRecord>> {
        let row: Option<HistoryRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {HISTORY_COLUMNS} FROM backup_history WHERE backup_id = ?"
        )))
        .bind(backup_id)
        .fetch_optional(self.pool())
        .await
        .map_err(decoded("backup_history"))?;
        Ok(row.map(BackupRecord::from))
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
        let workflows: Vec<WorkflowEntry> = sqlx::query_as(
            "SELECT * FROM backup_workflows WHERE backup_id = ? ORDER BY name COLLATE NOCASE, name, workflow_id",
        )
        .bind(backup_id)
        .fetch_all(self.pool())
        .await
        .map_err(decoded("backup_workflows"))?;
        let credentials: Vec<CredentialEntry> = sqlx::query_as(
            "SELECT * FROM backup_credentials WHERE backup_id = ? ORDER BY name COLLATE NOCASE, name, credential_id",
        )
        .bind(backup_id)
        .fetch_all(self.pool())
        .await
        .map_err(decoded("backup_credentials"))?;
        let config_files: Vec<ConfigFileEntry> =
            sqlx::query_as("SELECT * FROM backup_config_files WHERE backup_id = ? ORDER BY path")
                .bind(backup_id)
                .fetch_all(self.pool())
                .await
                .map_err(decoded("backup_config_files"))?;
        let mut databases: Vec<DatabaseView> = sqlx::query_as(
            "SELECT * FROM backup_databases WHERE backup_id = ? ORDER BY database_name",
        )
        .bind(backup_id)
        .fetch_all(self.pool())
        .await
        .map_err(decoded("backup_databases"))?;
        for d in &mut databases {
            d.tables = sqlx::query_as(
                "SELECT schema_name, table_name, row_count, columns FROM backup_tables \
                 WHERE backup_id = ? AND database_name = ? ORDER BY schema_name, table_name",
            )
            .bind(backup_id)
            .bind(&d.name)
            .fetch_all(self.pool())
            .await
            .map_err(decoded("backup_tables"))?;
            d.total_rows = d.tables.iter().map(|t| t.rows).sum();
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
        let row: Option<ContentsRow> = sqlx::query_as(
            "SELECT workflow_count, credential_count, config_file_count, database_count, table_count, \
             workflow_source, encryption_key_fingerprint, encryption_key_source, labels, \
             workflows_not_stored FROM backup_contents WHERE backup_id = ?",
        )
        .bind(backup_id)
        .fetch_optional(self.pool())
        .await
        .map_err(decoded("backup_contents"))?;
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
        Ok(BackupView {
            contents_available: true,
            workflow_count: row.workflow_count,
            credential_count: row.credential_count,
            config_file_count: row.config_file_count,
            database_count: row.database_count,
            table_count: row.table_count,
            workflow_filter: filter.clone(),
            workflows: c
                .workflows
                .into_iter()
                .filter(|w| filter.matches(w))
                .collect(),
            credentials: c.credentials,
            config_files: c.config_files,
            databases: c.databases,
            workflow_source: row.workflow_source,
            encryption_key_fingerprint: row.encryption_key_fingerprint,
            encryption_key_source: row.encryption_key_source,
            labels: row.labels,
            workflows_not_stored: row.workflows_not_stored,
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
        let pairs: Vec<(String, String)> = sqlx::query_as(
            "SELECT DISTINCT w.workflow_id, w.name FROM backup_workflows w \
             JOIN backup_history h ON h.backup_id = w.backup_id WHERE h.status = 'completed' \
             ORDER BY w.workflow_id, w.name",
        )
        .fetch_all(self.pool())
        .await
        .map_err(decoded("backup_workflows"))?;
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
        let rows: Vec<HeldVersion> = sqlx::query_as(
            "SELECT w.object_id, w.name, w.active, w.archived, w.node_count, w.backup_id \
             FROM backup_workflows w JOIN backup_history h ON h.backup_id = w.backup_id \
             WHERE w.workflow_id = ? AND h.status = 'completed' ORDER BY h.started_ms, h.backup_id",
        )
        .bind(&wid)
        .fetch_all(self.pool())
        .await
        .map_err(decoded("backup_workflows"))?;
        let mut holders: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let mut state: BTreeMap<&str, (bool, bool, u64)> = BTreeMap::new();
        let mut name = String::new();
        for r in &rows {
            holders
                .entry(&r.object_id)
                .or_default()
                .push(r.backup_id.clone());
            state
                .entry(&r.object_id)
                .or_insert((r.active, r.archived, r.node_count));
            name.clone_from(&r.name);
        }
        let mut versions: Vec<WorkflowVersionView> = sqlx::query_as(
            "SELECT object_id, name, version_id, updated_at, first_backup_id, first_seen_ms, last_backup_id, \
             last_seen_ms FROM workflow_versions WHERE workflow_id = ? ORDER BY first_seen_ms, first_backup_id",
        )
        .bind(&wid)
        .fetch_all(self.pool())
        .await
        .map_err(decoded("workflow_versions"))?;
        for v in &mut versions {
            (v.active, v.archived, v.node_count) =
                state.get(v.object_id.as_str()).copied().unwrap_or_default();
            v.backups = holders.remove(v.object_id.as_str()).unwrap_or_default();
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
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
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
    #[sqlx(json)]
    pub items: Vec<store_format::event::RestoredItem>,
    pub finished_ms: i64,
    pub duration_ms: u64,
}

impl Catalog {
    /// Restores in the order they finished, optionally only those from one backup.
    pub async fn list_restores(&self, backup_id: Option<&str>) -> Result<Vec<RestoreRecord>> {
        sqlx::query_as(
            "SELECT restore_id, backup_id, what, target, result, failed_stage, message, safety_backup, \
             restored, skipped, failed, items, finished_ms, duration_ms FROM restore_history \
             WHERE (?1 IS NULL OR backup_id = ?1) ORDER BY seq",
        )
        .bind(backup_id)
        .fetch_all(self.pool())
        .await
        .map_err(decoded("restore_history"))
    }
}

/// One verification as the journal tells it (`verification_history`).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct VerificationRecord {
    pub verification_id: String,
    pub backup_id: String,
    /// `exists`, `data` or `restore`.
    pub level: String,
    /// `passed`, `failed` (a check did not hold) or `error` (it could not run).
    pub result: String,
    pub checks_run: u64,
    #[sqlx(json)]
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
        sqlx::query_as(
            "SELECT verification_id, backup_id, level, result, checks_run, failures, sandbox, failed_stage, \
             message, finished_ms, duration_ms FROM verification_history \
             WHERE (?1 IS NULL OR backup_id = ?1) ORDER BY seq",
        )
        .bind(backup_id)
        .fetch_all(self.pool())
        .await
        .map_err(decoded("verification_history"))
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
