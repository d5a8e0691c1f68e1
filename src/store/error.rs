use store_format::FormatError;
use thiserror::Error;

/// Errors of the storage backends: what went wrong talking to the place where
/// the store lives.
#[derive(Debug, Error)]
pub enum BackendError {
    #[error("{path}: not found")]
    NotFound { path: String },
    #[error("{path}: already exists")]
    AlreadyExists { path: String },
    #[error("{path}: permission denied (is the store read-only, or owned by another user?)")]
    PermissionDenied { path: String },
    #[error("{path}: no space left on the device holding the store")]
    NoSpace { path: String },
    #[error("the store at {location} is gone: {detail}. It was moved, deleted or unmounted while this command ran; \
             nothing was written in its place. Put it back (or mount its disk again) and run the command again")]
    Gone { location: String, detail: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("object storage {op} {path}: {message}")]
    Remote {
        op: &'static str,
        path: String,
        message: String,
        retryable: bool,
    },
}

impl BackendError {
    pub fn io(path: impl Into<String>, e: std::io::Error) -> Self {
        let path = path.into();
        match e.kind() {
            std::io::ErrorKind::NotFound => BackendError::NotFound { path },
            std::io::ErrorKind::AlreadyExists => BackendError::AlreadyExists { path },
            std::io::ErrorKind::PermissionDenied => BackendError::PermissionDenied { path },
            _ if e.raw_os_error() == Some(libc::EROFS) => BackendError::PermissionDenied { path },
            _ if e.raw_os_error() == Some(libc::ENOSPC)
                || e.raw_os_error() == Some(libc::EDQUOT) =>
            {
                BackendError::NoSpace { path }
            }
            _ => BackendError::Io { path, source: e },
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, BackendError::NotFound { .. })
    }

    /// Worth trying again: a passing network or server fault, or an interrupted call.
    pub fn is_retryable(&self) -> bool {
        match self {
            BackendError::Remote { retryable, .. } => *retryable,
            BackendError::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::WouldBlock
            ),
            _ => false,
        }
    }
}

/// Errors of the store engine: the store as a whole.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("{what}: {source}")]
    Format { what: String, source: FormatError },
    #[error("{0} does not exist")]
    NoSuchLocation(String),
    #[error("{0} is not an n8n-ark store (it has no config file); create one with `n8n-ark init`")]
    NotAStore(String),
    #[error("{0} is already an n8n-ark store")]
    AlreadyAStore(String),
    #[error("{0} is not empty; `init` only creates a store in an empty or new directory")]
    NotEmpty(String),
    #[error("object {id} is missing from the store")]
    MissingObject { id: String },
    #[error("object {id} is damaged: {source}")]
    DamagedObject { id: String, source: FormatError },
    #[error("object {id} failed authentication: it was not written with this store's key for this id (tampered with, swapped with another object, or planted)")]
    TamperedObject { id: String },
    #[error("journal: {0}")]
    Journal(String),
    #[error("locked: {0}")]
    Locked(String),
    #[error("reading the input failed: {0}")]
    Input(std::io::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("interrupted")]
    Interrupted,
    #[error("wrong passphrase: {0}")]
    WrongPassphrase(String),
    #[error("{0}")]
    DamagedKeys(String),
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
}

impl StoreError {
    pub fn format(what: impl Into<String>, source: FormatError) -> Self {
        StoreError::Format {
            what: what.into(),
            source,
        }
    }
    /// An object that did not decode: tampering when authentication failed, damage otherwise.
    pub fn bad_object(id: impl Into<String>, source: FormatError) -> Self {
        match source {
            FormatError::AuthenticationFailed => StoreError::TamperedObject { id: id.into() },
            source => StoreError::DamagedObject {
                id: id.into(),
                source,
            },
        }
    }
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Backend(b) => b.is_retryable(),
            StoreError::Locked(_) => true,
            StoreError::Input(e) => e.kind() == std::io::ErrorKind::Interrupted,
            _ => false,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
