//! Events: what the journal records. Each event has a type name and a version;
//! the body is a MessagePack map whose shape the (type, version) pair fixes.
//! Readers keep events of types or versions they do not know as [`Event::Unknown`]
//! so replay never fails on them; older versions of a known type keep decoding.
use crate::error::{FormatError, Result};
use crate::frame;
use crate::id::ObjectId;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreInitialized {
    pub store_id: String,
    pub format_version: u32,
}

/// A backup began. Written before any of its objects; a `BackupStarted` with
/// no `BackupCompleted` or `BackupFailed` after it is a backup that was
/// interrupted (its process stopped): nothing of it is visible.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BackupStarted {
    pub backup_id: String,
    pub kind: String,
    pub host: String,
    /// What it reads, e.g. `postgres:n8n@127.0.0.1:5432`, `config:/opt/n8n/.env`.
    #[serde(default)]
    pub sources: Vec<String>,
    /// Who asked for it: `manual` (a command), `schedule` (the service's
    /// scheduler), `api` (a request to the REST API); absent in records
    /// written before it was recorded. Added within version 1: older readers
    /// ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
}

/// A backup finished and its manifest is durable (version 2; version 1 bodies,
/// which lack `stored_bytes` and the counts, decode with those set to zero).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupCompleted {
    pub backup_id: String,
    pub kind: String,
    /// The manifest object under `manifests/`.
    pub manifest: ObjectId,
    pub logical_bytes: u64,
    /// Encoded bytes of the objects this backup wrote (the new data it added).
    pub new_bytes: u64,
    pub new_objects: u64,
    /// Objects referenced (with repetition removed).
    pub objects: u64,
    pub reused_objects: u64,
    pub duration_ms: u64,
    /// Encoded bytes of every object the backup references (new and reused,
    /// each once): what the backup would occupy alone. Since version 2.
    #[serde(default)]
    pub stored_bytes: u64,
    /// Since version 2.
    #[serde(default)]
    pub counts: BackupCounts,
    /// Set when this record was not written by the backup itself but
    /// recovered afterwards from its intact manifest (its own completion
    /// record was lost with a damaged journal record, or its process stopped
    /// between writing the manifest and recording it): why, for people.
    /// Absent otherwise. Added within version 2: older readers ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BackupCounts {
    pub databases: u64,
    pub tables: u64,
    pub workflows: u64,
    pub credentials: u64,
    pub config_files: u64,
    pub items: u64,
}

/// A backup failed. Nothing of it is visible: no manifest names its objects
/// (a later gc collects the ones no other backup shares).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BackupFailed {
    pub backup_id: String,
    pub kind: String,
    /// Where it failed: `configuration`, `connect`, `snapshot`, `dump`,
    /// `workflows`, `config_files`, `store`, `commit`, ...
    pub stage: String,
    /// What an operator reads to act on it.
    pub message: String,
    pub duration_ms: u64,
    /// Whether trying again later may succeed (a passing fault: a store or
    /// a server that did not answer, a busy sandbox) or not (a setting to
    /// change, damaged data); absent when not known (records written before
    /// it was recorded, failures recorded by another writer). Added within
    /// version 1: older readers ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
    /// Who asked for it: `manual` (a command), `schedule` (the service's
    /// scheduler), `api` (a request to the REST API); absent in records
    /// written before it was recorded. Added within version 1: older readers
    /// ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
}

/// A backup was removed (by retention or by hand); its manifest is deleted
/// after this event, and its objects become garbage unless others share them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupForgotten {
    pub backup_id: String,
    pub manifest: ObjectId,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GcCompleted {
    pub objects_freed: u64,
    pub bytes_freed: u64,
    pub objects_kept: u64,
    pub duration_ms: u64,
}

/// One thing a restore handled: a workflow, a database, a config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestoredItem {
    /// What it is, e.g. `workflow:0iNcgnwjC0dZ9IRp`, `database:n8n`, `file:/opt/n8n/.env`.
    pub name: String,
    /// `restored`, `skipped` or `failed`.
    pub outcome: String,
    /// Where it went or why not (e.g. the new workflow's id, n8n's message,
    /// `credentials missing on the target: …`).
    #[serde(default)]
    pub detail: String,
}

/// A restore ran to its end (some items may have been skipped or failed:
/// `result` is `ok` when none failed, else `partial`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestorePerformed {
    /// Unique, sortable by time, like a backup id.
    pub restore_id: String,
    pub backup_id: String,
    /// `workflow`, `database`, `config` or `full`.
    pub what: String,
    /// Where to, e.g. `dir:/tmp/out`, `n8n:https://n8n.example.com`,
    /// `postgres:n8n_restored@db:5432`, `root:/`.
    pub target: String,
    pub result: String,
    #[serde(default)]
    pub items: Vec<RestoredItem>,
    /// The pinned backup taken of the target before it was overwritten.
    #[serde(default)]
    pub safety_backup: Option<String>,
    pub duration_ms: u64,
}

/// A restore stopped before its end. `message` says what failed and how to
/// go back (e.g. restore the safety backup).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RestoreFailed {
    pub restore_id: String,
    pub backup_id: String,
    pub what: String,
    pub target: String,
    /// Where it stopped: `configuration`, `check`, `safety_backup`, `stop`,
    /// `database`, `config`, `start`, `health`, `verify`, ...
    pub stage: String,
    pub message: String,
    /// What was handled before it stopped.
    #[serde(default)]
    pub items: Vec<RestoredItem>,
    #[serde(default)]
    pub safety_backup: Option<String>,
    pub duration_ms: u64,
    /// Whether trying again later may succeed (a passing fault: a store or
    /// a server that did not answer, a busy sandbox) or not (a setting to
    /// change, damaged data); absent when not known (records written before
    /// it was recorded, failures recorded by another writer). Added within
    /// version 1: older readers ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
    /// Who asked for it: `manual` (a command), `schedule` (the service's
    /// scheduler), `api` (a request to the REST API); absent in records
    /// written before it was recorded. Added within version 1: older readers
    /// ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
}

/// One check of a verification that did not hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerificationCheck {
    /// What was checked: `object_present`, `object_hash`, `table_present`,
    /// `columns`, `row_count`, `workflow_object`, `config_file`,
    /// `migration_head`, `credential_decrypt`, ...
    pub check: String,
    /// What it was about: an object id, `n8n.public.execution_entity`, a
    /// workflow id and name, a config path.
    pub subject: String,
    pub expected: String,
    pub found: String,
}

/// A verification ran to its end: `passed` when every check held, else the
/// checks that did not (`failures`, each with what was expected and found).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerificationCompleted {
    /// Unique, sortable by time (the form of a backup id).
    pub verification_id: String,
    pub backup_id: String,
    /// `exists`, `data` or `restore`.
    pub level: String,
    pub passed: bool,
    pub checks_run: u64,
    #[serde(default)]
    pub failures: Vec<VerificationCheck>,
    /// The sandbox a `restore` verification used, for people.
    #[serde(default)]
    pub sandbox: Option<String>,
    pub duration_ms: u64,
}

/// One journal problem a repair acknowledges (see [`JournalRepaired`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepairedRecord {
    /// The first sequence number concerned.
    pub seq: u64,
    /// The last one (equal to `seq` but for a gap of several records).
    pub through: u64,
    /// What was wrong: `damaged`, `torn`, `missing`, `unfinished_claim`,
    /// `tampered`, `misnumbered`, `chain_broken`.
    pub problem: String,
    /// BLAKE3-256 of the file's bytes as the repair found them; absent when
    /// there was no file (missing) or an empty one (unfinished claim). A file
    /// that changes again after the repair is a new problem.
    #[serde(default, with = "crate::event::opt_id_bytes")]
    pub file_hash: Option<[u8; 32]>,
}

/// The journal was repaired: the problems listed were found, what the store
/// still proves was recorded again by the records just before this one (e.g.
/// a `BackupCompleted` with `recovered` set, from an intact manifest), and the
/// rest is named as lost. Nothing is rewritten or deleted: a reader that
/// meets a listed problem again, unchanged, reports it as repaired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalRepaired {
    /// Unique, sortable by time (the form of a backup id).
    pub repair_id: String,
    pub problems: Vec<RepairedRecord>,
    /// What the repair recorded again, for people (`backup <id>: completed,
    /// from its manifest`, `backup <id>: failed: interrupted`).
    #[serde(default)]
    pub recovered: Vec<String>,
    /// What could not be recovered, for people (`record 3: its event is lost;
    /// no manifest or other record tells what it was`).
    #[serde(default)]
    pub lost: Vec<String>,
    /// Who ran it (`user@host`).
    #[serde(default)]
    pub repaired_by: String,
}

/// A verification could not run to its end (no sandbox could be made, the
/// store could not be read, ...): the backup is neither proven nor disproven.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VerificationFailed {
    pub verification_id: String,
    pub backup_id: String,
    pub level: String,
    /// Where it stopped: `sandbox`, `store`, `load`, `query`, ...
    pub stage: String,
    pub message: String,
    pub duration_ms: u64,
    /// Whether trying again later may succeed (a passing fault: a store or
    /// a server that did not answer, a busy sandbox) or not (a setting to
    /// change, damaged data); absent when not known (records written before
    /// it was recorded, failures recorded by another writer). Added within
    /// version 1: older readers ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
    /// Who asked for it: `manual` (a command), `schedule` (the service's
    /// scheduler), `api` (a request to the REST API); absent in records
    /// written before it was recorded. Added within version 1: older readers
    /// ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
}

/// One rule of the verification policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerificationRule {
    /// `exists`, `data` or `restore`.
    pub level: String,
    /// `after_backup` (each new backup), `every_n_backups` (every `n`th),
    /// `percent` (each new backup with probability `percent`/100),
    /// `daily`, `weekly` (the newest backup, when the last such verification
    /// is older than a day / a week), `manual` (never by itself).
    pub schedule: String,
    #[serde(default)]
    pub n: Option<u32>,
    #[serde(default)]
    pub percent: Option<u8>,
}

/// The verification policy was set (it replaces the previous one whole).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerificationPolicySet {
    pub rules: Vec<VerificationRule>,
    /// Who set it, for people (`user@host`).
    #[serde(default)]
    pub set_by: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    StoreInitialized(StoreInitialized),
    BackupStarted(BackupStarted),
    BackupCompleted(BackupCompleted),
    BackupFailed(BackupFailed),
    BackupForgotten(BackupForgotten),
    GcCompleted(GcCompleted),
    RestorePerformed(RestorePerformed),
    RestoreFailed(RestoreFailed),
    VerificationCompleted(VerificationCompleted),
    VerificationFailed(VerificationFailed),
    VerificationPolicySet(VerificationPolicySet),
    JournalRepaired(JournalRepaired),
    /// A type or version this reader does not know; kept as it was.
    Unknown {
        kind: String,
        version: u16,
        body: Vec<u8>,
    },
}

impl Event {
    /// The (type, version) this reader writes for each event.
    pub fn kind_version(&self) -> (&str, u16) {
        match self {
            Event::StoreInitialized(_) => ("StoreInitialized", 1),
            Event::BackupStarted(_) => ("BackupStarted", 1),
            Event::BackupCompleted(_) => ("BackupCompleted", 2),
            Event::BackupFailed(_) => ("BackupFailed", 1),
            Event::BackupForgotten(_) => ("BackupForgotten", 1),
            Event::GcCompleted(_) => ("GcCompleted", 1),
            Event::RestorePerformed(_) => ("RestorePerformed", 1),
            Event::RestoreFailed(_) => ("RestoreFailed", 1),
            Event::VerificationCompleted(_) => ("VerificationCompleted", 1),
            Event::VerificationFailed(_) => ("VerificationFailed", 1),
            Event::VerificationPolicySet(_) => ("VerificationPolicySet", 1),
            Event::JournalRepaired(_) => ("JournalRepaired", 1),
            Event::Unknown { kind, version, .. } => (kind.as_str(), *version),
        }
    }

    pub fn encode_body(&self) -> Vec<u8> {
        match self {
            Event::StoreInitialized(e) => frame::to_msgpack(e),
            Event::BackupStarted(e) => frame::to_msgpack(e),
            Event::BackupCompleted(e) => frame::to_msgpack(e),
            Event::BackupFailed(e) => frame::to_msgpack(e),
            Event::BackupForgotten(e) => frame::to_msgpack(e),
            Event::GcCompleted(e) => frame::to_msgpack(e),
            Event::RestorePerformed(e) => frame::to_msgpack(e),
            Event::RestoreFailed(e) => frame::to_msgpack(e),
            Event::VerificationCompleted(e) => frame::to_msgpack(e),
            Event::VerificationFailed(e) => frame::to_msgpack(e),
            Event::VerificationPolicySet(e) => frame::to_msgpack(e),
            Event::JournalRepaired(e) => frame::to_msgpack(e),
            Event::Unknown { body, .. } => body.clone(),
        }
    }

    pub fn decode(kind: &str, version: u16, body: &[u8]) -> Result<Event> {
        fn parse<'a, T: Deserialize<'a>>(kind: &str, body: &'a [u8]) -> Result<T> {
            frame::from_msgpack(body).map_err(|e| FormatError::Encoding(format!("{kind}: {e}")))
        }
        Ok(match (kind, version) {
            ("StoreInitialized", 1) => Event::StoreInitialized(parse(kind, body)?),
            ("BackupStarted", 1) => Event::BackupStarted(parse(kind, body)?),
            // Version 1 is version 2 without `stored_bytes` and `counts`: the
            // fields default (an upcast); it is re-encoded as version 2.
            ("BackupCompleted", 1 | 2) => Event::BackupCompleted(parse(kind, body)?),
            ("BackupFailed", 1) => Event::BackupFailed(parse(kind, body)?),
            ("BackupForgotten", 1) => Event::BackupForgotten(parse(kind, body)?),
            ("GcCompleted", 1) => Event::GcCompleted(parse(kind, body)?),
            ("RestorePerformed", 1) => Event::RestorePerformed(parse(kind, body)?),
            ("RestoreFailed", 1) => Event::RestoreFailed(parse(kind, body)?),
            ("VerificationCompleted", 1) => Event::VerificationCompleted(parse(kind, body)?),
            ("VerificationFailed", 1) => Event::VerificationFailed(parse(kind, body)?),
            ("VerificationPolicySet", 1) => Event::VerificationPolicySet(parse(kind, body)?),
            ("JournalRepaired", 1) => Event::JournalRepaired(parse(kind, body)?),
            _ => Event::Unknown {
                kind: kind.to_string(),
                version,
                body: body.to_vec(),
            },
        })
    }
}

/// `Option<[u8; 32]>` as a MessagePack `bin` of 32 bytes, or nil.
pub(crate) mod opt_id_bytes {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_bytes(b),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u8; 32]>, D::Error> {
        match Option::<serde_bytes::ByteBuf>::deserialize(d)? {
            None => Ok(None),
            Some(b) => <[u8; 32]>::try_from(b.as_slice())
                .map(Some)
                .map_err(|_| serde::de::Error::invalid_length(b.len(), &"32 bytes")),
        }
    }
}
