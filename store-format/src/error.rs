use thiserror::Error;

/// Everything that can be wrong with bytes read from a store.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FormatError {
    #[error("truncated: need {need} bytes, have {have}")]
    Truncated { need: usize, have: usize },
    #[error("bad magic: expected {expected:?}, found {found:02x?}")]
    BadMagic {
        expected: &'static str,
        found: Vec<u8>,
    },
    #[error("{what} version {found} is newer than this n8n-ark understands (up to {supported}); upgrade n8n-ark to read it")]
    UnsupportedVersion {
        what: &'static str,
        found: u32,
        supported: u32,
    },
    #[error("damaged: its {what} reads {found}, which this n8n-ark does not know, and an unencrypted object has no checksum that could show a newer writer made it")]
    DamagedHeader { what: &'static str, found: u32 },
    #[error("unknown {what} {value}")]
    UnknownValue { what: &'static str, value: u32 },
    #[error("reserved flags set: {0:#04x} (written by a newer or different implementation)")]
    ReservedFlags(u8),
    #[error("checksum mismatch: the bytes were damaged or truncated")]
    ChecksumMismatch,
    #[error("authentication failed: the bytes were not written with this store's key for this place (tampered with, swapped with another file, replayed, or a wrong key)")]
    AuthenticationFailed,
    #[error("content hash mismatch: expected {expected}, computed {computed}")]
    HashMismatch { expected: String, computed: String },
    #[error("length mismatch: header says {declared} bytes, found {actual}")]
    LengthMismatch { declared: u64, actual: u64 },
    #[error("declared size {declared} exceeds the limit of {limit} bytes")]
    TooLarge { declared: u64, limit: u64 },
    #[error("decompression failed: {0}")]
    Decompress(String),
    #[error("invalid encoding: {0}")]
    Encoding(String),
    #[error("invalid value: {0}")]
    Invalid(String),
}

impl FormatError {
    /// Format errors describe bytes at rest: reading them again gives the same answer.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

pub type Result<T> = std::result::Result<T, FormatError>;
