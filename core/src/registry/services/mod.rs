//! Services (AuthOS's service API) and their API keys; `members` holds their users and
//! subscriptions.
//! A key is `sk_live_` + a 16-byte selector + a 256-bit secret; the store keeps the selector
//! (as the key's public id) and the secret's SHA-256 only, and `X-API-Key` authentication is one
//! map lookup plus a constant-time comparison.

pub mod members;

use tessera_storage::{ApiKeyRecord, RegistryChange, ServiceRecord};

use crate::auth::secret::{new_split_secret, random_token, to_hex};
use crate::auth::url_rule::{self, UrlRefusal};
use crate::registry::{Listed, Page, Registry, RegistryError};

pub use crate::tables::service_keys::API_KEY_PREFIX;

/// (key id, verifier, the key shown once): the key is the prefix and a split secret.
fn new_api_key() -> (String, String, String) {
    let (secret, stored) = new_split_secret();
    (to_hex(&stored.selector), to_hex(&stored.verifier), format!("{API_KEY_PREFIX}{secret}"))
}

/// A service and the ids of its keys (never a key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub callback_uris: Vec<String>,
    pub api_keys: Vec<ApiKeyView>,
    pub created_at: u64,
    pub updated_at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyView {
    pub key_id: String,
    pub created_at: u64,
}

/// A new service, or a change to one, from an operator or from the service itself: each field
/// present replaces the stored one (a new service needs a name).
#[derive(Debug, Clone, Default)]
pub struct ServicePatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub callback_uris: Option<Vec<String>>,
}

fn check_name(name: &str) -> Result<String, RegistryError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 128 {
        return Err(RegistryError::invalid("name", "name must be 1 to 128 characters"));
    }
    Ok(name.to_string())
}

/// Callback URIs follow the URL rule (`url_rule`: `https`, or `http` on a loopback host for
/// development; no user name or password) and have no fragment (RFC 6749 §3.1.2). They are kept
/// as sent, since a provider-token request must name one exactly.
pub fn check_callback_uris(uris: &[String]) -> Result<Vec<String>, RegistryError> {
    if uris.len() > 20 {
        return Err(RegistryError::invalid("callbackUris", "at most 20 callback URIs"));
    }
    let mut out: Vec<String> = Vec::new();
    for uri in uris {
        let bad = || {
            RegistryError::invalid(
                "callbackUris",
                format!("'{uri}' is not an absolute https URL without a fragment"),
            )
        };
        // The parser would quietly drop whitespace that the stored text would keep.
        if uri.len() > 2048 || uri.chars().any(char::is_whitespace) {
            return Err(bad());
        }
        match url_rule::check(uri) {
            Ok(_) => {}
            Err(UrlRefusal::Userinfo) => {
                return Err(RegistryError::invalid(
                    "callbackUris",
                    format!("'{uri}' must not contain a user name or password"),
                ));
            }
            Err(UrlRefusal::NotHttps | UrlRefusal::Fragment) => return Err(bad()),
        }
        if !out.contains(uri) {
            out.push(uri.clone());
        }
    }
    Ok(out)
}

impl Registry {
    fn service_view(&self, s: &ServiceRecord) -> ServiceView {
        let api_keys = self
            .api_keys
            .values()
            .filter(|k| k.service_id == s.id)
            .map(|k| ApiKeyView { key_id: k.key_id.clone(), created_at: k.created_at })
            .collect();
        ServiceView {
            id: s.id.clone(),
            name: s.name.clone(),
            description: s.description.clone(),
            callback_uris: s.callback_uris.clone(),
            api_keys,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }

    /// A new service and its first API key, shown only in this answer.
    pub(super) fn create_service(
        &mut self,
        input: ServicePatch,
    ) -> Result<(ServiceView, String), RegistryError> {
        let name = check_name(
            input
                .name
                .as_deref()
                .ok_or_else(|| RegistryError::invalid("name", "name is required"))?,
        )?;
        let callback_uris = check_callback_uris(input.callback_uris.as_deref().unwrap_or(&[]))?;
        let description = input.description.unwrap_or_default();
        if description.chars().count() > 1024 {
            return Err(RegistryError::invalid(
                "description",
                "description must be at most 1024 characters",
            ));
        }
        let now = self.clock.now();
        let service = ServiceRecord {
            id: random_token(12),
            name,
            description,
            callback_uris,
            created_at: now,
            updated_at: now,
        };
        let (key_id, verifier, key) = new_api_key();
        let record =
            ApiKeyRecord { key_id, service_id: service.id.clone(), verifier, created_at: now };
        self.apply(vec![
            RegistryChange::PutService(service.clone()),
            RegistryChange::PutApiKey(record),
        ])?;
        Ok((self.service_view(&service), key))
    }

    pub(super) fn list_services(&self, page: Page) -> Listed<ServiceView> {
        page.of(self.services.values().map(|s| self.service_view(s)), self.services.len())
    }

    pub(super) fn service(&self, id: &str) -> Result<ServiceView, RegistryError> {
        self.services.get(id).map(|s| self.service_view(s)).ok_or(RegistryError::NotFound)
    }

    /// `PATCH /api/service/info` and `PUT /api/v1/services/{id}` alike.
    pub(super) fn patch_service(
        &mut self,
        id: &str,
        patch: ServicePatch,
    ) -> Result<ServiceView, RegistryError> {
        let mut service = self.services.get(id).cloned().ok_or(RegistryError::NotFound)?;
        if let Some(name) = &patch.name {
            service.name = check_name(name)?;
        }
        if let Some(description) = patch.description {
            if description.chars().count() > 1024 {
                return Err(RegistryError::invalid(
                    "description",
                    "description must be at most 1024 characters",
                ));
            }
            service.description = description;
        }
        if let Some(uris) = &patch.callback_uris {
            service.callback_uris = check_callback_uris(uris)?;
        }
        service.updated_at = self.clock.now();
        self.apply(vec![RegistryChange::PutService(service.clone())])?;
        Ok(self.service_view(&service))
    }

    /// Deleting a service revokes all its keys in the same transaction.
    pub(super) fn delete_service(&mut self, id: &str) -> Result<(), RegistryError> {
        if !self.services.contains_key(id) {
            return Err(RegistryError::NotFound);
        }
        let mut changes = vec![RegistryChange::DeleteService(id.to_string())];
        changes.extend(
            self.api_keys
                .values()
                .filter(|k| k.service_id == id)
                .map(|k| RegistryChange::DeleteApiKey(k.key_id.clone())),
        );
        self.apply(changes)
    }

    pub(super) fn issue_api_key(
        &mut self,
        service_id: &str,
    ) -> Result<(ApiKeyView, String), RegistryError> {
        if !self.services.contains_key(service_id) {
            return Err(RegistryError::NotFound);
        }
        let (key_id, verifier, key) = new_api_key();
        let now = self.clock.now();
        let record = ApiKeyRecord {
            key_id: key_id.clone(),
            service_id: service_id.to_string(),
            verifier,
            created_at: now,
        };
        self.apply(vec![RegistryChange::PutApiKey(record)])?;
        Ok((ApiKeyView { key_id, created_at: now }, key))
    }

    pub(super) fn revoke_api_key(
        &mut self,
        service_id: &str,
        key_id: &str,
    ) -> Result<(), RegistryError> {
        match self.api_keys.get(key_id) {
            Some(k) if k.service_id == service_id => {
                self.apply(vec![RegistryChange::DeleteApiKey(key_id.to_string())])
            }
            _ => Err(RegistryError::NotFound),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::service_keys::ServiceKeys;

    #[test]
    fn callback_uris_must_be_https_or_loopback_http_without_fragments() {
        let ok = |u: &str| check_callback_uris(&[u.to_string()]).is_ok();
        assert!(ok("https://app.acme.com/callback"));
        assert!(ok("http://127.0.0.1:3000/cb"));
        assert!(ok("http://localhost/cb"));
        assert!(!ok("http://app.acme.com/cb"));
        assert!(!ok("https://app.acme.com/cb#x"));
        assert!(!ok("javascript:alert(1)"));
        assert!(!ok("https://"));
        assert!(!ok("https://user@app.acme.com/cb"));
    }

    #[test]
    fn api_keys_authenticate_only_with_their_secret() {
        let keys = ServiceKeys::default();
        let (id, verifier, key) = new_api_key();
        let record = ApiKeyRecord { key_id: id, service_id: "svc".into(), verifier, created_at: 0 };
        keys.put(&record);
        assert_eq!(keys.authenticate(&key).as_deref(), Some("svc"));
        assert!(key.starts_with(API_KEY_PREFIX) && key.len() == 73);
        let mut wrong = key.clone().into_bytes();
        let last = wrong.len() - 1;
        wrong[last] = if wrong[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(keys.authenticate(std::str::from_utf8(&wrong).unwrap()), None);
        assert_eq!(keys.authenticate("sk_live_short"), None);
        assert_eq!(keys.authenticate(""), None);
    }
}
