//! A manifest describes one backup: what it holds and which objects hold it.
//! Stored as an object of kind `manifest` (so its id is the BLAKE3 of its
//! plaintext) under `manifests/`. The plaintext is a MessagePack map (field
//! names as keys, so readers ignore fields they do not know).
use crate::contents::Contents;
use crate::error::{FormatError, Result};
use crate::frame;
use crate::id::ObjectId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const MANIFEST_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub manifest_version: u32,
    /// Unique, sortable by time: `YYYYMMDDTHHMMSSZ-` + 8 hex digits.
    pub backup_id: String,
    /// The backup kind (`postgres_full`, `flows`, ..., or `ingest` for a raw stream).
    pub kind: String,
    pub host: String,
    pub started_ms: i64,
    pub finished_ms: i64,
    pub items: Vec<Item>,
    /// Free-form labels (string to string), e.g. the source of an ingest.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// What the backup holds, for browsing without loading it (databases,
    /// workflows, credentials, config files). Absent in raw ingests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contents: Option<Contents>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// Unique within the manifest, `/`-separated, e.g. `db/n8n.dump`.
    pub name: String,
    pub kind: ItemKind,
    /// Logical size: the sum of the chunk lengths.
    pub size: u64,
    /// In order; concatenating the chunks' plaintexts yields the item.
    pub chunks: Vec<ChunkRef>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    /// A stream cut into content-defined chunks.
    Stream,
    /// A small thing stored whole as one object (e.g. a workflow's JSON).
    Blob,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRef {
    pub id: ObjectId,
    /// Plaintext length of the chunk.
    pub len: u32,
}

impl Manifest {
    pub fn encode_plaintext(&self) -> Vec<u8> {
        frame::to_msgpack(self)
    }

    pub fn decode_plaintext(bytes: &[u8]) -> Result<Self> {
        frame::check_version(bytes, "manifest", MANIFEST_VERSION)?;
        let m: Manifest = frame::from_msgpack(bytes)?;
        m.validate()?;
        Ok(m)
    }

    /// Invariants a reader relies on.
    pub fn validate(&self) -> Result<()> {
        let mut names = std::collections::HashSet::new();
        for it in &self.items {
            if !names.insert(it.name.as_str()) {
                return Err(FormatError::Invalid(format!(
                    "duplicate item name {:?}",
                    it.name
                )));
            }
            let sum: u64 = it.chunks.iter().map(|c| c.len as u64).sum();
            if sum != it.size {
                return Err(FormatError::Invalid(format!(
                    "item {:?}: size {} but chunks add up to {}",
                    it.name, it.size, sum
                )));
            }
            if it.kind == ItemKind::Blob && it.chunks.len() > 1 {
                return Err(FormatError::Invalid(format!(
                    "blob item {:?} has {} chunks",
                    it.name,
                    it.chunks.len()
                )));
            }
        }
        if let Some(c) = &self.contents {
            let item = |name: &str| self.items.iter().find(|i| i.name == name);
            let missing = |what: &str, name: &str| {
                FormatError::Invalid(format!(
                    "{what} names item {name:?}, which the manifest lacks"
                ))
            };
            for d in &c.databases {
                item(&d.dump_item).ok_or_else(|| missing("database", &d.dump_item))?;
            }
            if let Some(g) = &c.globals_item {
                item(g).ok_or_else(|| missing("globals", g))?;
            }
            for w in &c.workflows {
                let it = item(&w.item).ok_or_else(|| missing("workflow", &w.item))?;
                if it.chunks.first().map(|c| c.id) != Some(w.object) || it.size != w.size {
                    return Err(FormatError::Invalid(format!(
                        "workflow {:?}: object or size differs from item {:?}",
                        w.id, w.item
                    )));
                }
            }
            for f in &c.config_files {
                if let Some(name) = &f.item {
                    item(name).ok_or_else(|| missing("config file", name))?;
                }
            }
        }
        Ok(())
    }

    /// Every object this manifest references, in order of first appearance.
    pub fn object_ids(&self) -> impl Iterator<Item = &ObjectId> {
        self.items
            .iter()
            .flat_map(|i| i.chunks.iter().map(|c| &c.id))
    }

    pub fn logical_size(&self) -> u64 {
        self.items.iter().map(|i| i.size).sum()
    }
}
