//! OAuth providers that services obtain tokens from (AuthOS's service API), owned by the ClientRegistry.
//! The client secret is kept for the code exchange, sealed at rest when a KEK is set, and never
//! shown.

use serde::{Deserialize, Serialize};
use tessera_storage::{ProviderRecord, RegistryChange};

use crate::auth::secret::random_token;
use crate::auth::url_rule::{self, UrlRefusal};
use crate::policy::Caller;
use crate::registry::clients::{ClientRegistry, RegistryError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderView {
    pub id: String,
    pub name: String,
    pub authorize_url: String,
    pub token_url: String,
    pub client_id: String,
    pub created_at: u64,
}

#[derive(Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderInput {
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

fn invalid(message: impl Into<String>) -> RegistryError {
    RegistryError::Invalid(message.into())
}

/// Provider endpoints follow the URL rule (`url_rule`; `http` on a loopback host is for a
/// provider run in tests). The parser's serialization is what is kept: it is what the rule
/// judged, and the HTTP client that calls the token URL reads it the same way.
fn check_url(field: &str, url: &str) -> Result<String, RegistryError> {
    if url.len() > 2048 || url.chars().any(char::is_whitespace) {
        return Err(invalid(format!("{field} must be an absolute https URL without a fragment")));
    }
    match url_rule::check(url) {
        Ok(parsed) => Ok(parsed.into()),
        Err(UrlRefusal::Userinfo) => {
            Err(invalid(format!("{field} must not contain a user name or password")))
        }
        Err(UrlRefusal::NotHttps | UrlRefusal::Fragment) => {
            Err(invalid(format!("{field} must be an absolute https URL without a fragment")))
        }
    }
}

impl ClientRegistry {
    pub fn create_provider(
        &mut self,
        _caller: &Caller,
        input: ProviderInput,
    ) -> Result<ProviderView, RegistryError> {
        let name = input.name.trim().to_string();
        let is_name_ok = !name.is_empty()
            && name.len() <= 64
            && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !is_name_ok {
            return Err(invalid("name must be 1 to 64 letters, digits, '-', '_' or '.'"));
        }
        if self.providers.values().any(|p| p.name.eq_ignore_ascii_case(&name)) {
            return Err(RegistryError::Conflict(format!(
                "a provider named '{name}' already exists"
            )));
        }
        let authorize_url = check_url("authorizeUrl", &input.authorize_url)?;
        let token_url = check_url("tokenUrl", &input.token_url)?;
        if input.client_id.is_empty() || input.client_id.len() > 512 {
            return Err(invalid("clientId must be 1 to 512 characters"));
        }
        if input.client_secret.is_empty() || input.client_secret.len() > 1024 {
            return Err(invalid("clientSecret must be 1 to 1024 characters"));
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
        self.commit_changes_public(vec![RegistryChange::PutProvider(record)])?;
        Ok(v)
    }

    pub fn list_providers(&self) -> Vec<ProviderView> {
        self.providers.values().map(view).collect()
    }

    pub fn get_provider(&self, id: &str) -> Result<ProviderView, RegistryError> {
        self.providers.get(id).map(view).ok_or(RegistryError::NotFound)
    }

    pub fn delete_provider(&mut self, _caller: &Caller, id: &str) -> Result<(), RegistryError> {
        if !self.providers.contains_key(id) {
            return Err(RegistryError::NotFound);
        }
        self.commit_changes_public(vec![RegistryChange::DeleteProvider(id.to_string())])
    }
}

// Adapters so every message maps onto one method signature shape.
impl ClientRegistry {
    fn create_provider_msg(
        &mut self,
        caller: Caller,
        input: ProviderInput,
    ) -> Result<ProviderView, RegistryError> {
        self.create_provider(&caller, input)
    }
    fn list_providers_msg(&mut self) -> Vec<ProviderView> {
        self.list_providers()
    }
    fn get_provider_msg(&mut self, id: String) -> Result<ProviderView, RegistryError> {
        self.get_provider(&id)
    }
    fn delete_provider_msg(&mut self, caller: Caller, id: String) -> Result<(), RegistryError> {
        self.delete_provider(&caller, &id)
    }
}

registry_messages! {
    CreateProvider { caller: Caller, input: ProviderInput } -> Result<ProviderView, RegistryError> => create_provider_msg;
    ListProviders {} -> Vec<ProviderView> => list_providers_msg;
    GetProvider { id: String } -> Result<ProviderView, RegistryError> => get_provider_msg;
    DeleteProvider { caller: Caller, id: String } -> Result<(), RegistryError> => delete_provider_msg;
}

impl ClientRegistry {
    fn provider_by_name_msg(&mut self, name: String) -> Option<ProviderRecord> {
        self.providers.values().find(|p| p.name.eq_ignore_ascii_case(&name)).cloned()
    }
    fn provider_by_id_msg(&mut self, id: String) -> Option<ProviderRecord> {
        self.providers.get(&id).cloned()
    }
}

registry_messages! {
    ProviderByName { name: String } -> Option<ProviderRecord> => provider_by_name_msg;
    ProviderById { id: String } -> Option<ProviderRecord> => provider_by_id_msg;
}
