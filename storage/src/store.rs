//! The redb implementation of [`Storage`].

use std::path::Path;

use redb::{
    Database, DatabaseError, Durability, ReadableDatabase, ReadableTable, WriteTransaction,
};

use crate::error::db;
use crate::key::StoredKey;
use crate::record::{decode, encode};
use crate::tables::{
    API_KEYS, APPS, ASSERTIONS, CHANGES, CLIENT_IDS, FAMILIES, KEYS, META, REFRESH_TOKENS,
    REVOKED_JTIS, ROLES, SCOPES, SERVICE_USERS, SERVICES, SUBSCRIPTIONS, USERS, VERSION,
};
use crate::{
    ApiKeyRecord, AppRecord, FamilyRecord, GrantOp, GrantOutcome, Kek, KeyRecord, ProviderRecord,
    RefreshRecord, RefreshStatus, RegistryChange, RoleRecord, ScopeRecord, ServiceRecord, Storage,
    StoreError, SubscriptionRecord, TokenKey, UserRecord,
};

/// The embedded store: one redb file in the data directory, opened by one process at a time.
pub struct Store {
    db: Database,
    kek: Option<Kek>,
}

impl Store {
    pub const FILE: &'static str = "tessera.redb";

    /// Opens (creating when absent) the store in `dir`. A second process gets
    /// [`StoreError::InUse`] rather than a shared, corruptible file.
    pub fn open(dir: &Path, kek: Option<Kek>) -> Result<Store, StoreError> {
        create_private_dir(dir)?;
        let path = dir.join(Self::FILE);
        let database = match Database::create(&path) {
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
            txn.open_table(crate::tables::PROVIDERS).map_err(db)?;
            txn.open_table(crate::tables::CONNECTS).map_err(db)?;
            txn.open_table(crate::tables::PROVIDER_STATES).map_err(db)?;
            txn.open_table(crate::tables::PROVIDER_GRANTS).map_err(db)?;
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

fn u64_from(bytes: &[u8]) -> Result<u64, StoreError> {
    let arr: [u8; 8] = bytes.try_into().map_err(|_| StoreError::Corrupt("version".into()))?;
    Ok(u64::from_be_bytes(arr))
}

impl Storage for Store {
    fn load_apps(&self) -> Result<Vec<AppRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(APPS).map_err(db)?;
        let mut apps = Vec::new();
        for entry in table.iter().map_err(db)? {
            let (_, value) = entry.map_err(db)?;
            apps.push(decode(value.value())?);
        }
        Ok(apps)
    }

    fn create_app(&self, app: &AppRecord) -> Result<u64, StoreError> {
        self.write(|txn| {
            Self::insert_app(txn, app)?;
            Self::record_change(txn, &format!("app:{}", app.id))
        })
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

    fn update_app(&self, app: &AppRecord) -> Result<u64, StoreError> {
        self.write(|txn| {
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
            Self::record_change(txn, &format!("app:{}", app.id))
        })
    }

    fn delete_app(&self, id: &str) -> Result<u64, StoreError> {
        self.write(|txn| {
            let mut apps = txn.open_table(APPS).map_err(db)?;
            let old: AppRecord = match apps.remove(id).map_err(db)? {
                Some(v) => decode(v.value())?,
                None => return Err(StoreError::NotFound),
            };
            txn.open_table(CLIENT_IDS).map_err(db)?.remove(old.client_id.as_str()).map_err(db)?;
            drop(apps);
            Self::record_change(txn, &format!("app:{id}"))
        })
    }

    fn apply_registry(&self, changes: &[RegistryChange]) -> Result<u64, StoreError> {
        self.write(|txn| {
            let mut version = 0;
            for change in changes {
                let what = match change {
                    RegistryChange::PutApp(app) => {
                        let mut apps = txn.open_table(APPS).map_err(db)?;
                        apps.insert(app.id.as_str(), encode(app).as_slice()).map_err(db)?;
                        format!("app:{}", app.id)
                    }
                    RegistryChange::PutScope(scope) => {
                        let mut scopes = txn.open_table(SCOPES).map_err(db)?;
                        scopes.insert(scope.id.as_str(), encode(scope).as_slice()).map_err(db)?;
                        format!("scope:{}", scope.id)
                    }
                    RegistryChange::DeleteScope(id) => {
                        txn.open_table(SCOPES).map_err(db)?.remove(id.as_str()).map_err(db)?;
                        format!("scope:{id}")
                    }
                    RegistryChange::PutRole(role) => {
                        let mut roles = txn.open_table(ROLES).map_err(db)?;
                        roles.insert(role.id.as_str(), encode(role).as_slice()).map_err(db)?;
                        format!("role:{}", role.id)
                    }
                    RegistryChange::DeleteRole(id) => {
                        txn.open_table(ROLES).map_err(db)?.remove(id.as_str()).map_err(db)?;
                        format!("role:{id}")
                    }
                    RegistryChange::PutUser(user) => {
                        let mut users = txn.open_table(USERS).map_err(db)?;
                        users.insert(user.auth_id.as_str(), encode(user).as_slice()).map_err(db)?;
                        format!("user:{}", user.auth_id)
                    }
                    RegistryChange::DeleteUser(id) => {
                        txn.open_table(USERS).map_err(db)?.remove(id.as_str()).map_err(db)?;
                        format!("user:{id}")
                    }
                    RegistryChange::PutService(service) => {
                        let mut services = txn.open_table(SERVICES).map_err(db)?;
                        services
                            .insert(service.id.as_str(), encode(service).as_slice())
                            .map_err(db)?;
                        format!("service:{}", service.id)
                    }
                    RegistryChange::DeleteService(id) => {
                        txn.open_table(SERVICES).map_err(db)?.remove(id.as_str()).map_err(db)?;
                        format!("service:{id}")
                    }
                    RegistryChange::PutApiKey(key) => {
                        let mut keys = txn.open_table(API_KEYS).map_err(db)?;
                        keys.insert(key.key_id.as_str(), encode(key).as_slice()).map_err(db)?;
                        format!("api_key:{}", key.key_id)
                    }
                    RegistryChange::DeleteApiKey(id) => {
                        txn.open_table(API_KEYS).map_err(db)?.remove(id.as_str()).map_err(db)?;
                        format!("api_key:{id}")
                    }
                    RegistryChange::LinkUser(service, user, at) => {
                        let key = format!("{service}\0{user}");
                        txn.open_table(SERVICE_USERS)
                            .map_err(db)?
                            .insert(key.as_str(), *at)
                            .map_err(db)?;
                        format!("service_user:{service}:{user}")
                    }
                    RegistryChange::UnlinkUser(service, user) => {
                        let key = format!("{service}\0{user}");
                        txn.open_table(SERVICE_USERS)
                            .map_err(db)?
                            .remove(key.as_str())
                            .map_err(db)?;
                        format!("service_user:{service}:{user}")
                    }
                    RegistryChange::PutSubscription(sub) => {
                        let key = format!("{}\0{}", sub.service_id, sub.user_id);
                        let mut subs = txn.open_table(SUBSCRIPTIONS).map_err(db)?;
                        subs.insert(key.as_str(), encode(sub).as_slice()).map_err(db)?;
                        format!("subscription:{}:{}", sub.service_id, sub.user_id)
                    }
                    RegistryChange::PutProvider(p) => {
                        let stored = crate::scope::StoredProvider {
                            id: p.id.clone(),
                            name: p.name.clone(),
                            authorize_url: p.authorize_url.clone(),
                            token_url: p.token_url.clone(),
                            client_id: p.client_id.clone(),
                            sealed_secret: crate::seal::seal_bytes(
                                self.kek.as_ref(),
                                p.client_secret.as_bytes(),
                                &p.id,
                            )?,
                            created_at: p.created_at,
                        };
                        let mut providers = txn.open_table(crate::tables::PROVIDERS).map_err(db)?;
                        providers.insert(p.id.as_str(), encode(&stored).as_slice()).map_err(db)?;
                        format!("provider:{}", p.id)
                    }
                    RegistryChange::DeleteProvider(id) => {
                        txn.open_table(crate::tables::PROVIDERS)
                            .map_err(db)?
                            .remove(id.as_str())
                            .map_err(db)?;
                        format!("provider:{id}")
                    }
                    RegistryChange::DeleteSubscription(service, user) => {
                        let key = format!("{service}\0{user}");
                        txn.open_table(SUBSCRIPTIONS)
                            .map_err(db)?
                            .remove(key.as_str())
                            .map_err(db)?;
                        format!("subscription:{service}:{user}")
                    }
                };
                version = Self::record_change(txn, &what)?;
            }
            Ok(version)
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

    fn connect_request(&self, state: &str) -> Result<Option<crate::ConnectRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(crate::tables::CONNECTS).map_err(db)?;
        crate::connect::read_connect(&table, state)
    }

    fn connect_by_provider_state(
        &self,
        provider_state: &str,
    ) -> Result<Option<crate::ConnectRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let states = txn.open_table(crate::tables::PROVIDER_STATES).map_err(db)?;
        let Some(state) = states.get(provider_state).map_err(db)?.map(|v| v.value().to_string())
        else {
            return Ok(None);
        };
        let table = txn.open_table(crate::tables::CONNECTS).map_err(db)?;
        crate::connect::read_connect(&table, &state)
    }

    fn provider_grant(
        &self,
        service: &str,
        user: &str,
        provider: &str,
    ) -> Result<Option<crate::ProviderGrant>, StoreError> {
        let key = crate::connect::grant_key(service, user, provider);
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(crate::tables::PROVIDER_GRANTS).map_err(db)?;
        let value = table.get(key.as_str()).map_err(db)?;
        value.map(|v| crate::connect::open_grant(self.kek.as_ref(), &key, v.value())).transpose()
    }

    fn load_providers(&self) -> Result<Vec<ProviderRecord>, StoreError> {
        let stored: Vec<crate::scope::StoredProvider> = self.load_all(crate::tables::PROVIDERS)?;
        stored
            .into_iter()
            .map(|p| {
                let secret = crate::seal::open_bytes(self.kek.as_ref(), &p.sealed_secret, &p.id)?;
                Ok(ProviderRecord {
                    client_secret: String::from_utf8(secret)
                        .map_err(|_| StoreError::Corrupt("provider secret".into()))?,
                    id: p.id,
                    name: p.name,
                    authorize_url: p.authorize_url,
                    token_url: p.token_url,
                    client_id: p.client_id,
                    created_at: p.created_at,
                })
            })
            .collect()
    }

    fn load_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(KEYS).map_err(db)?;
        let mut keys = Vec::new();
        for entry in table.iter().map_err(db)? {
            let (_, value) = entry.map_err(db)?;
            let stored: StoredKey = decode(value.value())?;
            keys.push(stored.open(self.kek.as_ref())?);
        }
        Ok(keys)
    }

    fn save_keys(&self, keys: &[KeyRecord]) -> Result<u64, StoreError> {
        let sealed = keys
            .iter()
            .map(|k| Ok((k.kid.as_str(), encode(&StoredKey::seal(k, self.kek.as_ref())?))))
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.write(|txn| {
            let mut table = txn.open_table(KEYS).map_err(db)?;
            table.retain(|_, _| false).map_err(db)?;
            for (kid, bytes) in &sealed {
                table.insert(*kid, bytes.as_slice()).map_err(db)?;
            }
            drop(table);
            Self::record_change(txn, "keys:")
        })
    }

    fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(META).map_err(db)?;
        Ok(table.get(name).map_err(db)?.map(|v| v.value().to_vec()))
    }

    fn put_meta_once(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.write(|txn| {
            let mut table = txn.open_table(META).map_err(db)?;
            if table.get(name).map_err(db)?.is_some() {
                return Err(StoreError::Conflict("meta entry"));
            }
            table.insert(name, value).map_err(db)?;
            Ok(())
        })
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
            ops.iter().map(|op| crate::grant::apply(txn, self.kek.as_ref(), op)).collect()
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyState;

    fn app(id: &str, client_id: &str) -> AppRecord {
        AppRecord {
            id: id.into(),
            client_id: client_id.into(),
            name: "n".into(),
            description: String::new(),
            scopes: vec!["read_app".into()],
            grant_types: vec!["client_credentials".into()],
            is_active: true,
            metadata: Default::default(),
            token_claims: Default::default(),
            access_token_ttl_secs: None,
            public_key_jwk: None,
            secret_hash: "00".into(),
            next_secret_hash: None,
            created_at: 1,
            updated_at: 1,
            disabled_at: None,
        }
    }

    fn key(kid: &str) -> KeyRecord {
        KeyRecord {
            kid: kid.into(),
            state: KeyState::Next,
            secret: [3; 32],
            created_at: 1,
            published_at: 1,
            is_in_every_jwks: true,
            activated_at: None,
            retired_at: None,
            remove_after: None,
        }
    }

    #[test]
    fn reopening_gives_back_what_was_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let kek = Kek::from_hex(&"11".repeat(32)).unwrap();
        {
            let store = Store::open(dir.path(), Some(kek.clone())).unwrap();
            assert_eq!(store.create_app(&app("a", "ca")).unwrap(), 1);
            store.create_app(&app("b", "cb")).unwrap();
            assert!(matches!(store.create_app(&app("a", "cz")), Err(StoreError::Conflict(_))));
            assert!(matches!(store.create_app(&app("z", "ca")), Err(StoreError::Conflict(_))));
            let mut changed = app("b", "cb");
            changed.name = "renamed".into();
            store.update_app(&changed).unwrap();
            store.delete_app("a").unwrap();
            assert!(matches!(store.delete_app("a"), Err(StoreError::NotFound)));
            store.save_keys(&[key("k1"), key("k2")]).unwrap();
            store.save_keys(&[key("k2")]).unwrap();
            store.put_meta_once("root", b"b").unwrap();
            assert!(store.put_meta_once("root", b"x").is_err());
            assert!(matches!(
                store.create_root_app(&app("r", "cr"), "root"),
                Err(StoreError::Conflict(_))
            ));
            assert!(store.load_apps().unwrap().iter().all(|a| a.id != "r"), "refused as a whole");
        }
        let store = Store::open(dir.path(), Some(kek)).unwrap();
        let apps = store.load_apps().unwrap();
        assert_eq!(apps.len(), 1);
        assert_eq!(apps[0].name, "renamed");
        assert_eq!(store.load_keys().unwrap(), vec![key("k2")]);
        assert_eq!(store.meta("root").unwrap().as_deref(), Some(&b"b"[..]));
        assert_eq!(store.version().unwrap(), 6);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode =
                std::fs::metadata(dir.path().join(Store::FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let changes = store.changes_since(4).unwrap();
        assert_eq!(changes, vec![(5, "keys:".to_string()), (6, "keys:".to_string())]);
        // The client id of a deleted app is free again.
        store.create_app(&app("c", "ca")).unwrap();
    }

    #[test]
    fn sealed_keys_need_their_kek_and_never_hit_the_file_in_clear() {
        let dir = tempfile::tempdir().unwrap();
        let kek = Kek::from_hex(&"22".repeat(32)).unwrap();
        let mut k = key("k1");
        k.secret = [0xA5; 32];
        Store::open(dir.path(), Some(kek)).unwrap().save_keys(&[k]).unwrap();
        let file = std::fs::read(dir.path().join(Store::FILE)).unwrap();
        assert!(!file.windows(64).any(|w| w == "a5".repeat(32).as_bytes()));
        assert!(!file.windows(32).any(|w| w == [0xA5; 32]));
        let store = Store::open(dir.path(), None).unwrap();
        assert!(matches!(store.load_keys(), Err(StoreError::KekMissing)));
    }

    /// Issue 8: records written before the disable fields existed still load, as never
    /// disabled.
    #[test]
    fn issue_8_records_without_disable_fields_still_load() {
        let old_app = br#"{"id":"a","clientId":"c","name":"n","scopes":[],"grantTypes":["client_credentials"],"isActive":true,"secretHash":"00","createdAt":1,"updatedAt":1}"#;
        let app: AppRecord = crate::record::decode(&[&[1u8][..], old_app].concat()).unwrap();
        assert_eq!(app.disabled_at, None);
        let old_user = br#"{"authId":"u","username":null,"email":"u@example.com","roles":[],"isActive":false,"passwordHash":null,"invitationHash":null,"invitationExpiresAt":null,"createdAt":1,"updatedAt":1}"#;
        let user: crate::UserRecord =
            crate::record::decode(&[&[1u8][..], old_user].concat()).unwrap();
        assert_eq!((user.disabled_at, user.disabled_by), (None, None));
        let mut user = user;
        user.disabled_by = Some(crate::DisabledBy::Operator);
        let json = String::from_utf8(crate::record::encode(&user)[1..].to_vec()).unwrap();
        assert!(json.contains(r#""disabledBy":"operator""#), "{json}");
    }

    #[test]
    fn a_second_opener_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path(), None).unwrap();
        assert!(matches!(Store::open(dir.path(), None), Err(StoreError::InUse)));
    }
}
