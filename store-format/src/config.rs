//! The repository config: the file `config` at the root of a store, written once
//! by `init` and never changed silently. Framed (see [`crate::frame`]) with magic
//! `ARKC`; the body is a MessagePack map.
use crate::error::{FormatError, Result};
use crate::frame;
use serde::{Deserialize, Serialize};

pub const MAGIC: &[u8; 4] = b"ARKC";
/// The store format version this code writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreConfig {
    /// Random 128-bit id, 32 lowercase hex digits.
    pub id: String,
    pub format_version: u32,
    /// Milliseconds since the Unix epoch, UTC.
    pub created_ms: i64,
    pub chunker: ChunkerParams,
    /// Always `blake3-256` in format version 1.
    pub hash: String,
    pub compression: CompressionParams,
    /// `none`, or `xchacha20poly1305-blake3` (keyed BLAKE3 ids, XChaCha20-Poly1305
    /// objects and journal records, Argon2id key files under `keys/`).
    pub encryption: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerParams {
    /// Always `fastcdc-2020` in format version 1.
    pub algorithm: String,
    pub min_size: u32,
    pub avg_size: u32,
    pub max_size: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompressionParams {
    /// `zstd` or `none`.
    pub codec: String,
    pub level: i32,
}

impl ChunkerParams {
    pub const ALGORITHM: &'static str = "fastcdc-2020";
    pub fn new(min_size: u32, avg_size: u32, max_size: u32) -> Self {
        ChunkerParams {
            algorithm: Self::ALGORITHM.to_string(),
            min_size,
            avg_size,
            max_size,
        }
    }
    /// The limits that the FastCDC 2020 implementation accepts.
    pub fn validate(&self) -> Result<()> {
        if self.algorithm != Self::ALGORITHM {
            return Err(FormatError::Invalid(format!(
                "unknown chunker {:?}",
                self.algorithm
            )));
        }
        let ok = (64..=1_048_576).contains(&self.min_size)
            && (256..=4_194_304).contains(&self.avg_size)
            && (1024..=16_777_216).contains(&self.max_size)
            && self.min_size <= self.avg_size
            && self.avg_size <= self.max_size;
        if !ok {
            return Err(FormatError::Invalid(format!(
                "chunker sizes out of range: min {} avg {} max {}",
                self.min_size, self.avg_size, self.max_size
            )));
        }
        Ok(())
    }
}

impl StoreConfig {
    pub fn encode(&self) -> Vec<u8> {
        frame::encode(MAGIC, &frame::to_msgpack(self))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let body = frame::decode(MAGIC, "config frame", bytes)?;
        // Read the version first so that a future config with other fields
        // reports "too new" rather than a field error.
        frame::check_version(body, "store format", FORMAT_VERSION)?;
        let c: StoreConfig = frame::from_msgpack(body)?;
        for (what, v) in [
            ("config id", &c.id),
            ("chunker", &c.chunker.algorithm),
            ("hash", &c.hash),
            ("codec", &c.compression.codec),
            ("encryption", &c.encryption),
        ] {
            frame::check_len(what, v.len(), frame::MAX_TEXT)?;
        }
        c.chunker.validate()?;
        if c.hash != "blake3-256" {
            return Err(FormatError::Invalid(format!("unknown hash {:?}", c.hash)));
        }
        if c.compression.codec != "zstd" && c.compression.codec != "none" {
            return Err(FormatError::Invalid(format!(
                "unknown compression {:?}",
                c.compression.codec
            )));
        }
        if c.encryption != "none" && c.encryption != "xchacha20poly1305-blake3" {
            return Err(FormatError::Invalid(format!(
                "unknown encryption {:?}",
                c.encryption
            )));
        }
        Ok(c)
    }
}
