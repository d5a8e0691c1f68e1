//! The one error every operation returns: a kind a front end acts on (the
//! CLI's exit status, the API's HTTP status), a message in the operator's
//! terms, and a structured hint.
use serde::Serialize;

/// What kind of failure, for a front end to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request or a setting is wrong (a usage or configuration error):
    /// found before anything changed.
    Invalid,
    /// What the request names does not exist (a backup, a workflow, a store).
    NotFound,
    /// Something else holds what it needs (a lock, a running collector), or
    /// the request conflicts with what is there (a database of that name).
    Conflict,
    /// Refused on purpose until asked otherwise (`--yes`, `--force`), or
    /// not allowed (a wrong passphrase, a missing privilege).
    Refused,
    /// A service it needs did not answer (the store's server, PostgreSQL,
    /// Docker, n8n); `retryable` says whether trying again may help.
    Unavailable,
    /// The store's data is damaged.
    Damaged,
    /// The store's data fails authentication: written without its key.
    Tampered,
    /// Stopped because it was asked to (a signal, a cancelled job).
    Interrupted,
    /// A bug or an unexpected state.
    Internal,
}

/// What an operator can do about it, structured: the CLI renders it as
/// flags and commands, the API as JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Hint {
    /// A setting to set or change (a flag, variable or config key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setting: Option<String>,
    /// A command that fixes or explains it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct OpError {
    pub kind: ErrorKind,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<Hint>,
    /// Trying again later may succeed (a passing network fault, a busy lock).
    pub retryable: bool,
}

pub type OpResult<T> = Result<T, OpError>;

impl OpError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> OpError {
        OpError {
            kind,
            message: message.into(),
            hint: None,
            retryable: false,
        }
    }
    pub fn invalid(message: impl Into<String>) -> OpError {
        OpError::new(ErrorKind::Invalid, message)
    }
    pub fn not_found(message: impl Into<String>) -> OpError {
        OpError::new(ErrorKind::NotFound, message)
    }
    pub fn interrupted(message: impl Into<String>) -> OpError {
        OpError::new(ErrorKind::Interrupted, message)
    }
    pub fn internal(message: impl Into<String>) -> OpError {
        OpError::new(ErrorKind::Internal, message)
    }
    pub fn retryable(mut self, r: bool) -> OpError {
        self.retryable = r;
        self
    }
    pub fn with_command(mut self, command: impl Into<String>) -> OpError {
        self.hint.get_or_insert_with(Hint::default).command = Some(command.into());
        self
    }
    pub fn with_setting(mut self, setting: impl Into<String>) -> OpError {
        self.hint.get_or_insert_with(Hint::default).setting = Some(setting.into());
        self
    }
}

impl From<crate::store::StoreError> for OpError {
    fn from(e: crate::store::StoreError) -> OpError {
        use crate::crypto::CryptoError as C;
        use crate::store::StoreError as S;
        let retryable = e.is_retryable();
        let message = e.to_string();
        let kind = match &e {
            S::Backend(b) if b.is_not_found() => ErrorKind::NotFound,
            S::Backend(crate::store::BackendError::NoSpace { .. }) => ErrorKind::Unavailable,
            S::Backend(_) => ErrorKind::Unavailable,
            S::Format { .. } | S::DamagedObject { .. } | S::DamagedKeys(_) => ErrorKind::Damaged,
            S::TamperedObject { .. } => ErrorKind::Tampered,
            S::NoSuchLocation(_) | S::NotAStore(_) | S::MissingObject { .. } => ErrorKind::NotFound,
            S::AlreadyAStore(_) | S::NotEmpty(_) | S::Locked(_) => ErrorKind::Conflict,
            S::Journal(_) => ErrorKind::Damaged,
            S::Input(_) => ErrorKind::Unavailable,
            S::Invalid(_) => ErrorKind::Invalid,
            S::Interrupted => ErrorKind::Interrupted,
            S::WrongPassphrase(_) => ErrorKind::Refused,
            S::Crypto(
                C::NoPassphrase
                | C::NoNewPassphrase
                | C::EmptyPassphrase
                | C::Mismatch
                | C::PassphraseFile { .. }
                | C::PassphraseFileTooLong { .. },
            ) => ErrorKind::Invalid,
            S::Crypto(_) => ErrorKind::Internal,
            // The store is gone from where it was opened, and the like.
            #[allow(unreachable_patterns)]
            _ => ErrorKind::Internal,
        };
        let mut err = OpError::new(kind, message).retryable(retryable);
        match &e {
            S::NotAStore(_) => err = err.with_command("n8n-ark init"),
            S::Journal(_) => err = err.with_command("n8n-ark check"),
            S::Crypto(C::NoPassphrase) => err = err.with_setting("ARK_PASSWORD_FILE"),
            _ => {}
        }
        err
    }
}

impl From<crate::catalog::CatalogError> for OpError {
    fn from(e: crate::catalog::CatalogError) -> OpError {
        use crate::catalog::CatalogError as C;
        match e {
            C::Store(s) => s.into(),
            C::Invalid(m) => OpError::invalid(m),
            C::NotFound(m) | C::NoCatalog(m) => OpError::not_found(m),
            C::Ambiguous(m) => OpError::invalid(m),
            C::NotCompleted(m) | C::ContentsUnavailable(m) => OpError::not_found(m),
            C::Busy(m) => OpError::new(ErrorKind::Conflict, m).retryable(true),
            e @ (C::Damaged(_) | C::Unreadable { .. }) => {
                OpError::new(ErrorKind::Damaged, e.to_string())
                    .with_command("n8n-ark catalog rebuild")
            }
            e => OpError::internal(e.to_string()),
        }
    }
}

impl From<crate::restore::RestoreError> for OpError {
    fn from(e: crate::restore::RestoreError) -> OpError {
        use crate::restore::RestoreError as R;
        let retryable = e.is_retryable();
        match e {
            R::Invalid(m) => OpError::invalid(m),
            R::NotFound(m) => OpError::not_found(m),
            R::Store(s) => s.into(),
            R::Target { message, retryable } => {
                OpError::new(ErrorKind::Unavailable, message).retryable(retryable)
            }
            R::Unsafe(m) => OpError::new(ErrorKind::Damaged, m),
            R::Refused(m) => OpError::new(ErrorKind::Refused, m),
            R::Interrupted(m) => OpError::interrupted(m),
            e @ R::Source(_) => {
                OpError::new(ErrorKind::Unavailable, e.to_string()).retryable(retryable)
            }
        }
    }
}

impl From<crate::sandbox::SandboxError> for OpError {
    fn from(e: crate::sandbox::SandboxError) -> OpError {
        use crate::sandbox::SandboxError as S;
        match e {
            S::Store(s) => s.into(),
            // No implementation can run here: docker or local, told how.
            S::Unavailable(m) => OpError::new(ErrorKind::Unavailable, m).with_setting("--sandbox"),
            // Every sandbox allowed is in use (or the process stops).
            S::Busy(m) => OpError::new(ErrorKind::Unavailable, m)
                .retryable(true)
                .with_setting("ARK_SANDBOX_MAX"),
            S::Failed(m) => OpError::new(ErrorKind::Unavailable, m),
            S::Teardown(m) => OpError::new(ErrorKind::Internal, m)
                .retryable(true)
                .with_command("n8n-ark sandbox reap"),
        }
    }
}

impl From<crate::backup::BackupError> for OpError {
    /// A backup that failed, recorded (or not) in the store's journal: the
    /// message says which. Refused for its settings before anything was
    /// read, it is an invalid request.
    fn from(e: crate::backup::BackupError) -> OpError {
        let mut message = e.to_string();
        match &e.unrecorded {
            Some(why) => message.push_str(&format!(
                " (the failure could not be recorded in the store either: {why})"
            )),
            None => message.push_str(" (recorded in the store's journal)"),
        }
        let kind = match e.stage {
            "configuration" => ErrorKind::Invalid,
            "interrupted" => ErrorKind::Interrupted,
            "config_files" => ErrorKind::NotFound,
            "connect" | "snapshot" | "dump" | "n8n_api" | "store" | "commit" => {
                ErrorKind::Unavailable
            }
            _ => ErrorKind::Internal,
        };
        OpError::new(kind, message).retryable(e.retryable)
    }
}

impl From<crate::verify::VerifyError> for OpError {
    fn from(e: crate::verify::VerifyError) -> OpError {
        use crate::sandbox::SandboxError as S;
        use crate::verify::VerifyError as V;
        let retryable = e.is_retryable();
        match e {
            V::Invalid(m) => OpError::invalid(m),
            V::Store(s) => s.into(),
            V::Interrupted(m) => OpError::interrupted(m),
            e @ V::Sandbox(S::Unavailable(_)) => {
                OpError::new(ErrorKind::Unavailable, e.to_string())
                    .retryable(retryable)
                    .with_setting("ARK_SANDBOX")
            }
            e => OpError::new(ErrorKind::Unavailable, e.to_string()).retryable(retryable),
        }
    }
}
