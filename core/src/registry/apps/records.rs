//! Apps' records as admin reads and every read-modify-write see them: the write a queued commit
//! carries for the app when there is one (memory runs ahead of the store until the group
//! commit, `batch.rs`), else the store's. Memory keeps no record (`index.rs`), so these are
//! the only copies, and only for as long as they are asked for.

use tessera_storage::{AppRecord, RegistryChange, RegistryWrite};

use crate::registry::{Listed, Page, Registry, RegistryError};

/// What the queued commits say of an app: put as this record, or deleted.
enum Queued<'a> {
    Put(&'a AppRecord),
    Deleted,
}

impl Registry {
    /// The app `id` as the commands so far left it.
    pub(in crate::registry) fn app(&self, id: &str) -> Result<AppRecord, RegistryError> {
        self.app_records(&[id])?.pop().ok_or(RegistryError::NotFound)
    }

    /// The apps of `ids` that exist, in that order.
    pub(in crate::registry) fn app_records(
        &self,
        ids: &[&str],
    ) -> Result<Vec<AppRecord>, RegistryError> {
        let held: Vec<&str> =
            ids.iter().copied().filter(|id| self.apps.get(id).is_some()).collect();
        let from_store: Vec<&str> =
            held.iter().copied().filter(|id| self.queued_app(id).is_none()).collect();
        let mut stored = self.store.apps_by_id(&from_store)?.into_iter().peekable();
        let mut out = Vec::with_capacity(held.len());
        for id in held {
            match self.queued_app(id) {
                Some(Queued::Put(record)) => out.push(record.clone()),
                Some(Queued::Deleted) => {}
                // In the order asked; one the store lacks (another node deleted it) is skipped.
                None => {
                    if let Some(record) = stored.next_if(|r| r.id == id) {
                        out.push(record);
                    }
                }
            }
        }
        Ok(out)
    }

    pub(in crate::registry) fn list_apps(
        &self,
        page: Page,
    ) -> Result<Listed<AppRecord>, RegistryError> {
        let ids = page.of(self.apps.iter().map(|(id, _)| id), self.apps.len());
        Ok(Listed { items: self.app_records(&ids.items)?, total: ids.total })
    }

    /// The latest queued write naming the app, if any.
    fn queued_app(&self, id: &str) -> Option<Queued<'_>> {
        self.queued().iter().rev().find_map(|write| match write {
            RegistryWrite::CreateApp(app, _) | RegistryWrite::UpdateApp(app, _) if app.id == id => {
                Some(Queued::Put(app))
            }
            RegistryWrite::DeleteApp(gone, _) if gone == id => Some(Queued::Deleted),
            // Staged in id order (`import.rs`).
            RegistryWrite::ImportApps(apps, _) => apps
                .binary_search_by(|a| a.id.as_str().cmp(id))
                .ok()
                .map(|at| Queued::Put(&apps[at])),
            RegistryWrite::Changes(changes) => changes.iter().rev().find_map(|c| match c {
                RegistryChange::PutApp(app) if app.id == id => Some(Queued::Put(app)),
                _ => None,
            }),
            _ => None,
        })
    }
}
