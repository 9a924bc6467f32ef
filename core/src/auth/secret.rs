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

/// Lowercase hex, the form every digest and selector is stored and compared in.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
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

/// Sixteen bytes that sort by creation time: 6 bytes of Unix milliseconds, then 10 random.
/// Keys like these land together at the end of a B-tree, so a batch of inserts dirties a few
/// pages rather than one page each.
pub fn time_ordered_bytes() -> [u8; 16] {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut out = [0u8; 16];
    out[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    rand::rng().fill_bytes(&mut out[6..]);
    out
}

/// A time-ordered id as 32 hex digits (hex keeps the byte order when compared as text).
pub fn time_ordered_id() -> String {
    to_hex(&time_ordered_bytes())
}

const SELECTOR_CHARS: usize = 22;
const SECRET_CHARS: usize = 43;

/// A new one-time credential (refresh tokens, and the body of service API keys): a 16-byte
/// time-ordered selector (22 characters) then a 256-bit secret (43), and the key the store
/// keeps for it — the selector and the secret's SHA-256, never the secret — so a lookup is one
/// index read and one constant-time comparison.
pub fn new_split_secret() -> (String, tessera_storage::TokenKey) {
    let selector = time_ordered_bytes();
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let mut text = URL_SAFE_NO_PAD.encode(selector);
    URL_SAFE_NO_PAD.encode_string(secret, &mut text);
    let verifier = Sha256::digest(secret).into();
    (text, tessera_storage::TokenKey { selector, verifier })
}

/// The store key of a presented credential; `None` when it cannot be one of ours.
pub fn parse_split_secret(text: &str) -> Option<tessera_storage::TokenKey> {
    if text.len() != SELECTOR_CHARS + SECRET_CHARS || !text.is_ascii() {
        return None;
    }
    let (selector, secret) = text.split_at(SELECTOR_CHARS);
    let selector: [u8; 16] = URL_SAFE_NO_PAD.decode(selector).ok()?.try_into().ok()?;
    let secret = URL_SAFE_NO_PAD.decode(secret).ok()?;
    if secret.len() != 32 {
        return None;
    }
    Some(tessera_storage::TokenKey { selector, verifier: Sha256::digest(&secret).into() })
}

#[cfg(test)]
mod refresh_tests {
    use super::*;

    #[test]
    fn split_secrets_parse_back_to_their_key_and_nothing_else_does() {
        let (token, key) = new_split_secret();
        assert_eq!(token.len(), 65);
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)));
        assert_eq!(parse_split_secret(&token), Some(key));
        assert_eq!(parse_split_secret(&token[1..]), None);
        assert_eq!(parse_split_secret(&format!("{}!", &token[..64])), None);
        let (later, _) = new_split_secret();
        assert!(time_ordered_id() > "0".repeat(32));
        assert_ne!(later, token);
    }
}

/// Compares two hex digests in constant time.
pub fn hex_matches(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}
