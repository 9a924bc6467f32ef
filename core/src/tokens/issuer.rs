//! Token issuance: the hot path. Not an actor on purpose (ARCHITECTURE.md, the hot-path invariant): its settings
//! never change while the server runs and its counters are atomics, so every worker runs it
//! inline against the published key and client snapshots. An access-token-only
//! `client_credentials` request does no disk I/O, no message hop and takes no lock; grants that
//! must be durable (refresh tokens, assertion replay records) wait for the GrantStore's commit.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use serde::Serialize;
use tessera_storage::{FamilyRecord, GrantOp, GrantOutcome, RefreshStatus};

use crate::analytics::Analytics;
use crate::auth::limiter::{FailureLimiter, LimitKey, Limits, Reservation};
use crate::auth::secret::{new_refresh_token, parse_refresh_token, time_ordered_id};
use crate::clock::SharedClock;
use crate::grants::GrantStore;
use crate::keys::keyset::{SharedKeySet, Signer};
use crate::oauth::OAuthError;
use crate::oauth::assertion;
use crate::oauth::request::{self, Credentials, TokenRequest};
use crate::policy::grant_scope;
use crate::tables::client::{CONSUMER_CLIENT_ID, Client, ClientTable};
use crate::tables::user::UserTable;
use crate::tokens::claims::{AccessClaims, OutgoingClaims};
use crate::tokens::jws;

#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub issuer: String,
    /// `aud` when the request names no `resource`/`audience`.
    pub default_audience: String,
    pub default_ttl: u64,
    pub max_ttl: u64,
    /// A refresh token expires this long after it is issued; each use issues a new one.
    pub refresh_ttl: u64,
    /// The longest `exp - now` a client assertion may carry.
    pub max_assertion_lifetime: u64,
    /// Values a client assertion's `aud` may name: the token endpoints and the issuer.
    pub assertion_audiences: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Counters {
    pub issued: AtomicU64,
    pub refreshed: AtomicU64,
    pub failed_auth: AtomicU64,
    pub refused: AtomicU64,
}

pub struct Issuer {
    pub settings: TokenSettings,
    keys: SharedKeySet,
    clients: ClientTable,
    limiter: FailureLimiter,
    grants: GrantStore,
    users: UserTable,
    consumer: Client,
    clock: SharedClock,
    pub counters: Counters,
    /// What the service analytics report; shared with the provider-token flow.
    pub analytics: Arc<Analytics>,
}

/// A successful token response (RFC 6749 §5.1, plus `expires_on` of Melody Auth's S2S API).
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
    Revoked,
    ClientGone,
}

/// Failures reserved by [`Issuer::begin_attempt`], one per window (address, name).
#[must_use = "an attempt is a reserved failure: refund it when the check passes"]
pub struct Attempt {
    reserved: [Option<Reservation>; 2],
}

/// An access token as minted: the compact JWS and the claims grant state keeps.
pub struct Minted {
    pub token: String,
    pub exp: u64,
}

const MAX_AUDIENCE: usize = 512;
const INVALID_GRANT: OAuthError =
    OAuthError::InvalidGrant("the refresh token is invalid, expired or revoked");

fn store_failure(e: impl std::fmt::Display) -> OAuthError {
    tracing::error!(error = %e, "grant store failure");
    OAuthError::ServerError
}

impl Issuer {
    pub fn new(
        settings: TokenSettings,
        keys: SharedKeySet,
        clients: ClientTable,
        limits: Limits,
        grants: GrantStore,
        users: UserTable,
        clock: SharedClock,
    ) -> Issuer {
        Issuer {
            settings,
            keys,
            clients,
            limiter: FailureLimiter::new(limits),
            grants,
            users,
            consumer: Client::consumer(),
            clock,
            counters: Counters::default(),
            analytics: Arc::default(),
        }
    }

    pub fn users(&self) -> &UserTable {
        &self.users
    }

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

    /// A signed-in user's token (Fusio): `sub` is the user's authId, `scope` the union of
    /// its roles' scopes, with a refresh token of its own family.
    pub async fn user_token(&self, auth_id: &str) -> Result<Issued, OAuthError> {
        // Before the lookup, as for apps (`client_credentials`).
        let now = self.clock.now();
        let user = self
            .users
            .get(auth_id)
            .filter(|u| u.is_active)
            .ok_or(OAuthError::InvalidGrant("the user cannot sign in"))?;
        let scope = user.scopes.join(" ");
        let ttl = self.settings.default_ttl.min(self.settings.max_ttl);
        let family = time_ordered_id();
        let audience = self.settings.default_audience.clone();
        let minted =
            self.mint(&self.consumer, auth_id, &scope, &audience, ttl, now, Some(&family))?;
        let refresh = self.open_family(family, &self.consumer, auth_id, &scope, now).await?;
        let mut issued = self.issued(minted, ttl, now, scope, Some(refresh), &self.consumer);
        issued.client_id = auth_id.to_string();
        self.analytics.count_user_token(auth_id, now);
        Ok(issued)
    }

    /// The hosted flow's session: a short-lived access token that only says who signed in —
    /// no scopes, no refresh family, audience `<issuer>/connect` — so a stolen session cookie
    /// opens nothing but the hosted pages, and it ends on its own soon.
    pub fn session_token(&self, auth_id: &str, ttl: u64) -> Result<Minted, OAuthError> {
        // Before the lookup, as for apps (`client_credentials`).
        let now = self.clock.now();
        self.users
            .get(auth_id)
            .filter(|u| u.is_active)
            .ok_or(OAuthError::InvalidGrant("the user cannot sign in"))?;
        let audience = format!("{}/connect", self.settings.issuer);
        let ttl = ttl.min(self.settings.max_ttl);
        let minted = self.mint(&self.consumer, auth_id, "", &audience, ttl, now, None)?;
        self.analytics.count_user_token(auth_id, now);
        Ok(minted)
    }

    pub fn keys(&self) -> &SharedKeySet {
        &self.keys
    }

    pub fn clients(&self) -> &ClientTable {
        &self.clients
    }

    pub fn grants(&self) -> &GrantStore {
        &self.grants
    }

    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// Answers a parsed token request (RFC 6749 §4.4 and §6).
    pub async fn answer(
        &self,
        req: &TokenRequest,
        addr: Option<IpAddr>,
    ) -> Result<Issued, OAuthError> {
        let result = match req.grant_type.as_str() {
            "client_credentials" => self.client_credentials(req, addr).await,
            "refresh_token" => self.refresh(req, addr).await,
            _ => Err(OAuthError::UnsupportedGrantType),
        };
        let counter = match &result {
            Ok(i) if i.refresh_token.is_some() && req.grant_type == "refresh_token" => {
                &self.counters.refreshed
            }
            Ok(_) => &self.counters.issued,
            Err(OAuthError::InvalidClient { .. }) => &self.counters.failed_auth,
            Err(_) => &self.counters.refused,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        result
    }

    async fn client_credentials(
        &self,
        req: &TokenRequest,
        addr: Option<IpAddr>,
    ) -> Result<Issued, OAuthError> {
        // Read before the client is looked up: a disable publishes first and takes its time
        // after, so whatever a request that still saw the app active issues is dated at or
        // before the disable and stays refused after a re-enable.
        let now = self.clock.now();
        let client = self
            .authenticate(&req.credentials, addr)
            .await?
            .ok_or(OAuthError::InvalidClient { is_basic: false })?;
        if !client.has_client_credentials {
            return Err(OAuthError::UnauthorizedClient);
        }
        let scope = grant_scope(req.scope.as_deref(), &client.scopes)
            .map_err(|s| OAuthError::InvalidScope(s.to_string()))?;
        let audience = self.audience(req)?;
        let ttl = self.ttl(&client);
        if !client.has_refresh_token {
            let minted = self.mint(&client, &client.client_id, &scope, audience, ttl, now, None)?;
            return Ok(self.issued(minted, ttl, now, scope, None, &client));
        }
        let family = time_ordered_id();
        let minted =
            self.mint(&client, &client.client_id, &scope, audience, ttl, now, Some(&family))?;
        let refresh_token =
            self.open_family(family, &client, &client.client_id, &scope, now).await?;
        Ok(self.issued(minted, ttl, now, scope, Some(refresh_token), &client))
    }

    /// Starts a refresh-token family; answers only once it is durable.
    async fn open_family(
        &self,
        id: String,
        client: &Client,
        subject: &str,
        scope: &str,
        now: u64,
    ) -> Result<String, OAuthError> {
        let (token, key) = new_refresh_token();
        let expires_at = now.saturating_add(self.settings.refresh_ttl);
        let family = FamilyRecord {
            id,
            client_id: client.client_id.clone(),
            subject: subject.to_string(),
            scope: scope.to_string(),
            created_at: now,
            expires_at,
            is_revoked: false,
        };
        let op = GrantOp::CreateFamily { family, token: key, token_expires_at: expires_at };
        match self.grants.submit(op).await.map_err(store_failure)? {
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
    async fn refresh(
        &self,
        req: &TokenRequest,
        addr: Option<IpAddr>,
    ) -> Result<Issued, OAuthError> {
        let presented = req
            .refresh_token
            .as_deref()
            .ok_or(OAuthError::InvalidRequest("refresh_token is required"))?;
        // Before the owner is looked up, as in `client_credentials`.
        let now = self.clock.now();
        let authenticated = self.authenticate(&req.credentials, addr).await?;
        let hash = parse_refresh_token(presented).ok_or(INVALID_GRANT)?;
        let status = self.refresh_status(hash).await?.ok_or(INVALID_GRANT)?;
        let RefreshStatus { record, family } = status;
        // A spent token coming back ends its family before any other check can answer first.
        if record.is_spent {
            return Err(self.end_family(hash).await);
        }
        // Whoever the request names, by credentials or a bare client_id, must own the token.
        let named = match &req.credentials {
            request::Credentials::ClientId(id) => Some(id.as_str()),
            _ => authenticated.as_ref().map(|c| c.client_id.as_str()),
        };
        if named.is_some_and(|id| id != record.client_id) {
            return Err(INVALID_GRANT);
        }
        // A disabled or deleted owner (app or user), an app that lost the grant, or a family
        // from before the owner's last disable: the family ends.
        if !self.can_refresh(&family) {
            return Err(self.end_family(hash).await);
        }
        let client = if record.client_id == CONSUMER_CLIENT_ID {
            // A person's family: its scopes come from the user's roles now.
            match self.users.get(&family.subject) {
                Some(u) => Arc::new(Client::consumer_with(u.scopes.clone())),
                None => return Err(self.end_family(hash).await),
            }
        } else {
            match self.clients.get(&record.client_id) {
                Some(c) => c,
                None => return Err(self.end_family(hash).await),
            }
        };
        // Narrow, never widen: within the family's grant and within what the app holds now.
        let held: Vec<String> = family
            .scope
            .split(' ')
            .filter(|s| !s.is_empty() && client.scopes.iter().any(|c| c == s))
            .map(String::from)
            .collect();
        let scope = match req.scope.as_deref() {
            None => held.join(" "),
            Some(requested) => grant_scope(Some(requested), &held)
                .map_err(|s| OAuthError::InvalidScope(s.to_string()))?,
        };
        let audience = self.audience(req)?;
        let ttl = self.ttl(&client);
        let minted =
            self.mint(&client, &family.subject, &scope, audience, ttl, now, Some(&family.id))?;
        let (next, next_key) = new_refresh_token();
        let op = GrantOp::Spend {
            token: hash,
            client_id: Some(record.client_id.clone()),
            next: next_key,
            next_expires_at: now.saturating_add(self.settings.refresh_ttl),
            now,
            horizon: now.saturating_add(self.settings.max_ttl),
        };
        match self.grants.submit(op).await.map_err(store_failure)? {
            GrantOutcome::Spent(_) => {
                if record.client_id == CONSUMER_CLIENT_ID {
                    self.analytics.count_user_token(&family.subject, now);
                }
                Ok(self.issued(minted, ttl, now, scope, Some(next), &client))
            }
            GrantOutcome::Refused { why, .. } => {
                tracing::info!(client_id = %record.client_id, ?why, "refresh refused");
                Err(INVALID_GRANT)
            }
            other => Err(store_failure(format!("unexpected outcome {other:?}"))),
        }
    }

    /// Ends the family of a token whose owner can no longer refresh; the answer to give.
    async fn end_family(&self, token: tessera_storage::TokenKey) -> OAuthError {
        let op =
            GrantOp::RevokeFamily { token, client_id: None, horizon: self.revocation_horizon() };
        match self.grants.submit(op).await {
            Ok(_) => INVALID_GRANT,
            Err(e) => store_failure(e),
        }
    }

    /// Reads a refresh token's state off the worker thread (it may touch the disk).
    pub async fn refresh_status(
        &self,
        hash: tessera_storage::TokenKey,
    ) -> Result<Option<RefreshStatus>, OAuthError> {
        let store = self.grants.store().map_err(store_failure)?;
        tokio::task::spawn_blocking(move || store.refresh_status(&hash))
            .await
            .map_err(store_failure)?
            .map_err(store_failure)
    }

    fn issued(
        &self,
        minted: Minted,
        ttl: u64,
        now: u64,
        scope: String,
        refresh_token: Option<String>,
        client: &Client,
    ) -> Issued {
        Issued {
            access_token: minted.token,
            token_type: "Bearer",
            expires_in: ttl,
            expires_on: now + ttl,
            scope,
            refresh_token,
            client_id: client.client_id.clone(),
        }
    }

    fn audience<'r>(&'r self, req: &'r TokenRequest) -> Result<&'r str, OAuthError> {
        match req.audience.as_deref() {
            Some(a) if a.len() > MAX_AUDIENCE => {
                Err(OAuthError::InvalidRequest("resource is too long"))
            }
            Some(a) => Ok(a),
            None => Ok(&self.settings.default_audience),
        }
    }

    fn ttl(&self, client: &Client) -> u64 {
        client.ttl.unwrap_or(self.settings.default_ttl).min(self.settings.max_ttl)
    }

    /// Authenticates the client, if the request names one: `Ok(None)` when it sent no
    /// credentials at all (or a bare `client_id`), which only the refresh grant accepts.
    pub async fn authenticate(
        &self,
        credentials: &Credentials,
        addr: Option<IpAddr>,
    ) -> Result<Option<Arc<Client>>, OAuthError> {
        let (client_id, is_basic) = match credentials {
            Credentials::None | Credentials::ClientId(_) => return Ok(None),
            Credentials::Basic { client_id, .. } => (client_id.as_str(), true),
            Credentials::Post { client_id, .. } => (client_id.as_str(), false),
            Credentials::Assertion { client_id, assertion } => {
                let claimed = assertion::claimed_client(assertion);
                let id = client_id.clone().or(claimed).unwrap_or_default();
                return self.authenticate_assertion(&id, assertion, addr).await.map(Some);
            }
        };
        let now = self.clock.now();
        let attempt = self.begin_attempt(client_id, addr, now)?;
        let secret = match credentials {
            Credentials::Basic { secret, .. } | Credentials::Post { secret, .. } => secret,
            _ => unreachable!("matched above"),
        };
        match self.clients.authenticate(client_id, secret) {
            Some(client) => {
                self.refund(attempt);
                Ok(Some(client))
            }
            None => Err(OAuthError::InvalidClient { is_basic }),
        }
    }

    async fn authenticate_assertion(
        &self,
        client_id: &str,
        assertion: &str,
        addr: Option<IpAddr>,
    ) -> Result<Arc<Client>, OAuthError> {
        let fail = OAuthError::InvalidClient { is_basic: false };
        let now = self.clock.now();
        let attempt = self.begin_attempt(client_id, addr, now)?;
        let checked = self.clients.get(client_id).filter(|c| c.is_active).and_then(|client| {
            let key = client.public_key?;
            let s = &self.settings;
            assertion::verify(
                assertion,
                client_id,
                &key,
                &s.assertion_audiences,
                s.max_assertion_lifetime,
                now,
            )
            .map(|a| (client, a))
        });
        let Some((client, checked)) = checked else { return Err(fail) };
        // RFC 7523 §3 item 7: a jti is accepted once; the record lives until the assertion's exp.
        let key = format!("{}\0{}", checked.client_id, checked.jti);
        match self
            .grants
            // Kept past `exp` by the verifier's clock tolerance: no sweep opens a replay window.
            .submit(GrantOp::RecordAssertion {
                key,
                exp: checked.exp.saturating_add(assertion::CLOCK_TOLERANCE),
            })
            .await
            .map_err(store_failure)?
        {
            GrantOutcome::Recorded => {
                self.refund(attempt);
                Ok(client)
            }
            _ => Err(fail),
        }
    }

    /// Counts a failed authentication for a name (client id or login) from an address
    /// *before* the check runs, so concurrent guesses cannot all be evaluated; `429` when
    /// either window is full. Hand the attempt to [`refund`](Self::refund) when the check
    /// passes; a failure needs nothing more.
    pub fn begin_attempt(
        &self,
        name: &str,
        addr: Option<IpAddr>,
        now: u64,
    ) -> Result<Attempt, OAuthError> {
        let mut attempt = Attempt { reserved: [None, None] };
        let keys = [addr.map(LimitKey::addr), Some(LimitKey::client(name, addr))];
        for (slot, key) in keys.into_iter().enumerate() {
            let Some(key) = key else { continue };
            match self.limiter.reserve(key, now) {
                Ok(reservation) => attempt.reserved[slot] = Some(reservation),
                Err(retry_after) => {
                    // Refused unevaluated: not a failure of its own.
                    self.refund(attempt);
                    return Err(OAuthError::TooManyRequests { retry_after });
                }
            }
        }
        Ok(attempt)
    }

    /// Takes back the failure a client authentication of `name` from `addr` just counted, for
    /// an answer that then turned out not to judge it (a full password queue).
    pub fn forgive(&self, name: &str, addr: Option<IpAddr>) {
        self.limiter.forgive(LimitKey::client(name, addr));
        if let Some(addr) = addr {
            self.limiter.forgive(LimitKey::addr(addr));
        }
    }

    /// The attempt's check passed: its reserved failures are given back.
    pub fn refund(&self, attempt: Attempt) {
        for reservation in attempt.reserved.iter().flatten() {
            self.limiter.refund(reservation);
        }
    }

    /// Builds, serializes and signs one access token with the current key.
    #[allow(clippy::too_many_arguments)] // each is a distinct claim source
    pub fn mint(
        &self,
        client: &Client,
        sub: &str,
        scope: &str,
        audience: &str,
        ttl: u64,
        now: u64,
        sid: Option<&str>,
    ) -> Result<Minted, OAuthError> {
        let keys = self.keys.load();
        // A server without a current key is not ready; /readyz says so and this refuses.
        let signer = keys.signer.as_ref().ok_or(OAuthError::ServerError)?;
        Ok(mint_with(signer, &self.settings.issuer, client, sub, scope, audience, ttl, now, sid))
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
        let payload = jws::verify(token, &self.keys.load()).map_err(|_| BearerError::Invalid)?;
        let claims: AccessClaims =
            serde_json::from_slice(&payload).map_err(|_| BearerError::Invalid)?;
        if claims.iss != self.settings.issuer {
            return Err(BearerError::Invalid);
        }
        Ok(claims)
    }
}

/// Minting without the issuer around it, for benches and the fuzz fixture.
#[allow(clippy::too_many_arguments)] // each is a distinct claim source on the hot path
pub fn mint_with(
    signer: &Signer,
    iss: &str,
    client: &Client,
    sub: &str,
    scope: &str,
    audience: &str,
    ttl: u64,
    now: u64,
    sid: Option<&str>,
) -> Minted {
    let mut jti_bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut jti_bytes);
    let jti = URL_SAFE_NO_PAD.encode(jti_bytes);
    let exp = now + ttl;
    let claims = OutgoingClaims {
        iss,
        sub,
        aud: audience,
        exp,
        iat: now,
        nbf: now,
        jti: &jti,
        client_id: &client.client_id,
        scope,
        sid,
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
    Minted { token: jws::sign(signer, &json), exp }
}
