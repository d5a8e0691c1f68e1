//! Restores: one workflow (to a file, or into a running n8n through its
//! public API), a database (`pg_restore` streaming from the store), config
//! files (re-rooted, with modes, owners and symlinks), or the whole system.
//!
//! Every restore ends with one journal event: `RestorePerformed` (it ran to
//! its end; items that were skipped or failed are listed) or `RestoreFailed`
//! (it stopped; the message says what failed and how to go back). A restore
//! that overwrites anything first takes a safety backup of what it replaces,
//! pinned (manifest label [`crate::backup::PINNED_LABEL`]) so retention never
//! removes it.
//!
//! A restore is interrupted (SIGINT, SIGTERM, SIGHUP in the CLI) through a
//! [`crate::cancel::Cancel`]: it stops at the next point where stopping is
//! safe, undoes what it made (a work database is dropped; a database swap,
//! once begun, completes) and ends with `RestoreFailed`, its message
//! beginning `interrupted by SIG…`.
pub mod config;
pub mod database;
pub mod full;
pub mod table;
pub mod workflow;

use crate::store::{journal, Store, StoreError};
use std::time::Instant;
use store_format::event::{RestoreFailed, RestorePerformed, RestoredItem};
use store_format::{Event, Manifest};

/// What a restore restores (the `what` of its event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreWhat {
    Workflow,
    Database,
    Config,
    Full,
}

impl RestoreWhat {
    pub fn as_str(self) -> &'static str {
        match self {
            RestoreWhat::Workflow => "workflow",
            RestoreWhat::Database => "database",
            RestoreWhat::Config => "config",
            RestoreWhat::Full => "full",
        }
    }
}

/// Errors of the restore layer. Messages say what failed and what the
/// operator can do; they never hold a secret.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The request itself is wrong (unknown workflow, bad path, missing flag).
    #[error("{0}")]
    Invalid(String),
    /// The backup or an item of it does not exist, or holds nothing to restore.
    #[error("{0}")]
    NotFound(String),
    /// The backup's data is unreadable or damaged.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The target (n8n's API, a PostgreSQL server, a directory, Docker)
    /// refused or failed.
    #[error("{message}")]
    Target { message: String, retryable: bool },
    /// A crafted or damaged manifest asks for something unsafe (a path that
    /// escapes the root, a symlink pointing outside it).
    #[error("{0}")]
    Unsafe(String),
    /// The restore would do harm unless forced (e.g. credentials the target
    /// could not decrypt).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    /// Stopped on the front end's request (a signal): the message says at
    /// which point and what was and was not changed.
    #[error("{0}")]
    Interrupted(String),
}

impl RestoreError {
    pub fn target(message: impl Into<String>) -> RestoreError {
        RestoreError::Target {
            message: message.into(),
            retryable: false,
        }
    }

    pub fn is_retryable(&self) -> bool {
        match self {
            RestoreError::Store(e) => e.is_retryable(),
            RestoreError::Target { retryable, .. } => *retryable,
            RestoreError::Source(e) => e.is_retryable(),
            _ => false,
        }
    }
}

pub type Result<T, E = RestoreError> = std::result::Result<T, E>;

/// The outcome of one item of a restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Restored,
    Skipped,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Restored => "restored",
            Outcome::Skipped => "skipped",
            Outcome::Failed => "failed",
        }
    }
}

pub fn item(name: impl Into<String>, outcome: Outcome, detail: impl Into<String>) -> RestoredItem {
    RestoredItem {
        name: name.into(),
        outcome: outcome.as_str().into(),
        detail: detail.into(),
    }
}

/// Records a restore's end in the journal. Create it when the restore begins
/// (it keeps the clock), then call [`Recorder::performed`] or
/// [`Recorder::failed`] exactly once.
pub struct Recorder {
    pub restore_id: String,
    pub backup_id: String,
    pub what: RestoreWhat,
    pub target: String,
    /// Who asked for it (recorded in `RestoreFailed`); manual unless set.
    pub trigger: crate::ops::Trigger,
    started: Instant,
}

impl Recorder {
    pub fn new(backup_id: &str, what: RestoreWhat, target: impl Into<String>) -> Recorder {
        Recorder {
            restore_id: crate::store::ingest::new_backup_id(),
            backup_id: backup_id.to_string(),
            what,
            target: target.into(),
            trigger: crate::ops::Trigger::Manual,
            started: Instant::now(),
        }
    }

    /// Who asked for the restore (the operation's Context says).
    pub fn with_trigger(mut self, trigger: crate::ops::Trigger) -> Recorder {
        self.trigger = trigger;
        self
    }

    pub fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Appends `RestorePerformed`; returns the event as recorded.
    pub async fn performed(
        &self,
        store: &Store,
        items: Vec<RestoredItem>,
        safety_backup: Option<String>,
    ) -> Result<RestorePerformed> {
        let result = if items.iter().any(|i| i.outcome == Outcome::Failed.as_str()) {
            "partial"
        } else {
            "ok"
        };
        let ev = RestorePerformed {
            restore_id: self.restore_id.clone(),
            backup_id: self.backup_id.clone(),
            what: self.what.as_str().into(),
            target: self.target.clone(),
            result: result.into(),
            items,
            safety_backup,
            duration_ms: self.elapsed_ms(),
        };
        journal::append(store, Event::RestorePerformed(ev.clone())).await?;
        Ok(ev)
    }

    /// Appends `RestoreFailed` (whether trying again may help not said: see
    /// [`Recorder::failed_as`]). An error appending it is returned as a
    /// message to add to the operator's (the restore's own error comes first).
    pub async fn failed(
        &self,
        store: &Store,
        stage: &str,
        message: &str,
        items: Vec<RestoredItem>,
        safety_backup: Option<String>,
    ) -> Option<String> {
        self.failed_as(store, stage, message, items, safety_backup, None)
            .await
    }

    /// [`Recorder::failed`], saying whether trying again later may succeed.
    pub async fn failed_as(
        &self,
        store: &Store,
        stage: &str,
        message: &str,
        items: Vec<RestoredItem>,
        safety_backup: Option<String>,
        retryable: Option<bool>,
    ) -> Option<String> {
        let ev = RestoreFailed {
            restore_id: self.restore_id.clone(),
            backup_id: self.backup_id.clone(),
            what: self.what.as_str().into(),
            target: self.target.clone(),
            stage: stage.into(),
            message: message.into(),
            items,
            safety_backup,
            duration_ms: self.elapsed_ms(),
            retryable,
            trigger: Some(self.trigger.as_str().into()),
        };
        tracing::info!(restore = %self.restore_id, stage, "restore failed: {message}");
        journal::append(store, Event::RestoreFailed(ev))
            .await
            .err()
            .map(|e| format!("the RestoreFailed event could not be recorded: {e}"))
    }
}

/// Free bytes (for an unprivileged user) on the file system of `path`.
pub fn free_bytes(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a zeroed struct to fill.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// `1.5 GiB`, for messages.
pub fn human_bytes(n: u64) -> String {
    humansize::format_size(n, humansize::BINARY)
}

/// A backup chosen for a restore: its id and its manifest, read from the store.
pub struct ChosenBackup {
    pub backup_id: String,
    /// When it finished (ms since the epoch), for names like `{name} (restored {date})`.
    pub finished_ms: i64,
    pub manifest: Manifest,
}

/// Resolves a reference (`latest`, `latest:KIND`, an id or a unique prefix)
/// through the catalog and reads the backup's manifest from the store.
pub async fn choose_backup(
    catalog: &crate::catalog::Catalog,
    store: &Store,
    reference: &str,
) -> Result<ChosenBackup> {
    let backup_id = catalog.resolve(reference).await.map_err(|e| match e {
        crate::catalog::CatalogError::Invalid(m) => RestoreError::Invalid(m),
        e => RestoreError::NotFound(e.to_string()),
    })?;
    let record = catalog
        .backup(&backup_id)
        .await
        .map_err(|e| RestoreError::NotFound(e.to_string()))?
        .ok_or_else(|| RestoreError::NotFound(format!("no backup {backup_id}")))?;
    let manifest_hex = record.manifest.ok_or_else(|| {
        RestoreError::NotFound(format!(
            "backup {backup_id} has no manifest (it did not complete)"
        ))
    })?;
    let manifest_id = store_format::ObjectId::from_hex(&manifest_hex).map_err(|e| {
        RestoreError::NotFound(format!(
            "backup {backup_id}: manifest id {manifest_hex:?}: {e}"
        ))
    })?;
    let manifest = store.read_manifest(&manifest_id).await?;
    if manifest.backup_id != backup_id {
        return Err(RestoreError::Unsafe(format!(
            "manifest {} describes backup {}, not {backup_id}; run `n8n-ark check`",
            manifest_id.short(),
            manifest.backup_id
        )));
    }
    Ok(ChosenBackup {
        backup_id,
        finished_ms: record.finished_ms.unwrap_or(manifest.finished_ms),
        manifest,
    })
}

/// Takes the safety backup a restore needs before it overwrites anything:
/// a normal backup of `kind` from `sources`, pinned (manifest label
/// [`crate::backup::PINNED_LABEL`]) so that retention never removes it,
/// recorded with the restore's trigger; `n8n_key` is n8n's encryption key as
/// the restore's operation knows it (fingerprinted by a config backup).
/// Returns its backup id.
pub async fn take_safety_backup(
    store: &Store,
    kind: crate::backup::BackupKind,
    sources: &crate::backup::Sources,
    restore_id: &str,
    trigger: crate::ops::Trigger,
    n8n_key: Option<&str>,
) -> Result<String> {
    let labels = std::collections::BTreeMap::from([
        (
            crate::backup::PINNED_LABEL.to_string(),
            format!("safety backup before restore {restore_id}"),
        ),
        (
            crate::backup::SAFETY_LABEL.to_string(),
            restore_id.to_string(),
        ),
    ]);
    let summary = crate::backup::run_in(
        store,
        kind,
        sources,
        &|_| None,
        labels,
        None,
        &crate::cancel::Cancel::default(),
        n8n_key,
        trigger,
    )
    .await
    .map_err(|e| RestoreError::Target {
        message: format!("the safety backup failed, so nothing was changed: {e}"),
        retryable: e.is_retryable(),
    })?;
    Ok(summary.backup_id)
}

/// The name of a temporary file beside `name` while it is written:
/// `.<name>.ark-tmp-<pid>-<8 hex>`, so that the next restore can tell one
/// left by a killed process (see [`sweep_temporary_files`]).
pub(crate) fn temporary_file_name(name: &str) -> String {
    format!(
        ".{name}.ark-tmp-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// Removes the temporary files (`.<name>.ark-tmp-<pid>-<hex>`) that a
/// restore killed while writing left in `dir`, when their process is gone.
/// Returns how many it removed.
pub(crate) fn sweep_temporary_files(dir: &std::path::Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(pid) = temporary_file_pid(name) else {
            continue;
        };
        if pid == std::process::id() || crate::sandbox::process_alive(pid, None) {
            continue;
        }
        if e.file_type().is_ok_and(|t| t.is_file()) && std::fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    if removed > 0 {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    removed
}

/// The process id in a temporary file's name `.<name>.ark-tmp-<pid>-<8 hex>`.
pub(crate) fn temporary_file_pid(name: &str) -> Option<u32> {
    let (_, rest) = name.strip_prefix('.')?.rsplit_once(".ark-tmp-")?;
    let (pid, hex) = rest.split_once('-')?;
    (hex.len() == 8 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| pid.parse().ok())
        .flatten()
}
