//! Proving who is asking: secrets and their hashes, Argon2id passwords on their own pool, the
//! failed-authentication limiter, and the one rule for URLs users give us.

pub mod limiter;
pub mod password;
pub mod secret;
pub mod url_rule;
