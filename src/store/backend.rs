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

    /// Makes the place the store lives, and its top-level directories `dirs`
    /// (names like `objects/`): `init`'s first step, and the only operation
    /// that may create the location itself. Repeating it changes nothing.
    /// Where there are no directories (object storage), there is nothing to make.
    async fn create_location(&self, dirs: &[&str]) -> BResult<()> {
        let _ = dirs;
        Ok(())
    }

    /// Fails with [`BackendError::Gone`] unless the location is still the one
    /// this backend first used (a local directory that was moved away, or whose
    /// disk was unmounted, is not). A writer never creates the location, or a
    /// directory at its top, outside [`Backend::create_location`]: after the
    /// first use, every write checks this first.
    async fn check_location(&self) -> BResult<()> {
        Ok(())
    }

    /// Removes the temporary files of writes that were interrupted (a crash
    /// between writing a temporary file and renaming it) whose last change is
    /// older than `older_than_ms`; returns how many. Backends whose writes
    /// leave no temporaries (object storage) remove nothing.
    async fn remove_stale_temporaries(&self, older_than_ms: i64) -> BResult<u64> {
        let _ = older_than_ms;
        Ok(0)
    }

    /// Removes the empty directories directly under `prefix` (a directory path
    /// such as `trash/`, itself kept); returns how many. Only for directories that no
    /// one else writes into meanwhile (the collector's trash batches, under its
    /// lock): a writer that finds its directory gone fails, it never recreates
    /// a top-level one.
    async fn remove_empty_dirs(&self, prefix: &str) -> BResult<u64> {
        let _ = prefix;
        Ok(0)
    }

    /// Whether the place can fill up (a disk), so that keeping space in
    /// reserve for the collector makes sense. Object storage does not.
    fn fills_up(&self) -> bool {
        false
    }
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
