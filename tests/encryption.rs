//! Encryption at rest: keys, passphrases, tamper detection, and that no
//! plaintext secret reaches the store's files.
mod common;

use common::*;
use n8n_ark::store::ingest::BackupSession;
use n8n_ark::store::local::LocalBackend;
use n8n_ark::store::{
    check, journal, keys, object_path, Backend, Encryption, InitOptions, Store, StoreError,
};
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use store_format::{FormatError, ObjectId};

const MARKER: &[u8] = b"N8N_ENCRYPTION_KEY=acc-n8n-fixed-encryption-key-0123456789";

async fn backup_with(store: &Store, stream: Vec<u8>, blob: Vec<u8>) -> (String, Vec<ObjectId>) {
    let mut s = BackupSession::begin(store, "test").await.unwrap();
    s.add_stream("db/n8n.dump", std::io::Cursor::new(stream))
        .await
        .unwrap();
    s.add_blob("config/.env", blob).await.unwrap();
    let sum = s.commit(BTreeMap::new()).await.unwrap();
    let m = store
        .read_manifest(&ObjectId::from_hex(&sum.manifest).unwrap())
        .await
        .unwrap();
    (sum.manifest, m.object_ids().copied().collect())
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[tokio::test]
async fn no_plaintext_secret_can_be_found_in_the_store_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(dir.path()).await;
    let mut dump_bytes = dump(1, 2, 1);
    for _ in 0..50 {
        dump_bytes.extend_from_slice(MARKER);
        dump_bytes.extend_from_slice(b"\n");
    }
    let env = [
        b"DB_POSTGRESDB_PASSWORD=hunter2\n".as_slice(),
        MARKER,
        b"\n",
    ]
    .concat();
    let (manifest, _) = backup_with(&store, dump_bytes.clone(), env.clone()).await;
    let files = files_under(dir.path());
    assert!(files.len() > 10);
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        for needle in [
            MARKER,
            b"hunter2".as_slice(),
            b"config/.env".as_slice(),
            b"execution_data".as_slice(),
        ] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} contains the plaintext {:?}",
                f.display(),
                String::from_utf8_lossy(needle)
            );
        }
    }
    // And it all reads back.
    let back = restore_all(&store, &manifest).await;
    assert!(back["db/n8n.dump"] == dump_bytes);
    assert_eq!(back["config/.env"], env);
}

#[tokio::test]
async fn a_wrong_passphrase_is_refused_clearly_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(dir.path()).await;
    backup_with(&store, dump(2, 1, 1), b"x".to_vec()).await;
    let before = snapshot(dir.path());
    let err = open_with(dir.path(), "not the passphrase")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::WrongPassphrase(_)), "{err}");
    assert!(err.to_string().contains("wrong passphrase"), "{err}");
    assert_eq!(snapshot(dir.path()), before);
    // The CLI says the same in one line.
    let o = Command::new(bin())
        .args(["--store", dir.path().to_str().unwrap(), "check"])
        .env("ARK_PASSWORD", "not the passphrase")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("wrong passphrase") && e.trim().lines().count() == 1,
        "{e}"
    );
    // No passphrase and no terminal: told how to give one.
    let o = Command::new(bin())
        .args(["--store", dir.path().to_str().unwrap(), "check"])
        .env_remove("ARK_PASSWORD")
        .env_remove("ARK_PASSWORD_FILE")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("ARK_PASSWORD_FILE"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // A passphrase file works (its trailing newline is not part of it).
    let pf = dir
        .path()
        .parent()
        .unwrap()
        .join(format!("pass-{}", std::process::id()));
    std::fs::write(&pf, format!("{PASSPHRASE}\n")).unwrap();
    let o = Command::new(bin())
        .args(["--store", dir.path().to_str().unwrap(), "check"])
        .env_remove("ARK_PASSWORD")
        .env("ARK_PASSWORD_FILE", &pf)
        .output()
        .unwrap();
    std::fs::remove_file(&pf).unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(snapshot(dir.path()), before);
}

#[tokio::test]
async fn damage_and_tampering_are_detected_and_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(dir.path()).await;
    let (manifest, ids) = backup_with(&store, dump(3, 2, 1), b"SECRET=1".to_vec()).await;
    let (victim, other) = (ids[0], ids[1]);
    let vpath = dir.path().join(object_path(&victim));
    let original = std::fs::read(&vpath).unwrap();

    // A flipped bit: plain damage.
    let mut b = original.clone();
    b[60] ^= 0x10;
    std::fs::write(&vpath, &b).unwrap();
    let err = store.read_object(&victim).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::DamagedObject {
                source: FormatError::ChecksumMismatch,
                ..
            }
        ),
        "{err}"
    );

    // The same flip with the checksum recomputed: someone without the key wrote it.
    let n = b.len();
    let sum = blake3::hash(&b[..n - 32]);
    b[n - 32..].copy_from_slice(sum.as_bytes());
    std::fs::write(&vpath, &b).unwrap();
    let err = store.read_object(&victim).await.unwrap_err();
    assert!(matches!(err, StoreError::TamperedObject { .. }), "{err}");
    assert!(err.to_string().contains("tampered"), "{err}");

    // Truncation.
    std::fs::write(&vpath, &original[..original.len() - 5]).unwrap();
    assert!(store.read_object(&victim).await.is_err());

    // Two object files swapped: each is authentic, but not for its name.
    let opath = dir.path().join(object_path(&other));
    let other_bytes = std::fs::read(&opath).unwrap();
    std::fs::write(&vpath, &other_bytes).unwrap();
    std::fs::write(&opath, &original).unwrap();
    for id in [victim, other] {
        let err = store.read_object(&id).await.unwrap_err();
        assert!(matches!(err, StoreError::TamperedObject { .. }), "{err}");
    }
    let r = check::run(&store, true).await.unwrap();
    assert_eq!(r.errors.len(), 2, "{:?}", r.errors);
    assert!(
        r.errors.iter().all(|e| e.kind == "tampered_object"
            && e.message.contains("tampered")
            && !e.backups.is_empty()),
        "{:?}",
        r.errors
    );
    std::fs::write(&vpath, &original).unwrap();
    std::fs::write(&opath, &other_bytes).unwrap();

    // The manifest is an encrypted object too.
    let mpath = dir.path().join("manifests").join(&manifest);
    let m = std::fs::read(&mpath).unwrap();
    let mut bad = m.clone();
    bad[50] ^= 1;
    std::fs::write(&mpath, &bad).unwrap();
    assert!(store
        .read_manifest(&ObjectId::from_hex(&manifest).unwrap())
        .await
        .is_err());
    std::fs::write(&mpath, &m).unwrap();
    assert!(check::run(&store, true).await.unwrap().ok());
}

#[tokio::test]
async fn journal_records_are_sealed_and_a_replayed_record_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(dir.path()).await;
    for i in 0..3u8 {
        backup_with(&store, vec![i; 5000], vec![i]).await;
    }
    let jdir = dir.path().join("journal");
    let rec = |n: u64| jdir.join(format!("{n:020}"));
    // A flipped bit in a record.
    let r3 = std::fs::read(rec(3)).unwrap();
    let mut b = r3.clone();
    b[40] ^= 4;
    std::fs::write(rec(3), &b).unwrap();
    assert_eq!(
        journal::replay(&store).await.unwrap().problem.unwrap().kind,
        journal::ProblemKind::Corrupt
    );
    // A flip inside the sealed payload with the frame checksum recomputed:
    // the frame is intact, the seal is not: tampering, told as such.
    let mut b = r3.clone();
    let n = b.len();
    b[n - 40] ^= 4;
    let sum = blake3::hash(&b[..n - 32]);
    b[n - 32..].copy_from_slice(sum.as_bytes());
    std::fs::write(rec(3), &b).unwrap();
    let p = journal::replay(&store).await.unwrap().problem.unwrap();
    assert_eq!(p.kind, journal::ProblemKind::Tampered, "{p:?}");
    assert!(
        p.message.contains("record 3") && p.message.contains("tampered"),
        "{}",
        p.message
    );
    std::fs::write(rec(3), &r3).unwrap();
    // An old record replayed at the tail's place.
    let r4 = std::fs::read(rec(4)).unwrap();
    std::fs::write(rec(4), std::fs::read(rec(2)).unwrap()).unwrap();
    let p = journal::replay(&store)
        .await
        .unwrap()
        .problem
        .expect("a replayed record must be caught");
    assert_eq!(p.seq, 4, "{p:?}");
    std::fs::write(rec(4), &r4).unwrap();
    assert!(journal::replay(&store).await.unwrap().problem.is_none());
    // Without the key, a sealed record cannot be read at all.
    assert!(
        store_format::JournalRecord::decode_in(&r3, None).is_err(),
        "a sealed record needs the key"
    );
    let keys = store.keys().unwrap();
    // Sealed for its place: the payload of record 3 relabelled as record 4 does
    // not open (the sequence number and `prev` are bound into the seal).
    let rec3 = store_format::JournalRecord::decode_in(&r3, Some(keys)).unwrap();
    assert_eq!(rec3.seq, 3);
}

#[tokio::test]
async fn ids_are_keyed_per_store_and_dedup_still_works() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (s1, s2) = (new_store(d1.path()).await, new_store(d2.path()).await);
    let data = dump(4, 1, 1);
    let (_, ids1) = backup_with(&s1, data.clone(), b"same".to_vec()).await;
    let (_, ids2) = backup_with(&s2, data.clone(), b"same".to_vec()).await;
    assert!(!ids1.is_empty());
    assert!(
        ids1.iter().all(|i| !ids2.contains(i)),
        "the same plaintext must get different ids in different stores"
    );
    // Not the unkeyed hash either: nobody without the key can test for a known file.
    assert!(!ids1.contains(&ObjectId::of(b"same")));
    // Within one store, the same data again costs nothing.
    let mut s = BackupSession::begin(&s1, "test").await.unwrap();
    s.add_stream("db/n8n.dump", std::io::Cursor::new(data))
        .await
        .unwrap();
    s.add_blob("config/.env", b"same".to_vec()).await.unwrap();
    let sum = s.commit(BTreeMap::new()).await.unwrap();
    assert_eq!(sum.new_objects, 0);
}

#[tokio::test]
async fn passphrases_can_be_added_and_removed_but_never_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(dir.path()).await;
    let first = store.key_id().unwrap().to_string();
    let second = keys::add_key(&store, "second passphrase").await.unwrap();
    let ks = keys::list_keys(&store).await.unwrap();
    assert_eq!(ks.len(), 2);
    assert!(ks.iter().any(|k| k.id == first && k.current));
    // Both open it.
    let via_second = open_with(dir.path(), "second passphrase").await.unwrap();
    assert_eq!(via_second.key_id(), Some(second.as_str()));
    // The key in use cannot be removed; another can.
    assert!(keys::remove_key(&via_second, &second)
        .await
        .unwrap_err()
        .to_string()
        .contains("opened the store with"));
    keys::remove_key(&via_second, &first).await.unwrap();
    assert!(matches!(
        open_with(dir.path(), PASSPHRASE).await.unwrap_err(),
        StoreError::WrongPassphrase(_)
    ));
    // The last cannot be removed, whoever asks.
    let s = open_with(dir.path(), "second passphrase").await.unwrap();
    let third = keys::add_key(&s, "third").await.unwrap();
    let s3 = open_with(dir.path(), "third").await.unwrap();
    keys::remove_key(&s3, &second).await.unwrap();
    let err = keys::remove_key(&s3, &third).await.unwrap_err();
    assert!(err.to_string().contains("opened the store with"), "{err}");
    assert_eq!(keys::list_keys(&s3).await.unwrap().len(), 1);
    // A flipped bit in the key file: reported as damage, the store stays closed.
    let kpath = dir.path().join("keys").join(&third);
    let mut k = std::fs::read(&kpath).unwrap();
    k[30] ^= 1;
    std::fs::write(&kpath, &k).unwrap();
    // (The only key file: no passphrase could be tried, so none is called wrong.)
    let err = open_with(dir.path(), "third").await.unwrap_err();
    assert!(matches!(err, StoreError::DamagedKeys(_)), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("keys/{third} is damaged")),
        "{err}"
    );
}

#[tokio::test]
async fn a_config_changed_after_the_keys_were_made_opens_with_no_key() {
    let dir = tempfile::tempdir().unwrap();
    let _store = new_store(dir.path()).await;
    let cfg_path = dir.path().join("config");
    let mut cfg = store_format::StoreConfig::decode(&std::fs::read(&cfg_path).unwrap()).unwrap();
    cfg.compression.level = 1;
    std::fs::write(&cfg_path, cfg.encode()).unwrap();
    assert!(matches!(
        open_with(dir.path(), PASSPHRASE).await.unwrap_err(),
        StoreError::WrongPassphrase(_)
    ));
}

#[tokio::test]
async fn an_unencrypted_store_still_reads_and_every_command_says_so() {
    fast_kdf();
    let dir = tempfile::tempdir().unwrap();
    let opts = InitOptions {
        chunker: small_chunks().chunker,
        ..InitOptions::new(Encryption::None)
    };
    let store = Store::init(
        Arc::new(LocalBackend::new(dir.path())) as Arc<dyn Backend>,
        opts,
    )
    .await
    .unwrap();
    assert!(!store.is_encrypted());
    let data = dump(5, 1, 1);
    let (manifest, ids) = backup_with(&store, data.clone(), b"plain".to_vec()).await;
    assert!(
        ids.contains(&ObjectId::of(b"plain")),
        "unencrypted stores use plain BLAKE3 ids"
    );
    let again = open_with(dir.path(), "ignored").await.unwrap();
    assert!(restore_all(&again, &manifest).await["db/n8n.dump"] == data);
    let o = Command::new(bin())
        .args([
            "--store",
            dir.path().to_str().unwrap(),
            "check",
            "--read-data",
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("NOT encrypted"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // init without the loud flag encrypts; with it, it warns.
    let d2 = tempfile::tempdir().unwrap();
    let o = Command::new(bin())
        .args([
            "--store",
            d2.path().join("s").to_str().unwrap(),
            "init",
            "--insecure-no-encryption",
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("NOT encrypted"));
    let o = Command::new(bin())
        .args(["--store", d2.path().join("t").to_str().unwrap(), "init"])
        .env_remove("ARK_PASSWORD")
        .env_remove("ARK_PASSWORD_FILE")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        !o.status.success(),
        "init without a passphrase must not silently create an unencrypted store"
    );
    assert!(!d2.path().join("t").join("config").exists());
}

#[tokio::test]
async fn a_config_downgraded_to_no_encryption_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _store = new_store(dir.path()).await;
    let cfg_path = dir.path().join("config");
    let mut cfg = store_format::StoreConfig::decode(&std::fs::read(&cfg_path).unwrap()).unwrap();
    cfg.encryption = "none".into();
    std::fs::write(&cfg_path, cfg.encode()).unwrap();
    let before = snapshot(dir.path());
    let err = open_with(dir.path(), PASSPHRASE).await.unwrap_err();
    assert!(err.to_string().contains("downgrade"), "{err}");
    let o = Command::new(bin())
        .args(["--store", dir.path().to_str().unwrap(), "check"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("downgrade"));
    assert_eq!(snapshot(dir.path()), before);
}

#[tokio::test]
async fn encrypted_objects_do_not_show_their_exact_length() {
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(dir.path()).await;
    let (_, ids) = backup_with(&store, random_bytes(8, 70_000), b"short".to_vec()).await;
    for id in ids {
        let b = std::fs::read(dir.path().join(object_path(&id))).unwrap();
        assert_eq!(
            &b[8..16],
            &[0u8; 8],
            "the header's length field is zero in an encrypted object"
        );
    }
}

#[tokio::test]
async fn the_chunker_is_keyed_so_chunk_sizes_do_not_reveal_a_known_file() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (s1, s2) = (new_store(d1.path()).await, new_store(d2.path()).await);
    let data = random_bytes(11, 4 << 20);
    let (a, b) = (s1.chunker().cuts(&data), s2.chunker().cuts(&data));
    assert!(a.len() > 10 && b.len() > 10);
    assert_ne!(a, b, "two stores cut the same file at different places");
    let public = n8n_ark::store::chunker::Chunker::new(&s1.config().chunker).cuts(&data);
    assert_ne!(
        a, public,
        "an encrypted store does not use the published gear table"
    );
}
