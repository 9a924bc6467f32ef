//! Grant operations against PostgreSQL, each inside the batch's one transaction. The batch holds
//! the writer lock and reads the rows it changes `FOR UPDATE`, so a spend's condition (a fresh
//! token of a live family) is checked against every earlier commit of every node: of several
//! concurrent spends exactly one wins.

use deadpool_postgres::Transaction;

use super::sql::{col, execute, int, row, rows};
use crate::grant::{SpendVerdict, hex, judge_spend};
use crate::record::{decode, encode};
use crate::{
    AuditEvent, ConnectRecord, ConnectRefusal, FamilyRecord, GrantOp, GrantOutcome, Kek,
    RefreshRecord, StoreError, TokenKey,
};

/// How many operations at the head of `ops` touch rows no other of them reads or writes and
/// revoke nothing, so that their statements can go out together, without one round trip's
/// wait each: new families (each with a fresh id and selector). An operation that reads, such
/// as a spend, ends the run: it must see every write before it.
pub(super) fn independent_run(ops: &[GrantOp]) -> usize {
    ops.iter().take_while(|op| matches!(op, GrantOp::CreateFamily { .. })).count()
}

/// Applies one operation inside the batch's transaction.
pub(super) async fn apply(
    txn: &Transaction<'_>,
    kek: Option<&Kek>,
    op: &GrantOp,
) -> Result<GrantOutcome, StoreError> {
    use super::connect;
    let step = |r: Result<ConnectRecord, ConnectRefusal>| match r {
        Ok(record) => GrantOutcome::Connect(record),
        Err(why) => GrantOutcome::ConnectRefused(why),
    };
    match op {
        GrantOp::CreateConnect(record) => {
            connect::create(txn, record).await?;
            Ok(GrantOutcome::Created)
        }
        GrantOp::BeginConnect { state, user_id, provider_state, now } => {
            Ok(step(connect::begin(txn, state, user_id, provider_state, *now).await?))
        }
        GrantOp::CompleteConnect { provider_state, grant, now } => {
            Ok(step(connect::complete(txn, kek, provider_state, grant, *now).await?))
        }
        GrantOp::RenewProviderGrant { service_id, user_id, provider_id, grant } => {
            connect::put_grant(txn, kek, (service_id, user_id, provider_id), grant).await?;
            Ok(GrantOutcome::Created)
        }
        GrantOp::CreateFamily { family, token, token_expires_at } => {
            let record = RefreshRecord {
                verifier: hex(&token.verifier),
                family: family.id.clone(),
                client_id: family.client_id.clone(),
                issued_at: family.created_at,
                expires_at: *token_expires_at,
                is_spent: false,
            };
            tokio::try_join!(put_refresh(txn, &token.selector, &record), put_family(txn, family))?;
            Ok(GrantOutcome::Created)
        }
        GrantOp::Spend { token, client_id, next, next_expires_at, now, horizon } => {
            spend(txn, token, client_id.as_deref(), next, *next_expires_at, *now, *horizon).await
        }
        GrantOp::RevokeFamily { token, client_id, horizon, audit } => {
            let Some(record) = get_refresh(txn, token).await? else {
                return Ok(GrantOutcome::NoMatch);
            };
            if client_id.as_ref().is_some_and(|c| *c != record.client_id) {
                return Ok(GrantOutcome::NoMatch);
            }
            if let Some(event) = audit {
                super::audit::append(txn, event).await?;
            }
            revoke_family(txn, &record.family, *horizon).await
        }
        GrantOp::RevokeClient { client_id, subject, horizon } => {
            let found = match subject {
                None => {
                    let query = "SELECT id, record FROM families WHERE client_id = $1 FOR UPDATE";
                    rows(txn, query, &[client_id]).await?
                }
                Some(subject) => {
                    let query = "SELECT id, record FROM families \
                         WHERE client_id = $1 AND subject = $2 FOR UPDATE";
                    rows(txn, query, &[client_id, subject]).await?
                }
            };
            let mut ids = Vec::new();
            for found in &found {
                let family: FamilyRecord = decode(&col::<Vec<u8>>(found, 1)?)?;
                if !family.is_revoked {
                    ids.push(col::<String>(found, 0)?);
                }
            }
            // In id order, as redb walks its table, so both backends answer the same list.
            ids.sort_unstable();
            let mut jtis = Vec::new();
            for id in ids {
                if let GrantOutcome::Revoked(mut more) = revoke_family(txn, &id, *horizon).await? {
                    jtis.append(&mut more);
                }
            }
            Ok(GrantOutcome::Revoked(jtis))
        }
        GrantOp::RevokeAccess { jti, exp } => {
            revoke_jti(txn, jti, *exp).await?;
            Ok(GrantOutcome::Revoked(vec![(jti.clone(), *exp)]))
        }
        GrantOp::RecordAssertion { key, exp } => {
            // The primary key is the replay check: a second insert touches no row.
            let insert = "INSERT INTO assertions (id, expires_at) VALUES ($1, $2) \
                 ON CONFLICT (id) DO NOTHING";
            match execute(txn, insert, &[&key.as_bytes(), &int(*exp)]).await? {
                0 => Ok(GrantOutcome::Replayed),
                _ => Ok(GrantOutcome::Recorded),
            }
        }
        GrantOp::Cleanup { now, audit_before } => {
            let swept = super::audit::sweep(txn, *audit_before).await?;
            match cleanup(txn, *now).await? {
                GrantOutcome::Cleaned { removed } => {
                    Ok(GrantOutcome::Cleaned { removed: removed + swept })
                }
                other => Ok(other),
            }
        }
        GrantOp::Audit(event) => {
            super::audit::append(txn, event).await?;
            Ok(GrantOutcome::Recorded)
        }
    }
}

async fn get_refresh(
    txn: &Transaction<'_>,
    token: &TokenKey,
) -> Result<Option<RefreshRecord>, StoreError> {
    let query = "SELECT record FROM refresh_tokens WHERE selector = $1 FOR UPDATE";
    let found = row(txn, query, &[&token.selector.as_slice()]).await?;
    let record: Option<RefreshRecord> =
        found.map(|r| decode(&col::<Vec<u8>>(&r, 0)?)).transpose()?;
    Ok(record.filter(|r| token.matches(r)))
}

async fn put_refresh(
    txn: &Transaction<'_>,
    selector: &[u8; 16],
    record: &RefreshRecord,
) -> Result<(), StoreError> {
    let upsert = "INSERT INTO refresh_tokens (selector, family, expires_at, record) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (selector) DO UPDATE SET \
         family = excluded.family, expires_at = excluded.expires_at, record = excluded.record";
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
        [&selector.as_slice(), &record.family, &int(record.expires_at), &encode(record)];
    execute(txn, upsert, &params).await?;
    Ok(())
}

async fn get_family(txn: &Transaction<'_>, id: &str) -> Result<Option<FamilyRecord>, StoreError> {
    let found = row(txn, "SELECT record FROM families WHERE id = $1 FOR UPDATE", &[&id]).await?;
    found.map(|r| decode(&col::<Vec<u8>>(&r, 0)?)).transpose()
}

async fn put_family(txn: &Transaction<'_>, family: &FamilyRecord) -> Result<(), StoreError> {
    let upsert = "INSERT INTO families (id, client_id, subject, expires_at, record) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET \
         client_id = excluded.client_id, subject = excluded.subject, \
         expires_at = excluded.expires_at, record = excluded.record";
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
        [&family.id, &family.client_id, &family.subject, &int(family.expires_at), &encode(family)];
    execute(txn, upsert, &params).await?;
    Ok(())
}

async fn revoke_jti(txn: &Transaction<'_>, jti: &str, until: u64) -> Result<(), StoreError> {
    let upsert = "INSERT INTO revoked_jtis (jti, expires_at) VALUES ($1, $2) \
         ON CONFLICT (jti) DO UPDATE SET expires_at = excluded.expires_at";
    execute(txn, upsert, &[&jti, &int(until)]).await?;
    Ok(())
}

async fn spend(
    txn: &Transaction<'_>,
    token: &TokenKey,
    client_id: Option<&str>,
    next: &TokenKey,
    next_expires_at: u64,
    now: u64,
    horizon: u64,
) -> Result<GrantOutcome, StoreError> {
    // The token and its family in one round trip. The batch holds the writer lock, so no
    // other node's spend can come between this read and the writes; the row lock says so to
    // anyone reading the SQL alone.
    let query = "SELECT t.record, f.record FROM refresh_tokens t \
         LEFT JOIN families f ON f.id = t.family WHERE t.selector = $1 FOR UPDATE OF t";
    let found = row(txn, query, &[&token.selector.as_slice()]).await?;
    let (record, family) = match found {
        Some(r) => {
            let record: RefreshRecord = decode(&col::<Vec<u8>>(&r, 0)?)?;
            let family = col::<Option<Vec<u8>>>(&r, 1)?.map(|f| decode(&f)).transpose()?;
            (Some(record).filter(|r| token.matches(r)), family)
        }
        None => (None, None),
    };
    let family: Option<FamilyRecord> = if record.is_some() { family } else { None };
    match judge_spend(record, family, client_id, next, next_expires_at, now) {
        SpendVerdict::Refused(why) => Ok(GrantOutcome::Refused { why, revoked: Vec::new() }),
        SpendVerdict::Reused { family, client_id } => {
            let revoked = match revoke_family(txn, &family, horizon).await? {
                GrantOutcome::Revoked(jtis) => jtis,
                _ => Vec::new(),
            };
            let event = AuditEvent::refresh_reuse(&client_id, &family, now);
            super::audit::append(txn, &event).await?;
            Ok(GrantOutcome::Refused { why: crate::Refusal::Reused, revoked })
        }
        SpendVerdict::Rotate { spent, fresh, family, family_changed } => {
            // Three rows, written together: nothing here reads what another writes.
            let family_row =
                async { if family_changed { put_family(txn, &family).await } else { Ok(()) } };
            tokio::try_join!(
                put_refresh(txn, &token.selector, &spent),
                put_refresh(txn, &next.selector, &fresh),
                family_row
            )?;
            Ok(GrantOutcome::Spent(family))
        }
    }
}

/// Marks a family revoked and revokes every access token issued from it, by its `sid`.
async fn revoke_family(
    txn: &Transaction<'_>,
    id: &str,
    horizon: u64,
) -> Result<GrantOutcome, StoreError> {
    let Some(mut family) = get_family(txn, id).await? else {
        return Ok(GrantOutcome::NoMatch);
    };
    family.is_revoked = true;
    put_family(txn, &family).await?;
    revoke_jti(txn, id, horizon).await?;
    Ok(GrantOutcome::Revoked(vec![(id.to_string(), horizon)]))
}

/// Removes refresh tokens, families, revocations and assertion records that can no longer
/// matter: a token past its expiry is refused whether it is known or not.
async fn cleanup(txn: &Transaction<'_>, now: u64) -> Result<GrantOutcome, StoreError> {
    let now_int = int(now);
    let mut removed = 0u64;
    for table in ["refresh_tokens", "families", "revoked_jtis", "assertions"] {
        let delete = format!("DELETE FROM {table} WHERE expires_at <= $1");
        removed += execute(txn, &delete, &[&now_int]).await?;
    }
    let removed = usize::try_from(removed).unwrap_or(usize::MAX);
    Ok(GrantOutcome::Cleaned { removed: removed + super::connect::cleanup(txn, now).await? })
}
