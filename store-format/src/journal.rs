//! Journal records: one file per event under `journal/`, named by its sequence
//! number (20 decimal digits). Framed (see [`crate::frame`]) with magic `ARKJ`.
//! Each record carries the hash of the previous record's file bytes, so the
//! journal is a hash chain: a missing, reordered or altered record breaks it.
use crate::error::{FormatError, Result};
use crate::event::Event;
use crate::frame;
use serde::{Deserialize, Serialize};

pub const MAGIC: &[u8; 4] = b"ARKJ";
pub const RECORD_VERSION: u32 = 1;
/// `prev` of the first record (sequence 1).
pub const GENESIS: [u8; 32] = [0u8; 32];

#[derive(Debug, Clone, PartialEq)]
pub struct JournalRecord {
    pub seq: u64,
    /// BLAKE3-256 of the previous record's file bytes; [`GENESIS`] for seq 1.
    pub prev: [u8; 32],
    pub time_ms: i64,
    /// Who wrote it: `host:pid`.
    pub writer: String,
    pub event: Event,
}

#[derive(Serialize, Deserialize)]
struct Wire {
    record_version: u32,
    seq: u64,
    #[serde(with = "serde_bytes")]
    prev: Vec<u8>,
    time_ms: i64,
    writer: String,
    event_type: String,
    event_version: u16,
    #[serde(with = "serde_bytes")]
    event: Vec<u8>,
}

impl JournalRecord {
    pub fn encode(&self) -> Vec<u8> {
        let (kind, version) = self.event.kind_version();
        let w = Wire {
            record_version: RECORD_VERSION,
            seq: self.seq,
            prev: self.prev.to_vec(),
            time_ms: self.time_ms,
            writer: self.writer.clone(),
            event_type: kind.to_string(),
            event_version: version,
            event: self.event.encode_body(),
        };
        frame::encode(MAGIC, &frame::to_msgpack(&w))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let body = frame::decode(MAGIC, "journal frame", bytes)?;
        #[derive(Deserialize)]
        struct VersionOnly {
            record_version: u32,
        }
        let v: VersionOnly = frame::from_msgpack(body)?;
        if v.record_version > RECORD_VERSION || v.record_version == 0 {
            return Err(FormatError::UnsupportedVersion {
                what: "journal record",
                found: v.record_version,
                supported: RECORD_VERSION,
            });
        }
        let w: Wire = frame::from_msgpack(body)?;
        frame::check_len("journal writer", w.writer.len(), frame::MAX_TEXT)?;
        frame::check_len("event type", w.event_type.len(), frame::MAX_TEXT)?;
        frame::check_len("event body", w.event.len(), frame::MAX_EVENT_BODY)?;
        if w.seq == 0 {
            return Err(FormatError::Invalid("journal sequence numbers start at 1".into()));
        }
        let prev: [u8; 32] = w
            .prev
            .as_slice()
            .try_into()
            .map_err(|_| FormatError::Invalid(format!("prev hash has {} bytes, not 32", w.prev.len())))?;
        let event = Event::decode(&w.event_type, w.event_version, &w.event)?;
        Ok(JournalRecord { seq: w.seq, prev, time_ms: w.time_ms, writer: w.writer, event })
    }

    /// The hash the next record must carry as `prev`.
    pub fn hash_of_encoded(bytes: &[u8]) -> [u8; 32] {
        *blake3::hash(bytes).as_bytes()
    }

    /// The file name of the record with this sequence number.
    pub fn file_name(seq: u64) -> String {
        format!("{seq:020}")
    }

    pub fn parse_file_name(name: &str) -> Option<u64> {
        if name.len() == 20 && name.bytes().all(|b| b.is_ascii_digit()) {
            name.parse().ok()
        } else {
            None
        }
    }
}
