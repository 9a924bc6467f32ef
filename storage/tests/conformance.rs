//! One suite, every backend: each case below runs against redb (a temporary directory) and
//! PostgreSQL (a fresh database), so the two cannot drift apart in what they answer.
#![allow(clippy::unwrap_used)] // tests state their expectations by unwrapping

mod fixtures;

use fixtures::{app, token};
use tessera_storage::test_cluster::{TestDatabase, fresh_database};
use tessera_storage::{
    ApiKeyRecord, AppRecord, AuditEvent, AuditOutcome, ConnectRecord, ConnectRefusal, FamilyRecord,
    FederatedIdentity, GrantOp, GrantOutcome, IssuerRecord, Kek, KeyRecord, KeyState, PgStore,
    ProviderGrant, ProviderRecord, Refusal, RegistryChange, RegistryWrite, ResourceRecord,
    RoleRecord, ScopeRecord, ServiceRecord, Storage, Store, StoreError, SubscriptionRecord,
    TokenKey, UserRecord,
};

/// Instantiates each case once per backend.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod redb {
            $(#[test] fn $case() { super::$case(super::Backend::redb) })*
        }
        mod postgres {
            $(#[test] fn $case() { super::$case(super::Backend::postgres) })*
        }
    };
}

conformance!(
    apps_keep_their_conditions,
    the_root_app_is_created_once,
    acknowledged_writes_are_there_for_the_next_opener,
    keys_are_sealed_and_need_their_kek,
    a_key_ring_changed_meanwhile_is_not_replaced,
    registry_changes_log_one_version_each_and_secrets_stay_sealed,
    issue_12_resources_are_stored_logged_and_named_in_app_grants,
    trusted_issuers_are_stored_logged_and_named_in_app_identities,
    meta_values_are_set_and_replaced,
    the_change_log_answers_since_any_version,
    a_refresh_token_is_spent_once_and_its_reuse_ends_the_family,
    a_refused_spend_changes_nothing,
    revocations_are_answered_and_listed,
    every_revocation_is_logged_for_the_other_nodes,
    a_client_assertion_is_recorded_once,
    cleanup_removes_only_what_expired,
    connect_requests_go_through_their_steps_once,
    provider_grants_are_sealed,
    keys_from_outside_with_a_nul_find_nothing,
    the_store_answers_ping,
    a_lease_has_one_holder_until_it_expires,
    a_dump_moves_every_row_into_an_empty_store_of_either_backend,
    a_store_that_holds_anything_takes_no_dump,
    issue_11_audit_events_commit_with_their_change_and_page_in_order,
    issue_14_a_group_commit_keeps_each_writes_conditions,
    issue_14_apps_are_scanned_one_at_a_time,
);

/// Opens a backend with a KEK, or says there is none to be had (PostgreSQL outside CI).
type Open = fn(Option<Kek>) -> Option<Backend>;

/// A store and what it keeps its data in, so a case can reopen it or look at the raw bytes.
struct Backend {
    store: Option<Box<dyn Storage>>,
    place: Place,
}

enum Place {
    Redb(tempfile::TempDir),
    Postgres(TestDatabase),
}

impl Backend {
    fn redb(kek: Option<Kek>) -> Option<Backend> {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), kek).unwrap();
        Some(Backend { store: Some(Box::new(store)), place: Place::Redb(dir) })
    }

    fn postgres(kek: Option<Kek>) -> Option<Backend> {
        let db = fresh_database()?;
        let store = PgStore::connect(db.url(), kek).unwrap();
        Some(Backend { store: Some(Box::new(store)), place: Place::Postgres(db) })
    }

    fn store(&self) -> &dyn Storage {
        self.store.as_deref().unwrap()
    }

    /// Closes the store and opens the same data again, as a restarted (or another) node would.
    fn reopen(&mut self, kek: Option<Kek>) {
        self.store = None;
        let store: Box<dyn Storage> = match &self.place {
            Place::Redb(dir) => Box::new(Store::open(dir.path(), kek).unwrap()),
            Place::Postgres(db) => Box::new(PgStore::connect(db.url(), kek).unwrap()),
        };
        self.store = Some(store);
    }

    /// Whether `secret` is anywhere in what the backend wrote: in redb's file, or in any row of
    /// any table as PostgreSQL prints it (text as is, bytea as hex).
    fn holds(&self, secret: &[u8]) -> bool {
        match &self.place {
            Place::Redb(dir) => {
                let file = std::fs::read(dir.path().join(Store::FILE)).unwrap();
                file.windows(secret.len()).any(|w| w == secret)
            }
            Place::Postgres(db) => {
                let tables = db.query_text(
                    "SELECT table_name FROM information_schema.tables \
                     WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
                );
                assert!(tables.len() > 10, "{tables:?}");
                let dump: String = tables
                    .iter()
                    .flat_map(|t| db.query_text(&format!("SELECT r::text FROM {t} r")))
                    .collect();
                dump.contains(&*String::from_utf8_lossy(secret)) || dump.contains(&hex(secret))
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn kek(byte: &str) -> Kek {
    Kek::from_hex(&byte.repeat(32)).unwrap()
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

fn family(id: &str, client_id: &str, subject: &str, expires_at: u64) -> FamilyRecord {
    FamilyRecord {
        id: id.into(),
        client_id: client_id.into(),
        subject: subject.into(),
        scope: "read".into(),
        created_at: 1,
        expires_at,
        is_revoked: false,
        audience: None,
        jkt: None,
    }
}

fn create_family(f: &FamilyRecord, t: TokenKey, token_expires_at: u64) -> GrantOp {
    GrantOp::CreateFamily { family: f.clone(), token: t, token_expires_at }
}

fn spend(t: TokenKey, next: TokenKey, client: Option<&str>, now: u64) -> GrantOp {
    GrantOp::Spend {
        token: t,
        client_id: client.map(str::to_string),
        next,
        next_expires_at: now + 50,
        now,
        horizon: 500,
    }
}

/// One operation in a batch of its own.
fn one(store: &dyn Storage, op: GrantOp) -> GrantOutcome {
    let mut outcomes = store.apply_grants(&[op]).unwrap();
    assert_eq!(outcomes.len(), 1);
    outcomes.remove(0)
}

fn refused(why: Refusal) -> GrantOutcome {
    GrantOutcome::Refused { why, revoked: Vec::new() }
}

fn apps_keep_their_conditions(open: Open) {
    let Some(backend) = open(None) else { return };
    let store = backend.store();
    assert_eq!(store.create_app(&app("b", "cb"), None).unwrap(), 1);
    assert_eq!(store.create_app(&app("a", "ca"), None).unwrap(), 2);
    assert!(matches!(store.create_app(&app("a", "cz"), None), Err(StoreError::Conflict("app id"))));
    assert!(matches!(
        store.create_app(&app("z", "ca"), None),
        Err(StoreError::Conflict("client id"))
    ));
    assert!(matches!(store.update_app(&app("z", "cz"), None), Err(StoreError::NotFound)));
    assert!(matches!(
        store.update_app(&app("a", "moved"), None),
        Err(StoreError::Conflict("client id change"))
    ));
    let mut renamed = app("a", "ca");
    renamed.name = "renamed".into();
    assert_eq!(store.update_app(&renamed, None).unwrap(), 3);
    let ids: Vec<String> = store.load_apps().unwrap().into_iter().map(|a| a.id).collect();
    assert_eq!(ids, ["a", "b"], "in id order");
    assert_eq!(store.load_apps().unwrap()[0], renamed);
    assert_eq!(store.delete_app("a", None).unwrap(), 4);
    assert!(matches!(store.delete_app("a", None), Err(StoreError::NotFound)));
    // The client id of a deleted app is free again.
    assert_eq!(store.create_app(&app("c", "ca"), None).unwrap(), 5);
    assert_eq!(store.version().unwrap(), 5, "refused operations bump nothing");
}

/// At start, every app once, one at a time: what the registry loads its clients from.
fn issue_14_apps_are_scanned_one_at_a_time(open: Open) {
    let Some(backend) = open(None) else { return };
    let store = backend.store();
    for (id, client_id) in [("b", "cb"), ("a", "ca"), ("c", "cc")] {
        store.create_app(&app(id, client_id), None).unwrap();
    }
    let mut renamed = app("c", "cc");
    renamed.name = "renamed".into();
    store.update_app(&renamed, None).unwrap();
    store.delete_app("b", None).unwrap();
    let mut scanned = Vec::new();
    store.scan_apps(&mut |a| scanned.push(a)).unwrap();
    scanned.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(scanned, [app("a", "ca"), renamed]);
}

/// One transaction, many writes: each checked against those before it; one whose condition
/// fails writes nothing (an import nothing of itself) and the rest commit.
fn issue_14_a_group_commit_keeps_each_writes_conditions(open: Open) {
    let Some(backend) = open(None) else { return };
    let store = backend.store();
    let mut renamed = app("a", "ca");
    renamed.name = "renamed".into();
    let writes = [
        RegistryWrite::CreateApp(app("a", "ca"), None),
        RegistryWrite::CreateApp(app("b", "ca"), None),
        RegistryWrite::UpdateApp(app("z", "cz"), None),
        RegistryWrite::UpdateApp(renamed.clone(), None),
        RegistryWrite::ImportApps(vec![app("i1", "ci1"), app("i2", "ca")], None),
        RegistryWrite::ImportApps(vec![app("j1", "cj1"), app("j2", "cj2")], None),
        RegistryWrite::Changes(vec![RegistryChange::DeleteRole("nothing".into())]),
        RegistryWrite::DeleteApp("gone".into(), None),
    ];
    let outcomes = store.commit_registry(&writes).unwrap();
    let shown: Vec<String> = outcomes
        .iter()
        .map(|o| match o {
            Ok(version) => format!("ok {version}"),
            Err(e) => e.to_string(),
        })
        .collect();
    assert_eq!(
        shown,
        [
            "ok 1",
            "client id already exists",
            "not found",
            "ok 2",
            "client id already exists",
            "ok 3",
            "ok 4",
            "not found",
        ]
    );
    let ids: Vec<String> = store.load_apps().unwrap().into_iter().map(|a| a.id).collect();
    assert_eq!(ids, ["a", "j1", "j2"]);
    assert_eq!(store.load_apps().unwrap()[0], renamed);
    // One change-log entry for the import, which followers read as "reload the apps".
    let logged: Vec<String> = store.changes_since(0).unwrap().into_iter().map(|c| c.1).collect();
    assert_eq!(logged, ["app:a", "app:a", "app:import", "role:nothing"]);
}

fn the_root_app_is_created_once(open: Open) {
    let Some(backend) = open(None) else { return };
    let store = backend.store();
    assert_eq!(store.create_root_app(&app("r", "cr"), "root").unwrap(), 1);
    assert_eq!(store.meta("root").unwrap().as_deref(), Some(&b"r"[..]));
    assert!(matches!(
        store.create_root_app(&app("r2", "cr2"), "root"),
        Err(StoreError::Conflict("root app"))
    ));
    // A taken app id refuses the whole bootstrap: no marker is left behind.
    assert!(matches!(
        store.create_root_app(&app("r", "cx"), "other-root"),
        Err(StoreError::Conflict("app id"))
    ));
    assert_eq!(store.meta("other-root").unwrap(), None);
    store.put_meta("preset", b"x").unwrap();
    assert!(matches!(
        store.create_root_app(&app("p", "cp"), "preset"),
        Err(StoreError::Conflict(_))
    ));
    let ids: Vec<String> = store.load_apps().unwrap().into_iter().map(|a| a.id).collect();
    assert_eq!(ids, ["r"], "refused as a whole");
    assert_eq!(store.version().unwrap(), 1);
}

fn acknowledged_writes_are_there_for_the_next_opener(open: Open) {
    let kek = kek("11");
    let Some(mut backend) = open(Some(kek.clone())) else { return };
    {
        let store = backend.store();
        store.create_app(&app("a", "ca"), None).unwrap();
        store.create_app(&app("b", "cb"), None).unwrap();
        let mut changed = app("b", "cb");
        changed.name = "renamed".into();
        store.update_app(&changed, None).unwrap();
        store.delete_app("a", None).unwrap();
        store.save_keys(&[key("k1"), key("k2")]).unwrap();
        store.save_keys(&[key("k2")]).unwrap();
        store.put_meta("root", b"b").unwrap();
        let f = family("f", "cb", "s", 100);
        store.apply_grants(&[create_family(&f, token(1), 90)]).unwrap();
    }
    backend.reopen(Some(kek));
    let store = backend.store();
    let apps = store.load_apps().unwrap();
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0].name, "renamed");
    assert_eq!(store.load_keys().unwrap(), vec![key("k2")]);
    assert_eq!(store.meta("root").unwrap().as_deref(), Some(&b"b"[..]));
    assert_eq!(store.version().unwrap(), 6);
    assert_eq!(store.refresh_status(&token(1)).unwrap().unwrap().family.id, "f");
    let changes = store.changes_since(4).unwrap();
    assert_eq!(changes, vec![(5, "keys:".to_string()), (6, "keys:".to_string())]);
}

fn keys_are_sealed_and_need_their_kek(open: Open) {
    let Some(mut backend) = open(Some(kek("22"))) else { return };
    let mut k = key("k1");
    k.secret = [0xA5; 32];
    let mut k2 = key("k0");
    k2.state = KeyState::Current;
    assert_eq!(backend.store().save_keys(&[k.clone(), k2.clone()]).unwrap(), 1);
    assert_eq!(backend.store().load_keys().unwrap(), vec![k2.clone(), k.clone()], "in kid order");
    assert!(!backend.holds("a5".repeat(32).as_bytes()));
    assert!(!backend.holds(&[0xA5; 32]));
    backend.reopen(Some(kek("33")));
    assert!(matches!(backend.store().load_keys(), Err(StoreError::KekMismatch)));
    backend.reopen(None);
    assert!(matches!(backend.store().load_keys(), Err(StoreError::KekMissing)));
    // Without a KEK a seed is kept marked plain, and any KEK still opens it.
    backend.store().save_keys(&[k.clone()]).unwrap();
    backend.reopen(Some(kek("22")));
    assert_eq!(backend.store().load_keys().unwrap(), vec![k]);
}

/// Two nodes changing the ring at once: the one whose view is stale must not undo the other's
/// change, so a replacement is written only over the ring its writer last read.
fn a_key_ring_changed_meanwhile_is_not_replaced(open: Open) {
    let Some(mut backend) = open(Some(kek("44"))) else { return };
    let store = backend.store();
    let mut current = key("k1");
    current.state = KeyState::Current;
    current.secret = [1; 32];
    let first = [current.clone(), key("k2")];
    assert!(store.replace_keys(&[], &first, None).unwrap(), "the first ring, over none");
    assert!(!store.replace_keys(&[], &[key("x")], None).unwrap(), "a second first ring is refused");
    assert_eq!(store.load_keys().unwrap(), first);
    // Rotated by a writer that read `first`, named in any order.
    let mut retired = current.clone();
    retired.state = KeyState::Retiring;
    retired.remove_after = Some(500);
    let mut promoted = key("k2");
    promoted.state = KeyState::Current;
    let rotated = [key("k3"), promoted.clone(), retired.clone()];
    assert!(store.replace_keys(&[key("k2"), current.clone()], &rotated, None).unwrap());
    // A second writer that also read `first` is refused, and so is a view differing from the
    // stored ring in one field or one seed only.
    let mut other_next = key("k4");
    other_next.secret = [4; 32];
    let clobber = [key("k2"), other_next];
    assert!(!store.replace_keys(&first, &clobber, None).unwrap());
    let mut restamped = rotated.clone();
    restamped[0].published_at += 1;
    assert!(!store.replace_keys(&restamped, &clobber, None).unwrap());
    let mut reseeded = rotated.clone();
    reseeded[2].secret = [9; 32];
    assert!(!store.replace_keys(&reseeded, &clobber, None).unwrap());
    assert!(!store.replace_keys(&rotated[..2], &clobber, None).unwrap(), "a key short");
    assert_eq!(store.load_keys().unwrap(), [retired.clone(), promoted.clone(), key("k3")]);
    assert_eq!(store.version().unwrap(), 2, "refused replacements log nothing");
    let logged = store.changes_since(0).unwrap();
    assert_eq!(logged, [(1, "keys:".to_string()), (2, "keys:".to_string())]);
    // Compared opened: the seeds are sealed anew on each write, and a KEK that cannot open the
    // stored ring replaces nothing.
    backend.reopen(Some(kek("55")));
    assert!(matches!(
        backend.store().replace_keys(&rotated, &first, None),
        Err(StoreError::KekMismatch)
    ));
    backend.reopen(Some(kek("44")));
    assert!(backend.store().replace_keys(&rotated, &first, None).unwrap());
    assert_eq!(backend.store().load_keys().unwrap(), first);
}

fn scope_record() -> ScopeRecord {
    ScopeRecord {
        id: "s".into(),
        name: "read_x".into(),
        note: String::new(),
        created_at: 1,
        updated_at: 1,
    }
}

fn role_record() -> RoleRecord {
    RoleRecord {
        id: "r".into(),
        name: "ops".into(),
        note: String::new(),
        scopes: vec!["read_x".into()],
        is_privileged: false,
        created_at: 1,
        updated_at: 1,
    }
}

fn user_record() -> UserRecord {
    UserRecord {
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
    }
}

fn service_record() -> ServiceRecord {
    ServiceRecord {
        id: "v".into(),
        name: "svc".into(),
        description: String::new(),
        callback_uris: vec![],
        created_at: 1,
        updated_at: 1,
    }
}

fn api_key_record() -> ApiKeyRecord {
    ApiKeyRecord {
        key_id: "k".into(),
        service_id: "v".into(),
        verifier: "00".into(),
        created_at: 1,
    }
}

fn subscription_record() -> SubscriptionRecord {
    SubscriptionRecord {
        service_id: "v".into(),
        user_id: "u".into(),
        plan: "pro".into(),
        status: "active".into(),
        current_period_end: None,
        metadata: Default::default(),
        created_at: 1,
        updated_at: 1,
    }
}

fn provider_record() -> ProviderRecord {
    ProviderRecord {
        id: "p".into(),
        name: "gh".into(),
        authorize_url: "https://example.com/a".into(),
        token_url: "https://example.com/t".into(),
        client_id: "pc".into(),
        client_secret: "provider-secret-in-clear".into(),
        created_at: 1,
    }
}

fn resource_record() -> ResourceRecord {
    ResourceRecord {
        id: "res".into(),
        identifier: "https://api.example.com".into(),
        name: "API".into(),
        scopes: vec!["s".into()],
        access_token_ttl_secs: Some(60),
        created_at: 1,
        updated_at: 1,
    }
}

/// Resources are one more registry kind: put, loaded back, logged as "resource:id" for
/// followers, and deleted; an app's grants travel inside its record.
fn issue_12_resources_are_stored_logged_and_named_in_app_grants(open: Open) {
    use RegistryChange::*;
    let Some(mut backend) = open(None) else { return };
    let resource = resource_record();
    let mut granted = app("a", "ca");
    granted.resources.insert(resource.identifier.clone(), vec!["s".into()]);
    granted.require_dpop = true;
    let store = backend.store();
    assert_eq!(
        store.apply_registry(&[PutResource(resource.clone()), PutApp(granted.clone())]).unwrap(),
        2
    );
    backend.reopen(None);
    let store = backend.store();
    assert_eq!(store.load_resources().unwrap(), vec![resource]);
    assert_eq!(store.load_apps().unwrap(), vec![granted]);
    assert_eq!(store.apply_registry(&[DeleteResource("res".into())]).unwrap(), 3);
    assert!(store.load_resources().unwrap().is_empty());
    let logged: Vec<String> = store.changes_since(0).unwrap().into_iter().map(|(_, w)| w).collect();
    assert_eq!(logged, ["resource:res", "app:a", "resource:res"]);
}

/// A trusted issuer that publishes its keys, and one whose key set the operator gave as JSON
/// text, kept byte for byte.
fn issuer_record() -> IssuerRecord {
    IssuerRecord {
        id: "iss".into(),
        issuer: "https://token.actions.githubusercontent.com".into(),
        jwks_uri: Some("https://token.actions.githubusercontent.com/.well-known/jwks".into()),
        jwks: None,
        algorithms: vec!["RS256".into()],
        max_token_age_secs: Some(300),
        created_at: 1,
        updated_at: 1,
    }
}

fn offline_issuer_record() -> IssuerRecord {
    IssuerRecord {
        id: "iss-offline".into(),
        issuer: "https://kubernetes.default.svc".into(),
        jwks_uri: None,
        jwks: Some(r#"{ "keys": [{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}] }"#.into()),
        algorithms: vec!["EdDSA".into(), "ES256".into()],
        max_token_age_secs: None,
        created_at: 2,
        updated_at: 2,
    }
}

/// An app that authenticates with tokens of [`issuer_record`] and may exchange tokens.
fn federated_app(id: &str, client_id: &str) -> AppRecord {
    let mut federated = app(id, client_id);
    federated.federated_identities = vec![
        FederatedIdentity {
            issuer: issuer_record().issuer,
            subject: "repo:acme/api:*".into(),
            audience: Some("https://tessera.example.com".into()),
            claims: [("repository_owner".to_string(), "acme".to_string())].into(),
        },
        FederatedIdentity {
            issuer: offline_issuer_record().issuer,
            subject: "system:serviceaccount:prod:api".into(),
            audience: None,
            claims: Default::default(),
        },
    ];
    federated.can_exchange = true;
    federated
}

/// Trusted issuers are one more registry kind: put, loaded back in id order, replaced, logged
/// as "issuer:id" for followers, and deleted; the identities an app accepts travel inside its
/// record.
fn trusted_issuers_are_stored_logged_and_named_in_app_identities(open: Open) {
    use RegistryChange::*;
    let Some(mut backend) = open(None) else { return };
    let (issuer, offline) = (issuer_record(), offline_issuer_record());
    let federated = federated_app("a", "ca");
    let store = backend.store();
    let puts = [PutIssuer(offline.clone()), PutIssuer(issuer.clone()), PutApp(federated.clone())];
    assert_eq!(store.apply_registry(&puts).unwrap(), 3);
    backend.reopen(None);
    let store = backend.store();
    assert_eq!(store.load_issuers().unwrap(), vec![issuer.clone(), offline.clone()]);
    assert_eq!(store.load_apps().unwrap(), vec![federated]);
    // A put replaces.
    let moved = IssuerRecord {
        jwks_uri: None,
        jwks: Some(r#"{"keys":[]}"#.into()),
        algorithms: vec!["ES256".into()],
        updated_at: 9,
        ..issuer.clone()
    };
    assert_eq!(store.apply_registry(&[PutIssuer(moved.clone())]).unwrap(), 4);
    assert_eq!(store.load_issuers().unwrap(), vec![moved, offline.clone()]);
    let deletes = [DeleteIssuer("iss".into()), DeleteIssuer("absent".into())];
    assert_eq!(store.apply_registry(&deletes).unwrap(), 6);
    assert_eq!(store.load_issuers().unwrap(), vec![offline]);
    let logged: Vec<String> = store.changes_since(0).unwrap().into_iter().map(|(_, w)| w).collect();
    assert_eq!(
        logged,
        ["issuer:iss-offline", "issuer:iss", "app:a", "issuer:iss", "issuer:iss", "issuer:absent"]
    );
    assert_eq!(DeleteIssuer("iss".into()).entry().as_deref(), Some("issuer:iss"));
}

/// The change log is what a follower replays, so its entries and the one version bump per
/// change are pinned here, for every kind of registry change.
fn registry_changes_log_one_version_each_and_secrets_stay_sealed(open: Open) {
    use RegistryChange::*;
    let Some(backend) = open(Some(kek("33"))) else { return };
    let store = backend.store();
    let scope = scope_record();
    let role = role_record();
    let user = user_record();
    let service = service_record();
    let api_key = api_key_record();
    let sub = subscription_record();
    let provider = provider_record();
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
    assert!(!backend.holds(b"provider-secret-in-clear"));
    // A put replaces (a scope renamed rewrites the apps that name it).
    let mut renamed = app("a", "ca");
    renamed.name = "renamed".into();
    assert_eq!(store.apply_registry(&[PutApp(renamed.clone())]).unwrap(), 10);
    assert_eq!(store.load_apps().unwrap(), vec![renamed]);
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
    assert_eq!(store.apply_registry(&deletes).unwrap(), 19);
    assert!(store.load_scopes().unwrap().is_empty());
    assert!(store.load_roles().unwrap().is_empty());
    assert!(store.load_users().unwrap().is_empty());
    assert!(store.load_services().unwrap().is_empty());
    assert!(store.load_api_keys().unwrap().is_empty());
    assert!(store.load_service_users().unwrap().is_empty());
    assert!(store.load_subscriptions().unwrap().is_empty());
    assert!(store.load_providers().unwrap().is_empty());
    assert_eq!(store.apply_registry(&[]).unwrap(), 0, "no change, no version");
    assert_eq!(store.version().unwrap(), 19);
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
        "app:a",
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

fn meta_values_are_set_and_replaced(open: Open) {
    let Some(backend) = open(None) else { return };
    let store = backend.store();
    assert_eq!(store.meta("m").unwrap(), None);
    store.put_meta("m", b"one").unwrap();
    store.put_meta("m", &[0, 1, 2]).unwrap();
    store.put_meta("n", b"").unwrap();
    assert_eq!(store.meta("m").unwrap(), Some(vec![0, 1, 2]));
    assert_eq!(store.meta("n").unwrap(), Some(vec![]));
    assert_eq!(store.version().unwrap(), 0, "meta is no change to follow");
    assert!(store.changes_since(0).unwrap().is_empty());
}

fn the_change_log_answers_since_any_version(open: Open) {
    let Some(backend) = open(None) else { return };
    let store = backend.store();
    assert_eq!(store.version().unwrap(), 0);
    assert!(store.changes_since(0).unwrap().is_empty());
    store.create_app(&app("a", "ca"), None).unwrap();
    store.save_keys(&[key("k")]).unwrap();
    store.apply_registry(&[RegistryChange::DeleteRole("r".into())]).unwrap();
    // A grant that revokes nothing is not followed: no version for it.
    let f = family("f", "ca", "s", 100);
    store.apply_grants(&[create_family(&f, token(1), 90)]).unwrap();
    assert_eq!(store.version().unwrap(), 3);
    let all = store.changes_since(0).unwrap();
    let expected = [(1, "app:a"), (2, "keys:"), (3, "role:r")];
    assert_eq!(all, expected.map(|(v, w)| (v, w.to_string())));
    assert_eq!(store.changes_since(2).unwrap(), all[2..]);
    assert!(store.changes_since(3).unwrap().is_empty());
    assert!(store.changes_since(u64::MAX).unwrap().is_empty());
}

fn a_refresh_token_is_spent_once_and_its_reuse_ends_the_family(open: Open) {
    let Some(backend) = open(None) else { return };
    let store = backend.store();
    let f = family("f1", "c1", "alice", 100);
    assert_eq!(one(store, create_family(&f, token(1), 90)), GrantOutcome::Created);
    let status = store.refresh_status(&token(1)).unwrap().unwrap();
    assert_eq!((status.family, status.record.is_spent), (f.clone(), false));
    assert_eq!(
        one(store, spend(token(1), token(2), Some("c1"), 10)),
        GrantOutcome::Spent(f.clone())
    );
    let status = store.refresh_status(&token(1)).unwrap().unwrap();
    assert!(status.record.is_spent);
    let next = store.refresh_status(&token(2)).unwrap().unwrap();
    assert_eq!((next.record.issued_at, next.record.expires_at), (10, 60));
    // A spend past the family's expiry moves it out, with a day of slack.
    let mut later = f.clone();
    later.expires_at = 105 + 86_400;
    assert_eq!(one(store, spend(token(2), token(3), None, 55)), GrantOutcome::Spent(later));
    // The spent token again: it leaked, so the family ends, with its access tokens.
    assert_eq!(
        one(store, spend(token(1), token(9), Some("c1"), 80)),
        GrantOutcome::Refused { why: Refusal::Reused, revoked: vec![("f1".into(), 500)] }
    );
    assert!(store.refresh_status(&token(3)).unwrap().unwrap().family.is_revoked);
    assert_eq!(one(store, spend(token(3), token(4), None, 81)), refused(Refusal::Revoked));
    assert_eq!(store.refresh_status(&token(9)).unwrap(), None, "the reuse issued nothing");
    assert_eq!(store.revoked_access_tokens().unwrap(), vec![("f1".to_string(), 500)]);
    // In one batch, each operation sees the ones before it, however the backend sends them
    // (a run of new families may go out together).
    let g = family("g", "c1", "bob", 100);
    let h = family("h", "c1", "carol", 100);
    let batch = [
        create_family(&h, token(30), 90),
        create_family(&g, token(20), 90),
        create_family(&family("i", "c1", "dan", 100), token(40), 90),
        spend(token(20), token(21), None, 10),
        spend(token(20), token(22), None, 10),
        spend(token(30), token(31), None, 10),
    ];
    let outcomes = store.apply_grants(&batch).unwrap();
    assert_eq!(
        outcomes[..3],
        [GrantOutcome::Created, GrantOutcome::Created, GrantOutcome::Created]
    );
    assert_eq!(outcomes[3], GrantOutcome::Spent(g));
    assert_eq!(
        outcomes[4],
        GrantOutcome::Refused { why: Refusal::Reused, revoked: vec![("g".into(), 500)] }
    );
    assert_eq!(outcomes[5], GrantOutcome::Spent(h));
    assert_eq!(store.refresh_status(&token(40)).unwrap().unwrap().family.subject, "dan");
}

fn a_refused_spend_changes_nothing(open: Open) {
    let Some(backend) = open(None) else { return };
    let store = backend.store();
    let f = family("f", "c1", "alice", 100);
    one(store, create_family(&f, token(1), 50));
    assert_eq!(one(store, spend(token(7), token(8), None, 10)), refused(Refusal::Unknown));
    // The selector alone is not the token.
    let forged = TokenKey { selector: token(1).selector, verifier: [0; 32] };
    assert_eq!(one(store, spend(forged, token(8), None, 10)), refused(Refusal::Unknown));
    assert_eq!(store.refresh_status(&forged).unwrap(), None);
    assert_eq!(
        one(store, spend(token(1), token(8), Some("c2"), 10)),
        refused(Refusal::WrongClient)
    );
    assert_eq!(one(store, spend(token(1), token(8), None, 50)), refused(Refusal::Expired));
    assert!(!store.refresh_status(&token(1)).unwrap().unwrap().record.is_spent);
    assert_eq!(store.refresh_status(&token(8)).unwrap(), None);
    assert_eq!(one(store, spend(token(1), token(2), Some("c1"), 49)), GrantOutcome::Spent(f));
}

fn revocations_are_answered_and_listed(open: Open) {
    let Some(backend) = open(None) else { return };
    let store = backend.store();
    let families = [
        family("f1", "c1", "alice", 100),
        family("f2", "c1", "bob", 100),
        family("f3", "c1", "alice", 100),
        family("f4", "c2", "alice", 100),
    ];
    for (n, f) in (1..).zip(&families) {
        one(store, create_family(f, token(n), 90));
    }
    assert_eq!(
        one(store, GrantOp::RevokeAccess { jti: "j1".into(), exp: 99 }),
        GrantOutcome::Revoked(vec![("j1".into(), 99)])
    );
    let revoke = |t, client: Option<&str>| GrantOp::RevokeFamily {
        token: t,
        client_id: client.map(str::to_string),
        horizon: 300,
        audit: None,
    };
    assert_eq!(one(store, revoke(token(2), Some("c2"))), GrantOutcome::NoMatch);
    assert_eq!(one(store, revoke(token(9), None)), GrantOutcome::NoMatch);
    assert_eq!(
        one(store, revoke(token(2), Some("c1"))),
        GrantOutcome::Revoked(vec![("f2".into(), 300)])
    );
    let by_client = |subject: Option<&str>| GrantOp::RevokeClient {
        client_id: "c1".into(),
        subject: subject.map(str::to_string),
        horizon: 400,
    };
    assert_eq!(
        one(store, by_client(Some("alice"))),
        GrantOutcome::Revoked(vec![("f1".into(), 400), ("f3".into(), 400)]),
        "only alice's families of c1, in id order"
    );
    assert!(!store.refresh_status(&token(4)).unwrap().unwrap().family.is_revoked);
    assert_eq!(one(store, by_client(None)), GrantOutcome::Revoked(vec![]), "all ended already");
    let listed = store.revoked_access_tokens().unwrap();
    let expected = [("f1", 400), ("f2", 300), ("f3", 400), ("j1", 99)];
    assert_eq!(listed, expected.map(|(j, e)| (j.to_string(), e)));
}

/// Other nodes refuse a revoked token once their followers read it from the change log, so
/// every revocation an operation answers is logged with it, one version each, in order.
fn every_revocation_is_logged_for_the_other_nodes(open: Open) {
    let Some(backend) = open(None) else { return };
    let store = backend.store();
    let families = [family("f1", "c1", "alice", 100), family("g", "c2", "bob", 100)];
    store
        .apply_grants(&[
            create_family(&families[0], token(1), 90),
            create_family(&families[1], token(5), 90),
        ])
        .unwrap();
    one(store, spend(token(1), token(2), None, 10));
    assert_eq!(store.version().unwrap(), 0, "new families and spends are not followed");
    assert_eq!(
        one(store, GrantOp::RevokeAccess { jti: "j1".into(), exp: 99 }),
        GrantOutcome::Revoked(vec![("j1".into(), 99)])
    );
    assert_eq!(store.changes_since(0).unwrap(), [(1, "revoked:99:j1".to_string())]);
    let batch = [
        spend(token(9), token(10), None, 20),
        spend(token(1), token(3), None, 20),
        GrantOp::RevokeClient { client_id: "c2".into(), subject: None, horizon: 400 },
        GrantOp::RevokeFamily { token: token(7), client_id: None, horizon: 300, audit: None },
        GrantOp::RevokeAccess { jti: "j:2".into(), exp: 7 },
    ];
    let outcomes = store.apply_grants(&batch).unwrap();
    assert_eq!(outcomes[0], refused(Refusal::Unknown));
    assert_eq!(
        outcomes[1],
        GrantOutcome::Refused { why: Refusal::Reused, revoked: vec![("f1".into(), 500)] }
    );
    assert_eq!(outcomes[3], GrantOutcome::NoMatch);
    let expected = [(2, "revoked:500:f1"), (3, "revoked:400:g"), (4, "revoked:7:j:2")];
    assert_eq!(store.changes_since(1).unwrap(), expected.map(|(v, w)| (v, w.to_string())));
    assert_eq!(store.version().unwrap(), 4);
    let logged: Vec<_> = store.changes_since(0).unwrap();
    let parsed: Vec<_> =
        logged.iter().filter_map(|(_, w)| tessera_storage::parse_revocation_entry(w)).collect();
    assert_eq!(parsed, [("j1", 99), ("f1", 500), ("g", 400), ("j:2", 7)]);
    let mut listed = store.revoked_access_tokens().unwrap();
    listed.sort_unstable();
    let expected = [("f1", 500), ("g", 400), ("j1", 99), ("j:2", 7)];
    assert_eq!(
        listed,
        expected.map(|(j, e)| (j.to_string(), e)),
        "the log says what the table holds"
    );
}

fn a_client_assertion_is_recorded_once(open: Open) {
    let Some(backend) = open(None) else { return };
    let store = backend.store();
    let record = |key: &str| GrantOp::RecordAssertion { key: key.into(), exp: 100 };
    assert_eq!(one(store, record("c\0j1")), GrantOutcome::Recorded);
    assert_eq!(one(store, record("c\0j1")), GrantOutcome::Replayed);
    let outcomes =
        store.apply_grants(&[record("c\0j2"), record("c\0j2"), record("d\0j2")]).unwrap();
    let expected = [GrantOutcome::Recorded, GrantOutcome::Replayed, GrantOutcome::Recorded];
    assert_eq!(outcomes, expected);
}

fn connect(state: &str, expires_at: u64) -> ConnectRecord {
    ConnectRecord {
        state: state.into(),
        service_id: "v".into(),
        user_id: "u".into(),
        provider_id: "p".into(),
        scopes: vec!["repo".into()],
        redirect_uri: "https://svc.example.com/back".into(),
        client_state: Some("xyz".into()),
        expires_at,
        provider_state: None,
        is_complete: false,
    }
}

fn provider_grant(access: &str) -> ProviderGrant {
    ProviderGrant {
        scopes: vec!["repo".into()],
        access_token: access.into(),
        refresh_token: Some(format!("{access}-refresh")),
        expires_at: Some(3600),
    }
}

fn begin(state: &str, user: &str, provider_state: &str, now: u64) -> GrantOp {
    GrantOp::BeginConnect {
        state: state.into(),
        user_id: user.into(),
        provider_state: provider_state.into(),
        now,
    }
}

fn complete(provider_state: &str, grant: ProviderGrant, now: u64) -> GrantOp {
    GrantOp::CompleteConnect { provider_state: provider_state.into(), grant, now }
}

fn cleanup_removes_only_what_expired(open: Open) {
    let Some(backend) = open(None) else { return };
    let store = backend.store();
    let f = family("f", "c", "s", 100);
    let batch = [
        create_family(&f, token(1), 50),
        GrantOp::RevokeAccess { jti: "j".into(), exp: 70 },
        GrantOp::RecordAssertion { key: "a".into(), exp: 60 },
        GrantOp::CreateConnect(connect("s1", 80)),
        begin("s1", "u", "ps1", 10),
    ];
    store.apply_grants(&batch).unwrap();
    // At 60: the token (50) and the assertion (60); the family, revocation, request stay.
    assert_eq!(
        one(store, GrantOp::Cleanup { now: 60, audit_before: 0 }),
        GrantOutcome::Cleaned { removed: 2 }
    );
    assert_eq!(store.refresh_status(&token(1)).unwrap(), None);
    assert_eq!(
        one(store, GrantOp::RecordAssertion { key: "a".into(), exp: 90 }),
        GrantOutcome::Recorded
    );
    assert_eq!(store.revoked_access_tokens().unwrap(), vec![("j".to_string(), 70)]);
    assert!(store.connect_by_provider_state("ps1").unwrap().is_some());
    // At 100: the revocation, the request (and its provider state), the new assertion (90),
    // the family (100).
    assert_eq!(
        one(store, GrantOp::Cleanup { now: 100, audit_before: 0 }),
        GrantOutcome::Cleaned { removed: 4 }
    );
    assert!(store.revoked_access_tokens().unwrap().is_empty());
    assert_eq!(store.connect_request("s1").unwrap(), None);
    assert_eq!(store.connect_by_provider_state("ps1").unwrap(), None);
    assert_eq!(
        one(store, GrantOp::Cleanup { now: 100, audit_before: 0 }),
        GrantOutcome::Cleaned { removed: 0 }
    );
}

fn connect_requests_go_through_their_steps_once(open: Open) {
    use ConnectRefusal::*;
    let Some(backend) = open(None) else { return };
    let store = backend.store();
    let request = connect("s1", 100);
    assert_eq!(one(store, GrantOp::CreateConnect(request.clone())), GrantOutcome::Created);
    assert_eq!(store.connect_request("s1").unwrap(), Some(request.clone()));
    assert_eq!(store.connect_request("s2").unwrap(), None);
    assert_eq!(one(store, begin("nope", "u", "ps0", 10)), GrantOutcome::ConnectRefused(Unknown));
    assert_eq!(one(store, begin("s1", "x", "ps0", 10)), GrantOutcome::ConnectRefused(OtherUser));
    assert_eq!(one(store, begin("s1", "u", "ps0", 100)), GrantOutcome::ConnectRefused(Expired));
    let mut begun = request.clone();
    begun.provider_state = Some("ps1".into());
    assert_eq!(one(store, begin("s1", "u", "ps1", 10)), GrantOutcome::Connect(begun.clone()));
    assert_eq!(store.connect_by_provider_state("ps1").unwrap(), Some(begun));
    assert_eq!(store.connect_by_provider_state("ps0").unwrap(), None);
    // Sent to the provider again: only the newest provider state answers.
    let mut again = request.clone();
    again.provider_state = Some("ps2".into());
    assert_eq!(one(store, begin("s1", "u", "ps2", 11)), GrantOutcome::Connect(again.clone()));
    assert_eq!(store.connect_by_provider_state("ps1").unwrap(), None);
    assert_eq!(
        one(store, complete("ps1", provider_grant("a"), 12)),
        GrantOutcome::ConnectRefused(Unknown)
    );
    assert_eq!(store.provider_grant("v", "u", "p").unwrap(), None);
    let mut done = again;
    done.is_complete = true;
    assert_eq!(
        one(store, complete("ps2", provider_grant("a"), 12)),
        GrantOutcome::Connect(done.clone())
    );
    assert_eq!(store.provider_grant("v", "u", "p").unwrap(), Some(provider_grant("a")));
    assert_eq!(store.connect_request("s1").unwrap(), Some(done));
    assert_eq!(store.connect_by_provider_state("ps2").unwrap(), None);
    // Once: neither the provider's answer nor the user can use the request again.
    assert_eq!(
        one(store, complete("ps2", provider_grant("b"), 13)),
        GrantOutcome::ConnectRefused(Unknown)
    );
    assert_eq!(one(store, begin("s1", "u", "ps3", 13)), GrantOutcome::ConnectRefused(Used));
    assert_eq!(store.provider_grant("v", "u", "p").unwrap(), Some(provider_grant("a")));
    // A request that expired between the two steps completes nothing.
    one(store, GrantOp::CreateConnect(connect("s2", 20)));
    one(store, begin("s2", "u", "ps4", 10));
    assert_eq!(
        one(store, complete("ps4", provider_grant("c"), 20)),
        GrantOutcome::ConnectRefused(Expired)
    );
    assert_eq!(store.provider_grant("v", "u", "p").unwrap(), Some(provider_grant("a")));
}

fn provider_grants_are_sealed(open: Open) {
    let Some(mut backend) = open(Some(kek("44"))) else { return };
    let store = backend.store();
    one(store, GrantOp::CreateConnect(connect("s1", 100)));
    one(store, begin("s1", "u", "ps1", 10));
    let grant = provider_grant("provider-access-token-in-clear");
    one(store, complete("ps1", grant.clone(), 11));
    assert_eq!(store.provider_grant("v", "u", "p").unwrap(), Some(grant));
    let renewed = provider_grant("provider-renewed-token");
    let renew = GrantOp::RenewProviderGrant {
        service_id: "v".into(),
        user_id: "u".into(),
        provider_id: "p".into(),
        grant: renewed.clone(),
    };
    assert_eq!(one(store, renew), GrantOutcome::Created);
    assert_eq!(store.provider_grant("v", "u", "p").unwrap(), Some(renewed));
    assert_eq!(store.provider_grant("v", "u", "other").unwrap(), None);
    assert!(!backend.holds(b"provider-access-token-in-clear"));
    assert!(!backend.holds(b"provider-renewed-token"));
    backend.reopen(None);
    assert!(matches!(backend.store().provider_grant("v", "u", "p"), Err(StoreError::KekMissing)));
}

/// A state from a URL can hold anything; PostgreSQL's text cannot hold NUL. Such a key finds
/// nothing, and fails neither the read nor the batch it is in.
fn keys_from_outside_with_a_nul_find_nothing(open: Open) {
    use ConnectRefusal::Unknown;
    let Some(backend) = open(None) else { return };
    let store = backend.store();
    assert_eq!(store.connect_request("s\0").unwrap(), None);
    assert_eq!(store.connect_by_provider_state("\0").unwrap(), None);
    assert_eq!(store.provider_grant("v", "u\0", "p").unwrap(), None);
    let batch = [
        begin("s\0", "u", "ps", 1),
        complete("ps\0", provider_grant("a"), 1),
        GrantOp::RecordAssertion { key: "c\0j".into(), exp: 9 },
    ];
    let expected = [
        GrantOutcome::ConnectRefused(Unknown),
        GrantOutcome::ConnectRefused(Unknown),
        GrantOutcome::Recorded,
    ];
    assert_eq!(store.apply_grants(&batch).unwrap(), expected);
}

fn the_store_answers_ping(open: Open) {
    let Some(backend) = open(None) else { return };
    backend.store().ping().unwrap();
}

fn a_lease_has_one_holder_until_it_expires(open: Open) {
    let Some(mut backend) = open(None) else { return };
    let store = backend.store();
    assert!(store.try_lease("rotation", "a", 100, 30).unwrap(), "free: a holds it until 130");
    assert!(!store.try_lease("rotation", "b", 110, 30).unwrap());
    assert!(!store.try_lease("rotation", "b", 130, 30).unwrap(), "held through its last second");
    assert!(store.try_lease("rotation", "a", 125, 30).unwrap(), "renewed until 155");
    assert!(!store.try_lease("rotation", "b", 140, 30).unwrap(), "the renewal holds");
    assert!(store.try_lease("other", "b", 140, 30).unwrap(), "each name is a lease of its own");
    assert!(store.try_lease("rotation", "b", 156, 30).unwrap(), "expired: b takes over");
    assert!(!store.try_lease("rotation", "a", 157, 30).unwrap(), "and a is refused now");
    assert_eq!(store.version().unwrap(), 0, "a lease is no change to follow");
    assert!(store.changes_since(0).unwrap().is_empty());
    backend.reopen(None);
    let store = backend.store();
    assert!(!store.try_lease("rotation", "a", 160, 30).unwrap(), "a taken lease is durable");
    assert!(store.try_lease("rotation", "b", 186, 30).unwrap());
}

/// One row in every table a dump carries, written through the ordinary operations.
fn fill(store: &dyn Storage) {
    use RegistryChange::*;
    store.create_root_app(&app("root", "croot"), "root").unwrap();
    store.create_app(&federated_app("a", "ca"), None).unwrap();
    store.save_keys(&[key("k1")]).unwrap();
    let puts = [
        PutScope(scope_record()),
        PutRole(role_record()),
        PutUser(user_record()),
        PutService(service_record()),
        PutApiKey(api_key_record()),
        LinkUser("v".into(), "u".into(), 7),
        PutSubscription(subscription_record()),
        PutProvider(provider_record()),
        PutResource(resource_record()),
        PutIssuer(issuer_record()),
        PutIssuer(offline_issuer_record()),
        Audit(audit_event("scope.create", 5)),
    ];
    store.apply_registry(&puts).unwrap();
    let batch = [
        create_family(&family("f", "ca", "alice", 1_000), token(1), 900),
        spend(token(1), token(2), Some("ca"), 10),
        GrantOp::RevokeAccess { jti: "j".into(), exp: 700 },
        GrantOp::RecordAssertion { key: "ca\0jti-1".into(), exp: 600 },
        GrantOp::CreateConnect(connect("done", 800)),
        begin("done", "u", "ps-done", 10),
        complete("ps-done", provider_grant("provider-access"), 11),
        GrantOp::CreateConnect(connect("waiting", 800)),
        begin("waiting", "u", "ps-waiting", 10),
    ];
    store.apply_grants(&batch).unwrap();
}

fn other_backends(open: Open, kek: &Kek) -> Vec<Backend> {
    let redb: Open = Backend::redb;
    let postgres: Open = Backend::postgres;
    [open, redb, postgres].into_iter().filter_map(|o| o(Some(kek.clone()))).collect()
}

/// `store copy`: what one backend holds, another holds after, row for row, and serves the same
/// answers with the same KEK: secrets stay sealed on the way, tokens still spend once.
fn a_dump_moves_every_row_into_an_empty_store_of_either_backend(open: Open) {
    let kek = kek("55");
    let Some(source) = open(Some(kek.clone())) else { return };
    fill(source.store());
    let dump = source.store().export().unwrap();
    for (table, rows) in dump.counts() {
        assert!(rows > 0, "the fixture leaves {table} empty");
    }
    assert_eq!(dump.version, source.store().version().unwrap());
    for target in other_backends(open, &kek) {
        let store = target.store();
        store.import(&dump).unwrap();
        assert_eq!(store.export().unwrap(), dump);
        assert_eq!(store.version().unwrap(), dump.version);
        assert_eq!(store.load_apps().unwrap(), source.store().load_apps().unwrap());
        assert!(store.load_apps().unwrap().contains(&federated_app("a", "ca")));
        assert_eq!(store.load_issuers().unwrap(), vec![issuer_record(), offline_issuer_record()]);
        assert_eq!(store.load_keys().unwrap(), vec![key("k1")]);
        assert_eq!(store.load_providers().unwrap(), vec![provider_record()]);
        assert!(!target.holds(b"provider-secret-in-clear"));
        assert_eq!(
            store.provider_grant("v", "u", "p").unwrap(),
            Some(provider_grant("provider-access"))
        );
        assert!(store.connect_by_provider_state("ps-waiting").unwrap().is_some());
        assert_eq!(store.revoked_access_tokens().unwrap(), vec![("j".to_string(), 700)]);
        // The copied token was spent: its reuse ends the family; the fresh one was not.
        assert!(matches!(
            one(store, spend(token(1), token(5), Some("ca"), 20)),
            GrantOutcome::Refused { why: Refusal::Reused, .. }
        ));
        let replayed = GrantOp::RecordAssertion { key: "ca\0jti-1".into(), exp: 600 };
        assert_eq!(one(store, replayed), GrantOutcome::Replayed);
        // The log goes on from the source's version (the reuse above logged one revocation),
        // so it only ever grows.
        assert_eq!(store.create_app(&app("b", "cb"), None).unwrap(), dump.version + 2);
        assert!(matches!(store.create_app(&app("c", "ca"), None), Err(StoreError::Conflict(_))));
    }
}

/// A copy never merges into live data: a store that ever took a write refuses a dump whole.
fn a_store_that_holds_anything_takes_no_dump(open: Open) {
    let Some(source) = open(None) else { return };
    fill(source.store());
    let dump = source.store().export().unwrap();
    let writes: [fn(&dyn Storage); 4] = [
        |s| assert_eq!(s.create_app(&app("x", "cx"), None).unwrap(), 1),
        |s| s.put_meta("marker", b"1").unwrap(),
        |s| assert!(s.try_lease("rotation", "node", 1, 10).unwrap()),
        |s| drop(s.apply_grants(&[GrantOp::RevokeAccess { jti: "j".into(), exp: 9 }]).unwrap()),
    ];
    for write in writes {
        let Some(target) = open(None) else { return };
        write(target.store());
        let before = target.store().export().unwrap();
        assert!(matches!(target.store().import(&dump), Err(StoreError::NotEmpty)));
        assert_eq!(target.store().export().unwrap(), before, "nothing written");
    }
}

fn audit_event(action: &str, at: u64) -> AuditEvent {
    AuditEvent {
        at,
        actor: "app:c1".into(),
        action: action.into(),
        target: Some("app:a".into()),
        outcome: AuditOutcome::Success,
        reason: None,
        request_id: Some("req-1".into()),
    }
}

/// The audit log: an event is written by the transaction of its change, or not at all, takes
/// no place in the change log, and pages back in commit order; the sweep drops old events.
fn issue_11_audit_events_commit_with_their_change_and_page_in_order(open: Open) {
    let Some(backend) = open(None) else { return };
    let store = backend.store();
    let actions = |events: Vec<tessera_storage::Logged>| -> Vec<(u64, String)> {
        events.into_iter().map(|l| (l.seq, l.event.action)).collect()
    };
    assert_eq!(store.audit_after(0, 10).unwrap(), vec![]);
    let version = store.create_app(&app("a", "ca"), Some(&audit_event("app.create", 10))).unwrap();
    // Taken: the refused create writes neither the app nor its event.
    let taken = store.create_app(&app("b", "ca"), Some(&audit_event("app.lost", 11)));
    assert!(matches!(taken, Err(StoreError::Conflict(_))));
    let mut renamed = app("a", "ca");
    renamed.name = "renamed".into();
    store.update_app(&renamed, Some(&audit_event("app.update", 12))).unwrap();
    let missing = store.update_app(&app("zz", "czz"), Some(&audit_event("app.lost", 12)));
    assert!(matches!(missing, Err(StoreError::NotFound)));
    let changes = [
        RegistryChange::PutScope(scope_record()),
        RegistryChange::Audit(audit_event("scope.create", 13)),
    ];
    let after_scope = store.apply_registry(&changes).unwrap();
    assert_eq!(after_scope, version + 2, "the event takes no version of its own");
    let logged: Vec<String> =
        store.changes_since(version).unwrap().into_iter().map(|c| c.1).collect();
    assert_eq!(logged, ["app:a", "scope:s"].map(String::from));
    store.replace_keys(&[], &[key("k1")], Some(&audit_event("key.rotate", 14))).unwrap();
    assert!(!store.replace_keys(&[], &[key("k2")], Some(&audit_event("key.lost", 14))).unwrap());
    let refusal =
        AuditEvent { outcome: AuditOutcome::Refused, ..audit_event("rate_limit.trip", 15) };
    assert_eq!(one(store, GrantOp::Audit(refusal.clone())), GrantOutcome::Recorded);
    // A reuse is recorded by the store, in the commit that ends the family.
    let f = family("f1", "c1", "alice", 100);
    one(store, create_family(&f, token(1), 90));
    one(store, spend(token(1), token(2), Some("c1"), 16));
    one(store, spend(token(1), token(3), Some("c1"), 17));
    store.delete_app("a", Some(&audit_event("app.delete", 18))).unwrap();
    let all = store.audit_after(0, 100).unwrap();
    assert_eq!(
        actions(all.clone()),
        [
            (1, "app.create"),
            (2, "app.update"),
            (3, "scope.create"),
            (4, "key.rotate"),
            (5, "rate_limit.trip"),
            (6, "refresh_token.reuse"),
            (7, "app.delete"),
        ]
        .map(|(n, a)| (n, a.to_string()))
    );
    assert_eq!(all[4].event, refusal);
    let reuse = &all[5].event;
    assert_eq!(
        (reuse.actor.as_str(), reuse.target.as_deref(), reuse.at),
        ("app:c1", Some("family:f1"), 17)
    );
    // Pages: after a cursor, at most so many.
    assert_eq!(
        actions(store.audit_after(2, 2).unwrap()),
        [(3, "scope.create".to_string()), (4, "key.rotate".to_string())]
    );
    assert_eq!(store.audit_after(7, 10).unwrap(), vec![]);
    // Retention: events before the horizon go, the rest stay where they were.
    let cleaned = one(store, GrantOp::Cleanup { now: 0, audit_before: 14 });
    assert!(matches!(cleaned, GrantOutcome::Cleaned { removed } if removed >= 3), "{cleaned:?}");
    assert_eq!(store.audit_after(0, 100).unwrap().first().map(|l| l.seq), Some(4));
    // Positions only grow, even when every event is old: the newest is kept, so the next
    // position is never one a reader has seen.
    one(store, GrantOp::Cleanup { now: 0, audit_before: 1_000 });
    assert_eq!(actions(store.audit_after(0, 100).unwrap()), [(7, "app.delete".to_string())]);
    store.create_app(&app("c", "cc"), Some(&audit_event("app.create", 19))).unwrap();
    assert_eq!(store.audit_after(7, 10).unwrap().first().map(|l| l.seq), Some(8));
}
