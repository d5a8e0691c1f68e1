//! What a damaged journal affects, and its repair.
//!
//! A journal problem (a damaged, missing or misplaced record) loses one
//! event. What the store still proves is recorded again by appending
//! records: a backup whose manifest is intact but whose completion record is
//! lost gets a `BackupCompleted` from its manifest (`recovered` set), a
//! backup that started but whose end is lost and that wrote no manifest is
//! recorded as failed (`interrupted`), and a `JournalRepaired` record then
//! acknowledges every problem it found, so that replay reports them as
//! repaired. Nothing is rewritten or deleted; what cannot be recovered is
//! named.
//!
//! The same recovery, for one backup, settles a backup session whose process
//! stopped (killed, crashed, the machine went down): the next writer that
//! finds its lock stale records the backup as completed (when its manifest
//! was written) or failed, then removes the lock.
use super::error::Result;
use super::journal::{self, JournalProblem, Replay};
use super::lock::{self, LockInfo};
use super::Store;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use store_format::event::{BackupCompleted, BackupFailed, JournalRepaired, RepairedRecord};
use store_format::{Event, Manifest, ObjectId};

/// Slack when matching an event's time to the window of a lost record.
const TIME_SLACK_MS: i64 = 5_000;

/// A backup whose manifest is intact but that no record completes.
#[derive(Debug, Clone, Serialize)]
pub struct RecoverableBackup {
    pub backup_id: String,
    pub kind: String,
    pub manifest: String,
    pub started_ms: i64,
    pub finished_ms: i64,
    /// The lost record that probably held its completion, if one fits.
    pub lost_in: Option<u64>,
    #[serde(skip)]
    manifest_id: Option<ObjectId>,
    #[serde(skip)]
    loaded: Option<Box<Manifest>>,
}

/// A backup that started and never ended, and wrote no manifest.
#[derive(Debug, Clone, Serialize)]
pub struct UnfinishedBackup {
    pub backup_id: String,
    pub kind: String,
    /// The record of its start.
    pub started_seq: u64,
    pub started_ms: i64,
    /// The lost record that probably held its end, if one fits.
    pub lost_in: Option<u64>,
    /// Its session lock is live: it is running now, and is left alone.
    pub running: bool,
}

/// What a journal's problems affect.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Assessment {
    pub journal_records: u64,
    /// Problems no repair acknowledged.
    pub problems: Vec<JournalProblem>,
    /// Problems a `JournalRepaired` record acknowledged.
    pub repaired: Vec<JournalProblem>,
    /// Backups to record as completed, from their manifests.
    pub completions: Vec<RecoverableBackup>,
    /// Backups that never ended (running ones included, marked).
    pub unfinished: Vec<UnfinishedBackup>,
    /// Completed backups whose start record is lost (no effect: their
    /// completion is recorded), with the record that probably held it.
    pub starts_lost: Vec<(String, u64)>,
    /// Completed backups whose manifest is missing: they cannot be restored,
    /// and nothing in the store can bring them back.
    pub manifests_missing: Vec<(String, String)>,
    /// For each problem that lost an event: what it probably was, in words.
    pub lost: Vec<String>,
}

impl Assessment {
    /// Whether a repair would append anything.
    pub fn needs_repair(&self) -> bool {
        !self.problems.is_empty()
            || !self.completions.is_empty()
            || self.unfinished.iter().any(|u| !u.running)
    }

    /// The backups (ids) a problem affects, in words, for `check`.
    pub fn affected_by(&self, p: &JournalProblem) -> Vec<String> {
        let mut out = Vec::new();
        for c in &self.completions {
            if c.lost_in == Some(p.seq) {
                out.push(format!(
                    "probably the completion of backup {} ({}): its manifest is intact, so it is restorable",
                    c.backup_id, c.kind
                ));
            }
        }
        for u in &self.unfinished {
            if u.lost_in == Some(p.seq) {
                out.push(format!(
                    "probably the end of backup {} ({}), which wrote no manifest: it never completed",
                    u.backup_id, u.kind
                ));
            }
        }
        for (b, seq) in &self.starts_lost {
            if *seq == p.seq {
                out.push(format!(
                    "probably the start of backup {b}: no effect, its completion is recorded"
                ));
            }
        }
        out
    }

    /// Backup ids a problem affects.
    pub fn backups_affected_by(&self, p: &JournalProblem) -> Vec<String> {
        let mut out: Vec<String> = self
            .completions
            .iter()
            .filter(|c| c.lost_in == Some(p.seq))
            .map(|c| c.backup_id.clone())
            .collect();
        out.extend(
            self.unfinished
                .iter()
                .filter(|u| u.lost_in == Some(p.seq))
                .map(|u| u.backup_id.clone()),
        );
        out
    }
}

/// Whether `t` falls in the window in which a problem's lost event was written.
fn in_window(p: &JournalProblem, t: i64) -> bool {
    p.written_after_ms.is_none_or(|a| t >= a - TIME_SLACK_MS)
        && p.written_before_ms.is_none_or(|b| t <= b + TIME_SLACK_MS)
}

struct Known {
    started: BTreeMap<String, (u64, i64, String)>,
    ended: HashSet<String>,
    /// manifest id → backup id, for every completed backup.
    completed_manifests: HashMap<ObjectId, String>,
    forgotten_manifests: HashSet<ObjectId>,
    /// backup id → (manifest, completion time - duration).
    completed: BTreeMap<String, (ObjectId, i64)>,
}

fn known(replay: &Replay) -> Known {
    let mut k = Known {
        started: BTreeMap::new(),
        ended: HashSet::new(),
        completed_manifests: HashMap::new(),
        forgotten_manifests: HashSet::new(),
        completed: BTreeMap::new(),
    };
    for rec in &replay.records {
        match &rec.event {
            Event::BackupStarted(e) => {
                k.started
                    .insert(e.backup_id.clone(), (rec.seq, rec.time_ms, e.kind.clone()));
            }
            Event::BackupCompleted(e) => {
                k.ended.insert(e.backup_id.clone());
                k.completed_manifests
                    .insert(e.manifest, e.backup_id.clone());
                k.completed.insert(
                    e.backup_id.clone(),
                    (e.manifest, rec.time_ms - e.duration_ms as i64),
                );
            }
            Event::BackupFailed(e) => {
                k.ended.insert(e.backup_id.clone());
            }
            Event::BackupForgotten(e) => {
                k.ended.insert(e.backup_id.clone());
                k.forgotten_manifests.insert(e.manifest);
            }
            _ => {}
        }
    }
    k
}

/// Reads the journal, the manifests and the session locks, and says what
/// the journal's problems affect and what a repair would record.
pub async fn assess(store: &Store) -> Result<Assessment> {
    let replay = journal::replay(store).await?;
    let locks = lock::list_locks(store).await?;
    assess_with(store, &replay, &locks).await
}

pub async fn assess_with(store: &Store, replay: &Replay, locks: &[LockInfo]) -> Result<Assessment> {
    let k = known(replay);
    let mut a = Assessment {
        journal_records: replay.records.len() as u64,
        ..Default::default()
    };
    for p in &replay.problems {
        if p.repaired_by.is_some() {
            a.repaired.push(p.clone());
        } else {
            a.problems.push(p.clone());
        }
    }
    let losing: Vec<&JournalProblem> = a.problems.iter().filter(|p| p.kind.loses_event()).collect();
    let live: Vec<&LockInfo> = locks.iter().filter(|l| l.live && l.kind != "gc").collect();
    // A live session of a writer that did not name its backup may be any
    // backup started since it took its lock.
    let anonymous_since = live
        .iter()
        .filter(|l| l.backup_id.is_none())
        .map(|l| l.created_ms)
        .min();
    let is_running = |backup_id: &str, started_ms: i64| {
        live.iter()
            .any(|l| l.backup_id.as_deref() == Some(backup_id))
            || anonymous_since.is_some_and(|t| started_ms >= t - 60_000)
    };

    // Intact manifests that no record completes (and none forgets).
    let mut manifest_of: HashMap<String, ObjectId> = HashMap::new();
    for mid in store.list_manifest_ids().await? {
        if k.completed_manifests.contains_key(&mid) || k.forgotten_manifests.contains(&mid) {
            continue;
        }
        let m = match store.read_manifest(&mid).await {
            Ok(m) => m,
            Err(e) if e.is_retryable() => return Err(e),
            // A damaged manifest is `check`'s to report; nothing to recover.
            Err(_) => continue,
        };
        if k.ended.contains(&m.backup_id) || is_running(&m.backup_id, m.started_ms) {
            continue;
        }
        manifest_of.insert(m.backup_id.clone(), mid);
        let lost_in = losing
            .iter()
            .find(|p| in_window(p, m.finished_ms))
            .map(|p| p.seq);
        a.completions.push(RecoverableBackup {
            backup_id: m.backup_id.clone(),
            kind: m.kind.clone(),
            manifest: mid.to_hex(),
            started_ms: m.started_ms,
            finished_ms: m.finished_ms,
            lost_in,
            manifest_id: Some(mid),
            loaded: Some(Box::new(m)),
        });
    }
    a.completions.sort_by_key(|c| c.finished_ms);

    // Started, never ended, no manifest.
    for (bid, (seq, t, kind)) in &k.started {
        if k.ended.contains(bid) || manifest_of.contains_key(bid) {
            continue;
        }
        let lost_in = losing.iter().find(|p| p.seq > *seq).map(|p| p.seq);
        a.unfinished.push(UnfinishedBackup {
            backup_id: bid.clone(),
            kind: kind.clone(),
            started_seq: *seq,
            started_ms: *t,
            lost_in,
            running: is_running(bid, *t),
        });
    }

    // Completed backups whose start is lost, and those whose manifest is gone.
    let present: HashSet<ObjectId> = store.list_manifest_ids().await?.into_iter().collect();
    for (bid, (mid, started)) in &k.completed {
        if !k.started.contains_key(bid) {
            if let Some(p) = losing.iter().find(|p| in_window(p, *started)) {
                a.starts_lost.push((bid.clone(), p.seq));
            }
        }
        if !present.contains(mid) && !k.forgotten_manifests.contains(mid) {
            a.manifests_missing.push((bid.clone(), mid.to_hex()));
        }
    }

    // What each lost event probably was.
    for p in &losing {
        let explained = a.affected_by(p);
        let when = match (p.written_after_ms, p.written_before_ms) {
            (Some(x), Some(y)) => format!(
                "written between {} and {}",
                super::check::fmt_time(x),
                super::check::fmt_time(y)
            ),
            (Some(x), None) => format!("written after {}", super::check::fmt_time(x)),
            (None, Some(y)) => format!("written before {}", super::check::fmt_time(y)),
            (None, None) => "written at an unknown time".to_string(),
        };
        if explained.is_empty() {
            a.lost.push(format!(
                "{}: its event is lost ({when}); nothing in the store tells what it was \
                 (a restore, a verification, a gc or a policy change leaves nothing else behind)",
                p.records()
            ));
        } else {
            a.lost
                .push(format!("{}: {}", p.records(), explained.join("; ")));
        }
    }
    Ok(a)
}

/// What a repair did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RepairReport {
    pub repair_id: Option<String>,
    /// The records appended, in order.
    pub appended: Vec<u64>,
    /// What was recorded again, in words.
    pub recovered: Vec<String>,
    /// What could not be recovered, in words.
    pub lost: Vec<String>,
    /// The problems the repair acknowledged.
    pub acknowledged: Vec<JournalProblem>,
}

fn recovered_completion(
    c: &RecoverableBackup,
    m: &Manifest,
    sizes: &HashMap<ObjectId, u64>,
    why: String,
) -> BackupCompleted {
    let objects: HashSet<&ObjectId> = m.object_ids().collect();
    BackupCompleted {
        backup_id: m.backup_id.clone(),
        kind: m.kind.clone(),
        manifest: c
            .manifest_id
            .expect("an assessed completion names its manifest"),
        logical_bytes: m.logical_size(),
        // Not known any more: what the backup wrote itself.
        new_bytes: 0,
        new_objects: 0,
        objects: objects.len() as u64,
        reused_objects: objects.len() as u64,
        duration_ms: (m.finished_ms - m.started_ms).max(0) as u64,
        stored_bytes: objects.iter().filter_map(|id| sizes.get(id)).sum(),
        counts: super::ingest::counts_of(m),
        recovered: Some(why),
    }
}

/// Repairs the journal: records what the store proves, then acknowledges
/// every problem found. With nothing to do, appends nothing.
pub async fn repair(store: &Store, repaired_by: &str) -> Result<RepairReport> {
    let a = assess(store).await?;
    let mut report = RepairReport::default();
    if !a.needs_repair() {
        return Ok(report);
    }
    let repair_id = super::ingest::new_backup_id();
    let sizes: HashMap<ObjectId, u64> = if a.completions.is_empty() {
        HashMap::new()
    } else {
        super::index::list_object_ids(store)
            .await?
            .into_iter()
            .collect()
    };
    for c in &a.completions {
        let Some(m) = &c.loaded else { continue };
        let why = match c.lost_in {
            Some(seq) => format!(
                "recovered by journal repair {repair_id} from its intact manifest: its completion record \
                 was lost (probably journal record {seq})"
            ),
            None => format!(
                "recovered by journal repair {repair_id} from its intact manifest: its completion was never \
                 recorded (its process stopped after writing the manifest) or its record was lost"
            ),
        };
        let ev = recovered_completion(c, m, &sizes, why);
        report
            .appended
            .push(journal::append(store, Event::BackupCompleted(ev)).await?);
        report.recovered.push(format!(
            "backup {} ({}): completed, from its manifest",
            c.backup_id, c.kind
        ));
    }
    for u in a.unfinished.iter().filter(|u| !u.running) {
        let message = match u.lost_in {
            Some(seq) => format!(
                "its end was not recorded (probably lost with journal record {seq}) and it wrote no manifest: \
                 it never completed, and nothing of it is visible; recorded as failed by journal repair {repair_id}"
            ),
            None => format!(
                "it never ended (its process stopped) and wrote no manifest: nothing of it is visible; \
                 recorded as failed by journal repair {repair_id}"
            ),
        };
        let ev = BackupFailed {
            backup_id: u.backup_id.clone(),
            kind: u.kind.clone(),
            stage: "interrupted".into(),
            message,
            duration_ms: 0,
        };
        report
            .appended
            .push(journal::append(store, Event::BackupFailed(ev)).await?);
        report.recovered.push(format!(
            "backup {} ({}): failed, interrupted (it never completed)",
            u.backup_id, u.kind
        ));
    }
    for (bid, mid) in &a.manifests_missing {
        report.lost.push(format!(
            "backup {bid}: completed, but its manifest {mid} is missing: it cannot be restored \
             (if it was forgotten, the record saying so is lost)"
        ));
    }
    report.lost.extend(
        a.lost
            .iter()
            .filter(|l| l.contains("nothing in the store tells"))
            .cloned(),
    );
    if !a.problems.is_empty() {
        let ev = JournalRepaired {
            repair_id: repair_id.clone(),
            problems: a
                .problems
                .iter()
                .map(|p| RepairedRecord {
                    seq: p.seq,
                    through: p.through,
                    problem: p.kind.as_str().to_string(),
                    file_hash: p.file_hash,
                })
                .collect(),
            recovered: report.recovered.clone(),
            lost: report.lost.clone(),
            repaired_by: repaired_by.to_string(),
        };
        report
            .appended
            .push(journal::append(store, Event::JournalRepaired(ev)).await?);
        report.acknowledged = a.problems.clone();
    }
    report.repair_id = Some(repair_id);
    Ok(report)
}

/// A backup whose session was found stale and recorded.
#[derive(Debug, Clone, Serialize)]
pub struct Settled {
    pub backup_id: String,
    /// `completed` (its manifest was written) or `failed`.
    pub recorded_as: String,
    pub seq: u64,
}

/// Records the backups whose sessions stopped without finishing (their lock
/// is stale: its process is gone, or its heartbeat stopped), then removes
/// their locks. Cheap when there is none: one listing of `locks/`.
pub async fn settle_interrupted(store: &Store) -> Result<Vec<Settled>> {
    let locks = lock::list_locks(store).await?;
    let stale: Vec<&LockInfo> = locks
        .iter()
        .filter(|l| !l.live && l.kind == "backup")
        .collect();
    if stale.is_empty() {
        return Ok(vec![]);
    }
    let replay = journal::replay(store).await?;
    let k = known(&replay);
    let mut out = Vec::new();
    for l in stale {
        if let Some(s) = settle_one(store, l, &k).await? {
            out.push(s);
        }
        // Recorded (or nothing to record): the lock has served its purpose
        // (removed only if it is still stale).
        lock::remove_stale_session(store, &l.path).await?;
    }
    Ok(out)
}

async fn settle_one(store: &Store, l: &LockInfo, k: &Known) -> Result<Option<Settled>> {
    let Some(bid) = &l.backup_id else {
        return Ok(None);
    };
    if k.ended.contains(bid) {
        return Ok(None);
    }
    let last_sign = super::check::fmt_time(l.heartbeat_ms);
    // Its manifest may be written: the process stopped before recording it.
    // That holds for a session the journal never heard start (a raw
    // ingest) too: its manifest is the proof.
    for mid in store.list_manifest_ids().await? {
        if k.completed_manifests.contains_key(&mid) || k.forgotten_manifests.contains(&mid) {
            continue;
        }
        let Ok(m) = store.read_manifest(&mid).await else {
            continue;
        };
        if &m.backup_id != bid {
            continue;
        }
        let sizes: HashMap<ObjectId, u64> = super::index::list_object_ids(store)
            .await?
            .into_iter()
            .collect();
        let c = RecoverableBackup {
            backup_id: bid.clone(),
            kind: m.kind.clone(),
            manifest: mid.to_hex(),
            started_ms: m.started_ms,
            finished_ms: m.finished_ms,
            lost_in: None,
            manifest_id: Some(mid),
            loaded: None,
        };
        let why = format!(
            "recovered from its intact manifest: its process ({}) stopped after writing the manifest and \
             before recording it (last sign of life {last_sign})",
            l.holder
        );
        let seq = journal::append(
            store,
            Event::BackupCompleted(recovered_completion(&c, &m, &sizes, why)),
        )
        .await?;
        tracing::warn!(
            "backup {bid} was interrupted after writing its manifest; recorded it as completed"
        );
        return Ok(Some(Settled {
            backup_id: bid.clone(),
            recorded_as: "completed".into(),
            seq,
        }));
    }
    let Some((_, started_ms, kind)) = k.started.get(bid) else {
        // A session the journal never heard of (a raw ingest) that wrote no
        // manifest: nothing of it is visible, nothing to record.
        return Ok(None);
    };
    let ev = BackupFailed {
        backup_id: bid.clone(),
        kind: kind.clone(),
        stage: "interrupted".into(),
        message: format!(
            "the backup's process ({}) stopped before it finished (killed, crashed, or the machine went down; \
             last sign of life {last_sign}); nothing of it is visible, and `n8n-ark gc` frees what it wrote",
            l.holder
        ),
        duration_ms: (l.heartbeat_ms - started_ms).max(0) as u64,
    };
    let seq = journal::append(store, Event::BackupFailed(ev)).await?;
    tracing::warn!("backup {bid} was interrupted; recorded it as failed");
    Ok(Some(Settled {
        backup_id: bid.clone(),
        recorded_as: "failed".into(),
        seq,
    }))
}
