//! How the read operations (`list`, `show`, `diff`, `history`, `catalog
//! status`) reach the catalog. A front end that holds the store open (the
//! server) gives it as it is; the CLI gives the store's location and a
//! passphrase source, and the store is opened only when the catalog cannot
//! answer alone:
//!
//! - a catalog that already holds every record of the store's journal
//!   answers without the store's key (nothing to decrypt);
//! - otherwise the store is opened and the catalog catches up first;
//! - a store out of reach leaves the catalog last made for that location to
//!   answer as it is, with a warning, so browsing still works offline.
//!
//! A query that finds the catalog damaged (a page only it reads) moves the
//! catalog aside, makes it again from the store and runs once more.
use super::{Context, Environment, OpError, OpResult, Reporter, Trigger};
use crate::cancel::Cancel;
use crate::catalog::{Catalog, CatalogError};
use crate::crypto::CryptoError;
use crate::sandbox::SandboxManager;
use crate::store::{Backend, Store, StoreError};
use std::path::PathBuf;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Where the store's passphrase comes from when the store must be opened
/// (the CLI: a file, a variable or a prompt; the engine never asks anyone).
pub type PassphraseSource =
    Arc<dyn Fn() -> Result<Zeroizing<String>, CryptoError> + Send + Sync + 'static>;

/// How a read operation reaches the store.
#[derive(Clone)]
pub enum Access {
    /// The store, opened already.
    Open(Store),
    /// A store to open only when the catalog cannot answer without it.
    Location {
        /// The location as the operator gave it.
        location: String,
        backend: Arc<dyn Backend>,
        passphrase: PassphraseSource,
    },
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Access::Open(s) => f.debug_tuple("Open").field(&s.location()).finish(),
            Access::Location { location, .. } => f
                .debug_struct("Location")
                .field("location", location)
                .finish(),
        }
    }
}

/// What a read operation runs in: the [`Context`] of the other operations,
/// with a store that may not be opened yet (see the module's comment).
#[derive(Debug, Clone)]
pub struct ReadContext {
    pub access: Access,
    pub data_dir: PathBuf,
    pub env: Arc<Environment>,
    pub cancel: Cancel,
    pub trigger: Trigger,
    /// The process's sandbox manager, handed to the Context a read makes.
    pub sandbox: Arc<SandboxManager>,
}

impl From<&Context> for ReadContext {
    fn from(ctx: &Context) -> ReadContext {
        ReadContext {
            access: Access::Open(ctx.store.clone()),
            data_dir: ctx.data_dir.clone(),
            env: ctx.env.clone(),
            cancel: ctx.cancel.clone(),
            trigger: ctx.trigger,
            sandbox: ctx.sandbox.clone(),
        }
    }
}

impl ReadContext {
    /// A store at `location` (its `backend`), opened with `passphrase` only
    /// when needed.
    pub fn at(
        location: impl Into<String>,
        backend: Arc<dyn Backend>,
        passphrase: PassphraseSource,
        data_dir: impl Into<PathBuf>,
    ) -> ReadContext {
        ReadContext {
            access: Access::Location {
                location: location.into(),
                backend,
                passphrase,
            },
            data_dir: data_dir.into(),
            env: Arc::new(Environment::empty()),
            cancel: Cancel::default(),
            trigger: Trigger::Manual,
            sandbox: Arc::new(SandboxManager::default()),
        }
    }

    pub fn with_sandbox(mut self, sandbox: Arc<SandboxManager>) -> ReadContext {
        self.sandbox = sandbox;
        self
    }

    pub fn with_env(mut self, env: Arc<Environment>) -> ReadContext {
        self.env = env;
        self
    }

    pub fn with_cancel(mut self, cancel: Cancel) -> ReadContext {
        self.cancel = cancel;
        self
    }

    /// See [`Context::check_cancelled`].
    pub fn check_cancelled(&self, at: &str) -> OpResult<()> {
        match self.cancel.interrupted() {
            Some(why) => Err(OpError::interrupted(format!("{why} {at}"))),
            None => Ok(()),
        }
    }

    /// The context of an operation on `store`.
    pub fn context(&self, store: Store) -> Context {
        Context::new(store, self.data_dir.clone())
            .with_env(self.env.clone())
            .with_cancel(self.cancel.clone())
            .with_trigger(self.trigger)
            .with_sandbox(self.sandbox.clone())
    }

    /// The store, opened (an unencrypted one is said to be so).
    pub async fn open_store(&self, r: &dyn Reporter) -> Result<Store, StoreError> {
        match &self.access {
            Access::Open(s) => Ok(s.clone()),
            Access::Location {
                backend,
                passphrase,
                ..
            } => {
                let store = Store::open(backend.clone(), &**passphrase).await?;
                if !store.is_encrypted() {
                    r.warning(unencrypted(&store.location()));
                }
                Ok(store)
            }
        }
    }

    /// The location as the operator gave it (an opened store's own).
    pub fn location(&self) -> String {
        match &self.access {
            Access::Open(s) => s.location(),
            Access::Location { location, .. } => location.clone(),
        }
    }
}

/// The warning every command on an unencrypted store gives.
pub fn unencrypted(location: &str) -> String {
    format!(
        "the store {location} is NOT encrypted: anyone who can read it can read every backup in it"
    )
}

/// A store that cannot be reached (rather than one that refuses us): the
/// catalog may answer instead.
fn unreachable(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::Backend(_) | StoreError::NoSuchLocation(_) | StoreError::NotAStore(_)
    )
}

/// A catalog open for reading, and the store when it was opened for it.
struct Reading {
    catalog: Catalog,
    /// `None` when the catalog answers without the store's key (it holds the
    /// whole journal) or without the store (out of reach).
    store: Option<Store>,
}

/// The catalog, without the store's key, when it holds every record of the
/// store's journal (nothing to decrypt: see [`Catalog::open_if_current`]).
async fn current_without_key(
    rc: &ReadContext,
    backend: &Arc<dyn Backend>,
    r: &dyn Reporter,
) -> Option<Catalog> {
    let look = Catalog::open_if_current(&rc.data_dir, backend).await.ok()?;
    let catalog = look.catalog?;
    if look.config.encryption == "none" {
        r.warning(unencrypted(&backend.location()));
    }
    // Journal damage the catalog knows of is said here too: nothing new in
    // the journal does not mean nothing is wrong with it.
    if let Ok(damage) = catalog.journal_damage().await {
        super::catalog::report_journal_damage(
            r,
            &damage.iter().map(|d| d.message.clone()).collect::<Vec<_>>(),
            &[],
        );
    }
    Some(catalog)
}

/// The error when the store is out of reach and the catalog that would
/// answer instead is damaged.
fn damaged_offline(
    location: &str,
    store_err: &dyn std::fmt::Display,
    path: &str,
    reason: &str,
) -> OpError {
    OpError::new(
        super::ErrorKind::Damaged,
        format!(
            "the store {location} cannot be opened ({store_err}), and no local catalog can answer instead: \
             {path} is damaged ({reason}); nothing was changed: once the store can be reached, \
             `n8n-ark catalog rebuild` (or any command that reads the catalog) moves the damaged file aside \
             and makes the catalog again from the store"
        ),
    )
    .with_command("n8n-ark catalog rebuild")
}

/// The opened store's catalog, caught up (a failed catch-up is a warning:
/// the catalog answers from what it holds).
async fn caught_up_reading(rc: &ReadContext, store: Store, r: &dyn Reporter) -> OpResult<Reading> {
    let (catalog, report) = super::catalog::open(&rc.context(store.clone()), r).await?;
    match report {
        Ok(c) => super::catalog::report_catch_up(r, &c),
        Err(e) => r.warning(format!(
            "the catalog could not catch up with the store ({e}); answering from what it holds"
        )),
    }
    Ok(Reading {
        catalog,
        store: Some(store),
    })
}

async fn open_reading(rc: &ReadContext, r: &dyn Reporter) -> OpResult<Reading> {
    let backend = match &rc.access {
        Access::Open(store) => return caught_up_reading(rc, store.clone(), r).await,
        Access::Location { backend, .. } => backend,
    };
    if let Some(catalog) = current_without_key(rc, backend, r).await {
        return Ok(Reading {
            catalog,
            store: None,
        });
    }
    let e = match rc.open_store(r).await {
        Ok(store) => return caught_up_reading(rc, store, r).await,
        Err(e) if unreachable(&e) => e,
        Err(e) => return Err(e.into()),
    };
    // The location as the store would report it.
    let reported = backend.location();
    let found = match Catalog::find_offline(&rc.data_dir, &reported).await {
        Ok(f) => f,
        Err(CatalogError::Unreadable { path, reason }) => {
            return Err(damaged_offline(&reported, &e, &path, &reason))
        }
        Err(e) => return Err(e.into()),
    };
    let Some(catalog) = found else {
        return Err(e.into());
    };
    let state = catalog.state().await?;
    r.warning(format!(
        "the store cannot be opened ({e}); answering from the local catalog{}",
        state
            .map(|s| format!(
                " as of {} UTC (journal record {})",
                fmt_time(s.updated_ms),
                s.last_seq
            ))
            .unwrap_or_default()
    ));
    Ok(Reading {
        catalog,
        store: None,
    })
}

fn fmt_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "-".into())
}

/// The catalog for reading, opened as the read operations open it (see the
/// module's comment); the caller closes it.
pub async fn open_catalog(rc: &ReadContext, r: &dyn Reporter) -> OpResult<Catalog> {
    Ok(open_reading(rc, r).await?.catalog)
}

/// Runs a read operation's `query` on the catalog (opened as
/// [`open_catalog`] does). When the query finds the catalog damaged, the
/// catalog is moved aside, made again from the store, and the query runs
/// again.
pub async fn read_catalog<T>(
    rc: &ReadContext,
    r: &dyn Reporter,
    query: impl AsyncFn(&Catalog) -> Result<T, CatalogError>,
) -> OpResult<T> {
    rc.check_cancelled("before the catalog was read")?;
    let Reading { catalog, store } = open_reading(rc, r).await?;
    let err = match query(&catalog).await {
        Ok(v) => {
            catalog.close().await;
            return Ok(v);
        }
        Err(e) if e.is_damage() => e,
        Err(e) => {
            catalog.close().await;
            return Err(e.into());
        }
    };
    let store = match store {
        Some(s) => s,
        None => match rc.open_store(r).await {
            Ok(s) => s,
            Err(e) if unreachable(&e) => {
                let path = catalog.path().display().to_string();
                catalog.close().await;
                return Err(damaged_offline(&rc.location(), &e, &path, &err.to_string()));
            }
            Err(e) => {
                catalog.close().await;
                return Err(e.into());
            }
        },
    };
    let catalog = catalog.replace_damaged(&rc.data_dir, &store, &err).await?;
    let report = catalog.catch_up(&store).await;
    super::catalog::report_set_aside(r, &catalog, &report);
    if let Err(e) = report {
        catalog.close().await;
        return Err(e.into());
    }
    let v = query(&catalog).await;
    catalog.close().await;
    Ok(v?)
}
