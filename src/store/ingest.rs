//! A backup session: streams and blobs in, objects and one manifest out.
//!
//! The pipeline for a stream: read and cut (FastCDC) on one task; hash (BLAKE3),
//! dedup lookup and compress (zstd) for several chunks at once on the blocking
//! pool; writes overlapped with that; results collected in order. At most
//! `in_flight` chunks exist at once, so memory is bounded by the work in flight,
//! never by the input's size.
use super::chunker::{Chunker, StreamChunker};
use super::error::{Result, StoreError};
use super::index::DedupIndex;
use super::lock::HeldLock;
use super::{host_name, manifest_path, now_ms, object_path, Store};
use bytes::Bytes;
use futures::StreamExt;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use store_format::event::BackupCompleted;
use store_format::object::ObjectKind;
use store_format::{ChunkRef, Event, Item, ItemKind, Manifest, ObjectId};
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
#[derive(Debug, Clone, serde::Serialize)]
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
    pub journal_seq: u64,
}

pub struct BackupSession {
    store: Store,
    lock: Option<HeldLock>,
    index: Arc<DedupIndex>,
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
    format!("{}-{:08x}", now.format("%Y%m%dT%H%M%SZ"), rand::random::<u32>())
}

impl BackupSession {
    /// Takes a session lock, then loads the dedup index (in this order: see the
    /// GC protocol in SPEC.md).
    pub async fn begin(store: &Store, kind: &str) -> Result<BackupSession> {
        let lock = HeldLock::session(store).await?;
        let index = Arc::new(DedupIndex::load(store).await?);
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Ok(BackupSession {
            store: store.clone(),
            lock: Some(lock),
            index,
            kind: kind.to_string(),
            backup_id: new_backup_id(),
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

    fn check_name(&self, name: &str) -> Result<()> {
        if name.is_empty() || self.items.iter().any(|i| i.name == name) {
            return Err(StoreError::Invalid(format!("item name {name:?} is empty or already used in this backup")));
        }
        Ok(())
    }

    /// Cuts, deduplicates and stores a stream (a database dump on a pipe).
    pub async fn add_stream<R: AsyncRead + Unpin + Send>(&mut self, name: &str, reader: R) -> Result<&Item> {
        self.check_name(name)?;
        let chunker = Chunker::new(&self.store.config().chunker);
        let source = StreamChunker::new(reader, chunker);
        let stream = futures::stream::unfold(source, |mut src| async move {
            match src.next_chunk().await {
                Ok(Some(c)) => Some((Ok(c), src)),
                Ok(None) => None,
                Err(e) => Some((Err(e), src)),
            }
        });
        let refs = stream
            .map(|res| {
                let (store, index, counters) = (self.store.clone(), self.index.clone(), self.counters.clone());
                async move {
                    let data = res.map_err(StoreError::Input)?;
                    store_chunk(&store, &index, &counters, ObjectKind::Chunk, data).await
                }
            })
            .buffered(self.in_flight);
        futures::pin_mut!(refs);
        let mut chunks = Vec::new();
        let mut size = 0u64;
        while let Some(r) = refs.next().await {
            let r = r?;
            size += r.len as u64;
            chunks.push(r);
        }
        self.items.push(Item { name: name.to_string(), kind: ItemKind::Stream, size, chunks });
        Ok(self.items.last().unwrap())
    }

    /// Stores a small thing whole, as one object (a workflow's JSON).
    pub async fn add_blob(&mut self, name: &str, data: Vec<u8>) -> Result<&Item> {
        self.check_name(name)?;
        let size = data.len() as u64;
        if size > store_format::object::MAX_PLAINTEXT {
            return Err(StoreError::Invalid(format!(
                "{name}: {size} bytes is larger than an object may be ({} bytes); store it as a stream",
                store_format::object::MAX_PLAINTEXT
            )));
        }
        let chunks = if data.is_empty() {
            vec![]
        } else {
            vec![store_chunk(&self.store, &self.index, &self.counters, ObjectKind::Blob, data).await?]
        };
        self.items.push(Item { name: name.to_string(), kind: ItemKind::Blob, size, chunks });
        Ok(self.items.last().unwrap())
    }

    /// Makes everything durable, writes the manifest, then the journal event.
    pub async fn commit(mut self, labels: BTreeMap<String, String>) -> Result<BackupSummary> {
        let backend = self.store.backend().clone();
        backend.sync().await?;
        let lock = self.lock.take().expect("a session holds its lock until commit");
        let referenced: HashSet<ObjectId> =
            self.items.iter().flat_map(|i| i.chunks.iter().map(|c| c.id)).collect();
        if !lock.was_always_live() {
            // Our lock may have looked stale to a collector, which may then have
            // deleted objects this backup reuses: committing would be a lie.
            let _ = lock.release().await;
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
        };
        let plain = manifest.encode_plaintext();
        let (mid, bytes) = self.store.encode_object(ObjectKind::Manifest, &plain);
        backend.put(&manifest_path(&mid), Bytes::from(bytes)).await?;
        backend.sync().await?;
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
        };
        let seq = super::journal::append(&self.store, Event::BackupCompleted(ev.clone())).await?;
        lock.release().await?;
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
            journal_seq: seq,
        })
    }

    /// Gives up: releases the lock. Objects already written stay until a GC
    /// finds nothing references them.
    pub async fn abort(mut self) {
        if let Some(l) = self.lock.take() {
            let _ = l.release().await;
        }
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
    counters.logical_bytes.fetch_add(len as u64, Ordering::Relaxed);
    counters.chunks.fetch_add(1, Ordering::Relaxed);
    let (idx, codec) = (index.clone(), store.object_codec().clone());
    let (id, encoded) = tokio::task::spawn_blocking(move || {
        let id = codec.id_of(&data);
        // Only a chunk the store does not hold yet is compressed (and encrypted) and written.
        let enc = idx.insert(id).then(|| codec.encode(kind, &id, &data, &crate::crypto::random_nonce()));
        (id, enc)
    })
    .await
    .map_err(|e| StoreError::Invalid(format!("chunk worker failed: {e}")))?;
    match encoded {
        Some(bytes) => {
            let n = bytes.len() as u64;
            if let Err(e) = store.backend().put(&object_path(&id), Bytes::from(bytes)).await {
                index.remove(&id);
                return Err(e.into());
            }
            counters.new_bytes.fetch_add(n, Ordering::Relaxed);
            counters.new_objects.fetch_add(1, Ordering::Relaxed);
        }
        None => {
            counters.reused_chunks.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(ChunkRef { id, len })
}
