//! The object envelope: how one object (a chunk of a stream, a whole small blob,
//! or a manifest) is laid out in its file.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `ARKO` |
//! | 4 | 1 | envelope version (1) |
//! | 5 | 1 | kind: 1 chunk, 2 blob, 3 manifest |
//! | 6 | 1 | codec: 0 none, 1 zstd |
//! | 7 | 1 | flags: bit 0 = encrypted; the other bits must be zero |
//! | 8 | 8 | plaintext length, u64 little-endian |
//! | 16 | .. | unencrypted: the payload (the plaintext, encoded with the codec) |
//!
//! Encrypted (flag bit 0), after the same 16-byte header (whose plaintext
//! length is zero: the length is sealed):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 16 | 24 | nonce |
//! | 40 | n + 24 | XChaCha20-Poly1305 of (plaintext length u64 LE ‖ payload), tag last; associated data: header ‖ object id |
//! | end − 32 | 32 | BLAKE3-256 of all bytes before it (tells damage from tampering) |
//!
//! The object's id is BLAKE3-256 of the plaintext (keyed with the store's id
//! key when the store is encrypted); it is the file name, so the decoder checks
//! the content against the id it was asked for.
use crate::crypto::{StoreKeys, NONCE_LEN, TAG_LEN};
use crate::error::{FormatError, Result};
use crate::id::ObjectId;
use std::io::Read;
use std::sync::Arc;

pub const MAGIC: &[u8; 4] = b"ARKO";
pub const ENVELOPE_VERSION: u8 = 1;
pub const HEADER_LEN: usize = 16;
pub const FLAG_ENCRYPTED: u8 = 0x01;
/// Bytes an encrypted object adds to its payload: nonce, tag, checksum.
pub const SEALED_OVERHEAD: usize = NONCE_LEN + TAG_LEN + 32;
/// No object plaintext may exceed this (chunks are at most a few MiB; manifests
/// are far smaller). Guards decoders against absurd declared lengths.
pub const MAX_PLAINTEXT: u64 = 256 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Chunk = 1,
    Blob = 2,
    Manifest = 3,
}

impl ObjectKind {
    pub fn from_byte(b: u8) -> Result<Self> {
        match b {
            1 => Ok(ObjectKind::Chunk),
            2 => Ok(ObjectKind::Blob),
            3 => Ok(ObjectKind::Manifest),
            v => Err(FormatError::UnknownValue {
                what: "object kind",
                value: v as u32,
            }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    None,
    /// zstd at the given level (the level is not stored: any level decodes).
    Zstd(i32),
}

impl Codec {
    fn byte(self) -> u8 {
        match self {
            Codec::None => 0,
            Codec::Zstd(_) => 1,
        }
    }
}

/// The parsed fixed header of an object file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: ObjectKind,
    pub codec: u8,
    pub flags: u8,
    pub plaintext_len: u64,
}

/// What an envelope version or reserved flags this reader does not know mean:
/// a newer writer only when the file proves it is otherwise intact. An
/// encrypted object (flag bit 0) proves it with its trailing checksum, which
/// covers the header; an unencrypted one has nothing that could (its id
/// covers only the plaintext), so an unknown byte there is damage.
fn unknown_header(bytes: &[u8], newer: FormatError, what: &'static str, found: u32) -> FormatError {
    let sealed = bytes[7] & FLAG_ENCRYPTED != 0;
    if sealed && bytes.len() >= HEADER_LEN + SEALED_OVERHEAD {
        let (body, sum) = bytes.split_at(bytes.len() - 32);
        if blake3::hash(body).as_bytes() == sum {
            return newer;
        }
        return FormatError::ChecksumMismatch;
    }
    FormatError::DamagedHeader { what, found }
}

/// Parses and checks the fixed header. Given the whole file, it can tell a
/// newer writer's envelope version or flags from damage (see `unknown_header`);
/// given the header alone, an unknown version or flag is reported as damage.
pub fn parse_header(bytes: &[u8]) -> Result<Header> {
    if bytes.len() < HEADER_LEN {
        return Err(FormatError::Truncated {
            need: HEADER_LEN,
            have: bytes.len(),
        });
    }
    if &bytes[0..4] != MAGIC {
        return Err(FormatError::BadMagic {
            expected: "ARKO",
            found: bytes[0..4].to_vec(),
        });
    }
    if bytes[4] != ENVELOPE_VERSION {
        let newer = FormatError::UnsupportedVersion {
            what: "object envelope",
            found: bytes[4] as u32,
            supported: ENVELOPE_VERSION as u32,
        };
        return Err(unknown_header(
            bytes,
            newer,
            "envelope version byte",
            bytes[4] as u32,
        ));
    }
    let kind = ObjectKind::from_byte(bytes[5])?;
    let codec = bytes[6];
    if codec > 1 {
        return Err(FormatError::UnknownValue {
            what: "codec",
            value: codec as u32,
        });
    }
    let flags = bytes[7];
    if flags & !FLAG_ENCRYPTED != 0 {
        return Err(unknown_header(
            bytes,
            FormatError::ReservedFlags(flags),
            "flags byte",
            flags as u32,
        ));
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[8..16]);
    let plaintext_len = u64::from_le_bytes(len);
    if plaintext_len > MAX_PLAINTEXT {
        return Err(FormatError::TooLarge {
            declared: plaintext_len,
            limit: MAX_PLAINTEXT,
        });
    }
    Ok(Header {
        kind,
        codec,
        flags,
        plaintext_len,
    })
}

/// Encodes `plaintext` as an object of `kind`. Returns the id and the file bytes.
/// With zstd, a payload that does not shrink is stored with codec none.
pub fn encode(kind: ObjectKind, codec: Codec, plaintext: &[u8]) -> (ObjectId, Vec<u8>) {
    let id = ObjectId::of(plaintext);
    (id, encode_with_id(kind, codec, plaintext))
}

/// As [`encode`], for a caller that already hashed the plaintext.
pub fn encode_with_id(kind: ObjectKind, codec: Codec, plaintext: &[u8]) -> Vec<u8> {
    let (codec_byte, payload) = compress(codec, plaintext);
    let mut out = header(kind, codec_byte, 0, plaintext.len());
    out.extend_from_slice(payload.as_deref().unwrap_or(plaintext));
    out
}

/// Encodes an object of an encrypted store: compressed, then sealed with a
/// fresh `nonce` and bound to its id and header.
pub fn encode_sealed(
    kind: ObjectKind,
    codec: Codec,
    keys: &StoreKeys,
    id: &ObjectId,
    plaintext: &[u8],
    nonce: &[u8; NONCE_LEN],
) -> Vec<u8> {
    let (codec_byte, payload) = compress(codec, plaintext);
    seal_payload(
        kind,
        codec_byte,
        keys,
        id,
        plaintext.len(),
        payload.as_deref().unwrap_or(plaintext),
        nonce,
    )
}

/// As [`encode_sealed`], for a caller that compressed the plaintext itself:
/// `payload` is the plaintext encoded with `codec_byte` (0 none, 1 zstd).
pub fn seal_payload(
    kind: ObjectKind,
    codec_byte: u8,
    keys: &StoreKeys,
    id: &ObjectId,
    plaintext_len: usize,
    payload: &[u8],
    nonce: &[u8; NONCE_LEN],
) -> Vec<u8> {
    // The exact plaintext length travels inside the seal; the header's length
    // field is zero, so an encrypted object shows only its sealed size.
    let mut out = header(kind, codec_byte, FLAG_ENCRYPTED, 0);
    let mut aad = out.clone();
    aad.extend_from_slice(&id.0);
    let mut msg = Vec::with_capacity(8 + payload.len());
    msg.extend_from_slice(&(plaintext_len as u64).to_le_bytes());
    msg.extend_from_slice(payload);
    out.extend_from_slice(&keys.seal(nonce, &aad, &msg));
    let sum = blake3::hash(&out);
    out.extend_from_slice(sum.as_bytes());
    out
}

/// The start of a sealed object whose payload the caller writes straight into
/// the buffer (no intermediate copies): header ‖ nonce ‖ the plaintext length
/// (u64 LE). Append the payload (at most `payload_capacity` bytes, which are
/// reserved), then call [`finish_sealed`]. The result is byte for byte what
/// [`seal_payload`] gives for the same inputs.
pub fn begin_sealed(
    kind: ObjectKind,
    codec_byte: u8,
    plaintext_len: usize,
    payload_capacity: usize,
    nonce: &[u8; NONCE_LEN],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + 8 + payload_capacity + SEALED_OVERHEAD);
    out.extend_from_slice(MAGIC);
    out.push(ENVELOPE_VERSION);
    out.push(kind as u8);
    out.push(codec_byte);
    out.push(FLAG_ENCRYPTED);
    out.extend_from_slice(&0u64.to_le_bytes());
    out.extend_from_slice(nonce);
    out.extend_from_slice(&(plaintext_len as u64).to_le_bytes());
    out
}

/// Completes an object begun with [`begin_sealed`]: encrypts the length and
/// payload in place, binding the header and `id`, and appends the tag and
/// the checksum.
pub fn finish_sealed(mut buf: Vec<u8>, keys: &StoreKeys, id: &ObjectId) -> Vec<u8> {
    let mut aad = [0u8; HEADER_LEN + 32];
    aad[..HEADER_LEN].copy_from_slice(&buf[..HEADER_LEN]);
    aad[HEADER_LEN..].copy_from_slice(&id.0);
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&buf[HEADER_LEN..HEADER_LEN + NONCE_LEN]);
    keys.seal_in_place(&nonce, &aad, &mut buf, HEADER_LEN + NONCE_LEN);
    let sum = blake3::hash(&buf);
    buf.extend_from_slice(sum.as_bytes());
    buf
}

fn compress(codec: Codec, plaintext: &[u8]) -> (u8, Option<Vec<u8>>) {
    let compressed = match codec {
        Codec::Zstd(level) => zstd::bulk::compress(plaintext, level)
            .ok()
            .filter(|c| c.len() < plaintext.len()),
        Codec::None => None,
    };
    match compressed {
        Some(c) => (Codec::Zstd(0).byte(), Some(c)),
        None => (Codec::None.byte(), None),
    }
}

fn header(kind: ObjectKind, codec_byte: u8, flags: u8, plaintext_len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + plaintext_len / 2 + SEALED_OVERHEAD);
    out.extend_from_slice(MAGIC);
    out.push(ENVELOPE_VERSION);
    out.push(kind as u8);
    out.push(codec_byte);
    out.push(flags);
    out.extend_from_slice(&(plaintext_len as u64).to_le_bytes());
    out
}

/// How objects are made and read in one store: its compression and, when the
/// store is encrypted, its keys.
#[derive(Debug, Clone)]
pub struct ObjectCodec {
    pub codec: Codec,
    pub keys: Option<Arc<StoreKeys>>,
}

impl ObjectCodec {
    pub fn id_of(&self, plaintext: &[u8]) -> ObjectId {
        match &self.keys {
            Some(k) => k.object_id(plaintext),
            None => ObjectId::of(plaintext),
        }
    }

    /// The file bytes of an object; `nonce` must be fresh and random (unused
    /// when the store is not encrypted).
    pub fn encode(
        &self,
        kind: ObjectKind,
        id: &ObjectId,
        plaintext: &[u8],
        nonce: &[u8; NONCE_LEN],
    ) -> Vec<u8> {
        match &self.keys {
            Some(k) => encode_sealed(kind, self.codec, k, id, plaintext, nonce),
            None => encode_with_id(kind, self.codec, plaintext),
        }
    }

    pub fn decode(&self, bytes: &[u8], expected: &ObjectId) -> Result<(ObjectKind, Vec<u8>)> {
        decode_in(bytes, expected, self.keys.as_deref())
    }
}

/// Decodes an object file of a store with (`Some`) or without encryption and
/// checks it against `expected`.
pub fn decode_in(
    bytes: &[u8],
    expected: &ObjectId,
    keys: Option<&StoreKeys>,
) -> Result<(ObjectKind, Vec<u8>)> {
    let Some(keys) = keys else {
        return decode(bytes, expected);
    };
    let h = parse_header(bytes)?;
    if h.flags & FLAG_ENCRYPTED == 0 {
        // Only someone without the key writes plaintext into an encrypted store.
        return Err(FormatError::AuthenticationFailed);
    }
    if bytes.len() < HEADER_LEN + SEALED_OVERHEAD {
        return Err(FormatError::Truncated {
            need: HEADER_LEN + SEALED_OVERHEAD,
            have: bytes.len(),
        });
    }
    let (body, sum) = bytes.split_at(bytes.len() - 32);
    if blake3::hash(body).as_bytes() != sum {
        return Err(FormatError::ChecksumMismatch);
    }
    let mut aad = bytes[..HEADER_LEN].to_vec();
    aad.extend_from_slice(&expected.0);
    // The header is authenticated (it is part of the associated data), so
    // open first: a changed header is tampering, not merely invalid.
    let msg = keys.open(&aad, &body[HEADER_LEN..])?;
    if h.plaintext_len != 0 {
        return Err(FormatError::Invalid(
            "an encrypted object's header length must be zero".into(),
        ));
    }
    if msg.len() < 8 {
        return Err(FormatError::Truncated {
            need: 8,
            have: msg.len(),
        });
    }
    let len = u64::from_le_bytes(msg[..8].try_into().expect("8 bytes"));
    if len > MAX_PLAINTEXT {
        return Err(FormatError::TooLarge {
            declared: len,
            limit: MAX_PLAINTEXT,
        });
    }
    let plaintext = decode_payload(
        &Header {
            plaintext_len: len,
            ..h
        },
        &msg[8..],
    )?;
    let computed = keys.object_id(&plaintext);
    if &computed != expected {
        return Err(FormatError::HashMismatch {
            expected: expected.to_hex(),
            computed: computed.to_hex(),
        });
    }
    Ok((h.kind, plaintext))
}

/// Decodes an object file and checks that its plaintext hashes to `expected`.
pub fn decode(bytes: &[u8], expected: &ObjectId) -> Result<(ObjectKind, Vec<u8>)> {
    let (kind, plaintext) = decode_unverified(bytes)?;
    let computed = ObjectId::of(&plaintext);
    if &computed != expected {
        return Err(FormatError::HashMismatch {
            expected: expected.to_hex(),
            computed: computed.to_hex(),
        });
    }
    Ok((kind, plaintext))
}

/// Decodes an unencrypted object file without checking its id (for tools that inspect damage).
pub fn decode_unverified(bytes: &[u8]) -> Result<(ObjectKind, Vec<u8>)> {
    let h = parse_header(bytes)?;
    if h.flags & FLAG_ENCRYPTED != 0 {
        return Err(FormatError::Invalid(
            "the object is encrypted: the store's key is needed".into(),
        ));
    }
    Ok((h.kind, decode_payload(&h, &bytes[HEADER_LEN..])?))
}

fn decode_payload(h: &Header, payload: &[u8]) -> Result<Vec<u8>> {
    let plaintext = match h.codec {
        0 => payload.to_vec(),
        _ => {
            let dec = zstd::stream::read::Decoder::with_buffer(payload)
                .map_err(|e| FormatError::Decompress(e.to_string()))?;
            let mut out = Vec::with_capacity(h.plaintext_len.min(8 * 1024 * 1024) as usize);
            dec.take(h.plaintext_len + 1)
                .read_to_end(&mut out)
                .map_err(|e| FormatError::Decompress(e.to_string()))?;
            out
        }
    };
    if plaintext.len() as u64 != h.plaintext_len {
        return Err(FormatError::LengthMismatch {
            declared: h.plaintext_len,
            actual: plaintext.len() as u64,
        });
    }
    Ok(plaintext)
}
