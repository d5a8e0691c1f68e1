//! The object envelope: how one object (a chunk of a stream, a whole small blob,
//! or a manifest) is laid out in its file.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `ARKO` |
//! | 4 | 1 | envelope version (1) |
//! | 5 | 1 | kind: 1 chunk, 2 blob, 3 manifest |
//! | 6 | 1 | codec: 0 none, 1 zstd |
//! | 7 | 1 | flags: bit 0 reserved for encryption; all must be zero in v1 |
//! | 8 | 8 | plaintext length, u64 little-endian |
//! | 16 | .. | payload: the plaintext, encoded with the codec |
//!
//! The object's id is BLAKE3-256 of the plaintext; it is the file name, so the
//! decoder checks the content against the id it was asked for.
use crate::error::{FormatError, Result};
use crate::id::ObjectId;
use std::io::Read;

pub const MAGIC: &[u8; 4] = b"ARKO";
pub const ENVELOPE_VERSION: u8 = 1;
pub const HEADER_LEN: usize = 16;
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
            v => Err(FormatError::UnknownValue { what: "object kind", value: v as u32 }),
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

pub fn parse_header(bytes: &[u8]) -> Result<Header> {
    if bytes.len() < HEADER_LEN {
        return Err(FormatError::Truncated { need: HEADER_LEN, have: bytes.len() });
    }
    if &bytes[0..4] != MAGIC {
        return Err(FormatError::BadMagic { expected: "ARKO", found: bytes[0..4].to_vec() });
    }
    if bytes[4] != ENVELOPE_VERSION {
        return Err(FormatError::UnsupportedVersion {
            what: "object envelope",
            found: bytes[4] as u32,
            supported: ENVELOPE_VERSION as u32,
        });
    }
    let kind = ObjectKind::from_byte(bytes[5])?;
    let codec = bytes[6];
    if codec > 1 {
        return Err(FormatError::UnknownValue { what: "codec", value: codec as u32 });
    }
    let flags = bytes[7];
    if flags != 0 {
        return Err(FormatError::ReservedFlags(flags));
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[8..16]);
    let plaintext_len = u64::from_le_bytes(len);
    if plaintext_len > MAX_PLAINTEXT {
        return Err(FormatError::TooLarge { declared: plaintext_len, limit: MAX_PLAINTEXT });
    }
    Ok(Header { kind, codec, flags, plaintext_len })
}

/// Encodes `plaintext` as an object of `kind`. Returns the id and the file bytes.
/// With zstd, a payload that does not shrink is stored with codec none.
pub fn encode(kind: ObjectKind, codec: Codec, plaintext: &[u8]) -> (ObjectId, Vec<u8>) {
    let id = ObjectId::of(plaintext);
    (id, encode_with_id(kind, codec, plaintext))
}

/// As [`encode`], for a caller that already hashed the plaintext.
pub fn encode_with_id(kind: ObjectKind, codec: Codec, plaintext: &[u8]) -> Vec<u8> {
    let compressed = match codec {
        Codec::Zstd(level) => zstd::bulk::compress(plaintext, level).ok().filter(|c| c.len() < plaintext.len()),
        Codec::None => None,
    };
    let (codec_byte, payload) = match &compressed {
        Some(c) => (Codec::Zstd(0).byte(), c.as_slice()),
        None => (Codec::None.byte(), plaintext),
    };
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(MAGIC);
    out.push(ENVELOPE_VERSION);
    out.push(kind as u8);
    out.push(codec_byte);
    out.push(0);
    out.extend_from_slice(&(plaintext.len() as u64).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Decodes an object file and checks that its plaintext hashes to `expected`.
pub fn decode(bytes: &[u8], expected: &ObjectId) -> Result<(ObjectKind, Vec<u8>)> {
    let (kind, plaintext) = decode_unverified(bytes)?;
    let computed = ObjectId::of(&plaintext);
    if &computed != expected {
        return Err(FormatError::HashMismatch { expected: expected.to_hex(), computed: computed.to_hex() });
    }
    Ok((kind, plaintext))
}

/// Decodes an object file without checking its id (for tools that inspect damage).
pub fn decode_unverified(bytes: &[u8]) -> Result<(ObjectKind, Vec<u8>)> {
    let h = parse_header(bytes)?;
    let payload = &bytes[HEADER_LEN..];
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
        return Err(FormatError::LengthMismatch { declared: h.plaintext_len, actual: plaintext.len() as u64 });
    }
    Ok((h.kind, plaintext))
}
