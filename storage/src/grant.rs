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
    /// The resource its tokens are for (RFC 8707); none for the default audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// The DPoP key its refresh tokens are bound to (RFC 9449 §5), as a JWK thumbprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
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

/// What presenting a refresh token comes to, decided here once for every backend; a backend
/// reads the two records (locked, where it has row locks) and writes what the verdict says.
// One verdict per spend, matched at once: boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum SpendVerdict {
    Refused(Refusal),
    /// RFC 9700 §4.14.2: a spent token coming back means it leaked; its family ends.
    Reused {
        family: String,
        client_id: String,
    },
    /// The token is spent and `fresh` takes its place; `family` is the family to answer with,
    /// to be written back when `family_changed`.
    Rotate {
        spent: RefreshRecord,
        fresh: RefreshRecord,
        family: FamilyRecord,
        family_changed: bool,
    },
}

/// The family record is rewritten at most once a day of refreshing, not on every spend: its
/// expiry only tells the sweep when the family can go, and a day late is fine for that.
const FAMILY_EXPIRY_SLACK: u64 = 86_400;

/// The spend rules: only the owner may present it (a wrong client leaves it unspent), a spent
/// one ends its family, a revoked family or an expired token is refused, anything else rotates.
/// `family` is the family `record` names, as stored.
pub(crate) fn judge_spend(
    record: Option<RefreshRecord>,
    family: Option<FamilyRecord>,
    client_id: Option<&str>,
    next: &TokenKey,
    next_expires_at: u64,
    now: u64,
) -> SpendVerdict {
    let Some(mut record) = record else { return SpendVerdict::Refused(Refusal::Unknown) };
    if client_id.is_some_and(|c| c != record.client_id) {
        return SpendVerdict::Refused(Refusal::WrongClient);
    }
    let Some(mut family) = family.filter(|f| f.id == record.family) else {
        return SpendVerdict::Refused(Refusal::Unknown);
    };
    if record.is_spent {
        return SpendVerdict::Reused { family: family.id, client_id: record.client_id };
    }
    if family.is_revoked {
        return SpendVerdict::Refused(Refusal::Revoked);
    }
    if now >= record.expires_at {
        return SpendVerdict::Refused(Refusal::Expired);
    }
    record.is_spent = true;
    let fresh = RefreshRecord {
        verifier: hex(&next.verifier),
        family: family.id.clone(),
        client_id: family.client_id.clone(),
        issued_at: now,
        expires_at: next_expires_at,
        is_spent: false,
    };
    let family_changed = next_expires_at > family.expires_at;
    if family_changed {
        family.expires_at = next_expires_at.saturating_add(FAMILY_EXPIRY_SLACK);
    }
    SpendVerdict::Rotate { spent: record, fresh, family, family_changed }
}

/// How a verifier is stored: lowercase hex, the form [`TokenKey::matches`] compares.
pub(crate) fn hex(bytes: &[u8]) -> String {
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
    /// kept until `horizon`; `audit` is written with it when the family matched (a reuse).
    RevokeFamily {
        token: TokenKey,
        client_id: Option<String>,
        horizon: u64,
        audit: Option<crate::AuditEvent>,
    },
    /// Revokes one access token until its expiry.
    RevokeAccess { jti: String, exp: u64 },
    /// Ends every family of a client (the app was disabled or deleted) or, with `subject`,
    /// only that subject's families of it (a user of `tessera-consumer` was deactivated or
    /// deleted).
    RevokeClient { client_id: String, subject: Option<String>, horizon: u64 },
    /// Records a used client assertion; `Replayed` when it was seen before.
    RecordAssertion { key: String, exp: u64 },
    /// Removes everything that has expired by `now`, and audit events older than
    /// `audit_before`.
    Cleanup { now: u64, audit_before: u64 },
    /// An audit event that records no change of its own (a rate-limit trip).
    Audit(crate::AuditEvent),
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

/// The change-log entry of a revocation, "revoked:<exp>:<jti or family id>": how the nodes
/// sharing a store learn of it. The expiry comes first because a jti or family id may hold
/// anything, a colon included.
pub fn revocation_entry(jti: &str, exp: u64) -> String {
    format!("revoked:{exp}:{jti}")
}

/// A [`revocation_entry`] read back: (jti or family id, until when); `None` for any other
/// entry.
pub fn parse_revocation_entry(entry: &str) -> Option<(&str, u64)> {
    let rest = entry.strip_prefix("revoked:")?;
    let (exp, jti) = rest.split_once(':')?;
    Some((jti, exp.parse().ok()?))
}

/// What introspection needs to know of a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshStatus {
    pub record: RefreshRecord,
    pub family: FamilyRecord,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocation_entries_name_their_token_and_expiry() {
        let entry = revocation_entry("abc:def", 1_700_000_000);
        assert_eq!(entry, "revoked:1700000000:abc:def");
        assert_eq!(parse_revocation_entry(&entry), Some(("abc:def", 1_700_000_000)));
        assert_eq!(parse_revocation_entry("revoked:soon:abc"), None);
        assert_eq!(parse_revocation_entry("app:x"), None);
    }
}
