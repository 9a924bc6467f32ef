//! The redb implementation of [`Storage`].

use std::path::Path;

use redb::{
    Database, DatabaseError, Durability, ReadableDatabase, ReadableTable, WriteTransaction,
};

use super::tables::{
    API_KEYS, APPS, ASSERTIONS, AUDIT, CHANGES, CLIENT_IDS, CONNECTS, FAMILIES, ISSUERS, KEYS,
    LEASES, META, PROVIDER_GRANTS, PROVIDER_STATES, PROVIDERS, REFRESH_TOKENS, RESOURCES,
    REVOKED_JTIS, ROLES, SCOPES, SERVICE_USERS, SERVICES, SUBSCRIPTIONS, USERS, VERSION,
};
use super::{audit, connect, db, dump, grant, registry};
use crate::connect::grant_key;
use crate::key::{StoredKey, is_same_ring};
use crate::record::{decode, encode};
use crate::registry::{Row, StoredProvider};
use crate::{
    ApiKeyRecord, AppRecord, AuditEvent, ConnectRecord, Dump, FamilyRecord, GrantOp, GrantOutcome,
    IssuerRecord, Kek, KeyRecord, Logged, ProviderGrant, ProviderRecord, RefreshRecord,
    RefreshStatus, RegistryWrite, ResourceRecord, RoleRecord, ScopeRecord, ServiceRecord, Storage,
    StoreError, SubscriptionRecord, TokenKey, UserRecord, WriteOutcomes, revocation_entry,
};

/// The embedded store: one redb file in the data directory, opened by one process at a time.
pub struct Store {
    db: Database,
    kek: Option<Kek>,
}

/// redb's page cache. Its default (1 GiB) fills with the apps table as the registry loads it
/// at start, and stays full: every app is in memory already, as the client the token path
/// reads, so that cache would be a second copy of the fleet. What the store still reads at run
/// time (refresh tokens and families, an admin read of one app) fits in this.
const CACHE_BYTES: usize = 64 << 20;

impl Store {
    pub const FILE: &'static str = "tessera.redb";

    /// Opens (creating when absent) the store in `dir`. A second process gets
    /// [`StoreError::InUse`] rather than a shared, corruptible file.
    pub fn open(dir: &Path, kek: Option<Kek>) -> Result<Store, StoreError> {
        create_private_dir(dir)?;
        let path = dir.join(Self::FILE);
        let database = match Database::builder().set_cache_size(CACHE_BYTES).create(&path) {
            Ok(database) => database,
            Err(DatabaseError::DatabaseAlreadyOpen) => return Err(StoreError::InUse),
            Err(e) => return Err(db(e)),
        };
        // The file holds signing keys (sealed only when a KEK is set): owner only.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        }
        let store = Store { db: database, kek };
        // Creating every table up front lets readers open them without a write first.
        store.write(|txn| {
            txn.open_table(APPS).map_err(db)?;
            txn.open_table(CLIENT_IDS).map_err(db)?;
            txn.open_table(KEYS).map_err(db)?;
            txn.open_table(META).map_err(db)?;
            txn.open_table(CHANGES).map_err(db)?;
            txn.open_table(REFRESH_TOKENS).map_err(db)?;
            txn.open_table(FAMILIES).map_err(db)?;
            txn.open_table(REVOKED_JTIS).map_err(db)?;
            txn.open_table(ASSERTIONS).map_err(db)?;
            txn.open_table(SCOPES).map_err(db)?;
            txn.open_table(ROLES).map_err(db)?;
            txn.open_table(USERS).map_err(db)?;
            txn.open_table(SERVICES).map_err(db)?;
            txn.open_table(API_KEYS).map_err(db)?;
            txn.open_table(SERVICE_USERS).map_err(db)?;
            txn.open_table(SUBSCRIPTIONS).map_err(db)?;
            txn.open_table(PROVIDERS).map_err(db)?;
            txn.open_table(RESOURCES).map_err(db)?;
            txn.open_table(ISSUERS).map_err(db)?;
            txn.open_table(CONNECTS).map_err(db)?;
            txn.open_table(PROVIDER_STATES).map_err(db)?;
            txn.open_table(PROVIDER_GRANTS).map_err(db)?;
            txn.open_table(LEASES).map_err(db)?;
            txn.open_table(AUDIT).map_err(db)?;
            Ok(())
        })?;
        Ok(store)
    }

    fn insert_app(txn: &WriteTransaction, app: &AppRecord) -> Result<(), StoreError> {
        let mut apps = txn.open_table(APPS).map_err(db)?;
        let mut ids = txn.open_table(CLIENT_IDS).map_err(db)?;
        if apps.get(app.id.as_str()).map_err(db)?.is_some() {
            return Err(StoreError::Conflict("app id"));
        }
        if ids.get(app.client_id.as_str()).map_err(db)?.is_some() {
            return Err(StoreError::Conflict("client id"));
        }
        apps.insert(app.id.as_str(), encode(app).as_slice()).map_err(db)?;
        ids.insert(app.client_id.as_str(), app.id.as_str()).map_err(db)?;
        Ok(())
    }

    /// One write of a batch; its conditions are checked before it writes anything, so a
    /// failed one leaves the transaction as it found it.
    fn commit_write(
        txn: &WriteTransaction,
        write: &RegistryWrite,
        rows: &[Row<'_>],
    ) -> Result<u64, StoreError> {
        match write {
            RegistryWrite::CreateApp(app, audit) => {
                Self::insert_app(txn, app)?;
                Self::record_app(txn, &app.id, audit.as_ref())
            }
            RegistryWrite::UpdateApp(app, audit) => {
                let mut apps = txn.open_table(APPS).map_err(db)?;
                let old: AppRecord = match apps.get(app.id.as_str()).map_err(db)? {
                    Some(v) => decode(v.value())?,
                    None => return Err(StoreError::NotFound),
                };
                if old.client_id != app.client_id {
                    return Err(StoreError::Conflict("client id change"));
                }
                apps.insert(app.id.as_str(), encode(app).as_slice()).map_err(db)?;
                drop(apps);
                Self::record_app(txn, &app.id, audit.as_ref())
            }
            RegistryWrite::DeleteApp(id, audit) => {
                let mut apps = txn.open_table(APPS).map_err(db)?;
                let old: AppRecord = match apps.remove(id.as_str()).map_err(db)? {
                    Some(v) => decode(v.value())?,
                    None => return Err(StoreError::NotFound),
                };
                let mut ids = txn.open_table(CLIENT_IDS).map_err(db)?;
                ids.remove(old.client_id.as_str()).map_err(db)?;
                drop(apps);
                Self::record_app(txn, id, audit.as_ref())
            }
            RegistryWrite::ImportApps(new, audit) => {
                let mut apps = txn.open_table(APPS).map_err(db)?;
                let mut ids = txn.open_table(CLIENT_IDS).map_err(db)?;
                // In key order: each lookup and insert lands beside the last, on a page already
                // in hand. Every id is checked before anything is written.
                let mut by_id: Vec<&AppRecord> = new.iter().collect();
                by_id.sort_unstable_by(|a, b| a.id.cmp(&b.id));
                let mut by_client: Vec<&AppRecord> = by_id.clone();
                by_client.sort_unstable_by(|a, b| a.client_id.cmp(&b.client_id));
                for app in &by_id {
                    if apps.get(app.id.as_str()).map_err(db)?.is_some() {
                        return Err(StoreError::Conflict("app id"));
                    }
                }
                for app in &by_client {
                    if ids.get(app.client_id.as_str()).map_err(db)?.is_some() {
                        return Err(StoreError::Conflict("client id"));
                    }
                }
                for app in by_id {
                    apps.insert(app.id.as_str(), encode(app).as_slice()).map_err(db)?;
                }
                for app in by_client {
                    ids.insert(app.client_id.as_str(), app.id.as_str()).map_err(db)?;
                }
                drop((apps, ids));
                if let Some(event) = audit {
                    audit::append(txn, event)?;
                }
                // Followers reload every app on any app entry: one entry says it for them all.
                Self::record_change(txn, "app:import")
            }
            RegistryWrite::Changes(_) => {
                let mut version = 0;
                for row in rows {
                    registry::write(txn, row)?;
                    if let Some(logged) = row.logged() {
                        version = Self::record_change(txn, &logged)?;
                    }
                }
                Ok(version)
            }
        }
    }

    /// Runs `body` in one write transaction committed with `Durability::Immediate`: when this
    /// returns `Ok`, the change is on disk.
    fn write<T>(
        &self,
        body: impl FnOnce(&WriteTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut txn = self.db.begin_write().map_err(db)?;
        txn.set_durability(Durability::Immediate).map_err(db)?;
        let out = body(&txn)?; // dropping an uncommitted txn aborts it
        txn.commit().map_err(db)?;
        Ok(out)
    }

    /// Logs an app write and appends its audit event, inside the caller's transaction.
    fn record_app(
        txn: &WriteTransaction,
        id: &str,
        audit: Option<&AuditEvent>,
    ) -> Result<u64, StoreError> {
        if let Some(event) = audit {
            audit::append(txn, event)?;
        }
        Self::record_change(txn, &format!("app:{id}"))
    }

    /// Bumps the version and logs the change inside the caller's transaction.
    fn record_change(txn: &WriteTransaction, change: &str) -> Result<u64, StoreError> {
        let mut meta = txn.open_table(META).map_err(db)?;
        let version = match meta.get(VERSION).map_err(db)? {
            Some(v) => u64_from(v.value())? + 1,
            None => 1,
        };
        meta.insert(VERSION, version.to_be_bytes().as_slice()).map_err(db)?;
        txn.open_table(CHANGES).map_err(db)?.insert(version, change).map_err(db)?;
        Ok(version)
    }
}

impl Store {
    fn open_keys(
        &self,
        table: &impl ReadableTable<&'static str, &'static [u8]>,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        let mut keys = Vec::new();
        for entry in table.iter().map_err(db)? {
            let (_, value) = entry.map_err(db)?;
            let stored: StoredKey = decode(value.value())?;
            keys.push(stored.open(self.kek.as_ref())?);
        }
        Ok(keys)
    }

    /// Sealed before the write transaction begins, so that no other writer waits on it.
    fn seal_keys(&self, keys: &[KeyRecord]) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        keys.iter()
            .map(|k| Ok((k.kid.clone(), encode(&StoredKey::seal(k, self.kek.as_ref())?))))
            .collect()
    }

    fn write_keys(txn: &WriteTransaction, sealed: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        let mut table = txn.open_table(KEYS).map_err(db)?;
        table.retain(|_, _| false).map_err(db)?;
        for (kid, bytes) in sealed {
            table.insert(kid.as_str(), bytes.as_slice()).map_err(db)?;
        }
        Ok(())
    }

    fn load_all<T: serde::de::DeserializeOwned>(
        &self,
        table: redb::TableDefinition<&str, &[u8]>,
    ) -> Result<Vec<T>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(table).map_err(db)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(db)? {
            let (_, value) = entry.map_err(db)?;
            out.push(decode(value.value())?);
        }
        Ok(out)
    }
}

/// Creates the data directory readable by its owner only (an existing one is left as it is).
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

pub(super) fn u64_from(bytes: &[u8]) -> Result<u64, StoreError> {
    let arr: [u8; 8] = bytes.try_into().map_err(|_| StoreError::Corrupt("version".into()))?;
    Ok(u64::from_be_bytes(arr))
}

impl Storage for Store {
    fn load_apps(&self) -> Result<Vec<AppRecord>, StoreError> {
        self.load_all(APPS)
    }

    fn scan_apps(&self, each: &mut dyn FnMut(AppRecord)) -> Result<(), StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(APPS).map_err(db)?;
        for entry in table.iter().map_err(db)? {
            let (_, value) = entry.map_err(db)?;
            each(decode(value.value())?);
        }
        Ok(())
    }

    fn create_root_app(&self, app: &AppRecord, marker: &str) -> Result<u64, StoreError> {
        self.write(|txn| {
            let mut meta = txn.open_table(META).map_err(db)?;
            if meta.get(marker).map_err(db)?.is_some() {
                return Err(StoreError::Conflict("root app"));
            }
            meta.insert(marker, app.id.as_bytes()).map_err(db)?;
            drop(meta);
            Self::insert_app(txn, app)?;
            Self::record_change(txn, &format!("app:{}", app.id))
        })
    }

    fn commit_registry(&self, writes: &[RegistryWrite]) -> Result<WriteOutcomes, StoreError> {
        // Sealed and encoded before the write transaction begins, so that no other writer waits
        // on it; a sealing failure still commits nothing.
        let rows = writes
            .iter()
            .map(|write| match write {
                RegistryWrite::Changes(changes) => {
                    changes.iter().map(|change| change.row(self.kek.as_ref())).collect()
                }
                _ => Ok(Vec::new()),
            })
            .collect::<Result<Vec<Vec<Row<'_>>>, StoreError>>()?;
        self.write(|txn| {
            let mut outcomes = Vec::with_capacity(writes.len());
            for (write, rows) in writes.iter().zip(&rows) {
                match Self::commit_write(txn, write, rows) {
                    Err(e) if !e.is_condition() => return Err(e),
                    outcome => outcomes.push(outcome),
                }
            }
            Ok(outcomes)
        })
    }

    fn load_scopes(&self) -> Result<Vec<ScopeRecord>, StoreError> {
        self.load_all(SCOPES)
    }

    fn load_roles(&self) -> Result<Vec<RoleRecord>, StoreError> {
        self.load_all(ROLES)
    }

    fn load_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.load_all(USERS)
    }

    fn load_services(&self) -> Result<Vec<ServiceRecord>, StoreError> {
        self.load_all(SERVICES)
    }

    fn load_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.load_all(API_KEYS)
    }

    fn load_service_users(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(SERVICE_USERS).map_err(db)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(db)? {
            let (key, at) = entry.map_err(db)?;
            if let Some((service, user)) = key.value().split_once('\0') {
                out.push((service.to_string(), user.to_string(), at.value()));
            }
        }
        Ok(out)
    }

    fn load_subscriptions(&self) -> Result<Vec<SubscriptionRecord>, StoreError> {
        self.load_all(SUBSCRIPTIONS)
    }

    fn connect_request(&self, state: &str) -> Result<Option<ConnectRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(CONNECTS).map_err(db)?;
        connect::read_connect(&table, state)
    }

    fn connect_by_provider_state(
        &self,
        provider_state: &str,
    ) -> Result<Option<ConnectRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let states = txn.open_table(PROVIDER_STATES).map_err(db)?;
        let Some(state) = states.get(provider_state).map_err(db)?.map(|v| v.value().to_string())
        else {
            return Ok(None);
        };
        let table = txn.open_table(CONNECTS).map_err(db)?;
        connect::read_connect(&table, &state)
    }

    fn provider_grant(
        &self,
        service: &str,
        user: &str,
        provider: &str,
    ) -> Result<Option<ProviderGrant>, StoreError> {
        let key = grant_key(service, user, provider);
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(PROVIDER_GRANTS).map_err(db)?;
        let value = table.get(key.as_str()).map_err(db)?;
        value.map(|v| connect::open_grant(self.kek.as_ref(), &key, v.value())).transpose()
    }

    fn load_resources(&self) -> Result<Vec<ResourceRecord>, StoreError> {
        self.load_all(RESOURCES)
    }

    fn load_issuers(&self) -> Result<Vec<IssuerRecord>, StoreError> {
        self.load_all(ISSUERS)
    }

    fn load_providers(&self) -> Result<Vec<ProviderRecord>, StoreError> {
        let stored: Vec<StoredProvider> = self.load_all(PROVIDERS)?;
        stored.into_iter().map(|p| p.open(self.kek.as_ref())).collect()
    }

    fn load_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        self.open_keys(&txn.open_table(KEYS).map_err(db)?)
    }

    fn save_keys(&self, keys: &[KeyRecord]) -> Result<u64, StoreError> {
        let sealed = self.seal_keys(keys)?;
        self.write(|txn| {
            Self::write_keys(txn, &sealed)?;
            Self::record_change(txn, "keys:")
        })
    }

    fn replace_keys(
        &self,
        expected: &[KeyRecord],
        keys: &[KeyRecord],
        audit: Option<&AuditEvent>,
    ) -> Result<bool, StoreError> {
        let sealed = self.seal_keys(keys)?;
        self.write(|txn| {
            let stored = self.open_keys(&txn.open_table(KEYS).map_err(db)?)?;
            if !is_same_ring(stored, expected) {
                return Ok(false);
            }
            Self::write_keys(txn, &sealed)?;
            Self::record_change(txn, "keys:")?;
            if let Some(event) = audit {
                audit::append(txn, event)?;
            }
            Ok(true)
        })
    }

    fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(META).map_err(db)?;
        Ok(table.get(name).map_err(db)?.map(|v| v.value().to_vec()))
    }

    fn put_meta(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.write(|txn| {
            txn.open_table(META).map_err(db)?.insert(name, value).map_err(db)?;
            Ok(())
        })
    }

    fn version(&self) -> Result<u64, StoreError> {
        Ok(self.meta(VERSION)?.map(|v| u64_from(&v)).transpose()?.unwrap_or(0))
    }

    fn apply_grants(&self, ops: &[GrantOp]) -> Result<Vec<GrantOutcome>, StoreError> {
        self.write(|txn| {
            let mut outcomes = Vec::with_capacity(ops.len());
            for op in ops {
                let outcome = grant::apply(txn, self.kek.as_ref(), op)?;
                // No other node reads this file's log, but both backends log the same changes.
                for (jti, exp) in outcome.revoked_jtis() {
                    Self::record_change(txn, &revocation_entry(jti, *exp))?;
                }
                outcomes.push(outcome);
            }
            Ok(outcomes)
        })
    }

    fn refresh_status(&self, token: &TokenKey) -> Result<Option<RefreshStatus>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let tokens = txn.open_table(REFRESH_TOKENS).map_err(db)?;
        let Some(record) = tokens.get(token.selector.as_slice()).map_err(db)? else {
            return Ok(None);
        };
        let record: RefreshRecord = decode(record.value())?;
        if !token.matches(&record) {
            return Ok(None);
        }
        let families = txn.open_table(FAMILIES).map_err(db)?;
        let Some(family) = families.get(record.family.as_str()).map_err(db)? else {
            return Ok(None);
        };
        let family: FamilyRecord = decode(family.value())?;
        Ok(Some(RefreshStatus { record, family }))
    }

    fn revoked_access_tokens(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(REVOKED_JTIS).map_err(db)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(db)? {
            let (jti, exp) = entry.map_err(db)?;
            out.push((jti.value().to_string(), exp.value()));
        }
        Ok(out)
    }

    fn changes_since(&self, since: u64) -> Result<Vec<(u64, String)>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(CHANGES).map_err(db)?;
        let mut out = Vec::new();
        for entry in table.range(since.saturating_add(1)..).map_err(db)? {
            let (k, v) = entry.map_err(db)?;
            out.push((k.value(), v.value().to_string()));
        }
        Ok(out)
    }

    /// No other process writes this file: nothing to be told, only the time to wait.
    fn wait_for_change(&self, timeout: std::time::Duration) {
        std::thread::sleep(timeout);
    }

    /// The embedded store keeps no times: no other node is late to follow it.
    fn change_age(&self, _version: u64) -> Result<Option<std::time::Duration>, StoreError> {
        Ok(None)
    }

    fn try_lease(&self, name: &str, holder: &str, now: u64, ttl: u64) -> Result<bool, StoreError> {
        self.write(|txn| {
            let mut table = txn.open_table(LEASES).map_err(db)?;
            let is_free = match table.get(name).map_err(db)? {
                Some(lease) => {
                    let (held_by, until) = lease.value();
                    held_by == holder || until < now
                }
                None => true,
            };
            if is_free {
                table.insert(name, (holder, now.saturating_add(ttl))).map_err(db)?;
            }
            Ok(is_free)
        })
    }

    fn audit_after(&self, after: u64, limit: usize) -> Result<Vec<Logged>, StoreError> {
        audit::after(&self.db.begin_read().map_err(db)?, after, limit)
    }

    fn export(&self) -> Result<Dump, StoreError> {
        dump::export(&self.db.begin_read().map_err(db)?)
    }

    fn import(&self, rows: &Dump) -> Result<(), StoreError> {
        self.write(|txn| dump::import(txn, rows))
    }

    /// The file is open for as long as the store is.
    fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

// What every backend answers is pinned by the conformance suite (tests/conformance.rs); what
// is left here is the file's own business.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(unix)]
    fn the_file_is_its_owners_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path(), None).unwrap());
        let mode = std::fs::metadata(dir.path().join(Store::FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_second_opener_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path(), None).unwrap();
        assert!(matches!(Store::open(dir.path(), None), Err(StoreError::InUse)));
    }
}
