//! The client table: the registry's published view of apps, read by the hot path.

use std::sync::Arc;

use dashmap::DashMap;
use tessera_storage::{AppRecord, FederatedIdentity, ResourceRecord};

use crate::auth::certificate::{CertificateAuth, ExpectedName, registered_thumbprint};
use crate::auth::secret::{SecretHash, from_hex, hash_matches, hash_secret};
use crate::federation::{Identity, SubjectPattern};

/// What authentication and issuance need of an app, prepared once per change.
#[derive(Debug)]
pub struct Client {
    pub client_id: String,
    secrets: Vec<SecretHash>,
    pub scopes: Vec<String>,
    pub has_client_credentials: bool,
    pub has_refresh_token: bool,
    pub is_active: bool,
    /// When the app was last disabled: its tokens issued at or before then stay refused.
    pub disabled_at: Option<u64>,
    pub ttl: Option<u64>,
    /// `tokenClaims` serialized without braces (`"k":v,…`), spliced into every token.
    pub claims_fragment: String,
    /// The Ed25519 key its client assertions must be signed with (`private_key_jwt`).
    pub public_key: Option<[u8; 32]>,
    /// What it may ask of each resource (RFC 8707), sorted by identifier.
    resources: Vec<ResourceGrant>,
    /// Every token request must carry a DPoP proof.
    pub require_dpop: bool,
    /// How it proves itself with a client certificate (RFC 8705), if it does; then no secret
    /// or assertion speaks for it.
    pub certificate: Option<CertificateAuth>,
    /// External workload identities that authenticate as it, with no secret.
    pub federated: Vec<Identity>,
    /// May trade a token it was sent for one on that token's subject's behalf (RFC 8693).
    pub can_exchange: bool,
    /// Its own say on token reuse; `None` follows the server (`tokens/reuse.rs`).
    pub token_reuse: Option<bool>,
    /// Tokens a node issues it per minute at most (`tokens/quota.rs`).
    pub tokens_per_minute: Option<u32>,
}

/// An app's grant for one resource, with the resource's token lifetime folded in so that a
/// token request naming it reads this client alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceGrant {
    pub identifier: String,
    pub scopes: Vec<String>,
    /// The resource's `accessTokenTtlSecs`, which wins over the app's.
    pub ttl: Option<u64>,
}

impl Client {
    /// The client as the hot path reads it; `resource_of` finds each granted resource. A grant
    /// is published only as far as its resource allows now: none for a resource that is gone,
    /// none of a scope it no longer has — whatever another node wrote meanwhile.
    pub fn from_record<'r>(
        app: &AppRecord,
        resource_of: impl Fn(&str) -> Option<&'r ResourceRecord>,
    ) -> Client {
        let secrets = std::iter::once(&app.secret_hash)
            .chain(app.next_secret_hash.as_ref())
            .filter_map(|h| from_hex(h))
            .collect();
        let claims = serde_json::Value::Object(app.token_claims.clone()).to_string();
        Client {
            client_id: app.client_id.clone(),
            secrets,
            scopes: app.scopes.clone(),
            has_client_credentials: app.grant_types.iter().any(|g| g == GRANT_CLIENT_CREDENTIALS),
            has_refresh_token: app.grant_types.iter().any(|g| g == GRANT_REFRESH_TOKEN),
            is_active: app.is_active,
            disabled_at: app.disabled_at,
            ttl: app.access_token_ttl_secs,
            claims_fragment: claims[1..claims.len() - 1].to_string(),
            public_key: app.public_key_jwk.as_ref().and_then(jwk_key_bytes),
            // A BTreeMap iterates in key order: sorted, as `grant` searches it.
            resources: app
                .resources
                .iter()
                .filter_map(|(identifier, scopes)| {
                    let resource = resource_of(identifier)?;
                    Some(ResourceGrant {
                        identifier: identifier.clone(),
                        scopes: scopes
                            .iter()
                            .filter(|s| resource.scopes.contains(s))
                            .cloned()
                            .collect(),
                        ttl: resource.access_token_ttl_secs,
                    })
                })
                .collect(),
            require_dpop: app.require_dpop,
            certificate: certificate_auth(app),
            federated: app.federated_identities.iter().filter_map(identity).collect(),
            can_exchange: app.can_exchange,
            token_reuse: app.token_reuse,
            tokens_per_minute: app.token_quota.map(|q| q.per_minute),
        }
    }

    /// Its grant for the resource `identifier`, if it holds one.
    pub fn grant(&self, identifier: &str) -> Option<&ResourceGrant> {
        let at = self.resources.binary_search_by(|g| g.identifier.as_str().cmp(identifier)).ok()?;
        Some(&self.resources[at])
    }
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
    pub fn consumer_with(scopes: Vec<String>) -> Client {
        Client { scopes, ..Client::consumer() }
    }

    /// The stand-in client of consumer tokens: no secret, no claims of its own.
    pub fn consumer() -> Client {
        Client {
            client_id: CONSUMER_CLIENT_ID.into(),
            secrets: Vec::new(),
            scopes: Vec::new(),
            has_client_credentials: false,
            has_refresh_token: true,
            is_active: true,
            disabled_at: None,
            ttl: None,
            claims_fragment: String::new(),
            public_key: None,
            resources: Vec::new(),
            require_dpop: false,
            certificate: None,
            federated: Vec::new(),
            can_exchange: false,
            token_reuse: None,
            tokens_per_minute: None,
        }
    }
}

/// A digest no secret maps to in practice, compared against when the client is unknown so
/// that both failures cost the same work.
const DUMMY: SecretHash = [0x5a; 32];

/// client id → client, shared by the registry (writer) and the workers (readers).
#[derive(Clone, Default)]
pub struct ClientTable(Arc<DashMap<String, Arc<Client>>>);

impl ClientTable {
    pub fn get(&self, client_id: &str) -> Option<Arc<Client>> {
        self.0.get(client_id).map(|c| Arc::clone(&c))
    }

    pub(crate) fn put(&self, client: Client) {
        self.0.insert(client.client_id.clone(), Arc::new(client));
    }

    pub(crate) fn remove(&self, client_id: &str) {
        self.0.remove(client_id);
    }

    /// Checks a client secret. Unknown client, wrong secret and disabled app are one answer,
    /// reached through the same hashing and comparisons.
    pub fn authenticate(&self, client_id: &str, secret: &str) -> Option<Arc<Client>> {
        let presented = hash_secret(secret);
        let client = self.get(client_id);
        let stored: &[SecretHash] = match &client {
            Some(c) if !c.secrets.is_empty() => &c.secrets,
            _ => std::slice::from_ref(&DUMMY),
        };
        let mut is_match = false;
        for hash in stored {
            is_match |= hash_matches(hash, &presented);
        }
        // An app registered for certificates is not one a secret can speak for.
        client.filter(|c| is_match && c.is_active && c.certificate.is_none())
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
