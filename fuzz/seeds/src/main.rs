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
use store_format::event::{BackupCompleted, GcCompleted, StoreInitialized};
use store_format::object::{self, Codec, ObjectKind};
use store_format::{
    config, frame, journal, lock, ChunkRef, ChunkerParams, CompressionParams, Event, Item,
    ItemKind, JournalRecord, LockRecord, Manifest, ObjectId, StoreConfig,
};

/// Must match `EVENT_TYPES` in `fuzz_targets/journal_record.rs`.
const EVENT_TYPES: [&str; 5] = [
    "StoreInitialized",
    "BackupCompleted",
    "GcCompleted",
    "BackupForgotten",
    "SomeFutureEvent",
];

/// Must match `FIXED_PLAINTEXT` in `fuzz_targets/object.rs`.
const FIXED_PLAINTEXT: &[u8] = b"n8n-ark fuzz seed object\n";

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
            .unwrap_or(EVENT_TYPES.len() - 1) as u8;
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
    o.count
}

fn frames(root: &Path) -> usize {
    let mut o = Out::new(root, "frame");
    let cfg = sample_config().encode();
    o.put_with_damage("config", &cfg, frame::FRAME_HEADER);
    o.put("lock", &sample_lock().encode());
    o.put("journal", &sample_records()[1].1.encode());
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
    ];
    for (target, n) in counts {
        println!("{n:3} seeds  {}", root.join(target).display());
    }
}
