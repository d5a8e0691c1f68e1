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
