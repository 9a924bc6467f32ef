//! Grant state: refresh-token families, revoked access tokens, used client assertions.
//!
//! Operations carry their conditions (a spend succeeds only on a fresh token of a live family),
//! so that exactly one of several concurrent spends can win, whichever process runs them.

use serde::{Deserialize, Serialize};

/// A refresh token as stored, under its selector; the secret part only as a SHA-256 digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshRecord {
    /// Hex SHA-256 of the token's secret part.
    pub verifier: String,
    pub family: String,
    pub client_id: String,
    pub issued_at: u64,
    pub expires_at: u64,
    pub is_spent: bool,
}

/// A chain of refresh tokens from one grant. Revoking it revokes every live access token
/// issued from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FamilyRecord {
    pub id: String,
    pub client_id: String,
    pub subject: String,
    /// The scope originally granted; a refresh may narrow the access token, never this.
    pub scope: String,
    pub created_at: u64,
    /// When the newest refresh token of the family expires.
    pub expires_at: u64,
    pub is_revoked: bool,
}

/// How a refresh token is found and checked: a 16-byte selector (time-ordered, so new tokens
/// land together at the end of the table and a batch of them dirties few pages) and the
/// SHA-256 of its 256-bit secret part, compared in constant time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenKey {
    pub selector: [u8; 16],
    pub verifier: [u8; 32],
}

impl TokenKey {
    /// The presented secret's digest against the stored one, in constant time: a selector
    /// alone (it is not secret) finds a record but never passes for the token.
    pub fn matches(&self, record: &RefreshRecord) -> bool {
        use subtle::ConstantTimeEq;
        hex(&self.verifier).as_bytes().ct_eq(record.verifier.as_bytes()).into()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One grant-state change. A batch of them is applied in one transaction (group commit).
#[derive(Debug, Clone)]
pub enum GrantOp {
    /// A new family and its first refresh token. Access tokens issued from a family carry its
    /// id as `sid`, so ending the family revokes them with one entry, however many there are.
    CreateFamily { family: FamilyRecord, token: TokenKey, token_expires_at: u64 },
    /// Spends `token`, issuing `next` in its place. `client_id`, when given, must own the
    /// token. A reuse ends the family, its revocation kept until `horizon` (no access token
    /// issued from it lives longer).
    Spend {
        token: TokenKey,
        client_id: Option<String>,
        next: TokenKey,
        next_expires_at: u64,
        now: u64,
        horizon: u64,
    },
    /// Ends the family of `token` (its owner must be `client_id` when given), its revocation
    /// kept until `horizon`.
    RevokeFamily { token: TokenKey, client_id: Option<String>, horizon: u64 },
    /// Revokes one access token until its expiry.
    RevokeAccess { jti: String, exp: u64 },
    /// Ends every family of a client (the app was disabled or deleted) or, with `subject`,
    /// only that subject's families of it (a user of `tessera-consumer` was deactivated or
    /// deleted).
    RevokeClient { client_id: String, subject: Option<String>, horizon: u64 },
    /// Records a used client assertion; `Replayed` when it was seen before.
    RecordAssertion { key: String, exp: u64 },
    /// Removes everything that has expired by `now`.
    Cleanup { now: u64 },
    /// A provider-token request that `action_required` stands for.
    CreateConnect(crate::ConnectRecord),
    /// The bound user is being sent to the provider with `provider_state`.
    BeginConnect { state: String, user_id: String, provider_state: String, now: u64 },
    /// The provider answered: complete the request once and keep the grant.
    CompleteConnect { provider_state: String, grant: crate::ProviderGrant, now: u64 },
    /// A grant's tokens renewed with the provider's refresh token.
    RenewProviderGrant {
        service_id: String,
        user_id: String,
        provider_id: String,
        grant: crate::ProviderGrant,
    },
}

/// Why a spend did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Unknown,
    /// A spent token came back: the family is revoked now.
    Reused,
    Revoked,
    Expired,
    WrongClient,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantOutcome {
    Created,
    /// The spend won; the family as it now stands.
    Spent(FamilyRecord),
    /// The spend lost; `revoked` lists access tokens a detected reuse revoked.
    Refused {
        why: Refusal,
        revoked: Vec<(String, u64)>,
    },
    /// Access tokens revoked by this operation, to refuse at once: (jti, exp).
    Revoked(Vec<(String, u64)>),
    /// Nothing matched (unknown token, or another client's).
    NoMatch,
    Recorded,
    Replayed,
    Cleaned {
        removed: usize,
    },
    /// A connect step succeeded, with the request as it now stands.
    Connect(crate::ConnectRecord),
    ConnectRefused(crate::ConnectRefusal),
}

impl GrantOutcome {
    /// Access tokens this outcome revokes, for the in-memory revocation set.
    pub fn revoked_jtis(&self) -> &[(String, u64)] {
        match self {
            GrantOutcome::Revoked(jtis) | GrantOutcome::Refused { revoked: jtis, .. } => jtis,
            _ => &[],
        }
    }
}

/// What introspection needs to know of a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshStatus {
    pub record: RefreshRecord,
    pub family: FamilyRecord,
}

use redb::{ReadableTable, WriteTransaction};

use crate::StoreError;
use crate::error::db;
use crate::record::{decode, encode};
use crate::tables::{ASSERTIONS, FAMILIES, REFRESH_TOKENS, REVOKED_JTIS};

/// Applies one operation inside the batch's transaction.
pub(crate) fn apply(
    txn: &WriteTransaction,
    kek: Option<&crate::Kek>,
    op: &GrantOp,
) -> Result<GrantOutcome, StoreError> {
    let connect = |r: Result<crate::ConnectRecord, crate::ConnectRefusal>| match r {
        Ok(record) => GrantOutcome::Connect(record),
        Err(why) => GrantOutcome::ConnectRefused(why),
    };
    match op {
        GrantOp::CreateConnect(record) => {
            crate::connect::create(txn, record)?;
            Ok(GrantOutcome::Created)
        }
        GrantOp::BeginConnect { state, user_id, provider_state, now } => {
            Ok(connect(crate::connect::begin(txn, state, user_id, provider_state, *now)?))
        }
        GrantOp::CompleteConnect { provider_state, grant, now } => {
            Ok(connect(crate::connect::complete(txn, kek, provider_state, grant, *now)?))
        }
        GrantOp::RenewProviderGrant { service_id, user_id, provider_id, grant } => {
            crate::connect::put_grant(
                txn,
                kek,
                &crate::connect::grant_key(service_id, user_id, provider_id),
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
        GrantOp::RevokeFamily { token, client_id, horizon } => {
            let Some(record) = get_refresh(txn, token)? else { return Ok(GrantOutcome::NoMatch) };
            if client_id.as_ref().is_some_and(|c| *c != record.client_id) {
                return Ok(GrantOutcome::NoMatch);
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
        GrantOp::Cleanup { now } => cleanup(txn, *now),
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
    use crate::Refusal::*;
    let refused = |why| Ok(GrantOutcome::Refused { why, revoked: Vec::new() });
    let Some(mut record) = get_refresh(txn, token)? else {
        return refused(Unknown);
    };
    if client_id.is_some_and(|c| c != record.client_id) {
        // Not spent: the token's owner can still use it.
        return refused(WrongClient);
    }
    let Some(mut family) = get_family(txn, &record.family)? else {
        return refused(Unknown);
    };
    if record.is_spent {
        // RFC 9700 §4.14.2: a spent token coming back means it leaked; end the family.
        let revoked = match revoke_family(txn, &family.id, horizon)? {
            GrantOutcome::Revoked(jtis) => jtis,
            _ => Vec::new(),
        };
        return Ok(GrantOutcome::Refused { why: Reused, revoked });
    }
    if family.is_revoked {
        return refused(Revoked);
    }
    if now >= record.expires_at {
        return refused(Expired);
    }
    record.is_spent = true;
    let mut tokens = txn.open_table(REFRESH_TOKENS).map_err(db)?;
    tokens.insert(token.selector.as_slice(), encode(&record).as_slice()).map_err(db)?;
    let fresh = RefreshRecord {
        verifier: hex(&next.verifier),
        family: family.id.clone(),
        client_id: family.client_id.clone(),
        issued_at: now,
        expires_at: next_expires_at,
        is_spent: false,
    };
    tokens.insert(next.selector.as_slice(), encode(&fresh).as_slice()).map_err(db)?;
    drop(tokens);
    // The family record is rewritten at most once a day of refreshing, not on every spend: its
    // expiry only tells the sweep when the family can go, and a day late is fine for that.
    if next_expires_at > family.expires_at {
        family.expires_at = next_expires_at.saturating_add(FAMILY_EXPIRY_SLACK);
        put_family(txn, &family)?;
    }
    Ok(GrantOutcome::Spent(family))
}

const FAMILY_EXPIRY_SLACK: u64 = 86_400;

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
    removed += crate::connect::cleanup(txn, now)?;
    Ok(GrantOutcome::Cleaned { removed })
}
