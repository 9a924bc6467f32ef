//! Another node's changes, read back from the shared store: the records of every kind the
//! change log names are reloaded and republished, so a change made anywhere is in force here
//! once the follower has polled. The store is the truth; what this node held is replaced.

use std::collections::BTreeMap;
use std::sync::Arc;

use tessera_storage::StoreError;

use super::{Registry, keyed, users};

/// The kinds of registry record a batch of change-log entries touched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Touched {
    pub apps: bool,
    pub scopes: bool,
    pub roles: bool,
    pub users: bool,
    pub services: bool,
    pub api_keys: bool,
    pub service_users: bool,
    pub subscriptions: bool,
    pub providers: bool,
    pub resources: bool,
    pub issuers: bool,
}

impl Touched {
    /// Marks the kind of one change-log entry ("kind:id"); false when it is not a registry kind.
    pub fn mark(&mut self, entry: &str) -> bool {
        let kind = entry.split_once(':').map_or(entry, |(kind, _)| kind);
        let flag = match kind {
            "app" => &mut self.apps,
            "scope" => &mut self.scopes,
            "role" => &mut self.roles,
            "user" => &mut self.users,
            "service" => &mut self.services,
            "api_key" => &mut self.api_keys,
            "service_user" => &mut self.service_users,
            "subscription" => &mut self.subscriptions,
            "provider" => &mut self.providers,
            "resource" => &mut self.resources,
            "issuer" => &mut self.issuers,
            _ => return false,
        };
        *flag = true;
        true
    }

    /// Every kind.
    pub fn all() -> Touched {
        Touched {
            apps: true,
            scopes: true,
            roles: true,
            users: true,
            services: true,
            api_keys: true,
            service_users: true,
            subscriptions: true,
            providers: true,
            resources: true,
            issuers: true,
        }
    }

    pub fn any(&self) -> bool {
        *self != Touched::default()
    }
}

impl Registry {
    /// Reloads the touched kinds from the store and republishes what they feed. All loads
    /// happen before anything is replaced, so a failed load leaves this node as it was.
    pub(super) fn reload(&mut self, touched: Touched) -> Result<(), StoreError> {
        let store = &self.store;
        let scopes = touched.scopes.then(|| store.load_scopes()).transpose()?;
        let roles = touched.roles.then(|| store.load_roles()).transpose()?;
        let users = touched.users.then(|| store.load_users()).transpose()?;
        let services = touched.services.then(|| store.load_services()).transpose()?;
        let api_keys = touched.api_keys.then(|| store.load_api_keys()).transpose()?;
        let links = touched.service_users.then(|| store.load_service_users()).transpose()?;
        let subscriptions =
            touched.subscriptions.then(|| store.load_subscriptions()).transpose()?;
        let providers = touched.providers.then(|| store.load_providers()).transpose()?;
        let resources = touched.resources.then(|| store.load_resources()).transpose()?;
        let issuers = touched.issuers.then(|| store.load_issuers()).transpose()?;

        // Before the apps: their grants are published with the resources' lifetimes. The apps
        // are loaded last and replace memory only when the whole load succeeds, so a failed
        // load still leaves this node as it was.
        let resources = resources.map(|r| keyed(r, |r| r.id.clone()));
        let before = match touched.apps {
            true => Some(self.apps.load(&**store, resources.as_ref().unwrap_or(&self.resources))?),
            false => None,
        };
        let resources_moved = resources.is_some();
        if let Some(resources) = resources {
            self.resources = resources;
        }
        if let Some(before) = before {
            for (_, gone) in before.iter().filter(|(id, _)| self.apps.get(id).is_none()) {
                self.client_table.remove(&gone.client_id);
            }
            drop(before);
            for (_, client) in self.apps.iter() {
                self.client_table.put(Arc::clone(client));
            }
        } else if resources_moved {
            let granted: Vec<String> = self
                .apps
                .iter()
                .filter(|(_, client)| !client.granted().is_empty())
                .map(|(id, _)| id.to_string())
                .collect();
            for id in granted {
                if let Some(client) = self.apps.regrant(&id, &self.resources) {
                    self.client_table.put(client);
                }
            }
        }
        if let Some(issuers) = issuers {
            self.issuers = keyed(issuers, |i| i.id.clone());
            self.publish_issuers();
        }
        if let Some(scopes) = scopes {
            self.scopes = keyed(scopes, |s| s.id.clone());
        }
        if let Some(roles) = roles {
            self.roles = keyed(roles, |r| r.id.clone());
        }
        if let Some(users) = users {
            let users: BTreeMap<_, _> = keyed(users, |u| u.auth_id.clone());
            for gone in self.users.keys().filter(|id| !users.contains_key(*id)) {
                self.user_table.remove(gone);
            }
            self.logins = users::login_index(users.values());
            self.users = users;
        }
        if touched.users || touched.roles {
            self.republish_users();
        }
        if let Some(services) = services {
            self.services = keyed(services, |s| s.id.clone());
        }
        if let Some(keys) = api_keys {
            let keys = keyed(keys, |k| k.key_id.clone());
            for gone in self.api_keys.keys().filter(|id| !keys.contains_key(*id)) {
                self.service_keys.remove(gone);
            }
            for key in keys.values() {
                self.service_keys.put(key);
            }
            self.api_keys = keys;
        }
        if let Some(links) = links {
            self.service_users = links.into_iter().map(|(s, u, _)| (s, u)).collect();
        }
        if let Some(subscriptions) = subscriptions {
            self.subscriptions = subscriptions
                .into_iter()
                .map(|s| ((s.service_id.clone(), s.user_id.clone()), s))
                .collect();
        }
        if let Some(providers) = providers {
            self.providers = keyed(providers, |p| p.id.clone());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_log_entries_mark_their_kind() {
        let mut touched = Touched::default();
        assert!(!touched.any());
        assert!(touched.mark("app:a1"));
        assert!(touched.mark("service_user:svc:u1"));
        assert!(touched.mark("issuer:i1"));
        assert!(!touched.mark("keys:"));
        assert!(!touched.mark("revoked:1:jti"));
        assert_eq!(
            touched,
            Touched { apps: true, service_users: true, issuers: true, ..Touched::default() },
            "only the kinds named"
        );
    }
}
