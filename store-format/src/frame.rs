//! A checksummed frame around a MessagePack body, used for the config file, lock
//! files and journal records:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic (ASCII, names the file kind) |
//! | 4 | 1 | frame version (1) |
//! | 5 | 3 | reserved, zero |
//! | 8 | 4 | body length N, u32 little-endian |
//! | 12 | N | body (MessagePack) |
//! | 12+N | 32 | BLAKE3-256 of bytes 0..12+N |
use crate::error::{FormatError, Result};

pub const FRAME_VERSION: u8 = 1;
pub const FRAME_HEADER: usize = 12;
pub const FRAME_TRAILER: usize = 32;
/// Frames hold small metadata; anything larger is damage.
pub const MAX_FRAME_BODY: usize = 16 * 1024 * 1024;

/// Frames what it is given; decoders refuse bodies over [`MAX_FRAME_BODY`], and
/// every decoder of a framed type also bounds its fields (see [`check_len`]) so
/// that whatever decodes re-encodes far below that limit.
pub fn encode(magic: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(FRAME_HEADER + body.len() + FRAME_TRAILER);
    out.extend_from_slice(magic);
    out.push(FRAME_VERSION);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
    let sum = blake3::hash(&out);
    out.extend_from_slice(sum.as_bytes());
    out
}

/// Returns the body. `what` names the frame kind in errors.
///
/// The checksum is verified before the version byte and the reserved bytes
/// are trusted: a frame whose version (or reserved bytes) this reader does
/// not know is reported as a newer writer's only when the rest of it is
/// intact (its checksum, computed over the layout every frame version keeps,
/// matches); otherwise it is damage (*checksum mismatch*), however its
/// version byte reads.
pub fn decode<'a>(
    magic: &'static [u8; 4],
    what: &'static str,
    bytes: &'a [u8],
) -> Result<&'a [u8]> {
    if bytes.len() < FRAME_HEADER + FRAME_TRAILER {
        return Err(FormatError::Truncated {
            need: FRAME_HEADER + FRAME_TRAILER,
            have: bytes.len(),
        });
    }
    if &bytes[0..4] != magic {
        return Err(FormatError::BadMagic {
            expected: std::str::from_utf8(magic).unwrap_or("?"),
            found: bytes[0..4].to_vec(),
        });
    }
    let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
    if len > MAX_FRAME_BODY {
        return Err(FormatError::TooLarge {
            declared: len as u64,
            limit: MAX_FRAME_BODY as u64,
        });
    }
    let total = FRAME_HEADER + len + FRAME_TRAILER;
    if bytes.len() < total {
        return Err(FormatError::Truncated {
            need: total,
            have: bytes.len(),
        });
    }
    if bytes.len() > total {
        return Err(FormatError::LengthMismatch {
            declared: total as u64,
            actual: bytes.len() as u64,
        });
    }
    let sum = blake3::hash(&bytes[..FRAME_HEADER + len]);
    if sum.as_bytes() != &bytes[FRAME_HEADER + len..] {
        return Err(FormatError::ChecksumMismatch);
    }
    // Intact: what the version and reserved bytes say was written on purpose.
    if bytes[4] != FRAME_VERSION {
        return Err(FormatError::UnsupportedVersion {
            what,
            found: bytes[4] as u32,
            supported: FRAME_VERSION as u32,
        });
    }
    if bytes[5..8] != [0, 0, 0] {
        return Err(FormatError::ReservedFlags(bytes[5] | bytes[6] | bytes[7]));
    }
    Ok(&bytes[FRAME_HEADER..FRAME_HEADER + len])
}

pub(crate) fn to_msgpack<T: serde::Serialize>(v: &T) -> Vec<u8> {
    rmp_serde::to_vec_named(v).expect("serializing plain data to MessagePack cannot fail")
}

pub(crate) fn from_msgpack<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T> {
    rmp_serde::from_slice(body).map_err(|e| FormatError::Encoding(e.to_string()))
}

/// Field size limits of framed types: a text field at most [`MAX_TEXT`] bytes,
/// an event body at most [`MAX_EVENT_BODY`].
pub const MAX_TEXT: usize = 4096;
pub const MAX_EVENT_BODY: usize = 4 * 1024 * 1024;

pub(crate) fn check_len(what: &str, len: usize, max: usize) -> Result<()> {
    if len > max {
        return Err(FormatError::Invalid(format!(
            "{what}: {len} bytes, limit {max}"
        )));
    }
    Ok(())
}

/// Reads only the version field of a MessagePack map (whichever of the known
/// version field names it has) and refuses a version this reader does not know,
/// before anything else is parsed: a future body with other fields then reports
/// "too new, upgrade" rather than a field error.
pub(crate) fn check_version(body: &[u8], what: &'static str, supported: u32) -> Result<()> {
    #[derive(serde::Deserialize)]
    struct VersionOnly {
        #[serde(
            alias = "format_version",
            alias = "manifest_version",
            alias = "record_version",
            alias = "keyfile_version"
        )]
        version: u32,
    }
    let v: VersionOnly = from_msgpack(body)?;
    if v.version > supported || v.version == 0 {
        return Err(FormatError::UnsupportedVersion {
            what,
            found: v.version,
            supported,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reseal(b: &mut [u8]) {
        let n = b.len();
        let sum = blake3::hash(&b[..n - FRAME_TRAILER]);
        b[n - FRAME_TRAILER..].copy_from_slice(sum.as_bytes());
    }

    #[test]
    fn a_flipped_version_or_reserved_byte_is_damage_unless_the_frame_is_intact() {
        let good = encode(b"ARKT", b"\x80");
        assert_eq!(decode(b"ARKT", "test frame", &good).unwrap(), b"\x80");
        for (at, to) in [(4, 2u8), (4, 0), (4, 0x81), (5, 1), (7, 0x80)] {
            let mut b = good.clone();
            b[at] = to;
            assert_eq!(
                decode(b"ARKT", "test frame", &b).unwrap_err(),
                FormatError::ChecksumMismatch,
                "byte {at} = {to:#x}, checksum not matching"
            );
            reseal(&mut b);
            let e = decode(b"ARKT", "test frame", &b).unwrap_err();
            if at == 4 {
                assert_eq!(
                    e,
                    FormatError::UnsupportedVersion {
                        what: "test frame",
                        found: to as u32,
                        supported: 1
                    }
                );
                assert!(e.to_string().contains("upgrade"), "{e}");
            } else {
                assert_eq!(e, FormatError::ReservedFlags(to));
            }
        }
    }
}
