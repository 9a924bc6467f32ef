//! OAuth providers that services obtain tokens from (AuthOS's service API).
//! The client secret is kept for the code exchange, sealed at rest when a KEK is set, and never
//! shown.

use tessera_storage::{ProviderRecord, RegistryChange};

use crate::auth::secret::random_token;
use crate::auth::url_rule::{self, UrlRefusal};
use crate::registry::{ConflictKind, Registry, RegistryError};

/// A provider without its client secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderView {
    pub id: String,
    pub name: String,
    pub authorize_url: String,
    pub token_url: String,
    pub client_id: String,
    pub created_at: u64,
}

#[derive(Clone, Default)]
pub struct NewProvider {
    pub name: String,
    pub authorize_url: String,
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
}

fn view(p: &ProviderRecord) -> ProviderView {
    ProviderView {
        id: p.id.clone(),
        name: p.name.clone(),
        authorize_url: p.authorize_url.clone(),
        token_url: p.token_url.clone(),
        client_id: p.client_id.clone(),
        created_at: p.created_at,
    }
}

/// Provider endpoints follow the URL rule (`url_rule`; `http` on a loopback host is for a
/// provider run in tests). The parser's serialization is what is kept: it is what the rule
/// judged, and the HTTP client that calls the token URL reads it the same way.
fn check_url(field: &'static str, url: &str) -> Result<String, RegistryError> {
    if url.len() > 2048 || url.chars().any(char::is_whitespace) {
        return Err(RegistryError::invalid(
            field,
            format!("{field} must be an absolute https URL without a fragment"),
        ));
    }
    match url_rule::check(url) {
        Ok(parsed) => Ok(parsed.into()),
        Err(UrlRefusal::Userinfo) => Err(RegistryError::invalid(
            field,
            format!("{field} must not contain a user name or password"),
        )),
        Err(UrlRefusal::NotHttps | UrlRefusal::Fragment) => Err(RegistryError::invalid(
            field,
            format!("{field} must be an absolute https URL without a fragment"),
        )),
    }
}

impl Registry {
    pub(super) fn create_provider(
        &mut self,
        input: NewProvider,
    ) -> Result<ProviderView, RegistryError> {
        let name = input.name.trim().to_string();
        let is_name_ok = !name.is_empty()
            && name.len() <= 64
            && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !is_name_ok {
            return Err(RegistryError::invalid(
                "name",
                "name must be 1 to 64 letters, digits, '-', '_' or '.'",
            ));
        }
        if self.providers.values().any(|p| p.name.eq_ignore_ascii_case(&name)) {
            return Err(ConflictKind::ProviderName(name).into());
        }
        let authorize_url = check_url("authorizeUrl", &input.authorize_url)?;
        let token_url = check_url("tokenUrl", &input.token_url)?;
        if input.client_id.is_empty() || input.client_id.len() > 512 {
            return Err(RegistryError::invalid("clientId", "clientId must be 1 to 512 characters"));
        }
        if input.client_secret.is_empty() || input.client_secret.len() > 1024 {
            return Err(RegistryError::invalid(
                "clientSecret",
                "clientSecret must be 1 to 1024 characters",
            ));
        }
        let record = ProviderRecord {
            id: random_token(12),
            name,
            authorize_url,
            token_url,
            client_id: input.client_id,
            client_secret: input.client_secret,
            created_at: self.clock.now(),
        };
        let v = view(&record);
        self.apply(vec![RegistryChange::PutProvider(record)])?;
        Ok(v)
    }

    pub(super) fn providers(&self) -> Vec<ProviderView> {
        self.providers.values().map(view).collect()
    }

    pub(super) fn provider(&self, id: &str) -> Result<ProviderView, RegistryError> {
        self.providers.get(id).map(view).ok_or(RegistryError::NotFound)
    }

    pub(super) fn delete_provider(&mut self, id: &str) -> Result<(), RegistryError> {
        if !self.providers.contains_key(id) {
            return Err(RegistryError::NotFound);
        }
        self.apply(vec![RegistryChange::DeleteProvider(id.to_string())])
    }
}

// Adapters so every message maps onto one method signature shape.
impl Registry {
    /// Names are matched without regard to case, as they are kept unique.
    pub(super) fn provider_by_name(&self, name: &str) -> Option<&ProviderRecord> {
        self.providers.values().find(|p| p.name.eq_ignore_ascii_case(name))
    }
}
