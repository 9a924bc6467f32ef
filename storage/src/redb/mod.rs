//! The redb backend: one file in the data directory, opened by one process at a time. Every
//! write returns only after its transaction is committed with `Durability::Immediate`, and every
//! change to apps, keys or the registry bumps the version and logs itself in that transaction.

mod audit;
mod connect;
mod dump;
mod grant;
mod registry;
mod store;
mod tables;

pub use store::Store;

/// Folds redb's per-operation errors into one variant; they all mean the store failed.
fn db<E: Into<redb::Error>>(err: E) -> crate::StoreError {
    crate::StoreError::Db(err.into())
}
