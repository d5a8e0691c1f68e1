//! What the store's disk, mount and operator can do to it, through the
//! `n8n-ark` binary on real file systems (tmpfs and bind mounts need root, as
//! the tests run in CI): a store that vanishes mid-backup, a disk at 100 %,
//! files that crashes leave behind, damaged version bytes and key files, a
//! passphrase file that never ends, and two `init`s at once.
mod common;

use common::pg::PgCluster;
use common::{ok_json, rt, stderr, Ark, PASSPHRASE};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `cmd` to its end, killing it (and failing the test) if it has not
/// ended after `limit`: a guard against a hang, not a measure of speed.
fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d = done.clone();
    let guard = std::thread::spawn(move || {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if d.load(std::sync::atomic::Ordering::SeqCst) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        true
    });
    let o = child.wait_with_output().unwrap();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let killed = guard.join().unwrap();
    assert!(
        !killed,
        "the command did not end within {limit:?}: it hangs"
    );
    o
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The binary as [`Ark::cmd`] runs it, but on the store at `store`.
fn cmd_at(env: &Ark, store: &Path) -> Command {
    let mut c = Command::new(common::bin());
    c.env("ARK_PASSWORD", PASSPHRASE)
        .env("ARK_KDF_TARGET_MS", "20")
        .arg("--store")
        .arg(store)
        .arg("--data-dir")
        .arg(env.path("data-elsewhere"));
    c
}

fn chmod_x(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A `pg_dump` that dumps for real, hands the first part of the dump over,
/// and then waits until the test lets it go on: a backup held mid-stream.
struct HeldDump {
    dir: PathBuf,
    script: PathBuf,
}

impl HeldDump {
    fn new(dir: &Path) -> HeldDump {
        let dir = dir.join("held-dump");
        std::fs::create_dir_all(&dir).unwrap();
        let real = common::pg::bin_dir().join("pg_dump");
        let script = dir.join("pg_dump");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nif [ \"$1\" = --version ]; then exec {real} --version; fi\n\
                 {real} \"$@\" > {d}/dump.bin || exit 1\n\
                 head -c 300000 {d}/dump.bin\n\
                 touch {d}/half\n\
                 while [ ! -e {d}/go ]; do sleep 0.05; done\n\
                 tail -c +300001 {d}/dump.bin\n",
                real = real.display(),
                d = dir.display()
            ),
        )
        .unwrap();
        chmod_x(&script);
        HeldDump { dir, script }
    }

    /// Waits until the dump is half through and the backup's session holds
    /// its lock in `store` (so the backup is writing objects).
    fn wait_mid_backup(&self, store: &Path) {
        wait_for(
            "the dump to be half through",
            Duration::from_secs(120),
            || self.dir.join("half").exists(),
        );
        wait_for("the backup's session lock", Duration::from_secs(60), || {
            entries(&store.join("locks"))
                .iter()
                .any(|n| n.starts_with("backup-"))
        });
    }

    fn go(&self) {
        std::fs::write(self.dir.join("go"), b"").unwrap();
    }
}

/// Unmounts (lazily) on drop, also after a failed assertion.
struct Mounted(PathBuf);
impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn mount(args: &[&str], what: &Path, at: &Path) -> Mounted {
    let st = Command::new("mount")
        .args(args)
        .arg(what)
        .arg(at)
        .status()
        .unwrap();
    assert!(st.success(), "mount {args:?} (tests need root)");
    Mounted(at.to_path_buf())
}

fn held_backup(env: &Ark, pg: &PgCluster, dump: &HeldDump) -> std::process::Child {
    env.backup_cmd(
        "postgres_n8n",
        &[
            "--no-verify",
            "--n8n-db",
            &pg.url("n8n"),
            "--pg-dump",
            dump.script.to_str().unwrap(),
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap()
}

#[test]
fn a_store_moved_away_mid_backup_is_never_recreated() {
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    let env = Ark::new().init(&["--chunk-avg-kib", "16"]);
    let store = env.store();
    let moved = env.path("store.moved");
    let dump = HeldDump::new(env.dir.path());
    let child = held_backup(&env, &pg, &dump);
    dump.wait_mid_backup(&store);
    std::fs::rename(&store, &moved).unwrap();
    dump.go();
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert!(
        !o.status.success(),
        "a backup into a store that was moved away reported success: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(
        !store.exists(),
        "the store's directory was created again: {:?}",
        files_under(&store)
    );
    assert!(
        err.contains("moved, deleted or unmounted") && err.contains(store.to_str().unwrap()),
        "{err}"
    );
    // The store itself, where it went, is whole and holds no half backup.
    assert_eq!(entries(&moved.join("manifests")), Vec::<String>::new());
    let o = cmd_at(&env, &moved)
        .args(["check", "--read-data"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // Back in its place, the next backup works.
    std::fs::rename(&moved, &store).unwrap();
    let s = env.backup("postgres_n8n", &["--no-verify", "--n8n-db", &pg.url("n8n")]);
    assert_eq!(s["kind"], "postgres_n8n");
}

#[test]
fn a_store_unmounted_mid_backup_is_not_written_into_its_mount_point() {
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    // The store lives in `real` and is used through a bind mount at `store`:
    // unmounting leaves `store` an empty directory, as an unmounted disk does.
    let env = Ark::new();
    let real = env.path("real");
    std::fs::create_dir_all(&real).unwrap();
    std::fs::create_dir_all(env.store()).unwrap();
    let m = mount(&["--bind"], &real, &env.store());
    let env = env.init(&["--chunk-avg-kib", "16"]);
    assert!(real.join("config").exists());
    let dump = HeldDump::new(env.dir.path());
    let child = held_backup(&env, &pg, &dump);
    dump.wait_mid_backup(&env.store());
    let st = Command::new("umount")
        .arg("-l")
        .arg(env.store())
        .status()
        .unwrap();
    assert!(st.success());
    std::mem::forget(m);
    dump.go();
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert!(
        !o.status.success(),
        "a backup into an unmounted store reported success: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_eq!(
        files_under(&env.store()),
        Vec::<PathBuf>::new(),
        "the mount point was written into"
    );
    assert_eq!(
        entries(&env.store()),
        Vec::<String>::new(),
        "directories were made in the mount point"
    );
    assert!(err.contains("moved, deleted or unmounted"), "{err}");
    assert_eq!(entries(&real.join("manifests")), Vec::<String>::new());
    let o = cmd_at(&env, &real)
        .args(["check", "--read-data"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

fn fs_free(p: &Path) -> u64 {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut s) }, 0);
    s.f_bavail as u64 * s.f_frsize as u64
}

/// Fills the file system of `dir` to the last byte with one file.
fn fill_up(dir: &Path, name: &str) {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join(name)).unwrap();
    let block = vec![7u8; 4096];
    loop {
        match f.write(&block) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("filling up: {e}"),
        }
    }
    let _ = f.sync_all();
    assert_eq!(fs_free(dir), 0, "the disk is not full");
}

#[test]
fn gc_frees_space_on_a_store_whose_disk_is_full() {
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    let env = Ark::new();
    let mnt = env.path("small");
    std::fs::create_dir_all(&mnt).unwrap();
    let _m = mount(&["-t", "tmpfs", "-o", "size=8m"], Path::new("tmpfs"), &mnt);
    let store = mnt.join("store");
    let ark = |args: &[&str]| -> Output { cmd_at(&env, &store).args(args).output().unwrap() };
    assert!(ark(&["init", "--chunk-avg-kib", "64"]).status.success());
    // ~300 kB free: the dump (~0.5 MB compressed) does not fit.
    let free = fs_free(&mnt);
    std::fs::write(mnt.join("filler"), vec![1u8; (free - 300 * 1024) as usize]).unwrap();
    let o = ark(&[
        "backup",
        "--type",
        "postgres_n8n",
        "--no-default-config-paths",
        "--no-verify",
        "--n8n-db",
        &pg.url("n8n"),
    ]);
    assert!(!o.status.success());
    let backup_err = stderr(&o);
    assert!(backup_err.contains("the store is full"), "{backup_err}");
    let garbage = files_under(&store.join("objects")).len();
    assert!(garbage > 0, "the failed backup left no objects to collect");

    // Now to the last byte: gc must still be able to run and free them.
    fill_up(&mnt, "filler2");
    let o = ark(&["--json", "gc"]);
    let report = ok_json(&o);
    assert!(report["objects_freed"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(files_under(&store.join("objects")).len(), 0);
    assert!(fs_free(&mnt) > 0);
    let o = ark(&["check"]);
    assert!(o.status.success(), "{}", stderr(&o));

    // The room gc needs on a full disk is there again for the next time.
    fill_up(&mnt, "filler3");
    let o = ark(&["--json", "gc"]);
    ok_json(&o);
    let o = ark(&["check"]);
    assert!(o.status.success(), "{}", stderr(&o));

    // The backup's advice names only commands that exist.
    assert!(
        !backup_err.contains("prune") && !backup_err.contains("forget"),
        "{backup_err}"
    );
    assert!(backup_err.contains("n8n-ark gc"), "{backup_err}");
}

/// Sets a file's modification time to `secs` seconds ago.
fn age(p: &Path, secs: u64) {
    let st = Command::new("touch")
        .arg("-m")
        .arg("-d")
        .arg(format!("@{}", now_secs() - secs))
        .arg(p)
        .status()
        .unwrap();
    assert!(st.success());
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn gc_removes_what_crashes_left_and_settles_crashed_sessions_through_the_journal() {
    let env = Ark::new().init(&[]);
    let store = env.store();
    let input = env.path("input");
    std::fs::write(&input, common::dump(3, 1, 1)).unwrap();
    let o = env.ark(&["benchmark", "--input", input.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let objdir = store
        .join("objects")
        .join(entries(&store.join("objects"))[0].clone());

    // Left-overs of crashed writes, old and new.
    let old_tmps = [
        objdir.join(".tmp-0123456789abcdef0123456789abcdef"),
        store.join("manifests/.tmp-0123456789abcdef0123456789abcdee"),
        store.join("journal/.tmp-0123456789abcdef0123456789abcded"),
        store.join(".tmp-0123456789abcdef0123456789abcdec"),
    ];
    for p in &old_tmps {
        std::fs::write(p, b"half a write").unwrap();
        age(p, 3 * 3600);
    }
    let new_tmp = objdir.join(".tmp-fedcba9876543210fedcba9876543210");
    std::fs::write(&new_tmp, b"a write in progress").unwrap();
    // An emptied trash batch of an interrupted gc, and an empty journal claim set aside.
    let batch = store.join("trash/1700000000000-0123456789abcdef0123456789abcdef");
    std::fs::create_dir_all(&batch).unwrap();
    let abandoned =
        store.join("journal/abandoned-00000000000000000099-0123456789abcdef0123456789abcdef");
    std::fs::write(&abandoned, b"").unwrap();
    age(&abandoned, 3 * 3600);
    // Lock files of crashed processes: an init, and a backup session.
    let host = n8n_ark::store::lock::holder_host();
    let stale = |kind: &str| {
        store_format::LockRecord {
            kind: kind.into(),
            host: host.clone(),
            pid: common::dead_pid(),
            created_ms: (now_secs() as i64 - 7200) * 1000,
            heartbeat_ms: (now_secs() as i64 - 7200) * 1000,
            refresh_ms: 30_000,
            backup_id: None,
        }
        .encode()
    };
    std::fs::write(store.join("locks/init"), stale("init")).unwrap();
    let session = store.join("locks/backup-0123456789abcdef0123456789abcdef");
    std::fs::write(&session, stale("backup")).unwrap();
    // An object no backup references, which gc sets aside and deletes.
    let garbage = rt().block_on(async {
        let s = common::open_store(&store).await;
        s.write_object(store_format::object::ObjectKind::Blob, b"nobody needs this")
            .await
            .unwrap()
            .0
    });

    let report = env.json(&["gc"]);
    assert_eq!(report["objects_freed"], 1, "{report}");
    for p in &old_tmps {
        assert!(!p.exists(), "{} was left", p.display());
    }
    assert!(new_tmp.exists(), "a recent temporary file was removed");
    assert!(!abandoned.exists(), "an empty abandoned claim was left");
    assert_eq!(
        entries(&store.join("trash")),
        Vec::<String>::new(),
        "trash batches were left"
    );
    assert!(
        !store.join("locks/init").exists(),
        "a dead init's lock was left"
    );
    assert!(
        !session.exists(),
        "a crashed backup's lock is settled by gc (its backup recorded when the journal knows it) and removed"
    );
    assert!(
        report["leftovers_removed"].as_u64().unwrap() >= 6,
        "{report}"
    );
    assert!(!files_under(&store)
        .iter()
        .any(|p| p.ends_with(garbage.to_hex())));

    // A crashed session, as whoever marks its backup sees it, then removes it.
    std::fs::write(&session, stale("backup")).unwrap();
    rt().block_on(async {
        let s = common::open_store(&store).await;
        let live = n8n_ark::store::lock::HeldLock::session(&s, "20261207T000000Z-00000001")
            .await
            .unwrap();
        let stale = n8n_ark::store::lock::stale_sessions(&s).await.unwrap();
        assert_eq!(stale.len(), 1, "{stale:?}");
        assert_eq!(
            stale[0].path,
            "locks/backup-0123456789abcdef0123456789abcdef"
        );
        let rec = stale[0].record.as_ref().expect("a readable lock");
        assert_eq!(
            (rec.kind.as_str(), rec.host.as_str()),
            ("backup", host.as_str())
        );
        assert!(
            n8n_ark::store::lock::remove_stale_session(&s, &stale[0].path)
                .await
                .unwrap()
        );
        assert!(!session.exists());
        // A live session's lock is never removed that way.
        let live_path = n8n_ark::store::lock::list_locks(&s)
            .await
            .unwrap()
            .into_iter()
            .find(|l| l.live)
            .unwrap()
            .path;
        assert!(!n8n_ark::store::lock::remove_stale_session(&s, &live_path)
            .await
            .unwrap());
        assert!(store.join(&live_path).exists());
        live.release().await.unwrap();
    });
    let o = env.ark(&["check"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

fn flip(p: &Path, at: usize, to: u8) {
    let mut b = std::fs::read(p).unwrap();
    b[at] = to;
    std::fs::write(p, b).unwrap();
}

fn key_files(store: &Path) -> Vec<String> {
    entries(&store.join("keys"))
        .into_iter()
        .filter(|n| !n.starts_with(".tmp-"))
        .collect()
}

#[test]
fn a_damaged_version_byte_is_called_damage_and_only_an_intact_newer_file_asks_for_an_upgrade() {
    // The config: one flipped version byte is damage, not a newer n8n-ark.
    let env = Ark::new().init(&[]);
    let cfg = env.store().join("config");
    let good = std::fs::read(&cfg).unwrap();
    flip(&cfg, 4, 2);
    let o = env.ark(&["list"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("config") && err.contains("damaged"), "{err}");
    assert!(!err.contains("upgrade") && !err.contains("newer"), "{err}");
    // A frame of a newer version, intact: that one is a newer writer.
    let mut newer = good.clone();
    newer[4] = 2;
    let n = newer.len();
    let sum = blake3::hash(&newer[..n - 32]);
    newer[n - 32..].copy_from_slice(sum.as_bytes());
    std::fs::write(&cfg, &newer).unwrap();
    let o = env.ark(&["list"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("upgrade n8n-ark"), "{}", stderr(&o));
    std::fs::write(&cfg, &good).unwrap();

    // An object: a flipped envelope version byte is damage.
    let input = env.path("input");
    std::fs::write(&input, common::dump(4, 1, 1)).unwrap();
    let o = env.ark(&["benchmark", "--input", input.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let obj = files_under(&env.store().join("objects"))[0].clone();
    flip(&obj, 4, 2);
    let o = env.ark(&["check", "--read-data"]);
    assert!(!o.status.success());
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    let name = obj.file_name().unwrap().to_str().unwrap();
    assert!(out.contains(name) && out.contains("damaged"), "{out}");
    assert!(!out.contains("upgrade") && !out.contains("newer"), "{out}");
}

#[test]
fn a_damaged_key_file_is_named_and_a_wrong_passphrase_is_said_only_when_an_intact_key_refuses_it() {
    let env = Ark::new().init(&[]);
    let store = env.store();
    let first = key_files(&store)[0].clone();
    // The only key file, its version byte flipped.
    flip(&store.join("keys").join(&first), 4, 2);
    let o = env.ark(&["list"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains(&format!("keys/{first}")) && err.contains("damaged"),
        "{err}"
    );
    assert!(
        !err.contains("wrong passphrase") && !err.contains("0 key file"),
        "{err}"
    );
    assert!(!err.contains("upgrade"), "{err}");

    // Two key files, one damaged: a wrong passphrase is a wrong passphrase,
    // and the damaged file is still named.
    flip(&store.join("keys").join(&first), 4, 1);
    let o = env
        .cmd()
        .env("ARK_NEW_PASSWORD", "a second passphrase")
        .args(["key", "add"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let keys = key_files(&store);
    assert_eq!(keys.len(), 2);
    let second = keys.iter().find(|k| **k != first).unwrap().clone();
    let kf = store.join("keys").join(&first);
    let mut b = std::fs::read(&kf).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x10;
    std::fs::write(&kf, b).unwrap();
    // (`check`: it always opens the store with its key; `list` on a current
    // catalog needs no key at all.)
    let o = env
        .cmd()
        .env("ARK_PASSWORD", "not any of them")
        .arg("check")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("wrong passphrase"), "{err}");
    assert!(err.contains("1 intact key file"), "{err}");
    assert!(
        err.contains(&format!("keys/{first}")) && err.contains("damaged"),
        "{err}"
    );
    assert!(!err.contains(&format!("keys/{second}")), "{err}");
    // The intact one opens.
    let o = env
        .cmd()
        .env("ARK_PASSWORD", "a second passphrase")
        .arg("list")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // And the first passphrase, whose only key file is damaged, is not "wrong".
    let o = env.ark(&["check"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains(&format!("keys/{first}")) && err.contains("damaged"),
        "{err}"
    );
}

#[test]
fn a_passphrase_file_that_never_ends_is_refused() {
    let env = Ark::new().init(&[]);
    // /dev/zero: endless. Bounded address space, so that a reader that tries
    // to hold it all fails instead of taking the machine's memory.
    let mut c = env.cmd();
    c.env_remove("ARK_PASSWORD")
        .env("ARK_PASSWORD_FILE", "/dev/zero")
        .arg("list");
    unsafe {
        use std::os::unix::process::CommandExt;
        c.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 2 << 30,
                rlim_max: 2 << 30,
            };
            libc::setrlimit(libc::RLIMIT_AS, &lim);
            Ok(())
        });
    }
    let o = run_bounded(c, Duration::from_secs(60));
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("/dev/zero") && err.contains("longer than"),
        "{err}"
    );

    // A FIFO that is never closed: no end either.
    let fifo = env.path("fifo");
    let cpath = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(cpath.as_ptr(), 0o600) }, 0);
    let f2 = fifo.clone();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let mut w = std::fs::OpenOptions::new().write(true).open(&f2).unwrap();
        let _ = w.write_all(&vec![b'x'; 200 * 1024]);
        // Kept open a while: the reader must not wait for its end.
        std::thread::sleep(Duration::from_secs(20));
    });
    let mut c = env.cmd();
    c.env_remove("ARK_PASSWORD")
        .env("ARK_PASSWORD_FILE", &fifo)
        .arg("list");
    let o = run_bounded(c, Duration::from_secs(15));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("longer than"), "{}", stderr(&o));
    drop(writer);

    // A normal passphrase file (with its newline) still works.
    let pf = env.path("pass");
    std::fs::write(&pf, format!("{PASSPHRASE}\n")).unwrap();
    let o = env
        .cmd()
        .env_remove("ARK_PASSWORD")
        .env("ARK_PASSWORD_FILE", &pf)
        .arg("list")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn two_inits_at_once_leave_one_store_with_only_the_winners_key() {
    for round in 0..6 {
        let env = Ark::new();
        std::fs::create_dir(env.store()).unwrap();
        let start = |pass: &str| {
            env.cmd()
                .env("ARK_PASSWORD", pass)
                // Slow enough key derivation that both are past their checks
                // before either writes.
                .env("ARK_KDF_TARGET_MS", "300")
                .arg("init")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let a = start("passphrase of a");
        let b = start("passphrase of b");
        let (oa, ob) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        let (winner, loser) = match (oa.status.success(), ob.status.success()) {
            (true, false) => ("passphrase of a", &ob),
            (false, true) => ("passphrase of b", &oa),
            _ => panic!(
                "round {round}: exactly one init must succeed: a {} {}, b {} {}",
                oa.status,
                stderr(&oa),
                ob.status,
                stderr(&ob)
            ),
        };
        let err = stderr(loser);
        assert!(
            err.contains("already") || err.contains("another init"),
            "round {round}: {err}"
        );
        assert_eq!(
            key_files(&env.store()).len(),
            1,
            "round {round}: the losing init left a key file"
        );
        let o = env
            .cmd()
            .env("ARK_PASSWORD", winner)
            .args(["--json", "key", "list"])
            .output()
            .unwrap();
        let keys = ok_json(&o);
        assert_eq!(keys.as_array().unwrap().len(), 1, "round {round}: {keys}");
        assert!(
            entries(&env.store().join("locks")).is_empty(),
            "round {round}: init left a lock"
        );
    }
}
