use thiserror::Error;

/// What a store operation can report. `Conflict` and `NotFound` are the conditions of domain
/// operations; the rest are faults of the store itself.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("the data directory is in use by another Tessera process")]
    InUse,
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("not found")]
    NotFound,
    #[error("stored record is unreadable: {0}")]
    Corrupt(String),
    #[error(
        "private keys in the store are encrypted: set TESSERA_KEK to the key they were sealed with"
    )]
    KekMissing,
    #[error("TESSERA_KEK does not open the private keys in the store")]
    KekMismatch,
    /// A fault of the redb backend; another backend brings its own variant.
    #[error("store: {0}")]
    Db(#[from] redb::Error),
    #[error("store: {0}")]
    Io(#[from] std::io::Error),
    /// No nonce could be drawn, so nothing was sealed (and nothing written).
    #[error("store: the operating system gave no random bytes: {0}")]
    Random(getrandom::Error),
}
