//! Grant operations against redb, each inside the batch's one write transaction. A spend's
//! condition (a fresh token of a live family) is checked and applied in that transaction, which
//! redb serializes, so of several concurrent spends exactly one wins.

use redb::{ReadableTable, WriteTransaction};

use super::db;
use super::tables::{ASSERTIONS, FAMILIES, REFRESH_TOKENS, REVOKED_JTIS};
use crate::connect::grant_key;
use crate::grant::{SpendVerdict, hex, judge_spend};
use crate::record::{decode, encode};
use crate::{
    AuditEvent, ConnectRecord, ConnectRefusal, FamilyRecord, GrantOp, GrantOutcome, Kek,
    RefreshRecord, StoreError, TokenKey,
};

/// Applies one operation inside the batch's transaction.
pub(super) fn apply(
    txn: &WriteTransaction,
    kek: Option<&Kek>,
    op: &GrantOp,
) -> Result<GrantOutcome, StoreError> {
    let connect = |r: Result<ConnectRecord, ConnectRefusal>| match r {
        Ok(record) => GrantOutcome::Connect(record),
        Err(why) => GrantOutcome::ConnectRefused(why),
    };
    match op {
        GrantOp::CreateConnect(record) => {
            super::connect::create(txn, record)?;
            Ok(GrantOutcome::Created)
        }
        GrantOp::BeginConnect { state, user_id, provider_state, now } => {
            Ok(connect(super::connect::begin(txn, state, user_id, provider_state, *now)?))
        }
        GrantOp::CompleteConnect { provider_state, grant, now } => {
            Ok(connect(super::connect::complete(txn, kek, provider_state, grant, *now)?))
        }
        GrantOp::RenewProviderGrant { service_id, user_id, provider_id, grant } => {
            super::connect::put_grant(
                txn,
                kek,
                &grant_key(service_id, user_id, provider_id),
                grant,
            )?;
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
            txn.open_table(REFRESH_TOKENS)
                .map_err(db)?
                .insert(token.selector.as_slice(), encode(&record).as_slice())
                .map_err(db)?;
            put_family(txn, family)?;
            Ok(GrantOutcome::Created)
        }
        GrantOp::Spend { token, client_id, next, next_expires_at, now, horizon } => {
            spend(txn, token, client_id.as_deref(), next, *next_expires_at, *now, *horizon)
        }
        GrantOp::RevokeFamily { token, client_id, horizon, audit } => {
            let Some(record) = get_refresh(txn, token)? else { return Ok(GrantOutcome::NoMatch) };
            if client_id.as_ref().is_some_and(|c| *c != record.client_id) {
                return Ok(GrantOutcome::NoMatch);
            }
            if let Some(event) = audit {
                super::audit::append(txn, event)?;
            }
            revoke_family(txn, &record.family, *horizon)
        }
        GrantOp::RevokeClient { client_id, subject, horizon } => {
            let ids: Vec<String> = {
                let table = txn.open_table(FAMILIES).map_err(db)?;
                let mut ids = Vec::new();
                for entry in table.iter().map_err(db)? {
                    let (id, value) = entry.map_err(db)?;
                    let family: FamilyRecord = decode(value.value())?;
                    let is_subjects = subject.as_ref().is_none_or(|s| *s == family.subject);
                    if family.client_id == *client_id && is_subjects && !family.is_revoked {
                        ids.push(id.value().to_string());
                    }
                }
                ids
            };
            let mut jtis = Vec::new();
            for id in ids {
                if let GrantOutcome::Revoked(mut more) = revoke_family(txn, &id, *horizon)? {
                    jtis.append(&mut more);
                }
            }
            Ok(GrantOutcome::Revoked(jtis))
        }
        GrantOp::RevokeAccess { jti, exp } => {
            txn.open_table(REVOKED_JTIS).map_err(db)?.insert(jti.as_str(), *exp).map_err(db)?;
            Ok(GrantOutcome::Revoked(vec![(jti.clone(), *exp)]))
        }
        GrantOp::RecordAssertion { key, exp } => {
            let mut table = txn.open_table(ASSERTIONS).map_err(db)?;
            if table.get(key.as_str()).map_err(db)?.is_some() {
                return Ok(GrantOutcome::Replayed);
            }
            table.insert(key.as_str(), *exp).map_err(db)?;
            Ok(GrantOutcome::Recorded)
        }
        GrantOp::Cleanup { now, audit_before } => {
            let swept = super::audit::sweep(txn, *audit_before)?;
            match cleanup(txn, *now)? {
                GrantOutcome::Cleaned { removed } => {
                    Ok(GrantOutcome::Cleaned { removed: removed + swept })
                }
                other => Ok(other),
            }
        }
        GrantOp::Audit(event) => {
            super::audit::append(txn, event)?;
            Ok(GrantOutcome::Recorded)
        }
    }
}

fn get_refresh(
    txn: &WriteTransaction,
    token: &TokenKey,
) -> Result<Option<RefreshRecord>, StoreError> {
    let table = txn.open_table(REFRESH_TOKENS).map_err(db)?;
    let value = table.get(token.selector.as_slice()).map_err(db)?;
    let record: Option<RefreshRecord> = value.map(|v| decode(v.value())).transpose()?;
    Ok(record.filter(|r| token.matches(r)))
}

fn get_family(txn: &WriteTransaction, id: &str) -> Result<Option<FamilyRecord>, StoreError> {
    let table = txn.open_table(FAMILIES).map_err(db)?;
    let value = table.get(id).map_err(db)?;
    value.map(|v| decode(v.value())).transpose()
}

fn put_family(txn: &WriteTransaction, family: &FamilyRecord) -> Result<(), StoreError> {
    txn.open_table(FAMILIES)
        .map_err(db)?
        .insert(family.id.as_str(), encode(family).as_slice())
        .map_err(db)?;
    Ok(())
}

fn spend(
    txn: &WriteTransaction,
    token: &TokenKey,
    client_id: Option<&str>,
    next: &TokenKey,
    next_expires_at: u64,
    now: u64,
    horizon: u64,
) -> Result<GrantOutcome, StoreError> {
    let record = get_refresh(txn, token)?;
    let family = record.as_ref().map(|r| get_family(txn, &r.family)).transpose()?.flatten();
    match judge_spend(record, family, client_id, next, next_expires_at, now) {
        SpendVerdict::Refused(why) => Ok(GrantOutcome::Refused { why, revoked: Vec::new() }),
        SpendVerdict::Reused { family, client_id } => {
            let revoked = match revoke_family(txn, &family, horizon)? {
                GrantOutcome::Revoked(jtis) => jtis,
                _ => Vec::new(),
            };
            super::audit::append(txn, &AuditEvent::refresh_reuse(&client_id, &family, now))?;
            Ok(GrantOutcome::Refused { why: crate::Refusal::Reused, revoked })
        }
        SpendVerdict::Rotate { spent, fresh, family, family_changed } => {
            let mut tokens = txn.open_table(REFRESH_TOKENS).map_err(db)?;
            tokens.insert(token.selector.as_slice(), encode(&spent).as_slice()).map_err(db)?;
            tokens.insert(next.selector.as_slice(), encode(&fresh).as_slice()).map_err(db)?;
            drop(tokens);
            if family_changed {
                put_family(txn, &family)?;
            }
            Ok(GrantOutcome::Spent(family))
        }
    }
}

/// Marks a family revoked and revokes every access token issued from it, by its `sid`.
fn revoke_family(
    txn: &WriteTransaction,
    id: &str,
    horizon: u64,
) -> Result<GrantOutcome, StoreError> {
    let Some(mut family) = get_family(txn, id)? else { return Ok(GrantOutcome::NoMatch) };
    family.is_revoked = true;
    put_family(txn, &family)?;
    txn.open_table(REVOKED_JTIS).map_err(db)?.insert(id, horizon).map_err(db)?;
    Ok(GrantOutcome::Revoked(vec![(id.to_string(), horizon)]))
}

/// Removes refresh tokens, families, revocations and assertion records that can no longer
/// matter: a token past its expiry is refused whether it is known or not.
fn cleanup(txn: &WriteTransaction, now: u64) -> Result<GrantOutcome, StoreError> {
    let mut removed = 0;
    let mut tokens = txn.open_table(REFRESH_TOKENS).map_err(db)?;
    removed += tokens
        .extract_if(|_, v| decode::<RefreshRecord>(v).is_ok_and(|r| r.expires_at <= now))
        .map_err(db)?
        .count();
    drop(tokens);
    let mut families = txn.open_table(FAMILIES).map_err(db)?;
    removed += families
        .extract_if(|_, v| decode::<FamilyRecord>(v).is_ok_and(|f| f.expires_at <= now))
        .map_err(db)?
        .count();
    drop(families);
    let mut revoked = txn.open_table(REVOKED_JTIS).map_err(db)?;
    removed += revoked.extract_if(|_, exp| exp <= now).map_err(db)?.count();
    drop(revoked);
    let mut assertions = txn.open_table(ASSERTIONS).map_err(db)?;
    removed += assertions.extract_if(|_, exp| exp <= now).map_err(db)?.count();
    drop(assertions);
    removed += super::connect::cleanup(txn, now)?;
    Ok(GrantOutcome::Cleaned { removed })
}
