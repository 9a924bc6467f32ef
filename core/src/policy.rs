//! The escalation and scope rules, as pure functions. Every path that changes an app (HTTP,
//! CLI, bootstrap) goes through the registry, and the registry asks these functions, so a rule
//! holds everywhere or nowhere.

/// The scope that passes every check.
pub const ROOT: &str = "root";

/// Scopes Tessera defines; they gate its own admin API (docs/api.md, Admin API).
pub const BUILT_IN_SCOPES: [&str; 16] = [
    ROOT,
    "read_user",
    "write_user",
    "read_app",
    "write_app",
    "read_role",
    "write_role",
    "read_scope",
    "write_scope",
    "read_key",
    "write_key",
    "read_service",
    "write_service",
    "read_audit",
    "read_resource",
    "write_resource",
];

/// Roles Tessera defines: `(name, privileged)`. `super_admin` gates cross-app trust (Melody Auth's S2S API);
/// `consumer` is the default role of new users (Fusio), with no scopes until given some.
pub const BUILT_IN_ROLES: [(&str, bool); 2] = [("super_admin", true), ("consumer", false)];

pub fn is_built_in_scope(name: &str) -> bool {
    BUILT_IN_SCOPES.contains(&name)
}

pub fn is_built_in_role(name: &str) -> bool {
    BUILT_IN_ROLES.iter().any(|(n, _)| *n == name)
}

/// Who asks for a change: an app with its token's scopes, the operator at the console, who
/// holds the data directory and so everything in it, or a service through the service API,
/// which holds no scope at all and so is never root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    App { client_id: String, scopes: Vec<String> },
    Operator,
    Service { service_id: String },
}

impl Caller {
    pub fn is_root(&self) -> bool {
        match self {
            Caller::App { scopes, .. } => scopes.iter().any(|s| s == ROOT),
            Caller::Operator => true,
            Caller::Service { .. } => false,
        }
    }

    /// Whether the caller itself holds `scope` (root holds every scope).
    pub fn holds(&self, scope: &str) -> bool {
        match self {
            Caller::App { scopes, .. } => scopes.iter().any(|s| s == scope || s == ROOT),
            Caller::Operator => true,
            Caller::Service { .. } => false,
        }
    }
}

/// A refused change. Each message is part of the contract, byte for byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyError {
    /// docs/api.md, Admin API rule 1.
    RootAssignment,
    /// An app that holds `root` is as powerful as root: only root may change, rotate or
    /// delete it, or a `write_app` token could take its secret and so its power.
    RootAppManagement,
    /// docs/api.md, Admin API rule 3: built-ins are fixed, and no custom scope or role takes their names
    /// (no path to `root` through renames).
    BuiltIn,
    /// A role holding `root` would hand it to every user given the role.
    RootInRole,
    /// docs/api.md, Admin API rule 2.
    PrivilegedRole,
    /// A privileged role can only be changed by root, or a `write_role` token could unmark it
    /// and then have it assigned.
    PrivilegedRoleManagement,
    /// A user holding a privileged role is root's to change: otherwise a `write_user` token
    /// (or a service) could lock out, strip or delete the people root trusts.
    PrivilegedUser,
    /// A scope held by an app that holds `root` is part of that app: renaming or deleting it
    /// would rewrite a root app's scopes behind root's back.
    RootAppScope,
    /// With `strict_delegation`, a caller can hand on only what it holds, so `write_app` or
    /// `write_role` is no longer as strong as every non-root scope.
    StrictDelegation,
    /// With `strict_delegation`, a credential of an app is every scope the app holds: a
    /// caller that could take one would hand itself scopes it lacks.
    StrictAppCredential,
    /// A resource granted to an app holding `root` is part of that app: renaming it, taking
    /// scopes from it, changing its token lifetime or deleting it would rewrite a root app's
    /// grants behind root's back.
    RootAppResource,
    /// With `strict_delegation`, renaming a resource moves every app's grant to the new
    /// audience: a caller could point grants it could never give at an API of its choosing.
    StrictResourceRename,
    /// With `strict_delegation`, a rename hands the new name to every app and role that holds
    /// the old one: a caller holding `reports:read` could rename it into any scope it lacks.
    StrictScopeRename,
}

impl PolicyError {
    pub fn message(self) -> &'static str {
        match self {
            PolicyError::RootAssignment => {
                "Only an app with the root scope can assign the root scope to an app."
            }
            PolicyError::RootAppManagement => {
                "Only an app with the root scope can manage an app that holds the root scope."
            }
            PolicyError::BuiltIn => {
                "Built-in scopes and roles cannot be created, renamed, updated or deleted."
            }
            PolicyError::PrivilegedRole => {
                "Only an app with the root scope can assign a privileged role."
            }
            PolicyError::RootInRole => {
                "Only an app with the root scope can assign the root scope to a role."
            }
            PolicyError::PrivilegedRoleManagement => {
                "Only an app with the root scope can manage a privileged role."
            }
            PolicyError::PrivilegedUser => {
                "Only an app with the root scope can change a user with a privileged role."
            }
            PolicyError::RootAppScope => {
                "Only an app with the root scope can rename or delete a scope held by an app with the root scope."
            }
            PolicyError::RootAppResource => {
                "Only an app with the root scope can rename, narrow, re-time or delete a resource granted to an app with the root scope."
            }
            PolicyError::StrictResourceRename => {
                "With strict_delegation on, only an app with the root scope can rename a resource that apps hold grants for."
            }
            PolicyError::StrictDelegation => {
                "With strict_delegation on, a caller without the root scope can grant only scopes it holds."
            }
            PolicyError::StrictAppCredential => {
                "With strict_delegation on, a caller without the root scope can start a secret rotation of, or set the publicKeyJwk, a client certificate or a federated identity of, only an app whose scopes it holds."
            }
            PolicyError::StrictScopeRename => {
                "With strict_delegation on, only an app with the root scope can rename a scope that apps or roles hold."
            }
        }
    }
}

/// Rule 1: only a root caller may put `root` in an app's scopes.
pub fn check_app_scopes(caller: &Caller, scopes: &[String]) -> Result<(), PolicyError> {
    if scopes.iter().any(|s| s == ROOT) && !caller.is_root() {
        return Err(PolicyError::RootAssignment);
    }
    Ok(())
}

/// Only a root caller may put `root` in a role's scopes.
pub fn check_role_scopes(caller: &Caller, scopes: &[String]) -> Result<(), PolicyError> {
    if scopes.iter().any(|s| s == ROOT) && !caller.is_root() {
        return Err(PolicyError::RootInRole);
    }
    Ok(())
}

/// Only a root caller may change a privileged role, or make a role privileged.
pub fn check_manage_role(caller: &Caller, is_privileged: bool) -> Result<(), PolicyError> {
    if is_privileged && !caller.is_root() {
        return Err(PolicyError::PrivilegedRoleManagement);
    }
    Ok(())
}

/// Only a root caller may change an app that already holds `root`.
pub fn check_manage_app(caller: &Caller, current_scopes: &[String]) -> Result<(), PolicyError> {
    if current_scopes.iter().any(|s| s == ROOT) && !caller.is_root() {
        return Err(PolicyError::RootAppManagement);
    }
    Ok(())
}

/// Only a root caller may deactivate, re-activate, re-role or delete a user who holds a
/// privileged role.
pub fn check_change_privileged_user(
    caller: &Caller,
    holds_privileged_role: bool,
) -> Result<(), PolicyError> {
    if holds_privileged_role && !caller.is_root() {
        return Err(PolicyError::PrivilegedUser);
    }
    Ok(())
}

/// Only a root caller may rename or delete a scope that an app holding `root` also holds.
pub fn check_scope_of_root_app(caller: &Caller, held_by_root_app: bool) -> Result<(), PolicyError> {
    if held_by_root_app && !caller.is_root() {
        return Err(PolicyError::RootAppScope);
    }
    Ok(())
}

/// Only a root caller may rename, narrow, re-time or delete a resource an app holding `root`
/// has a grant for.
pub fn check_resource_of_root_app(
    caller: &Caller,
    granted_to_root_app: bool,
) -> Result<(), PolicyError> {
    if granted_to_root_app && !caller.is_root() {
        return Err(PolicyError::RootAppResource);
    }
    Ok(())
}

/// With `strict`, every scope a non-root caller newly grants (to an app or a role) must be one
/// it holds itself. `already` are the scopes the target holds now: keeping them is no grant.
pub fn check_delegation(
    caller: &Caller,
    strict: bool,
    granted: &[String],
    already: &[String],
) -> Result<(), PolicyError> {
    if !strict || caller.is_root() {
        return Ok(());
    }
    let is_new = |s: &&String| !already.contains(s);
    if granted.iter().filter(is_new).all(|s| caller.holds(s)) {
        Ok(())
    } else {
        Err(PolicyError::StrictDelegation)
    }
}

/// With `strict`, a non-root caller may take a new credential of an app (a rotation's next
/// secret, a `publicKeyJwk`) only when it holds every scope the app will hold.
pub fn check_app_credential(
    caller: &Caller,
    strict: bool,
    app_scopes: &[String],
) -> Result<(), PolicyError> {
    if !strict || caller.is_root() || app_scopes.iter().all(|s| caller.holds(s)) {
        Ok(())
    } else {
        Err(PolicyError::StrictAppCredential)
    }
}

/// With `strict`, only a root caller may rename a resource that apps hold grants for.
pub fn check_resource_rename(
    caller: &Caller,
    strict: bool,
    granted: bool,
) -> Result<(), PolicyError> {
    if strict && granted && !caller.is_root() {
        Err(PolicyError::StrictResourceRename)
    } else {
        Ok(())
    }
}

/// With `strict`, only a root caller may rename a scope that an app or a role holds.
pub fn check_scope_rename(caller: &Caller, strict: bool, held: bool) -> Result<(), PolicyError> {
    if strict && held && !caller.is_root() { Err(PolicyError::StrictScopeRename) } else { Ok(()) }
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// The scope a token gets. Omitted (or empty, RFC 6749 §3.1) means everything assigned; a
/// requested scope the client does not hold is refused by name, never silently dropped.
pub fn grant_scope<'r, S: AsRef<str>>(
    requested: Option<&'r str>,
    assigned: &[S],
) -> Result<String, &'r str> {
    // Omitted, empty or only separators: all the same, "no particular scope asked for".
    let requested = requested.filter(|r| r.bytes().any(|b| b != b' '));
    let Some(requested) = requested else {
        let mut all = String::new();
        for scope in assigned {
            if !all.is_empty() {
                all.push(' ');
            }
            all.push_str(scope.as_ref());
        }
        return Ok(all);
    };
    let mut granted = String::with_capacity(requested.len());
    for token in requested.split(' ').filter(|t| !t.is_empty()) {
        if !assigned.iter().any(|a| a.as_ref() == token) {
            return Err(token);
        }
        if !granted.split(' ').any(|g| g == token) {
            if !granted.is_empty() {
                granted.push(' ');
            }
            granted.push_str(token);
        }
    }
    Ok(granted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn omitted_scope_grants_everything_assigned() {
        assert_eq!(grant_scope(None, &v(&["a", "b"])).unwrap(), "a b");
        assert_eq!(grant_scope(Some(""), &v(&["a"])).unwrap(), "a");
        assert_eq!(grant_scope(Some("  "), &v(&["a"])).unwrap(), "a");
    }

    #[test]
    fn an_unassigned_scope_is_named() {
        assert_eq!(grant_scope(Some("a zz"), &v(&["a"])), Err("zz"));
        assert_eq!(grant_scope(Some("a a  a"), &v(&["a", "b"])).unwrap(), "a");
    }

    #[test]
    fn scope_tokens_follow_rfc_6749() {
        assert!(is_scope_token("read:settings"));
        assert!(!is_scope_token("a b"));
        assert!(!is_scope_token("a\"b"));
        assert!(!is_scope_token("a\\b"));
        assert!(!is_scope_token(""));
    }

    #[test]
    fn root_rules() {
        let app = Caller::App { client_id: "c".into(), scopes: v(&["write_app"]) };
        assert_eq!(check_app_scopes(&app, &v(&["root"])), Err(PolicyError::RootAssignment));
        assert!(check_app_scopes(&app, &v(&["read_app"])).is_ok());
        assert!(check_app_scopes(&Caller::Operator, &v(&["root"])).is_ok());
        assert_eq!(check_manage_app(&app, &v(&["root"])), Err(PolicyError::RootAppManagement));
    }

    #[test]
    fn issue_8_services_are_never_root_and_strict_delegation_grants_only_held_scopes() {
        let service = Caller::Service { service_id: "s".into() };
        assert!(!service.is_root());
        assert_eq!(check_change_privileged_user(&service, true), Err(PolicyError::PrivilegedUser));
        assert!(check_change_privileged_user(&service, false).is_ok());
        assert!(check_change_privileged_user(&Caller::Operator, true).is_ok());
        assert_eq!(check_scope_of_root_app(&service, true), Err(PolicyError::RootAppScope));

        let app = Caller::App { client_id: "c".into(), scopes: v(&["write_app", "a"]) };
        let strict = |granted: &[&str], already: &[&str]| {
            check_delegation(&app, true, &v(granted), &v(already))
        };
        assert!(strict(&["a", "write_app"], &[]).is_ok());
        assert_eq!(strict(&["a", "b"], &[]), Err(PolicyError::StrictDelegation));
        assert!(
            strict(&["a", "b"], &["b"]).is_ok(),
            "keeping what the target holds grants nothing"
        );
        assert!(check_delegation(&app, false, &v(&["b"]), &[]).is_ok(), "off: as before");
        let root = Caller::App { client_id: "r".into(), scopes: v(&["root"]) };
        assert!(check_delegation(&root, true, &v(&["b"]), &[]).is_ok());
    }

    #[test]
    fn issue_8_strict_delegation_keeps_app_credentials_from_callers_lacking_its_scopes() {
        let app = Caller::App { client_id: "c".into(), scopes: v(&["write_app", "a"]) };
        let err = Err(PolicyError::StrictAppCredential);
        assert_eq!(check_app_credential(&app, true, &v(&["a", "b"])), err);
        assert!(check_app_credential(&app, true, &v(&["a"])).is_ok());
        assert!(check_app_credential(&app, false, &v(&["b"])).is_ok(), "off: as before");
        assert!(check_app_credential(&Caller::Operator, true, &v(&["b"])).is_ok());
        let service = Caller::Service { service_id: "s".into() };
        assert_eq!(check_app_credential(&service, true, &v(&["b"])), err);
    }

    #[test]
    fn issue_8_strict_delegation_refuses_renaming_a_held_scope() {
        let app = Caller::App { client_id: "c".into(), scopes: v(&["write_scope", "a"]) };
        assert_eq!(check_scope_rename(&app, true, true), Err(PolicyError::StrictScopeRename));
        assert!(check_scope_rename(&app, true, false).is_ok());
        assert!(check_scope_rename(&app, false, true).is_ok(), "off: as before");
        assert!(check_scope_rename(&Caller::Operator, true, true).is_ok());
    }
}
