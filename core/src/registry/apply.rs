//! The one way a change reaches the registry's memory: durable first (one transaction), then
//! the in-memory maps, then the published tables. A change the store refused is never seen.

use tessera_storage::RegistryChange;

use super::{Registry, RegistryError, users};

impl Registry {
    /// Commits related changes in one transaction, with the running command's audit event
    /// when they change something, then applies them. They are committed even when memory
    /// already holds them: on a shared store memory may trail another node's write, and an
    /// acknowledged write must land.
    pub(super) fn apply(&mut self, mut changes: Vec<RegistryChange>) -> Result<(), RegistryError> {
        let changes_something = changes.iter().any(|c| !self.already_holds(c));
        let first = changes.first().and_then(RegistryChange::entry);
        let event = if changes_something { self.audit_event(first) } else { None };
        changes.extend(event.clone().map(RegistryChange::Audit));
        let started = std::time::Instant::now();
        self.store.apply_registry(&changes)?;
        self.grants.commit_times().record(started.elapsed());
        self.audit_committed(event);
        self.remember(changes);
        Ok(())
    }

    /// Whether `change` puts a record exactly as memory already holds it: no event for it.
    fn already_holds(&self, change: &RegistryChange) -> bool {
        use RegistryChange as C;
        match change {
            C::PutApp(a) => self.apps.get(&a.id) == Some(a),
            C::PutScope(s) => self.scopes.get(&s.id) == Some(s),
            C::PutRole(r) => self.roles.get(&r.id) == Some(r),
            C::PutUser(u) => self.users.get(&u.auth_id) == Some(u),
            C::PutService(s) => self.services.get(&s.id) == Some(s),
            C::PutApiKey(k) => self.api_keys.get(&k.key_id) == Some(k),
            C::PutSubscription(s) => {
                self.subscriptions.get(&(s.service_id.clone(), s.user_id.clone())) == Some(s)
            }
            C::PutProvider(p) => self.providers.get(&p.id) == Some(p),
            C::PutResource(r) => self.resources.get(&r.id) == Some(r),
            C::PutIssuer(i) => self.issuers.get(&i.id) == Some(i),
            _ => false,
        }
    }

    /// Brings memory and the published tables in line with changes the store has committed.
    pub(super) fn remember(&mut self, changes: Vec<RegistryChange>) {
        // A role's scopes reach every user holding it.
        let moves_user_scopes = changes
            .iter()
            .any(|c| matches!(c, RegistryChange::PutRole(_) | RegistryChange::DeleteRole(_)));
        for change in changes {
            self.remember_one(change);
        }
        if moves_user_scopes {
            self.republish_users();
        }
    }

    fn remember_one(&mut self, change: RegistryChange) {
        match change {
            RegistryChange::PutApp(app) => {
                self.publish_app(&app);
                self.apps.insert(app.id.clone(), app);
            }
            RegistryChange::PutResource(resource) => {
                let identifier = resource.identifier.clone();
                self.resources.insert(resource.id.clone(), resource);
                // Its lifetime travels in the grants of the apps that hold one.
                for app in self.apps.values().filter(|a| a.resources.contains_key(&identifier)) {
                    self.publish_app(app);
                }
            }
            RegistryChange::DeleteResource(id) => {
                self.resources.remove(&id);
            }
            RegistryChange::PutIssuer(issuer) => {
                self.issuers.insert(issuer.id.clone(), issuer);
                self.publish_issuers();
            }
            RegistryChange::DeleteIssuer(id) => {
                self.issuers.remove(&id);
                self.publish_issuers();
            }
            RegistryChange::PutScope(scope) => {
                self.scopes.insert(scope.id.clone(), scope);
            }
            RegistryChange::DeleteScope(id) => {
                self.scopes.remove(&id);
            }
            RegistryChange::PutRole(role) => {
                self.roles.insert(role.id.clone(), role);
            }
            RegistryChange::DeleteRole(id) => {
                self.roles.remove(&id);
            }
            RegistryChange::PutUser(user) => {
                self.forget_logins(&user.auth_id);
                self.publish_user(&user);
                for key in users::login_keys(&user) {
                    self.logins.insert(key, user.auth_id.clone());
                }
                self.users.insert(user.auth_id.clone(), user);
            }
            RegistryChange::DeleteUser(id) => {
                self.forget_logins(&id);
                self.users.remove(&id);
                self.user_table.remove(&id);
            }
            RegistryChange::PutService(s) => {
                self.services.insert(s.id.clone(), s);
            }
            RegistryChange::DeleteService(id) => {
                self.services.remove(&id);
            }
            RegistryChange::PutApiKey(k) => {
                self.service_keys.put(&k);
                self.api_keys.insert(k.key_id.clone(), k);
            }
            RegistryChange::DeleteApiKey(id) => {
                self.service_keys.remove(&id);
                self.api_keys.remove(&id);
            }
            RegistryChange::LinkUser(service, user, _) => {
                self.service_users.insert((service, user));
            }
            RegistryChange::UnlinkUser(service, user) => {
                self.service_users.remove(&(service, user));
            }
            RegistryChange::PutSubscription(sub) => {
                self.subscriptions.insert((sub.service_id.clone(), sub.user_id.clone()), sub);
            }
            RegistryChange::DeleteSubscription(service, user) => {
                self.subscriptions.remove(&(service, user));
            }
            RegistryChange::PutProvider(p) => {
                self.providers.insert(p.id.clone(), p);
            }
            RegistryChange::DeleteProvider(id) => {
                self.providers.remove(&id);
            }
            RegistryChange::Audit(_) => {}
        }
    }

    /// Drops a user's login names from the index (before they change or the user goes).
    fn forget_logins(&mut self, auth_id: &str) {
        if let Some(old) = self.users.get(auth_id) {
            for key in users::login_keys(old) {
                self.logins.remove(&key);
            }
        }
    }
}
