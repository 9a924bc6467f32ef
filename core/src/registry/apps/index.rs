//! The registry's apps in memory: each app once, as the `Client` the token path reads, by id.
//! The index holds the same `Arc` the client table publishes (ahead of it while a commit is
//! under way), and every check that scans apps reads what the client keeps of its record:
//! scopes, grants as registered, the issuers its identities name. Whatever else a record
//! holds (names, metadata, certificates as sent) is read from the store when asked for
//! (`records.rs`), never kept here.

use std::collections::BTreeMap;
use std::sync::Arc;

use tessera_storage::{AppRecord, ResourceRecord, Storage, StoreError};

use crate::tables::client::{Client, ResourceNow};
use crate::tables::scopes::Interner;
use crate::tokens::claims::REGISTERED_CLAIMS;

#[derive(Default)]
pub(in crate::registry) struct AppIndex {
    by_id: BTreeMap<Box<str>, Arc<Client>>,
    interner: Interner,
}

impl AppIndex {
    /// The client `app` publishes, its grants as far as `resources` allow now. `tokenClaims`
    /// that a record written before a claim was registered still holds never reach a token.
    pub(in crate::registry) fn client_of(
        &mut self,
        app: &AppRecord,
        resources: &BTreeMap<String, ResourceRecord>,
    ) -> Arc<Client> {
        let is_kept = |name: &str| !REGISTERED_CLAIMS.contains(&name);
        Arc::new(Client::from_record(app, now(resources), is_kept, &mut self.interner))
    }

    /// Holds `app` as it is now (ahead of the store while its commit is queued).
    pub(in crate::registry) fn put(
        &mut self,
        app: &AppRecord,
        resources: &BTreeMap<String, ResourceRecord>,
    ) -> Arc<Client> {
        let client = self.client_of(app, resources);
        self.by_id.insert(app.id.as_str().into(), Arc::clone(&client));
        client
    }

    pub(in crate::registry) fn remove(&mut self, id: &str) -> Option<Arc<Client>> {
        self.by_id.remove(id)
    }

    pub(in crate::registry) fn get(&self, id: &str) -> Option<&Arc<Client>> {
        self.by_id.get(id)
    }

    pub(in crate::registry) fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Every app, in id order.
    pub(in crate::registry) fn iter(&self) -> impl Iterator<Item = (&str, &Arc<Client>)> {
        self.by_id.iter().map(|(id, client)| (&**id, client))
    }

    /// Republishes an app's grants with what `resources` allow now, as a new client (so that
    /// what was handed out for the old one lapses, `tokens/reuse.rs`); the client to publish.
    pub(in crate::registry) fn regrant(
        &mut self,
        id: &str,
        resources: &BTreeMap<String, ResourceRecord>,
    ) -> Option<Arc<Client>> {
        let client = self.by_id.get(id)?;
        let Some(regranted) = client.regranted(now(resources), &mut self.interner) else {
            return Some(Arc::clone(client));
        };
        let regranted = Arc::new(regranted);
        self.by_id.insert(id.into(), Arc::clone(&regranted));
        Some(regranted)
    }

    /// Loads every app from the store, each built afresh. A failed load replaces nothing;
    /// else the apps held before are handed back, for what has gone to be unpublished.
    pub(in crate::registry) fn load(
        &mut self,
        store: &dyn Storage,
        resources: &BTreeMap<String, ResourceRecord>,
    ) -> Result<BTreeMap<Box<str>, Arc<Client>>, StoreError> {
        let mut by_id = BTreeMap::new();
        // One record at a time: a million decoded records held at once would outweigh the
        // clients built from them, and the allocator keeps what it was once given.
        store.scan_apps(&mut |app| {
            let client = self.client_of(&app, resources);
            by_id.insert(app.id.into_boxed_str(), client);
        })?;
        Ok(std::mem::replace(&mut self.by_id, by_id))
    }
}

/// What each resource allows now, by identifier.
fn now<'r>(
    resources: &'r BTreeMap<String, ResourceRecord>,
) -> impl Fn(&str) -> Option<ResourceNow<'r>> + 'r {
    move |identifier| {
        let resource = resources.values().find(|r| r.identifier == identifier)?;
        Some(ResourceNow { scopes: &resource.scopes, ttl: resource.access_token_ttl_secs })
    }
}
