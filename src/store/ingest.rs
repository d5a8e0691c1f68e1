//! A backup session: streams and blobs in, objects and one manifest out.
//!
//! The pipeline for a stream, every stage overlapped with the others:
//! 1. read and cut (FastCDC): the input is read ahead into large buffers while
//!    the current one is cut, in two halves at once, on the blocking pool;
//!    chunks are slices of their buffer, never copied ([`StreamChunker`]);
//! 2. hash (BLAKE3), dedup lookup and compress (zstd) on one worker thread per
//!    core ([`Workers`]: each keeps its zstd context hot in its core's cache),
//!    with up to `in_flight` chunks queued or in work, results taken in input
//!    order;
//! 3. the in-order step records each chunk's reference and claims new ids in
//!    the dedup index, then hands each new object to
//! 4. the writers: up to `WRITE_TASKS` puts at once (each one temp file, fsync,
//!    rename), holding at most `WRITE_BYTES` of encoded objects, so a slow fsync
//!    never stalls the compressors.
//!
//! Memory is bounded by the work in flight, never by the input's size. The
//! stream's item is complete only when every one of its writes has succeeded.
use super::chunker::StreamChunker;
use super::error::{Result, StoreError};
use super::index::DedupIndex;
use super::lock::HeldLock;
use super::shared::Prepared;
use super::{host_name, manifest_path, now_ms, object_path, Store};
use bytes::Bytes;
use futures::StreamExt;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use store_format::event::{BackupCompleted, BackupCounts};
use store_format::object::{self, ObjectKind};
use store_format::{ChunkRef, Contents, Event, Item, ItemKind, Manifest, ObjectId};
use tokio::io::AsyncRead;

#[derive(Debug, Default)]
pub struct Counters {
    pub logical_bytes: AtomicU64,
    pub new_bytes: AtomicU64,
    pub new_objects: AtomicU64,
    pub reused_chunks: AtomicU64,
    pub chunks: AtomicU64,
}

/// What a completed backup added and reused.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct BackupSummary {
    pub backup_id: String,
    pub manifest: String,
    pub kind: String,
    pub logical_bytes: u64,
    pub new_bytes: u64,
    pub new_objects: u64,
    pub objects: u64,
    pub reused_objects: u64,
    pub chunks: u64,
    pub duration_ms: u64,
    pub stored_bytes: u64,
    pub counts: BackupCounts,
    pub journal_seq: u64,
}

/// What a manifest holds, counted for the `BackupCompleted` event.
pub fn counts_of(m: &Manifest) -> BackupCounts {
    let c = m.contents.clone().unwrap_or_default();
    BackupCounts {
        databases: c.databases.len() as u64,
        tables: c.databases.iter().map(|d| d.tables.len() as u64).sum(),
        workflows: c.workflows.len() as u64,
        credentials: c.credentials.len() as u64,
        config_files: c
            .config_files
            .iter()
            .filter(|f| f.file_type != store_format::contents::FileType::Missing)
            .count() as u64,
        items: m.items.len() as u64,
    }
}

pub struct BackupSession {
    store: Store,
    lock: Option<HeldLock>,
    index: Arc<DedupIndex>,
    /// Its use of the listing it shares with other sessions of this process.
    listing: Option<super::shared::Membership>,
    kind: String,
    backup_id: String,
    started_ms: i64,
    started: std::time::Instant,
    items: Vec<Item>,
    counters: Arc<Counters>,
    in_flight: usize,
}

pub fn new_backup_id() -> String {
    let now = chrono::Utc::now();
    format!(
        "{}-{:08x}",
        now.format("%Y%m%dT%H%M%SZ"),
        rand::random::<u32>()
    )
}

impl BackupSession {
    /// Takes a session lock, then loads the dedup index (in this order: see the
    /// GC protocol in SPEC.md).
    pub async fn begin(store: &Store, kind: &str) -> Result<BackupSession> {
        Self::begin_as(store, kind, new_backup_id()).await
    }

    /// As [`Self::begin`], under a backup id the caller chose (see [`new_backup_id`]).
    pub async fn begin_as(store: &Store, kind: &str, backup_id: String) -> Result<BackupSession> {
        let lock = HeldLock::session(store, &backup_id).await?;
        // After the lock: on the listing a running session of this process
        // uses, else a new one (see super::shared).
        let (index, listing) = store.shared_index().await?;
        let index = Arc::new(index);
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Ok(BackupSession {
            store: store.clone(),
            lock: Some(lock),
            index,
            listing: Some(listing),
            kind: kind.to_string(),
            backup_id,
            started_ms: now_ms(),
            started: std::time::Instant::now(),
            items: Vec::new(),
            counters: Arc::default(),
            in_flight: cores * 2 + 2,
        })
    }

    pub fn backup_id(&self) -> &str {
        &self.backup_id
    }
    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }
    pub fn known_objects(&self) -> usize {
        self.index.len()
    }
    /// Whether this session's dedup index starts from the same listing of
    /// the store as `other`'s (one copy in memory: see [`super::shared`]).
    pub fn shares_index_with(&self, other: &BackupSession) -> bool {
        self.index.shares_listing_with(&other.index)
    }

    fn check_name(&self, name: &str) -> Result<()> {
        if name.is_empty() || self.items.iter().any(|i| i.name == name) {
            return Err(StoreError::Invalid(format!(
                "item name {name:?} is empty or already used in this backup"
            )));
        }
        Ok(())
    }

    /// Cuts, deduplicates and stores a stream (a database dump on a pipe).
    pub async fn add_stream<R: AsyncRead + Unpin + Send>(
        &mut self,
        name: &str,
        reader: R,
    ) -> Result<&Item> {
        self.check_name(name)?;
        let chunker = self.store.chunker();
        let (source, reading) = StreamChunker::new(reader, chunker);
        let stream = futures::stream::unfold(source, |mut src| async move {
            match src.next_chunk().await {
                Ok(Some(c)) => Some((Ok(c), src)),
                Ok(None) => None,
                Err(e) => Some((Err(e), src)),
            }
        });
        let pool = self.store.chunk_pool();
        let codec = self.store.object_codec().clone();
        let prepared = stream
            .map(|res| {
                let job = res
                    .map_err(StoreError::Input)
                    .map(|data| pool.prepare(data, &self.index, &codec));
                async move { job?.await }
            })
            .buffered(self.in_flight);
        let mut writer = Writer::new(&self.store, &self.index, &self.counters);
        let consuming = async {
            futures::pin_mut!(prepared);
            let mut chunks = Vec::new();
            let mut size = 0u64;
            while let Some(p) = prepared.next().await {
                let Prepared { id, len, encoded } = p?;
                size += len as u64;
                self.counters
                    .logical_bytes
                    .fetch_add(len as u64, Ordering::Relaxed);
                self.counters.chunks.fetch_add(1, Ordering::Relaxed);
                // Claimed here, in input order, by this task alone: the index
                // never holds an id whose write was not started.
                if self.index.insert(id) {
                    let bytes = match encoded {
                        Some(b) => b,
                        // Known when it was hashed, forgotten since: an earlier
                        // write of it failed, and so does this stream.
                        None => {
                            self.index.remove(&id);
                            writer.finish().await?;
                            return Err(StoreError::Invalid(format!(
                                "object {id} could not be written"
                            )));
                        }
                    };
                    writer.write(id, bytes).await?;
                } else {
                    self.counters.reused_chunks.fetch_add(1, Ordering::Relaxed);
                }
                chunks.push(ChunkRef { id, len });
            }
            writer.finish().await?;
            Ok((chunks, size))
        };
        // The reader reads ahead while the rest works; it ends at the end of
        // the input (or on an error, which reaches the chunker), and is
        // dropped if the consumer ends first (on a failure).
        let res = {
            futures::pin_mut!(reading, consuming);
            match futures::future::select(reading, consuming).await {
                futures::future::Either::Left(((), consuming)) => consuming.await,
                futures::future::Either::Right((res, _reading)) => res,
            }
        };
        match res {
            Ok((chunks, size)) => {
                self.items.push(Item {
                    name: name.to_string(),
                    kind: ItemKind::Stream,
                    size,
                    chunks,
                });
                Ok(self.items.last().unwrap())
            }
            Err(e) => {
                // Leave no write of ours running behind the caller's back.
                writer.drain().await;
                Err(e)
            }
        }
    }

    /// Stores a small thing whole, as one object (a workflow's JSON).
    pub async fn add_blob(&mut self, name: &str, data: Vec<u8>) -> Result<&Item> {
        self.check_name(name)?;
        let size = data.len() as u64;
        let chunk = self.blob_writer().write(data).await.map_err(|e| match e {
            StoreError::Invalid(m) => {
                StoreError::Invalid(format!("{name}: {m}; store it as a stream"))
            }
            other => other,
        })?;
        self.add_blob_item(name, size, chunk)?;
        Ok(self.items.last().unwrap())
    }

    /// A handle that stores blobs while this session is busy with a stream
    /// (workflows read while their database's dump streams in). Name them
    /// with [`Self::add_blob_item`].
    pub fn blob_writer(&self) -> BlobWriter {
        BlobWriter {
            store: self.store.clone(),
            index: self.index.clone(),
            counters: self.counters.clone(),
        }
    }

    /// Adds an item for a blob stored through a [`BlobWriter`].
    pub fn add_blob_item(&mut self, name: &str, size: u64, chunk: Option<ChunkRef>) -> Result<()> {
        self.check_name(name)?;
        let chunks: Vec<ChunkRef> = chunk.into_iter().collect();
        if chunks.iter().map(|c| c.len as u64).sum::<u64>() != size {
            return Err(StoreError::Invalid(format!(
                "{name}: size {size} differs from its chunk"
            )));
        }
        self.items.push(Item {
            name: name.to_string(),
            kind: ItemKind::Blob,
            size,
            chunks,
        });
        Ok(())
    }

    /// Makes everything durable, writes the manifest, then the journal event.
    pub async fn commit(self, labels: BTreeMap<String, String>) -> Result<BackupSummary> {
        self.commit_with(labels, None).await
    }

    /// The items added so far.
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// Commits with a description of the contents (see `store_format::contents`).
    pub async fn commit_with(
        mut self,
        labels: BTreeMap<String, String>,
        contents: Option<Contents>,
    ) -> Result<BackupSummary> {
        let r = self.commit_inner(labels, contents).await;
        // Its manifest is durable (or it never will be): its lock goes (or
        // stays with the listing other sessions still use: see super::shared).
        let released = self.end().await;
        let summary = r?;
        released?;
        Ok(summary)
    }

    /// Releases the session's lock, or hands it to the listing it created
    /// while other sessions still use that listing.
    async fn end(&mut self) -> Result<()> {
        let lock = self.lock.take();
        match self.listing.take() {
            Some(m) => m.leave(lock).await,
            None => match lock {
                Some(l) => l.release().await,
                None => Ok(()),
            },
        }
    }

    async fn commit_inner(
        &mut self,
        labels: BTreeMap<String, String>,
        contents: Option<Contents>,
    ) -> Result<BackupSummary> {
        let backend = self.store.backend().clone();
        backend.sync().await?;
        let lock = self
            .lock
            .as_ref()
            .expect("a session holds its lock until commit");
        let referenced: HashSet<ObjectId> = self
            .items
            .iter()
            .flat_map(|i| i.chunks.iter().map(|c| c.id))
            .collect();
        if !lock.was_always_live() || !self.index.listing_always_live() {
            // Our lock (or the lock of the listing we reuse) may have looked
            // stale to a collector, which may then have deleted objects this
            // backup reuses: committing would be a lie.
            return Err(StoreError::Locked(format!(
                "backup {} stalled longer than its lock's lifetime (heartbeats fell behind), so a concurrent gc \
                 may have collected objects it reuses; nothing was committed: run the backup again",
                self.backup_id
            )));
        }
        let manifest = Manifest {
            manifest_version: store_format::manifest::MANIFEST_VERSION,
            backup_id: self.backup_id.clone(),
            kind: self.kind.clone(),
            host: host_name(),
            started_ms: self.started_ms,
            finished_ms: now_ms(),
            items: std::mem::take(&mut self.items),
            labels,
            contents,
        };
        manifest.validate().map_err(|e| {
            StoreError::Invalid(format!("the manifest of this backup is inconsistent: {e}"))
        })?;
        // Still the store this session opened? A store moved away or
        // unmounted meanwhile must not receive a manifest (nor, below, the
        // event that makes it a completed backup) at its old name.
        self.store.check_still_here().await?;
        let plain = manifest.encode_plaintext();
        let (mid, bytes) = self.store.encode_object(ObjectKind::Manifest, &plain);
        backend
            .put(&manifest_path(&mid), Bytes::from(bytes))
            .await?;
        backend.sync().await?;
        self.store.check_still_here().await?;
        let c = &self.counters;
        let chunks = c.chunks.load(Ordering::Relaxed);
        let new_objects = c.new_objects.load(Ordering::Relaxed);
        let ev = BackupCompleted {
            backup_id: self.backup_id.clone(),
            kind: self.kind.clone(),
            manifest: mid,
            logical_bytes: manifest.logical_size(),
            new_bytes: c.new_bytes.load(Ordering::Relaxed),
            new_objects,
            objects: referenced.len() as u64,
            reused_objects: (referenced.len() as u64).saturating_sub(new_objects),
            duration_ms: self.started.elapsed().as_millis() as u64,
            stored_bytes: referenced
                .iter()
                .map(|id| self.index.size_of(id).unwrap_or(0))
                .sum(),
            counts: counts_of(&manifest),
            recovered: None,
        };
        let seq = super::journal::append(&self.store, Event::BackupCompleted(ev.clone())).await?;
        Ok(BackupSummary {
            backup_id: ev.backup_id,
            manifest: mid.to_hex(),
            kind: ev.kind,
            logical_bytes: ev.logical_bytes,
            new_bytes: ev.new_bytes,
            new_objects: ev.new_objects,
            objects: ev.objects,
            reused_objects: ev.reused_objects,
            chunks,
            duration_ms: ev.duration_ms,
            stored_bytes: ev.stored_bytes,
            counts: ev.counts,
            journal_seq: seq,
        })
    }

    /// Gives up: releases the lock. Objects already written stay until a GC
    /// finds nothing references them.
    pub async fn abort(mut self) {
        let _ = self.end().await;
    }
}

impl Drop for BackupSession {
    fn drop(&mut self) {
        // Dropped without commit or abort (an error path, a cancelled
        // future): the locks go in the background, or stay with the listing.
        if let Some(m) = self.listing.take() {
            m.leave_now(self.lock.take());
        }
    }
}

/// Stores blobs of a session from another task (see [`BackupSession::blob_writer`]).
#[derive(Clone)]
pub struct BlobWriter {
    store: Store,
    index: Arc<DedupIndex>,
    counters: Arc<Counters>,
}

impl BlobWriter {
    /// Stores `data` whole as one object (none for empty data).
    pub async fn write(&self, data: Vec<u8>) -> Result<Option<ChunkRef>> {
        if data.is_empty() {
            return Ok(None);
        }
        if data.len() as u64 > store_format::object::MAX_PLAINTEXT {
            return Err(StoreError::Invalid(format!(
                "a blob of {} bytes is larger than an object may be",
                data.len()
            )));
        }
        Ok(Some(
            store_chunk(
                &self.store,
                &self.index,
                &self.counters,
                ObjectKind::Blob,
                data,
            )
            .await?,
        ))
    }
}

/// Writes at once, per stream: enough to keep a disk (or an object store) busy
/// while fsyncs wait, few enough not to thrash it.
const WRITE_TASKS: usize = 8;
/// Encoded bytes held by the writers at most (one object may exceed it alone).
const WRITE_BYTES: usize = 64 << 20;

/// Exactly [`object::encode_with_id`] for a chunk (the same bytes), without its
/// per-call costs: it compresses with this thread's zstd context (creating one
/// allocates and clears about a MiB of tables) straight into the object buffer
/// after the header (no intermediate buffer, no copy).
pub(crate) fn encode_chunk(codec: object::Codec, plaintext: &[u8]) -> Vec<u8> {
    use std::cell::RefCell;
    thread_local! {
        static ZSTD: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
    }
    let object::Codec::Zstd(level) = codec else {
        return object::encode_with_id(ObjectKind::Chunk, codec, plaintext);
    };
    let mut out =
        Vec::with_capacity(object::HEADER_LEN + zstd::zstd_safe::compress_bound(plaintext.len()));
    out.extend_from_slice(object::MAGIC);
    out.push(object::ENVELOPE_VERSION);
    out.push(ObjectKind::Chunk as u8);
    out.push(1); // codec: zstd
    out.push(0); // flags
    out.extend_from_slice(&(plaintext.len() as u64).to_le_bytes());
    debug_assert_eq!(out.len(), object::HEADER_LEN);
    let shrunk = ZSTD.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.as_ref().map(|(l, _)| *l) != Some(level) {
            *cell = chunk_compressor(level).map(|c| (level, c));
        }
        let Some((_, zstd)) = cell.as_mut() else {
            return false;
        };
        let mut dst = std::io::Cursor::new(&mut out);
        dst.set_position(object::HEADER_LEN as u64);
        // As encode_with_id: a payload that does not shrink is stored as it is.
        matches!(zstd.compress_to_buffer(plaintext, &mut dst), Ok(n) if n < plaintext.len())
    });
    if !shrunk {
        return object::encode_with_id(ObjectKind::Chunk, object::Codec::None, plaintext);
    }
    out.shrink_to_fit();
    out
}

/// As [`ObjectCodec::encode`] for a chunk of an encrypted store (the same
/// layout), compressing with this thread's zstd context straight into the
/// object buffer and encrypting it in place: no intermediate copies.
pub(crate) fn seal_chunk(
    codec: object::Codec,
    keys: &store_format::StoreKeys,
    id: &ObjectId,
    plaintext: &[u8],
) -> Vec<u8> {
    let nonce = crate::crypto::random_nonce();
    if let object::Codec::Zstd(level) = codec {
        let bound = zstd::zstd_safe::compress_bound(plaintext.len());
        let mut buf = object::begin_sealed(ObjectKind::Chunk, 1, plaintext.len(), bound, &nonce);
        let start = buf.len();
        let shrunk = with_zstd(level, |z| {
            let mut dst = std::io::Cursor::new(&mut buf);
            dst.set_position(start as u64);
            matches!(z.compress_to_buffer(plaintext, &mut dst), Ok(n) if n < plaintext.len())
        })
        .unwrap_or(false);
        if shrunk {
            return object::finish_sealed(buf, keys, id);
        }
    }
    // Stored as it is (no compression, or a payload that does not shrink).
    let mut buf = object::begin_sealed(
        ObjectKind::Chunk,
        0,
        plaintext.len(),
        plaintext.len(),
        &nonce,
    );
    buf.extend_from_slice(plaintext);
    object::finish_sealed(buf, keys, id)
}

/// A zstd compressor for chunks at `level`. The default level (3) runs with
/// a smaller short-match table: chainLog 14 (level 3 has 16; hashLog stays
/// 17). Measured where it matters, in a whole `postgres_n8n` backup of the
/// benchmark database (the compressors share the two cores and their caches
/// with PostgreSQL, pg_dump and the reader): 0.5-1 CPU-s less than level 3's
/// own tables, and 0.3 MB (0.03%) smaller. Larger tables look faster in
/// `zstd -b` alone on an idle core but lose in the pipeline: hashLog 19 (a
/// 2 MiB table, the size of a core's L2 cache) cost 2-2.5 CPU-s more per
/// backup. Only the writer's choice: any zstd decoder reads the frames, and
/// object ids (hashes of the plaintext) do not depend on it.
fn chunk_compressor(level: i32) -> Option<zstd::bulk::Compressor<'static>> {
    use zstd::zstd_safe::CParameter;
    let mut c = zstd::bulk::Compressor::new(level).ok()?;
    if level == super::DEFAULT_ZSTD_LEVEL {
        c.set_parameter(CParameter::ChainLog(14)).ok()?;
        c.set_parameter(CParameter::HashLog(17)).ok()?;
    }
    Some(c)
}

/// Runs `f` with this thread's zstd compressor for `level`.
fn with_zstd<T>(
    level: i32,
    f: impl FnOnce(&mut zstd::bulk::Compressor<'static>) -> T,
) -> Option<T> {
    use std::cell::RefCell;
    thread_local! {
        static ZSTD: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
    }
    ZSTD.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.as_ref().map(|(l, _)| *l) != Some(level) {
            *cell = chunk_compressor(level).map(|c| (level, c));
        }
        cell.as_mut().map(|(_, z)| f(z))
    })
}

/// The writers of one stream's new objects.
struct Writer {
    store: Store,
    index: Arc<DedupIndex>,
    counters: Arc<Counters>,
    tasks: tokio::task::JoinSet<(usize, Result<()>)>,
    bytes: usize,
}

impl Writer {
    fn new(store: &Store, index: &Arc<DedupIndex>, counters: &Arc<Counters>) -> Self {
        Writer {
            store: store.clone(),
            index: index.clone(),
            counters: counters.clone(),
            tasks: tokio::task::JoinSet::new(),
            bytes: 0,
        }
    }

    /// Starts the write of a new object, first waiting for room.
    async fn write(&mut self, id: ObjectId, bytes: Vec<u8>) -> Result<()> {
        while let Some(done) = self.tasks.try_join_next() {
            self.reap(done)?;
        }
        while !self.tasks.is_empty()
            && (self.tasks.len() >= WRITE_TASKS || self.bytes + bytes.len() > WRITE_BYTES)
        {
            let done = self.tasks.join_next().await.expect("the set is not empty");
            self.reap(done)?;
        }
        let n = bytes.len();
        self.bytes += n;
        let (store, index, counters) = (
            self.store.clone(),
            self.index.clone(),
            self.counters.clone(),
        );
        self.tasks.spawn(async move {
            if let Err(e) = store
                .backend()
                .put(&object_path(&id), Bytes::from(bytes))
                .await
            {
                index.remove(&id);
                return (n, Err(e.into()));
            }
            index.set_size(&id, n as u64);
            counters.new_bytes.fetch_add(n as u64, Ordering::Relaxed);
            counters.new_objects.fetch_add(1, Ordering::Relaxed);
            (n, Ok(()))
        });
        Ok(())
    }

    fn reap(
        &mut self,
        done: std::result::Result<(usize, Result<()>), tokio::task::JoinError>,
    ) -> Result<()> {
        match done {
            Ok((n, res)) => {
                self.bytes -= n;
                res
            }
            Err(e) => Err(StoreError::Invalid(format!("object writer failed: {e}"))),
        }
    }

    /// Waits for every write; the first failure, if any.
    async fn finish(&mut self) -> Result<()> {
        let mut first = Ok(());
        while let Some(done) = self.tasks.join_next().await {
            if let Err(e) = self.reap(done) {
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        first
    }

    /// Waits for every write, ignoring failures (the caller is already failing).
    async fn drain(&mut self) {
        let _ = self.finish().await;
    }
}

async fn store_chunk(
    store: &Store,
    index: &Arc<DedupIndex>,
    counters: &Arc<Counters>,
    kind: ObjectKind,
    data: Vec<u8>,
) -> Result<ChunkRef> {
    let len = data.len() as u32;
    counters
        .logical_bytes
        .fetch_add(len as u64, Ordering::Relaxed);
    counters.chunks.fetch_add(1, Ordering::Relaxed);
    let (idx, codec) = (index.clone(), store.object_codec().clone());
    let (id, encoded) = tokio::task::spawn_blocking(move || {
        let id = codec.id_of(&data);
        // Only a chunk the store does not hold yet is compressed (and encrypted) and written.
        let enc = idx
            .insert(id)
            .then(|| codec.encode(kind, &id, &data, &crate::crypto::random_nonce()));
        (id, enc)
    })
    .await
    .map_err(|e| StoreError::Invalid(format!("chunk worker failed: {e}")))?;
    match encoded {
        Some(bytes) => {
            let n = bytes.len() as u64;
            if let Err(e) = store
                .backend()
                .put(&object_path(&id), Bytes::from(bytes))
                .await
            {
                index.remove(&id);
                return Err(e.into());
            }
            index.set_size(&id, n);
            counters.new_bytes.fetch_add(n, Ordering::Relaxed);
            counters.new_objects.fetch_add(1, Ordering::Relaxed);
        }
        None => {
            counters.reused_chunks.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(ChunkRef { id, len })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn inputs() -> Vec<Vec<u8>> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut inputs: Vec<Vec<u8>> = vec![vec![], vec![0], vec![0; 100_000], b"abc".repeat(1000)];
        for len in [1usize, 15, 16, 17, 4096, 200_000, 1 << 20] {
            let random: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            let text: Vec<u8> = (0..len)
                .map(|i| b"{\"id\":1234,\"status\":\"ok\"}\n"[i % 26] ^ (rng.gen::<u8>() & 1))
                .collect();
            inputs.push(random);
            inputs.push(text);
        }
        inputs
    }

    /// The pipeline's encoder writes what the format's encoder writes: the
    /// same bytes at every level but the default one (whose match finder is
    /// tuned, see [`chunk_compressor`]); there the same header and, decoded,
    /// the same plaintext, no larger than the format's encoder makes it.
    #[test]
    fn encode_chunk_is_encode_with_id() {
        let inputs = inputs();
        for level in [-3, 1, 2, 3, 7] {
            // Twice: a fresh context, then this thread's reused one.
            for _ in 0..2 {
                for data in &inputs {
                    let codec = object::Codec::Zstd(level);
                    let ours = encode_chunk(codec, data);
                    let format = object::encode_with_id(ObjectKind::Chunk, codec, data);
                    let what = format!("level {level}, {} bytes", data.len());
                    if level != crate::store::DEFAULT_ZSTD_LEVEL {
                        assert_eq!(ours, format, "{what}");
                        continue;
                    }
                    assert_eq!(
                        ours[..object::HEADER_LEN],
                        format[..object::HEADER_LEN],
                        "{what}"
                    );
                    let id = ObjectId::of(data);
                    let (kind, plain) = object::decode(&ours, &id).unwrap();
                    assert_eq!((kind, &plain), (ObjectKind::Chunk, data), "{what}");
                    assert!(ours.len() <= format.len() + 64, "{what}");
                }
            }
        }
        for data in &inputs {
            assert_eq!(
                encode_chunk(object::Codec::None, data),
                object::encode_with_id(ObjectKind::Chunk, object::Codec::None, data)
            );
        }
    }

    /// Sealing in place gives the format's sealed layout: byte for byte what
    /// `seal_payload` gives for the same payload and nonce, and what the
    /// format's decoder opens.
    #[test]
    fn seal_chunk_is_the_formats_sealed_object() {
        let keys = store_format::StoreKeys::derive(&[9u8; 32]);
        let codec = object::ObjectCodec {
            codec: object::Codec::Zstd(3),
            keys: Some(Arc::new(keys.clone())),
        };
        let nonce = [5u8; store_format::crypto::NONCE_LEN];
        for data in &inputs() {
            let id = keys.object_id(data);
            for (codec_byte, payload) in [
                (0u8, data.clone()),
                (1, zstd::bulk::compress(data, 3).unwrap()),
            ] {
                let mut buf = object::begin_sealed(
                    ObjectKind::Chunk,
                    codec_byte,
                    data.len(),
                    payload.len(),
                    &nonce,
                );
                buf.extend_from_slice(&payload);
                assert_eq!(
                    object::finish_sealed(buf, &keys, &id),
                    object::seal_payload(
                        ObjectKind::Chunk,
                        codec_byte,
                        &keys,
                        &id,
                        data.len(),
                        &payload,
                        &nonce
                    ),
                    "{} bytes, codec {codec_byte}",
                    data.len()
                );
            }
            for level in [1, 3] {
                let sealed = seal_chunk(object::Codec::Zstd(level), &keys, &id, data);
                let (kind, plain) = codec.decode(&sealed, &id).unwrap();
                assert_eq!(
                    (kind, &plain),
                    (ObjectKind::Chunk, data),
                    "{} bytes",
                    data.len()
                );
            }
            let sealed = seal_chunk(object::Codec::None, &keys, &id, data);
            assert_eq!(codec.decode(&sealed, &id).unwrap().1, *data);
        }
    }
}
