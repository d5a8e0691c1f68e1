//! Key files: `KeyFile::decode` (a checksummed frame, magic `ARKK`, around a
//! MessagePack map) and, on success, `KeyFile::unwrap_master` with a fixed
//! key-encryption key and fixed config bytes.
//!
//! Each input is tried as a whole key file and as the frame body (wrapped in a
//! valid frame first), which reaches the MessagePack decoder and the parameter
//! checks past the frame's BLAKE3 trailer.
//!
//! Properties:
//! - a decoded key file is one the reader accepts: version 1, Argon2id
//!   parameters within `KdfParams::validate`, a wrapped key of exactly
//!   nonce + 32 + tag bytes, a host name within the text limit;
//! - it round-trips: encode → decode gives an equal key file, and encoding is
//!   then a fixed point;
//! - `unwrap_master` never panics, and fails only with `AuthenticationFailed`
//!   (the only key file that opens under the fixed KEK and config is one the
//!   seeds wrapped: it yields the fixed master key, and opens under no other
//!   config).
//!
//! Not run: Argon2id itself (it lives in the n8n-ark crate, and one derivation
//! costs milliseconds to seconds); the fuzzer supplies the KEK directly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use store_format::crypto::{KEY_LEN, NONCE_LEN, TAG_LEN};
use store_format::{frame, keyfile, FormatError, KeyFile};

/// Must match `seeds/src/main.rs`.
const FIXED_MASTER: [u8; 32] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30, 31,
];
const FIXED_KEK: [u8; 32] = [0x6b; 32];
const FIXED_CONFIG: &[u8] = b"n8n-ark fuzz config bytes";

fn check(bytes: &[u8]) {
    let Ok(k) = KeyFile::decode(bytes) else {
        return;
    };
    assert_eq!(k.keyfile_version, keyfile::KEYFILE_VERSION);
    k.kdf
        .validate()
        .expect("a decoded key file has valid parameters");
    assert_eq!(k.wrapped.len(), NONCE_LEN + KEY_LEN + TAG_LEN);
    assert!(k.host.len() <= frame::MAX_TEXT);

    let enc = k.encode();
    let k2 = KeyFile::decode(&enc).expect("a re-encoded key file decodes");
    assert_eq!(k, k2, "key file round trip");
    assert_eq!(k2.encode(), enc, "key file encoding is a fixed point");

    match k.unwrap_master(&FIXED_KEK, FIXED_CONFIG) {
        Ok(m) => {
            assert_eq!(
                m, FIXED_MASTER,
                "only the seeds' master key is wrapped under the fixed KEK"
            );
            assert_eq!(
                k.unwrap_master(&FIXED_KEK, b"another config"),
                Err(FormatError::AuthenticationFailed),
                "a key file opens only with the config it was made for"
            );
        }
        Err(e) => assert_eq!(e, FormatError::AuthenticationFailed),
    }
    let mut other = FIXED_KEK;
    other[0] ^= 1;
    assert_eq!(
        k.unwrap_master(&other, FIXED_CONFIG),
        Err(FormatError::AuthenticationFailed)
    );
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if data.len() <= frame::MAX_FRAME_BODY {
        check(&frame::encode(keyfile::MAGIC, data));
    }
});
