//! The verification policy through the binary: the defaults, `verify policy
//! set`/`show` (and the catalog's copy, rebuilt), the verifications a backup
//! triggers (after_backup, every_n_backups, percent with a seeded draw),
//! `verify --due` (the daily restore verification of the newest backup, run
//! in a local sandbox when none is recent, not when one is), and a failing
//! verification after a backup (a damaged object): a warn line naming the
//! backup, the level and the first failed check, the backup still completed.
mod common;

use common::pg::PgCluster;
use common::{stderr, Ark};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Output;
use store_format::Event;

struct Env(Ark);

impl std::ops::Deref for Env {
    type Target = Ark;
    fn deref(&self) -> &Ark {
        &self.0
    }
}

impl Env {
    fn new() -> Env {
        let ark = Ark::new();
        let sandboxes = ark.path("sandboxes");
        std::fs::create_dir_all(&sandboxes).unwrap();
        std::fs::create_dir_all(ark.path("etc")).unwrap();
        let e = Env(ark
            .env("ARK_SANDBOX_TMPDIR", sandboxes)
            .init(&["--chunk-avg-kib", "64"]));
        e.write_config("N8N_ENCRYPTION_KEY=first\n");
        e
    }
    fn config_file(&self) -> PathBuf {
        self.path("etc/.env")
    }
    fn write_config(&self, s: &str) {
        std::fs::write(self.config_file(), s).unwrap();
    }
    /// A config-file backup (fast: no database) through the binary.
    fn config_backup(&self, extra: &[&str]) -> Output {
        let file = self.config_file();
        let args = [&["--config-path", file.to_str().unwrap()], extra].concat();
        self.backup_output("n8n_config", &args)
    }
    /// (backup id, level, passed) of every VerificationCompleted.
    fn verifications(&self) -> Vec<(String, String, bool)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::VerificationCompleted(v) => Some((v.backup_id, v.level, v.passed)),
                _ => None,
            })
            .collect()
    }
}

fn rules(v: &Value) -> Value {
    v["rules"].clone()
}

#[test]
fn defaults_set_show_and_the_catalog() {
    let env = Env::new();
    let shown = env.json(&["verify", "policy", "show"]);
    assert_eq!(shown["source"], "default");
    assert_eq!(
        rules(&shown),
        json!([
            {"level": "data", "schedule": "after_backup", "n": null, "percent": null},
            {"level": "restore", "schedule": "daily", "n": null, "percent": null},
        ])
    );

    // Bad input: one clear line, nothing recorded.
    let before = env.journal_len();
    for bad in [
        vec!["--rule", "bogus:daily"],
        vec!["--rule", "data:hourly"],
        vec!["--rule", "data:percent:0"],
        vec!["--rule", "data:percent:101"],
        vec!["--rule", "restore:every_n_backups:0"],
        vec!["--rule", "data:daily:2"],
        vec!["--rule", "data:daily", "--rule", "data:daily"],
        vec!["--rule", "data:daily", "--rule", "nonsense"],
    ] {
        let o = env.ark(&[&["verify", "policy", "set"], bad.as_slice()].concat());
        assert_eq!(o.status.code(), Some(2), "{bad:?} accepted");
        let err = stderr(&o);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.starts_with("error: "), "{err}");
    }
    assert!(!env.ark(&["verify", "policy", "set"]).status.success());
    assert_eq!(env.journal_len(), before, "a refused policy was recorded");
    assert_eq!(env.json(&["verify", "policy", "show"])["source"], "default");

    // Set, then shown as set (from the catalog), and recorded as an event.
    let o = env.ark(&[
        "verify",
        "policy",
        "set",
        "--rule",
        "exists:after_backup",
        "--rule",
        "restore:every_n_backups:5",
        "--rule",
        "data:percent:25",
        "--rule",
        "restore:weekly",
        "--rule",
        "data:manual",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let want = json!([
        {"level": "exists", "schedule": "after_backup", "n": null, "percent": null},
        {"level": "restore", "schedule": "every_n_backups", "n": 5, "percent": null},
        {"level": "data", "schedule": "percent", "n": null, "percent": 25},
        {"level": "restore", "schedule": "weekly", "n": null, "percent": null},
        {"level": "data", "schedule": "manual", "n": null, "percent": null},
    ]);
    let shown = env.json(&["verify", "policy", "show"]);
    assert_eq!(shown["source"], "set");
    assert_eq!(rules(&shown), want);
    assert!(shown["set_by"].as_str().unwrap().contains('@'));
    let statuses: Vec<&str> = shown["status"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["rule"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "exists:after_backup",
            "restore:every_n_backups:5",
            "data:percent:25",
            "restore:weekly",
            "data:manual"
        ]
    );
    let sets: Vec<_> = env
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::VerificationPolicySet(p) => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(sets.len(), 1);
    assert_eq!(serde_json::to_value(&sets[0].rules).unwrap(), want);

    // The catalog's copy: the same after a rebuild and after deleting it.
    let o = env.ark(&["catalog", "rebuild"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let again = env.json(&["verify", "policy", "show"]);
    assert_eq!(again["rules"], shown["rules"]);
    assert_eq!(again["seq"], shown["seq"]);
    assert_eq!(again["set_ms"], shown["set_ms"]);
    std::fs::remove_dir_all(env.dir.path().join("data")).unwrap();
    let again = env.json(&["verify", "policy", "show"]);
    assert_eq!(again["rules"], shown["rules"]);
    assert_eq!(again["seq"], shown["seq"]);

    // A later policy replaces it whole; --defaults goes back.
    let o = env.ark(&["verify", "policy", "set", "--rule", "restore:daily"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        rules(&env.json(&["verify", "policy", "show"])),
        json!([{"level": "restore", "schedule": "daily", "n": null, "percent": null}])
    );
    let o = env.ark(&["verify", "policy", "set", "--defaults"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let shown = env.json(&["verify", "policy", "show"]);
    assert_eq!(shown["source"], "set");
    assert_eq!(
        rules(&shown),
        json!([
            {"level": "data", "schedule": "after_backup", "n": null, "percent": null},
            {"level": "restore", "schedule": "daily", "n": null, "percent": null},
        ])
    );
}

#[test]
fn backups_trigger_after_backup_every_n_and_percent_rules() {
    let env = Env::new();
    // The defaults: data after every backup, run and recorded.
    let o = env.config_backup(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let b: Value = serde_json::from_slice(&o.stdout).unwrap();
    let id = b["backup_id"].as_str().unwrap().to_string();
    let runs = b["verifications"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{b}");
    assert_eq!(runs[0]["level"], "data");
    assert_eq!(runs[0]["rule"], "data:after_backup");
    assert_eq!(runs[0]["result"], "passed");
    assert_eq!(
        env.verifications(),
        [(id.clone(), "data".to_string(), true)]
    );
    // Text output says what ran.
    env.write_config("N8N_ENCRYPTION_KEY=second\n");
    let o = env
        .cmd()
        .args([
            "backup",
            "--type",
            "n8n_config",
            "--no-default-config-paths",
            "--config-path",
            env.config_file().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("verification data of backup"), "{out}");
    assert!(out.contains(": passed,"), "{out}");
    // --no-verify: nothing runs.
    let o = env.config_backup(&["--no-verify"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let b: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(b.get("verifications").is_none(), "{b}");
    assert_eq!(env.verifications().len(), 2);

    // every 2nd backup at exists, a seeded 50% at data, nothing after_backup.
    let o = env.ark(&[
        "verify",
        "policy",
        "set",
        "--rule",
        "exists:every_n_backups:2",
        "--rule",
        "data:percent:50",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let seed = "policy-test-seed";
    let mut drawn = Vec::new();
    // Backups 4 to 11 of the store (3 so far).
    for ordinal in 4..=11u64 {
        let before = env.verifications().len();
        let o = env
            .cmd()
            .env("ARK_VERIFY_SEED", seed)
            .args([
                "--json",
                "backup",
                "--type",
                "n8n_config",
                "--no-default-config-paths",
                "--config-path",
                env.config_file().to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let b: Value = serde_json::from_slice(&o.stdout).unwrap();
        let id = b["backup_id"].as_str().unwrap().to_string();
        // The documented draw: BLAKE3("n8n-ark verify percent\0" seed "\0" id "\0" rule index).
        let mut h = blake3::Hasher::new();
        h.update(b"n8n-ark verify percent\0");
        h.update(seed.as_bytes());
        h.update(b"\0");
        h.update(id.as_bytes());
        h.update(b"\0");
        h.update(b"1"); // the rule's index
        let d = h.finalize();
        let draw = u64::from_le_bytes(d.as_bytes()[..8].try_into().unwrap()) % 100;
        let mut want: Vec<(String, String, bool)> = Vec::new();
        if ordinal % 2 == 0 {
            want.push((id.clone(), "exists".into(), true));
        }
        if draw < 50 {
            want.push((id.clone(), "data".into(), true));
        }
        drawn.push(draw < 50);
        let got = env.verifications()[before..].to_vec();
        assert_eq!(got, want, "backup #{ordinal} {id}, draw {draw}");
        let levels: Vec<&str> = b["verifications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["level"].as_str().unwrap())
            .collect();
        let want_levels: Vec<&str> = want.iter().map(|w| w.1.as_str()).collect();
        assert_eq!(levels, want_levels);
    }
    // 8 draws at 50% all alike would happen once in 128 runs: the draw is
    // not a constant.
    if drawn.iter().all(|d| *d) || drawn.iter().all(|d| !*d) {
        eprintln!("note: all 8 seeded draws came out alike ({drawn:?})");
    }
    // policy show counts the backups for every_n_backups.
    let shown = env.json(&["verify", "policy", "show"]);
    assert_eq!(shown["completed_backups"], 11);
    assert!(shown["status"][0]["next"].as_str().unwrap().contains("#12"));
}

#[test]
fn a_failed_verification_after_a_backup_warns_and_the_backup_stays_completed() {
    let env = Env::new();
    let o = env.config_backup(&["--no-verify"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The config file's one object, damaged (one byte flipped).
    let mut objects = Vec::new();
    for d in std::fs::read_dir(env.store().join("objects")).unwrap() {
        for f in std::fs::read_dir(d.unwrap().path()).unwrap() {
            objects.push(f.unwrap().path());
        }
    }
    assert_eq!(objects.len(), 1, "{objects:?}");
    let object_id = objects[0]
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let mut bytes = std::fs::read(&objects[0]).unwrap();
    let at = bytes.len() - 5;
    bytes[at] ^= 0x40;
    std::fs::write(&objects[0], &bytes).unwrap();

    // The next backup of the same file reuses that object; its data
    // verification (the default policy) reads it and fails.
    let o = env
        .cmd()
        .args([
            "backup",
            "--type",
            "n8n_config",
            "--no-default-config-paths",
            "--config-path",
            env.config_file().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let out = String::from_utf8_lossy(&o.stdout);
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("backup "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no backup line: {out}"))
        .to_string();
    assert!(out.contains("completed"), "{out}");
    // The warn line: backup, level, first failed check naming the object.
    let short = &object_id[..12];
    let warn = err
        .lines()
        .find(|l| l.contains("WARN") && l.contains("n8n_ark::notify"))
        .unwrap_or_else(|| panic!("no notification line: {err}"));
    assert!(warn.contains(&id), "{warn}");
    assert!(warn.contains("verification data of backup"), "{warn}");
    assert!(warn.contains("first failed check"), "{warn}");
    assert!(warn.contains(short), "{warn}");
    // The command's last line says the backup completed and what failed.
    let last = err.trim().lines().last().unwrap();
    assert!(last.starts_with("error: backup "), "{last}");
    assert!(
        last.contains("completed, but its verification failed"),
        "{last}"
    );
    assert!(last.contains("level data"), "{last}");
    // The backup is completed in the catalog, the failure recorded.
    let list = env.json(&["list"]);
    let row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["backup_id"] == id.as_str())
        .unwrap_or_else(|| panic!("{list}"))
        .clone();
    assert_eq!(row["status"], "completed", "{row}");
    assert_eq!(env.verifications(), [(id, "data".to_string(), false)]);
}

#[test]
fn due_runs_the_daily_restore_verification_when_none_is_recent() {
    let env = Env::new();
    // No backup yet: nothing is due, and that is no error.
    let o = env.ark(&["verify", "--due"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("nothing is due"));

    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    let o = env.backup_output("postgres_n8n", &["--no-verify", "--n8n-db", &pg.url("n8n")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let id = serde_json::from_slice::<Value>(&o.stdout).unwrap()["backup_id"]
        .as_str()
        .unwrap()
        .to_string();
    let shown = env.json(&["verify", "policy", "show"]);
    assert_eq!(shown["status"][1]["rule"], "restore:daily");
    assert_eq!(shown["status"][1]["due_now"], true);

    // Due: the newest backup's restore verification, in a local sandbox.
    let v = env.json(&["verify", "--due", "--sandbox", "local"]);
    let runs = v["verifications"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{v}");
    assert_eq!(runs[0]["backup_id"], id.as_str());
    assert_eq!(runs[0]["level"], "restore");
    assert_eq!(runs[0]["rule"], "restore:daily");
    assert_eq!(runs[0]["result"], "passed", "{v}");
    assert!(
        runs[0]["sandbox"].as_str().unwrap().starts_with("local:"),
        "{v}"
    );
    assert!(runs[0]["checks_run"].as_u64().unwrap() > 50, "{v}");
    assert_eq!(
        env.verifications(),
        [(id.clone(), "restore".to_string(), true)]
    );

    // Recent now: nothing is due, nothing runs, nothing is recorded.
    let before = env.journal_len();
    let o = env.ark(&["verify", "--due", "--sandbox", "local"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("nothing is due"));
    assert_eq!(env.journal_len(), before);
    let shown = env.json(&["verify", "policy", "show"]);
    assert_eq!(shown["status"][1]["due_now"], false);
    assert_eq!(shown["status"][1]["last_run"]["backup_id"], id.as_str());
    assert_eq!(shown["status"][1]["last_run"]["result"], "passed");
    // No sandbox is left.
    let left: Vec<_> = std::fs::read_dir(env.dir.path().join("sandboxes"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
