//! The journal: append, replay and verification of the hash chain.
//!
//! Appending claims the next sequence number with an exclusive create, so two
//! writers can never both own one number, on a local disk, NFS or object storage.
use super::error::{BackendError, Result, StoreError};
use super::{host_name, now_ms, Store, JOURNAL};
use bytes::Bytes;
use store_format::journal::{JournalRecord, GENESIS};
use store_format::Event;

/// A claim (an empty record file) older than this is taken as abandoned by a
/// crashed writer and may be completed by the next one.
const ABANDONED_CLAIM_MS: i64 = 120_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// The last record cannot be decoded (cut short or damaged).
    TornTail,
    /// A record before the last one cannot be decoded.
    Corrupt,
    /// A sequence number is missing.
    Gap,
    /// A record's `prev` does not match the previous record.
    ChainBroken,
    /// A record file holds another sequence number than its name.
    Misnumbered,
    /// A sequence number before the last was claimed but never written.
    UnfinishedClaim,
    /// A record that does not open under the store's key for its place
    /// (tampered with, or copied from elsewhere: a replay).
    Tampered,
}

#[derive(Debug, Clone)]
pub struct JournalProblem {
    pub seq: u64,
    pub kind: ProblemKind,
    pub message: String,
}

#[derive(Debug, Default)]
pub struct Replay {
    /// The intact prefix of the journal, in order.
    pub records: Vec<JournalRecord>,
    /// The hash of each record's file bytes, in the same order.
    pub hashes: Vec<[u8; 32]>,
    /// The first problem after that prefix, if any. Nothing after it is trusted.
    pub problem: Option<JournalProblem>,
    /// Hash of the last intact record's bytes.
    pub tail_hash: [u8; 32],
    /// The highest sequence number present (including damaged or claimed files).
    pub last_seq: u64,
    /// The last file is a claim that was never written: an append that did not
    /// happen (its writer stopped, or is publishing right now). Not damage: the
    /// next append completes it.
    pub unfinished_tail: Option<u64>,
}

async fn sequence_numbers(store: &Store) -> Result<Vec<(u64, u64, i64)>> {
    let mut seqs: Vec<(u64, u64, i64)> = store
        .backend()
        .list(JOURNAL)
        .await?
        .into_iter()
        .filter_map(|e| {
            JournalRecord::parse_file_name(&e.path[JOURNAL.len()..])
                .map(|s| (s, e.size, e.modified_ms))
        })
        .collect();
    seqs.sort();
    Ok(seqs)
}

fn path_of(seq: u64) -> String {
    format!("{JOURNAL}{}", JournalRecord::file_name(seq))
}

/// Reads the whole journal and verifies the chain. Never drops or accepts a
/// damaged record silently: the first problem stops the replay and is reported.
pub async fn replay(store: &Store) -> Result<Replay> {
    replay_after(store, 0, GENESIS).await
}

/// Reads the records after `after` (whose file hashes to `after_hash`; 0 and
/// [`GENESIS`] for the whole journal), verifying that the first one chains to
/// it: how a reader that already holds a prefix (the catalog) catches up. A
/// record after `after` that does not chain is reported as
/// [`ProblemKind::ChainBroken`]: the prefix the reader holds is not this
/// journal's.
pub async fn replay_after(store: &Store, after: u64, after_hash: [u8; 32]) -> Result<Replay> {
    let seqs: Vec<_> = sequence_numbers(store)
        .await?
        .into_iter()
        .filter(|s| s.0 > after)
        .collect();
    let mut out = Replay {
        tail_hash: after_hash,
        last_seq: seqs.last().map(|s| s.0).unwrap_or(0),
        ..Default::default()
    };
    let n = seqs.len();
    for (i, (expect, (seq, size, _))) in (after + 1..).zip(seqs).enumerate() {
        let is_last = i + 1 == n;
        if seq != expect {
            out.problem = Some(JournalProblem {
                seq: expect,
                kind: ProblemKind::Gap,
                message: format!("record {expect} is missing (the next present is {seq})"),
            });
            return Ok(out);
        }
        let bytes = match store.backend().get(&path_of(seq)).await {
            Ok(b) => b,
            Err(BackendError::NotFound { .. }) => {
                out.problem = Some(JournalProblem {
                    seq,
                    kind: ProblemKind::Gap,
                    message: format!("record {seq} vanished while reading"),
                });
                return Ok(out);
            }
            Err(e) => return Err(e.into()),
        };
        if bytes.is_empty() && size == 0 && is_last {
            out.unfinished_tail = Some(seq);
            return Ok(out);
        }
        if bytes.is_empty() && size == 0 {
            out.problem = Some(JournalProblem {
                seq,
                kind: ProblemKind::UnfinishedClaim,
                message: format!("record {seq} was claimed but never written (a writer stopped between claim and publish)"),
            });
            return Ok(out);
        }
        let rec = match JournalRecord::decode_in(&bytes, store.keys()) {
            Ok(r) => r,
            Err(store_format::FormatError::AuthenticationFailed) => {
                out.problem = Some(JournalProblem {
                    seq,
                    kind: ProblemKind::Tampered,
                    message: format!(
                        "record {seq} (file {}) failed authentication: tampered with, or replayed from another place in the journal",
                        path_of(seq)
                    ),
                });
                return Ok(out);
            }
            Err(e) => {
                let (kind, what) = if is_last {
                    (ProblemKind::TornTail, "torn tail")
                } else {
                    (ProblemKind::Corrupt, "corrupt record")
                };
                out.problem = Some(JournalProblem {
                    seq,
                    kind,
                    message: format!(
                        "{what} at record {seq} (file {}, {} bytes): {e}",
                        path_of(seq),
                        bytes.len()
                    ),
                });
                return Ok(out);
            }
        };
        if rec.seq != seq {
            out.problem = Some(JournalProblem {
                seq,
                kind: ProblemKind::Misnumbered,
                message: format!("file {} holds record {}", path_of(seq), rec.seq),
            });
            return Ok(out);
        }
        if rec.prev != out.tail_hash {
            out.problem = Some(JournalProblem {
                seq,
                kind: ProblemKind::ChainBroken,
                message: format!(
                    "record {seq} does not follow record {}: the hash chain is broken",
                    seq - 1
                ),
            });
            return Ok(out);
        }
        out.tail_hash = JournalRecord::hash_of_encoded(&bytes);
        out.hashes.push(out.tail_hash);
        out.records.push(rec);
    }
    Ok(out)
}

/// Appends one event. Returns its sequence number.
pub async fn append(store: &Store, event: Event) -> Result<u64> {
    let writer = format!("{}:{}", host_name(), std::process::id());
    let deadline = std::time::Instant::now()
        + std::time::Duration::from_millis(ABANDONED_CLAIM_MS as u64 + 60_000);
    let mut attempt = 0u64;
    while std::time::Instant::now() < deadline {
        attempt += 1;
        let seqs = sequence_numbers(store).await?;
        let (prev, next, abandoned) = match seqs.last() {
            None => (GENESIS, 1, false),
            Some(&(seq, size, modified)) => {
                let bytes = if size == 0 {
                    Bytes::new()
                } else {
                    store.backend().get(&path_of(seq)).await?
                };
                if bytes.is_empty() {
                    if now_ms() - modified < ABANDONED_CLAIM_MS {
                        // Another writer is publishing this record right now.
                        tokio::time::sleep(std::time::Duration::from_millis(
                            (5 * attempt).min(500),
                        ))
                        .await;
                        continue;
                    }
                    // Abandoned claim: complete it with our record, chained to the one before.
                    let prev = if seq == 1 {
                        GENESIS
                    } else {
                        let b = store.backend().get(&path_of(seq - 1)).await?;
                        JournalRecord::decode_in(&b, store.keys()).map_err(|e| {
                            StoreError::Journal(format!("record {} is damaged: {e}", seq - 1))
                        })?;
                        JournalRecord::hash_of_encoded(&b)
                    };
                    (prev, seq, true)
                } else {
                    JournalRecord::decode_in(&bytes, store.keys()).map_err(|e| {
                        StoreError::Journal(format!(
                            "the last record ({seq}) is damaged ({e}); nothing is appended after a damaged record. \
                             Run `n8n-ark check` for details"
                        ))
                    })?;
                    (JournalRecord::hash_of_encoded(&bytes), seq + 1, false)
                }
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
        if abandoned {
            // Move the abandoned claim aside: only one writer's rename finds it,
            // then the sequence number is claimed exclusively as usual.
            tracing::warn!("journal record {next} was claimed and abandoned by a stopped writer; reclaiming it");
            let aside = format!(
                "{JOURNAL}abandoned-{next:020}-{}",
                uuid::Uuid::new_v4().simple()
            );
            match store.backend().rename(&path_of(next), &aside).await {
                Ok(()) => {
                    // The stalled writer may have published its record just
                    // before our rename: then put it back where it belongs.
                    let moved = store.backend().get(&aside).await?;
                    if !moved.is_empty() {
                        match store
                            .backend()
                            .create_exclusive(&path_of(next), moved)
                            .await
                        {
                            Ok(()) => {
                                store.backend().delete(&aside).await?;
                            }
                            Err(BackendError::AlreadyExists { .. }) => {
                                tracing::error!(
                                    "journal record {next} was published late and its place is taken; \
                                     it is kept as {aside} for the operator"
                                );
                            }
                            Err(e) => return Err(e.into()),
                        }
                    }
                    store.backend().sync().await?;
                }
                Err(BackendError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            continue;
        }
        let res =
            super::backend::create_exclusive_once(store.backend().as_ref(), &path_of(next), bytes)
                .await;
        match res {
            Ok(()) => return Ok(next),
            Err(BackendError::AlreadyExists { .. }) => {
                tokio::task::yield_now().await;
                continue;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Journal(format!("could not claim a sequence number in {attempt} attempts (heavy contention, or a claim that never completes)")))
}
