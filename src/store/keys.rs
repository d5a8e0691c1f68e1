//! Key files under `keys/`: unlocking a store with a passphrase, and adding,
//! listing and removing passphrases. Every key file wraps the same master key.
use super::error::{BackendError, Result, StoreError};
use super::{host_name, now_ms, Store, KEYS};
use crate::crypto::{calibrate, derive_kek, kdf_target_ms, random_nonce};
use bytes::Bytes;
use rand::RngCore;
use store_format::{FormatError, KeyFile};
use zeroize::Zeroizing;

#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyInfo {
    pub id: String,
    pub created_ms: i64,
    pub host: String,
    pub kdf: String,
    /// The key that opened the store in this process.
    pub current: bool,
}

async fn key_files(
    store: &Store,
) -> Result<Vec<(String, std::result::Result<KeyFile, FormatError>)>> {
    let mut out = Vec::new();
    for e in store.backend().list(KEYS).await? {
        let id = e.path[KEYS.len()..].to_string();
        let bytes = store.backend().get(&e.path).await?;
        out.push((id, KeyFile::decode(&bytes)));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Finds the key file that `passphrase` opens and returns its id and the master key.
pub async fn unlock(store: &Store, passphrase: &str) -> Result<(String, Zeroizing<[u8; 32]>)> {
    let files = key_files(store).await?;
    if files.is_empty() {
        return Err(StoreError::Invalid(format!(
            "{} is encrypted but has no key files (keys/ is empty): the store cannot be opened",
            store.location()
        )));
    }
    let mut damaged = Vec::new();
    // Intact key files that this passphrase did not open.
    let mut tried = 0;
    for (id, kf) in files {
        let kf = match kf {
            Ok(k) => k,
            Err(e) => {
                damaged.push(format!("keys/{id} is damaged ({e})"));
                continue;
            }
        };
        let (pass, params) = (Zeroizing::new(passphrase.to_string()), kf.kdf.clone());
        let kek = match tokio::task::spawn_blocking(move || derive_kek(&pass, &params))
            .await
            .map_err(|e| StoreError::Invalid(format!("key derivation task failed: {e}")))?
        {
            Ok(k) => k,
            Err(e) => {
                damaged.push(format!(
                    "keys/{id} is damaged (its key derivation failed: {e})"
                ));
                continue;
            }
        };
        match kf.unwrap_master(&kek, store.config_bytes()) {
            Ok(m) => return Ok((id, Zeroizing::new(m))),
            Err(FormatError::AuthenticationFailed) => tried += 1,
            Err(e) => damaged.push(format!("keys/{id} is damaged ({e})")),
        }
    }
    if tried == 0 {
        // Nothing could even be tried: that says nothing about the passphrase.
        return Err(StoreError::DamagedKeys(format!(
            "{}: every key file is damaged, so the passphrase could not be tried with any: {}. Put back \
             a copy of a key file (from a copy of the store's keys/, or one kept apart): nothing else holds \
             the store's master key",
            store.location(),
            damaged.join("; ")
        )));
    }
    let mut msg = format!(
        "none of the store's {tried} intact key file(s) opens with this passphrase (or they were tampered with)"
    );
    if !damaged.is_empty() {
        msg.push_str(&format!(
            "; damaged key files, which could not be tried (if the passphrase is theirs, put back a copy of \
             the file): {}",
            damaged.join("; ")
        ));
    }
    Err(StoreError::WrongPassphrase(msg))
}

/// Writes a new key file for `passphrase`; returns its id.
pub async fn add_key(store: &Store, passphrase: &str) -> Result<String> {
    let master = store
        .master_key()
        .ok_or_else(|| StoreError::Invalid("the store is not encrypted: it has no keys".into()))?;
    let pass = Zeroizing::new(passphrase.to_string());
    let (params, kek) = tokio::task::spawn_blocking(move || {
        let params = calibrate(kdf_target_ms())?;
        let kek = derive_kek(&pass, &params)?;
        Ok::<_, crate::crypto::CryptoError>((params, kek))
    })
    .await
    .map_err(|e| StoreError::Invalid(format!("key derivation task failed: {e}")))??;
    let kf = KeyFile::wrap(
        master,
        &kek,
        &random_nonce(),
        params,
        store.config_bytes(),
        now_ms(),
        host_name(),
    );
    let mut raw = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let id = hex::encode(raw);
    store
        .backend()
        .create_exclusive(&format!("{KEYS}{id}"), Bytes::from(kf.encode()))
        .await
        .map_err(|e| match e {
            BackendError::PermissionDenied { path } => StoreError::Locked(format!(
                "cannot write {path}: permission denied; the store is read-only"
            )),
            e => e.into(),
        })?;
    Ok(id)
}

pub async fn list_keys(store: &Store) -> Result<Vec<KeyInfo>> {
    Ok(key_files(store)
        .await?
        .into_iter()
        .map(|(id, kf)| match kf {
            Ok(k) => KeyInfo {
                current: store.key_id() == Some(id.as_str()),
                id,
                created_ms: k.created_ms,
                host: k.host,
                kdf: format!(
                    "argon2id m={} MiB t={} p={}",
                    k.kdf.memory_kib / 1024,
                    k.kdf.iterations,
                    k.kdf.parallelism
                ),
            },
            Err(e) => KeyInfo {
                current: false,
                id,
                created_ms: 0,
                host: String::new(),
                kdf: format!("damaged: {e}"),
            },
        })
        .collect())
}

/// Removes a key file. The last one, and the one in use, are refused.
pub async fn remove_key(store: &Store, id: &str) -> Result<()> {
    let files = key_files(store).await?;
    if !files.iter().any(|(k, _)| k == id) {
        return Err(StoreError::Invalid(format!(
            "no key {id} in this store (see `n8n-ark key list`)"
        )));
    }
    if store.key_id() == Some(id) {
        return Err(StoreError::Invalid(format!(
            "key {id} is the one this command opened the store with; open it with another passphrase to remove this one"
        )));
    }
    let usable = files.iter().filter(|(k, f)| k != id && f.is_ok()).count();
    if usable == 0 {
        return Err(StoreError::Invalid(
            "refusing to remove the last usable key: the store could never be opened again".into(),
        ));
    }
    store.backend().delete(&format!("{KEYS}{id}")).await?;
    store.backend().sync().await?;
    Ok(())
}
