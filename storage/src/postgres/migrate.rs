//! Schema migrations, embedded in the binary and applied at connect. Nodes starting together
//! take turns on a row lock, so each migration runs once, whole or not at all.

use deadpool_postgres::Pool;

use super::sql::{col, connection, execute, rows, sql};
use crate::StoreError;

/// Where a migration runs.
#[derive(Clone, Copy, PartialEq)]
enum Runs {
    Everywhere,
    /// Recorded as applied on CockroachDB but not run there: it only makes PostgreSQL faster.
    PostgresOnly,
}

/// (version, SQL, where), in order. A released migration is never edited: a change is a new
/// one.
const MIGRATIONS: &[(u32, &str, Runs)] = &[
    (1, include_str!("migrations/0001_init.sql"), Runs::Everywhere),
    (2, include_str!("migrations/0002_leases.sql"), Runs::Everywhere),
    (3, include_str!("migrations/0003_change_times.sql"), Runs::Everywhere),
    (4, include_str!("migrations/0004_change_notify.sql"), Runs::PostgresOnly),
    (5, include_str!("migrations/0005_audit.sql"), Runs::Everywhere),
    (6, include_str!("migrations/0006_resources.sql"), Runs::Everywhere),
    (7, include_str!("migrations/0007_issuers.sql"), Runs::Everywhere),
];

/// Applies what the database lacks, in one transaction; the versions it applied.
pub(super) async fn apply(pool: &Pool) -> Result<Vec<u32>, StoreError> {
    let mut client = connection(pool).await?;
    // The lock row has to exist before anyone can wait on it. Two first starts at once may
    // both try to create the table, and PostgreSQL can fail one of them with a duplicate
    // (CREATE TABLE IF NOT EXISTS is not atomic with a concurrent twin); the loser retries and
    // finds it. The version is a bigint: CockroachDB reads `int` as 8 bytes, and the driver
    // checks widths.
    let mut attempt = 0;
    loop {
        let created = client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version bigint PRIMARY KEY)",
            )
            .await;
        match created {
            Ok(()) => break,
            Err(e) if attempt < 3 && is_creation_race(&e) => attempt += 1,
            Err(e) => return Err(sql(e)),
        }
    }
    execute(
        &client,
        "INSERT INTO schema_migrations (version) VALUES (0) ON CONFLICT DO NOTHING",
        &[],
    )
    .await?;
    let txn = client.transaction().await.map_err(sql)?;
    // Version 0 is the lock: a second node blocks here until the first has committed, then
    // reads what it applied.
    rows(&txn, "SELECT version FROM schema_migrations WHERE version = 0 FOR UPDATE", &[]).await?;
    let mut present = Vec::new();
    for row in rows(&txn, "SELECT version FROM schema_migrations", &[]).await? {
        present.push(col::<i64>(&row, 0)?);
    }
    let server = rows(&txn, "SELECT version()", &[]).await?;
    let is_cockroach = server
        .first()
        .map(|r| col::<String>(r, 0))
        .transpose()?
        .is_some_and(|v| v.contains("CockroachDB"));
    let mut applied = Vec::new();
    for &(version, migration, runs) in MIGRATIONS {
        let number = i64::from(version);
        if present.contains(&number) {
            continue;
        }
        if runs == Runs::Everywhere || !is_cockroach {
            txn.batch_execute(migration).await.map_err(sql)?;
        }
        execute(&txn, "INSERT INTO schema_migrations (version) VALUES ($1)", &[&number]).await?;
        applied.push(version);
    }
    txn.commit().await.map_err(sql)?;
    Ok(applied)
}

/// How the loser of two concurrent creations fails: on the catalog's unique index, on the
/// table, or on the row type created with it, whichever it meets first.
fn is_creation_race(err: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    err.code().is_some_and(|c| {
        *c == SqlState::UNIQUE_VIOLATION
            || *c == SqlState::DUPLICATE_TABLE
            || *c == SqlState::DUPLICATE_OBJECT
    })
}
