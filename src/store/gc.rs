//! Garbage collection, safe while backups run.
//!
//! 1. Take the exclusive gc lock.
//! 2. List `objects/`; mark every object a manifest references; move each
//!    unmarked object into a new trash batch `trash/<batch>/` (readers still
//!    find objects there).
//! 3. Note the backup sessions live *after* the moves and wait until all have
//!    ended: only they can have loaded a dedup index that still listed a moved
//!    object (a session takes its lock before it lists `objects/`).
//! 4. Mark again from every manifest (now including those the waited-for
//!    sessions committed); move referenced trash objects back, delete the rest.
//!
//! Every step is idempotent: an interrupted run leaves trash batches that any
//! later run finishes (step 4 covers every batch present).
use super::error::{BackendError, Result, StoreError};
use super::index::{list_object_ids, IdSet};
use super::lock::{live_sessions, HeldLock};
use super::{now_ms, object_path, Store, TRASH};
use futures::{StreamExt, TryStreamExt};
use std::time::{Duration, Instant};
use store_format::event::GcCompleted;
use store_format::{Event, ObjectId};

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct GcReport {
    pub dry_run: bool,
    pub objects_total: u64,
    pub objects_referenced: u64,
    pub objects_freed: u64,
    pub bytes_freed: u64,
    pub objects_restored_from_trash: u64,
    pub waited_for_sessions: usize,
    pub pending_trash_batches: usize,
    pub duration_ms: u64,
}

#[derive(Debug, Clone)]
pub struct GcOptions {
    pub dry_run: bool,
    /// How long to wait for running backups before leaving the trash for a later run.
    pub max_wait: Duration,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            dry_run: false,
            max_wait: Duration::from_secs(24 * 3600),
        }
    }
}

/// Finds an object set aside in a trash batch.
pub async fn find_in_trash(store: &Store, id: &ObjectId) -> Result<Option<String>> {
    let name = id.to_hex();
    for e in store.backend().list(TRASH).await? {
        if e.path.rsplit('/').next() == Some(name.as_str()) && e.size > 0 {
            return Ok(Some(e.path));
        }
    }
    Ok(None)
}

/// Every object any manifest references. A manifest that cannot be read stops
/// the collection: without it, nobody can know what is garbage.
pub async fn mark(store: &Store) -> Result<IdSet> {
    let ids = store.list_manifest_ids().await?;
    let sets: Vec<Vec<ObjectId>> = futures::stream::iter(ids)
        .map(|mid| async move {
            let m = store.read_manifest(&mid).await.map_err(|e| {
                StoreError::Invalid(format!(
                    "cannot read manifest {mid} ({e}); gc stops because it cannot tell what that backup needs"
                ))
            })?;
            Ok::<_, StoreError>(m.object_ids().copied().collect())
        })
        .buffer_unordered(4)
        .try_collect()
        .await?;
    Ok(sets.into_iter().flatten().collect())
}

pub async fn run(store: &Store, opts: &GcOptions) -> Result<GcReport> {
    let started = Instant::now();
    if !opts.dry_run {
        // Backups whose process stopped are recorded first (failed, or
        // completed from their manifest): what they wrote is then either a
        // backup's or garbage. Not a reason to stop a collection, which may
        // be what frees a full store.
        if let Err(e) = super::journal_repair::settle_interrupted(store).await {
            tracing::warn!("interrupted backups could not be recorded: {e}");
        }
    }
    let lock = HeldLock::gc(store).await?;
    let res = run_locked(store, opts, started, &lock).await;
    lock.release().await?;
    let report = res?;
    if !opts.dry_run {
        super::journal::append(
            store,
            Event::GcCompleted(GcCompleted {
                objects_freed: report.objects_freed,
                bytes_freed: report.bytes_freed,
                objects_kept: report.objects_referenced,
                duration_ms: report.duration_ms,
            }),
        )
        .await?;
    }
    Ok(report)
}

async fn ensure_owner(lock: &HeldLock) -> Result<()> {
    if !lock.was_always_live() || !lock.still_mine().await? {
        return Err(StoreError::Locked(
            "this gc stalled and its lock was taken over; it stops without deleting anything (run gc again)".into(),
        ));
    }
    Ok(())
}

async fn run_locked(
    store: &Store,
    opts: &GcOptions,
    started: Instant,
    lock: &HeldLock,
) -> Result<GcReport> {
    let b = store.backend().clone();
    let mut report = GcReport {
        dry_run: opts.dry_run,
        ..Default::default()
    };
    let all = list_object_ids(store).await?;
    let marked = mark(store).await?;
    report.objects_total = all.len() as u64;
    let candidates: Vec<(ObjectId, u64)> = all
        .into_iter()
        .filter(|(id, _)| !marked.contains(id))
        .collect();
    report.objects_referenced = report.objects_total - candidates.len() as u64;
    if opts.dry_run {
        report.objects_freed = candidates.len() as u64;
        report.bytes_freed = candidates.iter().map(|c| c.1).sum();
        report.duration_ms = started.elapsed().as_millis() as u64;
        return Ok(report);
    }
    if !candidates.is_empty() {
        ensure_owner(lock).await?;
        let batch = format!("{TRASH}{}-{}/", now_ms(), uuid::Uuid::new_v4().simple());
        futures::stream::iter(candidates)
            .map(|(id, _)| {
                let (b, batch) = (b.clone(), batch.clone());
                async move {
                    match b
                        .rename(&object_path(&id), &format!("{batch}{}", id.to_hex()))
                        .await
                    {
                        Ok(()) | Err(BackendError::NotFound { .. }) => Ok(()),
                        Err(e) => Err(StoreError::from(e)),
                    }
                }
            })
            .buffer_unordered(8)
            .try_collect::<Vec<_>>()
            .await?;
        b.sync().await?;
    }
    // Wait for the sessions that may have listed a moved object.
    let waiting: Vec<String> = live_sessions(store)
        .await?
        .into_iter()
        .map(|l| l.path)
        .collect();
    report.waited_for_sessions = waiting.len();
    if !waiting.is_empty() {
        tracing::info!(
            "waiting for {} running backup(s) to finish before deleting",
            waiting.len()
        );
        let deadline = Instant::now() + opts.max_wait;
        loop {
            let live: Vec<String> = live_sessions(store)
                .await?
                .into_iter()
                .map(|l| l.path)
                .collect();
            if !waiting.iter().any(|w| live.contains(w)) {
                break;
            }
            if Instant::now() > deadline {
                report.pending_trash_batches = count_batches(store).await?;
                tracing::warn!("backups still running; the trash stays for the next gc to finish");
                report.duration_ms = started.elapsed().as_millis() as u64;
                return Ok(report);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    ensure_owner(lock).await?;
    finish_trash(store, &mut report).await?;
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

async fn count_batches(store: &Store) -> Result<usize> {
    let mut batches: Vec<String> = store
        .backend()
        .list(TRASH)
        .await?
        .into_iter()
        .filter_map(|e| e.path[TRASH.len()..].split('/').next().map(str::to_string))
        .collect();
    batches.sort();
    batches.dedup();
    Ok(batches.len())
}

/// Step 4: mark again, give back what is referenced, delete the rest.
async fn finish_trash(store: &Store, report: &mut GcReport) -> Result<()> {
    let b = store.backend().clone();
    let trash = b.list(TRASH).await?;
    if trash.is_empty() {
        return Ok(());
    }
    let marked = mark(store).await?;
    for e in trash {
        let Some(name) = e.path.rsplit('/').next() else {
            continue;
        };
        let Ok(id) = ObjectId::from_hex(name) else {
            b.delete(&e.path).await?;
            continue;
        };
        if marked.contains(&id) {
            match b.stat(&object_path(&id)).await {
                Ok(_) => b.delete(&e.path).await?,
                Err(BackendError::NotFound { .. }) => b.rename(&e.path, &object_path(&id)).await?,
                Err(err) => return Err(err.into()),
            }
            report.objects_restored_from_trash += 1;
        } else {
            b.delete(&e.path).await?;
            report.objects_freed += 1;
            report.bytes_freed += e.size;
        }
    }
    b.sync().await?;
    Ok(())
}
