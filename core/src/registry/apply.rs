//! The one way a change reaches the registry's memory: the in-memory maps, where the commands
//! after it see it, then one transaction (`batch`), and only once that is durable the
//! published tables. A change the store refused is never published.

use tessera_storage::{AppRecord, RegistryChange, RegistryWrite};

use super::{Registry, RegistryError, users};

impl Registry {
    /// Queues related changes for one transaction (`batch`), with the running command's audit
    /// event when they change something, and applies them to memory; they are published once
    /// durable. They are committed even when memory already holds them: on a shared store memory
    /// may trail another node's write, and an acknowledged write must land.
    pub(super) fn apply(&mut self, mut changes: Vec<RegistryChange>) -> Result<(), RegistryError> {
        let changes_something = changes.iter().any(|c| !self.already_holds(c));
        let first = changes.first().and_then(RegistryChange::entry);
        let event = if changes_something { self.audit_event(first) } else { None };
        self.audit_staged(&event);
        changes.extend(event.map(RegistryChange::Audit));
        self.remember(&changes);
        self.stage(RegistryWrite::Changes(changes));
        Ok(())
    }

    /// Whether `change` puts a record exactly as memory already holds it: no event for it.
    fn already_holds(&self, change: &RegistryChange) -> bool {
        use RegistryChange as C;
        match change {
            // Read back from its client, as admin reads it.
            C::PutApp(a) => self.app(&a.id).is_ok_and(|held| held == *a),
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

    /// Brings memory in line with changes about to commit, and notes what they will publish.
    pub(super) fn remember(&mut self, changes: &[RegistryChange]) {
        // A role's scopes reach every user holding it.
        let moves_user_scopes = changes
            .iter()
            .any(|c| matches!(c, RegistryChange::PutRole(_) | RegistryChange::DeleteRole(_)));
        for change in changes {
            self.remember_one(change);
        }
        if moves_user_scopes {
            self.unpublished().all_users();
        }
    }

    /// New apps, as `remember` would put them one by one.
    pub(super) fn remember_apps(&mut self, apps: &[AppRecord]) {
        for app in apps {
            self.unpublished().app(&app.id);
            self.apps.put(app, &self.resources);
        }
    }

    fn remember_one(&mut self, change: &RegistryChange) {
        // The record stays in the queued write only; memory keeps its client.
        if let RegistryChange::PutApp(app) = change {
            return self.remember_apps(std::slice::from_ref(app));
        }
        match change.clone() {
            RegistryChange::PutApp(_) => {}
            RegistryChange::PutResource(resource) => {
                let identifier = resource.identifier.clone();
                self.resources.insert(resource.id.clone(), resource);
                // Its lifetime travels in the grants of the apps that hold one.
                let holders = self.apps.iter().filter(|(_, client)| {
                    client.granted().iter().any(|g| *g.identifier == *identifier)
                });
                let holders: Vec<String> = holders.map(|(id, _)| id.to_string()).collect();
                for id in holders {
                    self.unpublished().app(&id);
                }
            }
            RegistryChange::DeleteResource(id) => {
                self.resources.remove(&id);
            }
            RegistryChange::PutIssuer(issuer) => {
                self.issuers.insert(issuer.id.clone(), issuer);
                self.unpublished().issuers();
            }
            RegistryChange::DeleteIssuer(id) => {
                self.issuers.remove(&id);
                self.unpublished().issuers();
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
                self.unpublished().user(&user.auth_id);
                for key in users::login_keys(&user) {
                    self.logins.insert(key, user.auth_id.clone());
                }
                self.users.insert(user.auth_id.clone(), user);
            }
            RegistryChange::DeleteUser(id) => {
                self.forget_logins(&id);
                self.unpublished().user(&id);
                self.users.remove(&id);
            }
            RegistryChange::PutService(s) => {
                self.services.insert(s.id.clone(), s);
            }
            RegistryChange::DeleteService(id) => {
                self.services.remove(&id);
            }
            RegistryChange::PutApiKey(k) => {
                self.unpublished().api_key(&k.key_id);
                self.api_keys.insert(k.key_id.clone(), k);
            }
            RegistryChange::DeleteApiKey(id) => {
                self.unpublished().api_key(&id);
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
