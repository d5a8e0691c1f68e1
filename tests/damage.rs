//! The damage suite: a store of five backups is damaged at random — a bit
//! flipped, a file cut short, deleted, or replaced by another file of its
//! kind (a replay) — in its journal records, manifests, objects and key
//! files, and the catalog (its structure: garbage, a cut, a bad page, gone),
//! one damage per round, on a fresh copy each time. After each:
//!
//! - the damage is detected: `check --read-data` fails and names the damaged
//!   file (a damaged key file: the store refuses that passphrase, naming the
//!   key file, and opens with another);
//! - the backups it affects are named (an object or manifest: exactly the
//!   backups that need it; a journal record: the backup whose event it held);
//! - the store is recovered where the data allows: `repair journal --yes`
//!   for journal damage (then `check` passes), a catalog rebuilt on a new
//!   data dir;
//! - every backup whose data survived (its manifest and every object it
//!   names intact) restores, byte for byte: "backups still restorable after
//!   the damage / backups whose data survived" = 100%.
//!
//! `ARK_DAMAGE_ROUNDS` sets the number of rounds (default 30; CI runs the
//! default), `ARK_DAMAGE_SEED` the seed (printed, so that a failing round can
//! be replayed).
mod common;

use common::{ok_json, rt, stderr, Ark, PASSPHRASE};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const SECOND_PASSPHRASE: &str = "a second passphrase for the damage suite";

/// One backup of the pristine store, and what it needs.
struct Backup {
    id: String,
    manifest: String,
    objects: BTreeSet<String>,
    /// The files it holds, by path relative to the backed-up tree.
    files: BTreeMap<String, Vec<u8>>,
}

struct Pristine {
    ark: Ark,
    tree: PathBuf,
    backups: Vec<Backup>,
    /// Key file names, the first opened by `PASSPHRASE`.
    keys: Vec<String>,
    /// Journal record number → the backup whose start or completion it holds.
    journal: BTreeMap<u64, (String, &'static str)>,
}

fn write_tree(dir: &Path, day: u32, rng: &mut impl Rng) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut put = |rel: &str, data: Vec<u8>| {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, &data).unwrap();
        files.insert(rel.to_string(), data);
    };
    put(
        "opt/n8n/.env",
        format!("N8N_HOST=n8n.example.com\nN8N_ENCRYPTION_KEY=k3y\n# day {day}\n").into_bytes(),
    );
    put(
        "opt/n8n/docker-compose.yaml",
        b"services:\n  n8n:\n    image: n8nio/n8n\n    env_file: .env\n".to_vec(),
    );
    put(
        "etc/nginx/nginx.conf",
        b"events {}\nhttp { include conf.d/*.conf; }\n".to_vec(),
    );
    // Larger files, several chunks each: some stay, some change every day.
    let mut stable = vec![0u8; 200 * 1024];
    rand_chacha::ChaCha8Rng::seed_from_u64(7).fill(&mut stable[..]);
    put("etc/letsencrypt/archive/cert1.pem", stable);
    let mut daily = vec![0u8; 150 * 1024];
    rng.fill(&mut daily[..]);
    put(&format!("var/log/day{}.bin", day % 2), daily);
    files
}

fn build() -> Pristine {
    let ark = Ark::new().init(&["--chunk-avg-kib", "64"]);
    let o = ark
        .cmd()
        .env("ARK_NEW_PASSWORD", SECOND_PASSPHRASE)
        .args(["key", "add"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let tree = ark.path("server");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
    let mut ids = Vec::new();
    let mut contents = Vec::new();
    for day in 1..=5 {
        // Each backup holds the whole tree as it is that day.
        let _ = std::fs::remove_dir_all(&tree);
        let files = write_tree(&tree, day, &mut rng);
        let v = ark.backup(
            "n8n_config",
            &["--no-verify", "--config-path", tree.to_str().unwrap()],
        );
        ids.push(v["backup_id"].as_str().unwrap().to_string());
        contents.push(files);
    }
    let (backups, keys, journal) = rt().block_on(async {
        let store = common::open_store(&ark.store()).await;
        let mut backups = Vec::new();
        let mids = store.list_manifest_ids().await.unwrap();
        for (id, files) in ids.iter().zip(contents) {
            for mid in &mids {
                let m = store.read_manifest(mid).await.unwrap();
                if &m.backup_id == id {
                    backups.push(Backup {
                        id: id.clone(),
                        manifest: mid.to_hex(),
                        objects: m.object_ids().map(|o| o.to_hex()).collect(),
                        files: files.clone(),
                    });
                }
            }
        }
        let current = store.key_id().unwrap().to_string();
        let mut keys: Vec<String> = n8n_ark::store::keys::list_keys(&store)
            .await
            .unwrap()
            .into_iter()
            .map(|k| k.id)
            .collect();
        keys.sort_by_key(|k| *k != current);
        let mut journal = BTreeMap::new();
        for r in n8n_ark::store::journal::replay(&store)
            .await
            .unwrap()
            .records
        {
            match r.event {
                store_format::Event::BackupStarted(e) => {
                    journal.insert(r.seq, (e.backup_id, "start"));
                }
                store_format::Event::BackupCompleted(e) => {
                    journal.insert(r.seq, (e.backup_id, "completion"));
                }
                _ => {}
            }
        }
        (backups, keys, journal)
    });
    assert_eq!(backups.len(), 5);
    Pristine {
        ark,
        tree,
        backups,
        keys,
        journal,
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Damage {
    FlipBit,
    Truncate,
    Delete,
    /// Another file of the same kind copied over it.
    Replay,
}

#[derive(Debug, Clone, PartialEq)]
enum Target {
    Journal(u64),
    Manifest(String),
    Object(String),
    Key(String),
    /// The catalog (a projection, rebuilt from the store when damaged).
    Catalog,
}

fn path_of(store: &Path, t: &Target) -> PathBuf {
    match t {
        Target::Journal(seq) => store.join("journal").join(format!("{seq:020}")),
        Target::Manifest(m) => store.join("manifests").join(m),
        Target::Object(o) => store.join("objects").join(&o[..2]).join(o),
        Target::Key(k) => store.join("keys").join(k),
        Target::Catalog => unreachable!("the catalog is not in the store"),
    }
}

/// The one catalog file under a data dir.
fn catalog_file(data: &Path) -> PathBuf {
    std::fs::read_dir(data.join("catalogs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "sqlite"))
        .expect("a catalog")
}

/// Damage to the catalog: SQLite keeps no checksums, so only damage to its
/// structure can be told from a changed value; these are the structural
/// kinds (a bit flip inside a value would read back as another value).
fn damage_catalog(file: &Path, d: Damage, rng: &mut impl Rng) {
    let mut bytes = std::fs::read(file).unwrap();
    match d {
        // Garbage over the whole file.
        Damage::FlipBit => {
            rng.fill(&mut bytes[..]);
            std::fs::write(file, bytes).unwrap();
        }
        Damage::Truncate => {
            bytes.truncate(rng.gen_range(0..bytes.len()));
            std::fs::write(file, bytes).unwrap();
        }
        Damage::Delete => std::fs::remove_file(file).unwrap(),
        // One page (past the first) overwritten with random bytes.
        Damage::Replay => {
            let pages = bytes.len() / 4096;
            let page = rng.gen_range(1..pages.max(2));
            let end = ((page + 1) * 4096).min(bytes.len());
            rng.fill(&mut bytes[page * 4096..end]);
            std::fs::write(file, bytes).unwrap();
        }
    }
}

fn apply(store: &Path, t: &Target, d: Damage, other: &Target, rng: &mut impl Rng) {
    let p = path_of(store, t);
    let mut bytes = std::fs::read(&p).unwrap();
    match d {
        Damage::FlipBit => {
            let i = rng.gen_range(0..bytes.len());
            bytes[i] ^= 1 << rng.gen_range(0..8);
            std::fs::write(&p, bytes).unwrap();
        }
        Damage::Truncate => {
            bytes.truncate(rng.gen_range(0..bytes.len()));
            std::fs::write(&p, bytes).unwrap();
        }
        Damage::Delete => std::fs::remove_file(&p).unwrap(),
        Damage::Replay => {
            std::fs::copy(path_of(store, other), &p).unwrap();
        }
    }
}

fn copy_store(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    let o = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .output()
        .unwrap();
    assert!(o.status.success());
}

/// The binary on a damaged copy, with its own data dir and passphrase.
fn cmd(store: &Path, data: &Path, pass: &str) -> Command {
    let mut c = Command::new(common::bin());
    for (k, _) in std::env::vars_os() {
        let Some(k) = k.to_str() else { continue };
        if k.starts_with("ARK_") && !k.starts_with("ARK_TEST_") {
            c.env_remove(k);
        }
    }
    c.env("ARK_PASSWORD", pass)
        .env("ARK_KDF_TARGET_MS", "20")
        .arg("--store")
        .arg(store)
        .arg("--data-dir")
        .arg(data);
    c
}

#[test]
fn damage_is_detected_named_and_every_surviving_backup_restores() {
    let rounds: usize = std::env::var("ARK_DAMAGE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let seed: u64 = std::env::var("ARK_DAMAGE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("damage suite: {rounds} rounds, ARK_DAMAGE_SEED={seed}");
    let p = build();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let all_objects: Vec<String> = p
        .backups
        .iter()
        .flat_map(|b| b.objects.iter().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let records: Vec<u64> = {
        let mut v: Vec<u64> = std::fs::read_dir(p.ark.store().join("journal"))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        v.sort();
        v
    };
    let work = p.ark.path("rounds");
    std::fs::create_dir_all(&work).unwrap();
    let (mut survived_total, mut restored_total) = (0usize, 0usize);
    for round in 0..rounds {
        let store = work.join(format!("store-{round}"));
        copy_store(&p.ark.store(), &store);
        let kind = rng.gen_range(0..11);
        let (target, other) = match kind {
            0..=3 => {
                let seq = *records[1..].choose(&mut rng).unwrap();
                let other = *records
                    .iter()
                    .filter(|s| **s != seq)
                    .collect::<Vec<_>>()
                    .choose(&mut rng)
                    .unwrap();
                (Target::Journal(seq), Target::Journal(*other))
            }
            4..=5 => {
                let b = p.backups.choose(&mut rng).unwrap();
                let o = p.backups.iter().find(|o| o.id != b.id).unwrap();
                (
                    Target::Manifest(b.manifest.clone()),
                    Target::Manifest(o.manifest.clone()),
                )
            }
            6..=8 => {
                let o = all_objects.choose(&mut rng).unwrap();
                let other = all_objects.iter().find(|x| *x != o).unwrap();
                (Target::Object(o.clone()), Target::Object(other.clone()))
            }
            9 => (
                Target::Key(p.keys[0].clone()),
                Target::Key(p.keys[1].clone()),
            ),
            _ => (Target::Catalog, Target::Catalog),
        };
        let damage = *[
            Damage::FlipBit,
            Damage::Truncate,
            Damage::Delete,
            Damage::Replay,
        ]
        .choose(&mut rng)
        .unwrap();
        let what = format!("round {round} (ARK_DAMAGE_SEED={seed}): {damage:?} of {target:?}");
        eprintln!("{what}");
        let data = work.join(format!("data-{round}"));
        if target == Target::Catalog {
            // A catalog that holds the whole journal, then damaged: a command
            // that reads the damaged part, or `check` (which reads every
            // page), moves it aside and makes it again from the store.
            ok_json(
                &cmd(&store, &data, PASSPHRASE)
                    .args(["--json", "list"])
                    .output()
                    .unwrap(),
            );
            damage_catalog(&catalog_file(&data), damage, &mut rng);
            let o = cmd(&store, &data, PASSPHRASE)
                .args(["--json", "list"])
                .output()
                .unwrap();
            let told = stderr(&o).contains("moved aside");
            let listed = ok_json(&o);
            assert_eq!(listed.as_array().unwrap().len(), 5, "{what}: {listed}");
            let o = cmd(&store, &data, PASSPHRASE)
                .args(["--json", "check"])
                .output()
                .unwrap();
            let v = ok_json(&o);
            if damage != Damage::Delete {
                assert!(
                    told || v["catalog"]
                        .as_str()
                        .is_some_and(|n| n.contains("moved aside")),
                    "{what}: the damage was not told: {v}"
                );
            }
            let o = cmd(&store, &data, PASSPHRASE)
                .args(["--json", "list"])
                .output()
                .unwrap();
            assert_eq!(ok_json(&o).as_array().unwrap().len(), 5, "{what}");
        } else {
            apply(&store, &target, damage, &other, &mut rng);
        }

        // Detection, and the passphrase that still opens the store.
        let mut pass = PASSPHRASE;
        if let Target::Key(k) = &target {
            let o = cmd(&store, &data, PASSPHRASE)
                .args(["list"])
                .output()
                .unwrap();
            assert!(
                !o.status.success(),
                "{what}: the damaged key file still opens"
            );
            let err = stderr(&o);
            assert!(!err.contains("panicked"), "{what}: {err}");
            // A damaged key file is named; a deleted one cannot be (nothing
            // in the store lists the key files), nor a valid key file of
            // another passphrase copied over it: those are a wrong passphrase.
            if matches!(damage, Damage::FlipBit | Damage::Truncate) {
                assert!(
                    err.contains(k.as_str()),
                    "{what}: the key file is not named: {err}"
                );
            } else {
                assert!(err.contains("wrong passphrase"), "{what}: {err}");
            }
            pass = SECOND_PASSPHRASE;
        }
        let o = cmd(&store, &data, pass)
            .args(["--json", "check", "--read-data"])
            .output()
            .unwrap();
        let report: Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{what}: check printed no report ({e}): {}", stderr(&o)));
        let errors = report["errors"].as_array().unwrap().clone();
        let named = |needle: &str| errors.iter().any(|e| e.to_string().contains(needle));
        let backups_named: BTreeSet<String> = errors
            .iter()
            .flat_map(|e| {
                e["backups"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|b| b.as_str().map(String::from))
            })
            .collect();
        match &target {
            Target::Key(_) => {}
            Target::Catalog => assert!(o.status.success(), "{what}: {errors:?}"),
            Target::Journal(seq) if seq == records.last().unwrap() && damage == Damage::Delete => {
                // The last record deleted leaves no gap: what shows is the
                // backup it completed, whose manifest no record names.
                assert!(!o.status.success(), "{what}: check passed");
                let (b, _) = &p.journal[seq];
                assert!(
                    backups_named.contains(b) && named("no completion record"),
                    "{what}: {errors:?}"
                );
            }
            Target::Journal(seq) => {
                assert!(!o.status.success(), "{what}: check passed");
                assert!(
                    named(&format!("record {seq}")) || named("no completion record"),
                    "{what}: {errors:?}"
                );
                if let Some((b, event)) = p.journal.get(seq) {
                    assert!(
                        named(&format!("{event} of backup {b}")),
                        "{what}: the backup whose {event} it held is not named: {errors:?}"
                    );
                }
            }
            Target::Manifest(m) => {
                assert!(!o.status.success(), "{what}: check passed");
                assert!(named(m), "{what}: {errors:?}");
                let owner = p.backups.iter().find(|b| &b.manifest == m).unwrap();
                assert!(backups_named.contains(&owner.id), "{what}: {errors:?}");
            }
            Target::Object(obj) => {
                assert!(!o.status.success(), "{what}: check passed");
                assert!(named(obj), "{what}: {errors:?}");
                let need: BTreeSet<String> = p
                    .backups
                    .iter()
                    .filter(|b| b.objects.contains(obj))
                    .map(|b| b.id.clone())
                    .collect();
                assert_eq!(backups_named, need, "{what}: {errors:?}");
            }
        }

        // Recovery where the data allows.
        if matches!(target, Target::Journal(_)) {
            let o = cmd(&store, &data, pass)
                .args(["--json", "repair", "journal", "--yes"])
                .output()
                .unwrap();
            ok_json(&o);
            let o = cmd(&store, &data, pass).args(["check"]).output().unwrap();
            assert!(
                o.status.success(),
                "{what}: check after the repair: {}",
                String::from_utf8_lossy(&o.stdout)
            );
        }
        // A new machine: a catalog rebuilt from the store.
        let fresh = work.join(format!("fresh-{round}"));
        let listed = ok_json(
            &cmd(&store, &fresh, pass)
                .args(["--json", "list"])
                .output()
                .unwrap(),
        );
        let listed = listed.as_array().unwrap();

        // Every backup whose data survived restores, byte for byte.
        for b in &p.backups {
            let survived = match &target {
                Target::Manifest(m) => *m != b.manifest,
                Target::Object(o) => !b.objects.contains(o),
                Target::Journal(_) | Target::Key(_) | Target::Catalog => true,
            };
            if !survived {
                continue;
            }
            survived_total += 1;
            let row = listed
                .iter()
                .find(|r| r["backup_id"] == b.id.as_str())
                .unwrap_or_else(|| panic!("{what}: backup {} is not listed", b.id));
            assert_eq!(row["status"], "completed", "{what}: {row}");
            let root = work.join(format!("restored-{round}-{}", b.id));
            std::fs::create_dir_all(&root).unwrap();
            let o = cmd(&store, &fresh, pass)
                .args(["--json", "restore", "config", &b.id, "--root"])
                .arg(&root)
                .output()
                .unwrap();
            let r = ok_json(&o);
            assert_eq!(r["result"], "ok", "{what}: {r}");
            let base = root.join(p.tree.strip_prefix("/").unwrap());
            for (rel, want) in &b.files {
                let got = std::fs::read(base.join(rel))
                    .unwrap_or_else(|e| panic!("{what}: {} of {}: {e}", rel, b.id));
                assert!(got == *want, "{what}: {rel} of {} differs", b.id);
            }
            restored_total += 1;
            let _ = std::fs::remove_dir_all(&root);
        }
        let _ = std::fs::remove_dir_all(&store);
        let _ = std::fs::remove_dir_all(&data);
        let _ = std::fs::remove_dir_all(&fresh);
    }
    eprintln!(
        "damage suite: {restored_total} of {survived_total} backups whose data survived were restored \
         after the damage ({:.0}%)",
        100.0 * restored_total as f64 / survived_total.max(1) as f64
    );
    assert_eq!(restored_total, survived_total);
}
