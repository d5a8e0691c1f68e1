//! Test-decrypting an n8n credential: n8n encrypts `credentials_entity.data`
//! with CryptoJS's passphrase AES, which is OpenSSL's `enc -aes-256-cbc -md md5`
//! format: base64 of `Salted__` ‖ 8-byte salt ‖ AES-256-CBC ciphertext (PKCS#7
//! padding), the key and IV derived by `EVP_BytesToKey` (MD5, one iteration)
//! over passphrase ‖ salt.
//!
//! Nothing here prints or returns the plaintext: [`decrypts_to_json`] only
//! says whether it decrypts and is JSON.
use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
use md5::{Digest, Md5};
use zeroize::Zeroizing;

type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

/// Why a credential did not decrypt (never holds any of its content).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    #[error("its data is not base64")]
    NotBase64,
    #[error("its data does not start with CryptoJS's \"Salted__\" header")]
    NoSaltHeader,
    #[error("its ciphertext is empty or not a whole number of AES blocks")]
    BadLength,
    #[error(
        "it does not decrypt with this key (bad padding: the key is wrong or the data damaged)"
    )]
    WrongKey,
    #[error("it decrypts to something that is not JSON (the key is wrong or the data damaged)")]
    NotJson,
}

/// Standard base64 (with or without padding; whitespace ignored). Errors on
/// any other byte, never panics.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::engine::{
        general_purpose::GeneralPurpose, DecodePaddingMode, GeneralPurposeConfig,
    };
    use base64::Engine;
    const ENGINE: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    ENGINE.decode(compact).ok()
}

/// OpenSSL's `EVP_BytesToKey` with MD5 and one iteration: 32 key bytes and
/// 16 IV bytes.
fn evp_bytes_to_key(pass: &[u8], salt: &[u8]) -> Zeroizing<[u8; 48]> {
    let mut out = Zeroizing::new([0u8; 48]);
    let mut filled = 0;
    let mut prev: Option<[u8; 16]> = None;
    while filled < 48 {
        let mut h = Md5::new();
        if let Some(p) = prev {
            h.update(p);
        }
        h.update(pass);
        h.update(salt);
        let d: [u8; 16] = h.finalize().into();
        let n = (48 - filled).min(16);
        out[filled..filled + n].copy_from_slice(&d[..n]);
        filled += n;
        prev = Some(d);
    }
    out
}

/// Decrypts CryptoJS passphrase-AES `data` with `key`. The plaintext is
/// returned zeroized-on-drop; callers must not print it.
pub fn decrypt(data: &str, key: &str) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
    let raw = base64_decode(data.trim()).ok_or(DecryptError::NotBase64)?;
    if raw.len() < 16 || &raw[..8] != b"Salted__" {
        return Err(DecryptError::NoSaltHeader);
    }
    let (salt, ct) = (&raw[8..16], &raw[16..]);
    if ct.is_empty() || ct.len() % 16 != 0 {
        return Err(DecryptError::BadLength);
    }
    let kiv = evp_bytes_to_key(key.as_bytes(), salt);
    let dec = Aes256CbcDec::new_from_slices(&kiv[..32], &kiv[32..])
        .map_err(|_| DecryptError::BadLength)?;
    let mut buf = Zeroizing::new(ct.to_vec());
    let n = dec
        .decrypt_padded_mut::<Pkcs7>(&mut buf)
        .map_err(|_| DecryptError::WrongKey)?
        .len();
    buf.truncate(n);
    Ok(buf)
}

/// Whether `data` decrypts with `key` to JSON.
pub fn decrypts_to_json(data: &str, key: &str) -> Result<(), DecryptError> {
    let plain = decrypt(data, key)?;
    serde_json::from_slice::<serde::de::IgnoredAny>(&plain)
        .map(|_| ())
        .map_err(|_| DecryptError::NotJson)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes::cipher::BlockEncryptMut;

    type Enc = cbc::Encryptor<aes::Aes256>;

    fn b64(bytes: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn encrypt(plain: &[u8], key: &str, salt: [u8; 8]) -> String {
        let kiv = evp_bytes_to_key(key.as_bytes(), &salt);
        let mut buf = plain.to_vec();
        buf.extend_from_slice(&[0u8; 16]);
        let n = Enc::new_from_slices(&kiv[..32], &kiv[32..])
            .unwrap()
            .encrypt_padded_mut::<Pkcs7>(&mut buf, plain.len())
            .unwrap()
            .len();
        let ct = &buf[..n];
        let mut raw = b"Salted__".to_vec();
        raw.extend_from_slice(&salt);
        raw.extend_from_slice(ct);
        b64(&raw)
    }

    #[test]
    fn openssl_known_answer() {
        // `echo -n '{"a":1}' | openssl enc -aes-256-cbc -md md5 -S 0102030405060708 -pass pass:secret -base64`
        // prints the ciphertext `WP7YXAzS2J1sQIEwWYo1+g==` (OpenSSL 3 leaves out
        // the header when the salt is given); CryptoJS prefixes `Salted__` ‖ salt.
        let mut raw = b"Salted__".to_vec();
        raw.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        raw.extend_from_slice(&base64_decode("WP7YXAzS2J1sQIEwWYo1+g==").unwrap());
        let data = b64(&raw);
        assert_eq!(
            data,
            encrypt(br#"{"a":1}"#, "secret", [1, 2, 3, 4, 5, 6, 7, 8])
        );
        assert!(data.starts_with("U2FsdGVkX1"));
        assert_eq!(&*decrypt(&data, "secret").unwrap(), br#"{"a":1}"#);
        assert_eq!(decrypts_to_json(&data, "secret"), Ok(()));
        assert!(matches!(
            decrypts_to_json(&data, "other"),
            Err(DecryptError::WrongKey | DecryptError::NotJson)
        ));
        let not_json = encrypt(b"plain words", "k", [9; 8]);
        assert_eq!(decrypts_to_json(&not_json, "k"), Err(DecryptError::NotJson));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert_eq!(decrypt("!!!", "k"), Err(DecryptError::NotBase64));
        assert_eq!(decrypt("", "k"), Err(DecryptError::NoSaltHeader));
        assert_eq!(
            decrypt(&b64(b"Salted__12345678"), "k"),
            Err(DecryptError::BadLength)
        );
        assert_eq!(
            decrypt(&b64(b"Salted__12345678abc"), "k"),
            Err(DecryptError::BadLength)
        );
        assert_eq!(
            decrypt(&b64(b"NotSalty12345678abcdefghijklmnop"), "k"),
            Err(DecryptError::NoSaltHeader)
        );
        for s in ["A", "AB=C", "A===", "QUJD=", "QQ==QQ=="] {
            assert!(base64_decode(s).is_none(), "{s}");
        }
        assert_eq!(base64_decode("QUJD").unwrap(), b"ABC");
        assert_eq!(base64_decode("QUI=").unwrap(), b"AB");
        assert_eq!(base64_decode("QQ").unwrap(), b"A");
    }
}
