//! Scopes and roles (docs/api.md, Admin API), and the privileged-role rule for roles. Built-ins are constants and
//! cannot be created, renamed, updated or deleted; no custom scope or role takes a built-in
//! name; a scope's rename or deletion reaches every app and role that names it in the same
//! transaction.

use tessera_storage::{RegistryChange, RoleRecord, ScopeRecord};

use super::{ConflictKind, Listed, Page, Registry, RegistryError};
use crate::auth::secret::random_token;
use crate::policy::{self, BUILT_IN_ROLES, BUILT_IN_SCOPES, Caller, PolicyError};
use crate::tables::scopes::holds;

/// A scope, built in or custom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeView {
    pub id: String,
    pub name: String,
    pub note: String,
    pub built_in: bool,
}

/// A role, built in or custom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleView {
    pub id: String,
    pub name: String,
    pub note: String,
    pub scopes: Vec<String>,
    pub privileged: bool,
    pub built_in: bool,
}

/// A new scope, or a change to one: each field present replaces the stored one.
#[derive(Debug, Clone, Default)]
pub struct ScopePatch {
    pub name: Option<String>,
    pub note: Option<String>,
    /// Only `s2s` exists; sent for the API's shape.
    pub kind: Option<String>,
}

/// A new role, or a change to one: each field present replaces the stored one.
#[derive(Debug, Clone, Default)]
pub struct RolePatch {
    pub name: Option<String>,
    pub note: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub privileged: Option<bool>,
}

fn scope_view(s: &ScopeRecord) -> ScopeView {
    ScopeView { id: s.id.clone(), name: s.name.clone(), note: s.note.clone(), built_in: false }
}

fn built_in_scope(name: &str) -> ScopeView {
    ScopeView { id: name.into(), name: name.into(), note: "built-in".into(), built_in: true }
}

fn role_view(r: &RoleRecord) -> RoleView {
    RoleView {
        id: r.id.clone(),
        name: r.name.clone(),
        note: r.note.clone(),
        scopes: r.scopes.clone(),
        privileged: r.is_privileged,
        built_in: false,
    }
}

fn built_in_role(name: &str, privileged: bool) -> RoleView {
    RoleView {
        id: name.into(),
        name: name.into(),
        note: "built-in".into(),
        scopes: Vec::new(),
        privileged,
        built_in: true,
    }
}

fn check_note(note: &str) -> Result<(), RegistryError> {
    if note.chars().count() > 1024 {
        Err(RegistryError::invalid("note", "note must be at most 1024 characters"))
    } else {
        Ok(())
    }
}

impl Registry {
    /// Whether a scope name exists, built in or custom.
    pub fn scope_exists(&self, name: &str) -> bool {
        policy::is_built_in_scope(name) || self.scopes.values().any(|s| s.name == name)
    }

    fn check_new_scope_name(
        &self,
        name: &str,
        except_id: Option<&str>,
    ) -> Result<(), RegistryError> {
        if !policy::is_scope_token(name) {
            let reason = format!("'{name}' is not a valid scope name (RFC 6749 §3.3)");
            return Err(RegistryError::invalid("name", reason));
        }
        if policy::is_built_in_scope(name) {
            return Err(PolicyError::BuiltIn.into());
        }
        if self.scopes.values().any(|s| s.name == name && Some(s.id.as_str()) != except_id) {
            return Err(ConflictKind::ScopeName(name.to_string()).into());
        }
        Ok(())
    }

    pub(super) fn list_scopes(&self, page: Page) -> Listed<ScopeView> {
        let built_in = BUILT_IN_SCOPES.iter().map(|n| built_in_scope(n));
        let all = built_in.chain(self.scopes.values().map(scope_view));
        page.of(all, BUILT_IN_SCOPES.len() + self.scopes.len())
    }

    pub(super) fn scope(&self, id: &str) -> Result<ScopeView, RegistryError> {
        if policy::is_built_in_scope(id) {
            return Ok(built_in_scope(id));
        }
        self.scopes.get(id).map(scope_view).ok_or(RegistryError::NotFound)
    }

    pub(super) fn create_scope(&mut self, input: ScopePatch) -> Result<ScopeView, RegistryError> {
        let name = input.name.ok_or_else(|| RegistryError::invalid("name", "name is required"))?;
        self.check_new_scope_name(&name, None)?;
        if input.kind.as_deref().is_some_and(|k| k != "s2s") {
            return Err(RegistryError::invalid("type", "type must be \"s2s\""));
        }
        let note = input.note.unwrap_or_default();
        check_note(&note)?;
        let now = self.clock.now();
        let record =
            ScopeRecord { id: random_token(12), name, note, created_at: now, updated_at: now };
        let view = scope_view(&record);
        self.apply(vec![RegistryChange::PutScope(record)])?;
        Ok(view)
    }

    /// Whether an app holding `root` also holds the scope `name`, for itself or for a resource.
    fn is_held_by_root_app(&self, name: &str) -> bool {
        self.apps.iter().any(|(_, a)| holds(&a.scopes, policy::ROOT) && a.holds_anywhere(name))
    }

    /// Whether a privileged role holds the scope `name`: renaming or deleting it would rewrite
    /// that role.
    fn is_held_by_privileged_role(&self, name: &str) -> bool {
        self.roles.values().any(|r| r.is_privileged && r.scopes.iter().any(|s| s == name))
    }

    /// Whether any app (for itself or a resource), role or resource holds the scope `name`.
    fn is_held(&self, name: &str) -> bool {
        let holds = |scopes: &[String]| scopes.iter().any(|s| s == name);
        self.apps.iter().any(|(_, a)| a.holds_anywhere(name))
            || self.roles.values().any(|r| holds(&r.scopes))
            || self.resources.values().any(|r| holds(&r.scopes))
    }

    /// A rename reaches every app and role that names the scope, in one transaction.
    pub(super) fn update_scope(
        &mut self,
        caller: &Caller,
        id: &str,
        input: ScopePatch,
    ) -> Result<ScopeView, RegistryError> {
        if policy::is_built_in_scope(id) {
            return Err(PolicyError::BuiltIn.into());
        }
        let mut record = self.scopes.get(id).cloned().ok_or(RegistryError::NotFound)?;
        if let Some(note) = input.note {
            check_note(&note)?;
            record.note = note;
        }
        if input.kind.as_deref().is_some_and(|k| k != "s2s") {
            return Err(RegistryError::invalid("type", "type must be \"s2s\""));
        }
        let old = record.name.clone();
        if let Some(name) = input.name {
            self.check_new_scope_name(&name, Some(id))?;
            record.name = name;
        }
        record.updated_at = self.clock.now();
        let new = record.name.clone();
        let mut changes = vec![RegistryChange::PutScope(record.clone())];
        if new != old {
            policy::check_scope_of_root_app(caller, self.is_held_by_root_app(&old))?;
            policy::check_manage_role(caller, self.is_held_by_privileged_role(&old))?;
            let strict = self.limits.strict_delegation;
            policy::check_scope_rename(caller, strict, self.is_held(&old))?;
            changes.extend(self.replace_scope_everywhere(&old, Some(&new)));
        }
        self.apply(changes)?;
        Ok(scope_view(&record))
    }

    pub(super) fn delete_scope(&mut self, caller: &Caller, id: &str) -> Result<(), RegistryError> {
        if policy::is_built_in_scope(id) {
            return Err(PolicyError::BuiltIn.into());
        }
        let record = self.scopes.get(id).cloned().ok_or(RegistryError::NotFound)?;
        policy::check_scope_of_root_app(caller, self.is_held_by_root_app(&record.name))?;
        policy::check_manage_role(caller, self.is_held_by_privileged_role(&record.name))?;
        let mut changes = vec![RegistryChange::DeleteScope(id.to_string())];
        changes.extend(self.replace_scope_everywhere(&record.name, None));
        self.apply(changes)
    }

    /// The app, role and resource changes that rename (or, with `None`, remove) a scope name.
    fn replace_scope_everywhere(&self, old: &str, new: Option<&str>) -> Vec<RegistryChange> {
        let rewrite = |scopes: &[String]| -> Option<Vec<String>> {
            if !scopes.iter().any(|s| s == old) {
                return None;
            }
            let mut out: Vec<String> = Vec::with_capacity(scopes.len());
            for s in scopes {
                let s = if s == old { new } else { Some(s.as_str()) };
                if let Some(s) = s.filter(|s| !out.iter().any(|o| o == s)) {
                    out.push(s.to_string());
                }
            }
            Some(out)
        };
        let now = self.clock.now();
        let mut changes = Vec::new();
        let holders: Vec<&str> =
            self.apps.iter().filter(|(_, a)| a.holds_anywhere(old)).map(|(id, _)| id).collect();
        for app in self.app_records(&holders) {
            let mut changed = app.clone();
            if let Some(scopes) = rewrite(&app.scopes) {
                changed.scopes = scopes;
            }
            for granted in changed.resources.values_mut() {
                if let Some(scopes) = rewrite(granted) {
                    *granted = scopes;
                }
            }
            if changed != app {
                changed.updated_at = now;
                changes.push(RegistryChange::PutApp(changed));
            }
        }
        for resource in self.resources.values() {
            if let Some(scopes) = rewrite(&resource.scopes) {
                let mut resource = resource.clone();
                resource.scopes = scopes;
                resource.updated_at = now;
                changes.push(RegistryChange::PutResource(resource));
            }
        }
        for role in self.roles.values() {
            if let Some(scopes) = rewrite(&role.scopes) {
                let mut role = role.clone();
                role.scopes = scopes;
                role.updated_at = now;
                changes.push(RegistryChange::PutRole(role));
            }
        }
        changes
    }

    fn check_role_name(
        &self,
        name: &str,
        except_id: Option<&str>,
    ) -> Result<String, RegistryError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 128 {
            return Err(RegistryError::invalid("name", "name must be 1 to 128 characters"));
        }
        if policy::is_built_in_role(name) {
            return Err(PolicyError::BuiltIn.into());
        }
        if self.roles.values().any(|r| r.name == name && Some(r.id.as_str()) != except_id) {
            return Err(ConflictKind::RoleName(name.to_string()).into());
        }
        Ok(name.to_string())
    }

    fn check_role_scopes(
        &self,
        caller: &Caller,
        scopes: &[String],
    ) -> Result<Vec<String>, RegistryError> {
        policy::check_role_scopes(caller, scopes)?;
        let mut out: Vec<String> = Vec::new();
        for scope in scopes {
            if !self.scope_exists(scope) {
                return Err(RegistryError::invalid(
                    "scopes",
                    format!("scope '{scope}' does not exist"),
                ));
            }
            if !out.contains(scope) {
                out.push(scope.clone());
            }
        }
        Ok(out)
    }

    pub(super) fn list_roles(&self, page: Page) -> Listed<RoleView> {
        let built_in = BUILT_IN_ROLES.iter().map(|(n, p)| built_in_role(n, *p));
        let all = built_in.chain(self.roles.values().map(role_view));
        page.of(all, BUILT_IN_ROLES.len() + self.roles.len())
    }

    pub(super) fn role(&self, id: &str) -> Result<RoleView, RegistryError> {
        if let Some((name, privileged)) = BUILT_IN_ROLES.iter().find(|(n, _)| *n == id) {
            return Ok(built_in_role(name, *privileged));
        }
        self.roles.get(id).map(role_view).ok_or(RegistryError::NotFound)
    }

    /// A role holding `root` is privileged whatever it says: assigning it is rule 2's business.
    pub(super) fn create_role(
        &mut self,
        caller: &Caller,
        input: RolePatch,
    ) -> Result<RoleView, RegistryError> {
        let name = self.check_role_name(
            input
                .name
                .as_deref()
                .ok_or_else(|| RegistryError::invalid("name", "name is required"))?,
            None,
        )?;
        let scopes = self.check_role_scopes(caller, input.scopes.as_deref().unwrap_or(&[]))?;
        policy::check_delegation(caller, self.limits.strict_delegation, &scopes, &[])?;
        let is_privileged =
            input.privileged.unwrap_or(false) || scopes.iter().any(|s| s == policy::ROOT);
        policy::check_manage_role(caller, is_privileged)?;
        let note = input.note.unwrap_or_default();
        check_note(&note)?;
        let now = self.clock.now();
        let record = RoleRecord {
            id: random_token(12),
            name,
            note,
            scopes,
            is_privileged,
            created_at: now,
            updated_at: now,
        };
        self.apply(vec![RegistryChange::PutRole(record.clone())])?;
        Ok(role_view(&record))
    }

    pub(super) fn update_role(
        &mut self,
        caller: &Caller,
        id: &str,
        input: RolePatch,
    ) -> Result<RoleView, RegistryError> {
        if policy::is_built_in_role(id) {
            return Err(PolicyError::BuiltIn.into());
        }
        let mut record = self.roles.get(id).cloned().ok_or(RegistryError::NotFound)?;
        policy::check_manage_role(caller, record.is_privileged)?;
        if let Some(scopes) = &input.scopes {
            let scopes = self.check_role_scopes(caller, scopes)?;
            let strict = self.limits.strict_delegation;
            policy::check_delegation(caller, strict, &scopes, &record.scopes)?;
            record.scopes = scopes;
        }
        if let Some(name) = &input.name {
            record.name = self.check_role_name(name, Some(id))?;
        }
        if let Some(note) = input.note {
            check_note(&note)?;
            record.note = note;
        }
        record.is_privileged = input.privileged.unwrap_or(record.is_privileged)
            || record.scopes.iter().any(|s| s == policy::ROOT);
        policy::check_manage_role(caller, record.is_privileged)?;
        let old_name = self.roles.get(id).map(|r| r.name.clone()).unwrap_or_default();
        // Registration gives the default role to anyone: whoever sets its scopes, or makes a
        // role the default one, hands every scope it then has to the public.
        let is_default = record.name == self.limits.default_role;
        if is_default && (input.scopes.is_some() || old_name != record.name) {
            let strict = self.limits.strict_delegation;
            policy::check_delegation(caller, strict, &record.scopes, &[])?;
        }
        record.updated_at = self.clock.now();
        let mut changes = vec![RegistryChange::PutRole(record.clone())];
        if old_name != record.name {
            changes.extend(self.replace_role_in_users(&old_name, Some(&record.name)));
        }
        self.apply(changes)?;
        Ok(role_view(&record))
    }

    pub(super) fn delete_role(&mut self, caller: &Caller, id: &str) -> Result<(), RegistryError> {
        if policy::is_built_in_role(id) {
            return Err(PolicyError::BuiltIn.into());
        }
        let record = self.roles.get(id).ok_or(RegistryError::NotFound)?;
        policy::check_manage_role(caller, record.is_privileged)?;
        // Taking the role from its holders changes their roles: a privileged holder is root's.
        let privileged_holder = self
            .users
            .values()
            .any(|u| u.roles.contains(&record.name) && self.holds_privileged_role(u));
        policy::check_change_privileged_user(caller, privileged_holder)?;
        let mut changes = vec![RegistryChange::DeleteRole(id.to_string())];
        changes.extend(self.replace_role_in_users(&record.name, None));
        self.apply(changes)
    }
}
