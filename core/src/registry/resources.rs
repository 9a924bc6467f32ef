//! Resources (RFC 8707): the APIs that accept Tessera's tokens, each with the scopes apps may be
//! granted for it. An app's grants name resources by identifier, so a rename, a narrowing or a
//! delete rewrites every grant in the same commit, and a grant never names a scope its
//! resource lacks.

use std::collections::BTreeMap;

use tessera_storage::{AppRecord, RegistryChange, ResourceRecord};

use super::apps::fields;
use super::{ConflictKind, Listed, Page, Registry, RegistryError};
use crate::auth::secret::random_token;
use crate::policy::{self, Caller, ROOT};
use crate::tables::scopes::holds;

/// A new resource, or a change to one: each field present replaces the stored one; the
/// lifetime can also be cleared (`Some(None)`).
#[derive(Debug, Clone, Default)]
pub struct ResourcePatch {
    pub identifier: Option<String>,
    pub name: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub access_token_ttl_secs: Option<Option<u64>>,
}

/// As long as the token endpoint accepts a `resource`.
pub const MAX_IDENTIFIER: usize = 512;
const MAX_SCOPES: usize = 100;

impl Registry {
    pub(super) fn list_resources(&self, page: Page) -> Listed<ResourceRecord> {
        page.of(self.resources.values().cloned(), self.resources.len())
    }

    pub(super) fn resource(&self, id: &str) -> Result<&ResourceRecord, RegistryError> {
        self.resources.get(id).ok_or(RegistryError::NotFound)
    }

    /// The resource an app's grant or a token request names.
    pub(super) fn resource_by_identifier(&self, identifier: &str) -> Option<&ResourceRecord> {
        self.resources.values().find(|r| r.identifier == identifier)
    }

    pub(super) fn create_resource(
        &mut self,
        input: ResourcePatch,
    ) -> Result<ResourceRecord, RegistryError> {
        let required =
            |field: &'static str| RegistryError::invalid(field, format!("{field} is required"));
        let identifier = input.identifier.ok_or_else(|| required("identifier"))?;
        let identifier = self.check_identifier(&identifier, None)?;
        let name = fields::check_name(&input.name.ok_or_else(|| required("name"))?)?;
        let scopes = self.check_resource_scopes(&input.scopes.unwrap_or_default())?;
        let ttl = input.access_token_ttl_secs.flatten();
        fields::check_ttl(ttl, self.limits.max_token_ttl)?;
        let now = self.clock.now();
        let record = ResourceRecord {
            id: random_token(12),
            identifier,
            name,
            scopes,
            access_token_ttl_secs: ttl,
            created_at: now,
            updated_at: now,
        };
        self.apply(vec![RegistryChange::PutResource(record.clone())])?;
        Ok(record)
    }

    /// A rename or a narrowing reaches every app's grant in the same commit; root's apps are
    /// root's to rewrite.
    pub(super) fn update_resource(
        &mut self,
        caller: &Caller,
        id: &str,
        patch: ResourcePatch,
    ) -> Result<ResourceRecord, RegistryError> {
        let old = self.resource(id)?.clone();
        let mut record = old.clone();
        if let Some(identifier) = &patch.identifier {
            record.identifier = self.check_identifier(identifier, Some(id))?;
        }
        if let Some(name) = &patch.name {
            record.name = fields::check_name(name)?;
        }
        if let Some(scopes) = &patch.scopes {
            record.scopes = self.check_resource_scopes(scopes)?;
        }
        if let Some(ttl) = patch.access_token_ttl_secs {
            fields::check_ttl(ttl, self.limits.max_token_ttl)?;
            record.access_token_ttl_secs = ttl;
        }
        record.updated_at = self.clock.now();
        let mut changes = vec![RegistryChange::PutResource(record.clone())];
        let is_narrowed = old.scopes.iter().any(|s| !record.scopes.contains(s));
        let is_moved = record.identifier != old.identifier;
        let is_retimed = record.access_token_ttl_secs != old.access_token_ttl_secs;
        if is_moved || is_narrowed || is_retimed {
            let granted_to_root = self.is_granted_to_root_app(&old.identifier);
            policy::check_resource_of_root_app(caller, granted_to_root)?;
        }
        if is_moved {
            let is_granted = self.apps.iter().any(|(_, a)| a.has_grant_for(&old.identifier));
            policy::check_resource_rename(caller, self.limits.strict_delegation, is_granted)?;
        }
        if is_moved || is_narrowed {
            changes.extend(self.rewrite_grants(&old.identifier, |scopes| {
                let kept = scopes.iter().filter(|s| record.scopes.contains(s)).cloned().collect();
                Some((record.identifier.clone(), kept))
            }));
        }
        self.apply(changes)?;
        Ok(record)
    }

    pub(super) fn delete_resource(
        &mut self,
        caller: &Caller,
        id: &str,
    ) -> Result<(), RegistryError> {
        let identifier = self.resource(id)?.identifier.clone();
        policy::check_resource_of_root_app(caller, self.is_granted_to_root_app(&identifier))?;
        let mut changes = vec![RegistryChange::DeleteResource(id.to_string())];
        changes.extend(self.rewrite_grants(&identifier, |_| None));
        self.apply(changes)
    }

    /// Whether an app holding `root` has a grant for the resource `identifier`.
    fn is_granted_to_root_app(&self, identifier: &str) -> bool {
        self.apps.iter().any(|(_, a)| holds(&a.scopes, ROOT) && a.has_grant_for(identifier))
    }

    /// The app changes that move (`Some((identifier, scopes))`) or drop (`None`) every app's
    /// grant for the resource `identifier`.
    fn rewrite_grants(
        &self,
        identifier: &str,
        rewrite: impl Fn(&[String]) -> Option<(String, Vec<String>)>,
    ) -> Vec<RegistryChange> {
        let now = self.clock.now();
        let mut changes = Vec::new();
        let holders: Vec<&str> = self
            .apps
            .iter()
            .filter(|(_, a)| a.has_grant_for(identifier))
            .map(|(id, _)| id)
            .collect();
        for mut app in self.app_records(&holders) {
            let Some(scopes) = app.resources.remove(identifier) else { continue };
            if let Some((identifier, scopes)) = rewrite(&scopes) {
                app.resources.insert(identifier, scopes);
            }
            app.updated_at = now;
            changes.push(RegistryChange::PutApp(app));
        }
        changes
    }

    /// RFC 8707 §2: an absolute URI without a fragment, kept as sent (a token's `aud` is
    /// compared byte for byte), unique, and never Tessera's own audience, whose tokens open
    /// the admin API.
    fn check_identifier(
        &self,
        identifier: &str,
        except_id: Option<&str>,
    ) -> Result<String, RegistryError> {
        let bad = || {
            RegistryError::invalid(
                "identifier",
                format!(
                    "identifier must be an absolute URI without a fragment, at most {MAX_IDENTIFIER} characters"
                ),
            )
        };
        if identifier.len() > MAX_IDENTIFIER
            || identifier.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(bad());
        }
        let parsed = url::Url::parse(identifier).map_err(|_| bad())?;
        if parsed.fragment().is_some() || identifier.contains('#') {
            return Err(bad());
        }
        if self.limits.own_audiences.iter().any(|a| a == identifier) {
            return Err(RegistryError::invalid(
                "identifier",
                "identifier may not be Tessera's own audience: its tokens open the admin API",
            ));
        }
        let taken = self
            .resources
            .values()
            .any(|r| r.identifier == identifier && Some(r.id.as_str()) != except_id);
        if taken {
            return Err(ConflictKind::ResourceIdentifier(identifier.to_string()).into());
        }
        Ok(identifier.to_string())
    }

    /// Registered scopes, duplicates dropped, order kept; never `root`, which is Tessera's own.
    fn check_resource_scopes(&self, scopes: &[String]) -> Result<Vec<String>, RegistryError> {
        if scopes.len() > MAX_SCOPES {
            let reason = format!("a resource has at most {MAX_SCOPES} scopes");
            return Err(RegistryError::invalid("scopes", reason));
        }
        let scopes = fields::check_scopes(scopes)?;
        if scopes.iter().any(|s| s == ROOT) {
            let reason = "a resource cannot have the root scope: it is Tessera's own";
            return Err(RegistryError::invalid("scopes", reason));
        }
        if let Some(unknown) = scopes.iter().find(|s| !self.scope_exists(s)) {
            let reason = format!("'{unknown}' is not a registered scope");
            return Err(RegistryError::invalid("scopes", reason));
        }
        Ok(scopes)
    }

    /// An app's grants as it asks for them: each resource registered, each list within that
    /// resource's scopes (duplicates dropped), and every escalation rule that guards `scopes`
    /// applied to what is newly granted.
    pub(super) fn check_grants(
        &self,
        caller: &Caller,
        grants: &BTreeMap<String, Vec<String>>,
        already: &BTreeMap<String, Vec<String>>,
    ) -> Result<BTreeMap<String, Vec<String>>, RegistryError> {
        if grants.len() > MAX_SCOPES {
            let reason = format!("an app holds grants for at most {MAX_SCOPES} resources");
            return Err(RegistryError::invalid("resources", reason));
        }
        let mut checked = BTreeMap::new();
        for (identifier, scopes) in grants {
            let Some(resource) = self.resource_by_identifier(identifier) else {
                let reason = format!("'{identifier}' is not a registered resource");
                return Err(RegistryError::invalid("resources", reason));
            };
            let scopes = fields::check_scopes(scopes)?;
            if let Some(s) = scopes.iter().find(|s| !resource.scopes.contains(s)) {
                let reason = format!("'{s}' is not a scope of the resource '{identifier}'");
                return Err(RegistryError::invalid("resources", reason));
            }
            policy::check_app_scopes(caller, &scopes)?;
            let held = already.get(identifier).map_or(&[][..], Vec::as_slice);
            policy::check_delegation(caller, self.limits.strict_delegation, &scopes, held)?;
            checked.insert(identifier.clone(), scopes);
        }
        Ok(checked)
    }
}

/// Every scope an app holds, for itself and for each resource: what a credential of it
/// carries.
pub(super) fn all_scopes(app: &AppRecord) -> Vec<String> {
    let mut all = app.scopes.clone();
    for s in app.resources.values().flatten() {
        if !all.contains(s) {
            all.push(s.clone());
        }
    }
    all
}
