//! Keys and sealing: what an encrypted store's bytes are made with.
//!
//! A store has one random 256-bit master key. From it, BLAKE3's key derivation
//! gives two independent keys: one for object ids (a keyed BLAKE3 of the
//! plaintext, so equal content still deduplicates but nobody without the key can
//! test whether the store holds a known file) and one for encryption
//! (XChaCha20-Poly1305 with a fresh random 192-bit nonce per write).
//!
//! Pure: callers supply the randomness (nonces), so encoders stay deterministic
//! for a given nonce and can be tested byte for byte.
use crate::error::{FormatError, Result};
use crate::id::ObjectId;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

pub const KEY_LEN: usize = 32;
pub const NONCE_LEN: usize = 24;
pub const TAG_LEN: usize = 16;

/// Context strings for BLAKE3 `derive_key` (never change: they define the format).
pub const CONTEXT_ID: &str = "n8n-ark 2026-11 object id key v1";
pub const CONTEXT_ENCRYPTION: &str = "n8n-ark 2026-11 encryption key v1";
pub const CONTEXT_CHUNKER: &str = "n8n-ark 2026-11 chunker seed v1";

/// The keys derived from a store's master key.
#[derive(Clone)]
pub struct StoreKeys {
    id_key: [u8; KEY_LEN],
    enc_key: [u8; KEY_LEN],
    chunker_seed: u64,
}

impl std::fmt::Debug for StoreKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKeys(..)")
    }
}

impl Drop for StoreKeys {
    fn drop(&mut self) {
        // Best effort: overwrite the key material before the memory is freed.
        for b in self.id_key.iter_mut().chain(self.enc_key.iter_mut()) {
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

impl StoreKeys {
    pub fn derive(master: &[u8; KEY_LEN]) -> Self {
        let seed = blake3::derive_key(CONTEXT_CHUNKER, master);
        StoreKeys {
            id_key: blake3::derive_key(CONTEXT_ID, master),
            enc_key: blake3::derive_key(CONTEXT_ENCRYPTION, master),
            chunker_seed: u64::from_le_bytes(seed[..8].try_into().expect("8 bytes")),
        }
    }

    /// The secret seed of this store's chunker (XORed into FastCDC's gear
    /// table), so that cut points, and with them chunk sizes, cannot be
    /// predicted for a known file without the key.
    pub fn chunker_seed(&self) -> u64 {
        self.chunker_seed
    }

    /// The id of a plaintext in this store: keyed BLAKE3-256.
    pub fn object_id(&self, plaintext: &[u8]) -> ObjectId {
        ObjectId(*blake3::keyed_hash(&self.id_key, plaintext).as_bytes())
    }

    /// Encrypts and authenticates `msg`, binding it to `aad`. Returns nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], msg: &[u8]) -> Vec<u8> {
        seal_with(&self.enc_key, nonce, aad, msg)
    }

    /// [`StoreKeys::seal`] without copies: `buf[start..]` is the message on
    /// entry; on return it is the ciphertext followed by the tag (the caller
    /// has already written the nonce before `start`).
    pub fn seal_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut Vec<u8>,
        start: usize,
    ) {
        use chacha20poly1305::aead::AeadInPlace;
        let cipher = XChaCha20Poly1305::new(Key::from_slice(&self.enc_key));
        let tag = cipher
            .encrypt_in_place_detached(XNonce::from_slice(nonce), aad, &mut buf[start..])
            .expect("XChaCha20-Poly1305 encrypts any message below 256 GiB");
        buf.extend_from_slice(&tag);
    }

    /// Inverse of [`StoreKeys::seal`].
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
        open_with(&self.enc_key, aad, sealed)
    }
}

pub fn seal_with(key: &[u8; KEY_LEN], nonce: &[u8; NONCE_LEN], aad: &[u8], msg: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(Key::from_slice(key));
    let ct = cipher
        .encrypt(XNonce::from_slice(nonce), Payload { msg, aad })
        .expect("XChaCha20-Poly1305 encrypts any message below 256 GiB");
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(nonce);
    out.extend_from_slice(&ct);
    out
}

pub fn open_with(key: &[u8; KEY_LEN], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(FormatError::Truncated {
            need: NONCE_LEN + TAG_LEN,
            have: sealed.len(),
        });
    }
    let cipher = XChaCha20Poly1305::new(Key::from_slice(key));
    cipher
        .decrypt(
            XNonce::from_slice(&sealed[..NONCE_LEN]),
            Payload {
                msg: &sealed[NONCE_LEN..],
                aad,
            },
        )
        .map_err(|_| FormatError::AuthenticationFailed)
}
