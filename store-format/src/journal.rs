//! Journal records: one file per event under `journal/`, named by its sequence
//! number (20 decimal digits). Framed (see [`crate::frame`]) with magic `ARKJ`.
//! Each record carries the hash of the previous record's file bytes, so the
//! journal is a hash chain: a missing, reordered or altered record breaks it.
use crate::crypto::{StoreKeys, NONCE_LEN};
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
    // In the clear when the store is not encrypted:
    #[serde(default, skip_serializing_if = "Option::is_none")]
    time_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    writer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    event_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    event_version: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_bytes")]
    event: Option<Vec<u8>>,
    /// Sealed when the store is encrypted: nonce ‖ XChaCha20-Poly1305(MessagePack
    /// of [`Inner`]) ‖ tag, associated data `ARKJ` ‖ seq (u64 LE) ‖ prev.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_bytes")]
    sealed: Option<Vec<u8>>,
}

/// The part of a record that an encrypted store seals.
#[derive(Serialize, Deserialize)]
struct Inner {
    time_ms: i64,
    writer: String,
    event_type: String,
    event_version: u16,
    #[serde(with = "serde_bytes")]
    event: Vec<u8>,
}

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

fn sealed_aad(seq: u64, prev: &[u8]) -> Vec<u8> {
    let mut a = MAGIC.to_vec();
    a.extend_from_slice(&seq.to_le_bytes());
    a.extend_from_slice(prev);
    a
}

impl JournalRecord {
    fn inner(&self) -> Inner {
        let (kind, version) = self.event.kind_version();
        Inner {
            time_ms: self.time_ms,
            writer: self.writer.clone(),
            event_type: kind.to_string(),
            event_version: version,
            event: self.event.encode_body(),
        }
    }

    /// The record of a store without encryption.
    pub fn encode(&self) -> Vec<u8> {
        let i = self.inner();
        let w = Wire {
            record_version: RECORD_VERSION,
            seq: self.seq,
            prev: self.prev.to_vec(),
            time_ms: Some(i.time_ms),
            writer: Some(i.writer),
            event_type: Some(i.event_type),
            event_version: Some(i.event_version),
            event: Some(i.event),
            sealed: None,
        };
        frame::encode(MAGIC, &frame::to_msgpack(&w))
    }

    /// The record of an encrypted store; `nonce` must be fresh and random.
    pub fn encode_sealed(&self, keys: &StoreKeys, nonce: &[u8; NONCE_LEN]) -> Vec<u8> {
        let inner = frame::to_msgpack(&self.inner());
        let w = Wire {
            record_version: RECORD_VERSION,
            seq: self.seq,
            prev: self.prev.to_vec(),
            time_ms: None,
            writer: None,
            event_type: None,
            event_version: None,
            event: None,
            sealed: Some(keys.seal(nonce, &sealed_aad(self.seq, &self.prev), &inner)),
        };
        frame::encode(MAGIC, &frame::to_msgpack(&w))
    }

    /// Decodes a record of a store without encryption.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        Self::decode_in(bytes, None)
    }

    /// Decodes a record of a store with (`Some`) or without encryption. In an
    /// encrypted store every record must be sealed, and a sealed record must
    /// open under the store's key for exactly its sequence number and `prev`:
    /// a record copied from elsewhere in the journal (a replay) fails.
    pub fn decode_in(bytes: &[u8], keys: Option<&StoreKeys>) -> Result<Self> {
        let body = frame::decode(MAGIC, "journal frame", bytes)?;
        frame::check_version(body, "journal record", RECORD_VERSION)?;
        let w: Wire = frame::from_msgpack(body)?;
        if w.seq == 0 {
            return Err(FormatError::Invalid(
                "journal sequence numbers start at 1".into(),
            ));
        }
        let prev: [u8; 32] = w.prev.as_slice().try_into().map_err(|_| {
            FormatError::Invalid(format!("prev hash has {} bytes, not 32", w.prev.len()))
        })?;
        let inner = match (&w.sealed, keys) {
            (Some(sealed), Some(k)) => {
                let plain = k.open(&sealed_aad(w.seq, &prev), sealed)?;
                frame::from_msgpack::<Inner>(&plain)?
            }
            (Some(_), None) => {
                return Err(FormatError::Invalid(
                    "the journal record is encrypted: the store's key is needed".into(),
                ))
            }
            (None, Some(_)) => return Err(FormatError::AuthenticationFailed),
            (None, None) => match (w.time_ms, w.writer, w.event_type, w.event_version, w.event) {
                (
                    Some(time_ms),
                    Some(writer),
                    Some(event_type),
                    Some(event_version),
                    Some(event),
                ) => Inner {
                    time_ms,
                    writer,
                    event_type,
                    event_version,
                    event,
                },
                _ => {
                    return Err(FormatError::Invalid(
                        "journal record lacks its event".into(),
                    ))
                }
            },
        };
        frame::check_len("journal writer", inner.writer.len(), frame::MAX_TEXT)?;
        frame::check_len("event type", inner.event_type.len(), frame::MAX_TEXT)?;
        frame::check_len("event body", inner.event.len(), frame::MAX_EVENT_BODY)?;
        let event = Event::decode(&inner.event_type, inner.event_version, &inner.event)?;
        Ok(JournalRecord {
            seq: w.seq,
            prev,
            time_ms: inner.time_ms,
            writer: inner.writer,
            event,
        })
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
