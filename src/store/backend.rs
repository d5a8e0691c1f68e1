//! The storage boundary: a small set of operations every place that can hold a
//! store must offer. Paths are relative, `/`-separated (`objects/ab/ab12…`).
use super::error::BackendError;
use async_trait::async_trait;
use bytes::Bytes;
use std::ops::Range;

pub type BResult<T> = std::result::Result<T, BackendError>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative path, `/`-separated.
    pub path: String,
    pub size: u64,
    /// Last modification, milliseconds since the epoch, by the backend's clock.
    pub modified_ms: i64,
}

#[async_trait]
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// A human-readable location, for messages.
    fn location(&self) -> String;

    /// Publishes `data` under `path` if and only if nothing is there yet,
    /// atomically: a concurrent or later reader sees all of `data` or nothing.
    /// Fails with `AlreadyExists` otherwise. Durable on return.
    async fn create_exclusive(&self, path: &str, data: Bytes) -> BResult<()>;

    /// Writes `data` under `path`, replacing what is there, atomically: a reader
    /// sees the old or the new content, never a mix. The content is durable on
    /// return; the name is durable after the next [`Backend::sync`].
    async fn put(&self, path: &str, data: Bytes) -> BResult<()>;

    async fn get(&self, path: &str) -> BResult<Bytes>;

    async fn get_range(&self, path: &str, range: Range<u64>) -> BResult<Bytes>;

    /// Every entry whose path starts with `prefix` (recursively), in no particular order.
    async fn list(&self, prefix: &str) -> BResult<Vec<Entry>>;

    async fn stat(&self, path: &str) -> BResult<Entry>;

    /// Removes `path`; removing something absent is not an error.
    async fn delete(&self, path: &str) -> BResult<()>;

    /// Moves `from` to `to`, replacing `to`.
    async fn rename(&self, from: &str, to: &str) -> BResult<()>;

    /// Makes the names of all completed `put`s and `rename`s durable.
    async fn sync(&self) -> BResult<()>;
}

/// `create_exclusive`, treating "already exists with exactly our bytes" as
/// success: a retried request whose first attempt did succeed (its answer was
/// lost) must not be mistaken for losing the race.
pub async fn create_exclusive_once(backend: &dyn Backend, path: &str, data: Bytes) -> BResult<()> {
    match backend.create_exclusive(path, data.clone()).await {
        Err(BackendError::AlreadyExists { path: p }) => match backend.get(path).await {
            Ok(existing) if existing == data => Ok(()),
            _ => Err(BackendError::AlreadyExists { path: p }),
        },
        other => other,
    }
}
