//! The journal: append, replay and verification of the hash chain.
//!
//! Appending claims the next sequence number with an exclusive create, so two
//! writers can never both own one number, on a local disk, NFS or object storage.
//!
//! Replay reads every record and verifies each one on its own (frame checksum;
//! in an encrypted store, authentication bound to its sequence number and its
//! predecessor's hash) and the links between neighbours. A damaged, missing or
//! misplaced record is reported with what it affects and never silently
//! accepted, but it does not hide the intact records after it: one bad file
//! loses one event, not the journal. `n8n-ark repair journal` records what the
//! store still proves and acknowledges the damage with a `JournalRepaired`
//! record; replay then reports the acknowledged problems as repaired.
use super::error::{BackendError, Result, StoreError};
use super::{host_name, now_ms, Store, JOURNAL};
use bytes::Bytes;
use serde::Serialize;
use std::collections::HashMap;
use store_format::journal::{JournalRecord, GENESIS};
use store_format::{Event, FormatError};

/// A claim (an empty record file) older than this is taken as abandoned by a
/// crashed writer and may be set aside by the next one.
const ABANDONED_CLAIM_MS: i64 = 120_000;
/// An unfinished claim at least this old is completed with the pending
/// record its writer left (its writer, if it is only slow, publishes the very
/// same bytes). Younger, its writer is almost surely between its two system
/// calls, and another writer's pending record for the same number, made an
/// instant ago, may not show in a listing yet: completing then could publish
/// the wrong writer's record (section 10 of the SPEC).
const COMPLETE_CLAIM_AFTER_MS: i64 = 5_000;
/// Below this age an unfinished claim may be completed; kept well under
/// [`ABANDONED_CLAIM_MS`] so that completing and setting aside never act on
/// the same claim.
const COMPLETE_CLAIM_MS: i64 = 100_000;
/// Pending records older than this, for a number that is published, are
/// left-overs of writers that stopped; the next append removes them.
const STALE_PENDING_MS: i64 = 2 * ABANDONED_CLAIM_MS;
/// Name prefix of a writer's complete record, written before it claims its
/// number: `journal/pending-<seq as 20 digits>-<32 hex>`.
const PENDING_PREFIX: &str = "pending-";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The last record is cut short (its file is shorter than its frame says).
    TornTail,
    /// A record file that is not a valid record (damaged: bit flips, garbage,
    /// a cut in the middle of the journal).
    Corrupt,
    /// One or more sequence numbers are missing.
    Gap,
    /// A record's `prev` is not the hash of the intact record before it.
    ChainBroken,
    /// A record file holds another sequence number than its name.
    Misnumbered,
    /// A sequence number before the last was claimed but never written.
    UnfinishedClaim,
    /// A record that does not open under the store's key for its place
    /// (tampered with, or copied from elsewhere: a replay).
    Tampered,
}

impl ProblemKind {
    /// The name a `JournalRepaired` record gives it (SPEC §9).
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::TornTail => "torn",
            ProblemKind::Corrupt => "damaged",
            ProblemKind::Gap => "missing",
            ProblemKind::ChainBroken => "chain_broken",
            ProblemKind::Misnumbered => "misnumbered",
            ProblemKind::UnfinishedClaim => "unfinished_claim",
            ProblemKind::Tampered => "tampered",
        }
    }

    /// Whether the record's event is lost (as opposed to a record that is
    /// intact but does not link to its predecessor).
    pub fn loses_event(self) -> bool {
        !matches!(self, ProblemKind::ChainBroken)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct JournalProblem {
    /// The first sequence number concerned.
    pub seq: u64,
    /// The last one (a gap can span several numbers).
    pub through: u64,
    pub kind: ProblemKind,
    pub message: String,
    /// BLAKE3-256 of the file's bytes as read (none for a missing file or an
    /// empty claim): a repair acknowledges the problem for exactly these bytes.
    #[serde(skip)]
    pub file_hash: Option<[u8; 32]>,
    /// The `JournalRepaired` record that acknowledged this problem, if any.
    pub repaired_by: Option<u64>,
    /// When the neighbouring intact records were written: the lost event was
    /// written between these times (ms; none at either end of the journal).
    pub written_after_ms: Option<i64>,
    pub written_before_ms: Option<i64>,
}

impl JournalProblem {
    /// `record 3` or `records 3-7`.
    pub fn records(&self) -> String {
        if self.through > self.seq {
            format!("records {}-{}", self.seq, self.through)
        } else {
            format!("record {}", self.seq)
        }
    }

    /// Whether a `JournalRepaired` entry acknowledges exactly this problem.
    pub fn matches(&self, r: &store_format::event::RepairedRecord) -> bool {
        // A cut-short last record is "torn" while it is last and "damaged"
        // once records follow it: the same problem.
        fn class(kind: &str) -> &str {
            if kind == "torn" {
                "damaged"
            } else {
                kind
            }
        }
        r.seq == self.seq
            && r.through == self.through
            && class(&r.problem) == class(self.kind.as_str())
            && r.file_hash == self.file_hash
    }
}

#[derive(Debug, Default)]
pub struct Replay {
    /// Every intact record, in order (those after a problem included).
    pub records: Vec<JournalRecord>,
    /// The hash of each record's file bytes, in the same order.
    pub hashes: Vec<[u8; 32]>,
    /// Every problem found, in order of sequence number, repaired ones included.
    pub problems: Vec<JournalProblem>,
    /// The first problem that no `JournalRepaired` record acknowledges.
    pub problem: Option<JournalProblem>,
    /// Hash of the last non-empty record file's bytes, intact or not: what
    /// the next append chains to.
    pub tail_hash: [u8; 32],
    /// The highest sequence number present (including damaged or claimed files).
    pub last_seq: u64,
    /// The last file is a claim that was never written: an append that did not
    /// happen (its writer stopped, or is publishing right now). Not damage: the
    /// next append completes it.
    pub unfinished_tail: Option<u64>,
}

impl Replay {
    /// Problems no repair has acknowledged.
    pub fn unrepaired(&self) -> impl Iterator<Item = &JournalProblem> {
        self.problems.iter().filter(|p| p.repaired_by.is_none())
    }

    /// Intact records and problems, in order of sequence number.
    pub fn entries(&self) -> Vec<Entry<'_>> {
        let mut out = Vec::with_capacity(self.records.len() + self.problems.len());
        let (mut r, mut p) = (0, 0);
        while r < self.records.len() || p < self.problems.len() {
            let take_record = match (self.records.get(r), self.problems.get(p)) {
                // A chain break is reported at the record it concerns, which
                // is itself intact: the problem first, then the record.
                (Some(rec), Some(pr)) => rec.seq < pr.seq,
                (Some(_), None) => true,
                _ => false,
            };
            if take_record {
                out.push(Entry::Record(&self.records[r], &self.hashes[r]));
                r += 1;
            } else {
                out.push(Entry::Problem(&self.problems[p]));
                p += 1;
            }
        }
        out
    }
}

/// One step of a replay, in order.
#[derive(Debug, Clone, Copy)]
pub enum Entry<'a> {
    Record(&'a JournalRecord, &'a [u8; 32]),
    Problem(&'a JournalProblem),
}

struct Listing {
    /// (seq, size, modified_ms) of every record file, sorted.
    records: Vec<(u64, u64, i64)>,
    /// (path, seq, modified_ms) of every pending record.
    pending: Vec<(String, u64, i64)>,
}

async fn list_journal(store: &Store) -> Result<Listing> {
    let mut records = Vec::new();
    let mut pending = Vec::new();
    for e in store.backend().list(JOURNAL).await? {
        let name = &e.path[JOURNAL.len()..];
        if let Some(s) = JournalRecord::parse_file_name(name) {
            records.push((s, e.size, e.modified_ms));
        } else if let Some(s) = name
            .strip_prefix(PENDING_PREFIX)
            .and_then(|r| r.get(..20))
            .and_then(JournalRecord::parse_file_name)
        {
            pending.push((e.path.clone(), s, e.modified_ms));
        }
    }
    records.sort();
    Ok(Listing { records, pending })
}

/// The highest sequence number of a record file in the journal (0 for none),
/// from a listing alone: whether anything was appended since a known point.
pub async fn last_seq(store: &Store) -> Result<u64> {
    Ok(list_journal(store)
        .await?
        .records
        .last()
        .map(|r| r.0)
        .unwrap_or(0))
}

fn path_of(seq: u64) -> String {
    format!("{JOURNAL}{}", JournalRecord::file_name(seq))
}

/// What the replay knows of the file before the one being read.
#[derive(Clone, Copy)]
enum Before {
    /// An intact record (or the genesis / the reader's own prefix) with this hash.
    Intact([u8; 32]),
    /// A damaged or misplaced file with these bytes' hash: a record appended
    /// after the damage chains to it as it is.
    Damaged,
    /// No file (a gap, an empty claim), or a prefix the reader cannot vouch for.
    Unknown,
}

/// Reads the whole journal and verifies every record and every link. Never
/// drops or accepts a damaged record silently: each problem is reported, and
/// the intact records around it are all returned.
pub async fn replay(store: &Store) -> Result<Replay> {
    replay_from(store, 0, Some(GENESIS)).await
}

/// Reads the records after `after` (whose file hashes to `after_hash`; 0 and
/// [`GENESIS`] for the whole journal), verifying that the first one chains to
/// it: how a reader that already holds a prefix (the catalog) catches up.
pub async fn replay_after(store: &Store, after: u64, after_hash: [u8; 32]) -> Result<Replay> {
    replay_from(store, after, Some(after_hash)).await
}

/// As [`replay_after`]; `None` when the record at `after` is not intact (its
/// successor's link cannot be checked).
pub async fn replay_from(
    store: &Store,
    after: u64,
    after_hash: Option<[u8; 32]>,
) -> Result<Replay> {
    let listing = list_journal(store).await?;
    let seqs: Vec<_> = listing
        .records
        .into_iter()
        .filter(|s| s.0 > after)
        .collect();
    let mut out = Replay {
        tail_hash: after_hash.unwrap_or(GENESIS),
        last_seq: seqs.last().map(|s| s.0).unwrap_or(after),
        ..Default::default()
    };
    let mut before = match after_hash {
        Some(h) => Before::Intact(h),
        None => Before::Unknown,
    };
    // When the last intact record before the current position was written.
    let mut last_time: Option<i64> = None;
    // Problems waiting for the time of the next intact record.
    let mut open: Vec<usize> = Vec::new();
    let mut expect = after + 1;
    let n = seqs.len();
    let problem = |out: &mut Replay,
                   open: &mut Vec<usize>,
                   last_time: Option<i64>,
                   seq: u64,
                   through: u64,
                   kind: ProblemKind,
                   message: String,
                   file_hash: Option<[u8; 32]>| {
        out.problems.push(JournalProblem {
            seq,
            through,
            kind,
            message,
            file_hash,
            repaired_by: None,
            written_after_ms: last_time,
            written_before_ms: None,
        });
        open.push(out.problems.len() - 1);
    };
    for (i, (seq, size, _)) in seqs.into_iter().enumerate() {
        let is_last = i + 1 == n;
        if seq != expect {
            let message = if seq - 1 > expect {
                format!(
                    "records {expect}-{} are missing (the next present is {seq})",
                    seq - 1
                )
            } else {
                format!("record {expect} is missing (the next present is {seq})")
            };
            problem(
                &mut out,
                &mut open,
                last_time,
                expect,
                seq - 1,
                ProblemKind::Gap,
                message,
                None,
            );
            before = Before::Unknown;
        }
        expect = seq + 1;
        let bytes = match store.backend().get(&path_of(seq)).await {
            Ok(b) => b,
            Err(BackendError::NotFound { .. }) => {
                let message = format!("record {seq} vanished while it was being read");
                problem(
                    &mut out,
                    &mut open,
                    last_time,
                    seq,
                    seq,
                    ProblemKind::Gap,
                    message,
                    None,
                );
                before = Before::Unknown;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if bytes.is_empty() {
            if is_last && size == 0 {
                out.unfinished_tail = Some(seq);
                break;
            }
            let message = format!(
                "record {seq} was claimed but never written (a writer stopped between claim and publish)"
            );
            problem(
                &mut out,
                &mut open,
                last_time,
                seq,
                seq,
                ProblemKind::UnfinishedClaim,
                message,
                None,
            );
            before = Before::Unknown;
            continue;
        }
        let hash = JournalRecord::hash_of_encoded(&bytes);
        out.tail_hash = hash;
        let rec = match JournalRecord::decode_in(&bytes, store.keys()) {
            Ok(r) => r,
            Err(e) => {
                let (kind, message) = describe_bad_record(seq, &bytes, is_last, &e);
                problem(
                    &mut out,
                    &mut open,
                    last_time,
                    seq,
                    seq,
                    kind,
                    message,
                    Some(hash),
                );
                before = Before::Damaged;
                continue;
            }
        };
        if rec.seq != seq {
            let message = format!(
                "file {} holds record {}, not {seq} (moved or copied from another place)",
                path_of(seq),
                rec.seq
            );
            problem(
                &mut out,
                &mut open,
                last_time,
                seq,
                seq,
                ProblemKind::Misnumbered,
                message,
                Some(hash),
            );
            before = Before::Damaged;
            continue;
        }
        if let Before::Intact(h) = before {
            if rec.prev != h {
                let message = format!(
                    "record {seq} does not follow record {}: the hash chain is broken (a record was replaced, \
                     or this one was written for another journal)",
                    seq - 1
                );
                problem(
                    &mut out,
                    &mut open,
                    last_time,
                    seq,
                    seq,
                    ProblemKind::ChainBroken,
                    message,
                    Some(hash),
                );
            }
        }
        // After a damaged record the link cannot be checked: a record
        // appended after the damage names the damaged bytes, one written
        // before it names the record as it was; either is the damage's
        // consequence, already reported.
        for p in open.drain(..) {
            out.problems[p].written_before_ms = Some(rec.time_ms);
        }
        last_time = Some(rec.time_ms);
        before = Before::Intact(hash);
        out.hashes.push(hash);
        out.records.push(rec);
    }
    // Problems acknowledged by a later repair, for exactly the bytes found.
    let repairs: Vec<(u64, &store_format::event::JournalRepaired)> = out
        .records
        .iter()
        .filter_map(|r| match &r.event {
            Event::JournalRepaired(e) => Some((r.seq, e)),
            _ => None,
        })
        .collect();
    let mut acknowledged: Vec<Option<u64>> = Vec::with_capacity(out.problems.len());
    for p in &out.problems {
        acknowledged.push(
            repairs
                .iter()
                .find(|(rseq, e)| *rseq > p.seq && e.problems.iter().any(|r| p.matches(r)))
                .map(|(rseq, _)| *rseq),
        );
    }
    for (p, by) in out.problems.iter_mut().zip(acknowledged) {
        p.repaired_by = by;
    }
    out.problem = out
        .problems
        .iter()
        .find(|p| p.repaired_by.is_none())
        .cloned();
    Ok(out)
}

/// What a record file that does not decode is, in words an operator can use.
fn describe_bad_record(
    seq: u64,
    bytes: &[u8],
    is_last: bool,
    e: &FormatError,
) -> (ProblemKind, String) {
    let file = path_of(seq);
    match e {
        FormatError::AuthenticationFailed => (
            ProblemKind::Tampered,
            format!(
                "record {seq} (file {file}) failed authentication: tampered with, or replayed from another place \
                 in the journal; its event is not trusted"
            ),
        ),
        FormatError::Truncated { .. } if is_last => (
            ProblemKind::TornTail,
            format!(
                "record {seq}, the last one, is cut short (file {file}, {} bytes): {e}; its event is lost",
                bytes.len()
            ),
        ),
        FormatError::UnsupportedVersion { .. } => (
            ProblemKind::Corrupt,
            format!("record {seq} (file {file}) cannot be read by this n8n-ark: {e}"),
        ),
        _ => (
            ProblemKind::Corrupt,
            format!(
                "record {seq}{} is damaged (file {file}, {} bytes): {e}; its event is lost",
                if is_last { ", the last one," } else { "" },
                bytes.len()
            ),
        ),
    }
}

/// Appends one event. Returns its sequence number.
///
/// The record goes first to `journal/pending-<seq>-<random>` (durable), then
/// is published under its number by an exclusive create, then the pending
/// copy is removed. A writer that stops between claiming the number and
/// publishing leaves an empty claim *and* its complete record: the next
/// writer publishes that record for it (the same bytes the stopped writer
/// would have published) instead of waiting for the claim to age.
///
/// A damaged last record does not stop the journal: the new record chains to
/// the damaged file's bytes as they are (its event is lost either way; replay
/// and `check` report it, and `repair journal` acknowledges it).
pub async fn append(store: &Store, event: Event) -> Result<u64> {
    let writer = format!("{}:{}", host_name(), std::process::id());
    let deadline = std::time::Instant::now()
        + std::time::Duration::from_millis(ABANDONED_CLAIM_MS as u64 + 60_000);
    let mut attempt = 0u64;
    let mut warned_wait = false;
    while std::time::Instant::now() < deadline {
        attempt += 1;
        let listing = list_journal(store).await?;
        let (prev, next) = match listing.records.last() {
            None => (GENESIS, 1),
            Some(&(seq, _, modified)) => {
                let bytes = match store.backend().get(&path_of(seq)).await {
                    Ok(b) => b,
                    Err(e) if e.is_not_found() => continue,
                    Err(e) => return Err(e.into()),
                };
                if bytes.is_empty() {
                    let age = now_ms() - modified;
                    if (COMPLETE_CLAIM_AFTER_MS..COMPLETE_CLAIM_MS).contains(&age)
                        && complete_claim(store, seq, &listing.pending).await?
                    {
                        continue;
                    }
                    if age < ABANDONED_CLAIM_MS {
                        if !warned_wait && attempt > 20 {
                            warned_wait = true;
                            tracing::warn!(
                                "journal record {seq} was claimed {} s ago by a writer that has not published it \
                                 and left no pending record; waiting until it is {} s old before taking it over",
                                age / 1000,
                                ABANDONED_CLAIM_MS / 1000
                            );
                        }
                        // Another writer is publishing this record right now.
                        tokio::time::sleep(std::time::Duration::from_millis(
                            (5 * attempt).min(500),
                        ))
                        .await;
                        continue;
                    }
                    set_aside_abandoned(store, seq, &listing.pending).await?;
                    continue;
                }
                if let Err(e) = JournalRecord::decode_in(&bytes, store.keys()) {
                    let (_, what) = describe_bad_record(seq, &bytes, true, &e);
                    tracing::warn!(
                        "{what}; appending after it as it is. Run `n8n-ark check`, then `n8n-ark repair journal`"
                    );
                }
                (JournalRecord::hash_of_encoded(&bytes), seq + 1)
            }
        };
        let rec = JournalRecord {
            seq: next,
            prev,
            time_ms: now_ms(),
            writer: writer.clone(),
            event: event.clone(),
        };
        let bytes = Bytes::from(match store.keys() {
            Some(k) => rec.encode_sealed(k, &crate::crypto::random_nonce()),
            None => rec.encode(),
        });
        let pending = format!(
            "{JOURNAL}{PENDING_PREFIX}{}-{}",
            JournalRecord::file_name(next),
            uuid::Uuid::new_v4().simple()
        );
        // The pending copy is an aid to the next writer, not a condition of
        // this append: on a full disk (where recording a failure matters
        // most) the record goes without it.
        let mut pending_written = match store.backend().put(&pending, bytes.clone()).await {
            Ok(()) => match store.backend().sync().await {
                Ok(()) => true,
                Err(e) => {
                    tracing::debug!("journal: pending record {pending} not made durable: {e}");
                    let _ = store.backend().delete(&pending).await;
                    false
                }
            },
            Err(e) => {
                tracing::debug!("journal: pending record {pending} not written: {e}");
                false
            }
        };
        let mut res = super::backend::create_exclusive_once(
            store.backend().as_ref(),
            &path_of(next),
            bytes.clone(),
        )
        .await;
        if pending_written && matches!(res, Err(BackendError::NoSpace { .. })) {
            // The pending copy took the room the record needed: the record
            // matters, the copy does not.
            let _ = store.backend().delete(&pending).await;
            pending_written = false;
            res = super::backend::create_exclusive_once(
                store.backend().as_ref(),
                &path_of(next),
                bytes,
            )
            .await;
        }
        // The pending copy has served its purpose either way (a left-over is
        // harmless: it is removed by a later append).
        if pending_written {
            let _ = store.backend().delete(&pending).await;
        }
        match res {
            Ok(()) => {
                remove_stale_pending(store, next, &listing.pending).await;
                return Ok(next);
            }
            Err(BackendError::AlreadyExists { .. }) => {
                tokio::task::yield_now().await;
                continue;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Journal(format!(
        "could not claim a sequence number in {attempt} attempts (heavy contention, or a claim that never completes)"
    )))
}

/// The one pending record its writer left for `seq` that decodes as record
/// `seq` and chains to the record before it (when that one is intact).
async fn pending_record_for(
    store: &Store,
    seq: u64,
    pending: &[(String, u64, i64)],
) -> Result<Option<(String, Bytes)>> {
    let before = if seq == 1 {
        Some(GENESIS)
    } else {
        match store.backend().get(&path_of(seq - 1)).await {
            Ok(b) if JournalRecord::decode_in(&b, store.keys()).is_ok() => {
                Some(JournalRecord::hash_of_encoded(&b))
            }
            Ok(_) => None,
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        }
    };
    let mut found: HashMap<[u8; 32], (String, Bytes)> = HashMap::new();
    for (path, s, _) in pending.iter().filter(|p| p.1 == seq) {
        debug_assert_eq!(*s, seq);
        let bytes = match store.backend().get(path).await {
            Ok(b) => b,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.into()),
        };
        let Ok(rec) = JournalRecord::decode_in(&bytes, store.keys()) else {
            continue;
        };
        if rec.seq != seq || before.is_some_and(|h| h != rec.prev) {
            continue;
        }
        found.insert(
            JournalRecord::hash_of_encoded(&bytes),
            (path.clone(), bytes),
        );
    }
    // Two different pending records for one number: two writers tried it and
    // one of them stopped before removing its copy. Which one claimed the
    // number is unknown: publish neither.
    Ok(if found.len() == 1 {
        found.into_values().next()
    } else {
        None
    })
}

/// Completes an unfinished claim at `seq` with its writer's pending record.
/// Returns whether it did.
async fn complete_claim(store: &Store, seq: u64, pending: &[(String, u64, i64)]) -> Result<bool> {
    let Some((path, bytes)) = pending_record_for(store, seq, pending).await? else {
        return Ok(false);
    };
    // Replacing the empty claim is safe: the claim is young, so nobody sets
    // it aside meanwhile, and its writer, if it is only slow, renames the
    // same bytes over it.
    store.backend().put(&path_of(seq), bytes).await?;
    store.backend().sync().await?;
    tracing::warn!(
        "journal record {seq} was claimed by a writer that stopped before publishing it; \
         published the record it left ({path})"
    );
    let _ = store.backend().delete(&path).await;
    Ok(true)
}

/// Sets an abandoned claim aside (only one writer's rename finds it), then
/// publishes its writer's pending record there if one is left, by an
/// exclusive create as any append.
async fn set_aside_abandoned(
    store: &Store,
    seq: u64,
    pending: &[(String, u64, i64)],
) -> Result<()> {
    tracing::warn!(
        "journal record {seq} was claimed and abandoned by a stopped writer; reclaiming it"
    );
    let aside = format!(
        "{JOURNAL}abandoned-{seq:020}-{}",
        uuid::Uuid::new_v4().simple()
    );
    match store.backend().rename(&path_of(seq), &aside).await {
        Ok(()) => {
            // The stalled writer may have published its record just
            // before our rename: then put it back where it belongs.
            let moved = store.backend().get(&aside).await?;
            if !moved.is_empty() {
                match store.backend().create_exclusive(&path_of(seq), moved).await {
                    Ok(()) => {
                        store.backend().delete(&aside).await?;
                    }
                    Err(BackendError::AlreadyExists { .. }) => {
                        tracing::error!(
                            "journal record {seq} was published late and its place is taken; \
                             it is kept as {aside} for the operator"
                        );
                    }
                    Err(e) => return Err(e.into()),
                }
            } else if let Some((path, bytes)) = pending_record_for(store, seq, pending).await? {
                match super::backend::create_exclusive_once(
                    store.backend().as_ref(),
                    &path_of(seq),
                    bytes,
                )
                .await
                {
                    Ok(()) => {
                        tracing::warn!(
                            "journal record {seq}: published the record its writer left ({path})"
                        );
                        let _ = store.backend().delete(&path).await;
                    }
                    Err(BackendError::AlreadyExists { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            store.backend().sync().await?;
        }
        Err(BackendError::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// Removes pending records left by writers that stopped, for numbers that
/// are published. Best effort: a left-over is harmless.
async fn remove_stale_pending(store: &Store, published: u64, pending: &[(String, u64, i64)]) {
    let now = now_ms();
    for (path, seq, modified) in pending {
        if *seq <= published && now - modified > STALE_PENDING_MS {
            let _ = store.backend().delete(path).await;
        }
    }
}
