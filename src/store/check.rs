//! `check`: the store's structure (config, journal chain, manifests, every
//! referenced object present) and, with `read_data`, every object's content.
use super::error::Result;
use super::index::list_object_ids;
use super::{journal, object_path, Store, TRASH};
use futures::StreamExt;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use store_format::{Event, ObjectId};

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// `journal`, `manifest`, `missing_object`, `damaged_object`, `orphan_manifest`, ...
    pub kind: String,
    pub message: String,
    /// The object or file concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// Backups that depend on it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backups: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct CheckReport {
    pub store: String,
    pub read_data: bool,
    pub journal_records: u64,
    pub backups: u64,
    pub objects: u64,
    pub objects_read: u64,
    pub bytes_read: u64,
    pub errors: Vec<Problem>,
    pub warnings: Vec<Problem>,
    /// Journal problems a repair acknowledged: the events they held are
    /// lost, and what the store proved was recorded again.
    pub repaired: Vec<Problem>,
    /// The journal problems found, for the catalog to remember.
    #[serde(skip)]
    pub journal_problems: Vec<super::journal::JournalProblem>,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }
}

const TAMPERED: &str = "authentication failed";

pub fn fmt_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

fn problem(kind: &str, message: String, object: Option<String>, backups: Vec<String>) -> Problem {
    Problem {
        kind: kind.into(),
        message,
        object,
        backups,
    }
}

pub async fn run(store: &Store, read_data: bool) -> Result<CheckReport> {
    let mut r = CheckReport {
        store: store.location(),
        read_data,
        ..Default::default()
    };

    // Journal: every record and link, what its problems affect, and which
    // manifests completed backups name.
    let replay = journal::replay(store).await?;
    let locks = super::lock::list_locks(store).await?;
    let assessment = super::journal_repair::assess_with(store, &replay, &locks).await?;
    r.journal_records = replay.records.len() as u64;
    for p in &assessment.problems {
        let affected = assessment.affected_by(p);
        let mut message = p.message.clone();
        if p.kind.loses_event() {
            if affected.is_empty() {
                message.push_str("; nothing in the store tells what event it held");
            } else {
                message.push_str(&format!("; it held {}", affected.join("; ")));
            }
        }
        message.push_str(". Run `n8n-ark repair journal` to record what the store still proves and acknowledge it");
        r.errors.push(problem(
            "journal",
            message,
            Some(p.records().replace("record", "journal record")),
            assessment.backups_affected_by(p),
        ));
    }
    for p in &assessment.repaired {
        r.repaired.push(problem(
            "journal",
            format!(
                "{} (repaired by journal record {})",
                p.message,
                p.repaired_by.unwrap_or_default()
            ),
            Some(p.records().replace("record", "journal record")),
            vec![],
        ));
    }
    if let Some(seq) = replay.unfinished_tail {
        r.warnings.push(problem(
            "journal",
            format!("journal record {seq} was claimed but not written (an append was interrupted, or is in progress); the next append completes it"),
            Some(format!("journal record {seq}")),
            vec![],
        ));
    }
    let damaged = !assessment.problems.is_empty();
    r.journal_problems = replay.problems.clone();
    for c in &assessment.completions {
        if c.lost_in.is_some() {
            continue; // named with the journal problem above
        }
        // Its session lock is still there and its process is gone: it was
        // stopped between writing its manifest and recording it. Nothing is
        // lost; the next backup or gc records it (settling the session).
        if let Some(l) = locks.iter().find(|l| {
            !l.live && l.kind == "backup" && l.backup_id.as_deref() == Some(c.backup_id.as_str())
        }) {
            r.warnings.push(problem(
                "interrupted_backup",
                format!(
                    "backup {} ({}) was stopped after writing its manifest and before recording it (its process,                      {}, is gone; its session lock is still there): it is complete and restorable, gc keeps its                      objects, and the next backup or gc records it as completed; `n8n-ark repair journal` does                      in any case",
                    c.backup_id, c.kind, l.holder
                ),
                Some(format!("manifests/{}", c.manifest)),
                vec![c.backup_id.clone()],
            ));
            continue;
        }
        // An error: a record is missing (the journal's last one deleted or
        // cut, which nothing else shows) or a completion was never recorded.
        r.errors.push(problem(
            "orphan_manifest",
            format!(
                "manifest of backup {} has no completion record: the journal lost it{} (the last records \
                 of a journal can vanish without a trace but this), or its process stopped after writing the \
                 manifest; the backup is complete and restorable, and gc keeps its objects. \
                 `n8n-ark repair journal` records it",
                c.backup_id,
                if damaged { " with the damage above" } else { "" }
            ),
            Some(format!("manifests/{}", c.manifest)),
            vec![c.backup_id.clone()],
        ));
    }
    for u in &assessment.unfinished {
        if u.running {
            continue;
        }
        if u.lost_in.is_some() {
            continue;
        }
        r.warnings.push(problem(
            "unfinished_backup",
            format!(
                "backup {} ({}) started at {} and never ended (its process stopped); it wrote no manifest, \
                 so nothing of it is visible. The next backup or gc records it as failed if its lock is \
                 still there; `n8n-ark repair journal` does in any case",
                u.backup_id,
                u.kind,
                fmt_time(u.started_ms)
            ),
            None,
            vec![u.backup_id.clone()],
        ));
    }
    let mut completed: HashMap<ObjectId, String> = HashMap::new();
    let mut forgotten: HashMap<ObjectId, String> = HashMap::new();
    for rec in &replay.records {
        match &rec.event {
            Event::BackupCompleted(e) => {
                completed.insert(e.manifest, e.backup_id.clone());
            }
            Event::BackupForgotten(e) => {
                completed.remove(&e.manifest);
                forgotten.insert(e.manifest, e.backup_id.clone());
            }
            _ => {}
        }
    }

    // Manifests.
    let manifest_ids = store.list_manifest_ids().await?;
    let mut users: HashMap<ObjectId, Vec<String>> = HashMap::new();
    let mut present_manifests = HashSet::new();
    for mid in &manifest_ids {
        match store.read_manifest(mid).await {
            Ok(m) => {
                present_manifests.insert(*mid);
                r.backups += 1;
                if let Some(bid) = forgotten.get(mid).filter(|_| !completed.contains_key(mid)) {
                    r.warnings.push(problem(
                        "forgotten_manifest",
                        format!("backup {bid} was forgotten but its manifest is still present (interrupted); gc keeps its objects until it is removed"),
                        Some(format!("manifests/{mid}")),
                        vec![bid.clone()],
                    ));
                }
                for id in m.object_ids() {
                    let v = users.entry(*id).or_default();
                    if v.last() != Some(&m.backup_id) {
                        v.push(m.backup_id.clone());
                    }
                }
            }
            Err(e) => r.errors.push(problem(
                "manifest",
                format!("manifest {mid} cannot be read: {e}"),
                Some(format!("manifests/{mid}")),
                completed.get(mid).cloned().into_iter().collect(),
            )),
        }
    }
    for (mid, bid) in &completed {
        if !present_manifests.contains(mid) && !manifest_ids.contains(mid) {
            r.errors.push(problem(
                "missing_manifest",
                format!("backup {bid} completed with manifest {mid}, which is missing"),
                Some(format!("manifests/{mid}")),
                vec![bid.clone()],
            ));
        }
    }

    // Objects: every referenced one present (in objects/ or, pending gc, in trash/).
    let listed = list_object_ids(store).await?;
    r.objects = listed.len() as u64;
    let present: HashSet<ObjectId> = listed.iter().map(|(id, _)| *id).collect();
    let mut in_trash: HashMap<ObjectId, String> = HashMap::new();
    for e in store.backend().list(TRASH).await? {
        if let Some(id) = e
            .path
            .rsplit('/')
            .next()
            .and_then(|n| ObjectId::from_hex(n).ok())
        {
            in_trash.insert(id, e.path);
        }
    }
    let mut missing: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, backups) in &users {
        if !present.contains(id) && !in_trash.contains_key(id) {
            missing.insert(id.to_hex(), backups.clone());
        }
    }
    for (id, backups) in missing {
        r.errors.push(problem(
            "missing_object",
            format!(
                "object {id} is missing; backups that need it: {}",
                backups.join(", ")
            ),
            Some(object_path(&ObjectId::from_hex(&id).unwrap())),
            backups,
        ));
    }

    if read_data {
        let mut to_read: Vec<(ObjectId, String)> = listed
            .iter()
            .map(|(id, _)| (*id, object_path(id)))
            .collect();
        to_read.extend(in_trash.iter().map(|(id, p)| (*id, p.clone())));
        let results: Vec<(ObjectId, String, std::result::Result<u64, String>)> =
            futures::stream::iter(to_read)
                .map(|(id, path)| async move {
                    let codec = store.object_codec().clone();
                    let res = match store.backend().get(&path).await {
                        Ok(bytes) => {
                            let n = bytes.len() as u64;
                            tokio::task::spawn_blocking(move || {
                                codec.decode(&bytes, &id).map(|_| n).map_err(|e| match e {
                                    store_format::FormatError::AuthenticationFailed => {
                                        TAMPERED.to_string()
                                    }
                                    e => e.to_string(),
                                })
                            })
                            .await
                            .unwrap_or_else(|e| Err(e.to_string()))
                        }
                        Err(e) => Err(e.to_string()),
                    };
                    (id, path, res)
                })
                .buffer_unordered(4)
                .collect()
                .await;
        for (id, path, res) in results {
            match res {
                Ok(n) => {
                    r.objects_read += 1;
                    r.bytes_read += n;
                }
                Err(msg) => {
                    let backups = users.get(&id).cloned().unwrap_or_default();
                    let who = if backups.is_empty() {
                        "no backup needs it".to_string()
                    } else {
                        format!("backups that need it: {}", backups.join(", "))
                    };
                    if msg == TAMPERED {
                        r.errors.push(problem(
                            "tampered_object",
                            format!("object {id} failed authentication: tampered with, swapped or planted (not written with this store's key for this id); {who}"),
                            Some(path),
                            backups,
                        ));
                    } else {
                        r.errors.push(problem(
                            "damaged_object",
                            format!("object {id} is damaged ({msg}); {who}"),
                            Some(path),
                            backups,
                        ));
                    }
                }
            }
        }
    }
    Ok(r)
}
