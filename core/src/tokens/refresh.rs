//! The refresh grant (RFC 6749 §6): a family of one-time refresh tokens, rotated on every
//! use. The reuse rule lives here: a spent token that comes back ends its whole family (and the
//! access tokens issued from it), and nothing is answered before the grant store has committed.

use std::sync::Arc;

use tessera_storage::{AuditEvent, FamilyRecord, GrantOp, GrantOutcome, RefreshStatus};

use super::issuer::{Channel, INVALID_GRANT, Issued, Issuer, Opened, grant_failure, store_failure};
use crate::auth::secret::{new_split_secret, parse_split_secret};
use crate::oauth::request::{self, TokenRequest};
use crate::oauth::{OAuthError, TARGET_REFUSED};
use crate::policy::grant_scope;
use crate::tables::client::{CONSUMER_CLIENT_ID, Client};

impl Issuer {
    /// Whether a refresh family's owner may still refresh: its user is active, or its app is
    /// active and holds the refresh grant.
    /// A family opened at or before its owner's last disable is refused even when the owner is
    /// active again: a token request racing the disable can open a family after the disable's
    /// `RevokeClient` ran, and a re-enable must not revive it.
    pub fn can_refresh(&self, family: &FamilyRecord) -> bool {
        let outlived = |disabled_at: Option<u64>| disabled_at.is_none_or(|t| family.created_at > t);
        if family.client_id == CONSUMER_CLIENT_ID {
            return self
                .users
                .get(&family.subject)
                .is_some_and(|u| u.is_active && outlived(u.disabled_at));
        }
        self.clients
            .get(&family.client_id)
            .is_some_and(|c| c.is_active && c.has_refresh_token && outlived(c.disabled_at))
    }

    /// Starts a refresh-token family; answers only once it is durable.
    pub(super) async fn open_family(
        &self,
        id: String,
        client: &Client,
        opened: Opened<'_>,
        now: u64,
    ) -> Result<String, OAuthError> {
        let (token, key) = new_split_secret();
        let expires_at = now.saturating_add(self.settings.refresh_ttl);
        let family = FamilyRecord {
            id,
            client_id: client.client_id.to_string(),
            subject: opened.subject.to_string(),
            scope: opened.scope.to_string(),
            created_at: now,
            expires_at,
            is_revoked: false,
            audience: opened.resource.map(str::to_string),
            jkt: opened.jkt.map(str::to_string),
        };
        let op = GrantOp::CreateFamily { family, token: key, token_expires_at: expires_at };
        match self.grants.submit(op).await.map_err(grant_failure)? {
            GrantOutcome::Created => Ok(token),
            other => Err(store_failure(format!("unexpected outcome {other:?}"))),
        }
    }

    /// Until when a revocation made now must be kept: no access token outlives it.
    pub fn revocation_horizon(&self) -> u64 {
        self.clock.now().saturating_add(self.settings.max_ttl)
    }

    /// The refresh_token grant (RFC 6749 §6): rotate on every use; a spent token coming back
    /// ends its family. Client credentials are optional (the token is a one-time 256-bit
    /// credential bound to its app) but, when sent, must be valid and the token's owner's.
    pub(super) async fn refresh(
        &self,
        req: &TokenRequest,
        channel: &Channel<'_>,
    ) -> Result<Issued, OAuthError> {
        let presented = req
            .refresh_token
            .as_deref()
            .ok_or(OAuthError::InvalidRequest("refresh_token is required"))?;
        // Before the owner is looked up, as in `client_credentials`.
        let now = self.clock.now();
        let authenticated = self.authenticate(&req.credentials, channel).await?;
        let hash = parse_split_secret(presented).ok_or(INVALID_GRANT)?;
        let status = self.refresh_status(hash).await?.ok_or(INVALID_GRANT)?;
        let RefreshStatus { record, family } = status;
        // A spent token coming back ends its family before any other check can answer first.
        if record.is_spent {
            let event = AuditEvent::refresh_reuse(&record.client_id, &record.family, now);
            return Err(match self.end_family(hash, Some(event.clone())).await {
                INVALID_GRANT => {
                    crate::audit::emit(&event);
                    OAuthError::RefreshReused
                }
                other => other,
            });
        }
        // Whoever the request names, by credentials or a bare client_id, must own the token.
        let named = match &req.credentials {
            request::Credentials::ClientId(id) => Some(id.as_str()),
            _ => authenticated.as_ref().map(|c| &*c.client_id),
        };
        if named.is_some_and(|id| id != record.client_id) {
            return Err(INVALID_GRANT);
        }
        // A disabled or deleted owner (app or user), an app that lost the grant, or a family
        // from before the owner's last disable: the family ends.
        if !self.can_refresh(&family) {
            return Err(self.end_family(hash, None).await);
        }
        let client = if record.client_id == CONSUMER_CLIENT_ID {
            // A person's family: its scopes come from the user's roles now.
            match self.users.get(&family.subject) {
                Some(u) => Arc::new(Client::consumer_with(&u.scopes)),
                None => return Err(self.end_family(hash, None).await),
            }
        } else {
            match self.clients.get(&record.client_id) {
                Some(c) => c,
                None => return Err(self.end_family(hash, None).await),
            }
        };
        // A family stays with the resource it was granted for (RFC 8707 §2.2 lets a refresh
        // name it again, never another).
        if let Some(asked) = req.audience.as_deref() {
            let asked = Some(asked).filter(|a| *a != self.settings.default_audience);
            if asked != family.audience.as_deref() {
                return Err(OAuthError::InvalidTarget(TARGET_REFUSED));
            }
        }
        let target = self.target(&client, family.audience.as_deref())?;
        // Narrow, never widen: within the family's grant and within what the app holds now.
        let held: Vec<String> = family
            .scope
            .split(' ')
            .filter(|s| !s.is_empty() && target.scopes.iter().any(|c| **c == **s))
            .map(String::from)
            .collect();
        let scope = match req.scope.as_deref() {
            None => held.join(" "),
            Some(requested) => grant_scope(Some(requested), &held)
                .map_err(|s| OAuthError::InvalidScope(s.to_string()))?,
        };
        // A family opened with a proof is bound to its key (RFC 9449 §5): whoever copied one of
        // its refresh tokens holds nothing without that key, and the token stays unspent.
        let jkt = self.sender_key(&client, channel, now, family.jkt.as_deref())?;
        let cnf = channel.confirmation(jkt.as_deref());
        // Before the spend: a refused refresh leaves its token unspent.
        self.take_quota(&client, now)?;
        let (audience, ttl, sid) = (target.audience, target.ttl, Some(family.id.as_str()));
        let minted = self.mint(&client, &family.subject, &scope, audience, (ttl, now), sid, cnf)?;
        let (next, next_key) = new_split_secret();
        let op = GrantOp::Spend {
            token: hash,
            client_id: Some(record.client_id.clone()),
            next: next_key,
            next_expires_at: now.saturating_add(self.settings.refresh_ttl),
            now,
            horizon: now.saturating_add(self.settings.max_ttl),
        };
        match self.grants.submit(op).await.map_err(grant_failure)? {
            GrantOutcome::Spent(_) => {
                if record.client_id == CONSUMER_CLIENT_ID {
                    self.analytics.count_user_token(&family.subject, now);
                }
                Ok(self.issued(&client, minted, ttl, now, scope, Some(next), cnf))
            }
            GrantOutcome::Refused { why, .. } => {
                tracing::info!(client_id = %record.client_id, ?why, "refresh refused");
                Err(match why {
                    tessera_storage::Refusal::Reused => {
                        // The store wrote this event with the family's end; the log hears it too.
                        let event =
                            AuditEvent::refresh_reuse(&record.client_id, &record.family, now);
                        crate::audit::emit(&event);
                        OAuthError::RefreshReused
                    }
                    _ => INVALID_GRANT,
                })
            }
            other => Err(store_failure(format!("unexpected outcome {other:?}"))),
        }
    }

    /// Ends the family of a token whose owner can no longer refresh, or that came back spent
    /// (then `audit` records the reuse in the same commit); the answer to give.
    async fn end_family(
        &self,
        token: tessera_storage::TokenKey,
        audit: Option<AuditEvent>,
    ) -> OAuthError {
        let horizon = self.revocation_horizon();
        let op = GrantOp::RevokeFamily { token, client_id: None, horizon, audit };
        match self.grants.submit(op).await {
            Ok(_) => INVALID_GRANT,
            Err(e) => grant_failure(e),
        }
    }

    /// Reads a refresh token's state off the worker thread (it may touch the disk).
    pub async fn refresh_status(
        &self,
        hash: tessera_storage::TokenKey,
    ) -> Result<Option<RefreshStatus>, OAuthError> {
        let store = self.grants.store().map_err(grant_failure)?;
        tokio::task::spawn_blocking(move || store.refresh_status(&hash))
            .await
            .map_err(store_failure)?
            .map_err(grant_failure)
    }
}
