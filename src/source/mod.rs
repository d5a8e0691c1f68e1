//! Where backups read from: PostgreSQL (a snapshot's description and the
//! `pg_dump` stream of the same moment), config files, workflows (canonical
//! JSON), and n8n's public API. Sources know nothing of the store's layout;
//! `backup` puts what they read into a session.
pub mod config_files;
pub mod json;
pub mod n8n_api;
pub mod n8n_key;
pub mod postgres;
pub mod workflow;

/// A source failed. Messages name what failed (a path, a host, a command) and
/// never hold a secret (no password, no API key, no connection URL with its
/// password).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The database could not be reached or refused us.
    #[error("{0}")]
    Connect(String),
    /// A query or the snapshot failed.
    #[error("{0}")]
    Database(String),
    /// `pg_dump` (or `pg_dumpall`) is missing, too old, or failed.
    #[error("{0}")]
    Dump(String),
    /// A config path is unreadable, or a required one is missing.
    #[error("{0}")]
    File(String),
    /// n8n's public API could not be reached or answered an error.
    #[error("{0}")]
    Api(String),
    /// Data that does not have the shape n8n gives it.
    #[error("{0}")]
    Invalid(String),
    /// The Docker engine could not run the command.
    #[error("{0}")]
    Docker(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl SourceError {
    /// Worth trying again later unchanged (a network hiccup, a busy server),
    /// as opposed to a mistake the operator must fix.
    pub fn is_retryable(&self) -> bool {
        match self {
            SourceError::Connect(_) | SourceError::Api(_) | SourceError::Docker(_) => true,
            SourceError::Store(e) => e.is_retryable(),
            _ => false,
        }
    }
}

pub type Result<T, E = SourceError> = std::result::Result<T, E>;
