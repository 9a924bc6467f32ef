//! The redb implementation of [`Storage`].

use std::path::Path;

use redb::{
    Database, DatabaseError, Durability, ReadableDatabase, ReadableTable, WriteTransaction,
};

use super::tables::{
    API_KEYS, APPS, ASSERTIONS, CHANGES, CLIENT_IDS, CONNECTS, FAMILIES, KEYS, META,
    PROVIDER_GRANTS, PROVIDER_STATES, PROVIDERS, REFRESH_TOKENS, REVOKED_JTIS, ROLES, SCOPES,
    SERVICE_USERS, SERVICES, SUBSCRIPTIONS, USERS, VERSION,
};
use super::{connect, db, grant, registry};
use crate::connect::grant_key;
use crate::key::StoredKey;
use crate::record::{decode, encode};
use crate::registry::StoredProvider;
use crate::{
    ApiKeyRecord, AppRecord, ConnectRecord, FamilyRecord, GrantOp, GrantOutcome, Kek, KeyRecord,
    ProviderGrant, ProviderRecord, RefreshRecord, RefreshStatus, RegistryChange, RoleRecord,
    ScopeRecord, ServiceRecord, Storage, StoreError, SubscriptionRecord, TokenKey, UserRecord,
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
            txn.open_table(PROVIDERS).map_err(db)?;
            txn.open_table(CONNECTS).map_err(db)?;
            txn.open_table(PROVIDER_STATES).map_err(db)?;
            txn.open_table(PROVIDER_GRANTS).map_err(db)?;
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
        self.load_all(APPS)
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
        // Sealed and encoded before the write transaction begins, so that no other writer waits
        // on it; a sealing failure still commits nothing.
        let rows = changes
            .iter()
            .map(|change| change.row(self.kek.as_ref()))
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.write(|txn| {
            let mut version = 0;
            for row in &rows {
                registry::write(txn, row)?;
                version = Self::record_change(txn, &row.logged())?;
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

    fn load_providers(&self) -> Result<Vec<ProviderRecord>, StoreError> {
        let stored: Vec<StoredProvider> = self.load_all(PROVIDERS)?;
        stored.into_iter().map(|p| p.open(self.kek.as_ref())).collect()
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
        self.write(|txn| ops.iter().map(|op| grant::apply(txn, self.kek.as_ref(), op)).collect())
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
            store.put_meta("root", b"b").unwrap();
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

    /// The change log is what a follower replays, so its entries and the one version bump per
    /// change are pinned here, for every kind of registry change.
    #[test]
    fn registry_changes_log_one_version_each_and_secrets_stay_sealed() {
        use crate::RegistryChange::*;
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::open(dir.path(), Some(Kek::from_hex(&"33".repeat(32)).unwrap())).unwrap();
        let scope = ScopeRecord {
            id: "s".into(),
            name: "read_x".into(),
            note: String::new(),
            created_at: 1,
            updated_at: 1,
        };
        let role = RoleRecord {
            id: "r".into(),
            name: "ops".into(),
            note: String::new(),
            scopes: vec!["read_x".into()],
            is_privileged: false,
            created_at: 1,
            updated_at: 1,
        };
        let user = UserRecord {
            auth_id: "u".into(),
            username: None,
            email: "u@example.com".into(),
            first_name: String::new(),
            last_name: String::new(),
            roles: vec!["ops".into()],
            is_active: true,
            password_hash: None,
            invitation_hash: None,
            invitation_expires_at: None,
            created_at: 1,
            updated_at: 1,
            disabled_at: None,
            disabled_by: None,
        };
        let service = ServiceRecord {
            id: "v".into(),
            name: "svc".into(),
            description: String::new(),
            callback_uris: vec![],
            created_at: 1,
            updated_at: 1,
        };
        let api_key = ApiKeyRecord {
            key_id: "k".into(),
            service_id: "v".into(),
            verifier: "00".into(),
            created_at: 1,
        };
        let sub = SubscriptionRecord {
            service_id: "v".into(),
            user_id: "u".into(),
            plan: "pro".into(),
            status: "active".into(),
            current_period_end: None,
            metadata: Default::default(),
            created_at: 1,
            updated_at: 1,
        };
        let provider = ProviderRecord {
            id: "p".into(),
            name: "gh".into(),
            authorize_url: "https://example.com/a".into(),
            token_url: "https://example.com/t".into(),
            client_id: "pc".into(),
            client_secret: "provider-secret-in-clear".into(),
            created_at: 1,
        };
        let puts = [
            PutApp(app("a", "ca")),
            PutScope(scope.clone()),
            PutRole(role.clone()),
            PutUser(user.clone()),
            PutService(service.clone()),
            PutApiKey(api_key.clone()),
            LinkUser("v".into(), "u".into(), 7),
            PutSubscription(sub.clone()),
            PutProvider(provider.clone()),
        ];
        assert_eq!(store.apply_registry(&puts).unwrap(), 9);
        assert_eq!(store.load_apps().unwrap(), vec![app("a", "ca")]);
        assert_eq!(store.load_scopes().unwrap(), vec![scope]);
        assert_eq!(store.load_roles().unwrap(), vec![role]);
        assert_eq!(store.load_users().unwrap(), vec![user]);
        assert_eq!(store.load_services().unwrap(), vec![service]);
        assert_eq!(store.load_api_keys().unwrap(), vec![api_key]);
        assert_eq!(store.load_service_users().unwrap(), vec![("v".into(), "u".into(), 7)]);
        assert_eq!(store.load_subscriptions().unwrap(), vec![sub]);
        assert_eq!(store.load_providers().unwrap(), vec![provider]);
        let file = std::fs::read(dir.path().join(Store::FILE)).unwrap();
        assert!(!file.windows(24).any(|w| w == b"provider-secret-in-clear"));
        let deletes = [
            DeleteScope("s".into()),
            DeleteRole("r".into()),
            DeleteUser("u".into()),
            DeleteService("v".into()),
            DeleteApiKey("k".into()),
            UnlinkUser("v".into(), "u".into()),
            DeleteSubscription("v".into(), "u".into()),
            DeleteProvider("p".into()),
            // Deleting what is not there is no error, and still logged.
            DeleteScope("absent".into()),
        ];
        assert_eq!(store.apply_registry(&deletes).unwrap(), 18);
        assert!(store.load_scopes().unwrap().is_empty());
        assert!(store.load_roles().unwrap().is_empty());
        assert!(store.load_users().unwrap().is_empty());
        assert!(store.load_services().unwrap().is_empty());
        assert!(store.load_api_keys().unwrap().is_empty());
        assert!(store.load_service_users().unwrap().is_empty());
        assert!(store.load_subscriptions().unwrap().is_empty());
        assert!(store.load_providers().unwrap().is_empty());
        assert_eq!(store.apply_registry(&[]).unwrap(), 0, "no change, no version");
        assert_eq!(store.version().unwrap(), 18);
        let logged: Vec<String> =
            store.changes_since(0).unwrap().into_iter().map(|(_, what)| what).collect();
        let expected = [
            "app:a",
            "scope:s",
            "role:r",
            "user:u",
            "service:v",
            "api_key:k",
            "service_user:v:u",
            "subscription:v:u",
            "provider:p",
            "scope:s",
            "role:r",
            "user:u",
            "service:v",
            "api_key:k",
            "service_user:v:u",
            "subscription:v:u",
            "provider:p",
            "scope:absent",
        ];
        assert_eq!(logged, expected);
    }

    #[test]
    fn a_second_opener_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path(), None).unwrap();
        assert!(matches!(Store::open(dir.path(), None), Err(StoreError::InUse)));
    }
}
