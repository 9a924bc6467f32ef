//! Human passwords: Argon2id (OWASP parameters, the crate's defaults), always computed off the
//! request workers by the callers (`spawn_blocking`), since one hash costs tens of milliseconds.

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 256;

pub fn check_policy(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if !(MIN_LEN..=MAX_LEN).contains(&n) {
        return Err(format!("password must be {MIN_LEN} to {MAX_LEN} characters"));
    }
    Ok(())
}

/// A PHC string (`$argon2id$v=19$...`) with a fresh random salt.
pub fn hash(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Verified against when the user is unknown, inactive or has no password, so every failed
/// login costs one Argon2id verification, like a wrong password does.
pub static DUMMY: LazyLock<String> =
    LazyLock::new(|| hash("not a password of anyone's").unwrap_or_default());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_their_password() {
        let phc = hash("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify("correct horse", &phc));
        assert!(!verify("wrong horse", &phc));
        assert!(!verify("x", "garbage"));
        assert!(check_policy("short").is_err());
        assert!(!DUMMY.is_empty());
    }
}
