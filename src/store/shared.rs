//! What the backup sessions of one process share on one store (every clone of
//! a [`Store`] holds the same): one pool of chunk workers and one cached
//! listing of `objects/` for the dedup index, so two backups running at once
//! in `n8n-ark serve` neither start two sets of threads nor hold the store's
//! object ids twice in memory.
//!
//! **The chunk pool** ([`ChunkPool`]): plain threads, one per core, started
//! with the first stream and kept for the store's life, each hashing and
//! compressing with its own zstd context (see [`super::ingest`] for why not
//! the blocking pool). Jobs of every session go through one queue.
//!
//! **The listing** ([`Listing`]): the sorted object ids (and encoded sizes)
//! a session's dedup index starts from. A session that begins while another
//! one's listing is in use takes that listing instead of listing again. This
//! is safe against the collector (SPEC.md section 13) because the session
//! that listed took its session lock *before* it listed, and that lock stays
//! live until the last session using the listing has ended (its manifest
//! durable): when the lister ends first, its lock stays with the listing. A
//! collector that moves an object after the listing finds that lock live
//! after its moves and waits for it, so it re-marks with every manifest of
//! those sessions. Each session that joins still takes its own lock first,
//! for the objects it writes, and keeps what it adds in its own index (a
//! write another session claimed may still fail). Once no session uses a
//! listing, it is dropped: the next session lists anew. One backup alone
//! holds one lock, as before.
use super::chunker::ChunkData;
use super::error::{Result, StoreError};
use super::index::DedupIndex;
use super::lock::HeldLock;
use super::Store;
use std::sync::{Arc, Mutex, OnceLock};
use store_format::object::ObjectCodec;
use store_format::ObjectId;

/// The shared state behind every clone of a store.
#[derive(Default)]
pub(crate) struct Shared {
    pool: OnceLock<ChunkPool>,
    /// The listing in use and how many sessions use it (none: the next
    /// session lists anew).
    slot: Mutex<Option<(Arc<Listing>, usize)>>,
    /// One session at a time decides whether to list.
    listing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("chunk_workers", &self.pool.get().map(|p| p.threads))
            .field(
                "listing_users",
                &self
                    .slot
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_ref()
                    .map(|(_, n)| *n),
            )
            .finish_non_exhaustive()
    }
}

/// One listing of `objects/`, sorted, with the lock that keeps it valid.
#[derive(Debug, Default)]
pub struct Listing {
    pub(crate) ids: Vec<ObjectId>,
    pub(crate) sizes: Vec<u32>,
    /// Held from before the listing until the last session using it ended.
    lock: Mutex<Option<HeldLock>>,
}

impl Listing {
    /// Whether its lock (if it holds one) kept its heartbeats in time.
    pub(crate) fn always_live(&self) -> bool {
        self.lock
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_none_or(|l| l.was_always_live())
    }

    /// A listing of `ids` (in any order) with their encoded sizes, holding
    /// no lock (tests, and sessions that list for themselves).
    pub fn from_listed(mut ids: Vec<(ObjectId, u64)>) -> Listing {
        ids.sort_unstable_by_key(|a| a.0);
        ids.dedup_by(|a, b| a.0 == b.0);
        let mut listed = Vec::with_capacity(ids.len());
        let mut sizes = Vec::with_capacity(ids.len());
        for (id, size) in ids {
            listed.push(id);
            sizes.push(size.min(u32::MAX as u64) as u32);
        }
        Listing {
            ids: listed,
            sizes,
            lock: Mutex::new(None),
        }
    }
}

impl Store {
    /// The chunk workers of this store in this process (started on first use).
    pub(crate) fn chunk_pool(&self) -> &ChunkPool {
        self.shared.pool.get_or_init(|| {
            ChunkPool::start(
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2),
            )
        })
    }

    /// How many chunk worker threads this store runs in this process (0
    /// before the first backup stream).
    pub fn chunk_workers(&self) -> usize {
        self.shared.pool.get().map_or(0, |p| p.threads)
    }

    /// A dedup index for a session that holds its own lock already (taken
    /// before this call): on the listing another session of this process is
    /// using, else on a new one; and the session's use of it, to end with
    /// [`Membership::leave`].
    pub(crate) async fn shared_index(&self) -> Result<(DedupIndex, Membership)> {
        let _deciding = self.shared.listing.lock().await;
        let joined = {
            let mut slot = self.shared.slot.lock().unwrap_or_else(|e| e.into_inner());
            slot.as_mut().map(|(l, users)| {
                *users += 1;
                l.clone()
            })
        };
        let lister = joined.is_none();
        let listing = match joined {
            Some(l) => l,
            None => {
                let listing = Listing::from_listed(super::index::list_object_ids(self).await?);
                let listing = Arc::new(listing);
                *self.shared.slot.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((listing.clone(), 1));
                listing
            }
        };
        Ok((
            DedupIndex::on(listing.clone()),
            Membership {
                shared: self.shared.clone(),
                listing,
                lister,
                left: false,
            },
        ))
    }
}

/// A session's use of a shared listing. The session that listed keeps the
/// listing valid with its own lock (taken before it listed): when it ends
/// while others still use the listing, its lock stays with the listing, and
/// the last session to leave releases it.
pub(crate) struct Membership {
    shared: Arc<Shared>,
    listing: Arc<Listing>,
    /// This session listed (its lock was taken before the listing).
    lister: bool,
    left: bool,
}

impl Membership {
    /// The locks to release now: the session's own unless it stays with the
    /// listing, and the listing's when this is the last session.
    fn part(&mut self, own: Option<HeldLock>) -> Vec<HeldLock> {
        let mut out = Vec::new();
        if std::mem::replace(&mut self.left, true) {
            out.extend(own);
            return out;
        }
        let mut slot = self.shared.slot.lock().unwrap_or_else(|e| e.into_inner());
        let mut held = self.listing.lock.lock().unwrap_or_else(|e| e.into_inner());
        let last = match slot.as_mut() {
            Some((l, users)) if Arc::ptr_eq(l, &self.listing) => {
                *users -= 1;
                *users == 0
            }
            _ => true,
        };
        if last {
            *slot = None;
            out.extend(held.take());
            out.extend(own);
        } else if self.lister {
            // Others still count on this listing: the lock taken before it
            // stays live until the last of them ends.
            if let Some(l) = own {
                if let Some(old) = held.replace(l) {
                    out.push(old);
                }
            }
        } else {
            out.extend(own);
        }
        out
    }

    /// Ends this session's use (after its manifest is durable, or it gave
    /// up), releasing what it should; the first release error is returned.
    pub async fn leave(mut self, own: Option<HeldLock>) -> Result<()> {
        let mut r = Ok(());
        for l in self.part(own) {
            if let Err(e) = l.release().await {
                if r.is_ok() {
                    r = Err(e);
                }
            }
        }
        r
    }

    /// [`Membership::leave`] without waiting: the locks to release are
    /// removed in the background (or go stale).
    pub fn leave_now(mut self, own: Option<HeldLock>) {
        drop(self.part(own));
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        drop(self.part(None));
    }
}

/// A chunk after the parallel stage: its id, and its encoded object unless the
/// store already held it when it was hashed.
pub(crate) struct Prepared {
    pub id: ObjectId,
    pub len: u32,
    pub encoded: Option<Vec<u8>>,
}

struct Job {
    data: ChunkData,
    index: Arc<DedupIndex>,
    codec: ObjectCodec,
    reply: tokio::sync::oneshot::Sender<Prepared>,
}

/// The hash-and-compress threads of a store (see the module doc).
pub(crate) struct ChunkPool {
    jobs: Mutex<std::sync::mpsc::Sender<Job>>,
    threads: usize,
}

impl ChunkPool {
    fn start(n: usize) -> ChunkPool {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let mut threads = 0;
        for i in 0..n.max(1) {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("ark-chunk-{i}"))
                .spawn(move || loop {
                    let job = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok(Job {
                        data,
                        index,
                        codec,
                        reply,
                    }) = job
                    else {
                        return;
                    };
                    let id = codec.id_of(&data);
                    // Only a chunk the store does not hold yet is compressed
                    // (and sealed). (Two equal chunks in flight at once may
                    // both be; one is written.)
                    let encoded = (!index.contains(&id)).then(|| match &codec.keys {
                        None => super::ingest::encode_chunk(codec.codec, &data),
                        Some(keys) => super::ingest::seal_chunk(codec.codec, keys, &id, &data),
                    });
                    let _ = reply.send(Prepared {
                        id,
                        len: data.len() as u32,
                        encoded,
                    });
                });
            match spawned {
                Ok(_) => threads += 1,
                // With no worker at all, every job reports the failure below.
                Err(e) => tracing::warn!("could not start a chunk worker: {e}"),
            }
        }
        ChunkPool {
            jobs: Mutex::new(jobs),
            threads,
        }
    }

    /// Queues a chunk of a session (its index and the store's codec); the
    /// future resolves when a worker has prepared it.
    pub fn prepare(
        &self,
        data: ChunkData,
        index: &Arc<DedupIndex>,
        codec: &ObjectCodec,
    ) -> impl std::future::Future<Output = Result<Prepared>> + Send + 'static {
        let (reply, done) = tokio::sync::oneshot::channel();
        let queued = self.threads > 0
            && self
                .jobs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .send(Job {
                    data,
                    index: index.clone(),
                    codec: codec.clone(),
                    reply,
                })
                .is_ok();
        async move {
            if !queued {
                return Err(StoreError::Invalid("the chunk workers stopped".into()));
            }
            done.await
                .map_err(|_| StoreError::Invalid("a chunk worker failed".into()))
        }
    }
}
