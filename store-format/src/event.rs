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

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    StoreInitialized(StoreInitialized),
    BackupCompleted(BackupCompleted),
    BackupForgotten(BackupForgotten),
    GcCompleted(GcCompleted),
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
            Event::BackupCompleted(_) => ("BackupCompleted", 1),
            Event::BackupForgotten(_) => ("BackupForgotten", 1),
            Event::GcCompleted(_) => ("GcCompleted", 1),
            Event::Unknown { kind, version, .. } => (kind.as_str(), *version),
        }
    }

    pub fn encode_body(&self) -> Vec<u8> {
        match self {
            Event::StoreInitialized(e) => frame::to_msgpack(e),
            Event::BackupCompleted(e) => frame::to_msgpack(e),
            Event::BackupForgotten(e) => frame::to_msgpack(e),
            Event::GcCompleted(e) => frame::to_msgpack(e),
            Event::Unknown { body, .. } => body.clone(),
        }
    }

    pub fn decode(kind: &str, version: u16, body: &[u8]) -> Result<Event> {
        fn parse<'a, T: Deserialize<'a>>(kind: &str, body: &'a [u8]) -> Result<T> {
            frame::from_msgpack(body).map_err(|e| FormatError::Encoding(format!("{kind}: {e}")))
        }
        Ok(match (kind, version) {
            ("StoreInitialized", 1) => Event::StoreInitialized(parse(kind, body)?),
            ("BackupCompleted", 1) => Event::BackupCompleted(parse(kind, body)?),
            ("BackupForgotten", 1) => Event::BackupForgotten(parse(kind, body)?),
            ("GcCompleted", 1) => Event::GcCompleted(parse(kind, body)?),
            _ => Event::Unknown {
                kind: kind.to_string(),
                version,
                body: body.to_vec(),
            },
        })
    }
}
