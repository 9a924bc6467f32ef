//! What every PostgreSQL operation shares: telling an outage from a refused query, statements
//! prepared once per connection, and the writer lock.

use deadpool_postgres::{GenericClient, Object, Pool, Transaction};
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, ToSql};

use crate::{StoreError, Unavailable};

pub(super) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// A query error, as the caller should treat it: an outage (503, try later) or a refusal.
pub(super) fn sql(err: tokio_postgres::Error) -> StoreError {
    if is_outage(&err) {
        StoreError::Unavailable(Unavailable::Connection(err))
    } else {
        StoreError::Sql(err)
    }
}

fn is_outage(err: &tokio_postgres::Error) -> bool {
    if err.is_closed() {
        return true;
    }
    match err.code() {
        // Class 08 is connection exceptions; 57P01-03 a server shutting down or starting up;
        // 53300 no connection slot left; 25006 a standby answering in the middle of a failover
        // (PostgreSQL docs, Appendix A).
        Some(code) => {
            let code = code.code();
            code.starts_with("08")
                || matches!(code, "57P01" | "57P02" | "57P03" | "53300" | "25006")
        }
        None => std::error::Error::source(err).is_some_and(|s| s.is::<std::io::Error>()),
    }
}

/// Whether `text` can be a key here: PostgreSQL's text cannot hold NUL, so a key with one was
/// never stored and looking it up finds nothing. Lookups with keys from outside (a state in a
/// URL) check first, because sending one fails the query, and with it a whole grant batch.
pub(super) fn storable(text: &str) -> bool {
    !text.contains('\0')
}

/// Whether the database refused a row for a unique constraint.
pub(super) fn is_unique_violation(err: &tokio_postgres::Error) -> bool {
    err.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
}

pub(super) async fn connection(pool: &Pool) -> Result<Object, StoreError> {
    pool.get().await.map_err(|e| StoreError::Unavailable(Unavailable::Pool(e)))
}

// Statements are prepared once per connection and cached by their text: one round trip per
// query instead of two.

pub(super) async fn rows(
    client: &impl GenericClient,
    query: &str,
    params: Params<'_>,
) -> Result<Vec<Row>, StoreError> {
    let statement = client.prepare_cached(query).await.map_err(sql)?;
    client.query(&statement, params).await.map_err(sql)
}

pub(super) async fn row(
    client: &impl GenericClient,
    query: &str,
    params: Params<'_>,
) -> Result<Option<Row>, StoreError> {
    let statement = client.prepare_cached(query).await.map_err(sql)?;
    client.query_opt(&statement, params).await.map_err(sql)
}

/// Runs a statement; the number of rows it touched.
pub(super) async fn execute(
    client: &impl GenericClient,
    query: &str,
    params: Params<'_>,
) -> Result<u64, StoreError> {
    let statement = client.prepare_cached(query).await.map_err(sql)?;
    client.execute(&statement, params).await.map_err(sql)
}

pub(super) fn col<'a, T: FromSql<'a>>(row: &'a Row, index: usize) -> Result<T, StoreError> {
    row.try_get(index).map_err(sql)
}

/// A u64 as bigint. Clamped: a time past 2^63 seconds means "never" either way, and clamping
/// keeps the order the sweep compares by.
pub(super) fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(super) fn uint(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn u64_from(bytes: &[u8]) -> Result<u64, StoreError> {
    let arr: [u8; 8] = bytes.try_into().map_err(|_| StoreError::Corrupt("version".into()))?;
    Ok(u64::from_be_bytes(arr))
}

pub(super) const READ_VERSION: &str = "SELECT value FROM meta WHERE name = 'version'";
const LOCK_VERSION: &str = "SELECT value FROM meta WHERE name = 'version' FOR UPDATE";

pub(super) fn version_of(row: Option<Row>) -> Result<u64, StoreError> {
    row.map(|r| col::<Vec<u8>>(&r, 0).and_then(|v| u64_from(&v)))
        .transpose()
        .map(Option::unwrap_or_default)
}

/// A transaction holding the writer lock: the `version` row, locked before anything else is
/// read, so that checks see every earlier write and versions are handed out in commit order
/// (a reader never sees version N+1 before N). The lock is a row lock, not an advisory one, so
/// CockroachDB takes it the same way.
pub(super) struct Writer<'a> {
    txn: Transaction<'a>,
    version: u64,
    bumped: bool,
}

impl<'a> Writer<'a> {
    pub(super) async fn begin(client: &'a mut Object) -> Result<Writer<'a>, StoreError> {
        let txn = client.transaction().await.map_err(sql)?;
        let locked = row(&txn, LOCK_VERSION, &[]).await?;
        // Without the row there is nothing to lock, and writers would no longer take turns.
        let locked =
            locked.ok_or_else(|| StoreError::Corrupt("the version row is missing".into()))?;
        let version = version_of(Some(locked))?;
        Ok(Writer { txn, version, bumped: false })
    }

    /// The version as of the lock: every earlier commit's.
    pub(super) fn version(&self) -> u64 {
        self.version
    }

    pub(super) fn txn(&self) -> &Transaction<'a> {
        &self.txn
    }

    /// Bumps the version and logs the change, as redb does for each change.
    pub(super) async fn record_change(&mut self, what: &str) -> Result<u64, StoreError> {
        self.version += 1;
        self.bumped = true;
        execute(
            &self.txn,
            "INSERT INTO changes (version, what) VALUES ($1, $2)",
            &[&int(self.version), &what],
        )
        .await?;
        Ok(self.version)
    }

    /// Commits; when this returns `Ok` the change is durable (`synchronous_commit` left on).
    /// Dropping a writer instead rolls it back.
    pub(super) async fn commit(self) -> Result<(), StoreError> {
        if self.bumped {
            // One write of the counter however many changes the transaction logged.
            execute(
                &self.txn,
                "UPDATE meta SET value = $1 WHERE name = 'version'",
                &[&self.version.to_be_bytes().as_slice()],
            )
            .await?;
        }
        self.txn.commit().await.map_err(sql)
    }
}
