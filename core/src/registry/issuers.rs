//! Trusted issuers (workload identity federation): the external token issuers whose tokens
//! apps may accept in place of a secret. An app's federated identities name an issuer by its
//! URL, so an issuer that apps name cannot be deleted until they stop.

use tessera_storage::{FederatedIdentity, IssuerRecord, RegistryChange};

use super::{ConflictKind, Listed, Page, Registry, RegistryError};
use crate::auth::secret::random_token;
use crate::auth::url_rule;
use crate::federation::SubjectPattern;
use crate::federation::jwks::{ALGORITHMS, KeySet};

/// A new trusted issuer, as the admin API takes it.
#[derive(Debug, Clone, Default)]
pub struct IssuerInput {
    pub issuer: Option<String>,
    pub jwks_uri: Option<String>,
    pub jwks: Option<serde_json::Value>,
    pub algorithms: Option<Vec<String>>,
    pub max_token_age_secs: Option<u64>,
}

const MAX_URL: usize = 512;
/// A day: a workload token older than that is no one's current identity.
const MAX_TOKEN_AGE: u64 = 86_400;

impl Registry {
    pub(super) fn list_issuers(&self, page: Page) -> Listed<IssuerRecord> {
        page.of(self.issuers.values().cloned(), self.issuers.len())
    }

    pub(super) fn issuer(&self, id: &str) -> Result<&IssuerRecord, RegistryError> {
        self.issuers.get(id).ok_or(RegistryError::NotFound)
    }

    /// The registered issuer with this `issuer` URL.
    pub(super) fn issuer_by_url(&self, url: &str) -> Option<&IssuerRecord> {
        self.issuers.values().find(|i| i.issuer == url)
    }

    pub(super) fn create_issuer(
        &mut self,
        input: IssuerInput,
    ) -> Result<IssuerRecord, RegistryError> {
        let issuer =
            input.issuer.ok_or_else(|| RegistryError::invalid("issuer", "issuer is required"))?;
        check_url("issuer", &issuer)?;
        if self.limits.own_audiences.contains(&issuer) {
            return Err(RegistryError::invalid(
                "issuer",
                "Tessera cannot trust itself as an external issuer",
            ));
        }
        if self.issuer_by_url(&issuer).is_some() {
            return Err(RegistryError::Conflict(ConflictKind::Issuer));
        }
        if let Some(uri) = &input.jwks_uri {
            check_url("jwksUri", uri)?;
        }
        if input.jwks_uri.is_some() && input.jwks.is_some() {
            return Err(RegistryError::invalid("jwks", "give jwksUri or jwks, not both"));
        }
        let jwks = input.jwks.map(|set| set.to_string());
        if let Some(text) = &jwks {
            KeySet::parse(text).map_err(|e| RegistryError::invalid("jwks", e.to_string()))?;
        }
        let algorithms = check_algorithms(input.algorithms)?;
        if let Some(age) = input.max_token_age_secs
            && !(1..=MAX_TOKEN_AGE).contains(&age)
        {
            return Err(RegistryError::invalid(
                "maxTokenAgeSecs",
                format!("maxTokenAgeSecs must be from 1 to {MAX_TOKEN_AGE}"),
            ));
        }
        let now = self.clock.now();
        let record = IssuerRecord {
            id: random_token(12),
            issuer,
            jwks_uri: input.jwks_uri,
            jwks,
            algorithms,
            max_token_age_secs: input.max_token_age_secs,
            created_at: now,
            updated_at: now,
        };
        self.apply(vec![RegistryChange::PutIssuer(record.clone())])?;
        Ok(record)
    }

    /// Refused while an app names it: its workloads would silently lose their way in, and a
    /// new issuer registered later under the same URL would silently gain it.
    pub(super) fn delete_issuer(&mut self, id: &str) -> Result<(), RegistryError> {
        let url = self.issuer(id)?.issuer.clone();
        let named = self.apps.iter().any(|(_, a)| a.names_issuer(&url));
        if named {
            return Err(RegistryError::Conflict(ConflictKind::IssuerInUse));
        }
        self.apply(vec![RegistryChange::DeleteIssuer(id.to_string())])
    }

    /// Hands the issuers to the token path, which fetches their keys.
    pub(super) fn publish_issuers(&self) {
        self.federation.publish(self.issuers.values().cloned());
    }
}

fn check_url(field: &'static str, url: &str) -> Result<(), RegistryError> {
    if url.len() > MAX_URL {
        return Err(RegistryError::invalid(
            field,
            format!("{field} must be at most {MAX_URL} characters"),
        ));
    }
    url_rule::check(url).map_err(|why| RegistryError::invalid(field, format!("{field}: {why}")))?;
    Ok(())
}

/// RS256 when none is given: what Kubernetes, GitHub Actions and most OIDC providers sign with.
fn check_algorithms(given: Option<Vec<String>>) -> Result<Vec<String>, RegistryError> {
    let Some(mut algorithms) = given else { return Ok(vec!["RS256".to_string()]) };
    if algorithms.is_empty() {
        return Err(RegistryError::invalid(
            "algorithms",
            "algorithms must name at least one of RS256, ES256, EdDSA",
        ));
    }
    if let Some(bad) = algorithms.iter().find(|a| !ALGORITHMS.contains(&a.as_str())) {
        return Err(RegistryError::invalid(
            "algorithms",
            format!("unsupported algorithm {bad}: use RS256, ES256 or EdDSA"),
        ));
    }
    algorithms.sort();
    algorithms.dedup();
    Ok(algorithms)
}

/// At most this many federated identities per app, claims per identity, and characters in a
/// claim's name or value.
const MAX_IDENTITIES: usize = 50;
const MAX_CLAIMS: usize = 20;
const MAX_CLAIM: usize = 256;

impl Registry {
    /// An app's federated identities: each names a registered issuer, a subject that is a
    /// value or a one-segment pattern (never one that accepts every workload), and claims
    /// with text values.
    pub(super) fn check_federated(
        &self,
        identities: &[FederatedIdentity],
    ) -> Result<Vec<FederatedIdentity>, RegistryError> {
        let field = "federatedIdentities";
        if identities.len() > MAX_IDENTITIES {
            return Err(RegistryError::invalid(
                field,
                format!("at most {MAX_IDENTITIES} federated identities"),
            ));
        }
        let mut checked = Vec::with_capacity(identities.len());
        for identity in identities {
            if self.issuer_by_url(&identity.issuer).is_none() {
                return Err(RegistryError::invalid(
                    field,
                    format!(
                        "issuer {} is not registered (POST /api/v1/issuers first)",
                        identity.issuer
                    ),
                ));
            }
            SubjectPattern::parse(&identity.subject)
                .map_err(|why| RegistryError::invalid(field, why.to_string()))?;
            if let Some(audience) = &identity.audience
                && (audience.is_empty() || audience.len() > MAX_URL)
            {
                return Err(RegistryError::invalid(
                    field,
                    format!("audience must be 1 to {MAX_URL} characters"),
                ));
            }
            if identity.claims.len() > MAX_CLAIMS {
                return Err(RegistryError::invalid(
                    field,
                    format!("at most {MAX_CLAIMS} claims per federated identity"),
                ));
            }
            let bad_claim = identity.claims.iter().any(|(name, value)| {
                name.is_empty() || name.len() > MAX_CLAIM || value.len() > MAX_CLAIM
            });
            if bad_claim {
                return Err(RegistryError::invalid(
                    field,
                    format!(
                        "claim names must be 1 to {MAX_CLAIM} characters, and values at most {MAX_CLAIM}"
                    ),
                ));
            }
            if checked.contains(identity) {
                return Err(RegistryError::invalid(field, "a federated identity is listed twice"));
            }
            checked.push(identity.clone());
        }
        Ok(checked)
    }
}
