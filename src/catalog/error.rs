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
    /// The catalog file cannot be read: not a SQLite database, cut short, or
    /// with a damaged page. Opened with its store, a catalog in this state is
    /// moved aside and made again (see [`super::SetAside`]); without it, there
    /// is nothing to answer from.
    #[error("the catalog {path} is damaged ({reason})")]
    Unreadable { path: String, reason: String },
}

impl CatalogError {
    /// Whether the error says the catalog file itself is damaged: SQLite
    /// finding it is not a database (`SQLITE_NOTADB`) or a malformed page
    /// (`SQLITE_CORRUPT`), a value in it that does not parse, or a file cut
    /// short. The remedy is the same for each: set the file aside and project
    /// the store's journal into a new one.
    pub fn is_damage(&self) -> bool {
        match self {
            CatalogError::Unreadable { .. } | CatalogError::Damaged(_) => true,
            CatalogError::Sql(e) => sqlite_damage(e),
            CatalogError::Migrate(
                sqlx::migrate::MigrateError::Execute(e)
                | sqlx::migrate::MigrateError::ExecuteMigration(e, _),
            ) => sqlite_damage(e),
            _ => false,
        }
    }

    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        CatalogError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

pub type Result<T, E = CatalogError> = std::result::Result<T, E>;

/// SQLite's primary result codes for a damaged database file.
const SQLITE_CORRUPT: i32 = 11;
const SQLITE_NOTADB: i32 = 26;

/// An error of SQLite saying the file is damaged (the extended code's low
/// byte is the primary code).
fn sqlite_damage(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => d
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(|c| matches!(c & 0xff, SQLITE_CORRUPT | SQLITE_NOTADB)),
        _ => false,
    }
}
