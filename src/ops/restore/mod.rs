//! Restores as operations: `restore database`, `restore config`, `restore
//! workflow` and `restore full` (plan, then execute). Each resolves its
//! backup through the catalog (caught up first), takes the safety backup its
//! changes need, appends its own `RestorePerformed` or `RestoreFailed`
//! event, and brings the catalog up to date after it. The engine of each
//! kind of restore lives in [`crate::restore`]; what is here decides, in the
//! operator's terms, what happened.
pub mod config;
pub mod database;
pub mod full;
pub mod workflow;

use super::{catalog, Context, ErrorKind, OpError, OpResult, Reporter};
use crate::restore::{choose_backup, ChosenBackup};
use crate::source::postgres::PgTarget;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// How a restore that ran to its end went (the `result` of its event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RestoreResult {
    /// Every item was restored (or skipped on purpose).
    Ok,
    /// Some items failed; the others were restored.
    Partial,
}

impl RestoreResult {
    fn of_event(result: &str) -> RestoreResult {
        if result == "partial" {
            RestoreResult::Partial
        } else {
            RestoreResult::Ok
        }
    }
}

/// A PostgreSQL server of a request: its URL (never with a password) and
/// the password, given apart (never shown by `Debug`, never serialized).
#[derive(Clone, Default, Deserialize)]
pub struct Server {
    /// `postgres://user@host:port/db`.
    pub url: String,
    #[serde(default)]
    pub password: Option<String>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("url", &self.url)
            .field("password", &self.password.as_ref().map(|_| "…"))
            .finish()
    }
}

impl Server {
    pub fn new(url: impl Into<String>, password: Option<String>) -> Server {
        Server {
            url: url.into(),
            password,
        }
    }

    /// The target it names; `flag` says which setting gave it, for an error.
    pub fn target(&self, flag: &str) -> OpResult<PgTarget> {
        PgTarget::parse(&self.url, self.password.clone().map(Zeroizing::new))
            .map_err(|e| OpError::invalid(format!("{flag}: {e}")))
    }
}

/// The backup a restore reads: `reference` (`latest`, `latest:KIND`, an id
/// or a unique prefix) resolved through the catalog, caught up first, and
/// its manifest read from the store.
pub(crate) async fn chosen(
    ctx: &Context,
    r: &dyn Reporter,
    reference: &str,
) -> OpResult<ChosenBackup> {
    let catalog = catalog::caught_up(ctx, r).await?;
    let chosen = choose_backup(&catalog, &ctx.store, reference).await;
    catalog.close().await;
    Ok(chosen?)
}

/// A restore's error with `message` instead of the engine's own (its kind
/// and retryability kept); interrupted when the operation was asked to stop.
pub(crate) fn failure(ctx: &Context, e: OpError, message: String) -> OpError {
    let mut e = OpError { message, ..e };
    if ctx.cancel.is_cancelled() && e.kind != ErrorKind::Invalid {
        e.kind = ErrorKind::Interrupted;
        e.retryable = false;
    }
    e
}

/// A secret of a request (a key): never shown by `Debug`.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}
