//! Tessera's core: the owners of every piece of state and the pure rules they apply, one folder
//! per domain. Nothing here serves HTTP or knows JSON casing; the one HTTP spoken here is as a
//! client, to providers' token endpoints (`grants`).
//!
//! The token hot path (`tokens`) reads the snapshots in `tables` and `keys` without a message
//! hop; every change goes through its one owner (`registry`, `keys`, `grants`), which applies
//! `policy`, commits durably, and only then publishes.

pub mod analytics;
pub mod audit;
pub mod auth;
pub mod clock;
pub mod federation;
pub mod follower;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod grants;
pub mod keys;
pub mod oauth;
pub mod policy;
pub mod registry;
pub mod tables;
pub mod timing;
pub mod tokens;
