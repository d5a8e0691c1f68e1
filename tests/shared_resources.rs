//! Two backups at once in one process (as `n8n-ark serve` runs them) share
//! the store's chunk workers and its dedup listing: one set of threads, one
//! copy of the object ids in memory, kept valid against the collector by the
//! lock of the session that listed for as long as either backup runs.
mod common;

use common::rt;
use n8n_ark::store::ingest::BackupSession;
use n8n_ark::store::lock::{list_locks, live_sessions};
use std::time::{Duration, Instant};

/// The threads of this process named `ark-chunk-*`.
fn chunk_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|c| c.trim().starts_with("ark-chunk-"))
        })
        .count()
}

#[test]
fn two_concurrent_backups_share_the_chunk_workers_and_the_dedup_listing() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = common::new_store(&dir.path().join("store")).await;
        let cores = std::thread::available_parallelism().unwrap().get();
        assert_eq!(
            store.chunk_workers(),
            0,
            "no worker before the first stream"
        );

        // A first backup, so the listing has something in it.
        let mut first = BackupSession::begin(&store, "postgres_n8n").await.unwrap();
        first
            .add_stream("dump", &common::random_bytes(1, 2 << 20)[..])
            .await
            .unwrap();
        first.commit(Default::default()).await.unwrap();

        // Two at once, each through its own clone of the store (two
        // operations' Contexts on the store the process opened once).
        let (s1, s2) = (store.clone(), store.clone());
        let mut a = BackupSession::begin(&s1, "postgres_n8n").await.unwrap();
        let mut b = BackupSession::begin(&s2, "flows").await.unwrap();
        assert!(a.shares_index_with(&b), "the second listed again");
        assert!(a.known_objects() > 0 && a.known_objects() == b.known_objects());
        // Each session's lock (a's, taken before it listed, keeps the listing
        // valid for both).
        assert_eq!(live_sessions(&store).await.unwrap().len(), 2);
        let a_id = a.backup_id().to_string();
        let da = common::random_bytes(2, 4 << 20);
        let db = common::random_bytes(3, 4 << 20);
        let (ra, rb) = tokio::join!(a.add_stream("dump", &da[..]), b.add_stream("dump", &db[..]));
        ra.unwrap();
        rb.unwrap();
        // One pool for both: the threads of one stream, not two.
        assert_eq!(store.chunk_workers(), cores);
        assert_eq!(chunk_threads(), cores);
        // What one added stays its own (the other may not count on a write
        // it did not make).
        let reused = common::random_bytes(1, 2 << 20);
        b.add_stream("again", &reused[..]).await.unwrap();
        let sa = a.commit(Default::default()).await.unwrap();
        // a is complete, but b still counts on the listing a took: a's lock
        // stays live (a collector waits for it) until b has ended.
        let live = live_sessions(&store).await.unwrap();
        assert_eq!(live.len(), 2, "{live:?}");
        assert!(live.iter().any(|l| l.backup_id.as_deref() == Some(&a_id)));
        let sb = b.commit(Default::default()).await.unwrap();
        assert!(sa.new_objects > 0 && sb.new_objects > 0);
        assert!(
            sb.reused_objects > 0,
            "the first backup's chunks were reused"
        );

        // Both ended: the listing and its lock are gone; the next backup
        // lists anew and sees what they wrote.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !list_locks(&store).await.unwrap().is_empty() {
            assert!(Instant::now() < deadline, "a session lock is left");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let c = BackupSession::begin(&store, "flows").await.unwrap();
        assert!(c.known_objects() >= sa.objects as usize + sb.new_objects as usize);
        drop(c);
        assert_eq!(
            store.chunk_workers(),
            cores,
            "the pool stays for the store's life"
        );
    });
}
