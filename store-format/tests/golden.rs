//! Golden vectors: the files in `test-vectors/` (written by
//! `cargo run -p store-format --example make-vectors`) must decode to the values
//! spelled out here, field by field, and re-encode to the same bytes. The
//! expected values are written out by hand, independently of the generator, so
//! that a change to an encoder or decoder that alters the format fails here.
//! See `test-vectors/README.md`.
use std::collections::BTreeMap;
use std::path::PathBuf;

use store_format::crypto::{self, StoreKeys};
use store_format::event::{
    BackupCompleted, BackupCounts, BackupFailed, BackupForgotten, BackupStarted, GcCompleted,
    JournalRepaired, RepairedRecord, RestoreFailed, StoreInitialized, VerificationFailed,
};
use store_format::journal::GENESIS;
use store_format::object::{self, Codec, ObjectKind};
use store_format::{
    ChunkRef, Event, FormatError, Item, ItemKind, JournalRecord, KdfParams, KeyFile, LockRecord,
    Manifest, ObjectId, StoreConfig,
};

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const STORE_ID: &str = "0123456789abcdef0123456789abcdef";
const CHUNK_ID: &str = "4eeed9a277929a75446cb28b277038df2c9fec63b4930b99da80e3dc8264c24e";
const BLOB_ID: &str = "f7ac8666ab5febcebfdb2e857ee5526f9286175ceaa938b71901b65f810df718";
const MANIFEST_ID: &str = "77b967af14f3bc86050076b1ae105ac909722869d12ea630b085ea2a99e29272";
const FUTURE_MANIFEST_ID: &str = "4096e2ccc0b710eb46047655cb96cd9eb3f940a01fe8995c2f6e132664d3d275";
/// BLAKE3-256 of the journal record files 1..=5.
const RECORD_HASHES: [&str; 5] = [
    "e465010e8260e76b0c3e1657481f5343dc2d71b78d6e33f215a212344536528e",
    "c8bdad289cc992f6344bba714b255bef0bbd1179380149c42f4b6bd3fc1cd22e",
    "813a3ec279540f5b0bf2509f9ccb37df41437a0be0de03497424898688ba4812",
    "7b5f8d2305cde79bbb02fa0665aca9ae17695b8d584ef6797affddb9f9462bc4",
    "12d7bf7d392f78590ca206433b24e3392a1cd5705b0ef0af9fbe1a0bfd6f4d2f",
];
/// The libzstd version (ZSTD_versionNumber) that produced `object-chunk-zstd.bin`.
const VECTOR_ZSTD_VERSION: u32 = 10507;
const BLOB_PLAINTEXT: &[u8] =
    br#"{"id":"G7pQ2xYc","name":"Daily report","active":true,"nodes":[]}"#;

// The encrypted store's vectors (`enc-*`). Fixed inputs, documented in
// test-vectors/README.md: consecutive byte runs.
const ENC_STORE_ID: &str = "fedcba9876543210fedcba9876543210";
const ENC_CHUNK_ID: &str = "cc8ace2b1668548afe8cbd8078a98115df3dd4b2edf280b76019b50b0aca4430";
const ENC_MANIFEST_ID: &str = "40bca5c9ff93ba76900d821c1a4bdcf5e4afa508cf10a4b9c97bae32208df7d2";
/// BLAKE3-256 of the sealed journal record files 1 and 2.
const ENC_RECORD_HASHES: [&str; 2] = [
    "1817e32e2a1374d9157682b04cba9c3631b947235ba08f4045ec4488687b0423",
    "8e02c126f175429742822e3c3e8874704112e4a001518859eaf823825192beaa",
];
/// The chunker seed of the test master key: the first 8 bytes, as a u64
/// little-endian, of BLAKE3 derive_key("n8n-ark 2026-11 chunker seed v1", master).
const ENC_CHUNKER_SEED: u64 = 0xe028_0bae_650c_86be; // 16152172907211818686
/// Argon2id (v0x13, m = 8192 KiB, t = 1, p = 1, salt 0x20..=0x2f, 32 bytes) of
/// the passphrase "n8n-ark test vector passphrase". store-format has no Argon2,
/// so the value is written out: computed with the `argon2` crate 0.5.3 and with
/// libargon2 (argon2-cffi), which agree.
const KEK: &str = "aba7c84c3bfbe517a9e74552f68f706b481d4f25b06a9dd2f79e6293de885d1d";
/// The same Argon2id of "n8n-ark wrong passphrase".
const WRONG_KEK: &str = "428c8d07f92bdbee1d6073fed5c48bb1c3ac898aa64db70da9dd69021f26cd29";

/// The test master key: bytes 0x00..=0x1f.
fn master() -> [u8; 32] {
    std::array::from_fn(|i| i as u8)
}

/// `N` consecutive bytes from `start`: the salt and the nonces.
fn run<const N: usize>(start: u8) -> [u8; N] {
    std::array::from_fn(|i| start + i as u8)
}

fn key(hex: &str) -> [u8; 32] {
    id(hex).0
}

fn keys() -> StoreKeys {
    StoreKeys::derive(&master())
}

/// XChaCha20-Poly1305 straight from the AEAD crate, with the encryption key
/// derived here from the spelled-out context string: checks the crate's key
/// derivation and sealing against an independent path.
fn open_independently(aad: &[u8], sealed: &[u8]) -> Vec<u8> {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    let enc_key = blake3::derive_key("n8n-ark 2026-11 encryption key v1", &master());
    let cipher = chacha20poly1305::XChaCha20Poly1305::new(&enc_key.into());
    cipher
        .decrypt(
            chacha20poly1305::XNonce::from_slice(&sealed[..24]),
            Payload {
                msg: &sealed[24..],
                aad,
            },
        )
        .expect("opens with the independently derived key")
}

/// An encrypted object's sealed message, opened independently: the plaintext
/// length (u64 little-endian) and the payload.
fn open_object_independently(header: &[u8], id: &ObjectId, sealed: &[u8]) -> (u64, Vec<u8>) {
    let msg = open_independently(&object_aad(header, id), sealed);
    (
        u64::from_le_bytes(msg[..8].try_into().unwrap()),
        msg[8..].to_vec(),
    )
}

/// The keyed object id, computed here from the spelled-out context string.
fn keyed_id_independently(plaintext: &[u8]) -> ObjectId {
    let id_key = blake3::derive_key("n8n-ark 2026-11 object id key v1", &master());
    ObjectId(*blake3::keyed_hash(&id_key, plaintext).as_bytes())
}

/// The checksum trailer of an encrypted object: BLAKE3-256 of everything before it.
fn reseal_checksum(bytes: &mut [u8]) {
    let n = bytes.len() - 32;
    let sum = hash(&bytes[..n]);
    bytes[n..].copy_from_slice(&sum);
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test-vectors")
}

fn read(name: &str) -> Vec<u8> {
    let p = dir().join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn id(hex: &str) -> ObjectId {
    ObjectId::from_hex(hex).unwrap()
}

fn hash(bytes: &[u8]) -> [u8; 32] {
    *blake3::hash(bytes).as_bytes()
}

/// Checks the 12-byte frame header by hand and returns the body length.
fn check_frame_header(bytes: &[u8], magic: &[u8; 4]) -> usize {
    assert_eq!(&bytes[0..4], magic);
    assert_eq!(bytes[4], 1, "frame version");
    assert_eq!(&bytes[5..8], &[0, 0, 0], "reserved");
    let len = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
    assert_eq!(bytes.len(), 12 + len + 32, "header + body + trailer");
    assert_eq!(
        &bytes[12 + len..],
        &hash(&bytes[..12 + len]),
        "trailer is BLAKE3 of header and body"
    );
    len
}

#[test]
fn config() {
    let bytes = read("config.bin");
    check_frame_header(&bytes, b"ARKC");
    let c = StoreConfig::decode(&bytes).unwrap();
    assert_eq!(c.id, STORE_ID);
    assert_eq!(c.format_version, 1);
    assert_eq!(c.created_ms, T0);
    assert_eq!(c.chunker.algorithm, "fastcdc-2020");
    assert_eq!(c.chunker.min_size, 131_072);
    assert_eq!(c.chunker.avg_size, 524_288);
    assert_eq!(c.chunker.max_size, 4_194_304);
    assert_eq!(c.hash, "blake3-256");
    assert_eq!(c.compression.codec, "zstd");
    assert_eq!(c.compression.level, 3);
    assert_eq!(c.encryption, "none");
    assert_eq!(c.encode(), bytes, "re-encoding");
}

#[test]
fn object_chunk_zstd() {
    let bytes = read("object-chunk-zstd.bin");
    let plain = read("object-chunk-zstd.plain");
    assert_eq!(plain.len(), 2614);
    assert_eq!(ObjectId::of(&plain), id(CHUNK_ID));
    assert_eq!(&bytes[0..4], b"ARKO");
    let h = object::parse_header(&bytes).unwrap();
    assert_eq!(h.kind, ObjectKind::Chunk);
    assert_eq!(h.codec, 1, "zstd");
    assert_eq!(h.flags, 0);
    assert_eq!(h.plaintext_len, 2614);
    assert_eq!(
        &bytes[16..20],
        &[0x28, 0xb5, 0x2f, 0xfd],
        "payload is a zstd frame"
    );
    let (kind, decoded) = object::decode(&bytes, &id(CHUNK_ID)).unwrap();
    assert_eq!(kind, ObjectKind::Chunk);
    assert_eq!(decoded, plain);

    let (rid, re) = object::encode(ObjectKind::Chunk, Codec::Zstd(3), &plain);
    assert_eq!(rid, id(CHUNK_ID));
    assert_eq!(re[..16], bytes[..16], "re-encoded header");
    assert_eq!(object::decode(&re, &rid).unwrap().1, plain);
    // zstd output is fixed for a given library version, level and input, but may
    // change between zstd releases; the decoding above is what must never change.
    if zstd::zstd_safe::version_number() == VECTOR_ZSTD_VERSION {
        assert_eq!(re, bytes, "re-encoding with the same zstd version");
    } else {
        eprintln!(
            "zstd {} differs from the vector's {VECTOR_ZSTD_VERSION}: byte-for-byte re-encoding of the zstd vector skipped",
            zstd::zstd_safe::version_number()
        );
    }
}

#[test]
fn object_blob_none() {
    let bytes = read("object-blob-none.bin");
    assert_eq!(bytes.len(), 16 + BLOB_PLAINTEXT.len());
    assert_eq!(
        &bytes[..16],
        &[b'A', b'R', b'K', b'O', 1, 2, 0, 0, 64, 0, 0, 0, 0, 0, 0, 0]
    );
    assert_eq!(&bytes[16..], BLOB_PLAINTEXT);
    let h = object::parse_header(&bytes).unwrap();
    assert_eq!(
        (h.kind, h.codec, h.flags, h.plaintext_len),
        (ObjectKind::Blob, 0, 0, 64)
    );
    let (kind, plain) = object::decode(&bytes, &id(BLOB_ID)).unwrap();
    assert_eq!(kind, ObjectKind::Blob);
    assert_eq!(plain, BLOB_PLAINTEXT);
    // Written with the store's codec (zstd), which does not shrink it: codec none.
    assert_eq!(
        object::encode(ObjectKind::Blob, Codec::Zstd(3), &plain),
        (id(BLOB_ID), bytes.clone())
    );
    assert_eq!(
        object::encode(ObjectKind::Blob, Codec::None, &plain),
        (id(BLOB_ID), bytes)
    );
}

fn expected_manifest() -> Manifest {
    Manifest {
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
                size: 2614,
                chunks: vec![ChunkRef {
                    id: id(CHUNK_ID),
                    len: 2614,
                }],
            },
            Item {
                name: "workflows/G7pQ2xYc.json".into(),
                kind: ItemKind::Blob,
                size: 64,
                chunks: vec![ChunkRef {
                    id: id(BLOB_ID),
                    len: 64,
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
    }
}

#[test]
fn manifest() {
    let bytes = read("manifest.bin");
    let h = object::parse_header(&bytes).unwrap();
    assert_eq!(
        (h.kind, h.codec, h.flags, h.plaintext_len),
        (ObjectKind::Manifest, 0, 0, 401)
    );
    let (kind, plain) = object::decode(&bytes, &id(MANIFEST_ID)).unwrap();
    assert_eq!(kind, ObjectKind::Manifest);
    assert_eq!(plain, read("manifest.plain"));
    // A MessagePack map of 8 entries whose first key is "manifest_version".
    assert_eq!(plain[0], 0x88);
    assert_eq!(&plain[1..18], b"\xb0manifest_version");

    let m = Manifest::decode_plaintext(&plain).unwrap();
    assert_eq!(m.manifest_version, 1);
    assert_eq!(m.backup_id, "20260101T000000Z-0000abcd");
    assert_eq!(m.kind, "postgres_n8n");
    assert_eq!(m.host, "vector-host");
    assert_eq!(m.started_ms, T0);
    assert_eq!(m.finished_ms, T0 + 1500);
    assert_eq!(m.items.len(), 3);
    assert_eq!(m.items[0].name, "db/n8n.dump");
    assert_eq!(m.items[0].kind, ItemKind::Stream);
    assert_eq!(m.items[0].size, 2614);
    assert_eq!(
        m.items[0].chunks,
        vec![ChunkRef {
            id: id(CHUNK_ID),
            len: 2614
        }]
    );
    assert_eq!(m.items[1].name, "workflows/G7pQ2xYc.json");
    assert_eq!(m.items[1].kind, ItemKind::Blob);
    assert_eq!(m.items[1].size, 64);
    assert_eq!(
        m.items[1].chunks,
        vec![ChunkRef {
            id: id(BLOB_ID),
            len: 64
        }]
    );
    assert_eq!(m.items[2].name, "config/empty.txt");
    assert_eq!(m.items[2].kind, ItemKind::Blob);
    assert_eq!(m.items[2].size, 0);
    assert!(m.items[2].chunks.is_empty());
    assert_eq!(
        m.labels.get("source").map(String::as_str),
        Some("test-vectors")
    );
    assert_eq!(m.labels.len(), 1);
    assert_eq!(m.logical_size(), 2614 + 64);
    assert_eq!(m, expected_manifest());

    assert_eq!(m.encode_plaintext(), plain, "re-encoding the plaintext");
    assert_eq!(
        object::encode(ObjectKind::Manifest, Codec::None, &plain),
        (id(MANIFEST_ID), bytes)
    );
}

fn record(seq: u64) -> (Vec<u8>, JournalRecord) {
    let bytes = read(&format!("journal-{seq:020}.bin"));
    check_frame_header(&bytes, b"ARKJ");
    let r = JournalRecord::decode(&bytes).unwrap();
    if seq == 2 {
        // Record 2 holds a version-1 BackupCompleted: it decodes (upcast to
        // version 2, the new fields zero) and re-encodes as version 2.
        let again = r.encode();
        assert_ne!(again, bytes);
        assert_eq!(JournalRecord::decode(&again).unwrap(), r);
    } else {
        assert_eq!(r.encode(), bytes, "re-encoding record {seq}");
    }
    assert_eq!(
        hash(&bytes),
        id(RECORD_HASHES[seq as usize - 1]).0,
        "hash of record {seq}"
    );
    (bytes, r)
}

#[test]
fn journal() {
    let (_, r1) = record(1);
    assert_eq!(r1.seq, 1);
    assert_eq!(r1.prev, GENESIS);
    assert_eq!(r1.prev, [0u8; 32]);
    assert_eq!(r1.time_ms, T0);
    assert_eq!(r1.writer, "vector-host:4242");
    assert_eq!(
        r1.event,
        Event::StoreInitialized(StoreInitialized {
            store_id: STORE_ID.into(),
            format_version: 1
        })
    );
    assert_eq!(r1.event.kind_version(), ("StoreInitialized", 1));

    let (_, r2) = record(2);
    assert_eq!(r2.seq, 2);
    assert_eq!(
        r2.prev,
        id(RECORD_HASHES[0]).0,
        "record 2 chains to record 1"
    );
    assert_eq!(r2.time_ms, T0 + 2000);
    assert_eq!(r2.writer, "vector-host:4242");
    let Event::BackupCompleted(e) = &r2.event else {
        panic!("record 2: {:?}", r2.event)
    };
    assert_eq!(
        *e,
        BackupCompleted {
            backup_id: "20260101T000000Z-0000abcd".into(),
            kind: "postgres_n8n".into(),
            manifest: id(MANIFEST_ID),
            logical_bytes: 2678,
            new_bytes: 274, // 194 (object-chunk-zstd.bin) + 80 (object-blob-none.bin)
            new_objects: 2,
            objects: 2,
            reused_objects: 0,
            duration_ms: 1500,
            stored_bytes: 0,
            counts: Default::default(),
            recovered: None,
        }
    );
    assert_eq!(r2.event.kind_version(), ("BackupCompleted", 2));
    assert_eq!(
        e.new_bytes,
        (read("object-chunk-zstd.bin").len() + read("object-blob-none.bin").len()) as u64
    );

    let (_, r3) = record(3);
    assert_eq!(
        (r3.seq, r3.prev, r3.time_ms),
        (3, id(RECORD_HASHES[1]).0, T0 + 3000)
    );
    assert_eq!(
        r3.event,
        Event::GcCompleted(GcCompleted {
            objects_freed: 1,
            bytes_freed: 123,
            objects_kept: 2,
            duration_ms: 250
        })
    );

    // An event this reader does not know is kept, body and all, and written back unchanged.
    let (_, r4) = record(4);
    assert_eq!(
        (r4.seq, r4.prev, r4.time_ms),
        (4, id(RECORD_HASHES[2]).0, T0 + 4000)
    );
    let Event::Unknown {
        kind,
        version,
        body,
    } = &r4.event
    else {
        panic!("record 4: {:?}", r4.event)
    };
    assert_eq!(kind, "ExampleFutureEvent");
    assert_eq!(*version, 3);
    assert_eq!(body.as_slice(), b"\x81\xa4note\xaakept as is");

    // The backup of record 2 is forgotten: the event names its manifest.
    let (bytes5, r5) = record(5);
    assert_eq!(bytes5.len(), 299);
    assert_eq!(
        (r5.seq, r5.prev, r5.time_ms),
        (5, id(RECORD_HASHES[3]).0, T0 + 5000)
    );
    assert_eq!(r5.writer, "vector-host:4242");
    assert_eq!(r5.event.kind_version(), ("BackupForgotten", 1));
    assert_eq!(
        r5.event,
        Event::BackupForgotten(BackupForgotten {
            backup_id: "20260101T000000Z-0000abcd".into(),
            manifest: id(MANIFEST_ID),
            reason: "removed by hand".into(),
        })
    );
    // The event body is a map of 3 entries, in the documented field order.
    let body = r5.event.encode_body();
    assert_eq!(body.len(), 0x67);
    assert_eq!(&body[..11], b"\x83\xa9backup_id");
    assert_eq!(&body[37..48], b"\xa8manifest\xc4\x20");
    assert_eq!(&body[48..80], &id(MANIFEST_ID).0);
    assert_eq!(&body[80..], b"\xa6reason\xafremoved by hand");
}

/// A repair: the journal of the vectors after record 3 was damaged, with the
/// two records `repair journal` appended.
#[test]
fn repair_records() {
    const R6_HASH: &str = "83ba2e04a82144275b1f1a1833672b96116a1781437a50e678298e4a0c04e1c0";
    const DAMAGED3_HASH: &str = "aedc136be1231d0dc8e013f1b8f40f75cb8f7d6610929c728a43f1f19bbfb949";
    let damaged = read("bad/journal-00000000000000000003-damaged.bin");
    let good = read("journal-00000000000000000003.bin");
    assert_eq!(damaged.len(), good.len());
    let diff: Vec<usize> = (0..good.len()).filter(|&i| good[i] != damaged[i]).collect();
    assert_eq!(diff, vec![60], "one byte differs");
    assert_eq!((good[60] ^ damaged[60]).count_ones(), 1, "by one bit");
    assert!(matches!(
        JournalRecord::decode(&damaged),
        Err(FormatError::ChecksumMismatch)
    ));
    assert_eq!(
        ObjectId(JournalRecord::hash_of_encoded(&damaged)),
        id(DAMAGED3_HASH)
    );

    let b6 = read("repair-journal-00000000000000000006.bin");
    check_frame_header(&b6, b"ARKJ");
    let r6 = JournalRecord::decode(&b6).unwrap();
    assert_eq!(r6.encode(), b6, "re-encodes byte for byte");
    assert_eq!(
        (r6.seq, r6.prev, r6.time_ms),
        (6, id(RECORD_HASHES[4]).0, T0 + 6000)
    );
    assert_eq!(r6.event.kind_version(), ("BackupCompleted", 2));
    assert_eq!(
        r6.event,
        Event::BackupCompleted(BackupCompleted {
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
                    .into()
            ),
        })
    );
    // `recovered` is the last field of the body (added within version 2).
    let body = r6.event.encode_body();
    assert!(
        body.windows(10).any(|w| w == b"\xa9recovered"),
        "the body names the field"
    );

    let b7 = read("repair-journal-00000000000000000007.bin");
    let r7 = JournalRecord::decode(&b7).unwrap();
    assert_eq!(r7.encode(), b7);
    assert_eq!((r7.seq, r7.prev, r7.time_ms), (7, id(R6_HASH).0, T0 + 7000));
    assert_eq!(r7.event.kind_version(), ("JournalRepaired", 1));
    assert_eq!(
        r7.event,
        Event::JournalRepaired(JournalRepaired {
            repair_id: "20260101T000007Z-0000beef".into(),
            problems: vec![RepairedRecord {
                seq: 3,
                through: 3,
                problem: "damaged".into(),
                file_hash: Some(id(DAMAGED3_HASH).0),
            }],
            recovered: vec![
                "backup 20260101T000002Z-0000abce (flows): completed, from its manifest".into()
            ],
            lost: vec![],
            repaired_by: "root@vector-host".into(),
        })
    );
}

/// Records 8 and 9: a scheduled backup's `BackupStarted` and `BackupFailed`
/// with `trigger` and `retryable`, map keys added within version 1.
#[test]
fn start_and_failure_events_record_the_trigger_and_retryable() {
    let b7 = read("repair-journal-00000000000000000007.bin");
    let b8 = read("trigger-journal-00000000000000000008.bin");
    check_frame_header(&b8, b"ARKJ");
    let r8 = JournalRecord::decode(&b8).unwrap();
    assert_eq!(r8.encode(), b8, "re-encodes byte for byte");
    assert_eq!((r8.seq, r8.prev, r8.time_ms), (8, hash(&b7), T0 + 8000));
    assert_eq!(r8.event.kind_version(), ("BackupStarted", 1));
    assert_eq!(
        r8.event,
        Event::BackupStarted(BackupStarted {
            backup_id: "20260101T000008Z-0000abcf".into(),
            kind: "postgres_n8n".into(),
            host: "vector-host".into(),
            sources: vec!["postgres:n8n@127.0.0.1:5432/n8n".into()],
            trigger: Some("schedule".into()),
        })
    );
    // The key as MessagePack writes it: fixstr "trigger", fixstr "schedule".
    let key = b"\xa7trigger\xa8schedule";
    assert!(b8.windows(key.len()).any(|w| w == key));

    let b9 = read("trigger-journal-00000000000000000009.bin");
    let r9 = JournalRecord::decode(&b9).unwrap();
    assert_eq!(r9.encode(), b9);
    assert_eq!((r9.seq, r9.prev, r9.time_ms), (9, hash(&b8), T0 + 9000));
    assert_eq!(r9.event.kind_version(), ("BackupFailed", 1));
    assert_eq!(
        r9.event,
        Event::BackupFailed(BackupFailed {
            backup_id: "20260101T000008Z-0000abcf".into(),
            kind: "postgres_n8n".into(),
            stage: "connect".into(),
            message: "PostgreSQL at 127.0.0.1:5432 did not answer".into(),
            duration_ms: 1000,
            retryable: Some(true),
            trigger: Some("schedule".into()),
        })
    );
    // fixstr "retryable", true.
    let key = b"\xa9retryable\xc3";
    assert!(b9.windows(key.len()).any(|w| w == key));
}

/// A failure or start event written before `trigger` and `retryable` were
/// recorded decodes with both absent, and one that does not know them is
/// written without the keys (the bytes older writers wrote).
#[test]
fn events_without_trigger_or_retryable_decode_with_them_absent() {
    let bodies: [(&str, &[u8]); 4] = [
        // {backup_id: "b", kind: "flows", host: "h", sources: []}
        ("BackupStarted", b"\x84\xa9backup_id\xa1b\xa4kind\xa5flows\xa4host\xa1h\xa7sources\x90"),
        // {backup_id: "b", kind: "flows", stage: "dump", message: "m", duration_ms: 5}
        ("BackupFailed", b"\x85\xa9backup_id\xa1b\xa4kind\xa5flows\xa5stage\xa4dump\xa7message\xa1m\xabduration_ms\x05"),
        // {restore_id, backup_id, what, target, stage, message, items: [], safety_backup: nil, duration_ms}
        ("RestoreFailed", b"\x89\xaarestore_id\xa1r\xa9backup_id\xa1b\xa4what\xa4full\xa6target\xa6root:/\xa5stage\xa4stop\xa7message\xa1m\xa5items\x90\xadsafety_backup\xc0\xabduration_ms\x05"),
        // {verification_id, backup_id, level, stage, message, duration_ms}
        ("VerificationFailed", b"\x86\xafverification_id\xa1v\xa9backup_id\xa1b\xa5level\xa7restore\xa5stage\xa7sandbox\xa7message\xa1m\xabduration_ms\x05"),
    ];
    for (kind, body) in bodies {
        let e = Event::decode(kind, 1, body).unwrap_or_else(|e| panic!("{kind}: {e}"));
        let (retryable, trigger) = match &e {
            Event::BackupStarted(BackupStarted { trigger, .. }) => (None, trigger.clone()),
            Event::BackupFailed(BackupFailed {
                retryable, trigger, ..
            })
            | Event::RestoreFailed(RestoreFailed {
                retryable, trigger, ..
            })
            | Event::VerificationFailed(VerificationFailed {
                retryable, trigger, ..
            }) => (*retryable, trigger.clone()),
            other => panic!("{kind}: decoded as {other:?}"),
        };
        assert_eq!((retryable, trigger), (None, None), "{kind}");
        assert_eq!(e.encode_body(), body, "{kind}: re-encoded without the keys");
    }
}

#[test]
fn journal_file_names() {
    assert_eq!(JournalRecord::file_name(1), "00000000000000000001");
    assert_eq!(
        JournalRecord::parse_file_name("00000000000000000004"),
        Some(4)
    );
    assert_eq!(JournalRecord::parse_file_name("4"), None);
    assert_eq!(
        JournalRecord::parse_file_name(".tmp-00000000000000000004"),
        None
    );
}

#[test]
fn lock() {
    let bytes = read("lock.bin");
    check_frame_header(&bytes, b"ARKL");
    let l = LockRecord::decode(&bytes).unwrap();
    assert_eq!(
        l,
        LockRecord {
            kind: "backup".into(),
            host: "vector-host#pidns:4026531836".into(),
            pid: 4242,
            created_ms: T0,
            heartbeat_ms: T0 + 30_000,
            refresh_ms: 30_000,
            backup_id: None,
        }
    );
    assert_eq!(l.encode(), bytes);
}

#[test]
fn bad_vectors_are_refused() {
    let e = StoreConfig::decode(&read("bad/config-future-version.bin")).unwrap_err();
    assert_eq!(
        e,
        FormatError::UnsupportedVersion {
            what: "store format",
            found: 2,
            supported: 1
        }
    );
    assert!(e.to_string().contains("upgrade"), "{e}");

    let torn = read("bad/journal-torn.bin");
    assert_eq!(torn, read("journal-00000000000000000002.bin")[..200]);
    assert_eq!(
        JournalRecord::decode(&torn).unwrap_err(),
        FormatError::Truncated {
            need: 377,
            have: 200
        }
    );

    assert_eq!(
        JournalRecord::decode(&read("bad/journal-bitflip.bin")).unwrap_err(),
        FormatError::ChecksumMismatch
    );

    let e = JournalRecord::decode(&read("bad/journal-future-version.bin")).unwrap_err();
    assert_eq!(
        e,
        FormatError::UnsupportedVersion {
            what: "journal record",
            found: 2,
            supported: 1
        }
    );
    assert!(e.to_string().contains("upgrade"), "{e}");

    let flipped = read("bad/object-flipped.bin");
    assert!(matches!(
        object::decode(&flipped, &id(BLOB_ID)),
        Err(FormatError::HashMismatch { .. })
    ));
    assert!(
        object::decode_unverified(&flipped).is_ok(),
        "the envelope itself is intact"
    );

    // An unencrypted object has no checksum over its header: nothing shows
    // that a newer writer set its version byte, so it is damage.
    let e = object::decode(&read("bad/object-future-envelope.bin"), &id(BLOB_ID)).unwrap_err();
    assert_eq!(
        e,
        FormatError::DamagedHeader {
            what: "envelope version byte",
            found: 2,
        }
    );
    assert!(e.to_string().starts_with("damaged"), "{e}");
    assert!(!e.to_string().contains("upgrade"), "{e}");

    // Bit 0 of the flags means "encrypted" (section 7); bit 1 is reserved.
    let reserved = read("bad/object-reserved-flags.bin");
    assert_eq!(reserved[7], 0x02);
    assert_eq!(reserved[..7], read("object-blob-none.bin")[..7]);
    assert_eq!(reserved[8..], read("object-blob-none.bin")[8..]);
    let damaged = FormatError::DamagedHeader {
        what: "flags byte",
        found: 2,
    };
    assert_eq!(
        object::decode(&reserved, &id(BLOB_ID)).unwrap_err(),
        damaged
    );
    assert_eq!(object::parse_header(&reserved).unwrap_err(), damaged);
    // An encrypted object given to a reader without the store's key: refused, not misread.
    let e = object::decode(&read("enc-object-chunk.bin"), &id(ENC_CHUNK_ID)).unwrap_err();
    assert!(
        matches!(&e, FormatError::Invalid(m) if m.contains("encrypted")),
        "{e:?}"
    );

    let (kind, plain) = object::decode(
        &read("bad/manifest-future-version.bin"),
        &id(FUTURE_MANIFEST_ID),
    )
    .unwrap();
    assert_eq!(kind, ObjectKind::Manifest);
    let e = Manifest::decode_plaintext(&plain).unwrap_err();
    assert_eq!(
        e,
        FormatError::UnsupportedVersion {
            what: "manifest",
            found: 2,
            supported: 1
        }
    );
    assert!(e.to_string().contains("upgrade"), "{e}");
}

/// Every file in the folder is one of the vectors above, and each is named in the README.
#[test]
fn readme_lists_every_vector() {
    let readme = String::from_utf8(read("README.md")).unwrap();
    let mut names = Vec::new();
    for sub in ["", "bad/"] {
        for e in std::fs::read_dir(dir().join(sub)).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_file() && e.file_name() != "README.md" {
                names.push(format!("{sub}{}", e.file_name().to_string_lossy()));
            }
        }
    }
    names.sort();
    assert_eq!(names.len(), 36, "{names:?}");
    for n in &names {
        assert!(
            readme.contains(&format!("`{n}`")),
            "test-vectors/README.md does not describe {n}"
        );
    }
}

/// The hex dumps in SPEC.md are the vectors' bytes.
#[test]
fn spec_hex_dumps_match_the_vectors() {
    let spec =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("SPEC.md")).unwrap();
    for name in [
        "object-blob-none.bin",
        "journal-00000000000000000001.bin",
        "journal-00000000000000000005.bin",
        "enc-keyfile.bin",
        "enc-object-chunk.bin",
        "enc-journal-00000000000000000001.bin",
    ] {
        let marker = format!("<!-- hexdump: {name} -->");
        let start = spec
            .find(&marker)
            .unwrap_or_else(|| panic!("SPEC.md has no {marker}"));
        let rest = &spec[start + marker.len()..];
        let open = rest
            .find("```text\n")
            .expect("a ```text block after the marker")
            + "```text\n".len();
        let close = rest[open..].find("```").unwrap();
        assert_eq!(
            &rest[open..open + close],
            hexdump(&read(name)),
            "hex dump of {name} in SPEC.md"
        );
    }
}

fn hexdump(bytes: &[u8]) -> String {
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

// ---------------------------------------------------------------------------
// An encrypted store (SPEC.md sections 6, 7 and 10). Every vector below was
// made with the fixed test master key and fixed nonces, so each re-encodes byte
// for byte.

#[test]
fn key_derivation() {
    // The context strings are part of the format: spelled out here on purpose.
    assert_eq!(crypto::CONTEXT_ID, "n8n-ark 2026-11 object id key v1");
    assert_eq!(
        crypto::CONTEXT_ENCRYPTION,
        "n8n-ark 2026-11 encryption key v1"
    );
    assert_eq!(crypto::CONTEXT_CHUNKER, "n8n-ark 2026-11 chunker seed v1");
    let k = keys();
    // The chunker seed: the first 8 bytes of the third derived key, little-endian.
    let seed_key = blake3::derive_key("n8n-ark 2026-11 chunker seed v1", &master());
    assert_eq!(
        seed_key[..8],
        [0xbe, 0x86, 0x0c, 0x65, 0xae, 0x0b, 0x28, 0xe0]
    );
    assert_eq!(
        u64::from_le_bytes(seed_key[..8].try_into().unwrap()),
        ENC_CHUNKER_SEED
    );
    assert_eq!(k.chunker_seed(), ENC_CHUNKER_SEED);
    assert_eq!(k.chunker_seed(), 16_152_172_907_211_818_686);
    let chunk = read("object-chunk-zstd.plain");
    assert_eq!(k.object_id(&chunk), keyed_id_independently(&chunk));
    assert_eq!(k.object_id(&chunk), id(ENC_CHUNK_ID));
    // Keyed: not the unkeyed id, and another master key gives another id.
    assert_ne!(k.object_id(&chunk), id(CHUNK_ID));
    let mut other = master();
    other[0] ^= 1;
    assert_ne!(
        StoreKeys::derive(&other).object_id(&chunk),
        id(ENC_CHUNK_ID)
    );
    assert_ne!(StoreKeys::derive(&other).chunker_seed(), ENC_CHUNKER_SEED);
    // The three derived values are independent of each other.
    let id_key = blake3::derive_key(crypto::CONTEXT_ID, &master());
    let enc_key = blake3::derive_key(crypto::CONTEXT_ENCRYPTION, &master());
    assert_ne!(id_key, enc_key);
    assert_ne!(id_key, seed_key);
    assert_ne!(enc_key, seed_key);
}

#[test]
fn encrypted_config() {
    let bytes = read("enc-config.bin");
    check_frame_header(&bytes, b"ARKC");
    let c = StoreConfig::decode(&bytes).unwrap();
    assert_eq!(c.id, ENC_STORE_ID);
    assert_eq!(
        c.format_version, 1,
        "encryption does not change the format version"
    );
    assert_eq!(c.created_ms, T0);
    assert_eq!(
        (c.chunker.min_size, c.chunker.avg_size, c.chunker.max_size),
        (131_072, 524_288, 4_194_304)
    );
    assert_eq!(c.hash, "blake3-256");
    assert_eq!(
        (c.compression.codec.as_str(), c.compression.level),
        ("zstd", 3)
    );
    assert_eq!(c.encryption, "xchacha20poly1305-blake3");
    assert_eq!(c.encode(), bytes, "re-encoding");
    let mut other = c.clone();
    other.encryption = "aes-256-gcm".into();
    assert!(matches!(
        StoreConfig::decode(&other.encode()),
        Err(FormatError::Invalid(_))
    ));
}

fn expected_kdf() -> KdfParams {
    KdfParams {
        algorithm: "argon2id".into(),
        memory_kib: 8192,
        iterations: 1,
        parallelism: 1,
        salt: run::<16>(0x20).to_vec(),
    }
}

#[test]
fn key_file() {
    let bytes = read("enc-keyfile.bin");
    let config = read("enc-config.bin");
    let len = check_frame_header(&bytes, b"ARKK");
    assert_eq!(len, 223);
    // A map of 5 entries whose first key is "keyfile_version".
    assert_eq!(&bytes[12..29], b"\x85\xafkeyfile_version");
    let kf = KeyFile::decode(&bytes).unwrap();
    assert_eq!(kf.keyfile_version, 1);
    assert_eq!(kf.created_ms, T0);
    assert_eq!(kf.host, "vector-host");
    assert_eq!(kf.kdf, expected_kdf());
    kf.kdf.validate().unwrap();
    assert_eq!(
        kf.wrapped.len(),
        24 + 32 + 16,
        "nonce, wrapped master key, tag"
    );
    assert_eq!(kf.wrapped[..24], run::<24>(0x30), "the nonce comes first");
    assert_eq!(kf.unwrap_master(&key(KEK), &config).unwrap(), master());
    // Independently: the associated data is "ARKK" ‖ BLAKE3-256(config file bytes).
    {
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        let mut aad = b"ARKK".to_vec();
        aad.extend_from_slice(&hash(&config));
        let cipher = chacha20poly1305::XChaCha20Poly1305::new(&key(KEK).into());
        let m = cipher
            .decrypt(
                chacha20poly1305::XNonce::from_slice(&kf.wrapped[..24]),
                Payload {
                    msg: &kf.wrapped[24..],
                    aad: &aad,
                },
            )
            .unwrap();
        assert_eq!(m, master());
    }
    // Re-encoding, byte for byte (the nonce is an input).
    let again = KeyFile::wrap(
        &master(),
        &key(KEK),
        &run(0x30),
        expected_kdf(),
        &config,
        T0,
        "vector-host".into(),
    );
    assert_eq!(again, kf);
    assert_eq!(again.encode(), bytes);

    // A wrong passphrase (its Argon2id output under the same parameters).
    assert_eq!(
        kf.unwrap_master(&key(WRONG_KEK), &config).unwrap_err(),
        FormatError::AuthenticationFailed
    );
    // A changed config: the key file opens with no key. Downgraded to no
    // encryption, another config, or one changed byte.
    let mut downgraded = StoreConfig::decode(&config).unwrap();
    downgraded.encryption = "none".into();
    for changed in [downgraded.encode(), read("config.bin"), {
        let mut c = StoreConfig::decode(&config).unwrap();
        c.chunker.avg_size *= 2;
        c.chunker.max_size *= 2;
        c.encode()
    }] {
        assert_eq!(
            kf.unwrap_master(&key(KEK), &changed).unwrap_err(),
            FormatError::AuthenticationFailed
        );
    }
    // Damage to the file: the frame's checksum.
    let mut flipped = bytes.clone();
    flipped[0xc0] ^= 0x01;
    assert_eq!(
        KeyFile::decode(&flipped).unwrap_err(),
        FormatError::ChecksumMismatch
    );
    // Tampering with the wrapped key inside a valid frame: the AEAD.
    let mut tampered = kf.clone();
    tampered.wrapped[40] ^= 0x01;
    let tampered = KeyFile::decode(&tampered.encode()).unwrap();
    assert_eq!(
        tampered.unwrap_master(&key(KEK), &config).unwrap_err(),
        FormatError::AuthenticationFailed
    );
    // Parameters out of bounds are refused before any key derivation.
    for bad in [
        KdfParams {
            memory_kib: 7,
            ..expected_kdf()
        },
        KdfParams {
            memory_kib: 4 * 1024 * 1024 + 1,
            ..expected_kdf()
        },
        KdfParams {
            iterations: 0,
            ..expected_kdf()
        },
        KdfParams {
            iterations: 65,
            ..expected_kdf()
        },
        KdfParams {
            parallelism: 0,
            ..expected_kdf()
        },
        KdfParams {
            parallelism: 17,
            ..expected_kdf()
        },
        // Argon2's own minimum: 8 KiB of memory per lane.
        KdfParams {
            memory_kib: 8,
            parallelism: 2,
            ..expected_kdf()
        },
        KdfParams {
            memory_kib: 127,
            parallelism: 16,
            ..expected_kdf()
        },
        KdfParams {
            salt: vec![0; 15],
            ..expected_kdf()
        },
        KdfParams {
            salt: vec![0; 65],
            ..expected_kdf()
        },
        KdfParams {
            algorithm: "scrypt".into(),
            ..expected_kdf()
        },
    ] {
        let f = KeyFile {
            kdf: bad,
            ..kf.clone()
        };
        assert!(
            matches!(KeyFile::decode(&f.encode()), Err(FormatError::Invalid(_))),
            "{:?}",
            f.kdf
        );
    }
    // At the lane minimum: accepted.
    for ok in [
        KdfParams {
            memory_kib: 16,
            parallelism: 2,
            ..expected_kdf()
        },
        KdfParams {
            memory_kib: 128,
            parallelism: 16,
            ..expected_kdf()
        },
    ] {
        ok.validate().unwrap();
        let f = KeyFile {
            kdf: ok,
            ..kf.clone()
        };
        assert_eq!(KeyFile::decode(&f.encode()).unwrap(), f);
    }
    let f = KeyFile {
        keyfile_version: 2,
        ..kf.clone()
    };
    assert_eq!(
        KeyFile::decode(&f.encode()).unwrap_err(),
        FormatError::UnsupportedVersion {
            what: "key file",
            found: 2,
            supported: 1
        }
    );
}

/// Splits an encrypted object into header, nonce ‖ ciphertext ‖ tag, checksum.
fn split_sealed(bytes: &[u8]) -> (&[u8], &[u8], &[u8]) {
    let n = bytes.len();
    (&bytes[..16], &bytes[16..n - 32], &bytes[n - 32..])
}

fn object_aad(header: &[u8], id: &ObjectId) -> Vec<u8> {
    let mut aad = header.to_vec();
    aad.extend_from_slice(&id.0);
    aad
}

#[test]
fn encrypted_chunk() {
    let bytes = read("enc-object-chunk.bin");
    let plain = read("object-chunk-zstd.plain");
    let zstd_frame = read("object-chunk-zstd.bin")[16..].to_vec();
    let k = keys();
    let cid = id(ENC_CHUNK_ID);
    // The header's length field is zero: the exact length is sealed.
    assert_eq!(
        &bytes[..16],
        &[b'A', b'R', b'K', b'O', 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    );
    let h = object::parse_header(&bytes).unwrap();
    assert_eq!(
        (h.kind, h.codec, h.flags, h.plaintext_len),
        (ObjectKind::Chunk, 1, object::FLAG_ENCRYPTED, 0)
    );
    let (header, sealed, sum) = split_sealed(&bytes);
    assert_eq!(
        sealed[..24],
        run::<24>(0x48),
        "the nonce follows the header"
    );
    assert_eq!(
        sum,
        hash(&bytes[..bytes.len() - 32]),
        "checksum of all bytes before it"
    );
    // The sealed message is the plaintext length (u64 LE) and the payload, the
    // same zstd frame as the unencrypted chunk's (both were written by one
    // zstd): 8 + 178 bytes, sealed with a 16-byte tag.
    let (len, payload) = open_object_independently(header, &cid, sealed);
    assert_eq!(len, 2614);
    assert_eq!(payload, zstd_frame);
    assert_eq!(payload.len(), 178);
    assert_eq!(bytes.len(), 16 + 24 + 8 + 178 + 16 + 32);
    assert_eq!(bytes.len(), 274);
    let mut msg = 2614u64.to_le_bytes().to_vec();
    msg.extend_from_slice(&payload);
    assert_eq!(k.open(&object_aad(header, &cid), sealed).unwrap(), msg);

    let (kind, decoded) = object::decode_in(&bytes, &cid, Some(&k)).unwrap();
    assert_eq!(kind, ObjectKind::Chunk);
    assert_eq!(decoded, plain);
    let codec = object::ObjectCodec {
        codec: Codec::Zstd(3),
        keys: Some(std::sync::Arc::new(keys())),
    };
    assert_eq!(codec.id_of(&plain), cid);
    assert_eq!(
        codec.decode(&bytes, &cid).unwrap(),
        (ObjectKind::Chunk, plain.clone())
    );

    // Re-encoding: the sealing is exact whatever the zstd version (the payload
    // taken from the vector); the whole file from the plaintext only with the
    // zstd that wrote the vector (see object_chunk_zstd).
    assert_eq!(k.seal(&run(0x48), &object_aad(header, &cid), &msg), sealed);
    assert_eq!(
        object::seal_payload(
            ObjectKind::Chunk,
            1,
            &k,
            &cid,
            plain.len(),
            &payload,
            &run(0x48)
        ),
        bytes
    );
    let re = object::encode_sealed(
        ObjectKind::Chunk,
        Codec::Zstd(3),
        &k,
        &cid,
        &plain,
        &run(0x48),
    );
    assert_eq!(re[..16], bytes[..16]);
    assert_eq!(object::decode_in(&re, &cid, Some(&k)).unwrap().1, plain);
    if zstd::zstd_safe::version_number() == VECTOR_ZSTD_VERSION {
        assert_eq!(re, bytes, "re-encoding with the same zstd version");
        assert_eq!(
            codec.encode(ObjectKind::Chunk, &cid, &plain, &run(0x48)),
            bytes
        );
    }
    // A fresh nonce gives other bytes for the same plaintext and id.
    assert_ne!(
        object::encode_sealed(
            ObjectKind::Chunk,
            Codec::Zstd(3),
            &k,
            &cid,
            &plain,
            &run(0x49)
        )[16..],
        bytes[16..]
    );
}

#[test]
fn encrypted_manifest() {
    let bytes = read("enc-manifest.bin");
    let plain = read("enc-manifest.plain");
    let k = keys();
    let mid = id(ENC_MANIFEST_ID);
    assert_eq!(plain.len(), 304);
    assert_eq!(k.object_id(&plain), mid);
    assert_eq!(keyed_id_independently(&plain), mid);
    let h = object::parse_header(&bytes).unwrap();
    assert_eq!(
        (h.kind, h.codec, h.flags, h.plaintext_len),
        (ObjectKind::Manifest, 0, 1, 0)
    );
    assert_eq!(bytes.len(), 16 + 24 + 8 + 304 + 16 + 32);
    assert_eq!(bytes.len(), 400);
    let (header, sealed, _) = split_sealed(&bytes);
    assert_eq!(sealed[..24], run::<24>(0x60));
    assert_eq!(
        open_object_independently(header, &mid, sealed),
        (304, plain.clone()),
        "codec none: the payload is the plaintext"
    );
    let (kind, decoded) = object::decode_in(&bytes, &mid, Some(&k)).unwrap();
    assert_eq!(kind, ObjectKind::Manifest);
    assert_eq!(decoded, plain);

    let m = Manifest::decode_plaintext(&plain).unwrap();
    let expected = Manifest {
        items: vec![
            Item {
                name: "db/n8n.dump".into(),
                kind: ItemKind::Stream,
                size: 2614,
                chunks: vec![ChunkRef {
                    id: id(ENC_CHUNK_ID),
                    len: 2614,
                }],
            },
            Item {
                name: "config/empty.txt".into(),
                kind: ItemKind::Blob,
                size: 0,
                chunks: vec![],
            },
        ],
        ..expected_manifest()
    };
    assert_eq!(m, expected);
    assert_eq!(m.encode_plaintext(), plain);
    assert_eq!(
        object::encode_sealed(
            ObjectKind::Manifest,
            Codec::None,
            &k,
            &mid,
            &plain,
            &run(0x60)
        ),
        bytes
    );
    assert_eq!(
        object::seal_payload(
            ObjectKind::Manifest,
            0,
            &k,
            &mid,
            plain.len(),
            &plain,
            &run(0x60)
        ),
        bytes
    );
}

/// An encrypted object sealed by hand: `header_len` in the header, `msg` sealed
/// (a key holder could write any of these; the reader must still check them).
fn seal_by_hand(
    kind: ObjectKind,
    codec: u8,
    header_len: u64,
    id: &ObjectId,
    msg: &[u8],
) -> Vec<u8> {
    let mut bytes = b"ARKO".to_vec();
    bytes.extend_from_slice(&[1, kind as u8, codec, object::FLAG_ENCRYPTED]);
    bytes.extend_from_slice(&header_len.to_le_bytes());
    let aad = object_aad(&bytes, id);
    bytes.extend_from_slice(&keys().seal(&run(0x48), &aad, msg));
    let sum = hash(&bytes);
    bytes.extend_from_slice(&sum);
    bytes
}

/// The plaintext length travels inside the seal; the header's length is zero.
#[test]
fn encrypted_objects_seal_their_length() {
    let k = keys();
    let plain = read("enc-manifest.plain");
    let mid = id(ENC_MANIFEST_ID);
    let with_len = |len: u64, payload: &[u8]| {
        let mut m = len.to_le_bytes().to_vec();
        m.extend_from_slice(payload);
        m
    };
    // By hand, as the format says: the vector's bytes.
    let good = seal_by_hand(ObjectKind::Manifest, 0, 0, &mid, &with_len(304, &plain));
    assert_eq!(good[16..40], run::<24>(0x48));
    assert_eq!(
        object::decode_in(&good, &mid, Some(&k)).unwrap(),
        (ObjectKind::Manifest, plain.clone())
    );
    // The old layout (length in the header, the payload sealed alone) is refused.
    let old = seal_by_hand(ObjectKind::Manifest, 0, 304, &mid, &plain);
    assert!(
        matches!(object::decode_in(&old, &mid, Some(&k)), Err(FormatError::Invalid(m)) if m.contains("length must be zero")),
        "a non-zero header length in an encrypted object"
    );
    // A sealed length that is not the payload's: length mismatch (codec none and zstd).
    let short = seal_by_hand(ObjectKind::Manifest, 0, 0, &mid, &with_len(303, &plain));
    assert_eq!(
        object::decode_in(&short, &mid, Some(&k)).unwrap_err(),
        FormatError::LengthMismatch {
            declared: 303,
            actual: 304
        }
    );
    let frame = read("object-chunk-zstd.bin")[16..].to_vec();
    let cid = id(ENC_CHUNK_ID);
    let long = seal_by_hand(ObjectKind::Chunk, 1, 0, &cid, &with_len(2615, &frame));
    assert_eq!(
        object::decode_in(&long, &cid, Some(&k)).unwrap_err(),
        FormatError::LengthMismatch {
            declared: 2615,
            actual: 2614
        }
    );
    // A sealed length above 256 MiB: too large, before any decompression.
    let huge = seal_by_hand(
        ObjectKind::Chunk,
        1,
        0,
        &cid,
        &with_len(256 * 1024 * 1024 + 1, &frame),
    );
    assert_eq!(
        object::decode_in(&huge, &cid, Some(&k)).unwrap_err(),
        FormatError::TooLarge {
            declared: 256 * 1024 * 1024 + 1,
            limit: 256 * 1024 * 1024
        }
    );
    // Fewer than 8 sealed bytes: truncated.
    let tiny = seal_by_hand(ObjectKind::Chunk, 0, 0, &cid, &[0; 7]);
    assert_eq!(tiny.len(), 16 + 24 + 7 + 16 + 32);
    assert_eq!(
        object::decode_in(&tiny, &cid, Some(&k)).unwrap_err(),
        FormatError::Truncated { need: 8, have: 7 }
    );
    // The empty plaintext: 8 sealed bytes, 96 in all.
    let eid = k.object_id(b"");
    let empty = object::encode_sealed(ObjectKind::Blob, Codec::Zstd(3), &k, &eid, b"", &run(0x48));
    assert_eq!(empty, seal_by_hand(ObjectKind::Blob, 0, 0, &eid, &[0; 8]));
    assert_eq!(empty.len(), 96);
    assert_eq!(
        object::decode_in(&empty, &eid, Some(&k)).unwrap(),
        (ObjectKind::Blob, vec![])
    );
}

#[test]
fn encrypted_objects_detect_damage_tampering_and_swaps() {
    let k = keys();
    let chunk = read("enc-object-chunk.bin");
    let cid = id(ENC_CHUNK_ID);
    let mid = id(ENC_MANIFEST_ID);

    // Damage: one flipped ciphertext bit, checksum as it was.
    let flipped = read("bad/enc-object-flipped.bin");
    let diff: Vec<usize> = (0..chunk.len())
        .filter(|&i| chunk[i] != flipped[i])
        .collect();
    assert_eq!(diff, vec![100]);
    assert_eq!(
        object::decode_in(&flipped, &cid, Some(&k)).unwrap_err(),
        FormatError::ChecksumMismatch
    );
    // Tampering: the same flip with the checksum recomputed.
    let tampered = read("bad/enc-object-tampered.bin");
    assert_eq!(tampered[..chunk.len() - 32], flipped[..chunk.len() - 32]);
    assert_eq!(
        object::decode_in(&tampered, &cid, Some(&k)).unwrap_err(),
        FormatError::AuthenticationFailed
    );
    // An unknown envelope version or reserved flag: damage while the checksum
    // does not match; a newer writer's object (unreadable here) once it does.
    for (at, to, newer) in [
        (
            4,
            2u8,
            FormatError::UnsupportedVersion {
                what: "object envelope",
                found: 2,
                supported: 1,
            },
        ),
        (7, 0x03, FormatError::ReservedFlags(0x03)),
    ] {
        let mut b = chunk.clone();
        b[at] = to;
        let e = object::decode_in(&b, &cid, Some(&k)).unwrap_err();
        assert_eq!(e, FormatError::ChecksumMismatch, "byte {at} = {to}");
        reseal_checksum(&mut b);
        assert_eq!(object::decode_in(&b, &cid, Some(&k)).unwrap_err(), newer);
    }
    // Every bit of the file is covered: by the checksum alone, or by the AEAD
    // once the checksum is made to match.
    for pos in 0..chunk.len() {
        let mut b = chunk.clone();
        b[pos] ^= 0x80;
        assert!(
            object::decode_in(&b, &cid, Some(&k)).is_err(),
            "flip at {pos} went unnoticed"
        );
        if pos < chunk.len() - 32 {
            reseal_checksum(&mut b);
            let e = object::decode_in(&b, &cid, Some(&k)).unwrap_err();
            if (8..16).contains(&pos) {
                // The header is authenticated: a changed length field is tampering
                // (or too large to be a length at all).
                assert!(
                    matches!(
                        e,
                        FormatError::TooLarge { .. } | FormatError::AuthenticationFailed
                    ),
                    "flip at {pos}: {e:?}"
                );
            } else {
                assert!(
                    matches!(
                        e,
                        FormatError::AuthenticationFailed
                            | FormatError::BadMagic { .. }
                            | FormatError::UnsupportedVersion { .. }
                            | FormatError::UnknownValue { .. }
                            | FormatError::ReservedFlags(_)
                    ),
                    "flip at {pos} with a matching checksum: {e:?}"
                );
            }
        }
    }
    // Truncation: the checksum (or, below the minimum size, the length check).
    assert_eq!(
        object::decode_in(&chunk[..chunk.len() - 1], &cid, Some(&k)).unwrap_err(),
        FormatError::ChecksumMismatch
    );
    assert_eq!(
        object::decode_in(&chunk[..16 + 24 + 16 + 31], &cid, Some(&k)).unwrap_err(),
        FormatError::Truncated { need: 88, have: 87 }
    );

    // A swap: the chunk's file under the manifest's name (and the reverse).
    assert_eq!(
        object::decode_in(&chunk, &mid, Some(&k)).unwrap_err(),
        FormatError::AuthenticationFailed
    );
    assert_eq!(
        object::decode_in(&read("enc-manifest.bin"), &cid, Some(&k)).unwrap_err(),
        FormatError::AuthenticationFailed
    );
    // The kind or the codec relabelled, with a matching checksum.
    let mut relabelled = chunk.clone();
    relabelled[5] = ObjectKind::Blob as u8;
    reseal_checksum(&mut relabelled);
    assert_eq!(
        object::decode_in(&relabelled, &cid, Some(&k)).unwrap_err(),
        FormatError::AuthenticationFailed
    );
    let mut relabelled = chunk.clone();
    relabelled[6] = 0;
    reseal_checksum(&mut relabelled);
    assert_eq!(
        object::decode_in(&relabelled, &cid, Some(&k)).unwrap_err(),
        FormatError::AuthenticationFailed
    );
    // A length written into the header (which must be zero) by someone
    // without the key: the header is authenticated, so this is tampering.
    let mut relabelled = chunk.clone();
    relabelled[8..16].copy_from_slice(&2614u64.to_le_bytes());
    reseal_checksum(&mut relabelled);
    assert_eq!(
        object::decode_in(&relabelled, &cid, Some(&k)).unwrap_err(),
        FormatError::AuthenticationFailed
    );
    // Another store's key.
    let mut other = master();
    other[31] ^= 1;
    assert_eq!(
        object::decode_in(&chunk, &cid, Some(&StoreKeys::derive(&other))).unwrap_err(),
        FormatError::AuthenticationFailed
    );
    // An unencrypted object in an encrypted store was written without the key.
    assert_eq!(
        object::decode_in(&read("object-chunk-zstd.bin"), &id(CHUNK_ID), Some(&k)).unwrap_err(),
        FormatError::AuthenticationFailed
    );
    // Sealed with the key but under the wrong id (only a key holder can do
    // this): the AEAD opens, the keyed hash of the plaintext does not match.
    let plain = read("object-chunk-zstd.plain");
    let wrong = object::encode_sealed(ObjectKind::Chunk, Codec::None, &k, &mid, &plain, &run(0x48));
    assert!(matches!(
        object::decode_in(&wrong, &mid, Some(&k)),
        Err(FormatError::HashMismatch { .. })
    ));
}

#[derive(serde::Deserialize, serde::Serialize, Debug, PartialEq)]
struct SealedWire {
    record_version: u32,
    seq: u64,
    #[serde(with = "serde_bytes")]
    prev: Vec<u8>,
    #[serde(with = "serde_bytes")]
    sealed: Vec<u8>,
}

fn frame_body(bytes: &[u8]) -> &[u8] {
    let len = check_frame_header(bytes, b"ARKJ");
    &bytes[12..12 + len]
}

fn sealed_wire(bytes: &[u8]) -> SealedWire {
    rmp_serde::from_slice(frame_body(bytes)).unwrap()
}

fn reframe(w: &SealedWire) -> Vec<u8> {
    store_format::frame::encode(b"ARKJ", &rmp_serde::to_vec_named(w).unwrap())
}

fn journal_aad(seq: u64, prev: &[u8]) -> Vec<u8> {
    let mut aad = b"ARKJ".to_vec();
    aad.extend_from_slice(&seq.to_le_bytes());
    aad.extend_from_slice(prev);
    aad
}

#[test]
fn sealed_journal() {
    let k = keys();
    let b1 = read("enc-journal-00000000000000000001.bin");
    let b2 = read("enc-journal-00000000000000000002.bin");
    for (i, b) in [&b1, &b2].into_iter().enumerate() {
        assert_eq!(
            hash(b),
            id(ENC_RECORD_HASHES[i]).0,
            "hash of sealed record {}",
            i + 1
        );
        // Only record_version, seq, prev and sealed are in the clear.
        let keys_in_clear: BTreeMap<String, serde::de::IgnoredAny> =
            rmp_serde::from_slice(frame_body(b)).unwrap();
        assert_eq!(
            keys_in_clear.keys().collect::<Vec<_>>(),
            ["prev", "record_version", "sealed", "seq"]
        );
        assert_eq!(frame_body(b)[0], 0x84, "a map of 4 entries");
        for secret in [
            &b"vector-host"[..],
            b"StoreInitialized",
            b"BackupCompleted",
            ENC_STORE_ID.as_bytes(),
            b"0000abcd",
        ] {
            assert!(
                !b.windows(secret.len()).any(|w| w == secret),
                "record {} shows {:?}",
                i + 1,
                secret
            );
        }
    }

    let r1 = JournalRecord::decode_in(&b1, Some(&k)).unwrap();
    assert_eq!(r1.seq, 1);
    assert_eq!(r1.prev, GENESIS);
    assert_eq!(r1.time_ms, T0);
    assert_eq!(r1.writer, "vector-host:4242");
    assert_eq!(
        r1.event,
        Event::StoreInitialized(StoreInitialized {
            store_id: ENC_STORE_ID.into(),
            format_version: 1
        })
    );
    let w1 = sealed_wire(&b1);
    assert_eq!(
        (w1.record_version, w1.seq, w1.prev.as_slice()),
        (1, 1, &GENESIS[..])
    );
    assert_eq!(w1.sealed[..24], run::<24>(0x78));
    // The sealed plaintext is a map of time_ms, writer, event_type, event_version, event.
    let inner = open_independently(&journal_aad(1, &GENESIS), &w1.sealed);
    assert_eq!(w1.sealed.len(), 24 + inner.len() + 16);
    assert_eq!(&inner[..9], b"\x85\xa7time_ms");
    let inner_keys: BTreeMap<String, serde::de::IgnoredAny> =
        rmp_serde::from_slice(&inner).unwrap();
    assert_eq!(
        inner_keys.keys().collect::<Vec<_>>(),
        ["event", "event_type", "event_version", "time_ms", "writer"]
    );
    assert_eq!(r1.encode_sealed(&k, &run(0x78)), b1, "re-encoding record 1");

    let r2 = JournalRecord::decode_in(&b2, Some(&k)).unwrap();
    assert_eq!(r2.seq, 2);
    assert_eq!(
        r2.prev,
        hash(&b1),
        "record 2 chains to record 1's file bytes"
    );
    assert_eq!(r2.prev, id(ENC_RECORD_HASHES[0]).0);
    assert_eq!(r2.time_ms, T0 + 2000);
    assert_eq!(
        r2.event,
        Event::BackupCompleted(BackupCompleted {
            backup_id: "20260101T000000Z-0000abcd".into(),
            kind: "postgres_n8n".into(),
            manifest: id(ENC_MANIFEST_ID),
            logical_bytes: 2614,
            new_bytes: 274, // enc-object-chunk.bin
            new_objects: 1,
            objects: 1,
            reused_objects: 0,
            duration_ms: 1500,
            stored_bytes: 0,
            counts: Default::default(),
            recovered: None,
        })
    );
    assert_eq!(sealed_wire(&b2).sealed[..24], run::<24>(0x90));
    // A version-1 event: re-encoded as version 2, and that decodes the same.
    let again = r2.encode_sealed(&k, &run(0x90));
    assert_ne!(again, b2);
    assert_eq!(JournalRecord::decode_in(&again, Some(&k)).unwrap(), r2);

    // Without the key: refused, not misread.
    let e = JournalRecord::decode(&b1).unwrap_err();
    assert!(
        matches!(&e, FormatError::Invalid(m) if m.contains("encrypted")),
        "{e:?}"
    );
    // A record in the clear in an encrypted store was written without the key.
    assert_eq!(
        JournalRecord::decode_in(&read("journal-00000000000000000001.bin"), Some(&k)).unwrap_err(),
        FormatError::AuthenticationFailed
    );
    // Damage: the frame checksum.
    let mut flipped = b2.clone();
    flipped[200] ^= 0x04;
    assert_eq!(
        JournalRecord::decode_in(&flipped, Some(&k)).unwrap_err(),
        FormatError::ChecksumMismatch
    );
    // Tampering inside a valid frame: the AEAD.
    let mut w = sealed_wire(&b2);
    w.sealed[60] ^= 0x04;
    assert_eq!(
        JournalRecord::decode_in(&reframe(&w), Some(&k)).unwrap_err(),
        FormatError::AuthenticationFailed
    );
    // Another store's key.
    let mut other = master();
    other[0] ^= 0x80;
    assert_eq!(
        JournalRecord::decode_in(&b2, Some(&StoreKeys::derive(&other))).unwrap_err(),
        FormatError::AuthenticationFailed
    );
}

#[test]
fn sealed_journal_detects_replays() {
    let k = keys();
    let b1 = read("enc-journal-00000000000000000001.bin");
    let b2 = read("enc-journal-00000000000000000002.bin");
    // Record 2's sealed bytes relabelled as record 3 (the bad vector), in a valid frame.
    let relabelled = read("bad/enc-journal-relabelled.bin");
    let (w2, wr) = (sealed_wire(&b2), sealed_wire(&relabelled));
    assert_eq!(
        wr,
        SealedWire {
            seq: 3,
            ..sealed_wire(&b2)
        },
        "only seq differs"
    );
    assert_eq!(reframe(&w2), b2, "the wire form as written");
    assert_eq!(
        JournalRecord::decode_in(&relabelled, Some(&k)).unwrap_err(),
        FormatError::AuthenticationFailed
    );
    // Built here too: seq + 1, keeping the sealed bytes.
    let mut w = sealed_wire(&b2);
    w.seq += 1;
    assert_eq!(
        JournalRecord::decode_in(&reframe(&w), Some(&k)).unwrap_err(),
        FormatError::AuthenticationFailed
    );
    // Record 1 replayed after record 2: relabelled seq 3, prev = hash(record 2).
    let mut w = sealed_wire(&b1);
    w.seq = 3;
    w.prev = hash(&b2).to_vec();
    assert_eq!(
        JournalRecord::decode_in(&reframe(&w), Some(&k)).unwrap_err(),
        FormatError::AuthenticationFailed
    );
    // Only prev changed (the record re-chained elsewhere).
    let mut w = sealed_wire(&b2);
    w.prev[0] ^= 1;
    assert_eq!(
        JournalRecord::decode_in(&reframe(&w), Some(&k)).unwrap_err(),
        FormatError::AuthenticationFailed
    );
    // Fields in the clear next to the sealed ones are never used.
    #[derive(serde::Serialize)]
    struct WithClearText {
        record_version: u32,
        seq: u64,
        #[serde(with = "serde_bytes")]
        prev: Vec<u8>,
        writer: String,
        #[serde(with = "serde_bytes")]
        sealed: Vec<u8>,
    }
    let w = sealed_wire(&b2);
    let forged = store_format::frame::encode(
        b"ARKJ",
        &rmp_serde::to_vec_named(&WithClearText {
            record_version: 1,
            seq: 2,
            prev: w.prev.clone(),
            writer: "forged:1".into(),
            sealed: w.sealed.clone(),
        })
        .unwrap(),
    );
    assert_eq!(
        JournalRecord::decode_in(&forged, Some(&k)).unwrap().writer,
        "vector-host:4242"
    );
}

/// `manifest-contents.plain`: the vector manifest with contents using the
/// fields added after the first release (SPEC.md §8.1): a workflow not
/// stored, a path and a link target that are not UTF-8, as MessagePack bin.
#[test]
fn manifest_contents_with_bytes_and_workflows_not_stored() {
    use store_format::contents::{readable_path, FileType};
    let plain = read("manifest-contents.plain");
    let m = Manifest::decode_plaintext(&plain).unwrap();
    let c = m.contents.as_ref().unwrap();
    assert_eq!(c.workflows_not_stored.len(), 1);
    let n = &c.workflows_not_stored[0];
    assert_eq!(n.id, "Nw9qT4uB2cR7xYz1");
    assert_eq!(n.name, "Pinned \u{1F4CC}");
    assert!(n.reason.contains("number out of range"));
    let path: &[u8] = b"/etc/nginx/conf.d/caf\xe9.conf";
    let f = &c.config_files[0];
    assert_eq!(f.file_type, FileType::File);
    assert_eq!(f.path_raw(), path);
    assert_eq!(f.path, "/etc/nginx/conf.d/caf\\xe9.conf");
    assert_eq!(f.path, readable_path(path));
    assert_eq!(
        f.item.as_deref(),
        Some("config-bytes/2f6574632f6e67696e782f636f6e662e642f636166e92e636f6e66")
    );
    let l = &c.config_files[1];
    assert_eq!(l.file_type, FileType::Symlink);
    assert_eq!(l.path_raw(), b"/etc/nginx/conf.d/to-caf\xe9");
    assert_eq!(l.link_target_raw(), Some(&b"caf\xe9.conf"[..]));
    assert_eq!(l.link_target.as_deref(), Some("caf\\xe9.conf"));
    // The bytes as MessagePack bin 8 (0xc4, length, bytes), after their keys.
    let find = |needle: &[u8]| plain.windows(needle.len()).any(|w| w == needle);
    let mut bin = vec![0xc4, path.len() as u8];
    bin.extend_from_slice(path);
    assert!(find(b"\xaapath_bytes") && find(&bin));
    assert!(find(b"\xb4workflows_not_stored"));
    // Fields absent when empty or unused: a file whose path is UTF-8 has no
    // path_bytes key, and a manifest without such entries encodes as before.
    assert_eq!(
        plain.windows(10).filter(|w| *w == b"path_bytes").count(),
        2,
        "once per entry that is not UTF-8"
    );
    assert_eq!(m.encode_plaintext(), plain, "re-encoding the plaintext");
    let mut without = m.clone();
    without.contents = Some(Default::default());
    let bytes = without.encode_plaintext();
    assert!(!bytes.windows(20).any(|w| w == b"workflows_not_stored"));
}
