//! Locks without `flock`: a file under `locks/` per running session, kept alive
//! by a heartbeat. A lock whose heartbeat is older than its promise (times
//! [`STALE_FACTOR`]), or whose process is gone from this host, is stale and
//! ignored, so a crashed process never needs an `unlock`.
use super::backend::Backend;
use super::error::{BackendError, Result, StoreError};
use super::{now_ms, Store, LOCKS};
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use store_format::LockRecord;
use tokio::task::JoinHandle;

pub const DEFAULT_REFRESH: Duration = Duration::from_secs(30);
pub const STALE_FACTOR: i64 = 4;
pub const GC_LOCK: &str = "locks/gc";
/// Held by `init` from its first write to its last: two `init`s at once on
/// one location cannot both write.
pub const INIT_LOCK: &str = "locks/init";
/// The prefix of backup-session locks.
pub const SESSION_PREFIX: &str = "locks/backup-";
/// An empty claim (a lock being written) counts as live for this long.
const CLAIM_GRACE_MS: i64 = 60_000;

fn refresh_interval() -> Duration {
    // Tests shorten the heartbeat to exercise staleness quickly.
    std::env::var("ARK_LOCK_REFRESH_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(DEFAULT_REFRESH)
}

/// A held lock. Its heartbeat runs until [`HeldLock::release`] (or drop).
#[derive(Debug)]
pub struct HeldLock {
    store: Store,
    path: String,
    heartbeat: Option<JoinHandle<()>>,
    /// Held by the heartbeat while it writes; `true` once released, so that a
    /// heartbeat in flight can never re-create a released lock.
    released: Arc<tokio::sync::Mutex<bool>>,
    /// When the last heartbeat was written (ms); a holder whose heartbeats fell
    /// behind must not trust that its lock protected it.
    last_beat: Arc<AtomicI64>,
    /// Set when any gap between heartbeats was long enough for others to
    /// take the lock as stale.
    lapsed: Arc<AtomicBool>,
    refresh_ms: i64,
    created_ms: i64,
}

/// Who holds a lock: the host name and the process's PID namespace, so that
/// processes in containers that share the host's name (host networking) are
/// not mistaken for processes of the host.
pub fn holder_host() -> String {
    let ns = std::fs::read_link("/proc/self/ns/pid")
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let ns: String = ns.chars().filter(|c| c.is_ascii_digit()).collect();
    if ns.is_empty() {
        super::host_name()
    } else {
        format!("{}#pidns:{}", super::host_name(), ns)
    }
}

impl HeldLock {
    fn record(
        kind: &str,
        created_ms: i64,
        refresh_ms: i64,
        backup_id: &Option<String>,
    ) -> LockRecord {
        LockRecord {
            kind: kind.into(),
            host: holder_host(),
            pid: std::process::id(),
            created_ms,
            heartbeat_ms: now_ms(),
            refresh_ms,
            backup_id: backup_id.clone(),
        }
    }

    async fn start(
        store: &Store,
        path: String,
        kind: &str,
        backup_id: Option<String>,
    ) -> Result<HeldLock> {
        let refresh = refresh_interval();
        let refresh_ms = refresh.as_millis() as i64;
        let created = now_ms();
        let rec = Self::record(kind, created, refresh_ms, &backup_id);
        super::backend::create_exclusive_once(
            store.backend().as_ref(),
            &path,
            Bytes::from(rec.encode()),
        )
        .await?;
        let last_beat = Arc::new(AtomicI64::new(rec.heartbeat_ms));
        let lapsed = Arc::new(AtomicBool::new(false));
        let released = Arc::new(tokio::sync::Mutex::new(false));
        let (s, p, lb, k, rel, lap, bid) = (
            store.clone(),
            path.clone(),
            last_beat.clone(),
            kind.to_string(),
            released.clone(),
            lapsed.clone(),
            backup_id.clone(),
        );
        let heartbeat = tokio::spawn(async move {
            loop {
                tokio::time::sleep(refresh).await;
                let done = rel.lock().await;
                if *done {
                    return;
                }
                let rec = Self::record(&k, created, refresh_ms, &bid);
                match s.backend().put(&p, Bytes::from(rec.encode())).await {
                    Ok(()) => {
                        if rec.heartbeat_ms - lb.swap(rec.heartbeat_ms, Ordering::SeqCst)
                            >= refresh_ms * (STALE_FACTOR - 1)
                        {
                            lap.store(true, Ordering::SeqCst);
                        }
                    }
                    Err(e) => tracing::warn!("lock heartbeat {p} failed: {e}"),
                }
                drop(done);
            }
        });
        Ok(HeldLock {
            store: store.clone(),
            path,
            heartbeat: Some(heartbeat),
            released,
            last_beat,
            lapsed,
            refresh_ms,
            created_ms: created,
        })
    }

    /// Takes `init`'s lock (exclusive create of [`INIT_LOCK`]); fails with
    /// `AlreadyExists` when another `init` holds it, or left it behind.
    pub(crate) async fn init(store: &Store) -> Result<HeldLock> {
        Self::start(store, INIT_LOCK.to_string(), "init", None).await
    }

    /// Takes a session lock for work that adds objects (a backup, an ingest),
    /// naming the backup it belongs to.
    pub async fn session(store: &Store, backup_id: &str) -> Result<HeldLock> {
        let path = format!("{SESSION_PREFIX}{}", uuid::Uuid::new_v4().simple());
        Self::start(store, path, "backup", Some(backup_id.to_string()))
            .await
            .map_err(|e| match e {
            StoreError::Backend(BackendError::PermissionDenied { path }) => {
                StoreError::Locked(format!("cannot create a lock in {}: permission denied ({path}); the store is read-only", store.location()))
            }
            e => e,
        })
    }

    /// Takes the collector's exclusive lock; replaces a stale one.
    pub async fn gc(store: &Store) -> Result<HeldLock> {
        for _ in 0..3 {
            match Self::start(store, GC_LOCK.to_string(), "gc", None).await {
                Ok(l) => return Ok(l),
                Err(StoreError::Backend(BackendError::AlreadyExists { .. })) => {
                    match read_lock(store.backend().as_ref(), GC_LOCK).await? {
                        Some(info) if info.live => {
                            return Err(StoreError::Locked(format!(
                                "another gc is running ({}), started {}",
                                info.holder,
                                super::check::fmt_time(info.created_ms)
                            )))
                        }
                        _ => {
                            tracing::warn!("removing a stale gc lock");
                            store.backend().delete(GC_LOCK).await?;
                        }
                    }
                }
                Err(StoreError::Backend(BackendError::PermissionDenied { path })) => {
                    return Err(StoreError::Locked(format!(
                        "cannot create a lock in {}: permission denied ({path}); the store is read-only",
                        store.location()
                    )))
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Locked("could not take the gc lock".into()))
    }

    /// True when every heartbeat so far was written in time, so that other
    /// processes have always seen this lock as live.
    pub fn was_always_live(&self) -> bool {
        !self.lapsed.load(Ordering::SeqCst)
            && now_ms() - self.last_beat.load(Ordering::SeqCst)
                < self.refresh_ms * (STALE_FACTOR - 1)
    }

    /// True when the lock file is still this holder's (nobody took it over
    /// while this process was stalled).
    pub async fn still_mine(&self) -> Result<bool> {
        let bytes = match self.store.backend().get(&self.path).await {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        Ok(match LockRecord::decode(&bytes) {
            Ok(r) => {
                r.host == holder_host()
                    && r.pid == std::process::id()
                    && r.created_ms == self.created_ms
            }
            Err(_) => false,
        })
    }

    pub async fn release(mut self) -> Result<()> {
        // Wait for a heartbeat write in flight, and stop any later one.
        *self.released.lock().await = true;
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        // A lock taken over while this process stalled belongs to its new holder.
        if self.still_mine().await? {
            self.store.backend().delete(&self.path).await?;
        }
        Ok(())
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
            // Not released explicitly (an error path): remove the file in the
            // background; if that never runs, the lock goes stale by itself.
            let (s, p, rel) = (self.store.clone(), self.path.clone(), self.released.clone());
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    *rel.lock().await = true;
                    let _ = s.backend().delete(&p).await;
                });
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct LockInfo {
    pub path: String,
    pub kind: String,
    pub holder: String,
    pub created_ms: i64,
    /// The last heartbeat (the creation time of an unreadable lock).
    pub heartbeat_ms: i64,
    pub live: bool,
    /// The backup of a session lock, when its writer recorded it.
    pub backup_id: Option<String>,
    /// The lock record, when the file holds one that decodes (not an empty
    /// claim, nor a damaged or newer lock).
    pub record: Option<LockRecord>,
}

use crate::sys::pid_alive;

async fn read_lock(backend: &dyn Backend, path: &str) -> Result<Option<LockInfo>> {
    let bytes = match backend.get(path).await {
        Ok(b) => b,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if bytes.is_empty() {
        // A claim being written right now, or left by a crash between claim and publish.
        let age = match backend.stat(path).await {
            Ok(e) => now_ms() - e.modified_ms,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        return Ok(Some(LockInfo {
            path: path.into(),
            kind: "unknown".into(),
            holder: "unknown (lock being written)".into(),
            created_ms: now_ms() - age,
            heartbeat_ms: now_ms() - age,
            live: age < CLAIM_GRACE_MS,
            backup_id: None,
            record: None,
        }));
    }
    let rec = match LockRecord::decode(&bytes) {
        Ok(r) => r,
        Err(e) => {
            // Perhaps written by a newer n8n-ark: live while it is being rewritten.
            let modified = match backend.stat(path).await {
                Ok(e) => e.modified_ms,
                Err(e) if e.is_not_found() => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let live = now_ms() - modified < DEFAULT_REFRESH.as_millis() as i64 * STALE_FACTOR;
            tracing::warn!(
                "{path}: unreadable lock ({e}); counted as {}",
                if live {
                    "live (recently written)"
                } else {
                    "stale"
                }
            );
            return Ok(Some(LockInfo {
                path: path.into(),
                kind: "unknown".into(),
                holder: "unreadable".into(),
                created_ms: modified,
                heartbeat_ms: modified,
                live,
                backup_id: None,
                record: None,
            }));
        }
    };
    let fresh = now_ms() - rec.heartbeat_ms < rec.refresh_ms.max(1000) * STALE_FACTOR;
    let gone = rec.host == holder_host() && !pid_alive(rec.pid);
    Ok(Some(LockInfo {
        path: path.into(),
        kind: rec.kind.clone(),
        holder: format!("{} pid {}", rec.host, rec.pid),
        created_ms: rec.created_ms,
        heartbeat_ms: rec.heartbeat_ms,
        live: fresh && !gone,
        backup_id: rec.backup_id.clone(),
        record: Some(rec),
    }))
}

/// Every lock under `locks/`, with its liveness.
pub async fn list_locks(store: &Store) -> Result<Vec<LockInfo>> {
    let mut out = Vec::new();
    for e in store.backend().list(LOCKS).await? {
        if let Some(info) = read_lock(store.backend().as_ref(), &e.path).await? {
            out.push(info);
        }
    }
    Ok(out)
}

/// The live backup sessions (and anything else under `locks/` that is live
/// and not the collector's own lock: the collector waits for it).
pub async fn live_sessions(store: &Store) -> Result<Vec<LockInfo>> {
    Ok(list_locks(store)
        .await?
        .into_iter()
        .filter(|l| l.live && l.path != GC_LOCK)
        .collect())
}

/// The backup-session locks that are stale: their process is known to be
/// gone (this host and PID namespace), or their heartbeat stopped long ago.
/// Each is the trace of a backup that ended without releasing its lock (it
/// was killed, or its machine stopped). The collector never removes them:
/// whoever records such a backup's end in the journal removes its lock
/// afterwards, with [`remove_stale_session`].
pub async fn stale_sessions(store: &Store) -> Result<Vec<LockInfo>> {
    let mut out: Vec<LockInfo> = list_locks(store)
        .await?
        .into_iter()
        .filter(|l| !l.live && l.path.starts_with(SESSION_PREFIX))
        .collect();
    out.sort_by_key(|l| l.created_ms);
    Ok(out)
}

/// Removes a backup-session lock if it is (still) stale; returns whether it
/// did. A lock that is live again (its holder was only stalled) stays.
pub async fn remove_stale_session(store: &Store, path: &str) -> Result<bool> {
    if !path.starts_with(SESSION_PREFIX) {
        return Err(StoreError::Invalid(format!(
            "{path} is not a backup session's lock"
        )));
    }
    match read_lock(store.backend().as_ref(), path).await? {
        Some(info) if !info.live => {
            store.backend().delete(path).await?;
            store.backend().sync().await?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Whether `init`'s lock at this location is live (`None`: there is none).
pub(crate) async fn init_lock_live(backend: &dyn Backend) -> Result<Option<bool>> {
    Ok(read_lock(backend, INIT_LOCK).await?.map(|l| l.live))
}

/// Removes the stale locks that no journal event depends on: `init`'s lock
/// left by a crashed `init`, and stale locks of kinds other than a backup
/// session (never [`GC_LOCK`], which the caller holds). Returns how many.
pub(crate) async fn remove_stale_other_locks(store: &Store) -> Result<u64> {
    let mut n = 0;
    for l in list_locks(store).await? {
        if l.live || l.path == GC_LOCK || l.path.starts_with(SESSION_PREFIX) {
            continue;
        }
        store.backend().delete(&l.path).await?;
        n += 1;
    }
    Ok(n)
}
