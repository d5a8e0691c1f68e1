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
//! 5. Remove what crashes left (SPEC section 2 allows it): temporary files of
//!    interrupted writes older than [`STALE_TEMP_MS`], emptied trash batch
//!    directories, empty journal claims set aside long ago, and stale locks no
//!    journal event depends on (a crashed `init`'s). Stale backup-session
//!    locks stay: they are the evidence that their backup was interrupted, and
//!    whoever records that in the journal removes them
//!    ([`super::lock::remove_stale_session`]).
//!
//! Every step is idempotent: an interrupted run leaves trash batches that any
//! later run finishes (step 4 covers every batch present).
//!
//! On a full disk: the store keeps [`RESERVE_BYTES`] in reserve (the file
//! [`RESERVE`], made by `init`, remade by every collection that has room).
//! A collector that cannot write its lock, or move objects, for lack of space
//! deletes the reserve and goes on in the room it frees; it makes the reserve
//! again once it has deleted what it could.
use super::error::{BackendError, Result, StoreError};
use super::index::{list_object_ids, IdSet};
use super::lock::{live_sessions, HeldLock};
use super::{now_ms, object_path, Store, JOURNAL, RESERVE, RESERVE_BYTES, TRASH};
use futures::{StreamExt, TryStreamExt};
use rand::RngCore;
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
    /// Unreferenced objects not moved for lack of space: the next gc takes them.
    pub objects_left_for_next_run: u64,
    /// Files and directories left by crashes that this run removed.
    pub leftovers_removed: u64,
    /// The disk was full: this run used the space kept in reserve for it.
    pub used_space_reserve: bool,
    /// The disk has no room to keep space in reserve for the next gc.
    pub space_reserve_missing: bool,
    pub duration_ms: u64,
}

/// How old a temporary file of an interrupted write must be before the
/// collector removes it. A write in progress renames its temporary file
/// within moments of creating it; an hour leaves a wide margin for a slow disk
/// or a stalled process, whose write then fails instead of publishing.
pub const STALE_TEMP_MS: i64 = 3600 * 1000;

/// Writes the space reserve (random bytes, so that no file system can store
/// it in less space than it claims).
pub async fn make_reserve(store: &Store) -> Result<()> {
    let mut data = vec![0u8; RESERVE_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut data);
    store.backend().put(RESERVE, data.into()).await?;
    store.backend().sync().await?;
    Ok(())
}

/// Deletes the space reserve; false when there is none.
async fn release_reserve(store: &Store) -> Result<bool> {
    match store.backend().stat(RESERVE).await {
        Ok(_) => {}
        Err(e) if e.is_not_found() => return Ok(false),
        Err(e) => return Err(e.into()),
    }
    tracing::warn!("the store's disk is full: gc uses the space it keeps in reserve");
    store.backend().delete(RESERVE).await?;
    store.backend().sync().await?;
    Ok(true)
}

fn is_no_space(e: &StoreError) -> bool {
    matches!(e, StoreError::Backend(BackendError::NoSpace { .. }))
}

fn full_without_reserve(store: &Store, e: StoreError) -> StoreError {
    StoreError::Invalid(format!(
        "{e}. The disk holding {} is full and the space gc keeps in reserve for this ({RESERVE}) is used up \
         (or, in a store made by an older n8n-ark, was never made): free some space on that disk (files \
         other than the store's), then run `n8n-ark gc` again",
        store.location()
    ))
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
    let mut used_reserve = false;
    let lock = match HeldLock::gc(store).await {
        Ok(l) => l,
        Err(e) if is_no_space(&e) => {
            if !release_reserve(store).await? {
                return Err(full_without_reserve(store, e));
            }
            used_reserve = true;
            HeldLock::gc(store).await.map_err(|e| {
                if is_no_space(&e) {
                    full_without_reserve(store, e)
                } else {
                    e
                }
            })?
        }
        Err(e) => return Err(e),
    };
    let res = run_locked(store, opts, started, &lock, &mut used_reserve).await;
    lock.release().await?;
    let mut report = res?;
    report.used_space_reserve = used_reserve;
    if !opts.dry_run {
        store.check_still_here().await?;
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
    if store.backend().fills_up() {
        let present = match store.backend().stat(RESERVE).await {
            Ok(_) => true,
            Err(e) if e.is_not_found() => false,
            Err(e) => return Err(e.into()),
        };
        if !present {
            match make_reserve(store).await {
                Ok(()) => {}
                Err(e) if is_no_space(&e) => {
                    tracing::warn!("no room to keep space in reserve for the next gc: {e}");
                    report.space_reserve_missing = true;
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(report)
}

/// Moves `candidates` into `batch`, eight at a time. Stops issuing moves at
/// the first one that fails for lack of space, and returns those not moved
/// for that reason.
async fn move_to_trash(
    store: &Store,
    batch: &str,
    candidates: Vec<ObjectId>,
) -> Result<Vec<ObjectId>> {
    let full = std::sync::atomic::AtomicBool::new(false);
    let left: Vec<Option<ObjectId>> = futures::stream::iter(candidates)
        .map(|id| {
            let (b, full) = (store.backend().clone(), &full);
            async move {
                if full.load(std::sync::atomic::Ordering::SeqCst) {
                    return Ok(Some(id));
                }
                match b
                    .rename(&object_path(&id), &format!("{batch}{}", id.to_hex()))
                    .await
                {
                    Ok(()) | Err(BackendError::NotFound { .. }) => Ok(None),
                    Err(BackendError::NoSpace { .. }) => {
                        full.store(true, std::sync::atomic::Ordering::SeqCst);
                        Ok(Some(id))
                    }
                    Err(e) => Err(StoreError::from(e)),
                }
            }
        })
        .buffer_unordered(8)
        .try_collect()
        .await?;
    Ok(left.into_iter().flatten().collect())
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
    used_reserve: &mut bool,
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
        let mut left =
            move_to_trash(store, &batch, candidates.into_iter().map(|c| c.0).collect()).await?;
        if !left.is_empty() && !*used_reserve && release_reserve(store).await? {
            *used_reserve = true;
            left = move_to_trash(store, &batch, left).await?;
        }
        if !left.is_empty() {
            tracing::warn!(
                "the disk is full: {} unreferenced object(s) stay for the next gc, after this one frees space",
                left.len()
            );
            report.objects_left_for_next_run = left.len() as u64;
        }
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
    report.leftovers_removed = remove_leftovers(store).await?;
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// Step 5: what crashes left behind (see the module documentation).
async fn remove_leftovers(store: &Store) -> Result<u64> {
    let b = store.backend();
    let mut n = b.remove_stale_temporaries(STALE_TEMP_MS).await?;
    n += b.remove_empty_dirs(TRASH).await?;
    n += super::lock::remove_stale_other_locks(store).await?;
    // Empty journal claims set aside (section 10): they hold nothing.
    let cutoff = now_ms() - STALE_TEMP_MS;
    for e in b.list(&format!("{JOURNAL}abandoned-")).await? {
        if e.size == 0 && e.modified_ms < cutoff {
            b.delete(&e.path).await?;
            n += 1;
        }
    }
    b.sync().await?;
    Ok(n)
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
