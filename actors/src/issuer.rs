//! Token issuance: the hot path. Not an actor on purpose (DESIGN.md invariant 1): its settings
//! never change while the server runs and its counters are atomics, so every worker runs it
//! inline against the published key and client snapshots, with no mailbox hop, lock or disk.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use serde::Serialize;

use crate::claims::{AccessClaims, OutgoingClaims};
use crate::client::{Client, ClientTable};
use crate::clock::SharedClock;
use crate::jws;
use crate::keyset::{SharedKeySet, Signer};
use crate::limiter::{FailureLimiter, LimitKey, Limits};
use crate::oauth::OAuthError;
use crate::policy::grant_scope;
use crate::request::{Credentials, TokenRequest};

#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub issuer: String,
    /// `aud` when the request names no `resource`/`audience`.
    pub default_audience: String,
    pub default_ttl: u64,
    pub max_ttl: u64,
}

#[derive(Debug, Default)]
pub struct Counters {
    pub issued: AtomicU64,
    pub failed_auth: AtomicU64,
    pub refused: AtomicU64,
}

pub struct Issuer {
    pub settings: TokenSettings,
    keys: SharedKeySet,
    clients: ClientTable,
    limiter: FailureLimiter,
    clock: SharedClock,
    pub counters: Counters,
}

/// A successful token response (RFC 6749 §5.1, plus `expires_on` of seed 000).
#[derive(Debug, Serialize)]
pub struct Issued {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub expires_on: u64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip)]
    pub client_id: String,
}

/// Why a bearer token was refused; the HTTP layer answers all of them alike (401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerError {
    Invalid,
    Expired,
    ClientGone,
}

const MAX_AUDIENCE: usize = 512;

impl Issuer {
    pub fn new(
        settings: TokenSettings,
        keys: SharedKeySet,
        clients: ClientTable,
        limits: Limits,
        clock: SharedClock,
    ) -> Issuer {
        Issuer {
            settings,
            keys,
            clients,
            limiter: FailureLimiter::new(limits),
            clock,
            counters: Counters::default(),
        }
    }

    pub fn keys(&self) -> &SharedKeySet {
        &self.keys
    }

    pub fn clients(&self) -> &ClientTable {
        &self.clients
    }

    /// Answers a parsed token request.
    pub fn token(&self, req: &TokenRequest, addr: Option<IpAddr>) -> Result<Issued, OAuthError> {
        let result = self.token_inner(req, addr);
        let counter = match &result {
            Ok(_) => &self.counters.issued,
            Err(OAuthError::InvalidClient { .. }) => &self.counters.failed_auth,
            Err(_) => &self.counters.refused,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        result
    }

    fn token_inner(&self, req: &TokenRequest, addr: Option<IpAddr>) -> Result<Issued, OAuthError> {
        if req.grant_type != "client_credentials" {
            return Err(OAuthError::UnsupportedGrantType);
        }
        let client = self.authenticate(&req.credentials, addr)?;
        if !client.has_client_credentials {
            return Err(OAuthError::UnauthorizedClient);
        }
        let scope = grant_scope(req.scope.as_deref(), &client.scopes)
            .map_err(|s| OAuthError::InvalidScope(s.to_string()))?;
        let audience = match req.audience.as_deref() {
            Some(a) if a.len() > MAX_AUDIENCE => {
                return Err(OAuthError::InvalidRequest("resource is too long"));
            }
            Some(a) => a,
            None => &self.settings.default_audience,
        };
        let keys = self.keys.load();
        // A server without a current key is not ready; /readyz says so and this refuses.
        let signer = keys
            .signer
            .as_ref()
            .ok_or(OAuthError::InvalidRequest("no signing key is ready"))?;
        let ttl = client
            .ttl
            .unwrap_or(self.settings.default_ttl)
            .min(self.settings.max_ttl);
        let now = self.clock.now();
        let access_token = self.mint(
            signer,
            &client,
            &client.client_id,
            &scope,
            audience,
            ttl,
            now,
        );
        Ok(Issued {
            access_token,
            token_type: "Bearer",
            expires_in: ttl,
            expires_on: now + ttl,
            scope,
            refresh_token: None,
            client_id: client.client_id.clone(),
        })
    }

    fn authenticate(
        &self,
        credentials: &Credentials,
        addr: Option<IpAddr>,
    ) -> Result<Arc<Client>, OAuthError> {
        let (client_id, secret, is_basic) = match credentials {
            Credentials::Basic { client_id, secret } => (client_id, secret, true),
            Credentials::Post { client_id, secret } => (client_id, secret, false),
            // private_key_jwt arrives with the grant-state work; until then it cannot succeed.
            Credentials::None | Credentials::ClientId(_) | Credentials::Assertion { .. } => {
                return Err(OAuthError::InvalidClient { is_basic: false });
            }
        };
        let now = self.clock.now();
        let addr_key = addr.map(LimitKey::addr);
        let client_key = LimitKey::client(client_id, addr);
        for key in addr_key.iter().chain(client_key.iter()) {
            if let Err(retry_after) = self.limiter.check(key, now) {
                return Err(OAuthError::TooManyRequests { retry_after });
            }
        }
        match self.clients.authenticate(client_id, secret) {
            Some(client) => Ok(client),
            None => {
                for key in addr_key.into_iter().chain(client_key) {
                    self.limiter.record_failure(key, now);
                }
                Err(OAuthError::InvalidClient { is_basic })
            }
        }
    }

    /// Builds, serializes and signs one access token; returns the compact JWS.
    #[allow(clippy::too_many_arguments)] // each is a distinct claim source on the hot path
    pub fn mint(
        &self,
        signer: &Signer,
        client: &Client,
        sub: &str,
        scope: &str,
        audience: &str,
        ttl: u64,
        now: u64,
    ) -> String {
        let mut jti_bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut jti_bytes);
        let mut jti = [0u8; 22];
        // unwrap: 16 bytes always encode to exactly 22 base64url characters
        let n = URL_SAFE_NO_PAD
            .encode_slice(jti_bytes, &mut jti)
            .expect("22 bytes fit");
        // unwrap: base64url output is ASCII
        let jti = std::str::from_utf8(&jti[..n]).expect("ascii");
        let claims = OutgoingClaims {
            iss: &self.settings.issuer,
            sub,
            aud: audience,
            exp: now + ttl,
            iat: now,
            nbf: now,
            jti,
            client_id: &client.client_id,
            scope,
        };
        let mut json = Vec::with_capacity(256 + client.claims_fragment.len());
        // unwrap: a struct of strings and integers always serializes
        serde_json::to_writer(&mut json, &claims).expect("claims serialize");
        if !client.claims_fragment.is_empty() {
            json.pop();
            json.push(b',');
            json.extend_from_slice(client.claims_fragment.as_bytes());
            json.push(b'}');
        }
        jws::sign(signer, &json)
    }

    /// Verifies one of our access tokens for Tessera's own API: signature by a published key,
    /// live, our issuer, meant for us, and its app still present and active.
    pub fn verify_bearer(&self, token: &str) -> Result<(AccessClaims, Arc<Client>), BearerError> {
        let claims = self.verify_access(token)?;
        let s = &self.settings;
        if claims.aud != s.issuer && claims.aud != s.default_audience {
            return Err(BearerError::Invalid);
        }
        let client = self
            .clients
            .get(&claims.client_id)
            .filter(|c| c.is_active)
            .ok_or(BearerError::ClientGone)?;
        Ok((claims, client))
    }

    /// Verifies signature, issuer and lifetime of an access token, whatever its audience.
    pub fn verify_access(&self, token: &str) -> Result<AccessClaims, BearerError> {
        let payload = jws::verify(token, &self.keys.load()).map_err(|_| BearerError::Invalid)?;
        let claims: AccessClaims =
            serde_json::from_slice(&payload).map_err(|_| BearerError::Invalid)?;
        if claims.iss != self.settings.issuer {
            return Err(BearerError::Invalid);
        }
        if !claims.is_live(self.clock.now()) {
            return Err(BearerError::Expired);
        }
        Ok(claims)
    }
}
