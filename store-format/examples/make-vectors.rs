//! Writes the golden test vectors into `store-format/test-vectors/`.
//!
//!     cargo run -p store-format --example make-vectors
//!
//! Every input is fixed, so running it again produces the same bytes (with the
//! same zstd version for the one zstd-coded vector; see test-vectors/README.md).
//! `tests/golden.rs` checks the files against values written out independently;
//! regenerate only when the format changes on purpose, and update the README,
//! SPEC.md (its hex dumps) and the test with it.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use store_format::crypto::StoreKeys;
use store_format::event::{
    BackupCompleted, BackupCounts, BackupFailed, BackupForgotten, BackupStarted, GcCompleted,
    JournalRepaired, RepairedRecord, StoreInitialized,
};

/// The version-1 shape of BackupCompleted: the vectors keep a version-1 event so
/// that decoding an older version stays tested (it is upcast to version 2).
#[derive(serde::Serialize)]
struct BackupCompletedV1 {
    backup_id: String,
    kind: String,
    manifest: ObjectId,
    logical_bytes: u64,
    new_bytes: u64,
    new_objects: u64,
    objects: u64,
    reused_objects: u64,
    duration_ms: u64,
}

fn v1_backup_completed(e: BackupCompletedV1) -> Event {
    Event::Unknown {
        kind: "BackupCompleted".into(),
        version: 1,
        body: rmp_serde::to_vec_named(&e).unwrap(),
    }
}
use store_format::journal::GENESIS;
use store_format::object::{self, Codec, ObjectKind};
use store_format::{
    frame, ChunkRef, ChunkerParams, CompressionParams, Event, Item, ItemKind, JournalRecord,
    KdfParams, KeyFile, LockRecord, Manifest, ObjectId, StoreConfig,
};

/// 2026-01-01T00:00:00Z in milliseconds since the Unix epoch.
const T0: i64 = 1_767_225_600_000;
const STORE_ID: &str = "0123456789abcdef0123456789abcdef";
const WRITER: &str = "vector-host:4242";
/// A lock holder's identity as n8n-ark writes it: the host name and the inode
/// number of the holder's PID namespace (4026531836 is that of the initial one).
const LOCK_HOLDER: &str = "vector-host#pidns:4026531836";

// The encrypted store's fixed inputs (never use them outside tests): consecutive
// byte runs, so that they are easy to recognize in a hex dump.

/// The encrypted store's id.
const ENC_STORE_ID: &str = "fedcba9876543210fedcba9876543210";
/// The test master key: bytes 0x00..=0x1f.
fn master() -> [u8; 32] {
    std::array::from_fn(|i| i as u8)
}
/// Bytes `start`, `start + 1`, … (N of them).
fn run<const N: usize>(start: u8) -> [u8; N] {
    std::array::from_fn(|i| start + i as u8)
}
/// The key file's passphrase, salt (0x20..=0x2f) and Argon2id parameters.
const PASSPHRASE: &str = "n8n-ark test vector passphrase";
fn salt() -> Vec<u8> {
    run::<16>(0x20).to_vec()
}
const KDF_MEMORY_KIB: u32 = 8192;
/// Argon2id (version 0x13, m = 8192 KiB, t = 1, p = 1, 32 bytes of output) of
/// PASSPHRASE with salt(). store-format has no Argon2 implementation, so this
/// value is written out; it was computed with the `argon2` crate 0.5.3 (which
/// n8n-ark uses) and checked against libargon2 (the reference C implementation,
/// through Python's argon2-cffi); see test-vectors/README.md.
const KEK_HEX: &str = "aba7c84c3bfbe517a9e74552f68f706b481d4f25b06a9dd2f79e6293de885d1d";
/// The key file's name under `keys/`.
const KEY_ID: &str = "0123456789abcdef";
/// Nonces: 24 consecutive bytes each.
const NONCE_KEYFILE: u8 = 0x30;
const NONCE_CHUNK: u8 = 0x48;
const NONCE_MANIFEST: u8 = 0x60;
const NONCE_RECORD_1: u8 = 0x78;
const NONCE_RECORD_2: u8 = 0x90;

fn kek() -> [u8; 32] {
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = u8::from_str_radix(&KEK_HEX[2 * i..2 * i + 2], 16).unwrap();
    }
    k
}

/// The plaintext of the zstd-coded chunk: 64 lines of a table dump.
fn chunk_plaintext() -> Vec<u8> {
    let mut s = String::new();
    for i in 0..64 {
        s.push_str(&format!(
            "{i}\tworkflow {i:03}\tt\t2026-01-01 00:00:00+00\n"
        ));
    }
    s.into_bytes()
}

/// The plaintext of the blob: a workflow's JSON, too short for zstd to shrink.
const BLOB_PLAINTEXT: &[u8] =
    br#"{"id":"G7pQ2xYc","name":"Daily report","active":true,"nodes":[]}"#;

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, bytes).unwrap();
    println!("{:>6} bytes  {}", bytes.len(), name);
}

/// The hex dump format used in SPEC.md: 16 bytes a line, offset in hex.
pub fn hexdump(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (i, line) in bytes.chunks(16).enumerate() {
        out.push_str(&format!("{:08x}  ", i * 16));
        for j in 0..16 {
            match line.get(j) {
                Some(b) => out.push_str(&format!("{b:02x} ")),
                None => out.push_str("   "),
            }
            if j == 7 {
                out.push(' ');
            }
        }
        out.push_str(" |");
        for &b in line {
            out.push(if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '.'
            });
        }
        out.push_str("|\n");
    }
    out
}

/// Contents using `workflows_not_stored`, `path_bytes` and
/// `link_target_bytes` (see test-vectors/README.md).
fn contents_vector() -> store_format::contents::Contents {
    use store_format::contents::{
        readable_path, ConfigFile, Contents, FileType, WorkflowNotStored,
    };
    let path = b"/etc/nginx/conf.d/caf\xe9.conf".to_vec();
    let link_path = b"/etc/nginx/conf.d/to-caf\xe9".to_vec();
    let target = b"caf\xe9.conf".to_vec();
    Contents {
        workflows_not_stored: vec![WorkflowNotStored {
            id: "Nw9qT4uB2cR7xYz1".into(),
            name: "Pinned \u{1F4CC}".into(),
            reason: "its row is not JSON that n8n-ark can read: number out of range at line 1 column 102".into(),
        }],
        config_files: vec![
            ConfigFile {
                path: readable_path(&path),
                path_bytes: Some(path),
                file_type: FileType::File,
                mode: 0o644,
                mtime_ms: T0,
                size: 0,
                checksum: Some(blake3::hash(b"").to_hex().to_string()),
                item: Some("config-bytes/2f6574632f6e67696e782f636f6e662e642f636166e92e636f6e66".into()),
                ..Default::default()
            },
            ConfigFile {
                path: readable_path(&link_path),
                path_bytes: Some(link_path),
                file_type: FileType::Symlink,
                mode: 0o777,
                mtime_ms: T0,
                link_target: Some(readable_path(&target)),
                link_target_bytes: Some(target),
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}

fn main() {
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("test-vectors");

    // The repository config.
    let config = StoreConfig {
        id: STORE_ID.into(),
        format_version: 1,
        created_ms: T0,
        chunker: ChunkerParams::new(128 * 1024, 512 * 1024, 4 * 1024 * 1024),
        hash: "blake3-256".into(),
        compression: CompressionParams {
            codec: "zstd".into(),
            level: 3,
        },
        encryption: "none".into(),
    };
    write(&dir, "config.bin", &config.encode());

    // A chunk, zstd level 3.
    let chunk = chunk_plaintext();
    let (chunk_id, chunk_file) = object::encode(ObjectKind::Chunk, Codec::Zstd(3), &chunk);
    assert_eq!(chunk_file[6], 1, "the chunk vector must be zstd-coded");
    write(&dir, "object-chunk-zstd.plain", &chunk);
    write(&dir, "object-chunk-zstd.bin", &chunk_file);

    // A blob: the store's codec is zstd, but zstd does not shrink it, so it is stored with codec none.
    let (blob_id, blob_file) = object::encode(ObjectKind::Blob, Codec::Zstd(3), BLOB_PLAINTEXT);
    assert_eq!(
        blob_file[6], 0,
        "the blob vector must fall back to codec none"
    );
    write(&dir, "object-blob-none.bin", &blob_file);

    // A manifest naming both, stored with codec none (so that its bytes do not
    // depend on the zstd version).
    let manifest = Manifest {
        manifest_version: 1,
        backup_id: "20260101T000000Z-0000abcd".into(),
        kind: "postgres_n8n".into(),
        host: "vector-host".into(),
        started_ms: T0,
        finished_ms: T0 + 1500,
        items: vec![
            Item {
                name: "db/n8n.dump".into(),
                kind: ItemKind::Stream,
                size: chunk.len() as u64,
                chunks: vec![ChunkRef {
                    id: chunk_id,
                    len: chunk.len() as u32,
                }],
            },
            Item {
                name: "workflows/G7pQ2xYc.json".into(),
                kind: ItemKind::Blob,
                size: BLOB_PLAINTEXT.len() as u64,
                chunks: vec![ChunkRef {
                    id: blob_id,
                    len: BLOB_PLAINTEXT.len() as u32,
                }],
            },
            Item {
                name: "config/empty.txt".into(),
                kind: ItemKind::Blob,
                size: 0,
                chunks: vec![],
            },
        ],
        labels: BTreeMap::from([("source".to_string(), "test-vectors".to_string())]),
        contents: None,
    };
    let manifest_plain = manifest.encode_plaintext();
    let (manifest_id, manifest_file) =
        object::encode(ObjectKind::Manifest, Codec::None, &manifest_plain);
    write(&dir, "manifest.plain", &manifest_plain);
    write(&dir, "manifest.bin", &manifest_file);

    // The same manifest with contents that use the fields added after the
    // first release: a workflow read but not stored, and a config file whose
    // path and link target are not UTF-8 (plaintext only: the fields are
    // what is tested, the object envelope is the one above).
    let mut with_contents = manifest.clone();
    with_contents.items.push(Item {
        name: "config-bytes/2f6574632f6e67696e782f636f6e662e642f636166e92e636f6e66".into(),
        kind: ItemKind::Blob,
        size: 0,
        chunks: vec![],
    });
    with_contents.contents = Some(contents_vector());
    write(
        &dir,
        "manifest-contents.plain",
        &with_contents.encode_plaintext(),
    );

    // The journal: five records, chained.
    let r1 = JournalRecord {
        seq: 1,
        prev: GENESIS,
        time_ms: T0,
        writer: WRITER.into(),
        event: Event::StoreInitialized(StoreInitialized {
            store_id: STORE_ID.into(),
            format_version: 1,
        }),
    };
    let b1 = r1.encode();
    let r2 = JournalRecord {
        seq: 2,
        prev: JournalRecord::hash_of_encoded(&b1),
        time_ms: T0 + 2000,
        writer: WRITER.into(),
        event: v1_backup_completed(BackupCompletedV1 {
            backup_id: manifest.backup_id.clone(),
            kind: manifest.kind.clone(),
            manifest: manifest_id,
            logical_bytes: manifest.logical_size(),
            new_bytes: (chunk_file.len() + blob_file.len()) as u64,
            new_objects: 2,
            objects: 2,
            reused_objects: 0,
            duration_ms: 1500,
        }),
    };
    let b2 = r2.encode();
    let r3 = JournalRecord {
        seq: 3,
        prev: JournalRecord::hash_of_encoded(&b2),
        time_ms: T0 + 3000,
        writer: WRITER.into(),
        event: Event::GcCompleted(GcCompleted {
            objects_freed: 1,
            bytes_freed: 123,
            objects_kept: 2,
            duration_ms: 250,
        }),
    };
    let b3 = r3.encode();
    #[derive(Serialize)]
    struct FutureBody {
        note: String,
    }
    let r4 = JournalRecord {
        seq: 4,
        prev: JournalRecord::hash_of_encoded(&b3),
        time_ms: T0 + 4000,
        writer: WRITER.into(),
        event: Event::Unknown {
            kind: "ExampleFutureEvent".into(),
            version: 3,
            body: rmp_serde::to_vec_named(&FutureBody {
                note: "kept as is".into(),
            })
            .unwrap(),
        },
    };
    let b4 = r4.encode();
    // The backup of record 2 is forgotten (its manifest would be deleted next).
    let r5 = JournalRecord {
        seq: 5,
        prev: JournalRecord::hash_of_encoded(&b4),
        time_ms: T0 + 5000,
        writer: WRITER.into(),
        event: Event::BackupForgotten(BackupForgotten {
            backup_id: manifest.backup_id.clone(),
            manifest: manifest_id,
            reason: "removed by hand".into(),
        }),
    };
    let b5 = r5.encode();
    for (r, b) in [(&r1, &b1), (&r2, &b2), (&r3, &b3), (&r4, &b4), (&r5, &b5)] {
        write(
            &dir,
            &format!("journal-{}.bin", JournalRecord::file_name(r.seq)),
            b,
        );
    }

    // A repair: the same journal after record 3 was damaged (one bit
    // flipped), with the two records `repair journal` appended: a backup
    // recorded again from its intact manifest, and the acknowledgement.
    let mut damaged3 = b3.clone();
    damaged3[60] ^= 0x08;
    write(
        &dir,
        "bad/journal-00000000000000000003-damaged.bin",
        &damaged3,
    );
    let r6 = JournalRecord {
        seq: 6,
        prev: JournalRecord::hash_of_encoded(&b5),
        time_ms: T0 + 6000,
        writer: WRITER.into(),
        event: Event::BackupCompleted(BackupCompleted {
            backup_id: "20260101T000002Z-0000abce".into(),
            kind: "flows".into(),
            manifest: ObjectId::of(b"the manifest of a backup whose completion record was lost"),
            logical_bytes: 64,
            new_bytes: 0,
            new_objects: 0,
            objects: 1,
            reused_objects: 1,
            duration_ms: 800,
            stored_bytes: 80,
            counts: BackupCounts {
                workflows: 1,
                items: 1,
                ..Default::default()
            },
            recovered: Some(
                "recovered by journal repair 20260101T000007Z-0000beef from its intact manifest: its \
                 completion record was lost (probably journal record 3)"
                    .into(),
            ),
        }),
    };
    let b6 = r6.encode();
    let r7 = JournalRecord {
        seq: 7,
        prev: JournalRecord::hash_of_encoded(&b6),
        time_ms: T0 + 7000,
        writer: WRITER.into(),
        event: Event::JournalRepaired(JournalRepaired {
            repair_id: "20260101T000007Z-0000beef".into(),
            problems: vec![RepairedRecord {
                seq: 3,
                through: 3,
                problem: "damaged".into(),
                file_hash: Some(JournalRecord::hash_of_encoded(&damaged3)),
            }],
            recovered: vec![
                "backup 20260101T000002Z-0000abce (flows): completed, from its manifest".into(),
            ],
            lost: vec![],
            repaired_by: "root@vector-host".into(),
        }),
    };
    let b7 = r7.encode();
    for (r, b) in [(&r6, &b6), (&r7, &b7)] {
        write(
            &dir,
            &format!("repair-journal-{}.bin", JournalRecord::file_name(r.seq)),
            b,
        );
    }

    // A scheduled backup that failed: the start and failure events with who
    // asked for it and whether trying again may help (map keys added within
    // version 1).
    let r8 = JournalRecord {
        seq: 8,
        prev: JournalRecord::hash_of_encoded(&b7),
        time_ms: T0 + 8000,
        writer: WRITER.into(),
        event: Event::BackupStarted(BackupStarted {
            backup_id: "20260101T000008Z-0000abcf".into(),
            kind: "postgres_n8n".into(),
            host: "vector-host".into(),
            sources: vec!["postgres:n8n@127.0.0.1:5432/n8n".into()],
            trigger: Some("schedule".into()),
        }),
    };
    let b8 = r8.encode();
    let r9 = JournalRecord {
        seq: 9,
        prev: JournalRecord::hash_of_encoded(&b8),
        time_ms: T0 + 9000,
        writer: WRITER.into(),
        event: Event::BackupFailed(BackupFailed {
            backup_id: "20260101T000008Z-0000abcf".into(),
            kind: "postgres_n8n".into(),
            stage: "connect".into(),
            message: "PostgreSQL at 127.0.0.1:5432 did not answer".into(),
            duration_ms: 1000,
            retryable: Some(true),
            trigger: Some("schedule".into()),
        }),
    };
    let b9 = r9.encode();
    for (r, b) in [(&r8, &b8), (&r9, &b9)] {
        write(
            &dir,
            &format!("trigger-journal-{}.bin", JournalRecord::file_name(r.seq)),
            b,
        );
    }

    // A lock record.
    let lock = LockRecord {
        kind: "backup".into(),
        host: LOCK_HOLDER.into(),
        pid: 4242,
        created_ms: T0,
        heartbeat_ms: T0 + 30_000,
        refresh_ms: 30_000,
        backup_id: None,
    };
    write(&dir, "lock.bin", &lock.encode());

    // Bytes a reader must refuse.
    #[derive(Serialize)]
    struct FutureConfig {
        format_version: u32,
        id: String,
        something_new: String,
    }
    let future_config = rmp_serde::to_vec_named(&FutureConfig {
        format_version: 2,
        id: STORE_ID.into(),
        something_new: "a field version 1 does not have".into(),
    })
    .unwrap();
    write(
        &dir,
        "bad/config-future-version.bin",
        &frame::encode(b"ARKC", &future_config),
    );

    let mut torn = b2.clone();
    torn.truncate(200);
    write(&dir, "bad/journal-torn.bin", &torn);

    let mut flipped = b1.clone();
    flipped[20] ^= 0x01;
    write(&dir, "bad/journal-bitflip.bin", &flipped);

    #[derive(Serialize)]
    struct FutureWire {
        record_version: u32,
        seq: u64,
        #[serde(with = "serde_bytes")]
        prev: Vec<u8>,
        time_ms: i64,
        writer: String,
        event_type: String,
        event_version: u16,
        #[serde(with = "serde_bytes")]
        event: Vec<u8>,
    }
    let future_record = rmp_serde::to_vec_named(&FutureWire {
        record_version: 2,
        seq: 1,
        prev: GENESIS.to_vec(),
        time_ms: T0,
        writer: WRITER.into(),
        event_type: "StoreInitialized".into(),
        event_version: 1,
        event: r1.event.encode_body(),
    })
    .unwrap();
    write(
        &dir,
        "bad/journal-future-version.bin",
        &frame::encode(b"ARKJ", &future_record),
    );

    let mut obj = blob_file.clone();
    let last = obj.len() - 1;
    obj[last] ^= 0x01;
    write(&dir, "bad/object-flipped.bin", &obj);

    let mut obj = blob_file.clone();
    obj[4] = 2;
    write(&dir, "bad/object-future-envelope.bin", &obj);

    let mut obj = blob_file.clone();
    obj[7] = 0x02;
    write(&dir, "bad/object-reserved-flags.bin", &obj);

    let mut future_manifest = manifest.clone();
    future_manifest.manifest_version = 2;
    let (fm_id, fm_file) = object::encode(
        ObjectKind::Manifest,
        Codec::None,
        &future_manifest.encode_plaintext(),
    );
    write(&dir, "bad/manifest-future-version.bin", &fm_file);

    encrypted(&dir, &chunk);

    println!();
    println!("config id          {STORE_ID}");
    println!("chunk id           {chunk_id}");
    println!("blob id            {blob_id}");
    println!("manifest id        {manifest_id}");
    println!("future manifest id {fm_id}");
    for (n, b) in [(1, &b1), (2, &b2), (3, &b3), (4, &b4), (5, &b5)] {
        println!(
            "journal {n} hash     {}",
            ObjectId(JournalRecord::hash_of_encoded(b))
        );
    }
    for (n, b) in [(6, &b6), (7, &b7)] {
        println!(
            "repair journal {n} hash {}",
            ObjectId(JournalRecord::hash_of_encoded(b))
        );
    }
    println!(
        "damaged record 3 hash {}",
        ObjectId(JournalRecord::hash_of_encoded(&damaged3))
    );
    println!("zstd version       {}", zstd::zstd_safe::version_number());
    println!();
    println!("object-blob-none.bin:\n{}", hexdump(&blob_file));
    println!(
        "journal-{}.bin:\n{}",
        JournalRecord::file_name(1),
        hexdump(&b1)
    );
    println!(
        "journal-{}.bin:\n{}",
        JournalRecord::file_name(5),
        hexdump(&b5)
    );
}

/// The vectors of an encrypted store (`enc-*`): config, key file, a chunk, a
/// manifest and two sealed journal records, all made with the fixed test
/// master key and fixed nonces, plus damaged and tampered variants.
fn encrypted(dir: &Path, chunk: &[u8]) {
    let config = StoreConfig {
        id: ENC_STORE_ID.into(),
        format_version: 1,
        created_ms: T0,
        chunker: ChunkerParams::new(128 * 1024, 512 * 1024, 4 * 1024 * 1024),
        hash: "blake3-256".into(),
        compression: CompressionParams {
            codec: "zstd".into(),
            level: 3,
        },
        encryption: "xchacha20poly1305-blake3".into(),
    };
    let config_bytes = config.encode();
    write(dir, "enc-config.bin", &config_bytes);

    let kdf = KdfParams {
        algorithm: "argon2id".into(),
        memory_kib: KDF_MEMORY_KIB,
        iterations: 1,
        parallelism: 1,
        salt: salt(),
    };
    let kf = KeyFile::wrap(
        &master(),
        &kek(),
        &run(NONCE_KEYFILE),
        kdf,
        &config_bytes,
        T0,
        "vector-host".into(),
    );
    let kf_bytes = kf.encode();
    assert_eq!(
        KeyFile::decode(&kf_bytes)
            .unwrap()
            .unwrap_master(&kek(), &config_bytes)
            .unwrap(),
        master()
    );
    write(dir, "enc-keyfile.bin", &kf_bytes);

    let keys = StoreKeys::derive(&master());
    let chunk_id = keys.object_id(chunk);
    let chunk_file = object::encode_sealed(
        ObjectKind::Chunk,
        Codec::Zstd(3),
        &keys,
        &chunk_id,
        chunk,
        &run(NONCE_CHUNK),
    );
    assert_eq!(chunk_file[6], 1, "the encrypted chunk must be zstd-coded");
    assert_eq!(
        chunk_file[8..16],
        [0; 8],
        "an encrypted object's header length is zero (the length is sealed)"
    );
    write(dir, "enc-object-chunk.bin", &chunk_file);

    let manifest = Manifest {
        manifest_version: 1,
        backup_id: "20260101T000000Z-0000abcd".into(),
        kind: "postgres_n8n".into(),
        host: "vector-host".into(),
        started_ms: T0,
        finished_ms: T0 + 1500,
        items: vec![
            Item {
                name: "db/n8n.dump".into(),
                kind: ItemKind::Stream,
                size: chunk.len() as u64,
                chunks: vec![ChunkRef {
                    id: chunk_id,
                    len: chunk.len() as u32,
                }],
            },
            Item {
                name: "config/empty.txt".into(),
                kind: ItemKind::Blob,
                size: 0,
                chunks: vec![],
            },
        ],
        labels: BTreeMap::from([("source".to_string(), "test-vectors".to_string())]),
        contents: None,
    };
    let manifest_plain = manifest.encode_plaintext();
    let manifest_id = keys.object_id(&manifest_plain);
    let manifest_file = object::encode_sealed(
        ObjectKind::Manifest,
        Codec::None,
        &keys,
        &manifest_id,
        &manifest_plain,
        &run(NONCE_MANIFEST),
    );
    write(dir, "enc-manifest.plain", &manifest_plain);
    write(dir, "enc-manifest.bin", &manifest_file);

    let r1 = JournalRecord {
        seq: 1,
        prev: GENESIS,
        time_ms: T0,
        writer: WRITER.into(),
        event: Event::StoreInitialized(StoreInitialized {
            store_id: ENC_STORE_ID.into(),
            format_version: 1,
        }),
    };
    let b1 = r1.encode_sealed(&keys, &run(NONCE_RECORD_1));
    let r2 = JournalRecord {
        seq: 2,
        prev: JournalRecord::hash_of_encoded(&b1),
        time_ms: T0 + 2000,
        writer: WRITER.into(),
        event: v1_backup_completed(BackupCompletedV1 {
            backup_id: manifest.backup_id.clone(),
            kind: manifest.kind.clone(),
            manifest: manifest_id,
            logical_bytes: manifest.logical_size(),
            new_bytes: chunk_file.len() as u64,
            new_objects: 1,
            objects: 1,
            reused_objects: 0,
            duration_ms: 1500,
        }),
    };
    let b2 = r2.encode_sealed(&keys, &run(NONCE_RECORD_2));
    for (r, b) in [(&r1, &b1), (&r2, &b2)] {
        assert_eq!(JournalRecord::decode_in(b, Some(&keys)).unwrap().seq, r.seq);
        write(
            dir,
            &format!("enc-journal-{}.bin", JournalRecord::file_name(r.seq)),
            b,
        );
    }

    // Damage: a flipped ciphertext bit, checksum left as it was.
    let mut flipped = chunk_file.clone();
    flipped[100] ^= 0x01;
    write(dir, "bad/enc-object-flipped.bin", &flipped);
    // Tampering: the same flip, with the checksum made to match again.
    let n = flipped.len() - 32;
    let sum = *blake3::hash(&flipped[..n]).as_bytes();
    flipped[n..].copy_from_slice(&sum);
    write(dir, "bad/enc-object-tampered.bin", &flipped);
    // A replay: record 2's sealed bytes relabelled as record 3 (same prev), in a
    // frame whose checksum is valid.
    #[derive(serde::Deserialize, Serialize)]
    struct SealedWire {
        record_version: u32,
        seq: u64,
        #[serde(with = "serde_bytes")]
        prev: Vec<u8>,
        #[serde(with = "serde_bytes")]
        sealed: Vec<u8>,
    }
    let mut w: SealedWire =
        rmp_serde::from_slice(frame::decode(b"ARKJ", "journal frame", &b2).unwrap()).unwrap();
    assert_eq!(
        frame::encode(b"ARKJ", &rmp_serde::to_vec_named(&w).unwrap()),
        b2,
        "the sealed wire form"
    );
    w.seq = 3;
    write(
        dir,
        "bad/enc-journal-relabelled.bin",
        &frame::encode(b"ARKJ", &rmp_serde::to_vec_named(&w).unwrap()),
    );

    println!();
    println!("enc key file       keys/{KEY_ID}, passphrase {PASSPHRASE:?}, KEK {KEK_HEX}");
    println!(
        "enc chunker seed   {0} = {0:#018x} (derive_key bytes 0..8: {1})",
        keys.chunker_seed(),
        ObjectId(blake3::derive_key(
            store_format::crypto::CONTEXT_CHUNKER,
            &master()
        ))
    );
    println!("enc chunk id       {chunk_id}");
    println!("enc manifest id    {manifest_id}");
    for (n, b) in [(1, &b1), (2, &b2)] {
        println!(
            "enc journal {n} hash {}",
            ObjectId(JournalRecord::hash_of_encoded(b))
        );
    }
    println!("enc-keyfile.bin:\n{}", hexdump(&kf_bytes));
    println!("enc-object-chunk.bin:\n{}", hexdump(&chunk_file));
    println!(
        "enc-journal-{}.bin:\n{}",
        JournalRecord::file_name(1),
        hexdump(&b1)
    );
}
