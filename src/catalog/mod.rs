//! The catalog: SQLite projections of one store's journal, for browsing
//! backups without loading them (`list`, `show`, `diff`, `history`).
//!
//! The journal is the source of truth; the catalog is a projection of it that
//! can be deleted and rebuilt at any time (`n8n-ark catalog rebuild`). One
//! SQLite file per store, `<data_dir>/catalogs/<store_id>.sqlite`, holding:
//!
//! - `catalog_state`: which store it projects, and the sequence number and file
//!   hash of the last journal record applied;
//! - `events`: a copy of every journal record applied;
//! - `backup_history`: one row per backup, from the journal alone;
//! - `backup_contents` (the original design's table: counts and JSON
//!   documents) and the normalised `backup_workflows`, `backup_credentials`,
//!   `backup_databases`, `backup_tables`, `backup_config_files`, from each
//!   completed backup's manifest;
//! - `workflow_versions`: one row per distinct version (object id) of a workflow.
//!
//! Each journal record is applied in one SQLite transaction, together with its
//! copy in `events` and the move of `catalog_state`, so the catalog is always a
//! projection of an exact prefix of the journal. Catching up reads only the
//! records after that prefix, after checking that the prefix's last record is
//! still the store's (a catalog of another store, or of a journal that was
//! replaced or cut back, is rebuilt from scratch).
//!
//! Being only a projection, a damaged catalog file is never fatal: opened
//! with its store, a file that is not a database, is cut short or has a
//! damaged page where every command reads is moved aside (kept, named with
//! the time: [`SetAside`]) and made again; a query that finds damage
//! elsewhere says so ([`CatalogError::is_damage`]) and the caller does the
//! same with [`Catalog::replace_damaged`].
//!
//! A catalog that already holds the whole journal answers without the
//! store's key ([`Catalog::open_if_current`]): whether there is anything new
//! is read from the journal's file names, not from its (sealed) records.
mod diff;
mod error;
mod projection;
mod query;

pub use diff::*;
pub use error::{CatalogError, Result};
pub use query::*;

use crate::store::journal::{self, ProblemKind};
use crate::store::Store;
use futures::StreamExt;
use serde::Serialize;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Row;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;
use store_format::journal::GENESIS;
use store_format::Event;

/// Manifests read ahead of the record being applied.
const MANIFESTS_AHEAD: usize = 8;

/// The catalogs' folder under the data directory.
pub const CATALOGS_DIR: &str = "catalogs";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The tables every command reads (`list`, `latest`, a backup's row and
/// verifications, restores, the verification policy), checked page by page
/// when the catalog opens. They are small (a row per backup, verification or
/// restore), so the check costs little; damage elsewhere (a backup's
/// contents, the events) is found by the query that reads it.
const PROBED_TABLES: [&str; 5] = [
    "catalog_state",
    "backup_history",
    "verification_history",
    "verification_policy",
    "restore_history",
];

/// One store's catalog.
#[derive(Debug, Clone)]
pub struct Catalog {
    pool: SqlitePool,
    path: PathBuf,
    store_id: String,
    /// The file's device and inode when opened: whether it is still the
    /// same file when it is found damaged.
    identity: Option<(u64, u64)>,
    /// The damaged file this one replaced when it was opened.
    set_aside: Option<SetAside>,
}

/// A catalog file that could not be read, moved aside (not deleted: it is
/// the operator's to look at) so that a new one could be made from the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetAside {
    /// Where the catalog was, and is again (new).
    pub path: PathBuf,
    /// Where the damaged file is now; its `-wal` and `-shm` files, when
    /// there were any, beside it under the same name with those suffixes.
    pub moved_to: PathBuf,
    /// What was wrong with it.
    pub reason: String,
}

/// What a look at a store without its key found (see
/// [`Catalog::open_if_current`]).
#[derive(Debug)]
pub struct KeylessLook {
    /// The store's config (not encrypted: its id, whether the store is).
    pub config: store_format::StoreConfig,
    /// Its catalog, when it holds every record of the store's journal.
    pub catalog: Option<Catalog>,
}

/// Where the catalog stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogState {
    pub store_id: String,
    pub store_location: String,
    /// The last journal record applied (0: none).
    pub last_seq: u64,
    /// The file hash of that record, hex.
    pub last_hash: String,
    pub updated_ms: i64,
}

/// What a catch-up (or a rebuild) did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CatchUpReport {
    /// Journal records applied.
    pub applied: u64,
    /// Whether everything was dropped and replayed from the first record.
    pub rebuilt: bool,
    /// Why it was rebuilt.
    pub rebuild_reason: Option<String>,
    /// The last journal record the catalog now holds.
    pub last_seq: u64,
    /// Journal problems found by this catch-up, and manifests that could not
    /// be read: the catalog holds everything before and around them.
    pub warnings: Vec<String>,
    /// Every journal problem the catalog knows of that no repair has
    /// acknowledged (found now or earlier): a front end warns while there is any.
    pub journal_damage: Vec<String>,
    /// Backups shown as completed from their intact manifests because their
    /// completion record is lost (see `journal_damage`).
    pub recovered: Vec<String>,
}

/// A journal problem the catalog knows of (see [`Catalog::journal_damage`]).
#[derive(Debug, Clone, Serialize)]
pub struct JournalDamage {
    pub seq: u64,
    pub through: u64,
    pub kind: String,
    pub message: String,
}

impl JournalDamage {
    /// `record 3` or `records 3-7`.
    pub fn records(&self) -> String {
        if self.through > self.seq {
            format!("records {}-{}", self.seq, self.through)
        } else {
            format!("record {}", self.seq)
        }
    }
}

/// One step of a catch-up, at one place in the journal.
enum Step<'a> {
    /// An intact record, with the chain break reported at it, if any.
    Record {
        rec: &'a store_format::journal::JournalRecord,
        hash: &'a [u8; 32],
        chain: Option<&'a journal::JournalProblem>,
    },
    /// A record (or several) whose event is lost.
    Lost(&'a journal::JournalProblem),
}

impl Step<'_> {
    fn position(&self) -> projection::Position {
        match self {
            Step::Record { rec, hash, .. } => projection::Position {
                seq: rec.seq,
                hash: hex32(hash),
            },
            Step::Lost(p) => projection::Position {
                seq: p.through,
                hash: projection::state_hash(p.file_hash.as_ref()),
            },
        }
    }
}

fn steps_of(replay: &journal::Replay) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    let mut chain: Option<&journal::JournalProblem> = None;
    for e in replay.entries() {
        match e {
            journal::Entry::Problem(p) if p.kind == ProblemKind::ChainBroken => chain = Some(p),
            journal::Entry::Problem(p) => out.push(Step::Lost(p)),
            journal::Entry::Record(rec, hash) => {
                out.push(Step::Record {
                    rec,
                    hash,
                    chain: chain.take().filter(|p| p.seq == rec.seq),
                });
            }
        }
    }
    out
}

fn hex32(h: &[u8; 32]) -> String {
    hex::encode(h)
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    let v = hex::decode(s).ok()?;
    v.try_into().ok()
}

/// A store id becomes a file name: refuse anything but plain characters.
fn check_store_id(id: &str) -> Result<()> {
    if id.is_empty()
        || id.len() > 128
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(CatalogError::NoCatalog(format!(
            "the store id {id:?} cannot name a catalog file"
        )));
    }
    Ok(())
}

/// Creates `dir` (and missing parents) readable by its owner only: manifests
/// name workflows, credentials and config files.
fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => Ok(()),
        Err(e) => Err(CatalogError::io(dir, e)),
    }
}

impl Catalog {
    /// The catalog file of a store.
    pub fn path_for(data_dir: &Path, store_id: &str) -> PathBuf {
        data_dir
            .join(CATALOGS_DIR)
            .join(format!("{store_id}.sqlite"))
    }

    /// Opens (creating it if needed) the catalog of `store` and brings its
    /// schema up to date. It does not catch up: call [`Catalog::catch_up`].
    ///
    /// A catalog file that cannot be read (not a database, cut short, a
    /// damaged page where every command reads) is moved aside and a new,
    /// empty one is made in its place, for the catch-up to fill from the
    /// store: [`Catalog::set_aside`] says so.
    pub async fn open(data_dir: &Path, store: &Store) -> Result<Catalog> {
        Self::open_file(data_dir, &store.config().id, Some(store)).await
    }

    /// Opens an existing catalog for reading when its store cannot be opened
    /// (unreachable, or the machine is offline). Its answers are as of its last
    /// catch-up (see [`Catalog::state`]). A damaged file is left where it is
    /// ([`CatalogError::Unreadable`]): without the store it cannot be made again.
    pub async fn open_offline(data_dir: &Path, store_id: &str) -> Result<Catalog> {
        Self::open_file(data_dir, store_id, None).await
    }

    /// The catalog of the store `backend` holds, when it already holds every
    /// record of the store's journal: read without the store's key (the
    /// config is not encrypted, and the journal's file names and the file
    /// hash of the record the catalog applied last tell whether anything is
    /// new). `catalog` is `None` when the catalog is missing, damaged or
    /// behind: the store must then be opened (with its key) to catch up.
    pub async fn open_if_current(
        data_dir: &Path,
        backend: &std::sync::Arc<dyn crate::store::Backend>,
    ) -> Result<KeylessLook> {
        let bytes = backend
            .get(crate::store::CONFIG)
            .await
            .map_err(crate::store::StoreError::from)?;
        let config = store_format::StoreConfig::decode(&bytes).map_err(|e| {
            crate::store::StoreError::format(format!("{}/config", backend.location()), e)
        })?;
        let location = backend.location();
        let mut look = KeylessLook {
            config,
            catalog: None,
        };
        let id = look.config.id.clone();
        if check_store_id(&id).is_err() || !Self::path_for(data_dir, &id).exists() {
            return Ok(look);
        }
        let catalog = match Self::open_file(data_dir, &id, None).await {
            Ok(c) => c,
            // Damaged: the open with the store moves it aside.
            Err(e) if e.is_damage() => return Ok(look),
            Err(e) => return Err(e),
        };
        match catalog.holds_whole_journal(backend, &id, &location).await {
            Ok(true) => look.catalog = Some(catalog),
            Ok(false) => catalog.close().await,
            Err(e) => {
                catalog.close().await;
                if !e.is_damage() {
                    return Err(e);
                }
            }
        }
        Ok(look)
    }

    /// Whether this catalog holds every journal record of the store: no
    /// record file (claims not yet written aside) numbered after its last
    /// record, and the newest record it holds still the store's (same file
    /// hash: not a journal replaced, or a store put back from an older copy).
    async fn holds_whole_journal(
        &self,
        backend: &std::sync::Arc<dyn crate::store::Backend>,
        store_id: &str,
        location: &str,
    ) -> Result<bool> {
        let Some(state) = self.state().await? else {
            return Ok(false);
        };
        if state.store_id != store_id || state.store_location != location {
            return Ok(false);
        }
        let journal = crate::store::JOURNAL;
        let entries = backend
            .list(journal)
            .await
            .map_err(crate::store::StoreError::from)?;
        let newer = entries.iter().any(|e| {
            e.size > 0
                && e.path
                    .strip_prefix(journal)
                    .and_then(store_format::journal::JournalRecord::parse_file_name)
                    .is_some_and(|seq| seq > state.last_seq)
        });
        if newer {
            return Ok(false);
        }
        let newest_held =
            sqlx::query("SELECT seq, hash FROM events WHERE seq <= ? ORDER BY seq DESC LIMIT 1")
                .bind(state.last_seq as i64)
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = newest_held else {
            return Ok(false);
        };
        let seq: i64 = row.try_get("seq")?;
        let hash: String = row.try_get("hash")?;
        let file = format!(
            "{journal}{}",
            store_format::journal::JournalRecord::file_name(seq as u64)
        );
        match backend.get(&file).await {
            Ok(bytes) => Ok(unhex32(&hash)
                == Some(store_format::journal::JournalRecord::hash_of_encoded(
                    &bytes,
                ))),
            Err(crate::store::BackendError::NotFound { .. }) => Ok(false),
            Err(e) => Err(crate::store::StoreError::from(e).into()),
        }
    }

    /// The catalog whose store was last seen at `location` (as the store
    /// reports its location), for reading offline; `None` if there is none.
    /// When none can be read and a damaged catalog file is there (which may
    /// be this store's: a damaged file does not say), the error
    /// [`CatalogError::Unreadable`] names it.
    pub async fn find_offline(data_dir: &Path, location: &str) -> Result<Option<Catalog>> {
        let dir = data_dir.join(CATALOGS_DIR);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(CatalogError::io(&dir, e)),
        };
        let mut found: Vec<(i64, String)> = Vec::new();
        let mut damaged: Vec<(std::time::SystemTime, PathBuf, String)> = Vec::new();
        for e in entries.flatten() {
            let p = e.path();
            let Some(id) = p
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".sqlite"))
            else {
                continue;
            };
            if check_store_id(id).is_err() {
                continue;
            }
            let modified = e
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            if let Err(why) = check_file(&p) {
                damaged.push((modified, p, why));
                continue;
            }
            let opts = SqliteConnectOptions::new()
                .filename(&p)
                .read_only(true)
                .busy_timeout(Duration::from_secs(5));
            let pool = match SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(opts)
                .await
            {
                Ok(pool) => pool,
                Err(e) => {
                    let e = CatalogError::from(e);
                    if e.is_damage() {
                        damaged.push((modified, p, e.to_string()));
                    }
                    continue;
                }
            };
            let row = sqlx::query(
                "SELECT store_id, store_location, updated_ms FROM catalog_state WHERE id = 1",
            )
            .fetch_optional(&pool)
            .await;
            pool.close().await;
            match row {
                Ok(Some(row)) => {
                    let sid: String = row.try_get("store_id").unwrap_or_default();
                    let loc: String = row.try_get("store_location").unwrap_or_default();
                    let updated: i64 = row.try_get("updated_ms").unwrap_or(0);
                    if loc == location && sid == id {
                        found.push((updated, sid));
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    let e = CatalogError::from(e);
                    if e.is_damage() {
                        damaged.push((modified, p, e.to_string()));
                    }
                }
            }
        }
        // Several stores seen at one location (it was re-initialised): the
        // most recently updated catalog.
        found.sort();
        match found.pop() {
            Some((_, id)) => Ok(Some(Self::open_offline(data_dir, &id).await?)),
            None => {
                damaged.sort();
                match damaged.pop() {
                    Some((_, path, reason)) => Err(CatalogError::Unreadable {
                        path: path.display().to_string(),
                        reason,
                    }),
                    None => Ok(None),
                }
            }
        }
    }

    /// Opens a catalog file, bringing its schema up to date; with `store`,
    /// creates it if needed and records the store in it, and sets a damaged
    /// file aside to make a new one.
    async fn open_file(data_dir: &Path, store_id: &str, store: Option<&Store>) -> Result<Catalog> {
        check_store_id(store_id)?;
        let path = Self::path_for(data_dir, store_id);
        if store.is_some() {
            create_private_dir(&data_dir.join(CATALOGS_DIR))?;
        } else if !path.exists() {
            return Err(CatalogError::NoCatalog(format!(
                "there is no catalog of store {store_id} in {} (it is made the first time the store is opened)",
                data_dir.display()
            )));
        }
        // Processes opening the catalog at once (the service, a command)
        // take turns: creating the file, switching it to WAL, migrating its
        // schema and setting a damaged file aside are not safe to race.
        let _turn = open_lock(&path).await?;
        Self::open_in_turn(&path, store_id, store).await
    }

    /// [`Catalog::open_file`] with the file's open lock held.
    async fn open_in_turn(path: &Path, store_id: &str, store: Option<&Store>) -> Result<Catalog> {
        let Some(store) = store else {
            return Self::connect(path, store_id, None).await;
        };
        create_private_file(path)?;
        match Self::connect(path, store_id, Some(store)).await {
            Err(e) if e.is_damage() => {
                let aside = set_file_aside(path, &reason_of(&e))?;
                create_private_file(path)?;
                let mut catalog = Self::connect(path, store_id, Some(store)).await?;
                catalog.set_aside = Some(aside);
                Ok(catalog)
            }
            r => r,
        }
    }

    /// Opens the SQLite file at `path` and checks it can be read: its
    /// header, its schema (migrated), and every page of the tables each
    /// command reads (catalog state, backups, restores, verifications); the
    /// rest is found damaged by the query that reads it.
    async fn connect(path: &Path, store_id: &str, store: Option<&Store>) -> Result<Catalog> {
        check_file(path).map_err(|reason| CatalogError::Unreadable {
            path: path.display().to_string(),
            reason,
        })?;
        let identity = file_identity(path);
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(false)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await?;
        match Self::prepare(&pool, store).await {
            Ok(()) => Ok(Catalog {
                pool,
                path: path.to_path_buf(),
                store_id: store_id.to_string(),
                identity,
                set_aside: None,
            }),
            Err(e) => {
                pool.close().await;
                Err(match e {
                    CatalogError::Unreadable { reason, .. } => CatalogError::Unreadable {
                        path: path.display().to_string(),
                        reason,
                    },
                    e => e,
                })
            }
        }
    }

    /// Migrates the schema, checks the pages every command reads, and with
    /// `store`, records the store in the catalog.
    async fn prepare(pool: &SqlitePool, store: Option<&Store>) -> Result<()> {
        MIGRATOR.run(pool).await?;
        for table in PROBED_TABLES {
            let found: Vec<String> =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("PRAGMA quick_check({table})")))
                    .fetch_all(pool)
                    .await?;
            if found != ["ok"] {
                return Err(CatalogError::Unreadable {
                    path: String::new(),
                    reason: format!("table {table}: {}", found.join("; ")),
                });
            }
        }
        if let Some(store) = store {
            sqlx::query(
                "INSERT INTO catalog_state (id, store_id, store_location, last_seq, last_hash, updated_ms) \
                 VALUES (1, ?, ?, 0, ?, ?) ON CONFLICT (id) DO NOTHING",
            )
            .bind(&store.config().id)
            .bind(store.location())
            .bind(hex32(&GENESIS))
            .bind(crate::store::now_ms())
            .execute(pool)
            .await?;
            // Remember where the store is now (to find the catalog by
            // location when the store cannot be opened).
            sqlx::query(
                "UPDATE catalog_state SET store_location = ? \
                 WHERE id = 1 AND store_id = ? AND store_location <> ?",
            )
            .bind(store.location())
            .bind(&store.config().id)
            .bind(store.location())
            .execute(pool)
            .await?;
        }
        Ok(())
    }

    /// Checks every page of the catalog (`PRAGMA quick_check`: the whole
    /// file, where opening checks only what every command reads): `check`
    /// runs it, and a damaged catalog is then replaced like any other.
    /// SQLite keeps no checksums, so damage inside a value reads back as
    /// another value; what this finds is damage to the file's structure.
    pub async fn check_whole(&self) -> Result<()> {
        let found: Vec<String> = sqlx::query_scalar("PRAGMA quick_check")
            .fetch_all(&self.pool)
            .await?;
        if found != ["ok"] {
            return Err(CatalogError::Unreadable {
                path: self.path.display().to_string(),
                reason: found.join("; "),
            });
        }
        Ok(())
    }

    /// When this catalog was opened, the damaged file it replaced.
    pub fn set_aside(&self) -> Option<&SetAside> {
        self.set_aside.as_ref()
    }

    /// A query found this catalog damaged (`err`,
    /// [`CatalogError::is_damage`]): closes it, sets the file aside (unless
    /// another process already did) and opens a new, empty one for the
    /// catch-up to fill from `store`.
    pub async fn replace_damaged(
        self,
        data_dir: &Path,
        store: &Store,
        err: &CatalogError,
    ) -> Result<Catalog> {
        let Catalog {
            pool,
            path,
            store_id,
            identity,
            ..
        } = self;
        pool.close().await;
        if store_id != store.config().id || path != Self::path_for(data_dir, &store_id) {
            return Err(CatalogError::NoCatalog(format!(
                "the catalog {} is not the one of store {}",
                path.display(),
                store.config().id
            )));
        }
        let _turn = open_lock(&path).await?;
        let aside = if identity.is_some() && file_identity(&path) == identity {
            Some(set_file_aside(&path, &reason_of(err))?)
        } else {
            None
        };
        let mut catalog = Self::open_in_turn(&path, &store_id, Some(store)).await?;
        if catalog.set_aside.is_none() {
            catalog.set_aside = aside;
        }
        Ok(catalog)
    }

    /// The SQLite file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The store this catalog was opened for.
    pub fn store_id(&self) -> &str {
        &self.store_id
    }

    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes the connections (the file stays).
    pub async fn close(self) {
        self.pool.close().await;
    }

    /// Where the catalog stands; `None` for a catalog opened offline that
    /// never saw its store.
    pub async fn state(&self) -> Result<Option<CatalogState>> {
        let row = sqlx::query(
            "SELECT store_id, store_location, last_seq, last_hash, updated_ms FROM catalog_state WHERE id = 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            None => None,
            Some(r) => Some(CatalogState {
                store_id: r.try_get("store_id")?,
                store_location: r.try_get("store_location")?,
                last_seq: r.try_get::<i64, _>("last_seq")? as u64,
                last_hash: r.try_get("last_hash")?,
                updated_ms: r.try_get("updated_ms")?,
            }),
        })
    }

    /// Applies the journal records the catalog does not hold yet. Rebuilds
    /// from the whole journal when the catalog's prefix is not the store's
    /// (another store, a journal replaced or cut back). Damage later in the
    /// journal stops the catch-up at the intact prefix, reported as a warning.
    pub async fn catch_up(&self, store: &Store) -> Result<CatchUpReport> {
        let mut report = CatchUpReport::default();
        self.catch_up_into(store, &mut report).await?;
        Ok(report)
    }

    /// Drops every row and replays the whole journal.
    pub async fn rebuild(&self, store: &Store) -> Result<CatchUpReport> {
        let mut report = CatchUpReport::default();
        self.reset(store, "a rebuild was asked for", &mut report)
            .await?;
        self.catch_up_into(store, &mut report).await?;
        Ok(report)
    }

    /// Empties the catalog (one transaction) and points it at `store`.
    async fn reset(&self, store: &Store, why: &str, report: &mut CatchUpReport) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for table in [
            "DELETE FROM restore_history",
            "DELETE FROM verification_history",
            "DELETE FROM verification_policy",
            "DELETE FROM workflow_versions",
            "DELETE FROM backup_config_files",
            "DELETE FROM backup_tables",
            "DELETE FROM backup_databases",
            "DELETE FROM backup_credentials",
            "DELETE FROM backup_workflows",
            "DELETE FROM backup_contents",
            "DELETE FROM backup_history",
            "DELETE FROM events",
            "DELETE FROM journal_problems",
        ] {
            sqlx::query(table).execute(&mut *tx).await?;
        }
        sqlx::query(
            "INSERT INTO catalog_state (id, store_id, store_location, last_seq, last_hash, updated_ms) \
             VALUES (1, ?, ?, 0, ?, ?) ON CONFLICT (id) DO UPDATE SET store_id = excluded.store_id, \
             store_location = excluded.store_location, last_seq = 0, last_hash = excluded.last_hash, \
             updated_ms = excluded.updated_ms",
        )
        .bind(&store.config().id)
        .bind(store.location())
        .bind(hex32(&GENESIS))
        .bind(crate::store::now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        report.rebuilt = true;
        if report.rebuild_reason.is_none() {
            report.rebuild_reason = Some(why.to_string());
        }
        report.applied = 0;
        Ok(())
    }

    async fn catch_up_into(&self, store: &Store, report: &mut CatchUpReport) -> Result<()> {
        let store_id = store.config().id.clone();
        let location = store.location();
        // Another process (the service, another command) may be applying the
        // same records: each record's transaction checks that the catalog is
        // where this one expects, and on a conflict the catch-up starts over
        // from where the catalog now is.
        for _attempt in 0..16 {
            let state = match self.state().await? {
                Some(s) => s,
                None => {
                    self.reset(store, "the catalog had no state", report)
                        .await?;
                    continue;
                }
            };
            if state.store_id != store_id {
                let why = format!(
                    "the catalog describes store {} but {} is store {}",
                    state.store_id, location, store_id
                );
                tracing::warn!("rebuilding the catalog: {why}");
                self.reset(store, &why, report).await?;
                continue;
            }
            let here = projection::Position {
                seq: state.last_seq,
                hash: state.last_hash.clone(),
            };
            // The catalog's last position must still be the store's: the
            // same record (or the same damage) at the same place.
            let before = match self.check_position(store, &here).await? {
                Ok(before) => before,
                Err(why) => {
                    tracing::warn!("rebuilding the catalog: {why}");
                    self.reset(store, &why, report).await?;
                    continue;
                }
            };
            let replay = journal::replay_from(store, here.seq, before).await?;
            let steps = steps_of(&replay);
            // Backups forgotten later in this batch: their manifests are gone
            // (or going), and their contents would be dropped at once.
            let forgotten: HashSet<&str> = replay
                .records
                .iter()
                .filter_map(|r| match &r.event {
                    Event::BackupForgotten(f) => Some(f.backup_id.as_str()),
                    _ => None,
                })
                .collect();
            // Manifests are read ahead of the records being applied, a few at
            // once (an object store answers slowly), and always before the
            // transaction that applies their record.
            let mut manifests = futures::stream::iter(steps.iter().enumerate())
                .map(|(idx, step)| {
                    let forgotten = &forgotten;
                    async move {
                        let read = match step {
                            Step::Record { rec, .. } => match &rec.event {
                                Event::BackupCompleted(e)
                                    if !forgotten.contains(e.backup_id.as_str()) =>
                                {
                                    match store.read_manifest(&e.manifest).await {
                                        Ok(m) => projection::ManifestRead::Loaded(Box::new(m)),
                                        Err(err) if manifest_error_is_fatal(&err) => {
                                            return Err(CatalogError::from(err))
                                        }
                                        Err(err) => {
                                            projection::ManifestRead::Unavailable(err.to_string())
                                        }
                                    }
                                }
                                _ => projection::ManifestRead::NotNeeded,
                            },
                            Step::Lost(_) => projection::ManifestRead::NotNeeded,
                        };
                        Ok((idx, read))
                    }
                })
                .buffered(MANIFESTS_AHEAD);
            let mut conflict = false;
            let mut at = here.clone();
            let mut i = 0;
            while i < steps.len() {
                let (idx, manifest) = match manifests.next().await {
                    Some(r) => r?,
                    None => break,
                };
                if idx < i {
                    continue; // applied by another process
                }
                let step = &steps[i];
                let to = step.position();
                let applied = match step {
                    Step::Record { rec, hash, chain } => {
                        let unavailable = match (&manifest, &rec.event) {
                            (
                                projection::ManifestRead::Unavailable(err),
                                Event::BackupCompleted(e),
                            ) => Some(format!(
                                "backup {}: contents unavailable: {err}",
                                e.backup_id
                            )),
                            _ => None,
                        };
                        let ok = projection::apply(
                            &self.pool, &store_id, &location, &at, rec, hash, *chain, manifest,
                        )
                        .await?;
                        if ok {
                            report.warnings.extend(unavailable);
                        }
                        ok
                    }
                    Step::Lost(p) => {
                        projection::apply_problem(&self.pool, &store_id, &location, &at, p).await?
                    }
                };
                if applied {
                    report.applied += 1;
                    at = to;
                    i += 1;
                    continue;
                }
                // Another process applied steps meanwhile: when they are
                // the ones of this batch, go on after them; otherwise start over.
                match self.state().await? {
                    Some(st) if st.store_id == store_id => {
                        match steps[i..].iter().position(|s| {
                            let p = s.position();
                            p.seq == st.last_seq && p.hash == st.last_hash
                        }) {
                            Some(k) => {
                                at = steps[i + k].position();
                                i += k + 1;
                            }
                            None => {
                                conflict = true;
                                break;
                            }
                        }
                    }
                    _ => {
                        conflict = true;
                        break;
                    }
                }
            }
            if conflict {
                continue;
            }
            report.last_seq = at.seq;
            self.show_recoverable(store, report).await?;
            return Ok(());
        }
        Err(CatalogError::Busy(
            "the catalog kept changing under this catch-up (another process rebuilding it?)".into(),
        ))
    }

    /// Checks that the catalog's position is still the store's: `Ok` with
    /// what the replay after it may assume of the record there, or `Err` with
    /// why the catalog must be rebuilt (another journal, cut back or replaced).
    async fn check_position(
        &self,
        store: &Store,
        here: &projection::Position,
    ) -> Result<std::result::Result<Option<[u8; 32]>, String>> {
        if here.seq == 0 {
            return Ok(Ok(Some(GENESIS)));
        }
        let last = here.seq;
        let path = format!(
            "{}{}",
            crate::store::JOURNAL,
            store_format::journal::JournalRecord::file_name(last)
        );
        let bytes = match store.backend().get(&path).await {
            Ok(b) => Some(b),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(CatalogError::from(crate::store::StoreError::from(e))),
        };
        let found = bytes
            .as_ref()
            .filter(|b| !b.is_empty())
            .map(|b| store_format::journal::JournalRecord::hash_of_encoded(b));
        let holds_record = self.event_hashes(last).await?.map(|(_, h)| h);
        match holds_record {
            // The catalog applied an intact record here.
            Some(hash) => {
                if found == Some(hash) {
                    return Ok(Ok(Some(hash)));
                }
                let decoded = bytes
                    .as_ref()
                    .filter(|b| !b.is_empty())
                    .map(|b| store_format::journal::JournalRecord::decode_in(b, store.keys()));
                if let Some(Ok(_)) = decoded {
                    return Ok(Err(format!(
                        "journal record {last} of the store is not the one the catalog applied: \
                         the store's journal was replaced"
                    )));
                }
                if journal::last_seq(store).await? <= last {
                    return Ok(Err(format!(
                        "the store's journal has no record {last} that can be read, which the catalog applied, \
                         and nothing after it: the store was restored from an older copy, or is another store"
                    )));
                }
                // Damaged (or deleted) in the store since the catalog applied
                // it, with records after it: the catalog keeps its copy (the
                // records after it still chain to it) and remembers the damage.
                let (kind, message) = match decoded {
                    Some(Err(e)) => (
                        ProblemKind::Corrupt,
                        format!(
                            "record {last} is damaged in the store ({e}); the catalog still holds the event it recorded"
                        ),
                    ),
                    _ => (
                        ProblemKind::Gap,
                        format!(
                            "record {last} is missing from the store; the catalog still holds the event it recorded"
                        ),
                    ),
                };
                projection::note_problems(
                    &self.pool,
                    &[journal::JournalProblem {
                        seq: last,
                        through: last,
                        kind,
                        message,
                        file_hash: found,
                        repaired_by: None,
                        written_after_ms: None,
                        written_before_ms: None,
                    }],
                )
                .await?;
                Ok(Ok(Some(hash)))
            }
            // The catalog's last position is a problem it recorded: the same
            // damage must still be there.
            None => {
                let known: Option<Option<String>> =
                    sqlx::query_scalar("SELECT file_hash FROM journal_problems WHERE through = ?")
                        .bind(last as i64)
                        .fetch_optional(&self.pool)
                        .await?;
                match known {
                    Some(h) if h == found.as_ref().map(hex32) => {
                        Ok(Ok(None))
                    }
                    Some(_) => Ok(Err(format!(
                        "journal record {last}, which the catalog recorded as damaged or missing, changed in the store"
                    ))),
                    None => Ok(Err(format!(
                        "the catalog lacks its own last journal position ({last})"
                    ))),
                }
            }
        }
    }

    /// While the journal has damage no repair acknowledged, a completed
    /// backup may have lost its completion record: every intact manifest the
    /// catalog does not know is shown as a completed backup, from the
    /// manifest, with a note saying so.
    async fn show_recoverable(&self, store: &Store, report: &mut CatchUpReport) -> Result<()> {
        let damage = self.journal_damage().await?;
        report.journal_damage = damage.iter().map(|d| d.message.clone()).collect();
        let losing: Vec<&JournalDamage> =
            damage.iter().filter(|d| d.kind != "chain_broken").collect();
        if losing.is_empty() {
            return Ok(());
        }
        let known: HashSet<String> =
            sqlx::query_scalar("SELECT manifest FROM backup_history WHERE manifest IS NOT NULL")
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .collect();
        let records = losing
            .iter()
            .map(|d| d.records())
            .collect::<Vec<_>>()
            .join(", ");
        for mid in store.list_manifest_ids().await? {
            if known.contains(&mid.to_hex()) {
                continue;
            }
            let m = match store.read_manifest(&mid).await {
                Ok(m) => m,
                Err(e) if manifest_error_is_fatal(&e) => return Err(e.into()),
                Err(e) => {
                    report
                        .warnings
                        .push(format!("manifest {mid} cannot be read: {e}"));
                    continue;
                }
            };
            let note = format!(
                "recovered from its manifest: the journal record of its completion is lost (journal damaged at {records}); \
                 run `n8n-ark repair journal` to record it again"
            );
            if projection::insert_from_manifest(&self.pool, &mid, &m, &note).await? {
                report.recovered.push(m.backup_id.clone());
            }
        }
        Ok(())
    }

    /// Journal problems the catalog knows of that no repair acknowledged.
    pub async fn journal_damage(&self) -> Result<Vec<JournalDamage>> {
        let rows = sqlx::query(
            "SELECT seq, through, kind, message FROM journal_problems WHERE repaired_by IS NULL ORDER BY seq",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(JournalDamage {
                    seq: r.try_get::<i64, _>("seq")? as u64,
                    through: r.try_get::<i64, _>("through")? as u64,
                    kind: r.try_get("kind")?,
                    message: r.try_get("message")?,
                })
            })
            .collect()
    }

    /// Records the problems a whole replay found (`check`), so that every
    /// command warns of them until they are repaired.
    pub async fn note_journal_problems(&self, problems: &[journal::JournalProblem]) -> Result<()> {
        projection::note_problems(&self.pool, problems).await
    }

    /// `prev` and `hash` of a record the catalog holds.
    async fn event_hashes(&self, seq: u64) -> Result<Option<([u8; 32], [u8; 32])>> {
        let row = sqlx::query("SELECT prev, hash FROM events WHERE seq = ?")
            .bind(seq as i64)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            None => None,
            Some(r) => {
                let prev: String = r.try_get("prev")?;
                let hash: String = r.try_get("hash")?;
                match (unhex32(&prev), unhex32(&hash)) {
                    (Some(p), Some(h)) => Some((p, h)),
                    _ => None,
                }
            }
        })
    }
}

/// Why a catalog is damaged, in SQLite's words (without our path prefix).
fn reason_of(e: &CatalogError) -> String {
    match e {
        CatalogError::Unreadable { reason, .. } => reason.clone(),
        CatalogError::Sql(sqlx::Error::Database(d)) => d.message().to_string(),
        e => e.to_string(),
    }
}

/// Creates an empty catalog file readable by its owner only (its -wal and
/// -shm files take the same permissions), unless there is one.
fn create_private_file(path: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(CatalogError::io(path, e)),
    }
}

/// The device and inode of a file.
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Checks what can be checked of a SQLite file without opening it: that it
/// is one (its header), and that it is not cut short (a whole number of
/// pages, and, with no write-ahead log beside it, as many as its header
/// says). An empty file is a new catalog.
fn check_file(path: &Path) -> std::result::Result<(), String> {
    use std::io::Read;
    let len = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(_) => return Ok(()), // SQLite says what is wrong
    };
    if len == 0 {
        return Ok(());
    }
    let mut header = [0u8; 100];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut header));
    if read.is_err() {
        return Err(format!(
            "cut short: {len} bytes, less than a database header"
        ));
    }
    if &header[..16] != b"SQLite format 3\0" {
        return Err("not a SQLite database (its header is not one)".into());
    }
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65536u64,
        n if n >= 512 && n.is_power_of_two() => n as u64,
        n => {
            return Err(format!(
                "not a SQLite database (page size {n} in its header)"
            ))
        }
    };
    if len % page_size != 0 {
        return Err(format!(
            "cut short: {len} bytes is not a whole number of {page_size}-byte pages"
        ));
    }
    let be32 = |at: usize| u32::from_be_bytes(header[at..at + 4].try_into().unwrap_or_default());
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    // The page count in the header is valid when the change counter matches
    // its "version valid for" field; with a write-ahead log, the log may
    // hold the newest pages (and the header) instead.
    let pages = be32(28) as u64;
    if wal_len == 0 && pages > 0 && be32(24) == be32(92) && len < pages * page_size {
        return Err(format!(
            "cut short: {len} of its {} bytes ({pages} pages)",
            pages * page_size
        ));
    }
    Ok(())
}

/// Moves a damaged catalog file aside, with its -wal and -shm files (the
/// log first: left beside a new file it would be replayed into it), to
/// `<store id>.damaged-<UTC time>.sqlite` in the same folder.
fn set_file_aside(path: &Path, reason: &str) -> Result<SetAside> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("catalog");
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let mut moved_to = dir.join(format!("{stem}.damaged-{stamp}.sqlite"));
    let mut n = 1;
    while moved_to.exists() {
        n += 1;
        moved_to = dir.join(format!("{stem}.damaged-{stamp}-{n}.sqlite"));
    }
    for suffix in ["-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{suffix}", path.display()));
        let to = PathBuf::from(format!("{}{suffix}", moved_to.display()));
        match std::fs::rename(&from, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(CatalogError::io(&from, e)),
        }
    }
    std::fs::rename(path, &moved_to).map_err(|e| CatalogError::io(path, e))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| CatalogError::io(dir, e))?;
    Ok(SetAside {
        path: path.to_path_buf(),
        moved_to,
        reason: reason.to_string(),
    })
}

/// A manifest that cannot be read because the store could not be reached
/// fails the catch-up (the next one reads it); one that is missing or damaged
/// is recorded as such and the catch-up goes on.
fn manifest_error_is_fatal(e: &crate::store::StoreError) -> bool {
    e.is_retryable() || matches!(e, crate::store::StoreError::Backend(_))
}

/// An exclusive lock on `<catalog>.lock` (flock: the data directory is local),
/// held while the catalog is opened; released when the file is dropped.
async fn open_lock(catalog: &Path) -> Result<std::fs::File> {
    let path = PathBuf::from(format!("{}.lock", catalog.display()));
    tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::OpenOptionsExt;
        use std::os::unix::io::AsRawFd;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| CatalogError::io(&path, e))?;
        loop {
            // SAFETY: flock on a descriptor this function owns.
            if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(f);
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(CatalogError::io(&path, e));
            }
        }
    })
    .await
    .map_err(|e| CatalogError::Io {
        path: format!("{}.lock", catalog.display()),
        source: std::io::Error::other(e.to_string()),
    })?
}
