//! `init`: a new, empty store (encrypted unless asked otherwise) at a
//! location; for a local one, its directory is made when its parent exists.
//! The passphrase of its first key arrives in the request.
use super::key::Passphrase;
use super::{ErrorKind, OpError, OpResult, Reporter};
use crate::store::{Encryption, InitOptions, Store};
use serde::{Deserialize, Serialize};
use store_format::{ChunkerParams, CompressionParams};

#[derive(Debug, Clone, Deserialize)]
pub struct Request {
    /// A directory (local disk or NFS mount) or `s3://bucket/prefix`.
    pub location: String,
    /// Average chunk size in KiB (min is a quarter, max four times).
    #[serde(default)]
    pub chunk_avg_kib: Option<u32>,
    /// zstd compression level (0 disables compression).
    #[serde(default)]
    pub zstd_level: Option<i32>,
    /// The passphrase of the store's first key (required unless
    /// `insecure_no_encryption`).
    #[serde(default)]
    pub passphrase: Option<Passphrase>,
    /// Make the store WITHOUT encryption: anyone who can read it then reads
    /// every backup. Not recommended.
    #[serde(default)]
    pub insecure_no_encryption: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chunker {
    pub avg: u32,
    pub max: u32,
    pub min: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Compression {
    pub codec: String,
    pub level: i32,
}

/// The store made (the JSON of `init --json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Initialized {
    pub chunker: Chunker,
    pub compression: Compression,
    /// The store's encryption scheme (`none` when unencrypted).
    pub encryption: String,
    pub format_version: u32,
    /// The store's id.
    pub id: String,
    /// The key file the passphrase opens (`None` when unencrypted).
    pub key: Option<String>,
    /// Where the store is.
    pub store: String,
}

/// The directory of a local store, made when missing (its parent must exist).
fn make_directory(loc: &str) -> OpResult<()> {
    let p = std::path::Path::new(loc);
    if !p.exists() {
        let parent = p
            .parent()
            .filter(|x| !x.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        if !parent.is_dir() {
            return Err(OpError::not_found(format!(
                "{loc}: parent directory does not exist"
            )));
        }
        match std::fs::create_dir(p) {
            Ok(()) => {}
            // Another `init` made it a moment ago: the store's own checks decide.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && p.is_dir() => {}
            Err(e) => {
                return Err(OpError::new(
                    ErrorKind::Unavailable,
                    format!("cannot create {loc}: {e}"),
                ))
            }
        }
    } else if !p.is_dir() {
        return Err(OpError::new(
            ErrorKind::Conflict,
            format!("{loc} exists and is not a directory"),
        ));
    }
    Ok(())
}

/// `env`: the variables the front end gives it (an S3 location's `AWS_*`).
pub async fn run(
    req: &Request,
    env: &super::Environment,
    r: &dyn Reporter,
) -> OpResult<Initialized> {
    let encryption = if req.insecure_no_encryption {
        Encryption::None
    } else {
        match &req.passphrase {
            Some(p) if !p.expose().is_empty() => Encryption::Passphrase(p.expose().clone()),
            Some(_) => {
                return Err(crate::store::StoreError::from(
                    crate::crypto::CryptoError::EmptyPassphrase,
                )
                .into())
            }
            None => {
                return Err(crate::store::StoreError::from(
                    crate::crypto::CryptoError::NoPassphrase,
                )
                .into())
            }
        }
    };
    let mut opts = InitOptions::new(encryption);
    if let Some(avg) = req.chunk_avg_kib {
        let avg = avg
            .checked_mul(1024)
            .ok_or_else(|| OpError::invalid("--chunk-avg-kib is too large"))?;
        opts.chunker = ChunkerParams::new(avg / 4, avg, avg.saturating_mul(4));
    }
    if let Some(level) = req.zstd_level {
        opts.compression = if level == 0 {
            CompressionParams {
                codec: "none".into(),
                level: 0,
            }
        } else {
            CompressionParams {
                codec: "zstd".into(),
                level,
            }
        };
    }
    if !req.location.contains("://") {
        make_directory(&req.location)?;
    }
    let backend = crate::store::backend_for(&req.location, env.vars())
        .map_err(|e| OpError::invalid(e.to_string()))?;
    r.stage("init");
    let store = Store::init(backend, opts).await?;
    let c = store.config();
    Ok(Initialized {
        chunker: Chunker {
            avg: c.chunker.avg_size,
            max: c.chunker.max_size,
            min: c.chunker.min_size,
        },
        compression: Compression {
            codec: c.compression.codec.clone(),
            level: c.compression.level,
        },
        encryption: c.encryption.clone(),
        format_version: c.format_version,
        id: c.id.clone(),
        key: store.key_id().map(str::to_string),
        store: store.location(),
    })
}
