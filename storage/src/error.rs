use thiserror::Error;

/// What a store operation can report. `Conflict` and `NotFound` are the conditions of domain
/// operations; the rest are faults of the store itself.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("the data directory is in use by another Tessera process")]
    InUse,
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// A copy goes only into a store nothing was ever written to, so that it never merges into
    /// live data.
    #[error("the target store is not empty: a copy goes only into a store that holds nothing")]
    NotEmpty,
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
    /// PostgreSQL refused a query (a constraint, a type, the SQL itself), or the database URL
    /// is not one: not a matter of reaching the database, so the same request will fail again.
    #[error("store: {0}")]
    Sql(tokio_postgres::Error),
    /// The shared database cannot be reached, the connection broke, or it did not answer in
    /// time. The same request may succeed later (callers answer 503); a write cut off while it
    /// committed may or may not have been applied, like any write whose answer was lost.
    #[error("store unavailable: {0}")]
    Unavailable(#[from] Unavailable),
    #[error("store: {0}")]
    Io(#[from] std::io::Error),
    /// No nonce could be drawn, so nothing was sealed (and nothing written).
    #[error("store: the operating system gave no random bytes: {0}")]
    Random(getrandom::Error),
}

impl StoreError {
    /// Whether the shared database could not be reached: the same request may succeed later,
    /// so callers answer `503` with [`RETRY_UNAVAILABLE_AFTER`] rather than `500`.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// The `Retry-After` (seconds) of an answer refused because the store cannot be reached: about
/// one connect timeout, so that a client coming back meets a fresh attempt to reach the
/// database rather than the end of the one that failed it.
pub const RETRY_UNAVAILABLE_AFTER: u64 = 2;

/// Why the shared database could not be used.
#[derive(Debug, Error)]
pub enum Unavailable {
    /// No connection could be had from the pool: none was free in time, or a new one could
    /// not be opened (refused, timed out, authentication failed).
    #[error("no database connection: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// An open connection failed under a query (closed, reset, the server shutting down).
    #[error("the database connection failed: {0}")]
    Connection(#[source] tokio_postgres::Error),
    /// The database took longer than this to answer; whether the work committed is unknown.
    #[error("no answer from the database within {0:?}")]
    Timeout(std::time::Duration),
    /// The store's runtime has stopped, so no work can be sent to the database.
    #[error("the store has stopped")]
    Stopped,
}
