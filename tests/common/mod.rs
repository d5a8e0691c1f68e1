//! Helpers shared by the integration tests.
#![allow(dead_code)]
pub mod ark;
pub mod ctx;
pub mod docker;
pub mod fake_n8n;
pub mod pg;
use n8n_ark::store::local::LocalBackend;
use n8n_ark::store::{Backend, Encryption, InitOptions, Store};
use rand::{RngCore, SeedableRng};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use store_format::ChunkerParams;

// Each test file uses some of these.
#[allow(unused_imports)]
pub use ark::{ok_json, rt, stderr, Ark};

pub const PASSPHRASE: &str = "correct horse battery staple";

/// Key derivation tuned for tests (milliseconds, not half a second).
pub fn fast_kdf() {
    std::env::set_var("ARK_KDF_TARGET_MS", "20");
}

/// Small chunks so that tests of a few MiB have many of them; encrypted, as
/// stores are by default.
pub fn small_chunks() -> InitOptions {
    fast_kdf();
    InitOptions {
        chunker: ChunkerParams::new(16 * 1024, 64 * 1024, 256 * 1024),
        ..InitOptions::new(Encryption::Passphrase(PASSPHRASE.to_string().into()))
    }
}

pub async fn new_store(dir: &Path) -> Store {
    Store::init(
        Arc::new(LocalBackend::new(dir)) as Arc<dyn Backend>,
        small_chunks(),
    )
    .await
    .unwrap()
}

pub async fn open_store(dir: &Path) -> Store {
    open_with(dir, PASSPHRASE).await.unwrap()
}

pub async fn open_with(dir: &Path, pass: &str) -> Result<Store, n8n_ark::store::StoreError> {
    let p = pass.to_string();
    Store::open(
        Arc::new(LocalBackend::new(dir)) as Arc<dyn Backend>,
        &move || Ok(p.clone().into()),
    )
    .await
}

pub fn random_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rand_chacha::ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

/// n8n-shaped dump text of about `mib` MiB as of `day`.
pub fn dump(seed: u64, mib: usize, day: u32) -> Vec<u8> {
    n8n_ark::cli::demo::generate_dump(seed, mib * 1024 * 1024 / n8n_ark::cli::demo::AVG_ROW, day)
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_n8n-ark"))
}

/// Every file under `dir` with its content hash: to prove a command changed nothing.
pub fn snapshot(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.push((p.display().to_string(), "dir".into()));
                stack.push(p);
            } else {
                let h = blake3::hash(&std::fs::read(&p).unwrap_or_default())
                    .to_hex()
                    .to_string();
                out.push((p.display().to_string(), h));
            }
        }
    }
    out.sort();
    out
}

/// Makes `dir` read-only for this process. Root ignores permission bits, so
/// as root this uses a read-only bind mount; returns the read-only path and a
/// guard that undoes it.
pub struct ReadOnly {
    pub path: PathBuf,
    mounted: bool,
    original: PathBuf,
}

impl ReadOnly {
    pub fn new(dir: &Path, scratch: &Path) -> ReadOnly {
        let is_root = unsafe { libc::geteuid() } == 0;
        if is_root {
            let target = scratch.join("ro-view");
            std::fs::create_dir_all(&target).unwrap();
            let ok = std::process::Command::new("mount")
                .arg("--bind")
                .arg(dir)
                .arg(&target)
                .status()
                .unwrap()
                .success()
                && std::process::Command::new("mount")
                    .args(["-o", "remount,ro,bind"])
                    .arg(&target)
                    .status()
                    .unwrap()
                    .success();
            assert!(
                ok,
                "cannot make a read-only bind mount (needed to test a read-only store as root)"
            );
            ReadOnly {
                path: target,
                mounted: true,
                original: dir.to_path_buf(),
            }
        } else {
            set_mode_recursive(dir, true);
            ReadOnly {
                path: dir.to_path_buf(),
                mounted: false,
                original: dir.to_path_buf(),
            }
        }
    }
}

fn set_mode_recursive(dir: &Path, ro: bool) {
    use std::os::unix::fs::PermissionsExt;
    for e in walk(dir) {
        let md = std::fs::metadata(&e).unwrap();
        let mode = if md.is_dir() {
            if ro {
                0o555
            } else {
                0o755
            }
        } else if ro {
            0o444
        } else {
            0o644
        };
        std::fs::set_permissions(&e, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if out[i].is_dir() {
            for e in std::fs::read_dir(&out[i]).unwrap().flatten() {
                out.push(e.path());
            }
        }
        i += 1;
    }
    out
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        if self.mounted {
            let _ = std::process::Command::new("umount")
                .arg(&self.path)
                .status();
        } else {
            set_mode_recursive(&self.original, false);
        }
    }
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Every item of a backup, read back through the verifying reader, by name.
pub async fn restore_all(
    store: &Store,
    manifest: &str,
) -> std::collections::BTreeMap<String, Vec<u8>> {
    let m = store
        .read_manifest(&store_format::ObjectId::from_hex(manifest).unwrap())
        .await
        .unwrap();
    let mut out = std::collections::BTreeMap::new();
    for item in &m.items {
        let mut buf = Vec::new();
        let n = n8n_ark::store::reader::write_item(store, item, &mut buf)
            .await
            .unwrap();
        assert_eq!(n, item.size);
        out.insert(item.name.clone(), buf);
    }
    out
}

/// A process id that is not running now (a child that has exited).
pub fn dead_pid() -> u32 {
    let mut c = std::process::Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}
