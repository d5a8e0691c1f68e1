//! One backup of one kind: sources → store → event.
//!
//! Every backup is recorded in the store's journal: `BackupStarted` first,
//! then either `BackupCompleted` (written by the session after its manifest is
//! durable) or `BackupFailed` (stage and message). A failed backup leaves no
//! manifest, so nothing of it is visible; the objects it wrote are garbage for
//! the next gc unless a later backup shares them.
//!
//! | kind | reads |
//! |---|---|
//! | `postgres_n8n` | the n8n database: one snapshot, its description, workflows (as objects), credential names, `pg_dump -Fc -Z0` |
//! | `postgres_full` | every database of the server (each its own snapshot) and `pg_dumpall --globals-only` |
//! | `n8n_config` | config files (defaults and configured paths), the n8n encryption key's fingerprint |
//! | `flows` | workflows only: from the n8n database in one snapshot, else through n8n's public API |
//! | `full_system` | `postgres_full` and `n8n_config` together |
use crate::source::config_files::{self, ConfigPath};
use crate::source::n8n_api::N8nApi;
use crate::source::postgres::{self, DumpInfo, DumpProcess, DumpRunner, PgTarget, Snapshot};
use crate::source::workflow::{self, CanonicalWorkflow, WorkflowSummary};
use crate::source::SourceError;
use crate::store::ingest::{new_backup_id, BackupSession, BackupSummary, BlobWriter};
use crate::store::{journal, Store, StoreError};
use futures::TryStreamExt;
use std::collections::BTreeMap;
use store_format::contents::{Contents, WorkflowNotStored};
use store_format::event::{BackupFailed, BackupStarted};
use store_format::Event;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupKind {
    /// Every database of the PostgreSQL server, and its roles.
    PostgresFull,
    /// The n8n database.
    PostgresN8n,
    /// Config files: .env, compose file, nginx, certificates, extra paths.
    N8nConfig,
    /// Workflows only (from the database, or n8n's API), no dump.
    Flows,
    /// All of the above: enough to rebuild a dead server.
    FullSystem,
}

/// Every kind a backup in a store can have: the five above, then the
/// engine's own `benchmark` (`n8n-ark benchmark --input`) and `demo`
/// (`n8n-ark demo`). What `list --kind` and `latest:KIND` accept.
pub const ALL_KINDS: [&str; 7] = [
    "postgres_full",
    "postgres_n8n",
    "n8n_config",
    "flows",
    "full_system",
    "benchmark",
    "demo",
];

impl BackupKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            BackupKind::PostgresFull => "postgres_full",
            BackupKind::PostgresN8n => "postgres_n8n",
            BackupKind::N8nConfig => "n8n_config",
            BackupKind::Flows => "flows",
            BackupKind::FullSystem => "full_system",
        }
    }
}

impl std::fmt::Display for BackupKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a backup reads from.
pub struct Sources {
    /// The n8n database.
    pub n8n_db: Option<PgTarget>,
    /// The server for `postgres_full` (any database on it to connect to, for
    /// listing the others); defaults to the n8n database's server.
    pub pg_server: Option<PgTarget>,
    pub dump: DumpRunner,
    pub config_paths: Vec<ConfigPath>,
    /// n8n's public API, for `flows` when no database is configured.
    pub n8n_api: Option<N8nApi>,
}

/// Where a backup failed, and what to tell the operator.
#[derive(Debug, thiserror::Error)]
#[error("backup {backup_id} failed at {stage}: {message}")]
pub struct BackupError {
    pub backup_id: String,
    pub stage: &'static str,
    pub message: String,
    pub retryable: bool,
    /// The `BackupFailed` event could not be appended (the store itself failed).
    pub unrecorded: Option<String>,
}

impl BackupError {
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }
}

/// A failure inside a run, before it is recorded.
struct Failure {
    stage: &'static str,
    message: String,
    retryable: bool,
}

impl Failure {
    fn new(stage: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            stage,
            message: message.into(),
            retryable: false,
        }
    }
}

impl From<SourceError> for Failure {
    fn from(e: SourceError) -> Failure {
        let stage = match &e {
            SourceError::Connect(_) => "connect",
            SourceError::Database(_) => "snapshot",
            SourceError::Dump(_) | SourceError::Docker(_) => "dump",
            SourceError::File(_) => "config_files",
            SourceError::Api(_) => "n8n_api",
            SourceError::Invalid(_) => "workflows",
            SourceError::Store(_) => "store",
        };
        let retryable = e.is_retryable();
        let message = match e {
            SourceError::Store(s) => store_message(&s),
            other => other.to_string(),
        };
        Failure {
            stage,
            message,
            retryable,
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        Failure {
            stage: "store",
            retryable: e.is_retryable(),
            message: store_message(&e),
        }
    }
}

/// A store error, with the advice a full disk needs.
fn store_message(e: &StoreError) -> String {
    let m = e.to_string();
    let full = matches!(
        e,
        StoreError::Backend(crate::store::BackendError::NoSpace { .. })
    ) || m.contains("No space left on device")
        || m.contains("Disk quota exceeded");
    if full {
        format!(
            "the store is full: {m}. Nothing of this backup is visible. Free space on the store's disk, then \
             run the backup again: `n8n-ark gc` deletes what this and other failed backups left (it runs \
             on a full disk too); more room needs files other than the store's removed, or a larger disk"
        )
    } else {
        m
    }
}

/// Takes one backup, by hand, without labels (a library caller's plain
/// backup; an operation calls [`run_in`]). `progress` is called once the
/// session exists (to show a progress bar fed from its counters). No
/// encryption key is given: a config backup fingerprints the one its files
/// name.
pub async fn run(
    store: &Store,
    kind: BackupKind,
    sources: &Sources,
    progress: &(dyn Fn(&BackupSession) -> Option<Box<dyn std::any::Any + Send>> + Sync),
) -> Result<BackupSummary, BackupError> {
    run_in(
        store,
        kind,
        sources,
        progress,
        BTreeMap::new(),
        None,
        &crate::cancel::Cancel::default(),
        None,
        crate::ops::Trigger::Manual,
    )
    .await
}

/// The manifest label that pins a backup: retention never removes a backup
/// that carries it (its value says why, e.g. the restore it protects).
pub const PINNED_LABEL: &str = "pinned";
/// The manifest label of a safety backup (taken by a restore before it
/// replaced anything): the restore's id. Such a backup is never `latest`.
pub const SAFETY_LABEL: &str = "safety";

/// One backup of `kind` from `sources`: with extra manifest labels (e.g.
/// [`PINNED_LABEL`] for the safety backup a restore takes before it
/// overwrites anything), a dump already started ([`HeadStart`]), its
/// cancellation, n8n's encryption key as the operation's environment gives
/// it (`N8N_ENCRYPTION_KEY`: the key a config backup fingerprints when no
/// backed-up file gives one), and who asked for it (recorded in its
/// `BackupStarted` and `BackupFailed`).
#[allow(clippy::too_many_arguments)]
pub async fn run_in(
    store: &Store,
    kind: BackupKind,
    sources: &Sources,
    progress: &(dyn Fn(&BackupSession) -> Option<Box<dyn std::any::Any + Send>> + Sync),
    extra_labels: BTreeMap<String, String>,
    head_start: Option<HeadStart>,
    cancel: &crate::cancel::Cancel,
    env_key: Option<&str>,
    trigger: crate::ops::Trigger,
) -> Result<BackupSummary, BackupError> {
    let backup_id = new_backup_id();
    let started = std::time::Instant::now();
    let fail = |f: Failure, unrecorded: Option<String>| BackupError {
        backup_id: backup_id.clone(),
        stage: f.stage,
        message: f.message,
        retryable: f.retryable,
        unrecorded,
    };
    // Backups whose process stopped (killed, crashed) are recorded as such
    // before this one starts, and their locks removed.
    match crate::store::journal_repair::settle_interrupted(store).await {
        Ok(settled) => {
            for s in settled {
                tracing::warn!(
                    backup = %s.backup_id,
                    "an earlier backup was interrupted; recorded it as {}",
                    s.recorded_as
                );
            }
        }
        Err(e) => tracing::warn!("interrupted backups could not be recorded: {e}"),
    }
    let started_event = Event::BackupStarted(BackupStarted {
        backup_id: backup_id.clone(),
        kind: kind.as_str().into(),
        host: crate::store::host_name(),
        sources: describe_sources(kind, sources),
        trigger: Some(trigger.as_str().into()),
    });
    if let Err(e) = journal::append(store, started_event).await {
        let f = Failure::from(e);
        let why = f.message.clone();
        return Err(fail(f, Some(why)));
    }
    tracing::info!(backup = %backup_id, %kind, "backup started");
    let result = async {
        check_sources(kind, sources)?;
        let mut session = BackupSession::begin_as(store, kind.as_str(), backup_id.clone()).await?;
        let _bar = progress(&session);
        let mut contents = Contents::default();
        // Interrupted (SIGINT, SIGTERM, SIGHUP at the front end): what is
        // under way is dropped (pg_dump is killed with it), nothing is
        // committed, and the backup is recorded as failed.
        let r = tokio::select! {
            r = take(
                store,
                kind,
                sources,
                &mut session,
                &mut contents,
                head_start,
                env_key,
            ) => r,
            _ = cancel.cancelled() => Err(Failure::new(
                "interrupted",
                format!(
                    "{}: the backup stopped before it completed; nothing of it is visible, and \
                     `n8n-ark gc` frees what it wrote",
                    cancel.interrupted().unwrap_or_default()
                ),
            )),
        };
        match r {
            Ok(()) => {
                let mut labels = extra_labels;
                labels.insert(
                    "n8n_ark_version".to_string(),
                    env!("CARGO_PKG_VERSION").to_string(),
                );
                session
                    .commit_with(labels, Some(contents))
                    .await
                    .map_err(|e| {
                        let mut f = Failure::from(e);
                        f.stage = "commit";
                        f
                    })
            }
            Err(f) => {
                session.abort().await;
                Err(f)
            }
        }
    }
    .await;
    match result {
        Ok(summary) => {
            tracing::info!(backup = %backup_id, "backup completed");
            Ok(summary)
        }
        Err(f) => {
            tracing::warn!(backup = %backup_id, stage = f.stage, "backup failed: {}", f.message);
            let ev = Event::BackupFailed(BackupFailed {
                backup_id: backup_id.clone(),
                kind: kind.as_str().into(),
                stage: f.stage.into(),
                message: f.message.clone(),
                duration_ms: started.elapsed().as_millis() as u64,
                retryable: Some(f.retryable),
                trigger: Some(trigger.as_str().into()),
            });
            let unrecorded = journal::append(store, ev)
                .await
                .err()
                .map(|e| e.to_string());
            Err(fail(f, unrecorded))
        }
    }
}

/// Records a backup refused before it began (its settings could not be
/// resolved: a config file that is a directory, a secret file that cannot be
/// read, ...): `BackupStarted` and `BackupFailed` at stage `configuration`.
pub async fn record_rejected(
    store: &Store,
    kind: BackupKind,
    message: &str,
    trigger: crate::ops::Trigger,
) -> BackupError {
    let backup_id = new_backup_id();
    let events = [
        Event::BackupStarted(BackupStarted {
            backup_id: backup_id.clone(),
            kind: kind.as_str().into(),
            host: crate::store::host_name(),
            sources: vec![],
            trigger: Some(trigger.as_str().into()),
        }),
        Event::BackupFailed(BackupFailed {
            backup_id: backup_id.clone(),
            kind: kind.as_str().into(),
            stage: "configuration".into(),
            message: message.into(),
            duration_ms: 0,
            retryable: Some(false),
            trigger: Some(trigger.as_str().into()),
        }),
    ];
    let mut unrecorded = None;
    for ev in events {
        if let Err(e) = journal::append(store, ev).await {
            unrecorded = Some(e.to_string());
            break;
        }
    }
    BackupError {
        backup_id,
        stage: "configuration",
        message: message.into(),
        retryable: false,
        unrecorded,
    }
}

fn describe_sources(kind: BackupKind, s: &Sources) -> Vec<String> {
    let mut out = vec![];
    let db = matches!(kind, BackupKind::PostgresN8n | BackupKind::Flows);
    let server = matches!(kind, BackupKind::PostgresFull | BackupKind::FullSystem);
    if db || server {
        if let Some(t) = &s.n8n_db {
            out.push(format!("postgres:{}", t.display()));
        }
    }
    if server {
        if let Some(t) = &s.pg_server {
            out.push(format!("postgres-server:{}", t.display()));
        }
    }
    if kind == BackupKind::Flows && s.n8n_db.is_none() {
        if let Some(a) = &s.n8n_api {
            out.push(format!("n8n-api:{}", a.base_url()));
        }
    }
    if matches!(kind, BackupKind::N8nConfig | BackupKind::FullSystem) {
        out.extend(
            s.config_paths
                .iter()
                .map(|p| format!("config:{}", p.pattern)),
        );
    }
    if matches!(
        kind,
        BackupKind::PostgresN8n | BackupKind::PostgresFull | BackupKind::FullSystem
    ) {
        out.push(format!("pg_dump:{}", s.dump.describe()));
    }
    out
}

fn check_sources(kind: BackupKind, s: &Sources) -> Result<(), Failure> {
    let need_db = || {
        Failure::new(
            "configuration",
            format!(
                "a {kind} backup needs the n8n database: pass --n8n-db postgres://user@host:port/db \
                 or set ARK_N8N_DB (or [n8n] database in the config file)"
            ),
        )
    };
    match kind {
        BackupKind::PostgresN8n => {
            s.n8n_db.as_ref().ok_or_else(need_db)?;
        }
        BackupKind::PostgresFull | BackupKind::FullSystem => {
            if s.pg_server.is_none() && s.n8n_db.is_none() {
                return Err(Failure::new(
                    "configuration",
                    format!(
                        "a {kind} backup needs the PostgreSQL server: pass --pg-server URL or --n8n-db URL \
                         (or set ARK_PG_SERVER / ARK_N8N_DB)"
                    ),
                ));
            }
        }
        BackupKind::Flows => {
            if s.n8n_db.is_none() && s.n8n_api.is_none() {
                return Err(Failure::new(
                    "configuration",
                    "a flows backup reads workflows from the n8n database (--n8n-db / ARK_N8N_DB) or, \
                     without one, from n8n's public API (--n8n-url / ARK_N8N_URL with ARK_N8N_API_KEY or \
                     ARK_N8N_API_KEY_FILE): neither is configured",
                ));
            }
        }
        BackupKind::N8nConfig => {
            if s.config_paths.is_empty() {
                return Err(Failure::new(
                    "configuration",
                    "no config paths to back up: pass --config-path PATH (or ARK_CONFIG_PATHS) or keep the defaults",
                ));
            }
        }
    }
    Ok(())
}

async fn take(
    store: &Store,
    kind: BackupKind,
    s: &Sources,
    session: &mut BackupSession,
    contents: &mut Contents,
    head_start: Option<HeadStart>,
    env_key: Option<&str>,
) -> Result<(), Failure> {
    match kind {
        BackupKind::PostgresN8n => {
            let db = s.n8n_db.as_ref().expect("checked");
            dump_database(session, contents, &s.dump, db, true, head_start).await
        }
        BackupKind::PostgresFull => dump_server(session, contents, s).await,
        BackupKind::N8nConfig => back_up_config(store, session, contents, s, env_key).await,
        BackupKind::Flows => flows(session, contents, s).await,
        BackupKind::FullSystem => {
            dump_server(session, contents, s).await?;
            back_up_config(store, session, contents, s, env_key).await
        }
    }
}

async fn back_up_config(
    store: &Store,
    session: &mut BackupSession,
    contents: &mut Contents,
    s: &Sources,
    env_key: Option<&str>,
) -> Result<(), Failure> {
    let key = config_files::fingerprint_key(store);
    let c = config_files::back_up(session, &s.config_paths, &key, env_key).await?;
    contents.config_files = c.files;
    contents.encryption_key_fingerprint = c.encryption_key_fingerprint;
    contents.encryption_key_source = c.encryption_key_source;
    Ok(())
}

/// The server for `postgres_full`: --pg-server, else the n8n database's server.
fn server_of(s: &Sources) -> PgTarget {
    match (&s.pg_server, &s.n8n_db) {
        (Some(t), _) => t.clone(),
        (None, Some(db)) => db.clone(),
        (None, None) => unreachable!("checked"),
    }
}

fn is_n8n_database(s: &Sources, server: &PgTarget, name: &str) -> bool {
    match &s.n8n_db {
        Some(db) => db.database == name && db.host == server.host && db.port == server.port,
        None => false,
    }
}

async fn dump_server(
    session: &mut BackupSession,
    contents: &mut Contents,
    s: &Sources,
) -> Result<(), Failure> {
    let server = server_of(s);
    let names = postgres::list_databases(&server).await?;
    tracing::info!(
        "databases on {}:{}: {}",
        server.host,
        server.port,
        names.join(", ")
    );
    for name in &names {
        // The n8n database with the n8n credentials (when they differ from the server's).
        let target = match &s.n8n_db {
            Some(db) if is_n8n_database(s, &server, name) => db.clone(),
            _ => server.with_database(name),
        };
        dump_database(
            session,
            contents,
            &s.dump,
            &target,
            is_n8n_database(s, &server, name),
            None,
        )
        .await?;
    }
    let snapshot_major = contents
        .databases
        .first()
        .map(|d| d.server_version_num / 10000)
        .unwrap_or(0);
    s.dump.check_version("pg_dumpall", snapshot_major).await?;
    let (globals, without_passwords) = s.dump.dump_globals(&server).await?;
    if without_passwords {
        tracing::warn!("roles were dumped without their passwords (the user may not read them)");
    }
    let item = "db/globals.sql";
    session.add_blob(item, globals).await?;
    contents.globals_item = Some(item.into());
    Ok(())
}

/// An item name part from a database name or workflow id.
fn item_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// One database: snapshot, description (and workflows and credentials for the
/// n8n database) while `pg_dump` of the same snapshot streams into the store.
/// A database dump under way: its snapshot is open and pg_dump runs (blocked
/// on its pipe until the store takes its output).
struct StartedDump {
    snap: Snapshot,
    info: DumpInfo,
    dump: DumpProcess,
}

/// Opens `target`'s snapshot and starts its dump.
async fn start_dump(runner: &DumpRunner, target: &PgTarget) -> Result<StartedDump, Failure> {
    let snap = Snapshot::open(target).await?;
    let version_line = runner.check_version("pg_dump", snap.server_major()).await?;
    let info = DumpInfo {
        version_line,
        runner: runner.describe(),
    };
    let dump = runner.start_dump(target, &snap.id).await?;
    Ok(StartedDump { snap, info, dump })
}

/// The n8n database's dump of a `postgres_n8n` backup, started before the
/// store is open: connecting, taking the snapshot and starting pg_dump then
/// overlap the passphrase's key derivation (a few tenths of a second of one
/// core) instead of following it. Its failure is reported by the backup that
/// takes it, at the stage where it happened, as if the backup had started it.
/// Dropped unused (the store could not be opened), the dump is killed and its
/// snapshot's connection closed.
pub struct HeadStart(Result<StartedDump, Failure>);

impl HeadStart {
    /// For the kinds that begin with one database's dump (`postgres_n8n`);
    /// `None` for the others.
    pub async fn start(kind: BackupKind, sources: &Sources) -> Option<HeadStart> {
        match (kind, &sources.n8n_db) {
            (BackupKind::PostgresN8n, Some(db)) => {
                Some(HeadStart(start_dump(&sources.dump, db).await))
            }
            _ => None,
        }
    }

    /// Gives the head start up (the backup will not be taken: the store
    /// could not be opened): the dump is stopped and its snapshot's
    /// connection closed, both waited for, so that neither outlives the
    /// command that started them.
    pub async fn abandon(self) {
        if let Ok(started) = self.0 {
            started.dump.stop(std::time::Duration::from_secs(10)).await;
            started.snap.close().await;
        }
    }
}

async fn dump_database(
    session: &mut BackupSession,
    contents: &mut Contents,
    runner: &DumpRunner,
    target: &PgTarget,
    is_n8n: bool,
    head_start: Option<HeadStart>,
) -> Result<(), Failure> {
    let started = match head_start {
        // Started for this database (the n8n one, of a `postgres_n8n` backup).
        Some(HeadStart(started)) => started?,
        None => start_dump(runner, target).await?,
    };
    let StartedDump {
        mut snap,
        info,
        dump,
    } = started;
    let (stdout, exit) = dump.split();
    let item = format!("db/{}.dump", item_part(&target.database));
    tracing::info!(database = %target.database, snapshot = %snap.id, "dumping");
    let blobs = session.blob_writer();
    let describe = async {
        let (tables, head) = snap.describe(true).await?;
        let (workflows, credentials) = if is_n8n {
            let w = store_workflows(
                &blobs,
                snap.workflow_rows(&tables).map_ok(|r| r.canonical()),
            )
            .await?;
            (w, snap.credentials(&tables).await?)
        } else {
            (vec![], vec![])
        };
        Ok::<_, Failure>((tables, head, workflows, credentials))
    };
    let stream = async {
        session
            .add_stream(&item, stdout)
            .await
            .map_err(Failure::from)?;
        Ok::<_, Failure>(())
    };
    let ((tables, head, workflows, credentials), ()) = tokio::try_join!(describe, stream)?;
    // The output ended: did the dump end well?
    exit.wait().await?;
    let entry = snap.database_entry(&info, &item, is_n8n, tables, head);
    snap.close().await;
    if is_n8n {
        add_workflows(session, contents, workflows)?;
        contents.workflow_source = Some(format!("postgres:{}", target.database));
        contents.credentials = credentials;
    }
    contents.databases.push(entry);
    Ok(())
}

/// A workflow read: stored, waiting for its item to be named (its summary
/// and its one chunk; the bytes are in the store, not in memory), or not
/// stored (named, with why).
enum ReadWorkflow {
    Stored(WorkflowSummary, Option<store_format::ChunkRef>),
    NotStored(WorkflowNotStored),
}

/// Stores canonical workflows (several at once), in order. A workflow that
/// could not be put in canonical form is kept as such, and the others go on;
/// only the source itself failing (the database, the API) fails the backup.
async fn store_workflows(
    blobs: &BlobWriter,
    rows: impl futures::Stream<Item = crate::source::Result<Result<CanonicalWorkflow, WorkflowNotStored>>>
        + Send,
) -> Result<Vec<ReadWorkflow>, Failure> {
    rows.map_err(Failure::from)
        .map_ok(|read| {
            let blobs = blobs.clone();
            async move {
                match read {
                    Ok(canonical) => {
                        let chunk = blobs.write(canonical.json).await.map_err(Failure::from)?;
                        Ok::<_, Failure>(ReadWorkflow::Stored(canonical.summary, chunk))
                    }
                    Err(not_stored) => Ok(ReadWorkflow::NotStored(not_stored)),
                }
            }
        })
        .try_buffered(8)
        .try_collect()
        .await
}

fn add_workflows(
    session: &mut BackupSession,
    contents: &mut Contents,
    workflows: Vec<ReadWorkflow>,
) -> Result<(), Failure> {
    for w in workflows {
        let (summary, chunk) = match w {
            ReadWorkflow::Stored(summary, chunk) => (summary, chunk),
            ReadWorkflow::NotStored(n) => {
                tracing::warn!(
                    "workflow {} ({:?}) is not stored in this backup: {}; the other workflows are",
                    n.id,
                    n.name,
                    n.reason
                );
                contents.workflows_not_stored.push(n);
                continue;
            }
        };
        let item = format!("workflows/{}.json", item_part(&summary.id));
        let size = chunk.map(|c| c.len as u64).unwrap_or(0);
        session.add_blob_item(&item, size, chunk)?;
        let object = chunk.map(|c| c.id).unwrap_or_default();
        contents
            .workflows
            .push(summary.into_manifest_entry(item, object, size));
    }
    Ok(())
}

/// Workflows only: from the database in one snapshot, else from n8n's API.
async fn flows(
    session: &mut BackupSession,
    contents: &mut Contents,
    s: &Sources,
) -> Result<(), Failure> {
    let blobs = session.blob_writer();
    let stored = if let Some(db) = &s.n8n_db {
        let mut snap = Snapshot::open(db).await?;
        let (tables, _) = snap.describe(false).await?;
        if !tables.iter().any(|t| t.name == "workflow_entity") {
            return Err(Failure::new(
                "workflows",
                format!(
                    "database {} has no workflow_entity table: is it n8n's database?",
                    db.display()
                ),
            ));
        }
        let stored = store_workflows(
            &blobs,
            snap.workflow_rows(&tables).map_ok(|r| r.canonical()),
        )
        .await?;
        snap.close().await;
        contents.workflow_source = Some(format!("postgres:{}", db.database));
        stored
    } else {
        let api = s.n8n_api.as_ref().expect("checked");
        api.check().await?;
        let bodies = api.list_workflows().await?;
        let canon = bodies
            .into_iter()
            .map(|b| Ok(workflow::canonical_from_api_or_not(b)));
        contents.workflow_source = Some(format!("n8n-api:{}", api.base_url()));
        store_workflows(&blobs, futures::stream::iter(canon)).await?
    };
    add_workflows(session, contents, stored)
}
