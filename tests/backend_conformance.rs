//! One conformance suite for every storage backend, in the manner of restic's
//! `internal/backend/test`: each case below is written once, as an async
//! function over `Arc<dyn Backend>`, and the `suite!` macro at the bottom runs
//! every case against
//!
//! - the local directory backend, in a fresh temporary directory, and
//! - the S3 backend, against the S3-compatible server that
//!   `tests/s3/start-server.sh` starts on 127.0.0.1, in a bucket named by
//!   `ARK_TEST_S3_BUCKET` under a prefix of its own for every test.
//!
//! The S3 tests never pass silently without a server: when
//! `ARK_TEST_S3_BUCKET` is unset they fail, unless `ARK_SKIP_S3=1` says that
//! skipping them is intended.
//!
//! ```text
//! eval "$(tests/s3/start-server.sh)"
//! cargo test --test backend_conformance
//! tests/s3/stop-server.sh
//! ```
use bytes::Bytes;
use n8n_ark::store::backend::Entry;
use n8n_ark::store::local::LocalBackend;
use n8n_ark::store::s3::S3Backend;
use n8n_ark::store::{Backend, BackendError};
use rand::{RngCore, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

type B = Arc<dyn Backend>;

// ---------------------------------------------------------------------------
// helpers

fn random(seed: u64, n: usize) -> Bytes {
    let mut v = vec![0u8; n];
    rand_chacha::ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut v);
    Bytes::from(v)
}

/// Compares without printing megabytes on failure.
#[track_caller]
fn same(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let first = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: content differs (got {} bytes, want {}; first differing byte at {:?})",
            got.len(),
            want.len(),
            first
        );
    }
}

#[track_caller]
fn expect_not_found<T: std::fmt::Debug>(r: Result<T, BackendError>, what: &str) {
    match r {
        Err(BackendError::NotFound { .. }) => {}
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

#[track_caller]
fn expect_already_exists<T: std::fmt::Debug>(r: Result<T, BackendError>, what: &str) {
    match r {
        Err(BackendError::AlreadyExists { .. }) => {}
        other => panic!("{what}: expected AlreadyExists, got {other:?}"),
    }
}

async fn paths(b: &B, prefix: &str) -> BTreeSet<String> {
    let entries = b
        .list(prefix)
        .await
        .unwrap_or_else(|e| panic!("list {prefix:?}: {e}"));
    let n = entries.len();
    let set: BTreeSet<String> = entries.into_iter().map(|e| e.path).collect();
    assert_eq!(set.len(), n, "list {prefix:?} returned a path twice");
    set
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------
// the cases: one async function each, over any backend

mod cases {
    use super::*;

    pub async fn location(b: B) {
        assert!(!b.location().is_empty(), "location() is empty");
    }

    /// put then get returns the same bytes: empty, tiny, odd-sized and
    /// multi-MiB objects, at the top level and nested.
    pub async fn put_get_round_trip(b: B) {
        let cases: Vec<(&str, Bytes)> = vec![
            ("empty", Bytes::new()),
            ("one", Bytes::from_static(b"x")),
            ("a/b/c/odd", random(1, 4097)),
            ("objects/ab/ab0123456789", random(2, 1 << 16)),
            ("big/multi-mib", random(3, 9 * 1024 * 1024 + 13)),
        ];
        for (p, data) in &cases {
            b.put(p, data.clone())
                .await
                .unwrap_or_else(|e| panic!("put {p}: {e}"));
        }
        for (p, data) in &cases {
            let got = b.get(p).await.unwrap_or_else(|e| panic!("get {p}: {e}"));
            same(&got, data, p);
            let st = b.stat(p).await.unwrap_or_else(|e| panic!("stat {p}: {e}"));
            assert_eq!(st.size, data.len() as u64, "stat {p}: size");
            assert_eq!(st.path, *p, "stat {p}: path");
        }
    }

    /// put over an existing object replaces it whole (a shorter content leaves
    /// no tail of the longer one), and a reader running at the same time sees
    /// the old or the new content, never a mix.
    pub async fn put_replaces_atomically(b: B) {
        let p = "replace/me";
        let long = random(10, 3 * 1024 * 1024);
        let short = Bytes::from_static(b"short");
        b.put(p, long.clone()).await.unwrap();
        b.put(p, short.clone()).await.unwrap();
        same(
            &b.get(p).await.unwrap(),
            &short,
            "after replacing long by short",
        );
        assert_eq!(b.stat(p).await.unwrap().size, short.len() as u64);

        // Two contents of different sizes and fill bytes: any mix is visible.
        let x = Bytes::from(vec![0xAAu8; 2 * 1024 * 1024]);
        let y = Bytes::from(vec![0x55u8; 1024 * 1024 + 1]);
        b.put(p, x.clone()).await.unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut readers = Vec::new();
        for _ in 0..3 {
            let (b, stop, x, y) = (b.clone(), stop.clone(), x.clone(), y.clone());
            readers.push(tokio::spawn(async move {
                let mut reads = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) || reads == 0 {
                    let got = b.get(p).await.expect("get during concurrent put");
                    assert!(
                        got == x || got == y,
                        "a reader saw a mix of two puts: {} bytes, first {:?}, last {:?}",
                        got.len(),
                        got.first(),
                        got.last()
                    );
                    reads += 1;
                }
                reads
            }));
        }
        for i in 0..16 {
            b.put(p, if i % 2 == 0 { y.clone() } else { x.clone() })
                .await
                .unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for r in readers {
            let reads = r.await.expect("reader task panicked");
            assert!(reads > 0);
        }
        same(&b.get(p).await.unwrap(), &x, "last put wins");
    }

    pub async fn get_missing_is_not_found(b: B) {
        expect_not_found(b.get("missing").await, "get of a missing object");
        expect_not_found(
            b.get("no/such/dir/object").await,
            "get in a missing directory",
        );
        expect_not_found(
            b.get_range("missing", 0..10).await,
            "get_range of a missing object",
        );
        b.put("present/x", Bytes::from_static(b"x")).await.unwrap();
        expect_not_found(b.get("present/y").await, "get of a missing sibling");
        expect_not_found(
            b.get("present").await,
            "get of a name that is only a prefix of others",
        );
        expect_not_found(
            b.get_range("present", 0..10).await,
            "get_range of a name that is only a prefix of others",
        );
        expect_not_found(
            b.get("present/x/child").await,
            "get of a path under an object",
        );
        expect_not_found(
            b.get_range("present/x/child", 0..10).await,
            "get_range of a path under an object",
        );
        // A deleted object is missing too.
        b.delete("present/x").await.unwrap();
        expect_not_found(b.get("present/x").await, "get after delete");
    }

    pub async fn get_range(b: B) {
        let p = "ranges/data";
        let data = random(20, 1024 * 1024 + 7);
        let n = data.len() as u64;
        b.put(p, data.clone()).await.unwrap();
        let cases: &[(std::ops::Range<u64>, std::ops::Range<usize>, &str)] = &[
            (0..1, 0..1, "first byte"),
            (0..100, 0..100, "head"),
            (1000..5000, 1000..5000, "middle"),
            (
                n - 100..n,
                (n - 100) as usize..n as usize,
                "tail, to the end exactly",
            ),
            (0..n, 0..n as usize, "whole"),
            (
                n - 10..n + 100,
                (n - 10) as usize..n as usize,
                "running past the end: clamped",
            ),
            (n..n + 10, 0..0, "starting at the end: empty"),
            (n + 5..n + 10, 0..0, "starting past the end: empty"),
            (500..500, 0..0, "empty range"),
        ];
        for (range, want, what) in cases {
            let got = b
                .get_range(p, range.clone())
                .await
                .unwrap_or_else(|e| panic!("get_range {range:?} ({what}): {e}"));
            same(
                &got,
                &data[want.clone()],
                &format!("get_range {range:?} ({what})"),
            );
        }
        // Many random ranges, as restic's TestLoad does.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(21);
        for _ in 0..20 {
            let start = rand::Rng::gen_range(&mut rng, 0..n);
            let end = rand::Rng::gen_range(&mut rng, start..n + 2000);
            let got = b.get_range(p, start..end).await.unwrap();
            same(
                &got,
                &data[start as usize..end.min(n) as usize],
                &format!("get_range {start}..{end}"),
            );
        }
        // An empty object.
        b.put("ranges/empty", Bytes::new()).await.unwrap();
        assert!(b.get_range("ranges/empty", 0..10).await.unwrap().is_empty());
    }

    pub async fn list_by_prefix(b: B) {
        let files: &[(&str, usize)] = &[
            ("objects/ab/ab01", 1),
            ("objects/ab/ab02", 22),
            ("objects/abc/abc03", 333),
            ("objects/abd", 4),
            ("objects/a/x/y/z/deep", 5),
            ("manifests/m1", 6),
            ("top", 0),
        ];
        for (i, (p, len)) in files.iter().enumerate() {
            b.put(p, random(30 + i as u64, *len)).await.unwrap();
        }
        let everything: BTreeSet<String> = files.iter().map(|(p, _)| p.to_string()).collect();

        assert_eq!(paths(&b, "").await, everything, "list of everything");
        assert_eq!(
            paths(&b, "objects/ab/").await,
            set(&["objects/ab/ab01", "objects/ab/ab02"]),
            "a directory prefix must not return its siblings that share its name as a prefix"
        );
        assert_eq!(
            paths(&b, "objects/ab").await,
            set(&[
                "objects/ab/ab01",
                "objects/ab/ab02",
                "objects/abc/abc03",
                "objects/abd"
            ]),
            "a prefix without a trailing slash matches by string"
        );
        assert_eq!(
            paths(&b, "objects/ab/ab0").await,
            set(&["objects/ab/ab01", "objects/ab/ab02"]),
            "prefix of a file name"
        );
        assert_eq!(
            paths(&b, "objects/ab/ab01").await,
            set(&["objects/ab/ab01"]),
            "exact path as prefix"
        );
        assert_eq!(
            paths(&b, "objects/a/").await,
            set(&["objects/a/x/y/z/deep"]),
            "nested, recursively"
        );
        assert_eq!(
            paths(&b, "objects/a/x/y/").await,
            set(&["objects/a/x/y/z/deep"]),
            "nested, from the middle"
        );
        assert_eq!(
            paths(&b, "objects/").await,
            files
                .iter()
                .filter(|(p, _)| p.starts_with("objects/"))
                .map(|(p, _)| p.to_string())
                .collect(),
            "a top directory"
        );
        assert_eq!(paths(&b, "manifests/").await, set(&["manifests/m1"]));
        assert_eq!(paths(&b, "t").await, set(&["top"]));
        assert!(
            paths(&b, "nothing/").await.is_empty(),
            "a missing directory lists as empty"
        );
        assert!(
            paths(&b, "objects/zz/").await.is_empty(),
            "a missing subdirectory lists as empty"
        );
        assert!(
            paths(&b, "objects/abz").await.is_empty(),
            "a prefix nothing matches lists as empty"
        );
        assert!(
            paths(&b, "objects/ab/ab01/").await.is_empty(),
            "a file is not a directory"
        );

        // Sizes and times are those of the objects.
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let listed: BTreeMap<String, Entry> = b
            .list("")
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.path.clone(), e))
            .collect();
        for (p, len) in files {
            let e = &listed[*p];
            assert_eq!(e.size, *len as u64, "list: size of {p}");
            assert!(
                (e.modified_ms - now_ms).abs() < 24 * 3600 * 1000,
                "list: modification time of {p} is {} ms, now is {now_ms}",
                e.modified_ms
            );
        }

        // Deleted objects disappear from listings.
        b.delete("objects/abd").await.unwrap();
        assert!(
            !paths(&b, "objects/").await.contains("objects/abd"),
            "a deleted object is still listed"
        );
    }

    pub async fn list_many(b: B) {
        // More than one page of a typical object store listing (1000 keys).
        let n = 1100;
        let want: BTreeSet<String> = (0..n)
            .map(|i| format!("many/{:02x}/{i:06}", i % 7))
            .collect();
        let results: Vec<_> = futures::stream::iter(want.iter().cloned())
            .map(|p| {
                let b = b.clone();
                async move {
                    b.put(&p, Bytes::from(p.clone().into_bytes()))
                        .await
                        .map_err(|e| format!("put {p}: {e}"))
                }
            })
            .buffer_unordered(32)
            .collect()
            .await;
        for r in results {
            r.unwrap();
        }
        assert_eq!(paths(&b, "many/").await, want, "list of {n} objects");
        assert_eq!(
            paths(&b, "many/03/").await.len(),
            want.iter().filter(|p| p.starts_with("many/03/")).count()
        );
    }

    pub async fn stat(b: B) {
        b.put("s/zero", Bytes::new()).await.unwrap();
        b.put("s/some", random(40, 12345)).await.unwrap();
        assert_eq!(b.stat("s/zero").await.unwrap().size, 0);
        let e = b.stat("s/some").await.unwrap();
        assert_eq!((e.path.as_str(), e.size), ("s/some", 12345));
        expect_not_found(b.stat("s/missing").await, "stat of a missing object");
        expect_not_found(
            b.stat("nowhere/missing").await,
            "stat in a missing directory",
        );
        expect_not_found(
            b.stat("s").await,
            "stat of a name that is only a prefix of others",
        );
        expect_not_found(
            b.stat("s/some/child").await,
            "stat of a path under an object",
        );
    }

    pub async fn delete(b: B) {
        b.put("d/x", Bytes::from_static(b"x")).await.unwrap();
        b.put("d/y", Bytes::from_static(b"y")).await.unwrap();
        b.delete("d/x").await.unwrap();
        expect_not_found(b.get("d/x").await, "get after delete");
        expect_not_found(b.stat("d/x").await, "stat after delete");
        assert_eq!(
            paths(&b, "d/").await,
            set(&["d/y"]),
            "delete removes only its object"
        );
        b.delete("d/x")
            .await
            .expect("deleting twice is not an error");
        b.delete("never/was")
            .await
            .expect("deleting what never existed is not an error");
        b.delete("d")
            .await
            .expect("deleting a name that is only a prefix of others is not an error");
        b.delete("d/y/child")
            .await
            .expect("deleting a path under an object is not an error");
        assert_eq!(
            paths(&b, "d/").await,
            set(&["d/y"]),
            "those deletes removed nothing"
        );
        // The name can be used again.
        b.put("d/x", Bytes::from_static(b"again")).await.unwrap();
        same(&b.get("d/x").await.unwrap(), b"again", "put after delete");
    }

    pub async fn rename(b: B) {
        let data = random(50, 100_000);
        b.put("r/from", data.clone()).await.unwrap();
        b.rename("r/from", "r/to").await.unwrap();
        expect_not_found(b.get("r/from").await, "the source after rename");
        same(
            &b.get("r/to").await.unwrap(),
            &data,
            "the target after rename",
        );
        assert_eq!(paths(&b, "r/").await, set(&["r/to"]));

        // Into a directory that does not exist yet.
        b.rename("r/to", "elsewhere/deeper/to").await.unwrap();
        same(
            &b.get("elsewhere/deeper/to").await.unwrap(),
            &data,
            "rename into a new directory",
        );
        expect_not_found(
            b.get("r/to").await,
            "the source after rename into a new directory",
        );

        // Over an existing target: replaces it.
        b.put("r/a", Bytes::from_static(b"new content"))
            .await
            .unwrap();
        b.put("r/b", random(51, 200_000)).await.unwrap();
        b.rename("r/a", "r/b").await.unwrap();
        same(
            &b.get("r/b").await.unwrap(),
            b"new content",
            "rename over an existing target",
        );
        assert_eq!(b.stat("r/b").await.unwrap().size, 11);
        expect_not_found(b.get("r/a").await, "the source after rename over a target");

        // A missing source: NotFound, and the target is untouched.
        expect_not_found(
            b.rename("r/missing", "r/b").await,
            "rename of a missing source",
        );
        same(
            &b.get("r/b").await.unwrap(),
            b"new content",
            "the target after a failed rename",
        );
        // A name that is only a prefix of others is no object: nothing moves.
        expect_not_found(
            b.rename("r", "moved").await,
            "rename of a name that is only a prefix of others",
        );
        assert_eq!(
            paths(&b, "r/").await,
            set(&["r/b"]),
            "a refused rename of a prefix moved nothing"
        );
        assert!(
            paths(&b, "moved").await.is_empty(),
            "a refused rename of a prefix created its target"
        );
    }

    pub async fn create_exclusive(b: B) {
        let p = "journal/00000000000000000001";
        let first = random(60, 777);
        b.create_exclusive(p, first.clone())
            .await
            .expect("first create_exclusive");
        same(
            &b.get(p).await.unwrap(),
            &first,
            "content of the created object",
        );
        expect_already_exists(
            b.create_exclusive(p, Bytes::from_static(b"second")).await,
            "second create_exclusive",
        );
        expect_already_exists(
            b.create_exclusive(p, Bytes::new()).await,
            "create_exclusive of empty data over an object",
        );
        same(
            &b.get(p).await.unwrap(),
            &first,
            "content after a refused create_exclusive",
        );
        assert_eq!(b.stat(p).await.unwrap().size, 777);

        // Empty content, and a name that a put created.
        b.create_exclusive("journal/empty", Bytes::new())
            .await
            .unwrap();
        assert_eq!(b.get("journal/empty").await.unwrap().len(), 0);
        b.put("journal/by-put", Bytes::from_static(b"put"))
            .await
            .unwrap();
        expect_already_exists(
            b.create_exclusive("journal/by-put", Bytes::from_static(b"x"))
                .await,
            "create over a put",
        );
        same(
            &b.get("journal/by-put").await.unwrap(),
            b"put",
            "content after a refused create over a put",
        );

        // Multi-MiB content, published whole.
        let big = random(61, 5 * 1024 * 1024 + 3);
        b.create_exclusive("journal/big", big.clone())
            .await
            .unwrap();
        same(
            &b.get("journal/big").await.unwrap(),
            &big,
            "multi-MiB create_exclusive",
        );

        // After a delete, the name is free again.
        b.delete(p).await.unwrap();
        b.create_exclusive(p, Bytes::from_static(b"third"))
            .await
            .expect("create_exclusive after delete");
        same(
            &b.get(p).await.unwrap(),
            b"third",
            "content after re-creation",
        );
        assert_eq!(
            paths(&b, "journal/").await,
            set(&[
                "journal/00000000000000000001",
                "journal/empty",
                "journal/by-put",
                "journal/big"
            ])
        );
    }

    /// N writers race for one name, as N processes claiming the next journal
    /// sequence number would: exactly one wins, every other one is told
    /// AlreadyExists, and the content is the winner's.
    pub async fn create_exclusive_race(b: B) {
        const WRITERS: usize = 16;
        for round in 0..8u64 {
            let p = format!("race/{round:020}");
            let payloads: Vec<Bytes> = (0..WRITERS)
                .map(|i| random(1000 * round + i as u64, 64 * 1024 + i * 1000))
                .collect();
            let barrier = Arc::new(tokio::sync::Barrier::new(WRITERS));
            let tasks: Vec<_> = payloads
                .iter()
                .cloned()
                .map(|data| {
                    let (b, p, barrier) = (b.clone(), p.clone(), barrier.clone());
                    tokio::spawn(async move {
                        barrier.wait().await;
                        b.create_exclusive(&p, data).await
                    })
                })
                .collect();
            let mut winners = Vec::new();
            for (i, t) in tasks.into_iter().enumerate() {
                match t.await.expect("writer task panicked") {
                    Ok(()) => winners.push(i),
                    Err(BackendError::AlreadyExists { .. }) => {}
                    Err(e) => panic!(
                        "round {round}: writer {i}: expected success or AlreadyExists, got {e:?}"
                    ),
                }
            }
            assert_eq!(
                winners.len(),
                1,
                "round {round}: exactly one writer must win, winners: {winners:?}"
            );
            same(
                &b.get(&p).await.unwrap(),
                &payloads[winners[0]],
                &format!("round {round}: the winner's content"),
            );
        }
    }

    pub async fn concurrent_puts(b: B) {
        let n = 96u64;
        let results: Vec<_> = futures::stream::iter(0..n)
            .map(|i| {
                let b = b.clone();
                async move {
                    let p = format!("objects/{:02x}/{i:064x}", i % 5);
                    b.put(&p, random(100 + i, 1000 + (i as usize) * 997))
                        .await
                        .map(|_| p)
                }
            })
            .buffer_unordered(24)
            .collect()
            .await;
        let written: BTreeSet<String> = results
            .into_iter()
            .map(|r| r.expect("concurrent put"))
            .collect();
        assert_eq!(written.len(), n as usize);
        assert_eq!(
            paths(&b, "objects/").await,
            written,
            "every concurrent put is listed"
        );
        let checks: Vec<_> = futures::stream::iter(0..n)
            .map(|i| {
                let b = b.clone();
                async move {
                    let p = format!("objects/{:02x}/{i:064x}", i % 5);
                    (i, p.clone(), b.get(&p).await)
                }
            })
            .buffer_unordered(24)
            .collect()
            .await;
        for (i, p, got) in checks {
            same(
                &got.unwrap_or_else(|e| panic!("get {p}: {e}")),
                &random(100 + i, 1000 + (i as usize) * 997),
                &p,
            );
        }
    }

    pub async fn sync(b: B) {
        b.sync().await.expect("sync with nothing to do");
        b.put("sync/a", Bytes::from_static(b"a")).await.unwrap();
        b.put("sync/deep/er/b", Bytes::from_static(b"b"))
            .await
            .unwrap();
        b.rename("sync/a", "sync/c").await.unwrap();
        b.put("sync/d", Bytes::from_static(b"d")).await.unwrap();
        b.delete("sync/d").await.unwrap();
        b.sync()
            .await
            .expect("sync after puts, a rename and a delete");
        b.sync().await.expect("sync twice");
        assert_eq!(paths(&b, "sync/").await, set(&["sync/c", "sync/deep/er/b"]));
        same(&b.get("sync/c").await.unwrap(), b"a", "after sync");
    }

    /// `create_location` (init's first step) may be repeated, makes no
    /// entries, and leaves a location that `check_location` accepts and that
    /// takes writes under the top-level directories it made and others.
    pub async fn create_location(b: B) {
        let dirs = ["objects/", "journal/", "locks/"];
        b.create_location(&dirs).await.expect("create_location");
        b.create_location(&dirs)
            .await
            .expect("create_location again");
        b.check_location().await.expect("check_location");
        assert_eq!(
            paths(&b, "").await,
            BTreeSet::new(),
            "directories are no entries"
        );
        b.put("objects/ab/ab01", random(90, 10)).await.unwrap();
        b.create_exclusive("journal/00000000000000000001", random(91, 10))
            .await
            .unwrap();
        b.put("elsewhere/x", random(92, 10)).await.unwrap();
        b.check_location()
            .await
            .expect("check_location after writes");
        assert_eq!(
            paths(&b, "").await,
            set(&[
                "objects/ab/ab01",
                "journal/00000000000000000001",
                "elsewhere/x"
            ])
        );
    }

    /// Temporaries of interrupted writes are removed only when old, and never
    /// anything else; emptied directories under a prefix go, the prefix stays.
    /// (Object storage has neither: both remove nothing.)
    pub async fn leftovers(b: B) {
        b.put("trash/1-a/x", random(93, 10)).await.unwrap();
        b.put("objects/ab/ab01", random(94, 10)).await.unwrap();
        b.delete("trash/1-a/x").await.unwrap();
        assert_eq!(b.remove_stale_temporaries(0).await.unwrap(), 0);
        b.remove_empty_dirs("trash/").await.unwrap();
        assert_eq!(paths(&b, "").await, set(&["objects/ab/ab01"]));
        b.put("trash/2-b/y", random(95, 10)).await.unwrap();
        assert_eq!(b.remove_empty_dirs("trash/").await.unwrap(), 0);
        assert_eq!(paths(&b, "trash/").await, set(&["trash/2-b/y"]));
    }
}

/// What only a directory on a disk can do: vanish from under a running
/// command, or be unmounted. Its backend never creates it again, nor writes
/// into what now has its name.
mod local_location {
    use super::*;

    fn root_in(dir: &tempfile::TempDir) -> std::path::PathBuf {
        dir.path().join("store")
    }

    fn expect_gone<T: std::fmt::Debug>(r: Result<T, BackendError>, what: &str) {
        match r {
            Err(BackendError::Gone { .. }) => {}
            other => panic!("{what}: expected Gone, got {other:?}"),
        }
    }

    async fn every_write_fails(b: &B) {
        let data = Bytes::from_static(b"x");
        expect_gone(
            b.put("objects/cd/cd01", data.clone()).await,
            "put in a new directory",
        );
        expect_gone(
            b.put("objects/ab/ab02", data.clone()).await,
            "put in a known directory",
        );
        expect_gone(b.put("config2", data.clone()).await, "put at the top");
        expect_gone(
            b.create_exclusive("journal/00000000000000000002", data.clone())
                .await,
            "create_exclusive",
        );
        expect_gone(
            b.rename("objects/ab/ab01", "trash/1-a/ab01").await,
            "rename",
        );
        expect_gone(b.delete("objects/ab/ab01").await, "delete");
        expect_gone(b.check_location().await, "check_location");
    }

    async fn a_store_with_one_object() -> (tempfile::TempDir, B) {
        let dir = tempfile::tempdir().unwrap();
        let b: B = Arc::new(LocalBackend::new(root_in(&dir)));
        b.create_location(&["objects/", "journal/"]).await.unwrap();
        b.put("objects/ab/ab01", random(96, 10)).await.unwrap();
        (dir, b)
    }

    #[tokio::test]
    async fn a_root_moved_away_is_never_made_again() {
        let (dir, b) = a_store_with_one_object().await;
        let moved = dir.path().join("moved");
        std::fs::rename(root_in(&dir), &moved).unwrap();
        every_write_fails(&b).await;
        assert!(
            !root_in(&dir).exists(),
            "the store's directory was made again"
        );
        // The store where it went is untouched.
        assert!(moved.join("objects/ab/ab01").exists());
    }

    #[tokio::test]
    async fn a_root_replaced_by_another_directory_gets_nothing() {
        let (dir, b) = a_store_with_one_object().await;
        std::fs::rename(root_in(&dir), dir.path().join("moved")).unwrap();
        // An empty directory where the store was: an unmounted disk's mount point.
        std::fs::create_dir(root_in(&dir)).unwrap();
        every_write_fails(&b).await;
        assert_eq!(
            std::fs::read_dir(root_in(&dir)).unwrap().count(),
            0,
            "something was made in the directory that replaced the store's"
        );
        // Even one that has the same top-level directories.
        std::fs::create_dir_all(root_in(&dir).join("objects/ab")).unwrap();
        expect_gone(
            b.put("objects/ab/ab03", Bytes::from_static(b"x")).await,
            "put into the replacement's directories",
        );
        assert_eq!(
            std::fs::read_dir(root_in(&dir).join("objects/ab"))
                .unwrap()
                .count(),
            0
        );
    }

    #[tokio::test]
    async fn a_backend_never_makes_a_location_it_was_not_told_to() {
        let dir = tempfile::tempdir().unwrap();
        let b: B = Arc::new(LocalBackend::new(root_in(&dir)));
        expect_gone(
            b.put("objects/ab/ab01", Bytes::from_static(b"x")).await,
            "put before create_location",
        );
        assert!(!root_in(&dir).exists());
    }
}

// ---------------------------------------------------------------------------
// the backends

use futures::StreamExt;

pub struct Fixture {
    pub backend: B,
    cleanup: Cleanup,
}

enum Cleanup {
    Local(#[allow(dead_code)] tempfile::TempDir),
    S3,
}

impl Fixture {
    /// Removes what an S3 test wrote (the server is throwaway, but a long
    /// series of runs against one server should not pile up).
    async fn finish(self) {
        if let Cleanup::S3 = self.cleanup {
            if let Ok(entries) = self.backend.list("").await {
                for e in entries {
                    let _ = self.backend.delete(&e.path).await;
                }
            }
        }
    }
}

fn local_fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temporary directory");
    let backend: B = Arc::new(LocalBackend::new(dir.path().join("store")));
    Fixture {
        backend,
        cleanup: Cleanup::Local(dir),
    }
}

const START_HINT: &str = "start the test server first: eval \"$(tests/s3/start-server.sh)\" \
     (and tests/s3/stop-server.sh afterwards), or set ARK_SKIP_S3=1 to skip the S3 backend on purpose";

/// The S3 fixture, or None when the S3 run is skipped on purpose.
fn s3_fixture(case: &str) -> Option<Fixture> {
    let bucket = match std::env::var("ARK_TEST_S3_BUCKET") {
        Ok(b) if !b.is_empty() => b,
        _ => {
            if std::env::var("ARK_SKIP_S3").as_deref() == Ok("1") {
                eprintln!("SKIPPED: S3 backend conformance ({case}): ARK_SKIP_S3=1 and no ARK_TEST_S3_BUCKET");
                return None;
            }
            panic!("the S3 backend conformance tests need an S3-compatible server: ARK_TEST_S3_BUCKET is not set; {START_HINT}");
        }
    };
    let endpoint = std::env::var("ARK_S3_ENDPOINT")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .ok();
    // Fail fast, with a clear message, when the server is not there: the S3
    // client would otherwise retry for minutes.
    if let Some(ep) = &endpoint {
        let u = url::Url::parse(ep).unwrap_or_else(|e| panic!("endpoint {ep:?} is not a URL: {e}"));
        let host = u
            .host_str()
            .unwrap_or("127.0.0.1")
            .trim_matches(|c| c == '[' || c == ']')
            .to_string();
        let port = u.port_or_known_default().unwrap_or(80);
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
            .ok()
            .and_then(|mut a| a.next())
            .unwrap_or_else(|| panic!("endpoint {ep}: cannot resolve {host}"));
        if let Err(e) =
            std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(3))
        {
            panic!("the S3 test server at {ep} does not answer ({e}); {START_HINT}");
        }
    }
    let url = format!(
        "s3://{bucket}/conformance/{}-{case}",
        uuid::Uuid::new_v4().simple()
    );
    let vars = std::env::vars().collect();
    let backend =
        S3Backend::from_url(&url, &vars).unwrap_or_else(|e| panic!("S3 backend for {url}: {e}"));
    Some(Fixture {
        backend: Arc::new(backend),
        cleanup: Cleanup::S3,
    })
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let f = super::local_fixture();
                    // As `init` does: the one step that makes the location.
                    f.backend.create_location(&[]).await.unwrap();
                    super::cases::$case(f.backend.clone()).await;
                    f.finish().await;
                }
            )*
        }
        mod s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let Some(f) = super::s3_fixture(stringify!($case)) else { return };
                    f.backend.create_location(&[]).await.unwrap();
                    super::cases::$case(f.backend.clone()).await;
                    f.finish().await;
                }
            )*
        }
    };
}

suite!(
    location,
    put_get_round_trip,
    put_replaces_atomically,
    get_missing_is_not_found,
    get_range,
    list_by_prefix,
    list_many,
    stat,
    delete,
    rename,
    create_exclusive,
    create_exclusive_race,
    concurrent_puts,
    sync,
    create_location,
    leftovers,
);
