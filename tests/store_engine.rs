//! The store engine against a real local directory: ingest and restore round
//! trips, dedup, the journal, locks, GC (also concurrent with ingest) and check.
mod common;

use common::*;
use n8n_ark::store::gc::{self, GcOptions};
use n8n_ark::store::ingest::{BackupSession, BackupSummary};
use n8n_ark::store::journal::{self, ProblemKind};
use n8n_ark::store::{check, object_path, reader, BackendError, Store};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use store_format::{Event, ItemKind, ObjectId};

async fn backup(store: &Store, items: Vec<(&str, Vec<u8>)>) -> BackupSummary {
    let mut s = BackupSession::begin(store, "test").await.unwrap();
    for (name, data) in items {
        s.add_stream(name, std::io::Cursor::new(data))
            .await
            .unwrap();
    }
    s.commit(BTreeMap::new()).await.unwrap()
}

async fn gc_dry_run(store: &Store) -> gc::GcReport {
    gc::run(
        store,
        &GcOptions {
            dry_run: true,
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn ingest_and_restore_round_trip_random_and_structured_data() {
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(dir.path()).await;
    let random = random_bytes(1, 9 * 1024 * 1024 + 12345);
    let structured = dump(7, 6, 1);
    let tiny = b"{\"name\":\"tiny\"}".to_vec();
    let s = backup(
        &store,
        vec![
            ("random.bin", random.clone()),
            ("db/n8n.dump", structured.clone()),
            ("tiny", tiny.clone()),
            ("empty", vec![]),
        ],
    )
    .await;
    assert!(
        s.chunks > 100,
        "small test chunks: expected many, got {}",
        s.chunks
    );
    assert_eq!(
        s.logical_bytes,
        (random.len() + structured.len() + tiny.len()) as u64
    );
    let back = restore_all(&store, &s.manifest).await;
    assert!(
        back["random.bin"] == random,
        "random data differs after restore"
    );
    assert!(
        back["db/n8n.dump"] == structured,
        "structured data differs after restore"
    );
    assert_eq!(back["tiny"], tiny);
    assert!(back["empty"].is_empty());

    // Streaming cut points equal those of the whole input at once.
    let m = store
        .read_manifest(&ObjectId::from_hex(&s.manifest).unwrap())
        .await
        .unwrap();
    let item = m.items.iter().find(|i| i.name == "db/n8n.dump").unwrap();
    let whole = store.chunker().cuts(&structured);
    let streamed: Vec<usize> = item.chunks.iter().map(|c| c.len as usize).collect();
    assert_eq!(streamed, whole);
    assert_eq!(item.kind, ItemKind::Stream);

    // Structured data compresses; random data is stored as it is.
    let written = s.new_bytes as f64;
    assert!(
        written < (random.len() as f64 + structured.len() as f64 * 0.6),
        "compression did not help: {written}"
    );

    // A blob round-trips as one object.
    let mut sess = BackupSession::begin(&store, "test").await.unwrap();
    let wf = br#"{"id":"wf1","name":"Orders","nodes":[]}"#.to_vec();
    sess.add_blob("workflows/wf1.json", wf.clone())
        .await
        .unwrap();
    let s2 = sess.commit(BTreeMap::new()).await.unwrap();
    let back = restore_all(&store, &s2.manifest).await;
    assert_eq!(back["workflows/wf1.json"], wf);
}

#[tokio::test]
async fn second_backup_of_similar_input_stores_only_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(dir.path()).await;
    let day1 = dump(3, 8, 1);
    let day2 = dump(3, 8, 2);
    let a = backup(&store, vec![("db", day1.clone())]).await;
    let b = backup(&store, vec![("db", day2.clone())]).await;
    assert_eq!(a.reused_objects, 0);
    let reused = (b.chunks - b.new_objects) as f64 / b.chunks as f64;
    // The cut points depend on the store's own chunker key, so the share
    // varies from store to store around 85%; the bytes below are the
    // sharper measure.
    assert!(
        reused > 0.7,
        "day 2 reused only {:.0}% of its chunks",
        reused * 100.0
    );
    assert!(
        b.new_bytes * 5 < a.new_bytes,
        "day 2 wrote {} bytes, day 1 {}: dedup should make day 2 far smaller",
        b.new_bytes,
        a.new_bytes
    );
    // The same input again adds nothing.
    let c = backup(&store, vec![("db", day2.clone())]).await;
    assert_eq!(c.new_objects, 0);
    assert_eq!(c.new_bytes, 0);
    assert_eq!(restore_all(&store, &b.manifest).await["db"], day2);
    assert_eq!(restore_all(&store, &a.manifest).await["db"], day1);
    // A new session sees what earlier ones stored without asking per chunk.
    let s = BackupSession::begin(&store, "test").await.unwrap();
    assert!(s.known_objects() as u64 >= a.new_objects + b.new_objects);
    s.abort().await;
}

#[tokio::test]
async fn journal_chain_is_verified_and_damage_is_reported_never_dropped_nor_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(dir.path()).await;
    for i in 0..4u8 {
        backup(&store, vec![("x", vec![i; 1000])]).await;
    }
    let r = journal::replay(&store).await.unwrap();
    assert_eq!(r.records.len(), 5);
    assert!(r.problem.is_none());
    assert_eq!(
        r.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert!(matches!(r.records[0].event, Event::StoreInitialized(_)));

    // Tear the last record: cut it short, as a crash of a non-atomic writer would.
    let last = dir.path().join("journal").join(format!("{:020}", 5));
    let bytes = std::fs::read(&last).unwrap();
    std::fs::write(&last, &bytes[..bytes.len() / 2]).unwrap();
    let r = journal::replay(&store).await.unwrap();
    assert_eq!(r.records.len(), 4, "the records before it are kept");
    let p = r.problem.expect("a torn tail must be reported");
    assert_eq!(p.kind, ProblemKind::TornTail);
    assert_eq!(p.seq, 5);
    assert!(
        p.message.contains("record 5") && p.message.contains("cut short"),
        "{}",
        p.message
    );
    // The journal goes on after it (one lost event does not stop backups):
    // the next record chains to the damaged bytes as they are.
    let mut s = BackupSession::begin(&store, "test").await.unwrap();
    s.add_stream("y", std::io::Cursor::new(vec![9u8; 100]))
        .await
        .unwrap();
    let committed = s.commit(BTreeMap::new()).await.unwrap();
    assert_eq!(committed.journal_seq, 6);
    let r = journal::replay(&store).await.unwrap();
    assert_eq!(
        r.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 6],
        "every intact record is read, those after the damage too"
    );
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    let p = r.problem.unwrap();
    assert_eq!((p.seq, p.kind), (5, ProblemKind::Corrupt));
    assert!(p.message.contains("record 5 is damaged"), "{}", p.message);
    // ...and check names it, with the backup whose completion it held.
    let rep = check::run(&store, false).await.unwrap();
    assert!(!rep.ok());
    let e = rep
        .errors
        .iter()
        .find(|e| e.kind == "journal")
        .expect("check reports the record");
    assert!(e.message.contains("record 5 is damaged"), "{}", e.message);
    assert!(e.message.contains("repair journal"), "{}", e.message);
    assert_eq!(e.backups.len(), 1, "{e:?}");

    // A damaged record in the middle is corruption, not a tail, and the
    // records after it are still read.
    std::fs::write(&last, &bytes).unwrap();
    let mid = dir.path().join("journal").join(format!("{:020}", 3));
    let mut m = std::fs::read(&mid).unwrap();
    let k = m.len() / 2;
    m[k] ^= 0x40;
    std::fs::write(&mid, &m).unwrap();
    let r = journal::replay(&store).await.unwrap();
    assert_eq!(r.problem.as_ref().unwrap().kind, ProblemKind::Corrupt);
    assert_eq!(r.problem.as_ref().unwrap().seq, 3);
    assert_eq!(
        r.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![1, 2, 4, 5, 6]
    );
    m[k] ^= 0x40;
    std::fs::write(&mid, &m).unwrap();

    // A missing record is a gap; a record from elsewhere breaks the chain.
    let rec4 = dir.path().join("journal").join(format!("{:020}", 4));
    let saved4 = std::fs::read(&rec4).unwrap();
    std::fs::remove_file(&rec4).unwrap();
    let r = journal::replay(&store).await.unwrap();
    assert_eq!(r.problem.as_ref().unwrap().kind, ProblemKind::Gap);
    assert_eq!(r.records.len(), 5, "records 1-3, 5, 6");
    let keys = store.keys().expect("test stores are encrypted");
    let mut forged = store_format::JournalRecord::decode_in(&saved4, Some(keys)).unwrap();
    forged.prev = [7u8; 32];
    std::fs::write(&rec4, forged.encode_sealed(keys, &[3u8; 24])).unwrap();
    let p = journal::replay(&store).await.unwrap().problem.unwrap();
    assert_eq!(p.kind, ProblemKind::ChainBroken);
    assert_eq!(p.seq, 4);
    std::fs::write(&rec4, &saved4).unwrap();
    // Record 5 is whole again, but record 6 was chained to its damaged
    // bytes: that link is reported (record 6 itself is intact and read).
    let r = journal::replay(&store).await.unwrap();
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert_eq!(
        (r.problems[0].seq, r.problems[0].kind),
        (6, ProblemKind::ChainBroken)
    );
    assert_eq!(r.records.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_claim_distinct_sequence_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(dir.path()).await;
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10u64 {
                let ev = Event::GcCompleted(store_format::event::GcCompleted {
                    objects_freed: t,
                    bytes_freed: i,
                    objects_kept: 0,
                    duration_ms: 0,
                });
                journal::append(&store, ev).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let r = journal::replay(&store).await.unwrap();
    assert!(r.problem.is_none(), "{:?}", r.problem);
    assert_eq!(r.records.len(), 81);
    let mut seen: Vec<(u64, u64)> = r
        .records
        .iter()
        .filter_map(|r| match &r.event {
            Event::GcCompleted(g) => Some((g.objects_freed, g.bytes_freed)),
            _ => None,
        })
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen.len(),
        80,
        "every appended event is in the journal exactly once"
    );
}

#[tokio::test]
async fn check_names_a_flipped_byte_and_a_missing_object_with_the_backups_that_need_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(dir.path()).await;
    let shared = dump(5, 2, 1);
    let a = backup(&store, vec![("db", shared.clone())]).await;
    let b = backup(
        &store,
        vec![("db", shared.clone()), ("extra", random_bytes(9, 300_000))],
    )
    .await;
    assert!(check::run(&store, true).await.unwrap().ok());

    let m = store
        .read_manifest(&ObjectId::from_hex(&a.manifest).unwrap())
        .await
        .unwrap();
    let victim = m.items[0].chunks[1].id;
    let path = dir.path().join(object_path(&victim));
    let mut bytes = std::fs::read(&path).unwrap();
    let k = bytes.len() - 10;
    bytes[k] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();

    // Structure alone does not read contents...
    assert!(check::run(&store, false).await.unwrap().ok());
    // ...reading the data finds it, names it and both backups.
    let r = check::run(&store, true).await.unwrap();
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    let e = &r.errors[0];
    assert_eq!(e.kind, "damaged_object");
    assert!(e.message.contains(&victim.to_hex()), "{}", e.message);
    assert!(
        e.backups.contains(&a.backup_id) && e.backups.contains(&b.backup_id),
        "{:?}",
        e.backups
    );
    // Restoring through it fails loudly instead of returning wrong bytes.
    let mut sink = Vec::new();
    let err = reader::write_item(&store, &m.items[0], &mut sink)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("damaged"), "{err}");

    // A missing object is found by the structure check.
    bytes[k] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    std::fs::remove_file(&path).unwrap();
    let r = check::run(&store, false).await.unwrap();
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    assert_eq!(r.errors[0].kind, "missing_object");
    assert!(r.errors[0].message.contains(&victim.to_hex()));
    assert_eq!(r.errors[0].backups.len(), 2);
}

#[tokio::test]
async fn gc_frees_exactly_what_no_backup_references() {
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(dir.path()).await;
    let keep = backup(&store, vec![("db", dump(11, 3, 1))]).await;
    let drop_ = backup(&store, vec![("db", random_bytes(12, 2_000_000))]).await;
    let before = n8n_ark::store::index::list_object_ids(&store)
        .await
        .unwrap()
        .len();

    let dry = gc_dry_run(&store).await;
    assert_eq!(dry.objects_freed, 0, "everything is referenced");

    // Forget the second backup (as prune will): its unique objects become garbage.
    store
        .forget_backup(&ObjectId::from_hex(&drop_.manifest).unwrap(), "test")
        .await
        .unwrap();
    let dry = gc_dry_run(&store).await;
    assert_eq!(dry.objects_freed, drop_.new_objects);
    assert_eq!(
        n8n_ark::store::index::list_object_ids(&store)
            .await
            .unwrap()
            .len(),
        before,
        "dry run changes nothing"
    );

    let r = gc::run(&store, &GcOptions::default()).await.unwrap();
    assert_eq!(r.objects_freed, drop_.new_objects);
    assert!(r.bytes_freed >= 2_000_000, "freed {} bytes", r.bytes_freed);
    assert_eq!(
        n8n_ark::store::index::list_object_ids(&store)
            .await
            .unwrap()
            .len() as u64,
        before as u64 - drop_.new_objects
    );
    assert!(check::run(&store, true).await.unwrap().ok());
    assert_eq!(
        restore_all(&store, &keep.manifest).await["db"],
        dump(11, 3, 1)
    );
    let last = journal::replay(&store)
        .await
        .unwrap()
        .records
        .pop()
        .unwrap();
    assert!(
        matches!(last.event, Event::GcCompleted(ref g) if g.objects_freed == drop_.new_objects)
    );
}

#[tokio::test]
async fn objects_set_aside_by_an_interrupted_gc_stay_readable_and_the_next_gc_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(dir.path()).await;
    let data = dump(21, 2, 1);
    let s = backup(&store, vec![("db", data.clone())]).await;
    // Simulate a gc that moved a referenced object (one a backup committed
    // while the gc ran) and was killed before it finished.
    let m = store
        .read_manifest(&ObjectId::from_hex(&s.manifest).unwrap())
        .await
        .unwrap();
    let id = m.items[0].chunks[0].id;
    store
        .backend()
        .rename(&object_path(&id), &format!("trash/1-x/{}", id.to_hex()))
        .await
        .unwrap();
    assert_eq!(
        restore_all(&store, &s.manifest).await["db"],
        data,
        "readers find objects in the trash"
    );
    assert!(check::run(&store, true).await.unwrap().ok());
    let r = gc::run(&store, &GcOptions::default()).await.unwrap();
    assert_eq!(r.objects_restored_from_trash, 1);
    assert_eq!(r.objects_freed, 0);
    assert!(
        store.backend().stat(&object_path(&id)).await.is_ok(),
        "the referenced object is back in place"
    );
    assert!(store.backend().list("trash/").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gc_running_concurrently_with_backups_never_loses_a_completed_backup() {
    // Short heartbeats so waiting for sessions is quick.
    std::env::set_var("ARK_LOCK_REFRESH_MS", "200");
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(dir.path()).await;
    let rounds = 12u64;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The collector loops as fast as it can.
    let gc_task = {
        let (store, stop) = (store.clone(), stop.clone());
        tokio::spawn(async move {
            let mut runs = 0u32;
            let mut freed = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let r = gc::run(&store, &GcOptions::default()).await.unwrap();
                freed += r.objects_freed;
                runs += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (runs, freed)
        })
    };
    let mut kept: Vec<(String, Vec<u8>)> = Vec::new();
    for round in 0..rounds {
        // Each round: back up data that shares most chunks with an earlier,
        // now forgotten backup, so its dedup hits are exactly the objects the
        // collector wants to delete.
        let base = dump(100 + round % 3, 2, 1 + (round % 4) as u32);
        let mut data = base.clone();
        data.extend_from_slice(&random_bytes(round, 100_000));
        let s = backup(&store, vec![("db", data.clone())]).await;
        if round % 2 == 0 {
            store
                .forget_backup(&ObjectId::from_hex(&s.manifest).unwrap(), "test")
                .await
                .unwrap();
        } else {
            kept.push((s.manifest.clone(), data));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (runs, freed) = gc_task.await.unwrap();
    assert!(runs >= 3, "the collector ran {runs} times");
    assert!(
        freed > 0,
        "the collector freed nothing: the test did not exercise it"
    );
    for (manifest, data) in &kept {
        assert!(
            restore_all(&store, manifest).await["db"] == *data,
            "backup {manifest} does not read back byte for byte"
        );
    }
    let r = check::run(&store, true).await.unwrap();
    assert!(r.ok(), "{:?}", r.errors);
    std::env::remove_var("ARK_LOCK_REFRESH_MS");
}

#[tokio::test]
async fn a_crashed_process_lock_goes_stale_without_an_unlock_command() {
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(dir.path()).await;
    // A gc lock of a process that no longer exists on this host.
    let rec = store_format::LockRecord {
        kind: "gc".into(),
        host: n8n_ark::store::lock::holder_host(),
        pid: 999_999_999,
        created_ms: n8n_ark::store::now_ms(),
        heartbeat_ms: n8n_ark::store::now_ms(),
        refresh_ms: 30_000,
        backup_id: None,
    };
    store
        .backend()
        .create_exclusive("locks/gc", rec.encode().into())
        .await
        .unwrap();
    // A session of another host whose heartbeat stopped long ago.
    let old = store_format::LockRecord {
        kind: "backup".into(),
        host: "elsewhere".into(),
        pid: 1,
        created_ms: 0,
        heartbeat_ms: n8n_ark::store::now_ms() - 3_600_000,
        refresh_ms: 30_000,
        backup_id: None,
    };
    store
        .backend()
        .create_exclusive("locks/backup-old", old.encode().into())
        .await
        .unwrap();
    let r = gc::run(
        &store,
        &GcOptions {
            max_wait: Duration::from_secs(5),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(r.waited_for_sessions, 0);
    // A live gc lock is respected.
    let live = store_format::LockRecord {
        host: "elsewhere".into(),
        pid: 1,
        heartbeat_ms: n8n_ark::store::now_ms(),
        ..rec
    };
    store
        .backend()
        .create_exclusive("locks/gc", live.encode().into())
        .await
        .unwrap();
    let err = gc::run(&store, &GcOptions::default()).await.unwrap_err();
    assert!(err.to_string().contains("another gc is running"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_that_reuses_objects_gc_is_collecting_keeps_them() {
    // The race that makes concurrent GC hard, forced step by step: a backup's
    // dedup index lists objects that a collector then finds unreferenced.
    std::env::set_var("ARK_LOCK_REFRESH_MS", "200");
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(dir.path()).await;
    let data = dump(77, 3, 1);
    let a = backup(&store, vec![("db", data.clone())]).await;
    store
        .forget_backup(&ObjectId::from_hex(&a.manifest).unwrap(), "test")
        .await
        .unwrap();

    // B starts: it now knows A's objects exist.
    let mut b = BackupSession::begin(&store, "test").await.unwrap();
    assert!(b.known_objects() as u64 >= a.new_objects);

    // The collector sets A's objects aside and must wait for B.
    let gc_task = {
        let store = store.clone();
        tokio::spawn(async move { gc::run(&store, &GcOptions::default()).await.unwrap() })
    };
    for _ in 0..250 {
        if store.backend().list("trash/").await.unwrap().len() as u64 == a.new_objects {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        store.backend().list("trash/").await.unwrap().len() as u64,
        a.new_objects,
        "gc did not set A's objects aside"
    );
    // Let the collector reach its wait (it may also still be listing locks:
    // the properties below hold either way).
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !gc_task.is_finished(),
        "gc must wait for the running backup"
    );

    // B reuses every one of those objects and commits.
    b.add_stream("db", std::io::Cursor::new(data.clone()))
        .await
        .unwrap();
    let sb = b.commit(BTreeMap::new()).await.unwrap();
    assert_eq!(sb.new_objects, 0, "B deduplicated against A's objects");
    // Readable even before the collector finishes.
    assert_eq!(restore_all(&store, &sb.manifest).await["db"], data);

    let r = gc_task.await.unwrap();
    assert!(r.waited_for_sessions <= 1, "{r:?}");
    assert_eq!(r.objects_freed, 0, "nothing B needs may be freed");
    assert_eq!(r.objects_restored_from_trash, a.new_objects);
    assert_eq!(restore_all(&store, &sb.manifest).await["db"], data);
    assert!(check::run(&store, true).await.unwrap().ok());
    assert!(store.backend().list("trash/").await.unwrap().is_empty());
    std::env::remove_var("ARK_LOCK_REFRESH_MS");
}

/// A local disk with room for only `room` more moves into the trash (each
/// new directory entry needing space, as on ext4), and `reserve_room` more
/// once the store's space reserve is deleted.
#[derive(Debug)]
struct TightDisk {
    inner: n8n_ark::store::local::LocalBackend,
    room: std::sync::atomic::AtomicI64,
    reserve_room: i64,
}

#[async_trait::async_trait]
impl n8n_ark::store::Backend for TightDisk {
    fn location(&self) -> String {
        self.inner.location()
    }
    async fn create_exclusive(&self, path: &str, data: bytes::Bytes) -> Result<(), BackendError> {
        self.inner.create_exclusive(path, data).await
    }
    async fn put(&self, path: &str, data: bytes::Bytes) -> Result<(), BackendError> {
        self.inner.put(path, data).await
    }
    async fn get(&self, path: &str) -> Result<bytes::Bytes, BackendError> {
        self.inner.get(path).await
    }
    async fn get_range(
        &self,
        path: &str,
        range: std::ops::Range<u64>,
    ) -> Result<bytes::Bytes, BackendError> {
        self.inner.get_range(path, range).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<n8n_ark::store::Entry>, BackendError> {
        self.inner.list(prefix).await
    }
    async fn stat(&self, path: &str) -> Result<n8n_ark::store::Entry, BackendError> {
        self.inner.stat(path).await
    }
    async fn delete(&self, path: &str) -> Result<(), BackendError> {
        if path == n8n_ark::store::RESERVE {
            self.room.fetch_add(self.reserve_room, Ordering::SeqCst);
        }
        self.inner.delete(path).await
    }
    async fn rename(&self, from: &str, to: &str) -> Result<(), BackendError> {
        if to.starts_with("trash/") && self.room.fetch_sub(1, Ordering::SeqCst) <= 0 {
            self.room.fetch_add(1, Ordering::SeqCst);
            return Err(BackendError::NoSpace { path: to.into() });
        }
        self.inner.rename(from, to).await
    }
    async fn sync(&self) -> Result<(), BackendError> {
        self.inner.sync().await
    }
    async fn check_location(&self) -> Result<(), BackendError> {
        self.inner.check_location().await
    }
    async fn remove_stale_temporaries(&self, older_than_ms: i64) -> Result<u64, BackendError> {
        self.inner.remove_stale_temporaries(older_than_ms).await
    }
    async fn remove_empty_dirs(&self, prefix: &str) -> Result<u64, BackendError> {
        self.inner.remove_empty_dirs(prefix).await
    }
    fn fills_up(&self) -> bool {
        true
    }
}

#[tokio::test]
async fn gc_on_a_disk_too_full_to_move_everything_frees_what_it_can_and_leaves_the_rest_for_the_next(
) {
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(dir.path()).await;
    let keep = backup(&store, vec![("db", dump(31, 1, 1))]).await;
    for i in 0..20u32 {
        store
            .write_object(store_format::object::ObjectKind::Blob, &i.to_le_bytes())
            .await
            .unwrap();
    }
    let tight = Arc::new(TightDisk {
        inner: n8n_ark::store::local::LocalBackend::new(dir.path()),
        room: 5.into(),
        reserve_room: 5,
    });
    let p = PASSPHRASE.to_string();
    let store = Store::open(tight.clone(), &move || Ok(p.clone().into()))
        .await
        .unwrap();
    let r = gc::run(&store, &GcOptions::default()).await.unwrap();
    assert!(r.used_space_reserve, "{r:?}");
    assert_eq!(
        (r.objects_freed, r.objects_left_for_next_run),
        (10, 10),
        "{r:?}"
    );
    assert!(!r.space_reserve_missing, "{r:?}");
    assert!(
        store.backend().stat(n8n_ark::store::RESERVE).await.is_ok(),
        "the reserve is made again"
    );
    assert!(check::run(&store, true).await.unwrap().ok());
    assert_eq!(
        restore_all(&store, &keep.manifest).await["db"],
        dump(31, 1, 1)
    );
    // With room again, the next run takes the rest.
    tight.room.store(100, Ordering::SeqCst);
    let r = gc::run(&store, &GcOptions::default()).await.unwrap();
    assert_eq!(
        (r.objects_freed, r.objects_left_for_next_run),
        (10, 0),
        "{r:?}"
    );
    assert!(!r.used_space_reserve);
    assert!(store.backend().list("trash/").await.unwrap().is_empty());
    assert!(check::run(&store, true).await.unwrap().ok());
}
