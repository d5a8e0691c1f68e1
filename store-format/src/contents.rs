//! What a backup holds, described for browsing without loading it: the
//! `contents` of a manifest. Plain data (MessagePack maps with named fields, so
//! readers skip fields they do not know and default the ones an older writer
//! did not write). Nothing here is secret-free by accident: credential *data*
//! and the n8n encryption key are never recorded, only names, types and a keyed
//! fingerprint.
use crate::id::ObjectId;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Contents {
    /// One entry per database dumped in this backup, each from its own snapshot.
    pub databases: Vec<Database>,
    /// The item holding `pg_dumpall --globals-only` (roles, their grants,
    /// tablespaces), when the backup covers a whole server.
    pub globals_item: Option<String>,
    /// Every workflow, each stored whole as one canonical JSON object.
    pub workflows: Vec<Workflow>,
    /// The workflows that were read but could not be put in canonical form
    /// (see SPEC.md §8.1): named, with why. The backup went on without them;
    /// a database dump of the same backup still holds their rows. Absent
    /// (not written) when there are none, so manifests without any encode as
    /// they did before the field existed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub workflows_not_stored: Vec<WorkflowNotStored>,
    /// Where the workflows were read: `postgres:<database>` (in the dump's
    /// snapshot) or `n8n-api:<base url>`.
    pub workflow_source: Option<String>,
    /// Every credential's id, name and type (never its data).
    pub credentials: Vec<Credential>,
    /// Every configured config path, including the ones found missing.
    pub config_files: Vec<ConfigFile>,
    /// A keyed BLAKE3 of `N8N_ENCRYPTION_KEY` (see SPEC.md), hex; lets a restore
    /// tell whether a target instance can decrypt the backed-up credentials.
    pub encryption_key_fingerprint: Option<String>,
    /// Where that key was found (a config file path, or `environment`).
    pub encryption_key_source: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Database {
    pub name: String,
    /// `server_version` as the server reports it, e.g. `15.8 (Debian 15.8-1)`.
    pub server_version: String,
    /// `server_version_num`, e.g. 150008.
    pub server_version_num: u32,
    /// The version line of the pg_dump that wrote the dump.
    pub pg_dump_version: String,
    /// Where the dump ran: `local:<path>` or `docker:<container>`.
    pub pg_dump_runner: String,
    /// The manifest item holding the dump (`pg_dump -Fc -Z0`).
    pub dump_item: String,
    /// `custom` (pg_dump -Fc).
    pub dump_format: String,
    /// The exported snapshot both this description and the dump were read in.
    pub snapshot: String,
    /// True for the n8n database (its workflows and credentials are described).
    pub is_n8n: bool,
    /// The newest applied n8n migration (`migrations.name` of the highest
    /// timestamp), when the database has n8n's `migrations` table.
    pub migration_head: Option<String>,
    /// Every ordinary and partitioned table outside the system schemas.
    pub tables: Vec<Table>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Table {
    pub schema: String,
    pub name: String,
    /// Exact (`count(*)` in the snapshot).
    pub rows: u64,
    pub columns: Vec<Column>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Column {
    pub name: String,
    /// As `format_type` prints it, e.g. `character varying(36)`.
    pub data_type: String,
    pub nullable: bool,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Workflow {
    pub id: String,
    pub name: String,
    pub active: bool,
    pub archived: bool,
    /// Tag names, sorted.
    pub tags: Vec<String>,
    /// In the workflow's order.
    pub nodes: Vec<Node>,
    /// Node credential references, deduplicated, sorted.
    pub credentials: Vec<CredentialRef>,
    /// ISO 8601, UTC, milliseconds.
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub version_id: Option<String>,
    /// The manifest item (a blob) holding the canonical JSON.
    pub item: String,
    /// Its object id (equals the item's one chunk).
    pub object: ObjectId,
    pub size: u64,
}

/// A workflow a backup read but could not store (see
/// [`Contents::workflows_not_stored`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkflowNotStored {
    /// Its id as its source gave it (empty when not even that could be read).
    pub id: String,
    /// Its name as its source gave it (empty when it had none).
    pub name: String,
    /// Why it could not be put in canonical form, for the operator.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Node {
    pub name: String,
    pub node_type: String,
    /// BLAKE3 of the node's canonical JSON, first 16 bytes, hex: tells a
    /// changed node from an unchanged one across backups.
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CredentialRef {
    pub credential_type: String,
    pub id: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Credential {
    pub id: String,
    pub name: String,
    pub credential_type: String,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileType {
    #[default]
    File,
    Directory,
    Symlink,
    /// Configured but absent when the backup ran (only optional paths).
    Missing,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfigFile {
    /// Absolute path on the backed-up machine, normalised (no `.`, `..` or
    /// empty components). When the path is not UTF-8, its readable form:
    /// every byte that is not part of valid UTF-8 written as `\xNN`; the
    /// exact bytes are then in `path_bytes`.
    pub path: String,
    /// The path's exact bytes, present only when they are not UTF-8 (file
    /// names on Linux are bytes). Readers that know the field use it in
    /// place of `path`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_bytes")]
    pub path_bytes: Option<Vec<u8>>,
    pub file_type: FileType,
    /// Whether the operator required it (a required path that is missing or
    /// unreadable fails the backup).
    pub required: bool,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime_ms: i64,
    /// Bytes (files only).
    pub size: u64,
    /// BLAKE3 of the content, hex (files only).
    pub checksum: Option<String>,
    /// A symlink's target, as written (not resolved), whatever it points at.
    /// When the target is not UTF-8, its readable form (as `path`).
    pub link_target: Option<String>,
    /// A symlink target's exact bytes, present only when they are not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_bytes")]
    pub link_target_bytes: Option<Vec<u8>>,
    /// The manifest item holding the content (files only).
    pub item: Option<String>,
}

impl Contents {
    pub fn is_empty(&self) -> bool {
        self == &Contents::default()
    }
}

impl ConfigFile {
    /// The recorded path's exact bytes: `path_bytes` when present, else
    /// `path`.
    pub fn path_raw(&self) -> &[u8] {
        self.path_bytes.as_deref().unwrap_or(self.path.as_bytes())
    }

    /// A symlink target's exact bytes: `link_target_bytes` when present,
    /// else `link_target`.
    pub fn link_target_raw(&self) -> Option<&[u8]> {
        self.link_target_bytes
            .as_deref()
            .or(self.link_target.as_deref().map(str::as_bytes))
    }
}

/// The readable form of a path's bytes: itself when it is UTF-8, else every
/// byte that is not part of valid UTF-8 written as `\xNN` (as the manifest's
/// `path` holds it).
pub fn readable_path(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// `Option<Vec<u8>>` as MessagePack bin (not an array of integers).
mod opt_bytes {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_bytes(b),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Ok(Option::<serde_bytes::ByteBuf>::deserialize(d)?.map(|b| b.into_vec()))
    }
}
