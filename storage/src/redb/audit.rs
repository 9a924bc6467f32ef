//! The audit log in redb: one table keyed by position. One writer at a time, so the next
//! position is the last one plus one.

use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use super::db;
use super::tables::AUDIT;
use crate::record::{decode, encode};
use crate::{AuditEvent, Logged, StoreError};

/// Appends `event` inside the caller's transaction.
pub(super) fn append(txn: &WriteTransaction, event: &AuditEvent) -> Result<(), StoreError> {
    let mut table = txn.open_table(AUDIT).map_err(db)?;
    let next = table.last().map_err(db)?.map_or(1, |(seq, _)| seq.value() + 1);
    table.insert(next, encode(event).as_slice()).map_err(db)?;
    Ok(())
}

pub(super) fn after(
    txn: &ReadTransaction,
    after: u64,
    limit: usize,
) -> Result<Vec<Logged>, StoreError> {
    let table = match txn.open_table(AUDIT) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(db(e)),
    };
    let mut out = Vec::new();
    for entry in table.range(after.saturating_add(1)..).map_err(db)?.take(limit) {
        let (seq, value) = entry.map_err(db)?;
        out.push(Logged { seq: seq.value(), event: decode(value.value())? });
    }
    Ok(out)
}

/// Drops the events written before `before` (Unix seconds), but never the newest: the next
/// position is the newest's plus one, and must never be one a reader was given. Positions
/// follow commit order and commits follow the clock closely, so the sweep stops at the first
/// event young enough.
pub(super) fn sweep(txn: &WriteTransaction, before: u64) -> Result<usize, StoreError> {
    let mut table = txn.open_table(AUDIT).map_err(db)?;
    let Some(newest) = table.last().map_err(db)?.map(|(seq, _)| seq.value()) else {
        return Ok(0);
    };
    let mut old = Vec::new();
    for entry in table.range(..newest).map_err(db)? {
        let (seq, value) = entry.map_err(db)?;
        let event: AuditEvent = decode(value.value())?;
        if event.at >= before {
            break;
        }
        old.push(seq.value());
    }
    for seq in &old {
        table.remove(seq).map_err(db)?;
    }
    Ok(old.len())
}
