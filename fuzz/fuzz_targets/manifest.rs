//! Manifest plaintext: `Manifest::decode_plaintext` (MessagePack).
//!
//! Properties: a decoded manifest satisfies `validate()`, has a version this
//! reader knows, and round-trips: encode → decode gives an equal manifest, and
//! encoding is then a fixed point (encode(decode(encode(m))) == encode(m)).
//!
//! Not asserted: encode(decode(bytes)) == bytes. MessagePack has many encodings
//! of one value (integer widths, maps or arrays for structs, unknown fields that
//! a reader skips, duplicate label keys), and the decoder accepts them all.
#![no_main]

use libfuzzer_sys::fuzz_target;
use store_format::manifest::MANIFEST_VERSION;
use store_format::Manifest;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = Manifest::decode_plaintext(data) else {
        return;
    };
    assert!((1..=MANIFEST_VERSION).contains(&m.manifest_version));
    m.validate().expect("a decoded manifest is valid");
    assert_eq!(
        m.logical_size(),
        m.items.iter().map(|i| i.size).sum::<u64>()
    );
    let _ = m.object_ids().count();

    let enc = m.encode_plaintext();
    let m2 = Manifest::decode_plaintext(&enc).expect("a re-encoded manifest decodes");
    assert_eq!(m, m2, "manifest round trip");
    assert_eq!(
        m2.encode_plaintext(),
        enc,
        "manifest encoding is a fixed point"
    );
});
