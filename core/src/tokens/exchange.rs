//! Token exchange (RFC 8693): an app that holds a token a caller sent it trades that token for
//! one to call the next service with, on the caller's behalf. The new token never says more
//! than the token it came from: its subject is the same, its scope is within both that token's
//! scope and the app's own grant for the target, it expires no later, and its `act` claim names
//! every app in the chain (§4.1).

use super::claims::{AccessClaims, Actor, OutgoingClaims};
use super::issuer::{Channel, Issued, Issuer, Jti, sign_claims};
use crate::oauth::OAuthError;
use crate::oauth::request::TokenRequest;
use crate::policy::grant_scope;

/// RFC 8693 §3: the only token type taken and issued here.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

const SUBJECT_REFUSED: &str = "the subject_token is invalid, expired or revoked";
const ACTOR_REFUSED: &str = "the actor_token is invalid, expired, revoked or not the caller's";

impl Issuer {
    pub(super) async fn token_exchange(
        &self,
        req: &TokenRequest,
        channel: &Channel<'_>,
    ) -> Result<Issued, OAuthError> {
        let now = self.clock.now();
        let ex = &req.exchange;
        let Some(subject_token) = ex.subject_token.as_deref() else {
            return Err(OAuthError::InvalidRequest("subject_token is required"));
        };
        if ex.subject_token_type.as_deref() != Some(ACCESS_TOKEN_TYPE) {
            return Err(OAuthError::InvalidRequest(
                "subject_token_type must be urn:ietf:params:oauth:token-type:access_token",
            ));
        }
        if ex.requested_token_type.as_deref().is_some_and(|t| t != ACCESS_TOKEN_TYPE) {
            return Err(OAuthError::InvalidRequest(
                "requested_token_type must be urn:ietf:params:oauth:token-type:access_token",
            ));
        }
        if ex.actor_token.is_some() != ex.actor_token_type.is_some() {
            return Err(OAuthError::InvalidRequest("actor_token and actor_token_type go together"));
        }
        if ex.actor_token_type.as_deref().is_some_and(|t| t != ACCESS_TOKEN_TYPE) {
            return Err(OAuthError::InvalidRequest(
                "actor_token_type must be urn:ietf:params:oauth:token-type:access_token",
            ));
        }
        // A delegated token for Tessera itself would carry the subject's admin scopes to
        // whoever exchanged it: the target is always a registered resource.
        if req.audience.as_deref().is_none_or(|a| a == self.settings.default_audience) {
            return Err(OAuthError::InvalidTarget(
                "token exchange needs a resource: a registered resource the app is granted",
            ));
        }
        let caller = self
            .authenticate(&req.credentials, channel)
            .await?
            .ok_or(OAuthError::InvalidClient { is_basic: false })?;
        if !caller.can_exchange {
            return Err(OAuthError::UnauthorizedClient);
        }
        let subject =
            self.live_token(subject_token).ok_or(OAuthError::InvalidGrant(SUBJECT_REFUSED))?;
        if let Some(actor_token) = ex.actor_token.as_deref() {
            // RFC 8693 §2.1: the actor is the party acting; here it can only be the caller.
            let actor = self.live_token(actor_token).filter(|a| *a.client_id == *caller.client_id);
            if actor.is_none() {
                return Err(OAuthError::InvalidGrant(ACTOR_REFUSED));
            }
        }
        let act =
            Actor { sub: caller.client_id.to_string(), act: subject.act.clone().map(Box::new) };
        if act.depth() > self.settings.max_delegation_depth {
            return Err(OAuthError::InvalidGrant("the delegation chain is too long"));
        }
        let target = self.target(&caller, req.audience.as_deref())?;
        let allowed: Vec<String> = subject
            .scopes()
            .filter(|s| target.scopes.iter().any(|t| **t == **s))
            .map(str::to_string)
            .collect();
        let scope = grant_scope(req.scope.as_deref(), &allowed)
            .map_err(|s| OAuthError::InvalidScope(s.to_string()))?;
        if scope.is_empty() {
            return Err(OAuthError::InvalidScope(String::new()));
        }
        let jkt = self.sender_key(&caller, channel, now, None)?;
        let cnf = channel.confirmation(jkt.as_deref());
        self.take_quota(&caller, now)?;
        let exp = now.saturating_add(target.ttl).min(subject.exp);
        let keys = self.keys.load();
        let signer = keys.signer.as_ref().ok_or(OAuthError::ServerError)?;
        let jti = Jti::new();
        // The chain shares one revocation handle: the first token's family (or the first
        // token itself), so revoking where the chain began ends every token made from it.
        let sid = subject.sid.as_deref().unwrap_or(&subject.jti);
        let claims = OutgoingClaims {
            iss: &self.settings.issuer,
            sub: &subject.sub,
            aud: target.audience,
            exp,
            iat: now,
            nbf: now,
            jti: jti.as_str(),
            client_id: &caller.client_id,
            scope: &scope,
            sid: Some(sid),
            cnf,
            act: Some(&act),
        };
        let minted = sign_claims(signer, &caller, &claims);
        let mut issued = self.issued(&caller, minted, exp - now, now, scope, None, cnf);
        issued.issued_token_type = Some(ACCESS_TOKEN_TYPE);
        Ok(issued)
    }

    /// One of our access tokens, verified, live, not revoked, and still speaking for its
    /// subject (introspection's rule).
    fn live_token(&self, token: &str) -> Option<AccessClaims> {
        self.verify_access(token).ok().filter(|c| self.is_token_live_for_subject(c))
    }
}
