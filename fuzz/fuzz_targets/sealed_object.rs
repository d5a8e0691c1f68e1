//! The encrypted envelopes: `object::decode_in` and `JournalRecord::decode_in`
//! with a fixed `StoreKeys` (master key 0x00..=0x1f) and, for objects, a fixed
//! id (the keyed id of the seed objects' plaintext).
//!
//! Every input is tried five ways:
//! 1. as an object file;
//! 2. as the inside of an encrypted object: byte 0 picks the kind, byte 1 the
//!    codec (for zstd, bytes 2..6 the declared length, at most 1 MiB), the rest
//!    is the payload; the target seals it with the fixed key and the right
//!    associated data and adds the checksum, so that the fuzzer reaches the
//!    decompression and id checks behind the AEAD;
//! 3. as a journal record file;
//! 4. as a journal record's frame body (wrapped in a valid frame);
//! 5. as the sealed plaintext of a journal record: byte 0 gives seq and prev,
//!    the rest is sealed with the fixed key for them, which reaches the
//!    MessagePack and event decoders behind the AEAD.
//!
//! Properties:
//! - objects: the header is checked first (the same error as `parse_header`);
//!   an object without the encrypted flag is `AuthenticationFailed`; a decoded
//!   object has the flag, its header's kind and exactly the fixed plaintext;
//!   an uncompressed one re-encodes (with its own nonce) to the input byte for
//!   byte; what mode 2 sealed is never refused as damaged or tampered;
//! - records: a decoded record has seq >= 1, is refused by a reader without
//!   the key, and re-encodes sealed to a record that decodes equal (and
//!   encoding is a fixed point); what mode 5 sealed is never
//!   refused as damaged or tampered, and keeps its seq and prev.
#![no_main]

use libfuzzer_sys::fuzz_target;
use store_format::crypto::{StoreKeys, NONCE_LEN};
use store_format::journal::{self, JournalRecord};
use store_format::object::{self, Codec};
use store_format::{frame, FormatError, ObjectId};

/// Must match `seeds/src/main.rs`.
const FIXED_MASTER: [u8; 32] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30, 31,
];
/// Must match `FIXED_PLAINTEXT` in `object.rs` and `seeds/`.
const FIXED_PLAINTEXT: &[u8] = b"n8n-ark fuzz seed object\n";
const NONCE: [u8; NONCE_LEN] = [0x4e; NONCE_LEN];
/// Declared zstd lengths in mode 2 stay below this (a bomb costs time, not insight).
const MODE2_MAX_LEN: u32 = 1 << 20;

fn check_object(keys: &StoreKeys, fixed: &ObjectId, data: &[u8]) {
    let r = object::decode_in(data, fixed, Some(keys));
    let h = match object::parse_header(data) {
        Err(e) => {
            assert_eq!(r.as_ref().err(), Some(&e), "the header is checked first");
            return;
        }
        Ok(h) => h,
    };
    if h.flags & object::FLAG_ENCRYPTED == 0 {
        assert_eq!(r.as_ref().err(), Some(&FormatError::AuthenticationFailed));
        return;
    }
    let Ok((kind, plaintext)) = r else { return };
    assert_eq!(kind, h.kind);
    assert_eq!(
        plaintext.as_slice(),
        FIXED_PLAINTEXT,
        "only the fixed plaintext has the fixed id"
    );
    assert!(
        object::decode(data, fixed).is_err(),
        "a reader without the key refuses an encrypted object"
    );
    if h.codec == 0 {
        let nonce: [u8; NONCE_LEN] = data[object::HEADER_LEN..object::HEADER_LEN + NONCE_LEN]
            .try_into()
            .unwrap();
        let re = object::encode_sealed(kind, Codec::None, keys, fixed, &plaintext, &nonce);
        assert_eq!(
            re.as_slice(),
            data,
            "uncompressed encrypted objects are canonical"
        );
    }
}

fn check_sealed_payload(keys: &StoreKeys, fixed: &ObjectId, data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let kind = data[0] % 3 + 1;
    let codec = data[1] & 1;
    let (len, payload) = if codec == 0 {
        (data.len() as u64 - 2, &data[2..])
    } else {
        if data.len() < 6 {
            return;
        }
        let l = u32::from_le_bytes(data[2..6].try_into().unwrap()) % MODE2_MAX_LEN;
        (u64::from(l), &data[6..])
    };
    let mut bytes = object::MAGIC.to_vec();
    bytes.extend_from_slice(&[
        object::ENVELOPE_VERSION,
        kind,
        codec,
        object::FLAG_ENCRYPTED,
    ]);
    bytes.extend_from_slice(&len.to_le_bytes());
    let mut aad = bytes.clone();
    aad.extend_from_slice(&fixed.0);
    bytes.extend_from_slice(&keys.seal(&NONCE, &aad, payload));
    let sum = blake3_of(&bytes);
    bytes.extend_from_slice(&sum);
    match object::decode_in(&bytes, fixed, Some(keys)) {
        Ok((k, p)) => {
            assert_eq!(k as u8, kind);
            assert_eq!(p.as_slice(), FIXED_PLAINTEXT);
        }
        Err(FormatError::ChecksumMismatch | FormatError::AuthenticationFailed) => {
            panic!("a correctly sealed object was refused as damaged or tampered")
        }
        Err(_) => {}
    }
    check_object(keys, fixed, &bytes);
}

fn blake3_of(bytes: &[u8]) -> [u8; 32] {
    // The checksum of an encrypted object; JournalRecord::hash_of_encoded is
    // the same function (BLAKE3-256 of the bytes).
    JournalRecord::hash_of_encoded(bytes)
}

fn check_record(keys: &StoreKeys, bytes: &[u8]) {
    let Ok(r) = JournalRecord::decode_in(bytes, Some(keys)) else {
        return;
    };
    assert!(r.seq >= 1);
    assert!(
        JournalRecord::decode(bytes).is_err(),
        "a reader without the key refuses a sealed record"
    );
    let enc = r.encode_sealed(keys, &NONCE);
    let r2 = JournalRecord::decode_in(&enc, Some(keys)).expect("a re-sealed record decodes");
    assert_eq!(r, r2, "sealed record round trip");
    assert_eq!(
        r2.encode_sealed(keys, &NONCE),
        enc,
        "sealed encoding is a fixed point"
    );
}

/// A MessagePack `bin` header for `n` bytes.
fn bin_header(out: &mut Vec<u8>, n: usize) {
    if n < 256 {
        out.extend_from_slice(&[0xc4, n as u8]);
    } else if n < 65536 {
        out.push(0xc5);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xc6);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn check_sealed_inner(keys: &StoreKeys, data: &[u8]) {
    let Some((&b, inner)) = data.split_first() else {
        return;
    };
    let seq = u64::from(b) + 1;
    let prev = [b; 32];
    let mut aad = journal::MAGIC.to_vec();
    aad.extend_from_slice(&seq.to_le_bytes());
    aad.extend_from_slice(&prev);
    let sealed = keys.seal(&NONCE, &aad, inner);
    // {record_version: 1, seq, prev, sealed}, written as rmp-serde writes it.
    let mut body = vec![0x84, 0xae];
    body.extend_from_slice(b"record_version");
    body.extend_from_slice(&[0x01, 0xa3]);
    body.extend_from_slice(b"seq");
    body.push(0xcf);
    body.extend_from_slice(&seq.to_be_bytes());
    body.push(0xa4);
    body.extend_from_slice(b"prev");
    bin_header(&mut body, 32);
    body.extend_from_slice(&prev);
    body.push(0xa6);
    body.extend_from_slice(b"sealed");
    bin_header(&mut body, sealed.len());
    body.extend_from_slice(&sealed);
    if body.len() > frame::MAX_FRAME_BODY {
        return;
    }
    let bytes = frame::encode(journal::MAGIC, &body);
    match JournalRecord::decode_in(&bytes, Some(keys)) {
        Ok(r) => assert_eq!((r.seq, r.prev), (seq, prev)),
        Err(FormatError::ChecksumMismatch | FormatError::AuthenticationFailed) => {
            panic!("a correctly sealed record was refused as damaged or tampered")
        }
        Err(_) => {}
    }
    check_record(keys, &bytes);
}

fuzz_target!(|data: &[u8]| {
    let keys = StoreKeys::derive(&FIXED_MASTER);
    let fixed = keys.object_id(FIXED_PLAINTEXT);
    check_object(&keys, &fixed, data);
    check_sealed_payload(&keys, &fixed, data);
    check_record(&keys, data);
    if data.len() <= frame::MAX_FRAME_BODY {
        check_record(&keys, &frame::encode(journal::MAGIC, data));
    }
    check_sealed_inner(&keys, data);
});
