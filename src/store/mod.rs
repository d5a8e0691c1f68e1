//! The store: content-addressed objects, manifests, the journal and locks, on
//! any [`Backend`]. It knows nothing of n8n or PostgreSQL.
//!
//! Layout (see `store-format/SPEC.md`):
//! ```text
//! config                     the repository config
//! objects/<2 hex>/<64 hex>   objects by id
//! manifests/<64 hex>         one manifest per completed backup, by id
//! journal/<20 digits>        one record per event
//! locks/<name>               running sessions and the collector
//! trash/<batch>/<64 hex>     objects the collector set aside, pending deletion
//! ```
pub mod backend;
pub mod check;
pub mod chunker;
pub mod error;
pub mod gc;
pub mod index;
pub mod ingest;
pub mod journal;
pub mod journal_repair;
pub mod keys;
pub mod local;
pub mod lock;
pub mod reader;
pub mod s3;
pub mod shared;

pub use backend::{Backend, Entry};
pub use error::{BackendError, Result, StoreError};

use bytes::Bytes;
use std::sync::Arc;
use store_format::object::{self, ObjectCodec, ObjectKind};
use store_format::{ChunkerParams, CompressionParams, Manifest, ObjectId, StoreConfig, StoreKeys};
use zeroize::Zeroizing;

pub const CONFIG: &str = "config";
pub const OBJECTS: &str = "objects/";
pub const MANIFESTS: &str = "manifests/";
pub const JOURNAL: &str = "journal/";
pub const LOCKS: &str = "locks/";
pub const TRASH: &str = "trash/";
pub const KEYS: &str = "keys/";
/// Space held back for the collector on a disk that fills up (SPEC section
/// 13): random bytes, never read.
pub const RESERVE: &str = "reserve";
pub const RESERVE_BYTES: usize = 1024 * 1024;
/// The `encryption` value of the config of an encrypted store.
pub const ENCRYPTION_SCHEME: &str = "xchacha20poly1305-blake3";

/// Chunking and compression chosen by measurement on n8n database dumps (see
/// README, "Performance", and tests/bench/RESULTS.md): 512 KiB average chunks
/// with zstd 3 are the only combination measured that stores no more than restic,
/// in total and on the second day; a minimum of half the average (rather than a
/// quarter) stores slightly less again and spends less time cutting.
pub fn default_chunker() -> ChunkerParams {
    ChunkerParams::new(256 * 1024, 512 * 1024, 2 * 1024 * 1024)
}
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

pub fn object_path(id: &ObjectId) -> String {
    let h = id.to_hex();
    format!("{OBJECTS}{}/{}", &h[..2], h)
}

pub fn manifest_path(id: &ObjectId) -> String {
    format!("{MANIFESTS}{}", id.to_hex())
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn host_name() -> String {
    crate::sys::host_name().unwrap_or_else(|| "unknown".into())
}

/// Opens the backend a `--store` value names: a directory or
/// `s3://bucket/prefix`. `vars` are the environment variables the front end
/// gives the operation (an S3 store's `AWS_*` credentials, region and
/// endpoint, `ARK_S3_ENDPOINT`); the engine reads none itself.
pub fn backend_for(
    location: &str,
    vars: &std::collections::BTreeMap<String, String>,
) -> Result<Arc<dyn Backend>> {
    if location.starts_with("s3://") {
        Ok(Arc::new(
            s3::S3Backend::from_url(location, vars).map_err(StoreError::Invalid)?,
        ))
    } else if location.contains("://") {
        Err(StoreError::Invalid(format!(
            "{location}: unsupported store URL (use a directory or s3://bucket/prefix)"
        )))
    } else {
        Ok(Arc::new(local::LocalBackend::new(location)))
    }
}

#[derive(Debug, Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
    config: Arc<StoreConfig>,
    /// The config file's exact bytes (key files are bound to them).
    config_bytes: Bytes,
    objects: ObjectCodec,
    /// The master key, when the store is encrypted (to wrap new key files).
    master: Option<Arc<Zeroizing<[u8; 32]>>>,
    /// The key file that opened the store.
    key_id: Option<String>,
    /// The chunk workers and the dedup listing the sessions of this process
    /// share (see [`shared`]).
    shared: Arc<shared::Shared>,
}

/// Whether a new store is encrypted.
#[derive(Clone)]
pub enum Encryption {
    /// Not encrypted: anyone who can read the store reads the backups.
    None,
    /// Encrypted, with a first key file for this passphrase.
    Passphrase(Zeroizing<String>),
}

impl std::fmt::Debug for Encryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Encryption::None => f.write_str("None"),
            Encryption::Passphrase(_) => f.write_str("Passphrase(..)"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct InitOptions {
    pub chunker: ChunkerParams,
    pub compression: CompressionParams,
    pub encryption: Encryption,
}

impl InitOptions {
    /// Default chunking and compression, with the encryption given.
    pub fn new(encryption: Encryption) -> Self {
        InitOptions {
            chunker: default_chunker(),
            compression: CompressionParams {
                codec: "zstd".into(),
                level: DEFAULT_ZSTD_LEVEL,
            },
            encryption,
        }
    }
}

impl Store {
    /// Creates a new store. Refuses a location that already holds a store or
    /// anything else.
    ///
    /// Exclusive from its first write: `init` claims [`lock::INIT_LOCK`] before
    /// it writes anything else, and checks again under it that the location is
    /// still empty, so that of two `init`s at once the loser writes nothing
    /// (only the top-level directories, which the winner makes too).
    pub async fn init(backend: Arc<dyn Backend>, opts: InitOptions) -> Result<Store> {
        opts.chunker
            .validate()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        if !(-7..=22).contains(&opts.compression.level) {
            return Err(StoreError::Invalid(format!(
                "zstd level {} is out of range -7..22",
                opts.compression.level
            )));
        }
        refuse_unless_empty(&backend, None).await?;
        let encrypted = matches!(opts.encryption, Encryption::Passphrase(_));
        let config = StoreConfig {
            id: uuid::Uuid::new_v4().simple().to_string(),
            format_version: store_format::FORMAT_VERSION,
            created_ms: now_ms(),
            chunker: opts.chunker,
            hash: "blake3-256".into(),
            compression: opts.compression,
            encryption: if encrypted {
                ENCRYPTION_SCHEME.into()
            } else {
                "none".into()
            },
        };
        let config_bytes = Bytes::from(config.encode());
        let mut store = Store::locked(backend.clone(), config, config_bytes.clone());
        let mut dirs = vec![OBJECTS, MANIFESTS, JOURNAL, LOCKS, TRASH];
        if encrypted {
            dirs.push(KEYS);
        }
        backend.create_location(&dirs).await?;
        let claim = match lock::HeldLock::init(&store).await {
            Ok(l) => l,
            Err(StoreError::Backend(BackendError::AlreadyExists { .. })) => {
                return Err(match refuse_unless_empty(&backend, None).await {
                    Err(e) => e,
                    Ok(()) => another_init(&backend),
                })
            }
            Err(e) => return Err(e),
        };
        let res = async {
            // Under the claim: an `init` that finished just before ours took it
            // has left its store here.
            refuse_unless_empty(&backend, Some(lock::INIT_LOCK)).await?;
            if let Encryption::Passphrase(pass) = &opts.encryption {
                let master = crate::crypto::new_master_key();
                store.objects.keys = Some(Arc::new(StoreKeys::derive(&master)));
                store.master = Some(Arc::new(master));
                // The key file first: a config naming encryption must never exist without one.
                store.key_id = Some(keys::add_key(&store, pass).await?);
            }
            // The config is written last among the skeleton: a store exists once it has one.
            backend
                .create_exclusive(CONFIG, config_bytes.clone())
                .await
                .map_err(|e| match e {
                    BackendError::AlreadyExists { .. } => {
                        StoreError::AlreadyAStore(backend.location())
                    }
                    e => e.into(),
                })?;
            journal::append(
                &store,
                store_format::Event::StoreInitialized(store_format::event::StoreInitialized {
                    store_id: store.config.id.clone(),
                    format_version: store.config.format_version,
                }),
            )
            .await?;
            if backend.fills_up() {
                gc::make_reserve(&store).await?;
            }
            Ok::<_, StoreError>(())
        }
        .await;
        if res.is_err() && backend.get(CONFIG).await.ok().as_deref() != Some(&config_bytes[..]) {
            // Failed before the store existed: take our key file back, so that
            // nothing of this `init` is left to be mistaken for a passphrase.
            if let Some(id) = &store.key_id {
                let _ = backend.delete(&format!("{KEYS}{id}")).await;
            }
        }
        claim.release().await?;
        res?;
        Ok(store)
    }

    /// Opens an existing store, checking its config. For an encrypted store,
    /// `passphrase` is asked for once and must open one of its key files.
    pub async fn open(
        backend: Arc<dyn Backend>,
        passphrase: &(dyn Fn() -> std::result::Result<Zeroizing<String>, crate::crypto::CryptoError>
              + Sync),
    ) -> Result<Store> {
        // From here on the backend writes only into the location it sees now.
        match backend.check_location().await {
            Ok(()) => {}
            // Nothing was pinned before this first look: not there, or not a directory.
            Err(BackendError::Gone { .. }) => {
                return Err(if backend_root_missing(&backend) {
                    StoreError::NoSuchLocation(backend.location())
                } else {
                    StoreError::NotAStore(backend.location())
                })
            }
            Err(e) => return Err(e.into()),
        }
        let bytes = match backend.get(CONFIG).await {
            Ok(b) => b,
            Err(BackendError::NotFound { .. }) => {
                // Tell a missing location from a location that is not a store.
                return Err(match backend.list("").await {
                    Ok(_) if backend_root_missing(&backend) => {
                        StoreError::NoSuchLocation(backend.location())
                    }
                    _ => StoreError::NotAStore(backend.location()),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let config = StoreConfig::decode(&bytes).map_err(|e| {
            let what = format!("{}/config", backend.location());
            match e {
                store_format::FormatError::UnsupportedVersion { .. } => StoreError::format(what, e),
                e => StoreError::Invalid(format!(
                    "{what} is damaged ({e}): the store cannot be used without its config. Put back a copy \
                     of that file (every key file is bound to its exact bytes, so only the original opens the store)"
                )),
            }
        })?;
        let mut store = Store::locked(backend, config, bytes);
        match store.config.encryption.as_str() {
            "none" => {
                // A config that says "none" beside key files is a downgrade:
                // refuse, or the next backups would go into the store in the clear.
                if !store.backend.list(KEYS).await?.is_empty() {
                    return Err(StoreError::Invalid(format!(
                        "{}: the config says the store is not encrypted, but it has key files: the config was \
                         replaced (a downgrade attack, or a mix-up of stores); refusing to use it",
                        store.location()
                    )));
                }
            }
            ENCRYPTION_SCHEME => {
                let pass = passphrase()?;
                let (id, master) = keys::unlock(&store, &pass).await?;
                store.objects.keys = Some(Arc::new(StoreKeys::derive(&master)));
                store.master = Some(Arc::new(master));
                store.key_id = Some(id);
            }
            other => {
                return Err(StoreError::Invalid(format!(
                    "unknown encryption {other:?} in the config"
                )))
            }
        }
        Ok(store)
    }

    /// A store whose keys (if it has any) are not loaded yet.
    fn locked(backend: Arc<dyn Backend>, config: StoreConfig, config_bytes: Bytes) -> Store {
        let codec = if config.compression.codec == "zstd" {
            object::Codec::Zstd(config.compression.level)
        } else {
            object::Codec::None
        };
        Store {
            backend,
            config: Arc::new(config),
            config_bytes,
            objects: ObjectCodec { codec, keys: None },
            master: None,
            key_id: None,
            shared: Default::default(),
        }
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// Fails with [`BackendError::Gone`] unless this is still the store that
    /// was opened: the backend's location is the same (not moved away, not
    /// unmounted) and its config holds the same bytes. A writer checks this
    /// before it commits anything that makes work visible (a manifest, its
    /// completion event).
    pub async fn check_still_here(&self) -> Result<()> {
        self.backend.check_location().await?;
        let gone = |detail: &str| BackendError::Gone {
            location: self.location(),
            detail: detail.to_string(),
        };
        match self.backend.get(CONFIG).await {
            Ok(b) if b == self.config_bytes => Ok(()),
            Ok(_) => Err(gone(
                "its config is not the one this command opened (another store is there now)",
            )
            .into()),
            Err(BackendError::NotFound { .. }) => {
                Err(gone("its config file is no longer there").into())
            }
            Err(e) => Err(e.into()),
        }
    }
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }
    pub fn config_bytes(&self) -> &[u8] {
        &self.config_bytes
    }
    pub fn location(&self) -> String {
        self.backend.location()
    }
    pub fn is_encrypted(&self) -> bool {
        self.objects.keys.is_some()
    }
    /// The store's keys, when it is encrypted.
    pub fn keys(&self) -> Option<&StoreKeys> {
        self.objects.keys.as_deref()
    }
    pub fn master_key(&self) -> Option<&[u8; 32]> {
        self.master.as_deref().map(|m| &**m)
    }
    /// The key file that opened this store.
    pub fn key_id(&self) -> Option<&str> {
        self.key_id.as_deref()
    }
    /// This store's chunker: its parameters, seeded by its key when encrypted.
    pub fn chunker(&self) -> chunker::Chunker {
        chunker::Chunker::with_seed(
            &self.config.chunker,
            self.keys().map(|k| k.chunker_seed()).unwrap_or(0),
        )
    }

    /// How this store makes and reads objects (compression, keys).
    pub fn object_codec(&self) -> &ObjectCodec {
        &self.objects
    }
    pub fn codec(&self) -> object::Codec {
        self.objects.codec
    }

    /// The file bytes of a new object (fresh nonce when encrypted).
    pub fn encode_object(&self, kind: ObjectKind, plaintext: &[u8]) -> (ObjectId, Vec<u8>) {
        let id = self.objects.id_of(plaintext);
        (
            id,
            self.objects
                .encode(kind, &id, plaintext, &crate::crypto::random_nonce()),
        )
    }

    /// Reads an object and checks it against its id. Objects that the collector
    /// has set aside in `trash/` but not yet deleted are still found.
    pub async fn read_object(&self, id: &ObjectId) -> Result<(ObjectKind, Vec<u8>)> {
        let bytes = self.read_object_bytes(id).await?;
        let (id2, codec) = (*id, self.objects.clone());
        tokio::task::spawn_blocking(move || codec.decode(&bytes, &id2))
            .await
            .map_err(|e| StoreError::Invalid(format!("decoder task failed: {e}")))?
            .map_err(|source| StoreError::bad_object(id.to_hex(), source))
    }

    pub async fn read_object_bytes(&self, id: &ObjectId) -> Result<Bytes> {
        // A collector may move the object between `objects/` and `trash/`
        // while we look; look again a few times before calling it missing.
        for _ in 0..3 {
            match self.backend.get(&object_path(id)).await {
                Ok(b) => return Ok(b),
                Err(BackendError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            if let Some(path) = gc::find_in_trash(self, id).await? {
                match self.backend.get(&path).await {
                    Ok(b) => return Ok(b),
                    Err(BackendError::NotFound { .. }) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Err(StoreError::MissingObject { id: id.to_hex() })
    }

    /// Encodes and writes one object (no dedup check). Returns its encoded size.
    pub async fn write_object(
        &self,
        kind: ObjectKind,
        plaintext: &[u8],
    ) -> Result<(ObjectId, u64)> {
        let (id, bytes) = self.encode_object(kind, plaintext);
        let n = bytes.len() as u64;
        self.backend
            .put(&object_path(&id), Bytes::from(bytes))
            .await?;
        Ok((id, n))
    }

    pub async fn read_manifest(&self, id: &ObjectId) -> Result<Manifest> {
        let bytes = self
            .backend
            .get(&manifest_path(id))
            .await
            .map_err(|e| match e {
                BackendError::NotFound { .. } => {
                    StoreError::Invalid(format!("manifest {id} is missing"))
                }
                e => e.into(),
            })?;
        let (kind, plain) = self
            .objects
            .decode(&bytes, id)
            .map_err(|source| StoreError::bad_object(format!("manifest {id}"), source))?;
        if kind != ObjectKind::Manifest {
            return Err(StoreError::Invalid(format!(
                "manifests/{id} holds a {kind:?} object, not a manifest"
            )));
        }
        Manifest::decode_plaintext(&plain)
            .map_err(|e| StoreError::format(format!("manifest {id}"), e))
    }

    /// Removes a backup: records `BackupForgotten`, then deletes its manifest.
    /// (In that order: a crash in between leaves a manifest that is kept
    /// conservatively, never a completed backup without its manifest.)
    pub async fn forget_backup(&self, manifest: &ObjectId, reason: &str) -> Result<()> {
        let m = self.read_manifest(manifest).await?;
        journal::append(
            self,
            store_format::Event::BackupForgotten(store_format::event::BackupForgotten {
                backup_id: m.backup_id,
                manifest: *manifest,
                reason: reason.to_string(),
            }),
        )
        .await?;
        self.backend.delete(&manifest_path(manifest)).await?;
        self.backend.sync().await?;
        Ok(())
    }

    /// Every manifest id in the store, sorted.
    pub async fn list_manifest_ids(&self) -> Result<Vec<ObjectId>> {
        let mut ids = Vec::new();
        for e in self.backend.list(MANIFESTS).await? {
            let name = &e.path[MANIFESTS.len()..];
            if let Ok(id) = ObjectId::from_hex(name) {
                ids.push(id);
            }
        }
        ids.sort();
        Ok(ids)
    }
}

/// Refuses a location that holds a store, or anything but `ours` (the claim
/// of the `init` that is checking).
async fn refuse_unless_empty(backend: &Arc<dyn Backend>, ours: Option<&str>) -> Result<()> {
    match backend.stat(CONFIG).await {
        Ok(_) => return Err(StoreError::AlreadyAStore(backend.location())),
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.into()),
    }
    let present: Vec<_> = match backend.list("").await {
        Ok(p) => p,
        // A directory that does not exist yet is empty (init makes it).
        Err(e) if e.is_not_found() => vec![],
        Err(e) => return Err(e.into()),
    }
    .into_iter()
    .filter(|e| Some(e.path.as_str()) != ours)
    .collect();
    if present.is_empty() {
        return Ok(());
    }
    if present.iter().any(|e| e.path == lock::INIT_LOCK) {
        if lock::init_lock_live(backend.as_ref()).await? == Some(false) {
            return Err(StoreError::Invalid(format!(
                "{loc}: an interrupted `init` left {l} (and perhaps key files in keys/) but no config; \
                 delete {l} and keys/ and run init again",
                loc = backend.location(),
                l = lock::INIT_LOCK
            )));
        }
        return Err(another_init(backend));
    }
    if present.iter().all(|e| e.path.starts_with(KEYS)) {
        return Err(StoreError::Invalid(format!(
            "{}: an interrupted `init` left key files but no config; delete its keys/ folder and run init again",
            backend.location()
        )));
    }
    Err(StoreError::NotEmpty(backend.location()))
}

fn another_init(backend: &Arc<dyn Backend>) -> StoreError {
    StoreError::Invalid(format!(
        "another init is creating a store at {} right now; nothing was written",
        backend.location()
    ))
}

fn backend_root_missing(backend: &Arc<dyn Backend>) -> bool {
    let loc = backend.location();
    !loc.starts_with("s3://") && !std::path::Path::new(&loc).exists()
}
