use crate::store::StoreError;
use thiserror::Error;

/// Errors of the catalog: its SQLite file, the store it projects, and
/// questions it cannot answer (an unknown or ambiguous backup or workflow).
#[derive(Debug, Error)]
pub enum CatalogError {
    #[error("catalog database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("catalog schema migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// No catalog file for this store (offline use needs one).
    #[error("{0}")]
    NoCatalog(String),
    /// A reference that cannot name anything (`latest:bogus`); says what can.
    #[error("{0}")]
    Invalid(String),
    /// No backup or workflow answers to the reference given.
    #[error("{0}")]
    NotFound(String),
    /// Several backups or workflows answer to the reference given.
    #[error("{0}")]
    Ambiguous(String),
    /// The backup exists but has no contents to show (failed, running, forgotten).
    #[error("{0}")]
    NotCompleted(String),
    /// The backup is completed but the catalog could not read its manifest.
    #[error("{0}")]
    ContentsUnavailable(String),
    /// Other processes kept the catalog changing under this one.
    #[error("{0}")]
    Busy(String),
    /// A value in the catalog that does not parse: the file was edited or damaged
    /// (`n8n-ark catalog rebuild` rewrites it from the store).
    #[error("the catalog is damaged ({0}); run `n8n-ark catalog rebuild`")]
    Damaged(String),
}

impl CatalogError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        CatalogError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

pub type Result<T, E = CatalogError> = std::result::Result<T, E>;
