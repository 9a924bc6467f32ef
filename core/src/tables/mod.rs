//! Published read-only snapshots that the hot path reads without a message hop. They depend on
//! nothing above them, so the registry and the issuer can both use them.

pub mod client;
pub mod scopes;
pub mod service_keys;
pub mod user;
