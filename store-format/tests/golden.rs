//! Golden vectors: the files in `test-vectors/` (written by
//! `cargo run -p store-format --example make-vectors`) must decode to the values
//! spelled out here, field by field, and re-encode to the same bytes. The
//! expected values are written out by hand, independently of the generator, so
//! that a change to an encoder or decoder that alters the format fails here.
//! See `test-vectors/README.md`.
use std::collections::BTreeMap;
use std::path::PathBuf;

use store_format::event::{BackupCompleted, BackupForgotten, GcCompleted, StoreInitialized};
use store_format::journal::GENESIS;
use store_format::object::{self, Codec, ObjectKind};
use store_format::{ChunkRef, Event, FormatError, Item, ItemKind, JournalRecord, LockRecord, Manifest, ObjectId, StoreConfig};

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
const BLOB_PLAINTEXT: &[u8] = br#"{"id":"G7pQ2xYc","name":"Daily report","active":true,"nodes":[]}"#;

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
    assert_eq!(&bytes[12 + len..], &hash(&bytes[..12 + len]), "trailer is BLAKE3 of header and body");
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
    assert_eq!(&bytes[16..20], &[0x28, 0xb5, 0x2f, 0xfd], "payload is a zstd frame");
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
    assert_eq!(&bytes[..16], &[b'A', b'R', b'K', b'O', 1, 2, 0, 0, 64, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(&bytes[16..], BLOB_PLAINTEXT);
    let h = object::parse_header(&bytes).unwrap();
    assert_eq!((h.kind, h.codec, h.flags, h.plaintext_len), (ObjectKind::Blob, 0, 0, 64));
    let (kind, plain) = object::decode(&bytes, &id(BLOB_ID)).unwrap();
    assert_eq!(kind, ObjectKind::Blob);
    assert_eq!(plain, BLOB_PLAINTEXT);
    // Written with the store's codec (zstd), which does not shrink it: codec none.
    assert_eq!(object::encode(ObjectKind::Blob, Codec::Zstd(3), &plain), (id(BLOB_ID), bytes.clone()));
    assert_eq!(object::encode(ObjectKind::Blob, Codec::None, &plain), (id(BLOB_ID), bytes));
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
                chunks: vec![ChunkRef { id: id(CHUNK_ID), len: 2614 }],
            },
            Item {
                name: "workflows/G7pQ2xYc.json".into(),
                kind: ItemKind::Blob,
                size: 64,
                chunks: vec![ChunkRef { id: id(BLOB_ID), len: 64 }],
            },
            Item { name: "config/empty.txt".into(), kind: ItemKind::Blob, size: 0, chunks: vec![] },
        ],
        labels: BTreeMap::from([("source".to_string(), "test-vectors".to_string())]),
    }
}

#[test]
fn manifest() {
    let bytes = read("manifest.bin");
    let h = object::parse_header(&bytes).unwrap();
    assert_eq!((h.kind, h.codec, h.flags, h.plaintext_len), (ObjectKind::Manifest, 0, 0, 401));
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
    assert_eq!(m.items[0].chunks, vec![ChunkRef { id: id(CHUNK_ID), len: 2614 }]);
    assert_eq!(m.items[1].name, "workflows/G7pQ2xYc.json");
    assert_eq!(m.items[1].kind, ItemKind::Blob);
    assert_eq!(m.items[1].size, 64);
    assert_eq!(m.items[1].chunks, vec![ChunkRef { id: id(BLOB_ID), len: 64 }]);
    assert_eq!(m.items[2].name, "config/empty.txt");
    assert_eq!(m.items[2].kind, ItemKind::Blob);
    assert_eq!(m.items[2].size, 0);
    assert!(m.items[2].chunks.is_empty());
    assert_eq!(m.labels.get("source").map(String::as_str), Some("test-vectors"));
    assert_eq!(m.labels.len(), 1);
    assert_eq!(m.logical_size(), 2614 + 64);
    assert_eq!(m, expected_manifest());

    assert_eq!(m.encode_plaintext(), plain, "re-encoding the plaintext");
    assert_eq!(object::encode(ObjectKind::Manifest, Codec::None, &plain), (id(MANIFEST_ID), bytes));
}

fn record(seq: u64) -> (Vec<u8>, JournalRecord) {
    let bytes = read(&format!("journal-{seq:020}.bin"));
    check_frame_header(&bytes, b"ARKJ");
    let r = JournalRecord::decode(&bytes).unwrap();
    assert_eq!(r.encode(), bytes, "re-encoding record {seq}");
    assert_eq!(hash(&bytes), id(RECORD_HASHES[seq as usize - 1]).0, "hash of record {seq}");
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
    assert_eq!(r1.event, Event::StoreInitialized(StoreInitialized { store_id: STORE_ID.into(), format_version: 1 }));
    assert_eq!(r1.event.kind_version(), ("StoreInitialized", 1));

    let (_, r2) = record(2);
    assert_eq!(r2.seq, 2);
    assert_eq!(r2.prev, id(RECORD_HASHES[0]).0, "record 2 chains to record 1");
    assert_eq!(r2.time_ms, T0 + 2000);
    assert_eq!(r2.writer, "vector-host:4242");
    let Event::BackupCompleted(e) = &r2.event else { panic!("record 2: {:?}", r2.event) };
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
        }
    );
    assert_eq!(e.new_bytes, (read("object-chunk-zstd.bin").len() + read("object-blob-none.bin").len()) as u64);

    let (_, r3) = record(3);
    assert_eq!((r3.seq, r3.prev, r3.time_ms), (3, id(RECORD_HASHES[1]).0, T0 + 3000));
    assert_eq!(
        r3.event,
        Event::GcCompleted(GcCompleted { objects_freed: 1, bytes_freed: 123, objects_kept: 2, duration_ms: 250 })
    );

    // An event this reader does not know is kept, body and all, and written back unchanged.
    let (_, r4) = record(4);
    assert_eq!((r4.seq, r4.prev, r4.time_ms), (4, id(RECORD_HASHES[2]).0, T0 + 4000));
    let Event::Unknown { kind, version, body } = &r4.event else { panic!("record 4: {:?}", r4.event) };
    assert_eq!(kind, "ExampleFutureEvent");
    assert_eq!(*version, 3);
    assert_eq!(body.as_slice(), b"\x81\xa4note\xaakept as is");

    // The backup of record 2 is forgotten: the event names its manifest.
    let (bytes5, r5) = record(5);
    assert_eq!(bytes5.len(), 299);
    assert_eq!((r5.seq, r5.prev, r5.time_ms), (5, id(RECORD_HASHES[3]).0, T0 + 5000));
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

#[test]
fn journal_file_names() {
    assert_eq!(JournalRecord::file_name(1), "00000000000000000001");
    assert_eq!(JournalRecord::parse_file_name("00000000000000000004"), Some(4));
    assert_eq!(JournalRecord::parse_file_name("4"), None);
    assert_eq!(JournalRecord::parse_file_name(".tmp-00000000000000000004"), None);
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
        }
    );
    assert_eq!(l.encode(), bytes);
}

#[test]
fn bad_vectors_are_refused() {
    let e = StoreConfig::decode(&read("bad/config-future-version.bin")).unwrap_err();
    assert_eq!(e, FormatError::UnsupportedVersion { what: "store format", found: 2, supported: 1 });
    assert!(e.to_string().contains("upgrade"), "{e}");

    let torn = read("bad/journal-torn.bin");
    assert_eq!(torn, read("journal-00000000000000000002.bin")[..200]);
    assert_eq!(JournalRecord::decode(&torn).unwrap_err(), FormatError::Truncated { need: 377, have: 200 });

    assert_eq!(JournalRecord::decode(&read("bad/journal-bitflip.bin")).unwrap_err(), FormatError::ChecksumMismatch);

    let e = JournalRecord::decode(&read("bad/journal-future-version.bin")).unwrap_err();
    assert_eq!(e, FormatError::UnsupportedVersion { what: "journal record", found: 2, supported: 1 });
    assert!(e.to_string().contains("upgrade"), "{e}");

    let flipped = read("bad/object-flipped.bin");
    assert!(matches!(object::decode(&flipped, &id(BLOB_ID)), Err(FormatError::HashMismatch { .. })));
    assert!(object::decode_unverified(&flipped).is_ok(), "the envelope itself is intact");

    let e = object::decode(&read("bad/object-future-envelope.bin"), &id(BLOB_ID)).unwrap_err();
    assert_eq!(e, FormatError::UnsupportedVersion { what: "object envelope", found: 2, supported: 1 });
    assert!(e.to_string().contains("upgrade"), "{e}");

    assert_eq!(
        object::decode(&read("bad/object-reserved-flags.bin"), &id(BLOB_ID)).unwrap_err(),
        FormatError::ReservedFlags(1)
    );

    let (kind, plain) = object::decode(&read("bad/manifest-future-version.bin"), &id(FUTURE_MANIFEST_ID)).unwrap();
    assert_eq!(kind, ObjectKind::Manifest);
    let e = Manifest::decode_plaintext(&plain).unwrap_err();
    assert_eq!(e, FormatError::UnsupportedVersion { what: "manifest", found: 2, supported: 1 });
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
    assert_eq!(names.len(), 20, "{names:?}");
    for n in &names {
        assert!(readme.contains(&format!("`{n}`")), "test-vectors/README.md does not describe {n}");
    }
}

/// The hex dumps in SPEC.md are the vectors' bytes.
#[test]
fn spec_hex_dumps_match_the_vectors() {
    let spec = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("SPEC.md")).unwrap();
    for name in ["object-blob-none.bin", "journal-00000000000000000001.bin", "journal-00000000000000000005.bin"] {
        let marker = format!("<!-- hexdump: {name} -->");
        let start = spec.find(&marker).unwrap_or_else(|| panic!("SPEC.md has no {marker}"));
        let rest = &spec[start + marker.len()..];
        let open = rest.find("```text\n").expect("a ```text block after the marker") + "```text\n".len();
        let close = rest[open..].find("```").unwrap();
        assert_eq!(&rest[open..open + close], hexdump(&read(name)), "hex dump of {name} in SPEC.md");
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
            out.push(if (0x20..0x7f).contains(&b) { b as char } else { '.' });
        }
        out.push_str("|\n");
    }
    out
}
