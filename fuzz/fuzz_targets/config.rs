//! Repository config: `StoreConfig::decode` (a checksummed frame, magic `ARKC`,
//! around a MessagePack map).
//!
//! Each input is tried as a whole config file and, so that the fuzzer reaches
//! the MessagePack decoder past the frame's BLAKE3 trailer, as the frame body
//! (wrapped in a valid frame first).
//!
//! Properties: a decoded config is one this reader accepts (known version,
//! chunker limits, hash, compression, encryption) and round-trips: encode →
//! decode gives an equal config, and encoding is then a fixed point.
//! Not asserted: encode(decode(bytes)) == bytes (MessagePack is not canonical).
#![no_main]

use libfuzzer_sys::fuzz_target;
use store_format::{config, frame, StoreConfig, FORMAT_VERSION};

fn check(bytes: &[u8]) {
    let Ok(c) = StoreConfig::decode(bytes) else {
        return;
    };
    assert!((1..=FORMAT_VERSION).contains(&c.format_version));
    c.chunker
        .validate()
        .expect("a decoded config has valid chunker parameters");
    assert_eq!(c.hash, "blake3-256");
    assert!(c.compression.codec == "zstd" || c.compression.codec == "none");
    assert!(
        c.encryption == "none" || c.encryption == "xchacha20poly1305-blake3",
        "unknown encryption {:?} accepted",
        c.encryption
    );
    let enc = c.encode();
    let c2 = StoreConfig::decode(&enc).expect("a re-encoded config decodes");
    assert_eq!(c, c2, "config round trip");
    assert_eq!(c2.encode(), enc, "config encoding is a fixed point");
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if data.len() <= frame::MAX_FRAME_BODY {
        check(&frame::encode(config::MAGIC, data));
    }
});
