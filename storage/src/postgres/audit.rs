//! The audit log in PostgreSQL. Every writer holds the writer lock, so the next position is
//! the last one plus one, read and written in one statement.

use deadpool_postgres::{GenericClient, Transaction};

use super::sql::{col, execute, int, rows, uint};
use crate::record::{decode, encode};
use crate::{AuditEvent, Logged, StoreError};

/// Appends `event` inside the caller's transaction, which holds the writer lock.
pub(super) async fn append(txn: &Transaction<'_>, event: &AuditEvent) -> Result<(), StoreError> {
    let insert = "INSERT INTO audit (seq, at, record) \
         SELECT coalesce(max(seq), 0) + 1, $1, $2 FROM audit";
    execute(txn, insert, &[&int(event.at), &encode(event)]).await?;
    Ok(())
}

pub(super) async fn after(
    client: &impl GenericClient,
    after: u64,
    limit: usize,
) -> Result<Vec<Logged>, StoreError> {
    let query = "SELECT seq, record FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2";
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let found = rows(client, query, &[&int(after), &limit]).await?;
    found
        .iter()
        .map(|r| Ok(Logged { seq: uint(col(r, 0)?), event: decode(&col::<Vec<u8>>(r, 1)?)? }))
        .collect()
}

/// Drops the events written before `before` (Unix seconds), but never the newest: the next
/// position is the newest's plus one, and must never be one a reader was given.
pub(super) async fn sweep(txn: &Transaction<'_>, before: u64) -> Result<usize, StoreError> {
    let delete = "DELETE FROM audit WHERE at < $1 AND seq < (SELECT max(seq) FROM audit)";
    let removed = execute(txn, delete, &[&int(before)]).await?;
    Ok(usize::try_from(removed).unwrap_or(usize::MAX))
}
