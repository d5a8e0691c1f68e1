use crate::error::{FormatError, Result};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The id of an object: BLAKE3-256 of its plaintext.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectId(#[serde(with = "serde_bytes")] pub [u8; 32]);

impl ObjectId {
    pub fn of(plaintext: &[u8]) -> Self {
        ObjectId(*blake3::hash(plaintext).as_bytes())
    }
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }
    pub fn from_hex(s: &str) -> Result<Self> {
        if s.len() != 64 || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(FormatError::Invalid(format!(
                "not a 64-digit hex object id: {s:?}"
            )));
        }
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16)
                .map_err(|e| FormatError::Invalid(e.to_string()))?;
        }
        Ok(ObjectId(out))
    }
    /// Short form for messages.
    pub fn short(&self) -> String {
        self.to_hex()[..12].to_string()
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}
impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({})", self.short())
    }
}
