//! Key files: `keys/<16 hex>`, each the store's master key wrapped by a key
//! derived from one passphrase with Argon2id. Framed with magic `ARKK`.
//!
//! The wrapping's associated data binds the key file to the exact bytes of the
//! store's config file, so a config changed after the keys were made (a
//! downgrade to "no encryption", other chunker parameters) opens with no key.
use crate::crypto::{open_with, seal_with, KEY_LEN, NONCE_LEN};
use crate::error::{FormatError, Result};
use crate::frame;
use serde::{Deserialize, Serialize};

pub const MAGIC: &[u8; 4] = b"ARKK";
pub const KEYFILE_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Always `argon2id` (version 0x13) in key file version 1.
    pub algorithm: String,
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    #[serde(with = "serde_bytes")]
    pub salt: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyFile {
    pub keyfile_version: u32,
    pub created_ms: i64,
    /// Where it was made (`host`), for `key list`.
    pub host: String,
    pub kdf: KdfParams,
    /// nonce ‖ XChaCha20-Poly1305(master key) ‖ tag.
    #[serde(with = "serde_bytes")]
    pub wrapped: Vec<u8>,
}

fn aad(config_bytes: &[u8]) -> Vec<u8> {
    let mut a = MAGIC.to_vec();
    a.extend_from_slice(blake3::hash(config_bytes).as_bytes());
    a
}

impl KdfParams {
    pub fn validate(&self) -> Result<()> {
        if self.algorithm != "argon2id" {
            return Err(FormatError::Invalid(format!(
                "unknown key derivation {:?}",
                self.algorithm
            )));
        }
        // Bounds keep a damaged or hostile key file from demanding absurd work.
        if !(8..=4 * 1024 * 1024).contains(&self.memory_kib)
            || !(1..=64).contains(&self.iterations)
            || !(1..=16).contains(&self.parallelism)
            || self.memory_kib < 8 * self.parallelism
            || !(16..=64).contains(&self.salt.len())
        {
            return Err(FormatError::Invalid(format!(
                "argon2id parameters out of range: m={} KiB t={} p={} salt={} bytes",
                self.memory_kib,
                self.iterations,
                self.parallelism,
                self.salt.len()
            )));
        }
        Ok(())
    }
}

impl KeyFile {
    /// Wraps `master` under `kek` (the Argon2id output for `kdf`).
    pub fn wrap(
        master: &[u8; KEY_LEN],
        kek: &[u8; KEY_LEN],
        nonce: &[u8; NONCE_LEN],
        kdf: KdfParams,
        config_bytes: &[u8],
        created_ms: i64,
        host: String,
    ) -> KeyFile {
        KeyFile {
            keyfile_version: KEYFILE_VERSION,
            created_ms,
            host,
            kdf,
            wrapped: seal_with(kek, nonce, &aad(config_bytes), master),
        }
    }

    /// The master key, or [`FormatError::AuthenticationFailed`] when `kek` is
    /// not this file's (a wrong passphrase) or the file or config was altered.
    pub fn unwrap_master(&self, kek: &[u8; KEY_LEN], config_bytes: &[u8]) -> Result<[u8; KEY_LEN]> {
        let m = open_with(kek, &aad(config_bytes), &self.wrapped)?;
        m.as_slice()
            .try_into()
            .map_err(|_| FormatError::Invalid("wrapped key is not 32 bytes".into()))
    }

    pub fn encode(&self) -> Vec<u8> {
        frame::encode(MAGIC, &frame::to_msgpack(self))
    }

    pub fn decode(bytes: &[u8]) -> Result<KeyFile> {
        let body = frame::decode(MAGIC, "key file frame", bytes)?;
        frame::check_version(body, "key file", KEYFILE_VERSION)?;
        let k: KeyFile = frame::from_msgpack(body)?;
        frame::check_len("key file host", k.host.len(), frame::MAX_TEXT)?;
        k.kdf.validate()?;
        if k.wrapped.len() != NONCE_LEN + KEY_LEN + crate::crypto::TAG_LEN {
            return Err(FormatError::Invalid(format!(
                "wrapped key has {} bytes",
                k.wrapped.len()
            )));
        }
        Ok(k)
    }
}
