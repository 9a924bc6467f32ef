//! The client table: the registry's published view of apps, read by the hot path.

use std::sync::Arc;

use dashmap::DashMap;
use foldhash::fast::RandomState;
use serde_json::{Map, Value};
use tessera_storage::{AppRecord, FederatedIdentity, TlsClientAuth, TokenQuota};

use super::scopes::{Interner, Scope, ScopeSet, holds};

use crate::auth::certificate::{CertificateAuth, ExpectedName, registered_thumbprint};
use crate::auth::secret::{SecretHash, from_hex, hash_matches, hash_secret, to_hex};
use crate::federation::{Identity, SubjectPattern};

/// An app as memory holds it: what authentication and issuance need, prepared once per
/// change, and the rest of its record, so that it is the one copy of the app. The registry's
/// index and the published table hold the same `Arc`; admin reads and the registry's checks
/// read the record back from it (`record`). Most apps have no description, metadata, claims,
/// keys, certificates, identities or resource grants: those sit behind one pointer, absent
/// for them.
#[derive(Debug, Clone)]
pub struct Client {
    pub client_id: Arc<str>,
    /// The SHA-256 of its secret and, while a rotation is under way, of the next one; a stored
    /// digest that does not parse is no secret at all.
    secrets: [Option<SecretHash>; 2],
    /// As registered: the order is the order of a token's `scope` when none is asked for.
    pub scopes: ScopeSet,
    pub name: Box<str>,
    pub created_at: u64,
    pub updated_at: u64,
    /// When the app was last disabled: its tokens issued at or before then stay refused.
    pub disabled_at: Option<u64>,
    pub ttl: Option<u64>,
    /// Tokens a node issues it per minute at most (`tokens/quota.rs`).
    pub tokens_per_minute: Option<u32>,
    pub has_client_credentials: bool,
    pub has_refresh_token: bool,
    /// Its grant types were registered refresh token first.
    is_refresh_first: bool,
    pub is_active: bool,
    /// Every token request must carry a DPoP proof.
    pub require_dpop: bool,
    /// May trade a token it was sent for one on that token's subject's behalf (RFC 8693).
    pub can_exchange: bool,
    /// Its own say on token reuse; `None` follows the server (`tokens/reuse.rs`).
    pub token_reuse: Option<bool>,
    rare: Option<Box<Rare>>,
}

/// What few apps have.
#[derive(Debug, Clone, Default)]
struct Rare {
    /// `tokenClaims` serialized without braces (`"k":v,…`), spliced into every token.
    claims_fragment: Box<str>,
    /// The Ed25519 key its client assertions must be signed with (`private_key_jwt`).
    public_key: Option<[u8; 32]>,
    /// What it may ask of each resource (RFC 8707) as published, sorted by identifier.
    resources: Box<[ResourceGrant]>,
    /// Its grants as registered, sorted by identifier: what the registry checks and rewrites,
    /// and what `resources` is published from.
    granted: Box<[Granted]>,
    /// How it proves itself with a client certificate (RFC 8705), if it does; then no secret
    /// or assertion speaks for it.
    certificate: Option<CertificateAuth>,
    /// External workload identities that authenticate as it, with no secret.
    federated: Box<[Identity]>,
    /// The rest of the record as registered, for admin reads.
    description: Box<str>,
    metadata: Map<String, Value>,
    token_claims: Map<String, Value>,
    public_key_jwk: Option<Value>,
    tls_client_auth: Option<TlsClientAuth>,
    self_signed_certificates: Box<[String]>,
    /// Every federated identity, those that no longer parse included.
    federated_identities: Box<[FederatedIdentity]>,
    /// Grant types and digests as stored when the common fields cannot say them exactly
    /// (written under other rules): a record read back is the record stored.
    odd_grant_types: Option<Box<[String]>>,
    odd_secrets: Option<(String, Option<String>)>,
}

impl Rare {
    fn is_empty(&self) -> bool {
        self.claims_fragment.is_empty()
            && self.public_key.is_none()
            && self.granted.is_empty()
            && self.certificate.is_none()
            && self.description.is_empty()
            && self.metadata.is_empty()
            && self.token_claims.is_empty()
            && self.public_key_jwk.is_none()
            && self.tls_client_auth.is_none()
            && self.self_signed_certificates.is_empty()
            && self.federated_identities.is_empty()
            && self.odd_grant_types.is_none()
            && self.odd_secrets.is_none()
    }
}

/// An app's grant for one resource, with the resource's token lifetime folded in so that a
/// token request naming it reads this client alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceGrant {
    pub identifier: Scope,
    pub scopes: ScopeSet,
    /// The resource's `accessTokenTtlSecs`, which wins over the app's.
    pub ttl: Option<u64>,
}

/// An app's grant for one resource as its record holds it, whatever the resource now allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    pub identifier: Scope,
    pub scopes: ScopeSet,
}

/// What a resource allows now, as a grant for it is published.
pub struct ResourceNow<'r> {
    pub scopes: &'r [String],
    pub ttl: Option<u64>,
}

impl Client {
    /// The client as the hot path reads it; `resource_of` finds each granted resource, and
    /// `is_claim_kept` says which `tokenClaims` may reach a token. A grant is published only as
    /// far as its resource allows now: none for a resource that is gone, none of a scope it no
    /// longer has — whatever another node wrote meanwhile.
    pub fn from_record<'r>(
        app: &AppRecord,
        resource_of: impl Fn(&str) -> Option<ResourceNow<'r>>,
        is_claim_kept: impl Fn(&str) -> bool,
        interner: &mut Interner,
    ) -> Client {
        let has = |grant: &str| app.grant_types.iter().any(|g| g == grant);
        let (has_client_credentials, has_refresh_token) =
            (has(GRANT_CLIENT_CREDENTIALS), has(GRANT_REFRESH_TOKEN));
        let is_refresh_first = app.grant_types.first().is_some_and(|g| g == GRANT_REFRESH_TOKEN);
        let secrets =
            [from_hex(&app.secret_hash), app.next_secret_hash.as_deref().and_then(from_hex)];
        // A BTreeMap iterates in key order: sorted, as `grant` searches it.
        let granted = app
            .resources
            .iter()
            .map(|(identifier, scopes)| Granted {
                identifier: interner.name(identifier),
                scopes: interner.set(scopes),
            })
            .collect();
        let mut rare = Rare {
            claims_fragment: claims_fragment(app, is_claim_kept).into(),
            public_key: app.public_key_jwk.as_ref().and_then(jwk_key_bytes),
            resources: Box::default(),
            granted,
            certificate: certificate_auth(app),
            federated: app.federated_identities.iter().filter_map(identity).collect(),
            description: app.description.as_str().into(),
            metadata: app.metadata.clone(),
            token_claims: app.token_claims.clone(),
            public_key_jwk: app.public_key_jwk.clone(),
            tls_client_auth: app.tls_client_auth.clone(),
            self_signed_certificates: app.self_signed_certificates.clone().into(),
            federated_identities: app.federated_identities.clone().into(),
            odd_grant_types: None,
            odd_secrets: None,
        };
        rare.resources = published(&rare.granted, resource_of, interner);
        let mut client = Client {
            client_id: Arc::from(app.client_id.as_str()),
            secrets,
            scopes: interner.set(&app.scopes),
            name: app.name.as_str().into(),
            created_at: app.created_at,
            updated_at: app.updated_at,
            disabled_at: app.disabled_at,
            ttl: app.access_token_ttl_secs,
            tokens_per_minute: app.token_quota.map(|q| q.per_minute),
            has_client_credentials,
            has_refresh_token,
            is_refresh_first,
            is_active: app.is_active,
            require_dpop: app.require_dpop,
            can_exchange: app.can_exchange,
            token_reuse: app.token_reuse,
            rare: None,
        };
        if client.grant_types() != app.grant_types {
            rare.odd_grant_types = Some(app.grant_types.clone().into());
        }
        let (secret, next) = client.secret_hashes();
        if secret != app.secret_hash || next != app.next_secret_hash {
            rare.odd_secrets = Some((app.secret_hash.clone(), app.next_secret_hash.clone()));
        }
        client.rare = (!rare.is_empty()).then(|| Box::new(rare));
        client
    }

    /// The app's record, as it was built from (`id` is the index's key).
    pub fn record(&self, id: &str) -> AppRecord {
        let rare = self.rare.as_deref();
        let (secret_hash, next_secret_hash) = self.secret_hashes();
        let granted = self
            .granted()
            .iter()
            .map(|g| (g.identifier.to_string(), g.scopes.iter().map(|s| s.to_string()).collect()));
        AppRecord {
            id: id.to_string(),
            client_id: self.client_id.to_string(),
            name: self.name.to_string(),
            description: rare.map(|r| r.description.to_string()).unwrap_or_default(),
            scopes: self.scopes.iter().map(|s| s.to_string()).collect(),
            grant_types: self.grant_types(),
            is_active: self.is_active,
            metadata: rare.map(|r| r.metadata.clone()).unwrap_or_default(),
            token_claims: rare.map(|r| r.token_claims.clone()).unwrap_or_default(),
            access_token_ttl_secs: self.ttl,
            public_key_jwk: rare.and_then(|r| r.public_key_jwk.clone()),
            secret_hash,
            next_secret_hash,
            created_at: self.created_at,
            updated_at: self.updated_at,
            disabled_at: self.disabled_at,
            resources: granted.collect(),
            require_dpop: self.require_dpop,
            tls_client_auth: rare.and_then(|r| r.tls_client_auth.clone()),
            self_signed_certificates: rare
                .map(|r| r.self_signed_certificates.to_vec())
                .unwrap_or_default(),
            federated_identities: rare.map(|r| r.federated_identities.to_vec()).unwrap_or_default(),
            can_exchange: self.can_exchange,
            token_reuse: self.token_reuse,
            token_quota: self.tokens_per_minute.map(|per_minute| TokenQuota { per_minute }),
        }
    }

    fn grant_types(&self) -> Vec<String> {
        if let Some(odd) = self.rare.as_ref().and_then(|r| r.odd_grant_types.as_ref()) {
            return odd.to_vec();
        }
        let mut grants = Vec::with_capacity(2);
        if self.has_client_credentials {
            grants.push(GRANT_CLIENT_CREDENTIALS.to_string());
        }
        if self.has_refresh_token {
            let at = if self.is_refresh_first { 0 } else { grants.len() };
            grants.insert(at, GRANT_REFRESH_TOKEN.to_string());
        }
        grants
    }

    fn secret_hashes(&self) -> (String, Option<String>) {
        if let Some(odd) = self.rare.as_ref().and_then(|r| r.odd_secrets.as_ref()) {
            return odd.clone();
        }
        let [secret, next] = &self.secrets;
        (secret.as_ref().map(|h| to_hex(h)).unwrap_or_default(), next.as_ref().map(|h| to_hex(h)))
    }

    /// This client with its grants published afresh from `resource_of`, or `None` when it
    /// holds no grant, which no resource change can reach.
    pub fn regranted<'r>(
        &self,
        resource_of: impl Fn(&str) -> Option<ResourceNow<'r>>,
        interner: &mut Interner,
    ) -> Option<Client> {
        let rare = self.rare.as_ref().filter(|r| !r.granted.is_empty())?;
        let resources = published(&rare.granted, resource_of, interner);
        let rare = Some(Box::new(Rare { resources, ..(**rare).clone() }));
        Some(Client { rare, ..self.clone() })
    }

    /// Its grant for the resource `identifier`, if it holds one.
    pub fn grant(&self, identifier: &str) -> Option<&ResourceGrant> {
        let resources = &self.rare.as_ref()?.resources;
        let at = resources.binary_search_by(|g| (*g.identifier).cmp(identifier)).ok()?;
        Some(&resources[at])
    }

    /// Its grants as registered, sorted by identifier.
    pub fn granted(&self) -> &[Granted] {
        self.rare.as_ref().map_or(&[], |r| &r.granted)
    }

    /// Whether its record grants it anything of the resource `identifier`.
    pub fn has_grant_for(&self, identifier: &str) -> bool {
        self.granted().binary_search_by(|g| (*g.identifier).cmp(identifier)).is_ok()
    }

    /// Whether it holds the scope `name`, for itself or for a resource: whether a credential
    /// of it carries that scope.
    pub fn holds_anywhere(&self, name: &str) -> bool {
        holds(&self.scopes, name) || self.granted().iter().any(|g| holds(&g.scopes, name))
    }

    /// Whether one of its federated identities (usable or not) names the issuer `url`.
    pub fn names_issuer(&self, url: &str) -> bool {
        self.rare.as_ref().is_some_and(|r| r.federated_identities.iter().any(|f| f.issuer == url))
    }

    /// `tokenClaims` serialized without braces (`"k":v,…`), spliced into every token.
    pub fn claims_fragment(&self) -> &str {
        self.rare.as_ref().map_or("", |r| &r.claims_fragment)
    }

    /// The Ed25519 key its client assertions must be signed with (`private_key_jwt`).
    pub fn public_key(&self) -> Option<&[u8; 32]> {
        self.rare.as_ref()?.public_key.as_ref()
    }

    /// How it proves itself with a client certificate (RFC 8705), if it does; then no secret
    /// or assertion speaks for it.
    pub fn certificate(&self) -> Option<&CertificateAuth> {
        self.rare.as_ref()?.certificate.as_ref()
    }

    /// External workload identities that authenticate as it, with no secret.
    pub fn federated(&self) -> &[Identity] {
        self.rare.as_ref().map_or(&[], |r| &r.federated)
    }
}

/// The grants `granted` gives as far as each resource allows now.
fn published<'r>(
    granted: &[Granted],
    resource_of: impl Fn(&str) -> Option<ResourceNow<'r>>,
    interner: &mut Interner,
) -> Box<[ResourceGrant]> {
    granted
        .iter()
        .filter_map(|g| {
            let resource = resource_of(&g.identifier)?;
            let allowed = |s: &&Scope| resource.scopes.iter().any(|r| *r == ***s);
            let scopes = if g.scopes.iter().all(|s| allowed(&s)) {
                Arc::clone(&g.scopes)
            } else {
                interner.set(&g.scopes.iter().filter(allowed).cloned().collect::<Vec<_>>())
            };
            Some(ResourceGrant { identifier: Arc::clone(&g.identifier), scopes, ttl: resource.ttl })
        })
        .collect()
}

/// The app's `tokenClaims` that may reach a token, as `"k":v,…`.
fn claims_fragment(app: &AppRecord, is_claim_kept: impl Fn(&str) -> bool) -> String {
    let mut fragment = String::new();
    for (name, value) in app.token_claims.iter().filter(|(k, _)| is_claim_kept(k)) {
        if !fragment.is_empty() {
            fragment.push(',');
        }
        fragment.push_str(&serde_json::Value::String(name.clone()).to_string());
        fragment.push(':');
        fragment.push_str(&value.to_string());
    }
    fragment
}

/// An identity as the token path matches it; one whose pattern no longer parses (written
/// under older rules) accepts nothing.
fn identity(entry: &FederatedIdentity) -> Option<Identity> {
    Some(Identity {
        issuer: entry.issuer.clone(),
        subject: SubjectPattern::parse(&entry.subject).ok()?,
        audience: entry.audience.clone(),
        claims: entry.claims.clone(),
    })
}

/// The `client_id` of tokens issued to people who signed in (consumer login, user credentials):
/// no app holds it, so such tokens never pass Tessera's admin API.
pub const CONSUMER_CLIENT_ID: &str = "tessera-consumer";

impl Client {
    /// The stand-in client for a signed-in user holding `scopes`.
    pub fn consumer_with(scopes: &[String]) -> Client {
        let scopes = scopes.iter().map(|s| Scope::from(s.as_str())).collect();
        Client { scopes, ..Client::consumer() }
    }

    /// The stand-in client of consumer tokens: no secret, no claims of its own.
    pub fn consumer() -> Client {
        Client {
            client_id: CONSUMER_CLIENT_ID.into(),
            secrets: [None, None],
            scopes: ScopeSet::from([]),
            name: Box::default(),
            created_at: 0,
            updated_at: 0,
            disabled_at: None,
            ttl: None,
            tokens_per_minute: None,
            has_client_credentials: false,
            has_refresh_token: true,
            is_refresh_first: false,
            is_active: true,
            require_dpop: false,
            can_exchange: false,
            token_reuse: None,
            rare: None,
        }
    }
}

/// A digest no secret maps to in practice, compared against when the client is unknown so
/// that both failures cost the same work.
const DUMMY: SecretHash = [0x5a; 32];

/// client id → client, shared by the registry (writer) and the workers (readers). The key is
/// the client's own `client_id`, not a copy.
#[derive(Clone, Default)]
pub struct ClientTable(Arc<DashMap<Arc<str>, Arc<Client>, RandomState>>);

impl ClientTable {
    /// A table with room for `apps` clients, so that loading a fleet never rehashes it.
    pub fn with_capacity(apps: usize) -> ClientTable {
        ClientTable(Arc::new(DashMap::with_capacity_and_hasher(apps, RandomState::default())))
    }

    pub fn get(&self, client_id: &str) -> Option<Arc<Client>> {
        self.0.get(client_id).map(|c| Arc::clone(&c))
    }

    pub(crate) fn put(&self, client: Arc<Client>) {
        self.0.insert(Arc::clone(&client.client_id), client);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn remove(&self, client_id: &str) {
        self.0.remove(client_id);
    }

    /// Checks a client secret. Unknown client, wrong secret and disabled app are one answer,
    /// reached through the same hashing and comparisons.
    pub fn authenticate(&self, client_id: &str, secret: &str) -> Option<Arc<Client>> {
        let presented = hash_secret(secret);
        let client = self.get(client_id);
        let stored = match &client {
            Some(c) if c.secrets.iter().any(Option::is_some) => &c.secrets,
            _ => &[Some(DUMMY), None],
        };
        let mut is_match = false;
        for hash in stored.iter().flatten() {
            is_match |= hash_matches(hash, &presented);
        }
        // An app registered for certificates is not one a secret can speak for.
        client.filter(|c| is_match && c.is_active && c.certificate().is_none())
    }
}

pub const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";
pub const GRANT_REFRESH_TOKEN: &str = "refresh_token";

/// What an app's registration says about certificates, made ready to compare.
fn certificate_auth(app: &AppRecord) -> Option<CertificateAuth> {
    if let Some(auth) = &app.tls_client_auth {
        let name = if let Some(dn) = &auth.subject_dn {
            ExpectedName::SubjectDn(dn.clone())
        } else if let Some(dns) = &auth.san_dns {
            ExpectedName::SanDns(dns.clone())
        } else if let Some(uri) = &auth.san_uri {
            ExpectedName::SanUri(uri.clone())
        } else if let Some(ip) = auth.san_ip.as_deref().and_then(|ip| ip.parse().ok()) {
            ExpectedName::SanIp(ip)
        } else {
            ExpectedName::SanEmail(auth.san_email.clone()?)
        };
        return Some(CertificateAuth::Name(name));
    }
    if app.self_signed_certificates.is_empty() {
        return None;
    }
    let thumbprints =
        app.self_signed_certificates.iter().filter_map(|c| registered_thumbprint(c)).collect();
    Some(CertificateAuth::SelfSigned(thumbprints))
}

/// The 32 key bytes of a checked Ed25519 public JWK.
pub fn jwk_key_bytes(jwk: &serde_json::Value) -> Option<[u8; 32]> {
    use base64::Engine;
    let x = jwk.get("x")?.as_str()?;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(x).ok()?.try_into().ok()
}
