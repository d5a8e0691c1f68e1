//! `key list|add|remove`: the passphrases (key files) that open an
//! encrypted store. The new passphrase arrives in the request: asking for
//! it is the front end's (the CLI prompts, the API takes it in the body).
use super::{Context, ErrorKind, OpError, OpResult, Reporter};
use crate::store::keys::{self, KeyInfo};
use crate::store::StoreError;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// A passphrase in a request: wiped from memory when dropped, never shown.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    pub fn new(p: Zeroizing<String>) -> Passphrase {
        Passphrase(p)
    }
    pub fn expose(&self) -> &Zeroizing<String> {
        &self.0
    }
}

impl From<Zeroizing<String>> for Passphrase {
    fn from(p: Zeroizing<String>) -> Passphrase {
        Passphrase(p)
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(..)")
    }
}

impl<'de> Deserialize<'de> for Passphrase {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Passphrase, D::Error> {
        String::deserialize(d).map(|s| Passphrase(Zeroizing::new(s)))
    }
}

/// What to do with the store's keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Request {
    /// The key files, one per passphrase.
    List,
    /// A key file for a new passphrase.
    Add { passphrase: Passphrase },
    /// Remove a key file (not the last usable one, nor the one that opened the store).
    Remove { id: String },
}

/// What was done (the JSON of `key … --json`).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Outcome {
    /// The key files; `current` marks the one that opened the store.
    Listed(Vec<KeyInfo>),
    Added {
        added: String,
    },
    Removed {
        removed: String,
    },
}

/// An unencrypted store has no keys: refused before anything else is
/// asked (a front end calls it before asking for a new passphrase).
pub fn require_encrypted(ctx: &Context) -> OpResult<()> {
    if ctx.store.is_encrypted() {
        return Ok(());
    }
    Err(OpError::not_found(format!(
        "{} is not encrypted: it has no keys",
        ctx.store.location()
    )))
}

/// The key layer's refusals (`StoreError::Invalid`) in their kinds: an
/// unknown key is not found; the last key or the one in use is refused.
fn key_error(e: StoreError) -> OpError {
    match e {
        StoreError::Invalid(m) if m.starts_with("no key ") => {
            OpError::not_found(m).with_command("n8n-ark key list")
        }
        StoreError::Invalid(m) => OpError::new(ErrorKind::Refused, m),
        e => e.into(),
    }
}

pub async fn run(ctx: &Context, req: &Request, r: &dyn Reporter) -> OpResult<Outcome> {
    require_encrypted(ctx)?;
    match req {
        Request::List => Ok(Outcome::Listed(keys::list_keys(&ctx.store).await?)),
        Request::Add { passphrase } => {
            ctx.check_cancelled("before the key was added; nothing was changed")?;
            if passphrase.expose().is_empty() {
                return Err(StoreError::from(crate::crypto::CryptoError::EmptyPassphrase).into());
            }
            r.stage("add key");
            let id = keys::add_key(&ctx.store, passphrase.expose())
                .await
                .map_err(key_error)?;
            Ok(Outcome::Added { added: id })
        }
        Request::Remove { id } => {
            ctx.check_cancelled("before the key was removed; nothing was changed")?;
            r.stage("remove key");
            keys::remove_key(&ctx.store, id).await.map_err(key_error)?;
            Ok(Outcome::Removed {
                removed: id.clone(),
            })
        }
    }
}
