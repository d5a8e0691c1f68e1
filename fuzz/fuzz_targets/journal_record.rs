//! Journal records: `JournalRecord::decode` (a checksummed frame, magic `ARKJ`,
//! around a MessagePack body) and the `Event::decode` it relies on.
//!
//! Each input is tried three ways, so the fuzzer is not stopped at the frame's
//! BLAKE3 trailer (which random mutation practically never gets right):
//! 1. as a whole record file;
//! 2. as the frame body: wrapped in a valid frame first, which reaches the
//!    MessagePack and event decoders with arbitrary bytes;
//! 3. as an event body: byte 0 picks the event type, byte 1 its version, the
//!    rest is the body handed to `Event::decode`.
//!
//! Properties: a decoded record has seq >= 1 and round-trips (encode → decode
//! gives an equal record, and encoding is then a fixed point); events likewise.
//! Not asserted: encode(decode(bytes)) == bytes (MessagePack is not canonical,
//! and unknown fields are skipped).
#![no_main]

use libfuzzer_sys::fuzz_target;
use store_format::frame;
use store_format::journal::{self, JournalRecord};
use store_format::Event;

/// Event types for mode 3: every type store-format knows (add new ones here and
/// in `seeds/`), and one it does not. A name this store-format does not know
/// decodes as `Event::Unknown`, which is checked too.
const EVENT_TYPES: [&str; 13] = [
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
    "JournalRepaired",
];

fn check_record(bytes: &[u8]) {
    let Ok(r) = JournalRecord::decode(bytes) else {
        return;
    };
    assert!(r.seq >= 1, "sequence numbers start at 1");
    let enc = r.encode();
    let r2 = JournalRecord::decode(&enc).expect("a re-encoded record decodes");
    assert_eq!(r, r2, "journal record round trip");
    assert_eq!(r2.encode(), enc, "record encoding is a fixed point");
}

fn check_event(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let kind = EVENT_TYPES[data[0] as usize % EVENT_TYPES.len()];
    let version = u16::from(data[1] % 4);
    let body = &data[2..];
    let Ok(e) = Event::decode(kind, version, body) else {
        return;
    };
    match &e {
        Event::Unknown {
            kind: k,
            version: v,
            body: b,
        } => {
            assert_eq!(
                (k.as_str(), *v, b.as_slice()),
                (kind, version, body),
                "unknown events are kept as they were"
            );
        }
        // A known event keeps its type; an older version is upcast to the
        // current one (BackupCompleted 1 → 2), never the other way.
        _ => {
            let (k, v) = e.kind_version();
            assert_eq!(k, kind);
            assert!(v >= version, "{kind} {version} decoded as version {v}");
        }
    }
    let (k, v) = e.kind_version();
    let enc = e.encode_body();
    let e2 = Event::decode(k, v, &enc).expect("a re-encoded event decodes");
    assert_eq!(e, e2, "event round trip");
    assert_eq!(e2.encode_body(), enc, "event encoding is a fixed point");
}

fuzz_target!(|data: &[u8]| {
    check_record(data);
    if data.len() <= frame::MAX_FRAME_BODY {
        check_record(&frame::encode(journal::MAGIC, data));
    }
    check_event(data);
});
