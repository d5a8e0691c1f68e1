//! The n8n-ark binary as an operator runs it, in a temporary directory of its
//! own: the store, the data dir (catalog) and whatever a test puts beside them.
use super::{bin, PASSPHRASE};
use serde_json::Value;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, Output};
use store_format::Event;

pub struct Ark {
    pub dir: tempfile::TempDir,
    env: Vec<(String, OsString)>,
}

impl Ark {
    /// A directory with no store in it yet (see [`Ark::init`]).
    pub fn new() -> Ark {
        Ark {
            dir: tempfile::tempdir().unwrap(),
            env: Vec::new(),
        }
    }

    /// Every command of this Ark runs with `key=value` in its environment.
    pub fn env(mut self, key: &str, value: impl Into<OsString>) -> Ark {
        self.env.push((key.to_string(), value.into()));
        self
    }

    /// Runs `init ARGS…`; panics when it fails.
    pub fn init(self, args: &[&str]) -> Ark {
        let o = self.ark(&[&["init"], args].concat());
        assert!(o.status.success(), "init: {}", stderr(&o));
        self
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn store(&self) -> PathBuf {
        self.path("store")
    }

    /// The data dir: where the catalog lives.
    pub fn data(&self) -> PathBuf {
        self.path("data")
    }

    /// The binary with `--store` and `--data-dir` set, the store's passphrase
    /// and a fast key derivation, and none of the caller's `ARK_*` settings
    /// (nor `N8N_ENCRYPTION_KEY`): only what the test gives it. `ARK_TEST_*`
    /// variables (which images to use) are the test harness's and stay.
    pub fn cmd(&self) -> Command {
        self.cmd_in(&self.data())
    }

    /// [`Ark::cmd`] with another data dir: another machine's catalog of the
    /// same store.
    pub fn cmd_in(&self, data: &std::path::Path) -> Command {
        let mut c = Command::new(bin());
        for (k, _) in std::env::vars_os() {
            let Some(k) = k.to_str() else { continue };
            if (k.starts_with("ARK_") && !k.starts_with("ARK_TEST_")) || k == "N8N_ENCRYPTION_KEY" {
                c.env_remove(k);
            }
        }
        c.env("ARK_PASSWORD", PASSPHRASE)
            .env("ARK_KDF_TARGET_MS", "20")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .arg("--store")
            .arg(self.store())
            .arg("--data-dir")
            .arg(data);
        c
    }

    pub fn ark(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// `--json ARGS…`: its output, parsed; panics when the command fails.
    pub fn json(&self, args: &[&str]) -> Value {
        let o = self.ark(&[&["--json"], args].concat());
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    }

    /// `--json backup --type KIND --no-default-config-paths ARGS…`, to run.
    pub fn backup_cmd(&self, kind: &str, args: &[&str]) -> Command {
        let mut c = self.cmd();
        c.args([
            "--json",
            "backup",
            "--type",
            kind,
            "--no-default-config-paths",
        ])
        .args(args);
        c
    }

    /// [`Ark::backup_cmd`], run.
    pub fn backup_output(&self, kind: &str, args: &[&str]) -> Output {
        self.backup_cmd(kind, args).output().unwrap()
    }

    /// [`Ark::backup_output`] that must succeed: the backup's summary.
    pub fn backup(&self, kind: &str, args: &[&str]) -> Value {
        let o = self.backup_output(kind, args);
        assert!(o.status.success(), "backup {kind} failed: {}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    }
}

impl Ark {
    /// `restore history`: every restore recorded, newest first.
    pub fn restore_history(&self) -> Vec<Value> {
        self.json(&["restore", "history"])
            .as_array()
            .unwrap()
            .clone()
    }

    /// The store's journal, read back (a torn or broken journal panics).
    pub fn events(&self) -> Vec<Event> {
        rt().block_on(async {
            let store = super::open_store(&self.store()).await;
            let r = n8n_ark::store::journal::replay(&store).await.unwrap();
            assert!(r.problem.is_none(), "{:?}", r.problem);
            r.records.into_iter().map(|r| r.event).collect()
        })
    }

    /// The manifest of a backup, by its id (read from the store itself).
    pub fn manifest_of(&self, backup_id: &str) -> store_format::Manifest {
        rt().block_on(async {
            let store = super::open_store(&self.store()).await;
            for id in store.list_manifest_ids().await.unwrap() {
                let m = store.read_manifest(&id).await.unwrap();
                if m.backup_id == backup_id {
                    return m;
                }
            }
            panic!("no manifest of backup {backup_id}")
        })
    }

    /// How many manifests (backups) the store holds.
    pub fn manifest_count(&self) -> usize {
        count_entries(&self.store().join("manifests"))
    }

    /// How many journal records the store holds.
    pub fn journal_len(&self) -> usize {
        std::fs::read_dir(self.store().join("journal"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| {
                        let n = e.file_name();
                        let n = n.to_string_lossy();
                        n.len() == 20 && n.bytes().all(|b| b.is_ascii_digit())
                    })
                    .count()
            })
            .unwrap_or(0)
    }
}

fn count_entries(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// The JSON a successful command printed; panics with its stderr when it failed.
pub fn ok_json(o: &Output) -> Value {
    assert!(
        o.status.success(),
        "expected success: {}\n{}",
        stderr(o),
        String::from_utf8_lossy(&o.stdout)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A two-thread runtime for the tests' own async work (reading the store).
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}
