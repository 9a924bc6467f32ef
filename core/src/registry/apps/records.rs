//! Apps' records as admin reads and every read-modify-write see them: read back from the
//! clients the index holds (`Client::record`), so that memory keeps one copy of each app and
//! admin reads still need no store (they answer during a database outage). The index runs ahead
//! of the store until the group commit (`batch.rs`), as memory always has.

use tessera_storage::AppRecord;

use crate::registry::{Listed, Page, Registry, RegistryError};

impl Registry {
    /// The app `id` as the commands so far left it.
    pub(in crate::registry) fn app(&self, id: &str) -> Result<AppRecord, RegistryError> {
        self.apps.get(id).map(|client| client.record(id)).ok_or(RegistryError::NotFound)
    }

    /// The apps of `ids` that exist, in that order.
    pub(in crate::registry) fn app_records(&self, ids: &[&str]) -> Vec<AppRecord> {
        ids.iter().filter_map(|id| self.app(id).ok()).collect()
    }

    pub(in crate::registry) fn list_apps(&self, page: Page) -> Listed<AppRecord> {
        // Paged first: the apps skipped are never read back.
        let listed = page.of(self.apps.iter(), self.apps.len());
        let items = listed.items.into_iter().map(|(id, client)| client.record(id)).collect();
        Listed { items, total: listed.total }
    }
}
