//! Sealing private keys at rest under a key-encryption key (TESSERA_KEK).

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

use crate::StoreError;

const PLAIN: &str = "plain:";
const SEALED: &str = "kek1:";

/// Why a TESSERA_KEK value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("TESSERA_KEK must be 64 hex digits (32 random bytes)")]
pub struct KekError;

/// A 256-bit key-encryption key. Its bytes never leave this type.
#[derive(Clone)]
pub struct Kek(ChaCha20Poly1305);

impl Kek {
    /// Reads a KEK given as 64 hex digits (as `openssl rand -hex 32` prints).
    pub fn from_hex(text: &str) -> Result<Kek, KekError> {
        let text = text.trim();
        if text.len() != 64 || !text.is_ascii() {
            return Err(KekError);
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| KekError)?;
        }
        Ok(Kek(ChaCha20Poly1305::new(&Key::from(bytes))))
    }
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(..)")
    }
}

/// Encodes a 32-byte seed for the file: sealed with a fresh nonce when a KEK is set.
pub(crate) fn seal(kek: Option<&Kek>, seed: &[u8; 32], kid: &str) -> Result<String, StoreError> {
    seal_bytes(kek, seed, kid)
}

pub(crate) fn open(kek: Option<&Kek>, text: &str, kid: &str) -> Result<[u8; 32], StoreError> {
    open_bytes(kek, text, kid)?
        .try_into()
        .map_err(|_| StoreError::Corrupt("key seed length".into()))
}

/// Encodes secret bytes for the file, bound to `aad` (the record's id): sealed with a fresh
/// nonce when a KEK is set, marked plain otherwise.
pub(crate) fn seal_bytes(kek: Option<&Kek>, seed: &[u8], kid: &str) -> Result<String, StoreError> {
    let Some(Kek(cipher)) = kek else {
        return Ok(format!("{PLAIN}{}", hex(seed)));
    };
    let mut nonce = [0u8; 12];
    getrandom::fill(&mut nonce).map_err(StoreError::Random)?;
    // The kid is bound as associated data so a sealed seed cannot be moved to another record.
    let payload = chacha20poly1305::aead::Payload { msg: seed, aad: kid.as_bytes() };
    let sealed = cipher
        .encrypt(&Nonce::from(nonce), payload)
        .map_err(|_| StoreError::Corrupt("sealing failed".into()))?;
    Ok(format!("{SEALED}{}{}", hex(&nonce), hex(&sealed)))
}

pub(crate) fn open_bytes(kek: Option<&Kek>, text: &str, kid: &str) -> Result<Vec<u8>, StoreError> {
    if let Some(plain) = text.strip_prefix(PLAIN) {
        return unhex(plain);
    }
    let Some(sealed) = text.strip_prefix(SEALED) else {
        return Err(StoreError::Corrupt("key seed encoding".into()));
    };
    let Some(Kek(cipher)) = kek else {
        return Err(StoreError::KekMissing);
    };
    let bytes = unhex(sealed)?;
    if bytes.len() < 12 {
        return Err(StoreError::Corrupt("sealed seed length".into()));
    }
    let (nonce, body) = bytes.split_at(12);
    let nonce: [u8; 12] = nonce.try_into().map_err(|_| StoreError::Corrupt("nonce".into()))?;
    let payload = chacha20poly1305::aead::Payload { msg: body, aad: kid.as_bytes() };
    cipher.decrypt(&Nonce::from(nonce), payload).map_err(|_| StoreError::KekMismatch)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Result<Vec<u8>, StoreError> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return Err(StoreError::Corrupt("hex length".into()));
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&text[i..i + 2], 16).map_err(|_| StoreError::Corrupt("hex".into()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_seeds_open_only_with_their_kek_and_kid() {
        let kek = Kek::from_hex(&"ab".repeat(32)).unwrap();
        let other = Kek::from_hex(&"cd".repeat(32)).unwrap();
        let seed = [7u8; 32];
        let text = seal(Some(&kek), &seed, "k1").unwrap();
        assert!(!text.contains(&hex(&seed)));
        assert_eq!(open(Some(&kek), &text, "k1").unwrap(), seed);
        assert!(matches!(open(Some(&other), &text, "k1"), Err(StoreError::KekMismatch)));
        assert!(matches!(open(Some(&kek), &text, "k2"), Err(StoreError::KekMismatch)));
        assert!(matches!(open(None, &text, "k1"), Err(StoreError::KekMissing)));
        let plain = seal(None, &seed, "k1").unwrap();
        assert_eq!(open(Some(&kek), &plain, "k1").unwrap(), seed);
    }

    #[test]
    fn kek_must_be_32_hex_bytes() {
        assert_eq!(Kek::from_hex("short").err(), Some(KekError));
        assert_eq!(Kek::from_hex(&"zz".repeat(32)).err(), Some(KekError));
        assert_eq!(
            KekError.to_string(),
            "TESSERA_KEK must be 64 hex digits (32 random bytes)",
            "the message operators have always seen"
        );
    }
}
