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
use tessera_storage::{GrantOp, GrantOutcome, StoreError};

use crate::analytics::Analytics;
use crate::audit::{self, Origin};
use crate::auth::certificate::ClientCertificate;
use crate::auth::limiter::{FailureLimiter, Full, LimitKey, Limits, Reservation};
use crate::auth::secret::time_ordered_id;
use crate::clock::SharedClock;
use crate::federation::{self, Federation, Refusal, TrustedIssuer};
use crate::grants::{GrantError, GrantStore};
use crate::keys::keyset::{SharedKeySet, Signer};
use crate::oauth::assertion;
use crate::oauth::dpop::{self, Keys, ProofError, ReplayWindow, Seen};
use crate::oauth::request::{Credentials, GrantType, TokenRequest};
use crate::oauth::{OAuthError, TARGET_REFUSED};
use crate::policy::grant_scope;
use crate::tables::client::{Client, ClientTable};
use crate::tables::scopes::Scope;
use crate::tables::user::UserTable;
use crate::tokens::claims::{Confirmation, OutgoingClaims};
use crate::tokens::jws;
use crate::tokens::quota::Quotas;
use crate::tokens::reuse::ReuseCache;
use crate::tokens::verified::VerifiedTokens;

/// DPoP keys a node keeps decoded: one per client; up to ~2 KB each (a P-256 key's table),
/// so at most ~16 MB.
const PROOF_KEYS: usize = 8_192;

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
    /// How many DPoP proofs a node remembers per replay generation (RFC 9449 §11.1).
    pub dpop_proofs: usize,
    /// The most actors a token made by token exchange may name (RFC 8693 §4.1 `act`).
    pub max_delegation_depth: usize,
    /// Token reuse for apps that do not say (`tokens/reuse.rs`).
    pub token_reuse: bool,
}

/// What the HTTP layer knows of a token request besides its parameters.
#[derive(Debug, Clone, Copy)]
pub struct Channel<'a> {
    pub addr: Option<IpAddr>,
    /// The `DPoP` header: absent, one value, or refused (sent twice, not text).
    pub dpop: Result<Option<&'a str>, ProofError>,
    /// The path the request reached (one of the token endpoint's), for a proof's `htu`.
    pub path: &'a str,
    /// The TLS client certificate the request came with (RFC 8705), directly or through a
    /// trusted proxy.
    pub certificate: Option<&'a ClientCertificate>,
}

impl Channel<'_> {
    /// A request from `addr` with no proof and no certificate.
    pub fn plain(addr: Option<IpAddr>) -> Channel<'static> {
        Channel { addr, dpop: Ok(None), path: "/oauth2/v1/token", certificate: None }
    }

    /// What tokens issued over this channel are bound to, given the DPoP key it proved.
    pub(super) fn confirmation<'k>(&'k self, jkt: Option<&'k str>) -> Confirmation<'k> {
        Confirmation { jkt, x5t_s256: self.certificate.map(|c| c.thumbprint.as_str()) }
    }
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
    pub(super) keys: SharedKeySet,
    pub(super) clients: ClientTable,
    pub(super) limiter: FailureLimiter,
    pub(super) grants: GrantStore,
    pub(super) users: UserTable,
    pub(super) consumer: Arc<Client>,
    pub(super) clock: SharedClock,
    pub counters: Counters,
    /// What the service analytics report; shared with the provider-token flow.
    pub analytics: Arc<Analytics>,
    /// The DPoP proofs this node has accepted lately, token endpoint and admin API alike.
    pub(super) proofs: ReplayWindow,
    /// The keys those proofs were signed by, decoded once each.
    pub(super) proof_keys: Keys,
    /// The external issuers whose tokens authenticate apps, as the registry publishes them.
    federation: Arc<Federation>,
    /// The last token issued per reuse key (`tokens/reuse.rs`).
    pub(super) reuse: ReuseCache,
    /// Each quota app's window at this node (`tokens/quota.rs`).
    pub(super) quotas: Quotas,
    /// Our own tokens whose signatures this node has checked (`tokens/verified.rs`).
    pub(super) verified: VerifiedTokens,
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
    /// RFC 8693 §2.2.1: what a token exchange issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
    /// The app it was issued to (the stand-in client for a person's token), for the request
    /// log: shared, not copied.
    #[serde(skip)]
    pub client: Arc<Client>,
    /// Handed out again from the reuse cache, for the metrics.
    #[serde(skip)]
    pub reused: bool,
}

impl Issued {
    /// The answer's JSON (RFC 6749 §5.1), in one buffer sized for it: the tokens are most of it.
    pub fn to_json(&self) -> Vec<u8> {
        let tokens = self.access_token.len() + self.refresh_token.as_ref().map_or(0, String::len);
        let mut body = Vec::with_capacity(tokens + self.scope.len() + 192);
        // unwrap: a struct of strings and integers always serializes
        serde_json::to_writer(&mut body, self).expect("token response serializes");
        body
    }
}

/// Failures reserved by [`Issuer::begin_attempt`], one per window (address, name).
#[must_use = "an attempt is a reserved failure: refund it when the check passes"]
pub struct Attempt {
    reserved: [Option<Reservation>; 2],
}

/// What a token request may get for the audience it names.
pub(super) struct Target<'c> {
    pub audience: &'c str,
    /// The scopes it may ask for there.
    pub scopes: &'c [Scope],
    pub ttl: u64,
    /// The resource named, kept with a refresh family so that its refreshes stay there.
    pub resource: Option<&'c str>,
}

/// What a new refresh family is opened for.
pub(super) struct Opened<'a> {
    pub subject: &'a str,
    pub scope: &'a str,
    pub resource: Option<&'a str>,
    /// The DPoP key the family's refresh tokens are bound to.
    pub jkt: Option<&'a str>,
}

/// An access token as minted: the compact JWS and the claims grant state keeps.
pub struct Minted {
    pub token: String,
    pub exp: u64,
}

pub(super) const INVALID_GRANT: OAuthError =
    OAuthError::InvalidGrant(crate::oauth::REFRESH_REFUSED);

pub(super) fn store_failure(e: impl std::fmt::Display) -> OAuthError {
    tracing::error!(error = %e, "grant store failure");
    OAuthError::ServerError
}

/// A store fault that may only mean the shared database is out of reach for now.
pub(super) trait StoreFault: std::fmt::Display {
    fn is_unavailable(&self) -> bool;
}

impl StoreFault for GrantError {
    fn is_unavailable(&self) -> bool {
        GrantError::is_unavailable(self)
    }
}

impl StoreFault for StoreError {
    fn is_unavailable(&self) -> bool {
        StoreError::is_unavailable(self)
    }
}

/// `503` while the database cannot be reached, since the same request may well succeed in a
/// moment and a client should come back rather than give up; `500` for any other fault.
pub(super) fn grant_failure(e: impl StoreFault) -> OAuthError {
    if e.is_unavailable() {
        tracing::warn!(error = %e, "the store cannot be reached; nothing granted");
        return OAuthError::store_unavailable();
    }
    store_failure(e)
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
        let settings_proofs = settings.dpop_proofs;
        Issuer {
            settings,
            keys,
            clients,
            limiter: FailureLimiter::new(limits),
            grants,
            users,
            consumer: Arc::new(Client::consumer()),
            clock,
            counters: Counters::default(),
            analytics: Arc::default(),
            proofs: ReplayWindow::new(settings_proofs),
            proof_keys: Keys::new(PROOF_KEYS),
            federation: Arc::default(),
            reuse: ReuseCache::default(),
            quotas: Quotas::default(),
            verified: VerifiedTokens::default(),
        }
    }

    /// Trusts the issuers the registry publishes there (workload identity federation).
    pub fn with_federation(mut self, federation: Arc<Federation>) -> Issuer {
        self.federation = federation;
        self
    }

    pub fn federation(&self) -> &Federation {
        &self.federation
    }

    pub fn users(&self) -> &UserTable {
        &self.users
    }

    /// A signed-in user's token (Fusio): `sub` is the user's authId, `scope` the union of
    /// its roles' scopes, with a refresh token of its own family.
    pub async fn user_token(&self, auth_id: &str) -> Result<Issued, OAuthError> {
        self.user_token_with(auth_id, None, &Channel::plain(None)).await
    }

    /// A user's token from the token endpoint (`allow_user_credentials`): the scopes asked for
    /// within the user's, no resource but Tessera's own, and bound to a DPoP key or a
    /// certificate as an app's would be.
    pub async fn user_token_at_endpoint(
        &self,
        auth_id: &str,
        req: &TokenRequest,
        channel: &Channel<'_>,
    ) -> Result<Issued, OAuthError> {
        if req.audience.as_deref().is_some_and(|a| a != self.settings.default_audience) {
            return Err(OAuthError::InvalidTarget(TARGET_REFUSED));
        }
        self.user_token_with(auth_id, req.scope.as_deref(), channel).await
    }

    async fn user_token_with(
        &self,
        auth_id: &str,
        asked: Option<&str>,
        channel: &Channel<'_>,
    ) -> Result<Issued, OAuthError> {
        // Before the lookup, as for apps (`client_credentials`).
        let now = self.clock.now();
        let user = self
            .users
            .get(auth_id)
            .filter(|u| u.is_active)
            .ok_or(OAuthError::InvalidGrant("the user cannot sign in"))?;
        let scope = grant_scope(asked, &user.scopes)
            .map_err(|s| OAuthError::InvalidScope(s.to_string()))?;
        let ttl = self.settings.default_ttl.min(self.settings.max_ttl);
        let family = time_ordered_id();
        let audience = self.settings.default_audience.clone();
        let jkt = self.sender_key(&self.consumer, channel, now, None)?;
        let cnf = channel.confirmation(jkt.as_deref());
        let minted =
            self.mint(&self.consumer, auth_id, &scope, &audience, (ttl, now), Some(&family), cnf)?;
        let opened = Opened { subject: auth_id, scope: &scope, resource: None, jkt: cnf.jkt };
        let refresh = self.open_family(family, &self.consumer, opened, now).await?;
        let issued = self.issued(&self.consumer, minted, ttl, now, scope, Some(refresh), cnf);
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
        let cnf = Confirmation::default();
        let minted = self.mint(&self.consumer, auth_id, "", &audience, (ttl, now), None, cnf)?;
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
        channel: &Channel<'_>,
    ) -> Result<Issued, OAuthError> {
        let result = match req.grant_type {
            GrantType::ClientCredentials => self.client_credentials(req, channel).await,
            GrantType::RefreshToken => self.refresh(req, channel).await,
            GrantType::TokenExchange => self.token_exchange(req, channel).await,
            GrantType::Unsupported => Err(OAuthError::UnsupportedGrantType),
        };
        let counter = match &result {
            Ok(i) if i.refresh_token.is_some() && req.grant_type == GrantType::RefreshToken => {
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
        channel: &Channel<'_>,
    ) -> Result<Issued, OAuthError> {
        // Read before the client is looked up: a disable publishes first and takes its time
        // after, so whatever a request that still saw the app active issues is dated at or
        // before the disable and stays refused after a re-enable.
        let now = self.clock.now();
        let client = self
            .authenticate(&req.credentials, channel)
            .await?
            .ok_or(OAuthError::InvalidClient { is_basic: false })?;
        if !client.has_client_credentials {
            return Err(OAuthError::UnauthorizedClient);
        }
        let target = self.target(&client, req.audience.as_deref())?;
        let scope = grant_scope(req.scope.as_deref(), target.scopes)
            .map_err(|s| OAuthError::InvalidScope(s.to_string()))?;
        let jkt = self.sender_key(&client, channel, now, None)?;
        let cnf = channel.confirmation(jkt.as_deref());
        let Target { audience, ttl, resource, .. } = target;
        let sub = &*client.client_id;
        if !client.has_refresh_token {
            let reuse = self.reuse_key(&client, &scope, audience, cnf);
            if let Some(issued) = reuse.as_ref().and_then(|key| self.reused(key, &client, now)) {
                return Ok(issued);
            }
            self.take_quota(&client, now)?;
            let minted = self.mint(&client, sub, &scope, audience, (ttl, now), None, cnf)?;
            if let Some(key) = reuse {
                self.remember(key, &client, &minted, &scope, cnf, now);
            }
            return Ok(self.issued(&client, minted, ttl, now, scope, None, cnf));
        }
        self.take_quota(&client, now)?;
        let family = time_ordered_id();
        let minted = self.mint(&client, sub, &scope, audience, (ttl, now), Some(&family), cnf)?;
        let opened = Opened { subject: sub, scope: &scope, resource, jkt: jkt.as_deref() };
        let refresh_token = self.open_family(family, &client, opened, now).await?;
        Ok(self.issued(&client, minted, ttl, now, scope, Some(refresh_token), cnf))
    }

    #[allow(clippy::too_many_arguments)] // each is a distinct part of the answer
    pub(super) fn issued(
        &self,
        client: &Arc<Client>,
        minted: Minted,
        ttl: u64,
        now: u64,
        scope: String,
        refresh_token: Option<String>,
        cnf: Confirmation<'_>,
    ) -> Issued {
        Issued {
            access_token: minted.token,
            // RFC 9449 §5: a token bound to a DPoP key says so; a certificate-bound one stays
            // a Bearer token (RFC 8705 §3).
            token_type: if cnf.jkt.is_some() { "DPoP" } else { "Bearer" },
            expires_in: ttl,
            expires_on: now + ttl,
            scope,
            refresh_token,
            issued_token_type: None,
            client: Arc::clone(client),
            reused: false,
        }
    }

    /// The DPoP key a token request binds its tokens to (RFC 9449 §5): the proof's, once it
    /// has passed every check and not been seen before; none without a proof, unless the
    /// client must send one.
    pub(super) fn sender_key(
        &self,
        client: &Client,
        channel: &Channel<'_>,
        now: u64,
        bound: Option<&str>,
    ) -> Result<Option<String>, OAuthError> {
        let proof = match channel.dpop {
            Err(e) => return Err(OAuthError::InvalidDpopProof(e)),
            Ok(None) if client.require_dpop || bound.is_some() => {
                return Err(OAuthError::InvalidDpopProof(ProofError::Missing));
            }
            Ok(None) => return Ok(None),
            Ok(Some(proof)) => proof,
        };
        let htu = format!("{}{}", self.settings.issuer, channel.path);
        let expected = dpop::Expected { htm: "POST", htu: &htu, now, access_token: None };
        self.fresh_proof(proof, &expected, bound).map(Some)
    }

    /// Checks a DPoP proof — by the key `bound` names, when the token or grant is bound — and
    /// only then records its `jti`: the key's thumbprint when it is new here. A proof by another
    /// key is refused before it takes any room, so nobody fills the window with proofs that
    /// could never be accepted.
    pub fn fresh_proof(
        &self,
        proof: &str,
        expected: &dpop::Expected<'_>,
        bound: Option<&str>,
    ) -> Result<String, OAuthError> {
        let checked =
            dpop::check(proof, expected, &self.proof_keys).map_err(OAuthError::InvalidDpopProof)?;
        if bound.is_some_and(|key| key != checked.jkt) {
            return Err(OAuthError::InvalidDpopProof(ProofError::WrongKey));
        }
        match self.proofs.record(&checked, expected.now) {
            Seen::First => Ok(checked.jkt),
            Seen::Again => Err(OAuthError::InvalidDpopProof(ProofError::Replayed)),
            Seen::Full => Err(OAuthError::proofs_full()),
        }
    }

    /// What a request naming `resource` (RFC 8707) may get: the client's grant for it, or,
    /// when it names none (or Tessera's own default audience), the client's own scopes.
    /// A resource that is unknown or not granted is one answer: a client learns nothing of
    /// the resources it may not use.
    pub(super) fn target<'c>(
        &'c self,
        client: &'c Client,
        resource: Option<&str>,
    ) -> Result<Target<'c>, OAuthError> {
        let settings = &self.settings;
        let Some(identifier) = resource.filter(|r| *r != settings.default_audience) else {
            let ttl = client.ttl.unwrap_or(settings.default_ttl).min(settings.max_ttl);
            let audience = &settings.default_audience;
            return Ok(Target { audience, scopes: &client.scopes, ttl, resource: None });
        };
        // Never Tessera's own audience, whatever a resource registered under an older issuer
        // says: such a token would open the admin API.
        let grant = client
            .grant(identifier)
            .filter(|g| *g.identifier != *settings.issuer)
            .ok_or(OAuthError::InvalidTarget(TARGET_REFUSED))?;
        let ttl = grant.ttl.or(client.ttl).unwrap_or(settings.default_ttl).min(settings.max_ttl);
        let audience = &*grant.identifier;
        Ok(Target { audience, scopes: &grant.scopes, ttl, resource: Some(audience) })
    }

    /// Authenticates the client, if the request names one: `Ok(None)` when it sent no
    /// credentials at all (or a bare `client_id`), which only the refresh grant accepts.
    pub async fn authenticate(
        &self,
        credentials: &Credentials,
        channel: &Channel<'_>,
    ) -> Result<Option<Arc<Client>>, OAuthError> {
        let addr = channel.addr;
        let (client_id, secret, is_basic) = match credentials {
            Credentials::Basic { client_id, secret } => (client_id, secret, true),
            Credentials::Post { client_id, secret } => (client_id, secret, false),
            Credentials::ClientId(id) => {
                return match (channel.certificate, self.clients.get(id)) {
                    (Some(cert), Some(c)) if c.certificate().is_some() => {
                        self.authenticate_certificate(c, cert, addr).map(Some)
                    }
                    _ => Ok(None),
                };
            }
            Credentials::None => return Ok(None),
            Credentials::Assertion { client_id, assertion } => {
                let claimed = assertion::claimed_client(assertion);
                // A workload's token names its own issuer, never the app: the app is the
                // client_id the request sends beside it.
                let trusted = claimed.as_deref().and_then(|iss| self.federation.get(iss));
                if let (Some(id), Some(trusted)) = (client_id, trusted) {
                    let client = self.authenticate_federated(id, assertion, &trusted, addr);
                    return client.await.map(Some);
                }
                let id = client_id.clone().or(claimed).unwrap_or_default();
                return self.authenticate_assertion(&id, assertion, addr).await.map(Some);
            }
        };
        let attempt = self.begin_attempt(client_id, addr, self.clock.now())?;
        match self.clients.authenticate(client_id, secret) {
            Some(client) => {
                self.refund(attempt);
                Ok(Some(client))
            }
            None => Err(OAuthError::InvalidClient { is_basic }),
        }
    }

    /// RFC 8705 §2: the app named by `client_id` is the one the certificate was registered for
    /// — by its CA-issued name, or as one of its own certificates.
    fn authenticate_certificate(
        &self,
        client: Arc<Client>,
        cert: &ClientCertificate,
        addr: Option<IpAddr>,
    ) -> Result<Arc<Client>, OAuthError> {
        let attempt = self.begin_attempt(&client.client_id, addr, self.clock.now())?;
        let accepted =
            client.is_active && client.certificate().is_some_and(|auth| auth.accepts(cert));
        if !accepted {
            return Err(OAuthError::InvalidClient { is_basic: false });
        }
        self.refund(attempt);
        Ok(client)
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
        let usable = |c: &Arc<Client>| c.is_active && c.certificate().is_none();
        let checked = self.clients.get(client_id).filter(usable).and_then(|client| {
            let key = *client.public_key()?;
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
            .map_err(grant_failure)?
        {
            GrantOutcome::Recorded => {
                self.refund(attempt);
                Ok(client)
            }
            _ => Err(fail),
        }
    }

    /// Workload identity federation: the assertion is an external issuer's token, and the app
    /// accepts it when one of its federated identities matches. Every refusal is the one
    /// `invalid_client`; the reason goes to the debug log and the audit log only.
    async fn authenticate_federated(
        &self,
        client_id: &str,
        assertion: &str,
        trusted: &TrustedIssuer,
        addr: Option<IpAddr>,
    ) -> Result<Arc<Client>, OAuthError> {
        let fail = OAuthError::InvalidClient { is_basic: false };
        let now = self.clock.now();
        let attempt = self.begin_attempt(client_id, addr, now)?;
        let checked = async {
            let rules = &trusted.rules;
            let client = self
                .clients
                .get(client_id)
                .filter(|c| c.is_active && c.certificate().is_none())
                .filter(|c| c.federated().iter().any(|i| i.issuer == rules.issuer))
                .ok_or(Refusal::NoIdentity)?;
            let head = federation::assertion::header(assertion, rules)?;
            let keys = self.federation.keys_for(trusted, head.kid.as_deref(), now).await;
            let audiences = &self.settings.assertion_audiences;
            let identities = client.federated();
            let found = federation::assertion::check(
                assertion, &head, rules, &keys, identities, audiences, now,
            )?;
            Ok::<_, Refusal>((client, found))
        };
        let (client, found) = match checked.await {
            Ok(passed) => passed,
            Err(refusal) => {
                self.refuse_federated(client_id, &trusted.rules.issuer, &refusal, now);
                return Err(fail);
            }
        };
        // RFC 7523 §3 item 7, as for private_key_jwt: a jti is accepted once, per issuer.
        if let Some(jti) = &found.jti {
            let key = format!("{}\0{}", trusted.rules.issuer, jti);
            let exp = found.exp.saturating_add(federation::assertion::SKEW);
            let op = GrantOp::RecordAssertion { key, exp };
            match self.grants.submit(op).await.map_err(grant_failure)? {
                GrantOutcome::Recorded => {}
                _ => {
                    self.refuse_federated(
                        client_id,
                        &trusted.rules.issuer,
                        &Refusal::Replayed,
                        now,
                    );
                    return Err(fail);
                }
            }
        }
        self.refund(attempt);
        Ok(client)
    }

    fn refuse_federated(&self, client_id: &str, issuer: &str, refusal: &Refusal, now: u64) {
        tracing::debug!(client_id, issuer, reason = %refusal, "federated client assertion refused");
        let origin = Origin::app(client_id, None);
        let reason = format!("federated assertion from {issuer}: {refusal}");
        let event = origin.refusal(
            "app.federated_authentication",
            Some(format!("app:{client_id}")),
            reason,
            now,
        );
        audit::emit(&event);
        self.grants.submit_detached(GrantOp::Audit(event));
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
                Err(Full { retry_after, is_trip }) => {
                    if is_trip {
                        self.record_trip(slot, name, addr, retry_after, now);
                    }
                    // Refused unevaluated: not a failure of its own.
                    self.refund(attempt);
                    return Err(OAuthError::TooManyRequests { retry_after });
                }
            }
        }
        Ok(attempt)
    }

    /// A window just filled: recorded once per window, off the answer's path (the grant
    /// store commits it with its next batch).
    fn record_trip(
        &self,
        slot: usize,
        name: &str,
        addr: Option<IpAddr>,
        retry_after: u64,
        now: u64,
    ) {
        let target = match (slot, addr) {
            (0, Some(ip)) => format!("address:{ip}"),
            _ => format!("client:{name}"),
        };
        let reason = format!("too many failed authentications; refused for {retry_after} s");
        let event = Origin::system().refusal("rate_limit.trip", Some(target), reason, now);
        audit::emit(&event);
        self.grants.submit_detached(GrantOp::Audit(event));
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
        (ttl, now): (u64, u64),
        sid: Option<&str>,
        cnf: Confirmation<'_>,
    ) -> Result<Minted, OAuthError> {
        let keys = self.keys.load();
        // A server without a current key is not ready; /readyz says so and this refuses.
        let signer = keys.signer.as_ref().ok_or(OAuthError::ServerError)?;
        let iss = &self.settings.issuer;
        Ok(mint_with(signer, iss, client, sub, scope, audience, (ttl, now), sid, cnf))
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
    (ttl, now): (u64, u64),
    sid: Option<&str>,
    cnf: Confirmation<'_>,
) -> Minted {
    let jti = Jti::new();
    let claims = OutgoingClaims {
        iss,
        sub,
        aud: audience,
        exp: now + ttl,
        iat: now,
        nbf: now,
        jti: jti.as_str(),
        client_id: &client.client_id,
        scope,
        sid,
        cnf,
        act: None,
    };
    sign_claims(signer, client, &claims)
}

/// A token id no one can guess or repeat: 128 random bits, base64url, kept on the stack.
pub(super) struct Jti([u8; 22]);

impl Jti {
    pub(super) fn new() -> Jti {
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        let mut text = [0u8; 22];
        // 16 bytes are exactly 22 characters unpadded, so this always fits.
        let _ = URL_SAFE_NO_PAD.encode_slice(bytes, &mut text);
        Jti(text)
    }

    pub(super) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// Serializes the claims with the client's `tokenClaims` spliced in, and signs them.
pub(super) fn sign_claims(signer: &Signer, client: &Client, claims: &OutgoingClaims<'_>) -> Minted {
    let mut json = Vec::with_capacity(256 + client.claims_fragment().len());
    // unwrap: a struct of strings and integers always serializes
    serde_json::to_writer(&mut json, claims).expect("claims serialize");
    if !client.claims_fragment().is_empty() {
        json.pop();
        json.push(b',');
        json.extend_from_slice(client.claims_fragment().as_bytes());
        json.push(b'}');
    }
    Minted { token: jws::sign(signer, &json), exp: claims.exp }
}
