//! Object envelope: `object::parse_header`, `object::decode_unverified` and
//! `object::decode` (against a fixed id and against the id of what decoded).
//!
//! Properties, all of which follow from SPEC.md / object.rs:
//! - the three decoders agree: `decode_unverified` fails exactly when the header
//!   or the payload is bad, and `decode` fails with the same error first;
//! - a successful decode matches its header (kind, declared length);
//! - `decode(bytes, id)` succeeds exactly when the plaintext hashes to `id`, and
//!   then returns exactly that plaintext (a verified decode never returns the
//!   wrong bytes, whatever else in the file was damaged);
//! - an uncompressed (codec 0) object is canonical: re-encoding gives back the
//!   input byte for byte;
//! - any decoded plaintext re-encodes (codec none and zstd) to an object that
//!   decodes to it again with the same kind and id.
//!
//! Not asserted: that a zstd object re-encodes to the same bytes (level and
//! frame parameters are not stored), nor that a one-bit flip is always rejected
//! (the kind byte is not covered by the id, and zstd frames have bits that do
//! not change the output).
#![no_main]

use libfuzzer_sys::fuzz_target;
use store_format::object::{self, Codec};
use store_format::{FormatError, ObjectId};

/// The plaintext of the seed objects in `corpus/object/` (see `seeds/`), so the
/// success path of `decode` with a fixed id is reachable from the corpus.
const FIXED_PLAINTEXT: &[u8] = b"n8n-ark fuzz seed object\n";

/// Above this, skip the (slow) re-encoding checks: a 16-byte input can declare
/// a zstd bomb of up to `MAX_PLAINTEXT` bytes.
const ROUNDTRIP_LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let fixed = ObjectId::of(FIXED_PLAINTEXT);
    let header = object::parse_header(data);
    let unverified = object::decode_unverified(data);
    let verified = object::decode(data, &fixed);

    match (&header, &unverified) {
        (Err(h), u) => {
            assert_eq!(
                u.as_ref().err(),
                Some(h),
                "decode_unverified must fail as parse_header did"
            );
        }
        (Ok(h), Ok((kind, plaintext))) => {
            assert_eq!(h.kind, *kind);
            assert_eq!(h.plaintext_len, plaintext.len() as u64);
            assert_eq!(h.flags, 0);
            assert!(h.codec <= 1);
            assert!(h.plaintext_len <= object::MAX_PLAINTEXT);
        }
        (Ok(_), Err(_)) => {}
    }

    match &unverified {
        Err(e) => {
            assert_eq!(
                verified.as_ref().err(),
                Some(e),
                "decode must report the envelope error first"
            );
        }
        Ok((kind, plaintext)) => {
            let id = ObjectId::of(plaintext);
            if id == fixed {
                assert_eq!(verified.as_ref().ok(), Some(&(*kind, plaintext.clone())));
                assert_eq!(plaintext.as_slice(), FIXED_PLAINTEXT);
            } else {
                assert!(
                    matches!(verified, Err(FormatError::HashMismatch { .. })),
                    "decode against a wrong id must be a hash mismatch, got {verified:?}"
                );
            }
            if plaintext.len() > ROUNDTRIP_LIMIT {
                return;
            }
            // Decoding against the id of what decoded succeeds, with the same result.
            assert_eq!(
                object::decode(data, &id).as_ref().ok(),
                Some(&(*kind, plaintext.clone()))
            );

            let h = header.expect("decoded, so the header parsed");
            let plain = object::encode_with_id(*kind, Codec::None, plaintext);
            if h.codec == 0 {
                assert_eq!(plain.as_slice(), data, "codec-0 objects are canonical");
            }
            let (zid, zstd) = object::encode(*kind, Codec::Zstd(1), plaintext);
            assert_eq!(zid, id);
            for enc in [&plain, &zstd] {
                let (k2, p2) = object::decode(enc, &id).expect("re-encoded object decodes");
                assert_eq!(k2, *kind);
                assert_eq!(&p2, plaintext);
            }
        }
    }
    if let Ok((_, p)) = &verified {
        assert_eq!(
            ObjectId::of(p),
            fixed,
            "a verified decode returns only bytes that hash to the id"
        );
    }
});
