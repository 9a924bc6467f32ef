//! The client table: the registry's published view of apps, read by the hot path.

use std::sync::Arc;

use dashmap::DashMap;
use foldhash::fast::RandomState;
use tessera_storage::{AppRecord, FederatedIdentity};

use super::scopes::{Interner, Scope, ScopeSet, holds};

use crate::auth::certificate::{CertificateAuth, ExpectedName, registered_thumbprint};
use crate::auth::secret::{SecretHash, from_hex, hash_matches, hash_secret};
use crate::federation::{Identity, SubjectPattern};

/// What authentication and issuance need of an app, prepared once per change. It is the one
/// copy of an app in memory: the registry's index and the published table hold the same `Arc`,
/// and what the registry's checks ask of apps (their scopes and grants as registered, the
/// issuers they name) is kept here too. Most apps have no claims, keys, certificates,
/// identities or resource grants: those sit behind one pointer, absent for them.
#[derive(Debug, Clone)]
pub struct Client {
    pub client_id: Arc<str>,
    /// The SHA-256 of its secret and, while a rotation is under way, of the next one; a stored
    /// digest that does not parse is no secret at all.
    secrets: [Option<SecretHash>; 2],
    /// As registered: the order is the order of a token's `scope` when none is asked for.
    pub scopes: ScopeSet,
    pub has_client_credentials: bool,
    pub has_refresh_token: bool,
    pub is_active: bool,
    /// Every token request must carry a DPoP proof.
    pub require_dpop: bool,
    /// May trade a token it was sent for one on that token's subject's behalf (RFC 8693).
    pub can_exchange: bool,
    /// Its own say on token reuse; `None` follows the server (`tokens/reuse.rs`).
    pub token_reuse: Option<bool>,
    /// When the app was last disabled: its tokens issued at or before then stay refused.
    pub disabled_at: Option<u64>,
    pub ttl: Option<u64>,
    /// Tokens a node issues it per minute at most (`tokens/quota.rs`).
    pub tokens_per_minute: Option<u32>,
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
    /// The issuer of each of its federated identities, including any that no longer parses.
    issuers: Box<[Scope]>,
}

impl Rare {
    fn is_empty(&self) -> bool {
        self.claims_fragment.is_empty()
            && self.public_key.is_none()
            && self.granted.is_empty()
            && self.certificate.is_none()
            && self.issuers.is_empty()
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
        let secret = |h: &Option<String>| h.as_deref().and_then(from_hex);
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
            issuers: app.federated_identities.iter().map(|f| interner.name(&f.issuer)).collect(),
        };
        rare.resources = published(&rare.granted, resource_of, interner);
        Client {
            client_id: Arc::from(app.client_id.as_str()),
            secrets: [from_hex(&app.secret_hash), secret(&app.next_secret_hash)],
            scopes: interner.set(&app.scopes),
            has_client_credentials: app.grant_types.iter().any(|g| g == GRANT_CLIENT_CREDENTIALS),
            has_refresh_token: app.grant_types.iter().any(|g| g == GRANT_REFRESH_TOKEN),
            is_active: app.is_active,
            require_dpop: app.require_dpop,
            can_exchange: app.can_exchange,
            token_reuse: app.token_reuse,
            disabled_at: app.disabled_at,
            ttl: app.access_token_ttl_secs,
            tokens_per_minute: app.token_quota.map(|q| q.per_minute),
            rare: (!rare.is_empty()).then(|| Box::new(rare)),
        }
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

    /// Whether one of its federated identities names the issuer `url`.
    pub fn names_issuer(&self, url: &str) -> bool {
        self.rare.as_ref().is_some_and(|r| r.issuers.iter().any(|i| &**i == url))
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
            has_client_credentials: false,
            has_refresh_token: true,
            is_active: true,
            require_dpop: false,
            can_exchange: false,
            token_reuse: None,
            disabled_at: None,
            ttl: None,
            tokens_per_minute: None,
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
