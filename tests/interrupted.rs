//! Backups whose process stops (kill -9, SIGTERM, a crash) do not show
//! "running" forever: the next backup or gc finds their session lock stale,
//! records them (failed, or completed when their manifest was written), and
//! removes the lock; what they wrote is then garbage for gc. And a journal
//! claim whose writer stopped between claiming and publishing is completed
//! with the record that writer left, not waited out.
mod common;

use common::pg::PgCluster;
use common::{ok_json, rt, stderr, Ark};
use serde_json::Value;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use store_format::Event;

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn session_locks(ark: &Ark) -> usize {
    std::fs::read_dir(ark.store().join("locks"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("backup-"))
                .count()
        })
        .unwrap_or(0)
}

/// Holds an ACCESS EXCLUSIVE lock on the workflows table until dropped, so
/// that a backup started meanwhile waits inside its snapshot.
struct TableLock<'a>(Child, &'a PgCluster);

impl<'a> TableLock<'a> {
    fn take(pg: &'a PgCluster) -> TableLock<'a> {
        let mut c = pg.client("psql");
        c.args(["-X", "-q", "-d", "n8n"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = c.spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .as_mut()
            .unwrap()
            .write_all(b"BEGIN; LOCK TABLE workflow_entity IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(600);\n")
            .unwrap();
        wait_for("the table lock", || {
            pg.psql(
                "n8n",
                "SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock' AND granted \
                 AND relation = 'workflow_entity'::regclass",
            ) == "1"
        });
        TableLock(child, pg)
    }
}

impl Drop for TableLock<'_> {
    fn drop(&mut self) {
        // The server session outlives its client while it sleeps: end it.
        self.1.psql(
            "n8n",
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE mode = 'AccessExclusiveLock' \
             AND granted AND relation = 'workflow_entity'::regclass",
        );
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn list(ark: &Ark) -> Vec<Value> {
    ark.json(&["list"]).as_array().unwrap().clone()
}

/// The children of `pid` (pg_dump and the like), from /proc.
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        if let Ok(c) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(c.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
        }
    }
    out
}

fn running(pid: u32) -> bool {
    // A zombie has no cmdline; a process gone has no directory.
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
}

#[test]
fn a_killed_backup_is_recorded_by_the_next_run_and_its_lock_removed() {
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    let ark = Ark::new().init(&["--chunk-avg-kib", "64"]);
    let db = pg.url("n8n");
    ark.backup("postgres_n8n", &["--no-verify", "--n8n-db", &db]);
    for signal in [libc::SIGKILL, libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        let lock = TableLock::take(&pg);
        let records = ark.journal_len();
        let before: Vec<Value> = list(&ark);
        let mut child: Child = ark
            .backup_cmd("postgres_n8n", &["--no-verify", "--n8n-db", &db])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Started (its BackupStarted recorded, its session lock taken, its
        // pg_dump running) and waiting for the table.
        let mut dumps = Vec::new();
        wait_for("the backup to start", || {
            dumps = children(child.id());
            ark.journal_len() > records && session_locks(&ark) == 1 && !dumps.is_empty()
        });
        unsafe { libc::kill(child.id() as i32, signal) };
        let status = child.wait().unwrap();
        let mut err = String::new();
        use std::io::Read;
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        // Its pg_dump does not outlive it, however it ended.
        wait_for("pg_dump to end with its parent", || {
            dumps.iter().all(|p| !running(*p))
        });
        drop(lock);
        let l = list(&ark);
        let killed = l
            .iter()
            .find(|b| !before.iter().any(|o| o["backup_id"] == b["backup_id"]))
            .and_then(|b| b["backup_id"].as_str())
            .expect("the stopped backup is listed")
            .to_string();
        if signal == libc::SIGKILL {
            let rec = l
                .iter()
                .find(|b| b["backup_id"] == killed.as_str())
                .unwrap();
            assert_eq!(
                rec["status"], "running",
                "a killed backup cannot say anything: {rec}\n{err}"
            );
        } else {
            // Stopped cleanly: recorded by itself, 128 + the signal.
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(status.code(), Some(128 + signal), "{status:?}: {err}");
            assert!(status.signal().is_none());
            assert!(err.contains("interrupted by SIG"), "{err}");
            assert_eq!(session_locks(&ark), 0, "its lock is released");
        }

        // The next backup records a killed one, and removes its lock.
        let o = ark
            .backup_cmd("postgres_n8n", &["--no-verify", "--n8n-db", &db])
            .output()
            .unwrap();
        let next = ok_json(&o);
        if signal == libc::SIGKILL {
            assert!(
                stderr(&o).contains("interrupted"),
                "the next backup says what it recorded: {}",
                stderr(&o)
            );
        }
        assert_eq!(session_locks(&ark), 0, "no lock is left behind");
        let l = list(&ark);
        let rec = l
            .iter()
            .find(|b| b["backup_id"] == killed.as_str())
            .unwrap();
        assert_eq!(rec["status"], "failed", "{rec}");
        assert_eq!(rec["failed_stage"], "interrupted", "{rec}");
        let message = rec["failed_message"].as_str().unwrap();
        if signal == libc::SIGKILL {
            assert!(message.contains("stopped before it finished"), "{rec}");
        } else {
            assert!(message.contains("interrupted by SIG"), "{rec}");
        }
        assert!(l.iter().all(|b| b["status"] != "running"), "{l:?}");
        assert_eq!(
            l.iter()
                .find(|b| b["backup_id"] == next["backup_id"])
                .unwrap()["status"],
            "completed"
        );
    }
    // What the stopped ones wrote is garbage: gc frees it and every backup checks.
    let o = ark.ark(&["gc"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = ark.ark(&["check", "--read-data"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    assert_eq!(
        list(&ark)
            .iter()
            .filter(|b| b["status"] == "completed")
            .count(),
        5,
        "the first backup and the one after each stop"
    );
}

#[test]
fn a_backup_killed_after_writing_its_manifest_is_recorded_as_completed() {
    killed_after_writing_its_manifest(true);
}

/// A raw ingest (`benchmark`) records no start: its manifest alone proves it
/// complete, and gc records it instead of only removing its lock.
#[test]
fn a_raw_ingest_killed_after_writing_its_manifest_is_recorded_as_completed() {
    killed_after_writing_its_manifest(false);
}

fn killed_after_writing_its_manifest(with_start_record: bool) {
    // The window between the manifest and its journal record is one append:
    // made here directly, as a process that stopped in it leaves the store.
    let ark = Ark::new().init(&[]);
    let (backup_id, lock_path) = rt().block_on(async {
        let store = common::open_store(&ark.store()).await;
        let id = n8n_ark::store::ingest::new_backup_id();
        if with_start_record {
            n8n_ark::store::journal::append(
                &store,
                Event::BackupStarted(store_format::event::BackupStarted {
                    backup_id: id.clone(),
                    kind: "flows".into(),
                    host: "here".into(),
                    sources: vec![],
                }),
            )
            .await
            .unwrap();
        }
        let mut s = n8n_ark::store::ingest::BackupSession::begin_as(&store, "flows", id.clone())
            .await
            .unwrap();
        s.add_blob("workflows/a.json", b"{\"id\":\"a\"}".to_vec())
            .await
            .unwrap();
        let summary = s
            .commit_with(Default::default(), Some(Default::default()))
            .await
            .unwrap();
        // Undo the completion record and put a stale lock of a dead process
        // back: what a kill between manifest and record leaves.
        let last = ark
            .store()
            .join("journal")
            .join(format!("{:020}", summary.journal_seq));
        std::fs::remove_file(last).unwrap();
        let lock = store_format::LockRecord {
            kind: "backup".into(),
            host: n8n_ark::store::lock::holder_host(),
            pid: common::dead_pid(),
            created_ms: n8n_ark::store::now_ms() - 10_000,
            heartbeat_ms: n8n_ark::store::now_ms() - 5_000,
            refresh_ms: 30_000,
            backup_id: Some(id.clone()),
        };
        let path = ark
            .store()
            .join("locks")
            .join("backup-0123456789abcdef0123456789abcdef");
        std::fs::write(&path, lock.encode()).unwrap();
        (id, path)
    });
    let l = list(&ark);
    let listed = l.iter().find(|b| b["backup_id"] == backup_id.as_str());
    if with_start_record {
        assert_eq!(listed.unwrap()["status"], "running");
    } else {
        assert!(listed.is_none(), "{listed:?}");
    }
    // Before anyone settles it, check names the crash window as what it
    // is, a warning, not damage: the store is whole.
    let o = ark.ark(&["--json", "check", "--read-data"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["errors"], serde_json::json!([]), "{report}");
    let warned = report["warnings"].as_array().unwrap();
    assert!(
        warned.iter().any(|w| w["kind"] == "interrupted_backup"
            && w["backups"] == serde_json::json!([backup_id.as_str()])),
        "{report}"
    );
    // gc notices it first here: records it as completed, from its manifest.
    let o = ark.ark(&["gc"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!lock_path.exists());
    let l = list(&ark);
    let rec = l
        .iter()
        .find(|b| b["backup_id"] == backup_id.as_str())
        .unwrap();
    assert_eq!(rec["status"], "completed", "{rec}");
    assert!(
        rec["note"]
            .as_str()
            .unwrap_or_default()
            .contains("stopped after writing the manifest"),
        "{rec}"
    );
    let o = ark.ark(&["check", "--read-data"]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success() && !out.contains("warning"), "{out}");
}

#[test]
fn a_claim_whose_writer_stopped_is_completed_with_the_record_it_left() {
    let ark = Ark::new().init(&[]);
    rt().block_on(async {
        let store = common::open_store(&ark.store()).await;
        let jdir = ark.store().join("journal");
        let n = n8n_ark::store::journal::last_seq(&store).await.unwrap();
        let prev_bytes = std::fs::read(jdir.join(format!("{n:020}"))).unwrap();
        // The writer of record n+1 wrote its pending record, claimed the
        // number (an empty file), and stopped before publishing.
        let theirs = store_format::JournalRecord {
            seq: n + 1,
            prev: store_format::JournalRecord::hash_of_encoded(&prev_bytes),
            time_ms: n8n_ark::store::now_ms(),
            writer: "stopped-host:4242".into(),
            event: Event::GcCompleted(store_format::event::GcCompleted {
                objects_freed: 7,
                bytes_freed: 700,
                objects_kept: 1,
                duration_ms: 5,
            }),
        };
        let bytes = theirs.encode_sealed(store.keys().unwrap(), &[9u8; 24]);
        std::fs::write(
            jdir.join(format!("pending-{:020}-{}", n + 1, "ab".repeat(16))),
            &bytes,
        )
        .unwrap();
        let claim = jdir.join(format!("{:020}", n + 1));
        std::fs::write(&claim, b"").unwrap();
        // Claimed ten seconds ago: no writer takes that long between its
        // claim and its rename (younger claims are waited for a moment).
        std::fs::File::options()
            .write(true)
            .open(&claim)
            .unwrap()
            .set_modified(std::time::SystemTime::now() - Duration::from_secs(10))
            .unwrap();

        let ours = Event::GcCompleted(store_format::event::GcCompleted {
            objects_freed: 1,
            bytes_freed: 100,
            objects_kept: 2,
            duration_ms: 3,
        });
        let seq = n8n_ark::store::journal::append(&store, ours.clone())
            .await
            .unwrap();
        assert_eq!(seq, n + 2, "the stopped writer's record keeps its number");
        let r = n8n_ark::store::journal::replay(&store).await.unwrap();
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        let events: Vec<&Event> = r.records.iter().map(|r| &r.event).collect();
        assert_eq!(events[events.len() - 2], &theirs.event);
        assert_eq!(events[events.len() - 1], &ours);
        assert_eq!(
            std::fs::read(jdir.join(format!("{:020}", n + 1))).unwrap(),
            bytes,
            "published byte for byte as its writer would have"
        );
        let left: Vec<_> = std::fs::read_dir(&jdir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with("pending-"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    });
}
