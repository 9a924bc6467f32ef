//! The PostgreSQL backend: one database shared by every node. Every condition of a domain
//! operation is checked by the database inside the transaction that writes, and every writing
//! transaction first locks the `version` row, so writers in any number of processes commit one at
//! a time, in version order, exactly as redb's single writer does.

mod audit;
mod connect;
mod dump;
mod grant;
mod listen;
mod migrate;
mod registry;
mod sql;
mod store;
#[cfg(feature = "test-postgres")]
pub mod test_cluster;

pub use store::PgStore;
