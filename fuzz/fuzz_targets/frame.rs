//! The checksummed frame shared by config, lock, journal and key files:
//! `frame::decode` under each of the four magics.
//!
//! Properties (the frame layout has exactly one encoding per body):
//! - whatever decodes is canonical: `frame::encode(magic, body)` gives back the
//!   input byte for byte, and it decodes under no other magic;
//! - any body frames and unframes to itself;
//! - a valid frame with any single bit flipped, or truncated, or extended by a
//!   byte, is rejected (the bit position is picked from the input).
#![no_main]

use libfuzzer_sys::fuzz_target;
use store_format::{config, frame, journal, keyfile, lock};

const MAGICS: [(&[u8; 4], &str); 4] = [
    (config::MAGIC, "config frame"),
    (journal::MAGIC, "journal frame"),
    (lock::MAGIC, "lock frame"),
    (keyfile::MAGIC, "key file frame"),
];

fn reject_damage(magic: &'static [u8; 4], what: &'static str, good: &[u8], seed: u64) {
    let bit = (seed % (good.len() as u64 * 8)) as usize;
    let mut flipped = good.to_vec();
    flipped[bit / 8] ^= 1 << (bit % 8);
    assert!(
        frame::decode(magic, what, &flipped).is_err(),
        "bit {bit} flipped was accepted"
    );
    let cut = (seed as usize) % good.len();
    assert!(
        frame::decode(magic, what, &good[..cut]).is_err(),
        "truncation to {cut} bytes was accepted"
    );
    let mut longer = good.to_vec();
    longer.push(seed as u8);
    assert!(
        frame::decode(magic, what, &longer).is_err(),
        "a trailing byte was accepted"
    );
}

fuzz_target!(|data: &[u8]| {
    let seed = data
        .iter()
        .fold(0u64, |h, &b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    let mut accepted = 0;
    for (magic, what) in MAGICS {
        if let Ok(body) = frame::decode(magic, what, data) {
            accepted += 1;
            assert_eq!(frame::encode(magic, body), data, "frames are canonical");
            reject_damage(magic, what, data, seed);
        }
    }
    assert!(accepted <= 1, "one file decoded under two magics");

    if data.len() <= frame::MAX_FRAME_BODY {
        let (magic, what) = MAGICS[seed as usize % MAGICS.len()];
        let framed = frame::encode(magic, data);
        assert_eq!(
            frame::decode(magic, what, &framed),
            Ok(data),
            "frame round trip"
        );
        reject_damage(magic, what, &framed, seed);
    }
});
