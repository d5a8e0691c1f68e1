//! Lock records: `LockRecord::decode` (a checksummed frame, magic `ARKL`, around
//! a MessagePack map).
//!
//! Each input is tried as a whole lock file and, so that the fuzzer reaches the
//! MessagePack decoder past the frame's BLAKE3 trailer, as the frame body
//! (wrapped in a valid frame first).
//!
//! Properties: a decoded lock round-trips: encode → decode gives an equal
//! record, and encoding is then a fixed point.
//! Not asserted: encode(decode(bytes)) == bytes (MessagePack is not canonical).
#![no_main]

use libfuzzer_sys::fuzz_target;
use store_format::{frame, lock, LockRecord};

fn check(bytes: &[u8]) {
    let Ok(l) = LockRecord::decode(bytes) else {
        return;
    };
    let enc = l.encode();
    let l2 = LockRecord::decode(&enc).expect("a re-encoded lock decodes");
    assert_eq!(l, l2, "lock round trip");
    assert_eq!(l2.encode(), enc, "lock encoding is a fixed point");
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if data.len() <= frame::MAX_FRAME_BODY {
        check(&frame::encode(lock::MAGIC, data));
    }
});
