//! The `n8n-ark` binary as an operator uses it: clear errors that change
//! nothing, JSON output, and crash safety under kill -9.
mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// The binary, with the test passphrase and fast key derivation.
fn ark_cmd() -> Command {
    let mut c = Command::new(bin());
    c.env_remove("ARK_STORE")
        .env("ARK_PASSWORD", PASSPHRASE)
        .env("ARK_KDF_TARGET_MS", "20");
    c
}

fn ark(store: &Path, args: &[&str]) -> Output {
    ark_cmd()
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .unwrap()
}

fn assert_fails_with(o: &Output, needle: &str) {
    assert!(
        !o.status.success(),
        "expected failure, got success: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let e = stderr(o);
    assert!(e.contains(needle), "stderr does not say {needle:?}: {e}");
    assert_eq!(
        e.trim().lines().count(),
        1,
        "an error is one clear line: {e}"
    );
}

#[test]
fn init_check_gc_with_json_output() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("store");
    let o = ark(&s, &["--json", "init"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["encryption"], "xchacha20poly1305-blake3");
    let input = dir.path().join("dump");
    std::fs::write(&input, dump(1, 4, 1)).unwrap();
    let o = ark(
        &s,
        &["--json", "benchmark", "--input", input.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["bytes"].as_u64().unwrap(),
        std::fs::metadata(&input).unwrap().len()
    );
    assert!(v["new_objects"].as_u64().unwrap() > 0);
    let o = ark(&s, &["--json", "check", "--read-data"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["backups"], 1);
    assert_eq!(v["errors"].as_array().unwrap().len(), 0);
    assert!(v["objects_read"].as_u64().unwrap() > 0);
    let o = ark(&s, &["--json", "gc", "--dry-run"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["objects_freed"], 0);
    // The second ingest of the same file stores nothing new.
    let o = ark(
        &s,
        &["--json", "benchmark", "--input", input.to_str().unwrap()],
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["new_objects"], 0);
    assert_eq!(v["reused_chunks_percent"], 100.0);
}

#[test]
fn bad_store_locations_get_a_clear_error_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    // Does not exist: nothing is created.
    let missing = dir.path().join("nope");
    assert_fails_with(&ark(&missing, &["check"]), "does not exist");
    assert_fails_with(&ark(&missing, &["gc"]), "does not exist");
    assert!(!missing.exists());
    // Init where the parent is missing.
    assert_fails_with(
        &ark(&missing.join("deeper"), &["init"]),
        "parent directory does not exist",
    );
    assert!(!missing.exists());

    // Not a store.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "my files").unwrap();
    let before = snapshot(&other);
    assert_fails_with(&ark(&other, &["check"]), "is not an n8n-ark store");
    assert_fails_with(&ark(&other, &["gc"]), "is not an n8n-ark store");
    assert_fails_with(&ark(&other, &["init"]), "is not empty");
    assert_eq!(snapshot(&other), before);

    // Already a store.
    let s = dir.path().join("store");
    assert!(ark(&s, &["init"]).status.success());
    let before = snapshot(&s);
    assert_fails_with(&ark(&s, &["init"]), "is already an n8n-ark store");
    assert_eq!(snapshot(&s), before);

    // No store at all, or an unsupported URL.
    let o = ark_cmd().args(["check"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no store given"), "{}", stderr(&o));
    let o = ark_cmd()
        .args(["--store", "ftp://host/x", "check"])
        .output()
        .unwrap();
    assert_fails_with(&o, "unsupported store URL");
}

#[test]
fn a_store_of_a_future_format_version_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("store");
    assert!(ark(&s, &["init"]).status.success());
    let mut cfg =
        store_format::StoreConfig::decode(&std::fs::read(s.join("config")).unwrap()).unwrap();
    cfg.format_version = 2;
    std::fs::write(s.join("config"), cfg.encode()).unwrap();
    let before = snapshot(&s);
    for cmd in [
        &["check"][..],
        &["gc"][..],
        &["benchmark", "--input", "/dev/null"][..],
    ] {
        let o = ark(&s, cmd);
        assert_fails_with(&o, "store format version 2 is newer than this n8n-ark understands (up to 1); upgrade n8n-ark");
    }
    assert_eq!(snapshot(&s), before);
}

#[test]
fn a_read_only_store_gets_a_clear_error_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("store");
    assert!(ark(&s, &["init"]).status.success());
    let input = dir.path().join("dump");
    std::fs::write(&input, dump(2, 2, 1)).unwrap();
    assert!(ark(&s, &["benchmark", "--input", input.to_str().unwrap()])
        .status
        .success());
    let before = snapshot(&s);
    let scratch = tempfile::tempdir().unwrap();
    let ro = ReadOnly::new(&s, scratch.path());
    // Reading works on a read-only store...
    let o = ark(&ro.path, &["check", "--read-data"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // ...writing says why it cannot.
    assert_fails_with(&ark(&ro.path, &["gc"]), "read-only");
    assert_fails_with(
        &ark(&ro.path, &["benchmark", "--input", input.to_str().unwrap()]),
        "read-only",
    );
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let ro2 = ReadOnly::new(&empty, &scratch.path().join("second"));
    assert_fails_with(&ark(&ro2.path, &["init"]), "permission denied");
    drop(ro2);
    drop(ro);
    assert_eq!(snapshot(&s), before);
    assert!(std::fs::read_dir(&empty).unwrap().next().is_none());
}

/// kill -9 at a random moment of an ingest or a gc, many times: no completed
/// backup may ever fail `check --read-data`, and the store stays usable.
#[test]
fn kill_9_during_ingest_or_gc_never_damages_a_completed_backup() {
    use rand::{Rng, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("store");
    assert!(ark(&s, &["init", "--chunk-avg-kib", "64"]).status.success());
    let inputs: Vec<_> = (0..4u32)
        .map(|day| {
            let p = dir.path().join(format!("day{day}"));
            let mut d = dump(9, 24, day + 1);
            d.extend_from_slice(&random_bytes(day as u64, 3 << 20));
            std::fs::write(&p, d).unwrap();
            p
        })
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(
        std::env::var("ARK_TEST_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(rand::random),
    );
    let rounds: usize = std::env::var("ARK_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    // Kill within the time a whole ingest takes on this machine, so most
    // rounds die mid-way whatever the machine's speed.
    let t = std::time::Instant::now();
    let o = ark(&s, &["benchmark", "--input", inputs[3].to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut window = (t.elapsed().as_millis() as u64).max(40);
    let (mut killed, mut completed) = (0, 0);
    for round in 0..rounds {
        let gc = round % 4 == 3;
        let mut cmd = ark_cmd();
        cmd.arg("--store")
            .arg(&s)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let input = dir.path().join("round-input");
        if gc {
            cmd.args(["gc", "--max-wait-secs", "2"]);
        } else {
            // Mostly known data, plus new data this round must write.
            let mut d = std::fs::read(&inputs[round % inputs.len()]).unwrap();
            d.extend_from_slice(&random_bytes(1000 + round as u64, 6 << 20));
            std::fs::write(&input, d).unwrap();
            cmd.args(["benchmark", "--input", input.to_str().unwrap()]);
        }
        let mut child = cmd.spawn().unwrap();
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..window)));
        // The window adapts so that about half the rounds die mid-way, however
        // fast or loaded the machine is.
        match child.try_wait().unwrap() {
            Some(status) => {
                let out = child.wait_with_output().unwrap();
                assert!(
                    status.success(),
                    "round {round}: finished with an error: {}",
                    stderr(&out)
                );
                completed += 1;
                window = (window * 7 / 10).max(20);
            }
            None => {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                killed += 1;
                window = window * 13 / 10;
            }
        }
        let o = ark(&s, &["--json", "check", "--read-data"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|_| panic!("round {round}: check printed no JSON: {}", stderr(&o)));
        assert!(
            o.status.success() && v["errors"].as_array().unwrap().is_empty(),
            "round {round}: {v:#}"
        );
    }
    assert!(
        killed >= rounds / 4,
        "only {killed} of {rounds} rounds were killed mid-way: the test is not testing"
    );
    // The store is still fully usable: a backup and a gc complete.
    let o = ark(&s, &["benchmark", "--input", inputs[0].to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = ark(&s, &["gc"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = ark(&s, &["--json", "check", "--read-data"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(o.status.success(), "{v:#}");
    assert!(v["backups"].as_u64().unwrap() as usize >= completed.min(1));
    eprintln!("{rounds} rounds: {killed} killed, {completed} completed");
}

/// The whole engine on object storage: init, ingest twice, check, gc.
#[test]
fn an_s3_store_works_end_to_end() {
    let bucket = match std::env::var("ARK_TEST_S3_BUCKET") {
        Ok(b) => b,
        Err(_) if std::env::var("ARK_SKIP_S3").as_deref() == Ok("1") => {
            eprintln!("SKIPPED: ARK_SKIP_S3=1");
            return;
        }
        Err(_) => panic!("ARK_TEST_S3_BUCKET is not set: start the test server first: eval \"$(tests/s3/start-server.sh)\" (or set ARK_SKIP_S3=1)"),
    };
    let url = format!("s3://{bucket}/cli-{}", uuid::Uuid::new_v4().simple());
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("dump");
    std::fs::write(&input, dump(4, 3, 1)).unwrap();
    let run = |args: &[&str]| {
        ark_cmd()
            .arg("--store")
            .arg(&url)
            .args(args)
            .output()
            .unwrap()
    };
    let o = run(&["init", "--chunk-avg-kib", "64"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_fails_with(&run(&["init"]), "already an n8n-ark store");
    for expect_new in [true, false] {
        let o = run(&["--json", "benchmark", "--input", input.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["new_objects"].as_u64().unwrap() > 0, expect_new, "{v:#}");
    }
    let o = run(&["--json", "check", "--read-data"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["backups"], 2);
    assert!(v["objects_read"].as_u64().unwrap() > 10);
    let o = run(&["--json", "gc"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["objects_freed"], 0);
    // A missing bucket prefix is "not a store", with nothing created.
    let o = ark_cmd()
        .args([
            "--store",
            &format!("s3://{bucket}/absent-{}", uuid::Uuid::new_v4().simple()),
            "check",
        ])
        .output()
        .unwrap();
    assert_fails_with(&o, "is not an n8n-ark store");
}

/// Memory stays bounded by the work in flight, never by the size of the input:
/// a 400 MiB ingest peaks far below its size (and below 256 MiB).
#[test]
fn ingest_memory_does_not_grow_with_the_input() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("store");
    assert!(ark(&s, &["init"]).status.success());
    let input = dir.path().join("big");
    let mut f = std::fs::File::create(&input).unwrap();
    let text = dump(21, 16, 1);
    for i in 0..4u64 {
        f.write_all(&text).unwrap();
        f.write_all(&random_bytes(50 + i, 84 << 20)).unwrap();
    }
    drop(f);
    let size = std::fs::metadata(&input).unwrap().len();
    assert!(size > 380 << 20, "{size}");
    let o = ark(
        &s,
        &["--json", "benchmark", "--input", input.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["bytes"].as_u64().unwrap(), size);
    let peak = v["peak_rss_bytes"]
        .as_u64()
        .expect("peak memory is reported");
    eprintln!("ingest of {} MiB peaked at {} MiB", size >> 20, peak >> 20);
    assert!(peak < 256 << 20, "peak memory {} MiB", peak >> 20);
    assert!(
        peak < size / 3,
        "peak memory {} MiB for {} MiB of input",
        peak >> 20,
        size >> 20
    );
}

/// A store with a few backups (of kind `benchmark`), for the commands below.
fn ark_with_backups(n: u64) -> Ark {
    let ark = Ark::new().init(&["--chunk-avg-kib", "64"]);
    let input = ark.path("dump");
    for day in 1..=n {
        std::fs::write(&input, dump(7, 1, day as u32)).unwrap();
        let o = ark.ark(&["benchmark", "--input", input.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    ark
}

/// A pipe whose reader is gone before the command starts: every write to it
/// fails with EPIPE, as when `| head` has read all it wanted.
fn closed_pipe() -> Stdio {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two descriptors, each then owned exactly once.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    drop(unsafe { std::os::fd::OwnedFd::from_raw_fd(fds[0]) });
    Stdio::from(unsafe { std::os::fd::OwnedFd::from_raw_fd(fds[1]) })
}

/// `n8n-ark … | head`: the reader stops early. The command ends quietly (no
/// panic, no "Broken pipe"), with the status it has when its output is read.
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let ark = ark_with_backups(3);
    let runs: &[&[&str]] = &[
        &["list"],
        &["--json", "list"],
        &["show", "latest"],
        &["--json", "show", "latest"],
        &["check"],
        &["--json", "check", "--read-data"],
        &["catalog", "status"],
        &["--json", "catalog", "status"],
        &["key", "list"],
        &["--json", "key", "list"],
        &["gc", "--dry-run"],
        &["--json", "gc", "--dry-run"],
        &["--help"],
        &["list", "--help"],
        &["--version"],
    ];
    for args in runs {
        let o = ark.cmd().args(*args).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        for (what, stderr_to) in [("stdout", false), ("stdout and stderr", true)] {
            let mut c = ark.cmd();
            c.args(*args).stdout(closed_pipe());
            if stderr_to {
                c.stderr(closed_pipe());
            } else {
                c.stderr(Stdio::piped());
            }
            let closed = c.output().unwrap();
            let err = stderr(&closed);
            assert_eq!(
                closed.status.code(),
                Some(0),
                "{args:?} with {what} closed: {:?}\n{err}",
                closed.status
            );
            assert!(
                !err.contains("panicked") && !err.contains("Broken pipe"),
                "{args:?} with {what} closed: {err}"
            );
        }
    }
    // Output that cannot be written for another reason (a full disk under
    // `> file`) is an error: the output is incomplete.
    let o = ark
        .cmd()
        .arg("list")
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the output could not be written"),
        "{}",
        stderr(&o)
    );
    // A failing command keeps its own status with a closed stdout.
    let o = ark
        .cmd()
        .args(["show", "no-such-backup"])
        .stdout(closed_pipe())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
}

/// Writes `text` as a config file beside the store and returns its path.
fn config_file(ark: &Ark, name: &str, text: &str) -> std::path::PathBuf {
    let p = ark.path(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A config file that is missing, not TOML, has an unknown key (in a table
/// or at the top) or is a directory stops every command before it does
/// anything: exit 2, one line naming the file and what is wrong, nothing
/// written to the store or the data directory; the same from ARK_CONFIG,
/// also when ARK_STORE is set (read commands used to ignore it).
#[test]
fn config_file_errors_stop_every_command_before_anything_else() {
    let ark = ark_with_backups(1);
    let _ = std::fs::remove_dir_all(ark.data());
    let missing = ark.path("no-such.toml");
    let not_toml = config_file(&ark, "not-toml.toml", "store = \n");
    let typo = config_file(
        &ark,
        "typo.toml",
        "# n8n-ark\n\n[n8n]\ndatabse = \"postgres://n8n@127.0.0.1/n8n\"\n",
    );
    let top_typo = config_file(&ark, "top.toml", "stroe = \"/srv/ark\"\n");
    let dir = ark.path("a-directory");
    std::fs::create_dir(&dir).unwrap();
    let cases: Vec<(&std::path::Path, Vec<&str>)> = vec![
        (
            &missing,
            vec!["cannot read the config file", "no-such.toml"],
        ),
        (&not_toml, vec!["not-toml.toml", "line 1"]),
        (
            &typo,
            vec![
                "typo.toml",
                "line 4",
                "unknown key `databse` in [n8n]",
                "database, database_password_file, api_url, api_key_file",
            ],
        ),
        (
            &top_typo,
            vec![
                "top.toml",
                "line 1",
                "unknown key `stroe`",
                "store, data_dir, n8n, postgres, config_files, restore",
            ],
        ),
        (&dir, vec!["is a directory"]),
    ];
    let out = ark.path("restored");
    let commands: &[&[&str]] = &[
        &["list"],
        &["--json", "show", "latest"],
        &["check"],
        &["gc"],
        &["verify", "latest", "--level", "exists"],
        &["key", "list"],
        &["catalog", "status"],
        &["catalog", "rebuild"],
        &["benchmark", "--input", "/dev/null"],
        &[
            "backup",
            "--type",
            "flows",
            "--n8n-db",
            "postgres://n8n@127.0.0.1:1/n8n",
        ],
        &[
            "restore",
            "workflow",
            "latest",
            "x",
            "--out",
            out.to_str().unwrap(),
        ],
    ];
    let store_before = snapshot(&ark.store());
    for (config, needles) in &cases {
        for args in commands {
            for how in ["--config", "ARK_CONFIG", "ARK_CONFIG with ARK_STORE"] {
                let mut c = ark.cmd();
                match how {
                    "--config" => {
                        c.arg("--config").arg(config);
                    }
                    "ARK_CONFIG" => {
                        c.env("ARK_CONFIG", config);
                    }
                    _ => {
                        c.env("ARK_CONFIG", config).env("ARK_STORE", ark.store());
                    }
                }
                let o = c.args(*args).output().unwrap();
                let err = stderr(&o);
                let what = format!("{args:?} with {} ({how})", config.display());
                assert_eq!(o.status.code(), Some(2), "{what}: {err}");
                assert_eq!(err.trim().lines().count(), 1, "{what}: one line: {err}");
                assert!(err.starts_with("error: "), "{what}: {err}");
                for n in needles {
                    assert!(err.contains(n), "{what}: no {n:?} in: {err}");
                }
                assert!(!err.contains("no store given"), "{what}: {err}");
            }
        }
    }
    assert_eq!(snapshot(&ark.store()), store_before, "the store changed");
    assert!(!ark.data().exists(), "a command made the data directory");
    assert!(!out.exists());
    // A good config file still works, and a store in it is used.
    let good = config_file(
        &ark,
        "good.toml",
        &format!("store = {:?}\n", ark.store().to_str().unwrap()),
    );
    let o = Command::new(bin())
        .env_remove("ARK_STORE")
        .env("ARK_PASSWORD", PASSPHRASE)
        .env("ARK_KDF_TARGET_MS", "20")
        .arg("--data-dir")
        .arg(ark.data())
        .arg("--config")
        .arg(&good)
        .args(["--json", "list"])
        .output()
        .unwrap();
    assert_eq!(ok_json(&o).as_array().unwrap().len(), 1);
}

/// The exit codes of the README's table: 2 for usage and configuration
/// errors (found before anything is done), 1 for an operation that failed.
#[test]
fn usage_and_configuration_errors_exit_2_and_say_what_is_valid() {
    let ark = ark_with_backups(1);
    let kinds = "postgres_full, postgres_n8n, n8n_config, flows, full_system, benchmark, demo";
    {
        use clap::ValueEnum;
        // `backup --type` offers every kind a backup can be taken of.
        let takes: Vec<&str> = n8n_ark::cli::value_enums::KindArg::value_variants()
            .iter()
            .map(|k| n8n_ark::backup::BackupKind::from(*k).as_str())
            .collect();
        assert_eq!(n8n_ark::backup::ALL_KINDS[..takes.len()], takes[..]);
        assert_eq!(n8n_ark::backup::ALL_KINDS.join(", "), kinds);
    }
    // An unknown kind: refused, naming the valid ones.
    let o = ark.ark(&["list", "--kind", "bogus"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("bogus"), "{}", stderr(&o));
    for k in kinds.split(", ") {
        assert!(stderr(&o).contains(k), "{k} not named: {}", stderr(&o));
    }
    for args in [
        &["show", "latest:bogus"][..],
        &["--json", "show", "latest:bogus"][..],
        &["diff", "latest:bogus", "latest"][..],
        &["verify", "latest:bogus"][..],
    ] {
        let o = ark.ark(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("latest:bogus"), "{args:?}: {err}");
        assert!(err.contains(kinds), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
    // A kind with no backup is not an error of usage.
    let o = ark.ark(&["show", "latest:flows"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    // Backups refused for their settings exit 2, like every usage error.
    for args in [
        &["--type", "postgres_n8n"][..],
        &["--type", "n8n_config", "--config-path", "relative/.env"][..],
    ] {
        let o = ark.backup_output(args[1], &args[2..]);
        assert_eq!(o.status.code(), Some(2), "backup {args:?}: {}", stderr(&o));
    }
    // An empty store location says so.
    for how in ["flag", "env"] {
        let mut c = Command::new(bin());
        c.env("ARK_PASSWORD", PASSPHRASE)
            .arg("--data-dir")
            .arg(ark.data());
        if how == "flag" {
            c.env_remove("ARK_STORE").args(["--store", ""]);
        } else {
            c.env("ARK_STORE", "");
        }
        let o = c.arg("list").output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{how}: {err}");
        assert!(err.contains("the store location is empty"), "{how}: {err}");
        assert!(!err.contains(" does not exist"), "{how}: {err}");
    }
    // No passphrase, or a passphrase file that cannot be read: settings
    // missing (2); a wrong passphrase: refused by the store (1). (`check`
    // needs the key; `list` on a current catalog does not ask for it.)
    let o = ark
        .cmd()
        .env_remove("ARK_PASSWORD")
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no passphrase"), "{}", stderr(&o));
    let o = ark
        .cmd()
        .env_remove("ARK_PASSWORD")
        .env("ARK_PASSWORD_FILE", ark.path("no-such-file"))
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = ark
        .cmd()
        .env("ARK_PASSWORD", "wrong")
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    // A clap usage error, and a failed operation.
    assert_eq!(ark.ark(&["list", "--no-such-flag"]).status.code(), Some(2));
    assert_eq!(ark.ark(&["show", "nosuchbackup"]).status.code(), Some(1));
}

/// `n8n-ark demo` writes only into a store it creates: with ARK_STORE set (as
/// "Using it" in the README has it) it works in a temporary store of its own
/// and removes it; `--store` naming an existing store is refused; `--store`
/// naming a new directory makes a store there and keeps it.
#[test]
fn the_demo_never_touches_a_store_it_did_not_create() {
    let ark = ark_with_backups(1);
    let tmp = ark.path("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let before = snapshot(&ark.store());
    let demo = |store_flag: Option<&std::path::Path>| {
        let mut c = Command::new(bin());
        c.env("ARK_STORE", ark.store())
            .env("ARK_PASSWORD", PASSPHRASE)
            .env("ARK_KDF_TARGET_MS", "20")
            .env("TMPDIR", &tmp)
            .env_remove("ARK_CONFIG")
            .env_remove("ARK_DATA_DIR");
        if let Some(s) = store_flag {
            c.arg("--store").arg(s);
        }
        c.args(["demo", "--size-mib", "1"]).output().unwrap()
    };
    // ARK_STORE is the operator's store: the demo does not use it.
    let o = demo(None);
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{text}{}", stderr(&o));
    assert_eq!(
        snapshot(&ark.store()),
        before,
        "the demo wrote into ARK_STORE"
    );
    assert!(
        !text.contains(ark.store().to_str().unwrap()),
        "the demo names the operator's store: {text}"
    );
    assert!(text.contains("removed"), "{text}");
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "the demo left its temporary store behind"
    );
    // --store naming an existing store (whoever made it): refused, untouched.
    let o = demo(Some(&ark.store()));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("already"), "{}", stderr(&o));
    assert_eq!(snapshot(&ark.store()), before);
    // --store naming a new directory: the demo's store, kept.
    let mine = ark.path("demo-store");
    let o = demo(Some(&mine));
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{text}{}", stderr(&o));
    assert!(mine.join("config").is_file());
    assert!(text.contains(mine.to_str().unwrap()), "{text}");
    // ...and running it again there is refused too: it exists now.
    let o = demo(Some(&mine));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

/// Runs `script` in a network namespace of its own (only a loopback, which
/// also carries 169.254.169.254, the cloud metadata address, with a listener
/// on port 80 that records every connection). Nothing can leave the machine
/// from there. Returns the command's output and what the listener saw.
fn in_a_private_network(ark: &Ark, env: &[(&str, &str)], args: &[&str]) -> (Output, String) {
    let seen = ark.path("metadata-connections");
    let _ = std::fs::remove_file(&seen);
    let listener = r#"
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("169.254.169.254", 80))
s.listen(16)
open(sys.argv[2], "w").close()
while True:
    c, _ = s.accept()
    with open(sys.argv[1], "a") as f:
        f.write(repr(c.recv(4096)[:200]) + "\n")
    c.sendall(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
    c.close()
"#;
    let script = r#"set -e
ip link set lo up
ip addr add 169.254.169.254/32 dev lo
python3 -c "$LISTENER" "$SEEN" "$SEEN.ready" &
pid=$!
for _ in $(seq 1 100); do [ -e "$SEEN.ready" ] && break; sleep 0.05; done
[ -e "$SEEN.ready" ] || { echo "the listener did not start" >&2; exit 99; }
set +e
"$@"
rc=$?
kill $pid
exit $rc
"#;
    let mut c = Command::new("unshare");
    // -r: a user namespace too, so that this works without root where
    // unprivileged user namespaces are allowed.
    c.args(["-rn", "sh", "-c", script, "sh"])
        .arg(bin())
        .args(args)
        .env("LISTENER", listener)
        .env("SEEN", &seen)
        .env("ARK_PASSWORD", PASSPHRASE)
        .env("ARK_KDF_TARGET_MS", "20")
        .env_remove("ARK_STORE")
        .env_remove("ARK_CONFIG");
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k == "ARK_S3_ENDPOINT" {
            c.env_remove(k);
        }
    }
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().expect("run unshare (util-linux)");
    assert_ne!(
        o.status.code(),
        Some(99),
        "cannot set up the private network (unshare -rn, ip): {}",
        stderr(&o)
    );
    assert!(
        !stderr(&o).contains("unshare failed") && !stderr(&o).contains("unshare: "),
        "a network namespace is needed for this test (unshare -rn): {}",
        stderr(&o)
    );
    (o, std::fs::read_to_string(&seen).unwrap_or_default())
}

/// An s3:// store without credentials: a configuration error naming the
/// missing AWS_* settings, without any connection to the cloud metadata
/// service (169.254.169.254). Asking for it (AWS_METADATA_ENDPOINT) is the
/// only way it is contacted.
#[test]
fn an_s3_store_without_credentials_never_asks_the_metadata_service() {
    let ark = Ark::new();
    // The S3 endpoint: a closed port on the namespace's own loopback.
    let endpoint = ("AWS_ENDPOINT_URL", "http://127.0.0.1:9");
    let store = "s3://ark-bucket/prefix";
    let data = ark.data();
    let data = data.to_str().unwrap();
    for (env, missing) in [
        (
            vec![endpoint],
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        ),
        (
            vec![endpoint, ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")],
            "AWS_SECRET_ACCESS_KEY",
        ),
    ] {
        for args in [&["list"][..], &["check"][..], &["init"][..]] {
            let args = [&["--store", store, "--data-dir", data], args].concat();
            let (o, seen) = in_a_private_network(&ark, &env, &args);
            let err = stderr(&o);
            assert_eq!(
                seen, "",
                "{args:?}: the metadata service was contacted: {err}"
            );
            assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
            assert!(
                err.contains(missing),
                "{args:?}: {missing} not named: {err}"
            );
            if env.len() == 1 {
                assert!(err.contains("AWS_METADATA_ENDPOINT"), "{args:?}: {err}");
            }
            assert!(!err.contains("403"), "{args:?}: {err}");
            assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        }
    }
    // Asked for explicitly, it is used (and its refusal reported).
    let (o, seen) = in_a_private_network(
        &ark,
        &[
            endpoint,
            ("AWS_METADATA_ENDPOINT", "http://169.254.169.254"),
        ],
        &["--store", store, "--data-dir", data, "check"],
    );
    assert!(!o.status.success());
    assert!(
        seen.contains("/latest/api/token"),
        "{seen:?}: {}",
        stderr(&o)
    );
}

/// A command with a pseudo-terminal (script(1)), the way an operator runs
/// it; returns everything the terminal showed.
fn on_a_terminal(ark: &Ark, env: &[(&str, &str)], args: &[&str]) -> (bool, String) {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let line = std::iter::once(bin().to_str().unwrap().to_string())
        .chain(
            [
                "--store",
                ark.store().to_str().unwrap(),
                "--data-dir",
                ark.data().to_str().unwrap(),
            ]
            .iter()
            .chain(args)
            .map(|a| a.to_string()),
        )
        .map(|a| quote(&a))
        .collect::<Vec<_>>()
        .join(" ");
    let mut c = Command::new("script");
    c.args(["-q", "-e", "-f", "-c", &line, "/dev/null"])
        .env_remove("ARK_STORE")
        .env_remove("ARK_LOG")
        .env_remove("ARK_CONFIG")
        .env_remove("NO_COLOR")
        .env("ARK_PASSWORD", PASSPHRASE)
        .env("ARK_KDF_TARGET_MS", "20")
        .env("TERM", "xterm");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).to_string() + &stderr(&o),
    )
}

/// Colour (SGR) escape sequences in `text`.
fn colour_codes(text: &str) -> usize {
    let mut n = 0;
    let mut rest = text;
    while let Some(i) = rest.find("\x1b[") {
        rest = &rest[i + 2..];
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == ';'))
            .unwrap_or(rest.len());
        if rest[end..].starts_with('m') {
            n += 1;
        }
        rest = &rest[end..];
    }
    n
}

/// Warnings during a backup: redirected, structured log lines and no escape
/// codes; on a terminal, plain `warning:` lines (no timestamp, no log
/// target) that do not mix log records into the results, in no colour when
/// NO_COLOR is set.
#[test]
fn log_lines_and_colour_only_where_they_belong() {
    let ark = Ark::new().init(&[]);
    // A FIFO among the config files: the backup skips it with a warning.
    let etc = ark.path("etc");
    std::fs::create_dir(&etc).unwrap();
    std::fs::write(etc.join("nginx.conf"), "events {}\n").unwrap();
    let fifo = etc.join("a-fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let etc_s = etc.to_str().unwrap();
    let backup = [
        "backup",
        "--type",
        "n8n_config",
        "--no-default-config-paths",
        "--no-verify",
        "--config-path",
        etc_s,
    ];

    // Redirected: the log lines are there, with no escape codes at all.
    let o = ark.ark(&backup);
    assert!(o.status.success(), "{}", stderr(&o));
    let both = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert!(
        !both.contains('\x1b'),
        "escape codes in redirected output: {both:?}"
    );
    assert!(stderr(&o).contains("backup started"), "{}", stderr(&o));
    assert!(stderr(&o).contains("WARN"), "{}", stderr(&o));

    // On a terminal: the warning as one plain line, no log records.
    let (ok, screen) = on_a_terminal(&ark, &[], &backup);
    assert!(ok, "{screen}");
    let warning = screen
        .lines()
        .find(|l| l.contains("a-fifo"))
        .unwrap_or_else(|| panic!("no warning about the FIFO: {screen:?}"));
    assert!(warning.contains("warning: skipping"), "{warning:?}");
    assert!(!warning.contains("WARN"), "{warning:?}");
    assert!(
        !screen.contains("n8n_ark::"),
        "log targets on a terminal: {screen:?}"
    );
    assert!(
        !screen.contains(" INFO "),
        "log records on a terminal: {screen:?}"
    );
    assert!(!screen.contains("backup started"), "{screen:?}");
    assert!(
        !screen.contains(&format!("{}-", chrono::Utc::now().format("%Y"))),
        "timestamps on a terminal: {screen:?}"
    );
    assert!(screen.contains("completed in"), "{screen:?}");

    // NO_COLOR: no colour codes at all, even on a terminal.
    let (ok, screen) = on_a_terminal(&ark, &[("NO_COLOR", "1")], &backup);
    assert!(ok, "{screen}");
    assert!(screen.contains("a-fifo"), "{screen:?}");
    assert_eq!(colour_codes(&screen), 0, "colour with NO_COLOR: {screen:?}");
    let (ok, screen) = on_a_terminal(&ark, &[("NO_COLOR", "1")], &["list", "--kind", "bogus"]);
    assert!(!ok);
    assert_eq!(colour_codes(&screen), 0, "colour with NO_COLOR: {screen:?}");
}
