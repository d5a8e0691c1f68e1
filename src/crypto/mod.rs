//! Keys for an encrypted store: the master key, passphrases and their sources,
//! and the Argon2id key derivation that turns a passphrase into the key that
//! wraps the master key in a key file (see `store-format/src/keyfile.rs`).
use rand::RngCore;
use store_format::crypto::KEY_LEN;
use store_format::KdfParams;
use thiserror::Error;
use zeroize::Zeroizing;

#[derive(Debug, Error)]
pub enum CryptoError {
    #[error("no passphrase: set ARK_PASSWORD_FILE (a file holding it) or ARK_PASSWORD, or run on a terminal to be asked")]
    NoPassphrase,
    #[error("no new passphrase: set ARK_NEW_PASSWORD_FILE or ARK_NEW_PASSWORD, or run on a terminal to be asked")]
    NoNewPassphrase,
    #[error("the passphrase is empty")]
    EmptyPassphrase,
    #[error("the passphrases do not match")]
    Mismatch,
    #[error("cannot read the passphrase file {path}: {source}")]
    PassphraseFile {
        path: String,
        source: std::io::Error,
    },
    #[error("{var}: the passphrase file {path} is longer than {} KiB, so it holds no passphrase (it is read \
             only up to that much: a device such as /dev/zero, or a pipe that never ends, is refused); point \
             {var} at a file that holds the passphrase alone", MAX_PASSPHRASE_FILE / 1024)]
    PassphraseFileTooLong { var: String, path: String },
    #[error("cannot read the passphrase from the terminal: {0}")]
    Prompt(std::io::Error),
    #[error("key derivation failed: {0}")]
    Kdf(String),
}

impl CryptoError {
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// A fresh random master key.
pub fn new_master_key() -> Zeroizing<[u8; KEY_LEN]> {
    let mut k = Zeroizing::new([0u8; KEY_LEN]);
    rand::rngs::OsRng.fill_bytes(k.as_mut());
    k
}

pub fn random_nonce() -> [u8; store_format::crypto::NONCE_LEN] {
    let mut n = [0u8; store_format::crypto::NONCE_LEN];
    rand::thread_rng().fill_bytes(&mut n);
    n
}

/// The most that is read from a passphrase file (`ARK_PASSWORD_FILE`,
/// `ARK_NEW_PASSWORD_FILE`); a longer file is refused, unread beyond that.
pub const MAX_PASSPHRASE_FILE: u64 = 64 * 1024;

/// A passphrase file's content, read up to [`MAX_PASSPHRASE_FILE`].
pub fn read_passphrase_file(var: &str, path: &str) -> Result<Zeroizing<String>, CryptoError> {
    use std::io::Read;
    let err = |source| CryptoError::PassphraseFile {
        path: path.to_string(),
        source,
    };
    let f = std::fs::File::open(path).map_err(err)?;
    let mut buf = Zeroizing::new(Vec::new());
    f.take(MAX_PASSPHRASE_FILE + 1)
        .read_to_end(&mut buf)
        .map_err(err)?;
    if buf.len() as u64 > MAX_PASSPHRASE_FILE {
        return Err(CryptoError::PassphraseFileTooLong {
            var: var.to_string(),
            path: path.to_string(),
        });
    }
    let s = std::str::from_utf8(&buf).map_err(|e| {
        err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 text ({e})"),
        ))
    })?;
    Ok(Zeroizing::new(s.to_string()))
}

/// Argon2id with `params`: the key that wraps the master key.
pub fn derive_kek(
    passphrase: &str,
    params: &KdfParams,
) -> Result<Zeroizing<[u8; KEY_LEN]>, CryptoError> {
    let p = argon2::Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(KEY_LEN),
    )
    .map_err(|e| CryptoError::Kdf(e.to_string()))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p);
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    a.hash_password_into(passphrase.as_bytes(), &params.salt, out.as_mut())
        .map_err(|e| CryptoError::Kdf(e.to_string()))?;
    Ok(out)
}

/// How long deriving a key should take. `ARK_KDF_TARGET_MS` lowers it (tests).
pub fn kdf_target_ms() -> u64 {
    std::env::var("ARK_KDF_TARGET_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500)
}

/// Argon2id parameters that take about `target_ms` on this machine: 64 MiB of
/// memory (less for very small targets), as many passes as fit.
pub fn calibrate(target_ms: u64) -> Result<KdfParams, CryptoError> {
    let mut salt = vec![0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let memory_kib = if target_ms >= 100 {
        64 * 1024
    } else {
        8 * 1024
    };
    let mut params = KdfParams {
        algorithm: "argon2id".into(),
        memory_kib,
        iterations: 1,
        parallelism: 1,
        salt,
    };
    let t = std::time::Instant::now();
    derive_kek("calibration", &params)?;
    let one = t.elapsed().as_secs_f64() * 1000.0;
    params.iterations = ((target_ms as f64 / one.max(0.1)).round() as u32).clamp(1, 32);
    Ok(params)
}
