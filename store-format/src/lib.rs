//! The n8n-ark store format: every byte that n8n-ark writes into a store is
//! produced and parsed here. This crate is pure: no I/O, no async, no clock.
//!
//! `SPEC.md` beside this crate is the normative description; the code follows it.
//! Every decoder returns [`FormatError`] on bad input and never panics (fuzzed in
//! `fuzz/`).

pub mod config;
pub mod contents;
pub mod crypto;
pub mod error;
pub mod event;
pub mod frame;
pub mod id;
pub mod journal;
pub mod keyfile;
pub mod lock;
pub mod manifest;
pub mod object;

pub use config::{ChunkerParams, CompressionParams, StoreConfig, FORMAT_VERSION};
pub use contents::Contents;
pub use crypto::StoreKeys;
pub use error::FormatError;
pub use event::Event;
pub use id::ObjectId;
pub use journal::JournalRecord;
pub use keyfile::{KdfParams, KeyFile};
pub use lock::LockRecord;
pub use manifest::{ChunkRef, Item, ItemKind, Manifest};
pub use object::{Codec, ObjectKind};
