//! Proving who is asking: secrets and their hashes, client certificates, Argon2id passwords on
//! their own pool, the failed-authentication limiter, and the one rule for URLs users give us.

pub mod certificate;
pub mod limiter;
pub mod password;
pub mod public_key;
pub mod secret;
pub mod url_rule;
