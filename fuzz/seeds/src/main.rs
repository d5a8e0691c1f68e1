//! Writes the seed corpus of every fuzz target into `fuzz/corpus/<target>/`,
//! from the real store-format encoders, plus truncated and bit-flipped variants.
//!
//! Deterministic: running it again rewrites the same files with the same bytes.
//! It only writes files named here; other files in the corpus (e.g. regression
//! inputs added by hand as `regress-*`) are left alone.
//!
//!     cargo run --manifest-path fuzz/seeds/Cargo.toml --target-dir fuzz/target/seeds
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use store_format::contents::{self, Contents};
use store_format::crypto::{StoreKeys, NONCE_LEN};
use store_format::event::{
    BackupCompleted, BackupCounts, BackupFailed, BackupStarted, GcCompleted, JournalRepaired,
    RepairedRecord, RestoreFailed, RestorePerformed, RestoredItem, StoreInitialized,
    VerificationCheck, VerificationCompleted, VerificationFailed, VerificationPolicySet,
    VerificationRule,
};
use store_format::object::{self, Codec, ObjectKind};
use store_format::{
    config, frame, journal, lock, ChunkRef, ChunkerParams, CompressionParams, Event, Item,
    ItemKind, JournalRecord, KdfParams, KeyFile, LockRecord, Manifest, ObjectId, StoreConfig,
};

/// Must match `EVENT_TYPES` in `fuzz_targets/journal_record.rs`.
const EVENT_TYPES: [&str; 12] = [
    "StoreInitialized",
    "BackupCompleted",
    "GcCompleted",
    "BackupForgotten",
    "SomeFutureEvent",
    "BackupStarted",
    "BackupFailed",
    "RestorePerformed",
    "RestoreFailed",
    "VerificationCompleted",
    "VerificationFailed",
    "VerificationPolicySet",
];

/// Must match `FIXED_PLAINTEXT` in `fuzz_targets/object.rs`.
const FIXED_PLAINTEXT: &[u8] = b"n8n-ark fuzz seed object\n";

/// Must match `FIXED_MASTER` in `fuzz_targets/keyfile.rs` and `sealed_object.rs`.
const FIXED_MASTER: [u8; 32] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30, 31,
];
/// Must match `fuzz_targets/keyfile.rs`.
const FIXED_KEK: [u8; 32] = [0x6b; 32];
const FIXED_CONFIG: &[u8] = b"n8n-ark fuzz config bytes";

struct Out {
    dir: PathBuf,
    count: usize,
}

impl Out {
    fn new(root: &Path, target: &str) -> Out {
        let dir = root.join(target);
        fs::create_dir_all(&dir).unwrap();
        Out { dir, count: 0 }
    }
    fn put(&mut self, name: &str, bytes: &[u8]) {
        fs::write(self.dir.join(name), bytes).unwrap();
        self.count += 1;
    }
    /// The input itself, then truncations and single-bit flips at positions
    /// spread over it (header bytes first: that is where the decisions are).
    fn put_with_damage(&mut self, name: &str, bytes: &[u8], header: usize) {
        self.put(name, bytes);
        let n = bytes.len();
        let mut cuts = vec![header.min(n), n / 2, n.saturating_sub(1)];
        cuts.sort();
        cuts.dedup();
        for cut in cuts {
            if cut < n {
                self.put(&format!("{name}.trunc{cut}"), &bytes[..cut]);
            }
        }
        let mut flips: Vec<usize> = (0..header.min(n)).step_by(3).collect();
        flips.extend([n / 3, n / 2, n.saturating_sub(1)]);
        flips.sort();
        flips.dedup();
        for (i, pos) in flips.into_iter().filter(|&p| p < n).enumerate() {
            let mut b = bytes.to_vec();
            b[pos] ^= 1 << (i % 8);
            self.put(&format!("{name}.flip{pos}"), &b);
        }
    }
}

fn id(n: u8) -> ObjectId {
    ObjectId::of(&[n])
}

fn sample_manifest() -> Manifest {
    let mut labels = BTreeMap::new();
    labels.insert("source".to_string(), "pg_dump -Fc -Z0 n8n".to_string());
    Manifest {
        manifest_version: 1,
        backup_id: "20261126T080000Z-0a1b2c3d".into(),
        kind: "postgres_n8n".into(),
        host: "n8n-prod".into(),
        started_ms: 1_795_000_000_000,
        finished_ms: 1_795_000_042_000,
        items: vec![
            Item {
                name: "db/n8n.dump".into(),
                kind: ItemKind::Stream,
                size: 1_048_576 + 524_288 + 17,
                chunks: vec![
                    ChunkRef {
                        id: id(1),
                        len: 1_048_576,
                    },
                    ChunkRef {
                        id: id(2),
                        len: 524_288,
                    },
                    ChunkRef { id: id(3), len: 17 },
                ],
            },
            Item {
                name: "workflows/Xy7kQ2.json".into(),
                kind: ItemKind::Blob,
                size: 2048,
                chunks: vec![ChunkRef {
                    id: id(4),
                    len: 2048,
                }],
            },
            Item {
                name: "config/empty.env".into(),
                kind: ItemKind::Blob,
                size: 0,
                chunks: vec![],
            },
        ],
        labels,
        contents: Some(sample_contents()),
    }
}

/// What a postgres_n8n backup describes: one database, one workflow, one
/// credential, one config file (each naming an item of the sample manifest).
fn sample_contents() -> Contents {
    Contents {
        databases: vec![contents::Database {
            name: "n8n".into(),
            server_version: "15.8".into(),
            server_version_num: 150008,
            pg_dump_version: "pg_dump (PostgreSQL) 15.8".into(),
            pg_dump_runner: "local:/usr/bin/pg_dump".into(),
            dump_item: "db/n8n.dump".into(),
            dump_format: "custom".into(),
            snapshot: "00000003-0000001B-1".into(),
            is_n8n: true,
            migration_head: Some("AddWorkflowVersionCounter1760000000000".into()),
            tables: vec![contents::Table {
                schema: "public".into(),
                name: "workflow_entity".into(),
                rows: 1,
                columns: vec![contents::Column {
                    name: "nodes".into(),
                    data_type: "json".into(),
                    nullable: false,
                }],
            }],
        }],
        workflows: vec![contents::Workflow {
            id: "Xy7kQ2".into(),
            name: "Invoice sync".into(),
            active: true,
            tags: vec!["production".into()],
            nodes: vec![contents::Node {
                name: "Schedule Trigger".into(),
                node_type: "n8n-nodes-base.scheduleTrigger".into(),
                hash: "00112233445566778899aabbccddeeff".into(),
            }],
            credentials: vec![contents::CredentialRef {
                credential_type: "slackApi".into(),
                id: Some("cred1".into()),
                name: Some("Slack".into()),
            }],
            created_at: Some("2026-11-26T07:25:06.173Z".into()),
            item: "workflows/Xy7kQ2.json".into(),
            object: id(4),
            size: 2048,
            ..Default::default()
        }],
        workflow_source: Some("postgres:n8n".into()),
        credentials: vec![contents::Credential {
            id: "cred1".into(),
            name: "Slack".into(),
            credential_type: "slackApi".into(),
            ..Default::default()
        }],
        // A workflow read but not stored, and a link whose path and target
        // are not UTF-8 (their bytes as bin): the fields added after the
        // first release.
        workflows_not_stored: vec![contents::WorkflowNotStored {
            id: "Nw9qT4".into(),
            name: "Pinned".into(),
            reason: "number out of range at line 1 column 102".into(),
        }],
        config_files: vec![
            contents::ConfigFile {
                path: "/opt/n8n/empty.env".into(),
                mode: 0o600,
                item: Some("config/empty.env".into()),
                ..Default::default()
            },
            contents::ConfigFile {
                path: "/etc/nginx/to-caf\\xe9".into(),
                path_bytes: Some(b"/etc/nginx/to-caf\xe9".to_vec()),
                file_type: contents::FileType::Symlink,
                link_target: Some("caf\\xe9.conf".into()),
                link_target_bytes: Some(b"caf\xe9.conf".to_vec()),
                ..Default::default()
            },
        ],
        encryption_key_fingerprint: Some("ab".repeat(32)),
        ..Default::default()
    }
}

fn sample_config() -> StoreConfig {
    StoreConfig {
        id: "6f1c2b0e9d8a47c3b5e4f6a7c8d9e0f1".into(),
        format_version: 1,
        created_ms: 1_795_000_000_000,
        chunker: ChunkerParams::new(256 * 1024, 1024 * 1024, 4 * 1024 * 1024),
        hash: "blake3-256".into(),
        compression: CompressionParams {
            codec: "zstd".into(),
            level: 3,
        },
        encryption: "none".into(),
    }
}

fn sample_lock() -> LockRecord {
    LockRecord {
        kind: "backup".into(),
        host: "n8n-prod".into(),
        pid: 4242,
        created_ms: 1_795_000_000_000,
        heartbeat_ms: 1_795_000_030_000,
        refresh_ms: 30_000,
        backup_id: None,
    }
}

fn sample_records() -> Vec<(&'static str, JournalRecord)> {
    let events = vec![
        (
            "store_initialized",
            Event::StoreInitialized(StoreInitialized {
                store_id: "6f1c2b0e9d8a47c3b5e4f6a7c8d9e0f1".into(),
                format_version: 1,
            }),
        ),
        (
            "backup_completed",
            Event::BackupCompleted(BackupCompleted {
                backup_id: "20261126T080000Z-0a1b2c3d".into(),
                kind: "postgres_n8n".into(),
                manifest: ObjectId::of(&sample_manifest().encode_plaintext()),
                logical_bytes: 1_572_881,
                new_bytes: 600_000,
                new_objects: 2,
                objects: 4,
                reused_objects: 2,
                duration_ms: 42_000,
                stored_bytes: 1_200_000,
                counts: BackupCounts {
                    databases: 1,
                    tables: 52,
                    workflows: 40,
                    credentials: 5,
                    config_files: 0,
                    items: 41,
                },
                recovered: None,
            }),
        ),
        (
            "backup_completed_recovered",
            Event::BackupCompleted(BackupCompleted {
                backup_id: "20261126T090000Z-1a2b3c4d".into(),
                kind: "flows".into(),
                manifest: ObjectId::of(b"another manifest"),
                logical_bytes: 4096,
                new_bytes: 0,
                new_objects: 0,
                objects: 3,
                reused_objects: 3,
                duration_ms: 0,
                stored_bytes: 2048,
                counts: BackupCounts::default(),
                recovered: Some("recovered from its manifest by repair 20261127T100000Z-0f0e0d0c".into()),
            }),
        ),
        (
            "journal_repaired",
            Event::JournalRepaired(JournalRepaired {
                repair_id: "20261127T100000Z-0f0e0d0c".into(),
                problems: vec![
                    RepairedRecord {
                        seq: 3,
                        through: 3,
                        problem: "damaged".into(),
                        file_hash: Some([7u8; 32]),
                    },
                    RepairedRecord {
                        seq: 9,
                        through: 11,
                        problem: "missing".into(),
                        file_hash: None,
                    },
                ],
                recovered: vec!["backup 20261126T090000Z-1a2b3c4d: completed, from its manifest".into()],
                lost: vec!["record 9-11: lost; nothing in the store tells what they were".into()],
                repaired_by: "root@n8n-host".into(),
            }),
        ),
        (
            "backup_started",
            Event::BackupStarted(BackupStarted {
                backup_id: "20261126T080000Z-0a1b2c3d".into(),
                kind: "postgres_n8n".into(),
                host: "n8n-host".into(),
                sources: vec!["postgres:n8n@127.0.0.1:5432/n8n".into()],
                trigger: Some("schedule".into()),
            }),
        ),
        (
            "backup_failed",
            Event::BackupFailed(BackupFailed {
                backup_id: "20261126T090000Z-0a1b2c3e".into(),
                kind: "postgres_n8n".into(),
                stage: "dump".into(),
                message: "pg_dump exited with status 1: connection to server lost".into(),
                duration_ms: 1_500,
                retryable: Some(true),
                trigger: Some("schedule".into()),
            }),
        ),
        (
            "restore_performed",
            Event::RestorePerformed(RestorePerformed {
                restore_id: "20261126T100000Z-0a1b2c3f".into(),
                backup_id: "20261126T080000Z-0a1b2c3d".into(),
                what: "workflow".into(),
                target: "n8n:http://127.0.0.1:5678".into(),
                result: "partial".into(),
                items: vec![
                    RestoredItem {
                        name: "workflow:0iNcgnwjC0dZ9IRp".into(),
                        outcome: "restored".into(),
                        detail: "new id KJUcAK8ySKfGsdoF".into(),
                    },
                    RestoredItem {
                        name: "workflow:ggi9BlSlvU26MEbZ".into(),
                        outcome: "failed".into(),
                        detail: "request/body/settings must NOT have additional properties".into(),
                    },
                ],
                safety_backup: None,
                duration_ms: 420,
            }),
        ),
        (
            "restore_failed",
            Event::RestoreFailed(RestoreFailed {
                restore_id: "20261126T110000Z-0a1b2c40".into(),
                backup_id: "20261126T080000Z-0a1b2c3d".into(),
                what: "full".into(),
                target: "root:/".into(),
                stage: "database".into(),
                message: "the database refused connections; to go back: n8n-ark restore full 20261126T105900Z-0a1b2c41 --yes".into(),
                items: vec![],
                safety_backup: Some("20261126T105900Z-0a1b2c41".into()),
                duration_ms: 9_000,
                retryable: Some(false),
                trigger: Some("api".into()),
            }),
        ),
        (
            "verification_completed",
            Event::VerificationCompleted(VerificationCompleted {
                verification_id: "20261126T120000Z-0a1b2c42".into(),
                backup_id: "20261126T080000Z-0a1b2c3d".into(),
                level: "restore".into(),
                passed: false,
                checks_run: 212,
                failures: vec![VerificationCheck {
                    check: "row_count".into(),
                    subject: "n8n.public.execution_entity".into(),
                    expected: "1200 rows".into(),
                    found: "1193 rows".into(),
                }],
                sandbox: Some("local:/tmp/n8n-ark-sandbox-verify-1a2b3c4d (PostgreSQL 15.8)".into()),
                duration_ms: 31_000,
            }),
        ),
        (
            "verification_failed",
            Event::VerificationFailed(VerificationFailed {
                verification_id: "20261126T120500Z-0a1b2c43".into(),
                backup_id: "20261126T080000Z-0a1b2c3d".into(),
                level: "restore".into(),
                stage: "sandbox".into(),
                message: "the Docker engine does not answer and no initdb 15 was found".into(),
                duration_ms: 40,
                retryable: Some(false),
                trigger: Some("manual".into()),
            }),
        ),
        (
            "verification_policy_set",
            Event::VerificationPolicySet(VerificationPolicySet {
                rules: vec![
                    VerificationRule {
                        level: "data".into(),
                        schedule: "after_backup".into(),
                        n: None,
                        percent: None,
                    },
                    VerificationRule {
                        level: "restore".into(),
                        schedule: "every_n_backups".into(),
                        n: Some(7),
                        percent: None,
                    },
                    VerificationRule {
                        level: "exists".into(),
                        schedule: "percent".into(),
                        n: None,
                        percent: Some(25),
                    },
                ],
                set_by: "root@n8n-host".into(),
            }),
        ),
        (
            "gc_completed",
            Event::GcCompleted(GcCompleted {
                objects_freed: 10,
                bytes_freed: 123_456,
                objects_kept: 99,
                duration_ms: 800,
            }),
        ),
        (
            // Written as raw MessagePack so that this seed builds whether or not
            // this store-format knows the type yet (it decodes as Unknown if not).
            "backup_forgotten",
            Event::Unknown {
                kind: "BackupForgotten".into(),
                version: 1,
                body: backup_forgotten_body(),
            },
        ),
        (
            "unknown_event",
            Event::Unknown {
                kind: "VerificationCompleted".into(),
                version: 3,
                body: vec![0x81, 0xa2, b'o', b'k', 0xc3],
            },
        ),
    ];
    let mut prev = journal::GENESIS;
    let mut out = Vec::new();
    for (seq, (name, event)) in events.into_iter().enumerate() {
        let r = JournalRecord {
            seq: seq as u64 + 1,
            prev,
            time_ms: 1_795_000_000_000 + seq as i64,
            writer: "n8n-prod:4242".into(),
            event,
        };
        prev = JournalRecord::hash_of_encoded(&r.encode());
        out.push((name, r));
    }
    out
}

/// `{"backup_id": .., "manifest": bin 32, "reason": ..}` as MessagePack.
fn backup_forgotten_body() -> Vec<u8> {
    fn str(out: &mut Vec<u8>, s: &str) {
        assert!(s.len() < 32);
        out.push(0xa0 | s.len() as u8);
        out.extend_from_slice(s.as_bytes());
    }
    let mut b = vec![0x83];
    str(&mut b, "backup_id");
    str(&mut b, "20261126T080000Z-0a1b2c3d");
    str(&mut b, "manifest");
    b.extend_from_slice(&[0xc4, 32]);
    b.extend_from_slice(&ObjectId::of(&sample_manifest().encode_plaintext()).0);
    str(&mut b, "reason");
    str(&mut b, "retention");
    b
}

/// The body of a frame (what the targets' "wrapped" mode feeds the decoder).
fn body(framed: &[u8]) -> &[u8] {
    &framed[frame::FRAME_HEADER..framed.len() - frame::FRAME_TRAILER]
}

fn objects(root: &Path) -> usize {
    let mut o = Out::new(root, "object");
    let fixed = ObjectId::of(FIXED_PLAINTEXT);
    for (name, kind) in [
        ("chunk", ObjectKind::Chunk),
        ("blob", ObjectKind::Blob),
        ("manifest", ObjectKind::Manifest),
    ] {
        let (i, bytes) = object::encode(kind, Codec::None, FIXED_PLAINTEXT);
        assert_eq!(i, fixed);
        assert_eq!(object::decode(&bytes, &fixed).unwrap().1, FIXED_PLAINTEXT);
        if kind == ObjectKind::Chunk {
            o.put_with_damage("fixed_none_chunk", &bytes, object::HEADER_LEN);
        } else {
            o.put(&format!("fixed_none_{name}"), &bytes);
        }
    }
    // The fixed plaintext under codec zstd: does not shrink, so the encoder would
    // store it raw; write the envelope by hand as another writer could.
    let z = zstd::bulk::compress(FIXED_PLAINTEXT, 3).unwrap();
    let mut bytes = object::encode_with_id(ObjectKind::Blob, Codec::None, FIXED_PLAINTEXT)
        [..object::HEADER_LEN]
        .to_vec();
    bytes[6] = 1;
    bytes.extend_from_slice(&z);
    assert_eq!(object::decode(&bytes, &fixed).unwrap().1, FIXED_PLAINTEXT);
    o.put_with_damage("fixed_zstd_blob", &bytes, object::HEADER_LEN);

    // A workflow-like JSON blob that compresses.
    let json: String = (0..40)
        .map(|i| {
            format!(
                "{{\"id\":\"node{i}\",\"type\":\"n8n-nodes-base.set\",\"position\":[{},{}]}},",
                i * 20,
                i * 10
            )
        })
        .collect();
    let (i, bytes) = object::encode(ObjectKind::Blob, Codec::Zstd(3), json.as_bytes());
    assert_eq!(bytes[6], 1, "expected the JSON to compress");
    assert!(object::decode(&bytes, &i).is_ok());
    o.put_with_damage("json_zstd_blob", &bytes, object::HEADER_LEN);

    let (i, bytes) = object::encode(
        ObjectKind::Manifest,
        Codec::Zstd(3),
        &sample_manifest().encode_plaintext(),
    );
    assert!(object::decode(&bytes, &i).is_ok());
    o.put("manifest_object", &bytes);

    let (_, bytes) = object::encode(ObjectKind::Chunk, Codec::None, b"");
    o.put("empty_chunk", &bytes);
    // Declared lengths at and past the limit.
    let mut big = bytes.clone();
    big[8..16].copy_from_slice(&object::MAX_PLAINTEXT.to_le_bytes());
    o.put("len_at_limit", &big);
    big[8..16].copy_from_slice(&(object::MAX_PLAINTEXT + 1).to_le_bytes());
    o.put("len_over_limit", &big);
    o.count
}

fn manifests(root: &Path) -> usize {
    let mut o = Out::new(root, "manifest");
    let m = sample_manifest();
    let bytes = m.encode_plaintext();
    assert_eq!(Manifest::decode_plaintext(&bytes).unwrap(), m);
    o.put_with_damage("typical", &bytes, 24);

    let empty = Manifest {
        items: vec![],
        labels: BTreeMap::new(),
        contents: None,
        ..m.clone()
    };
    o.put("empty", &empty.encode_plaintext());

    let future = Manifest {
        manifest_version: 2,
        ..m.clone()
    };
    o.put("future_version", &future.encode_plaintext());
    let mut dup = m.clone();
    dup.items[1].name = dup.items[0].name.clone();
    o.put("invalid_duplicate_name", &dup.encode_plaintext());
    let mut size = m.clone();
    size.items[0].size += 1;
    o.put("invalid_size", &size.encode_plaintext());
    let mut blob = m.clone();
    blob.items[0].kind = ItemKind::Blob;
    o.put("invalid_blob_chunks", &blob.encode_plaintext());
    for bad in [&dup, &size, &blob] {
        assert!(Manifest::decode_plaintext(&bad.encode_plaintext()).is_err());
    }
    o.count
}

fn journal_records(root: &Path) -> usize {
    let mut o = Out::new(root, "journal_record");
    for (name, r) in sample_records() {
        let bytes = r.encode();
        // Byte equality rather than value equality: the raw BackupForgotten seed
        // decodes as the known event where store-format knows it.
        assert_eq!(
            JournalRecord::decode(&bytes).unwrap().encode(),
            bytes,
            "{name}"
        );
        // Whole record files (mode 1), with damage for the first kind.
        if name == "backup_completed" {
            o.put_with_damage(name, &bytes, frame::FRAME_HEADER);
        } else {
            o.put(name, &bytes);
        }
        // Frame bodies (mode 2).
        o.put(&format!("{name}.body"), body(&bytes));
        // Event bodies (mode 3): type byte, version byte, body.
        let (kind, version) = r.event.kind_version();
        let type_byte = EVENT_TYPES
            .iter()
            .position(|t| *t == kind)
            .or_else(|| EVENT_TYPES.iter().position(|t| *t == "SomeFutureEvent"))
            .expect("SomeFutureEvent is listed") as u8;
        let mut ev = vec![type_byte, version as u8];
        ev.extend_from_slice(&r.event.encode_body());
        o.put(&format!("{name}.event"), &ev);
    }
    let (_, mut first) = sample_records().remove(0);
    first.seq = 0;
    o.put("seq_zero.body", body(&first.encode()));
    o.count
}

fn configs(root: &Path) -> usize {
    let mut o = Out::new(root, "config");
    let c = sample_config();
    let bytes = c.encode();
    assert_eq!(StoreConfig::decode(&bytes).unwrap(), c);
    o.put_with_damage("default", &bytes, frame::FRAME_HEADER);
    o.put("default.body", body(&bytes));
    o.put("encrypted", &encrypted_config().encode());
    o.put("encrypted.body", body(&encrypted_config().encode()));
    let none = StoreConfig {
        compression: CompressionParams {
            codec: "none".into(),
            level: 0,
        },
        ..c.clone()
    };
    o.put("no_compression.body", body(&none.encode()));
    let future = StoreConfig {
        format_version: 2,
        ..c.clone()
    };
    assert!(StoreConfig::decode(&future.encode()).is_err());
    o.put("future_version", &future.encode());
    o.put("future_version.body", body(&future.encode()));
    let chunker = StoreConfig {
        chunker: ChunkerParams::new(1024, 512, 4096),
        ..c.clone()
    };
    assert!(StoreConfig::decode(&chunker.encode()).is_err());
    o.put("invalid_chunker.body", body(&chunker.encode()));
    o.count
}

fn locks(root: &Path) -> usize {
    let mut o = Out::new(root, "lock");
    let l = sample_lock();
    let bytes = l.encode();
    assert_eq!(LockRecord::decode(&bytes).unwrap(), l);
    o.put_with_damage("backup", &bytes, frame::FRAME_HEADER);
    o.put("backup.body", body(&bytes));
    let gc = LockRecord {
        kind: "gc".into(),
        ..l
    };
    o.put("gc", &gc.encode());
    o.put("gc.body", body(&gc.encode()));
    let with_id = LockRecord {
        backup_id: Some("20261126T080000Z-0a1b2c3d".into()),
        ..sample_lock()
    };
    o.put("backup-with-id", &with_id.encode());
    o.count
}

fn encrypted_config() -> StoreConfig {
    StoreConfig {
        encryption: "xchacha20poly1305-blake3".into(),
        ..sample_config()
    }
}

fn sample_kdf() -> KdfParams {
    KdfParams {
        algorithm: "argon2id".into(),
        memory_kib: 64 * 1024,
        iterations: 3,
        parallelism: 1,
        salt: (0x20..0x30).collect(),
    }
}

fn sample_keyfile(kdf: KdfParams, config: &[u8]) -> KeyFile {
    KeyFile::wrap(
        &FIXED_MASTER,
        &FIXED_KEK,
        &[0x30; NONCE_LEN],
        kdf,
        config,
        1_795_000_000_000,
        "n8n-prod".into(),
    )
}

fn keyfiles(root: &Path) -> usize {
    let mut o = Out::new(root, "keyfile");
    let k = sample_keyfile(sample_kdf(), FIXED_CONFIG);
    let bytes = k.encode();
    assert_eq!(KeyFile::decode(&bytes).unwrap(), k);
    assert_eq!(
        k.unwrap_master(&FIXED_KEK, FIXED_CONFIG).unwrap(),
        FIXED_MASTER
    );
    o.put_with_damage("typical", &bytes, frame::FRAME_HEADER);
    o.put("typical.body", body(&bytes));
    // Bound to another config: decodes, never opens under the fixed one.
    let other = sample_keyfile(sample_kdf(), &encrypted_config().encode());
    o.put("other_config", &other.encode());
    // Parameters at the bounds, and out of them.
    let at_bounds = [
        (
            "min_params",
            KdfParams {
                memory_kib: 8,
                iterations: 1,
                parallelism: 1,
                salt: vec![7; 16],
                ..sample_kdf()
            },
        ),
        (
            "max_params",
            KdfParams {
                memory_kib: 4 * 1024 * 1024,
                iterations: 64,
                parallelism: 16,
                salt: vec![7; 64],
                ..sample_kdf()
            },
        ),
        // Exactly Argon2's own minimum of 8 KiB per lane.
        (
            "memory_at_lanes",
            KdfParams {
                memory_kib: 16,
                parallelism: 2,
                ..sample_kdf()
            },
        ),
    ];
    for (name, kdf) in at_bounds {
        let f = sample_keyfile(kdf, FIXED_CONFIG);
        assert!(KeyFile::decode(&f.encode()).is_ok(), "{name}");
        o.put(&format!("{name}.body"), body(&f.encode()));
    }
    let out_of_bounds = [
        (
            "memory_too_small",
            KdfParams {
                memory_kib: 7,
                ..sample_kdf()
            },
        ),
        (
            "too_many_lanes",
            KdfParams {
                parallelism: 17,
                ..sample_kdf()
            },
        ),
        // Below Argon2's own minimum of 8 KiB per lane (refused since
        // KdfParams::validate checks it).
        (
            "memory_below_lanes",
            KdfParams {
                memory_kib: 8,
                parallelism: 2,
                ..sample_kdf()
            },
        ),
        (
            "salt_too_short",
            KdfParams {
                salt: vec![7; 15],
                ..sample_kdf()
            },
        ),
        (
            "not_argon2id",
            KdfParams {
                algorithm: "scrypt".into(),
                ..sample_kdf()
            },
        ),
    ];
    for (name, kdf) in out_of_bounds {
        let f = sample_keyfile(kdf, FIXED_CONFIG);
        assert!(KeyFile::decode(&f.encode()).is_err(), "{name}");
        o.put(&format!("{name}.body"), body(&f.encode()));
    }
    let future = KeyFile {
        keyfile_version: 2,
        ..k.clone()
    };
    o.put("future_version.body", body(&future.encode()));
    let mut short = k.clone();
    short.wrapped.pop();
    assert!(KeyFile::decode(&short.encode()).is_err());
    o.put("wrapped_too_short.body", body(&short.encode()));
    o.count
}

/// An encrypted object of `plaintext`, as `object::encode_sealed` writes it but
/// with the codec given (the encoder would store a payload that zstd does not
/// shrink with codec none): the header's length field is zero, and the sealed
/// message is the plaintext length (u64 LE) followed by the payload.
fn sealed_by_hand(
    keys: &StoreKeys,
    id: &ObjectId,
    kind: ObjectKind,
    codec: u8,
    plaintext: &[u8],
    payload: &[u8],
    nonce: u8,
) -> Vec<u8> {
    let mut bytes = object::MAGIC.to_vec();
    bytes.extend_from_slice(&[
        object::ENVELOPE_VERSION,
        kind as u8,
        codec,
        object::FLAG_ENCRYPTED,
    ]);
    bytes.extend_from_slice(&0u64.to_le_bytes());
    let mut aad = bytes.clone();
    aad.extend_from_slice(&id.0);
    let mut msg = (plaintext.len() as u64).to_le_bytes().to_vec();
    msg.extend_from_slice(payload);
    bytes.extend_from_slice(&keys.seal(&[nonce; NONCE_LEN], &aad, &msg));
    let sum = JournalRecord::hash_of_encoded(&bytes);
    bytes.extend_from_slice(&sum);
    assert_eq!(
        object::seal_payload(
            kind,
            codec,
            keys,
            id,
            plaintext.len(),
            payload,
            &[nonce; NONCE_LEN]
        ),
        bytes,
        "the encoder's layout"
    );
    bytes
}

/// The `sealed` bin of a sealed record (the last field of its body).
fn sealed_field(record: &[u8]) -> &[u8] {
    let b = body(record);
    let at = b.windows(7).position(|w| w == b"\xa6sealed").unwrap() + 7;
    match b[at] {
        0xc4 => &b[at + 2..at + 2 + b[at + 1] as usize],
        0xc5 => {
            let n = u16::from_be_bytes([b[at + 1], b[at + 2]]) as usize;
            &b[at + 3..at + 3 + n]
        }
        t => panic!("unexpected bin tag {t:#x}"),
    }
}

fn sealed(root: &Path) -> usize {
    let mut o = Out::new(root, "sealed_object");
    let keys = StoreKeys::derive(&FIXED_MASTER);
    let fixed = keys.object_id(FIXED_PLAINTEXT);
    // Mode 1: encrypted objects of the fixed plaintext.
    for (name, kind) in [
        ("chunk", ObjectKind::Chunk),
        ("blob", ObjectKind::Blob),
        ("manifest", ObjectKind::Manifest),
    ] {
        let bytes = object::encode_sealed(
            kind,
            Codec::Zstd(3),
            &keys,
            &fixed,
            FIXED_PLAINTEXT,
            &[0x11; NONCE_LEN],
        );
        assert_eq!(bytes[6], 0, "the fixed plaintext does not shrink");
        assert_eq!(
            object::decode_in(&bytes, &fixed, Some(&keys)).unwrap().1,
            FIXED_PLAINTEXT
        );
        if kind == ObjectKind::Chunk {
            o.put_with_damage("obj_none_chunk", &bytes, object::HEADER_LEN + NONCE_LEN);
        } else {
            o.put(&format!("obj_none_{name}"), &bytes);
        }
    }
    let z = zstd::bulk::compress(FIXED_PLAINTEXT, 3).unwrap();
    let bytes = sealed_by_hand(
        &keys,
        &fixed,
        ObjectKind::Blob,
        1,
        FIXED_PLAINTEXT,
        &z,
        0x12,
    );
    assert_eq!(
        object::decode_in(&bytes, &fixed, Some(&keys)).unwrap().1,
        FIXED_PLAINTEXT
    );
    o.put_with_damage("obj_zstd_blob", &bytes, object::HEADER_LEN + NONCE_LEN);
    // A compressible JSON blob (another id: decodes to a hash mismatch against the fixed one).
    let json: String = (0..40)
        .map(|i| format!("{{\"id\":\"node{i}\",\"type\":\"n8n-nodes-base.set\"}},"))
        .collect();
    let jid = keys.object_id(json.as_bytes());
    let bytes = object::encode_sealed(
        ObjectKind::Blob,
        Codec::Zstd(3),
        &keys,
        &jid,
        json.as_bytes(),
        &[0x13; NONCE_LEN],
    );
    assert_eq!(bytes[6], 1);
    o.put("obj_json_zstd_blob", &bytes);
    // The fixed plaintext sealed under the wrong id, and an unencrypted object.
    o.put(
        "obj_wrong_id",
        &object::encode_sealed(
            ObjectKind::Chunk,
            Codec::None,
            &keys,
            &ObjectId::of(FIXED_PLAINTEXT),
            FIXED_PLAINTEXT,
            &[0x14; NONCE_LEN],
        ),
    );
    o.put(
        "obj_unencrypted",
        &object::encode(ObjectKind::Chunk, Codec::None, FIXED_PLAINTEXT).1,
    );
    let empty = object::encode_sealed(
        ObjectKind::Chunk,
        Codec::None,
        &keys,
        &keys.object_id(b""),
        b"",
        &[0x15; NONCE_LEN],
    );
    o.put("obj_empty", &empty);
    // Mode 2: kind byte, codec byte, (zstd: declared length u32 LE), payload.
    let mut m = vec![0u8, 0];
    m.extend_from_slice(FIXED_PLAINTEXT);
    o.put("payload_none", &m);
    let mut m = vec![1u8, 1];
    m.extend_from_slice(&(FIXED_PLAINTEXT.len() as u32).to_le_bytes());
    m.extend_from_slice(&z);
    o.put("payload_zstd", &m);
    // The target's mode 2 puts its declared length in the header, where an
    // encrypted object must have zero (the two seeds above are refused there);
    // a declared length of 0 and the sealed length in front of the payload
    // reach the decompression and id checks behind the AEAD.
    let mut m = vec![1u8, 1, 0, 0, 0, 0];
    m.extend_from_slice(&(FIXED_PLAINTEXT.len() as u64).to_le_bytes());
    m.extend_from_slice(&z);
    o.put("payload_zstd_sealed_len", &m);

    // Modes 3 and 4: sealed journal records, chained.
    let mut prev = journal::GENESIS;
    for (i, (name, r)) in sample_records().into_iter().enumerate() {
        let r = JournalRecord { prev, ..r };
        let bytes = r.encode_sealed(&keys, &[0x20 + i as u8; NONCE_LEN]);
        assert_eq!(
            JournalRecord::decode_in(&bytes, Some(&keys))
                .unwrap()
                .encode_sealed(&keys, &[0x20 + i as u8; NONCE_LEN]),
            bytes
        );
        prev = JournalRecord::hash_of_encoded(&bytes);
        if name == "backup_completed" {
            o.put_with_damage(&format!("rec_{name}"), &bytes, frame::FRAME_HEADER);
        } else {
            o.put(&format!("rec_{name}"), &bytes);
        }
        o.put(&format!("rec_{name}.body"), body(&bytes));
        // Mode 5: a byte (the target makes seq and prev of it), then the
        // sealed plaintext of this record.
        let mut aad = journal::MAGIC.to_vec();
        aad.extend_from_slice(&r.seq.to_le_bytes());
        aad.extend_from_slice(&r.prev);
        let inner = keys.open(&aad, sealed_field(&bytes)).unwrap();
        let mut m = vec![(r.seq - 1) as u8];
        m.extend_from_slice(&inner);
        o.put(&format!("inner_{name}"), &m);
    }
    // A record in the clear (refused in an encrypted store).
    o.put("rec_plain", &sample_records()[0].1.encode());
    o.count
}

fn frames(root: &Path) -> usize {
    let mut o = Out::new(root, "frame");
    let cfg = sample_config().encode();
    o.put_with_damage("config", &cfg, frame::FRAME_HEADER);
    o.put("lock", &sample_lock().encode());
    o.put("journal", &sample_records()[1].1.encode());
    o.put(
        "keyfile",
        &sample_keyfile(sample_kdf(), FIXED_CONFIG).encode(),
    );
    let empty = frame::encode(config::MAGIC, b"");
    assert_eq!(frame::decode(config::MAGIC, "config", &empty).unwrap(), b"");
    o.put("empty_body", &empty);
    o.put("empty_body_lock", &frame::encode(lock::MAGIC, b""));
    o.put("short_body", b"\x81\xa1a\x01");
    o.count
}

fn main() {
    let root = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .unwrap()
                .join("corpus")
        });
    let counts = [
        ("object", objects(&root)),
        ("manifest", manifests(&root)),
        ("journal_record", journal_records(&root)),
        ("config", configs(&root)),
        ("lock", locks(&root)),
        ("frame", frames(&root)),
        ("keyfile", keyfiles(&root)),
        ("sealed_object", sealed(&root)),
    ];
    for (target, n) in counts {
        println!("{n:3} seeds  {}", root.join(target).display());
    }
}
