//! Verifying our own access tokens (the admin API's bearer, introspection, revocation, the
//! hosted flow's session): signature by a published key, lifetime, revocation, and whether the
//! token still speaks for its subject after a disable. Never asked on the issuing path.

use std::sync::Arc;

use super::claims::AccessClaims;
use super::issuer::Issuer;
use super::jws;
use super::verified::VerifiedTokens;
use crate::tables::client::{CONSUMER_CLIENT_ID, Client};

/// Why a bearer token was refused; the HTTP layer answers all of them alike (401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerError {
    Invalid,
    Expired,
    Revoked,
    ClientGone,
}

impl Issuer {
    /// Whether a verified access token still speaks for its subject: its app (or, for a user
    /// token, its user) exists and is active, and the token was issued after the subject was
    /// last disabled, so a re-enable never revives tokens from before. `iat` is whole seconds,
    /// hence `<=`: a token from the very second of the disable does not survive it. Checked at
    /// verification, never at issuance, so the token hot path pays nothing for it.
    pub fn is_token_live_for_subject(&self, claims: &AccessClaims) -> bool {
        let disabled_at = if claims.client_id == CONSUMER_CLIENT_ID {
            match self.users.get(&claims.sub) {
                Some(u) if u.is_active => u.disabled_at,
                _ => return false,
            }
        } else {
            match self.clients.get(&claims.client_id) {
                Some(c) if c.is_active => c.disabled_at,
                _ => return false,
            }
        };
        disabled_at.is_none_or(|t| claims.iat > t)
    }

    /// Verifies one of our access tokens for Tessera's own API: signature by a published key,
    /// live, not revoked, our issuer, meant for us, and its app still present and active.
    pub fn verify_bearer(&self, token: &str) -> Result<(AccessClaims, Arc<Client>), BearerError> {
        let claims = self.verify_access(token)?;
        let s = &self.settings;
        if claims.aud != s.issuer && claims.aud != s.default_audience {
            return Err(BearerError::Invalid);
        }
        // A person's token never speaks for an app, whatever app ids exist.
        if claims.client_id == CONSUMER_CLIENT_ID {
            return Err(BearerError::ClientGone);
        }
        if !self.is_token_live_for_subject(&claims) {
            return Err(BearerError::ClientGone);
        }
        let client = self.clients.get(&claims.client_id).ok_or(BearerError::ClientGone)?;
        Ok((claims, client))
    }

    /// Verifies signature, issuer, lifetime and revocation of an access token, whatever its
    /// audience.
    pub fn verify_access(&self, token: &str) -> Result<AccessClaims, BearerError> {
        let claims = self.verify_signature(token)?;
        if !claims.is_live(self.clock.now()) {
            return Err(BearerError::Expired);
        }
        let revoked = self.grants.revoked();
        if revoked.is_revoked(&claims.jti)
            || claims.sid.as_deref().is_some_and(|sid| revoked.is_revoked(sid))
        {
            return Err(BearerError::Revoked);
        }
        Ok(claims)
    }

    /// Signature and issuer only: for revocation, where an expired token is still ours.
    pub fn verify_signature(&self, token: &str) -> Result<AccessClaims, BearerError> {
        let keys = self.keys.load();
        let digest = VerifiedTokens::digest(token);
        if let Some(claims) = self.verified.get(&digest, token, &keys) {
            return Ok(claims);
        }
        let payload = jws::verify(token, &keys).map_err(|_| BearerError::Invalid)?;
        let claims: AccessClaims =
            serde_json::from_slice(&payload).map_err(|_| BearerError::Invalid)?;
        if claims.iss != self.settings.issuer {
            return Err(BearerError::Invalid);
        }
        self.verified.put(digest, &claims);
        Ok(claims)
    }
}
