//! Lock records: files under `locks/` that say a process is working on the store.
//! Framed with magic `ARKL`. A lock is live while its heartbeat is fresh; see SPEC.md.
use crate::error::Result;
use crate::frame;
use serde::{Deserialize, Serialize};

pub const MAGIC: &[u8; 4] = b"ARKL";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    /// `backup` (a session that adds objects) or `gc` (the collector).
    pub kind: String,
    pub host: String,
    pub pid: u32,
    pub created_ms: i64,
    /// Rewritten by the holder at least every `refresh_ms`.
    pub heartbeat_ms: i64,
    /// The holder promises a heartbeat at least this often.
    pub refresh_ms: i64,
    /// The backup a `backup` session belongs to, so that the next writer
    /// that finds the lock stale can record that backup as interrupted.
    /// Absent for other locks (and in locks of older writers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
}

impl LockRecord {
    pub fn encode(&self) -> Vec<u8> {
        frame::encode(MAGIC, &frame::to_msgpack(self))
    }
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let r: LockRecord = frame::from_msgpack(frame::decode(MAGIC, "lock frame", bytes)?)?;
        frame::check_len("lock kind", r.kind.len(), frame::MAX_TEXT)?;
        frame::check_len("lock host", r.host.len(), frame::MAX_TEXT)?;
        if let Some(b) = &r.backup_id {
            frame::check_len("lock backup id", b.len(), frame::MAX_TEXT)?;
        }
        Ok(r)
    }
}
