//! The registry's apps in memory: each app once, as the `Client` the token path reads, by id.
//! The index holds the same `Arc` the client table publishes (ahead of it while a commit is
//! under way). Every check that scans apps reads the client (its scopes, its grants as
//! registered, the issuers its identities name), and admin reads take the record back from it
//! (`records.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;

use tessera_storage::{AppRecord, ResourceRecord, Storage, StoreError};

use crate::tables::client::{Client, ResourceNow};
use crate::tables::scopes::Interner;
use crate::tokens::claims::REGISTERED_CLAIMS;

/// Records decoded ahead of the clients built from them, at start.
const CHUNK: usize = 256;

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
        // A few records at a time: a million decoded records held at once would outweigh the
        // clients built from them, and the allocator keeps what it was once given. One thread
        // reads and decodes while this one builds, which shortens a start when a core is free.
        let (chunks, built) = std::sync::mpsc::sync_channel::<Vec<AppRecord>>(4);
        let scanned = std::thread::scope(|scope| {
            let reader = scope.spawn(move || {
                let mut chunk = Vec::with_capacity(CHUNK);
                let scanned = store.scan_apps(&mut |app| {
                    chunk.push(app);
                    if chunk.len() == CHUNK {
                        // A send fails only when this thread's reader has gone: nothing to do.
                        let _ =
                            chunks.send(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK)));
                    }
                });
                let _ = chunks.send(chunk);
                scanned
            });
            for app in built.iter().flatten() {
                let client = self.client_of(&app, resources);
                by_id.insert(app.id.into_boxed_str(), client);
            }
            reader.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
        scanned?;
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tessera_storage::{AppRecord, Storage, Store};

    use super::super::RotationStep;
    use super::super::fields::{AppPatch, NewApp};
    use crate::clock::{SharedClock, SystemClock};
    use crate::grants::{GrantStore, Sweep};
    use crate::policy::Caller;
    use crate::registry::follow::Touched;
    use crate::registry::{AppLimits, Registry, RegistryError};
    use crate::tables::client::Client;

    fn registry() -> (Registry, Arc<dyn Storage>, GrantStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Storage> = Arc::new(Store::open(dir.path(), None).unwrap());
        let clock: SharedClock = Arc::new(SystemClock);
        let sweep = Sweep::every(std::time::Duration::from_secs(3600));
        let grants = GrantStore::start(Arc::clone(&store), clock.clone(), sweep).unwrap();
        let limits = AppLimits {
            max_token_ttl: 3600,
            strict_delegation: false,
            default_role: "user".into(),
            own_audiences: Vec::new(),
        };
        let registry = Registry::load(Arc::clone(&store), grants.clone(), clock, limits).unwrap();
        (registry, store, grants, dir)
    }

    /// The client the registry holds for `id` is the very one the token path reads, and what
    /// admin reads answer is the store's record.
    fn assert_one_copy(registry: &Registry, store: &dyn Storage, id: &str) {
        let held = registry.apps.get(id).expect("held");
        let published = registry.client_table.get(&held.client_id).expect("published");
        assert!(Arc::ptr_eq(held, &published), "the registry and the table hold two copies");
        let stored = store.load_apps().unwrap().into_iter().find(|a| a.id == id).expect("stored");
        assert_eq!(registry.app(id).unwrap(), stored, "admin reads what the store holds");
        let scopes: Vec<&str> = published.scopes.iter().map(|s| &**s).collect();
        assert_eq!(scopes, stored.scopes, "the token path reads the same scopes");
    }

    #[test]
    fn issue_14_each_app_is_held_once_and_admin_reads_what_the_token_path_reads() {
        let (mut registry, store, grants, _dir) = registry();
        let new = |name: &str| NewApp {
            name: name.into(),
            scopes: vec!["orders:read".into(), "orders:write".into()],
            ..NewApp::default()
        };
        let (app, secret) = registry.create_app(&Caller::Operator, new("one")).unwrap();
        let (other, _) = registry.create_app(&Caller::Operator, new("two")).unwrap();
        registry.flush();
        assert_one_copy(&registry, &*store, &app.id);
        let (a, b) = (registry.apps.get(&app.id).unwrap(), registry.apps.get(&other.id).unwrap());
        assert!(Arc::ptr_eq(&a.scopes, &b.scopes), "equal scope sets are one allocation");
        assert!(registry.client_table.authenticate(&app.client_id, &secret).is_some());

        // Two updates in one batch: the second reads the record the first left, not the store's.
        let patch = AppPatch { name: Some("renamed".into()), ..AppPatch::default() };
        registry.update_app(&Caller::Operator, &app.id, patch).unwrap();
        let scopes = Some(vec!["orders:read".into()]);
        registry
            .update_app(&Caller::Operator, &app.id, AppPatch { scopes, ..AppPatch::default() })
            .unwrap();
        assert_eq!(registry.app(&app.id).unwrap().name, "renamed", "a queued write is read back");
        registry.flush();
        assert_one_copy(&registry, &*store, &app.id);
        let updated = registry.app(&app.id).unwrap();
        assert_eq!(
            (updated.name.as_str(), &updated.scopes[..]),
            ("renamed", &["orders:read".to_string()][..])
        );

        let (_, next) =
            registry.rotate_secret(&Caller::Operator, &app.id, RotationStep::Start).unwrap();
        registry.flush();
        assert_one_copy(&registry, &*store, &app.id);
        let next = next.unwrap();
        assert!(registry.client_table.authenticate(&app.client_id, &secret).is_some());
        assert!(registry.client_table.authenticate(&app.client_id, &next).is_some());
        registry.rotate_secret(&Caller::Operator, &app.id, RotationStep::Complete).unwrap();
        registry.flush();
        assert!(registry.client_table.authenticate(&app.client_id, &secret).is_none());
        assert!(registry.client_table.authenticate(&app.client_id, &next).is_some());

        // A reload (another node's change, a failed commit) builds every client afresh.
        registry.reload(Touched { apps: true, ..Touched::default() }).unwrap();
        assert_one_copy(&registry, &*store, &app.id);
        assert_one_copy(&registry, &*store, &other.id);

        registry.delete_app(&Caller::Operator, &app.id).unwrap();
        assert!(matches!(registry.app(&app.id), Err(RegistryError::NotFound)));
        registry.flush();
        assert!(registry.apps.get(&app.id).is_none());
        assert!(registry.client_table.get(&app.client_id).is_none());
        assert!(store.load_apps().unwrap().iter().all(|a| a.id != app.id));
        assert_eq!(registry.counts().apps, 1);
        grants.stop();
    }

    /// What an app costs is mostly this struct: 2.3 KB per app before issue 14, two copies of
    /// each record with a heap allocation per string.
    #[test]
    fn issue_14_a_client_stays_compact() {
        let size = std::mem::size_of::<Client>();
        assert!(size <= 192, "Client grew to {size} bytes: put what few apps have behind `rare`");
    }

    /// Memory holds no record beside the client, so the record admin reads, and every
    /// read-modify-write starts from, is the one read back from it: it must be the record
    /// stored, every field, even one written under other rules.
    #[test]
    fn issue_14_a_record_read_back_from_its_client_is_the_record_stored() {
        use serde_json::json;
        use tessera_storage::{FederatedIdentity, TlsClientAuth, TokenQuota};

        use crate::tables::scopes::Interner;

        let plain = AppRecord {
            id: "a1".into(),
            client_id: "c1".into(),
            name: "plain".into(),
            description: String::new(),
            scopes: vec!["b".into(), "a".into()],
            grant_types: vec!["client_credentials".into()],
            is_active: true,
            metadata: Default::default(),
            token_claims: Default::default(),
            access_token_ttl_secs: None,
            public_key_jwk: None,
            secret_hash: "ab".repeat(32),
            next_secret_hash: None,
            created_at: 1,
            updated_at: 2,
            disabled_at: None,
            resources: Default::default(),
            require_dpop: false,
            tls_client_auth: None,
            self_signed_certificates: Vec::new(),
            federated_identities: Vec::new(),
            can_exchange: false,
            token_reuse: None,
            token_quota: None,
        };
        let object = |v: serde_json::Value| v.as_object().cloned().unwrap();
        let full = AppRecord {
            description: "every field".into(),
            grant_types: vec!["refresh_token".into(), "client_credentials".into()],
            is_active: false,
            metadata: object(json!({"team": "payments", "n": [1, 2]})),
            token_claims: object(json!({"tenant": "t1", "iss": "kept in the record"})),
            access_token_ttl_secs: Some(60),
            public_key_jwk: Some(json!({"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "kid": "k"})),
            next_secret_hash: Some("cd".repeat(32)),
            disabled_at: Some(3),
            resources: [("https://api".to_string(), vec!["a".to_string()])].into(),
            require_dpop: true,
            tls_client_auth: Some(TlsClientAuth {
                san_ip: Some("not an address".into()),
                ..TlsClientAuth::default()
            }),
            federated_identities: vec![FederatedIdentity {
                issuer: "https://issuer".into(),
                subject: "**no longer parses**".into(),
                audience: None,
                claims: Default::default(),
            }],
            can_exchange: true,
            token_reuse: Some(false),
            token_quota: Some(TokenQuota { per_minute: 5 }),
            ..plain.clone()
        };
        let odd = AppRecord {
            grant_types: vec!["client_credentials".into(), "client_credentials".into()],
            secret_hash: "AB".repeat(32),
            next_secret_hash: Some("not hex".into()),
            self_signed_certificates: vec!["not a certificate".into()],
            ..plain.clone()
        };
        let mut interner = Interner::default();
        for app in [plain, full, odd] {
            let client = Client::from_record(&app, |_| None, |_| true, &mut interner);
            assert_eq!(client.record(&app.id), app);
        }
    }
}
