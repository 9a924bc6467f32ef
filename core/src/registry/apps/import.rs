//! Bulk import, for fleets moving from another token service: many apps in one command, each
//! checked as a create is (the root and delegation rules included), optionally keeping the
//! client id and secret the fleet already uses (the secret hashed at once, never stored), and
//! committed all or nothing in one transaction.

use std::collections::HashSet;

use tessera_storage::RegistryWrite;

use super::fields::{NewApp, is_client_id};
use crate::auth::secret::{hash_secret, new_client_id, new_secret};
use crate::policy::Caller;
use crate::registry::{ConflictKind, Registry, RegistryError};
use crate::tables::client::CONSUMER_CLIENT_ID;

/// The most apps one import takes.
pub const MAX_IMPORT: usize = 1_000_000;
/// The shortest secret an import keeps: shorter ones are guessable, and the app should get a
/// new one instead.
pub const MIN_IMPORTED_SECRET: usize = 16;

/// One app to import, with the line of the file it came from.
#[derive(Debug, Clone, Default)]
pub struct ImportedApp {
    pub line: usize,
    pub app: NewApp,
    pub client_id: Option<String>,
    pub secret: Option<String>,
}

/// An imported app's ids, and its secret when the import made one.
#[derive(Debug, Clone)]
pub struct Imported {
    pub line: usize,
    pub id: String,
    pub client_id: String,
    pub secret: Option<String>,
}

impl Registry {
    pub(in crate::registry) fn import_apps(
        &mut self,
        caller: &Caller,
        apps: Vec<ImportedApp>,
    ) -> Result<Vec<Imported>, RegistryError> {
        if apps.is_empty() {
            return Err(RegistryError::invalid("apps", "the import holds no app"));
        }
        if apps.len() > MAX_IMPORT {
            let reason = format!("an import holds at most {MAX_IMPORT} apps");
            return Err(RegistryError::invalid("apps", reason));
        }
        let mut client_ids = HashSet::with_capacity(apps.len());
        let mut imported = Vec::with_capacity(apps.len());
        let mut records = Vec::with_capacity(apps.len());
        for entry in apps {
            let line = entry.line;
            let at_line = |error: RegistryError| RegistryError::AtLine(line, Box::new(error));
            let client_id = match entry.client_id {
                Some(id) => {
                    self.check_imported_client_id(&id).map_err(at_line)?;
                    id
                }
                None => new_client_id(),
            };
            if !client_ids.insert(client_id.clone()) {
                let reason = format!("client id {client_id} is already on an earlier line");
                return Err(at_line(RegistryError::invalid("clientId", reason)));
            }
            let (hash, secret) = match entry.secret {
                Some(secret) => {
                    check_imported_secret(&secret).map_err(at_line)?;
                    (hash_secret(&secret), None)
                }
                None => {
                    let secret = new_secret();
                    (hash_secret(&secret), Some(secret))
                }
            };
            let app = self.new_app(caller, entry.app, client_id, hash).map_err(at_line)?;
            let (id, client_id) = (app.id.clone(), app.client_id.clone());
            imported.push(Imported { line, id, client_id, secret });
            records.push(app);
        }
        let event = self.audit_event(None);
        self.audit_staged(&event);
        self.remember_apps(&records);
        self.stage(RegistryWrite::ImportApps(records, event));
        Ok(imported)
    }

    /// A client id the fleet brings must be one Tessera could have made, and free here. (The
    /// store checks again as it commits: another node may take one meanwhile.)
    fn check_imported_client_id(&self, id: &str) -> Result<(), RegistryError> {
        if !is_client_id(id) || id == CONSUMER_CLIENT_ID {
            let reason =
                "clientId must be 1 to 128 characters of [A-Za-z0-9._~-], and not tessera-consumer";
            return Err(RegistryError::invalid("clientId", reason));
        }
        if self.client_table.get(id).is_some() {
            return Err(ConflictKind::Taken("client id").into());
        }
        Ok(())
    }
}

fn check_imported_secret(secret: &str) -> Result<(), RegistryError> {
    if secret.chars().count() < MIN_IMPORTED_SECRET || secret.len() > 512 {
        let reason = format!(
            "secret must be {MIN_IMPORTED_SECRET} to 512 characters; leave it out to have one made"
        );
        return Err(RegistryError::invalid("secret", reason));
    }
    Ok(())
}
