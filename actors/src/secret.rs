//! Generated identifiers and secrets, and how secrets are kept.
//!
//! Every generated value is base64url without padding, so RFC 6749 §2.3.1 form-encoding never
//! changes it. Secrets carry 256 bits, which is why a single SHA-256 is the right way to keep
//! them (NIST SP 800-63B §5.1.2.2): no password-style stretching is needed at that entropy.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// `bytes` of randomness from the thread-local CSPRNG, base64url encoded.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(&buf)
}

/// A new client secret: 256 bits, 43 characters.
pub fn new_secret() -> String {
    random_token(32)
}

/// A new client id: 128 bits, 22 characters.
pub fn new_client_id() -> String {
    random_token(16)
}

pub type SecretHash = [u8; 32];

pub fn hash_secret(secret: &str) -> SecretHash {
    Sha256::digest(secret.as_bytes()).into()
}

/// Compares two digests in constant time.
pub fn hash_matches(a: &SecretHash, b: &SecretHash) -> bool {
    a.ct_eq(b).into()
}

pub fn to_hex(hash: &SecretHash) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn from_hex(text: &str) -> Option<SecretHash> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_values_are_url_unreserved_and_long_enough() {
        let secret = new_secret();
        assert_eq!(secret.len(), 43);
        assert!(secret.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)));
        assert_ne!(new_secret(), secret);
        assert_eq!(new_client_id().len(), 22);
    }

    #[test]
    fn hashes_round_trip_through_hex() {
        let h = hash_secret("s");
        assert_eq!(from_hex(&to_hex(&h)), Some(h));
        assert!(hash_matches(&h, &hash_secret("s")));
        assert!(!hash_matches(&h, &hash_secret("t")));
        assert_eq!(from_hex("zz"), None);
    }
}
