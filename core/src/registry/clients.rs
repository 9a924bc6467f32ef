//! The ClientRegistry actor: the one owner of apps and their secrets. Every change is checked
//! against `policy`, committed durably, and only then published to the [`ClientTable`].

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::{Actor, Context, Handler, Message};
use tessera_storage::{
    ApiKeyRecord, AppRecord, GrantOp, ProviderRecord, RoleRecord, ScopeRecord, ServiceRecord,
    Storage, StoreError, SubscriptionRecord, UserRecord,
};

use crate::tables::service_keys::ServiceKeys;
use crate::tables::user::UserTable;

use crate::grants::GrantStore;

use crate::auth::secret::{hash_secret, new_client_id, new_secret, random_token, to_hex};
use crate::clock::SharedClock;
use crate::policy::{self, Caller, PolicyError, ROOT};
use crate::registry::app::{self, AppPatch, GRANT_CLIENT_CREDENTIALS, NewApp};
use crate::tables::client::{Client, ClientTable};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Invalid(String),
    #[error("{}", .0.message())]
    Policy(PolicyError),
    #[error("{0}")]
    Conflict(String),
    /// Allowed to no caller of this kind, whatever it sends (the service API's `403`).
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<PolicyError> for RegistryError {
    fn from(e: PolicyError) -> Self {
        RegistryError::Policy(e)
    }
}

/// A page of a list: 1-based number, bounded size.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub size: usize,
    pub number: usize,
}

impl Page {
    pub const MAX_SIZE: usize = 1000;
}

/// Server-wide limits and rules the registry applies to every change.
#[derive(Debug, Clone)]
pub struct AppLimits {
    pub max_token_ttl: u64,
    /// `strict_delegation`: a caller without `root` grants (to apps and roles) only scopes it
    /// holds itself.
    pub strict_delegation: bool,
    /// `default_role`: the role new users get unasked. Its scopes reach anyone who registers,
    /// so the rules that guard granting must know which role it is.
    pub default_role: String,
}

pub struct ClientRegistry {
    pub(crate) store: Arc<dyn Storage>,
    grants: GrantStore,
    pub(crate) apps: BTreeMap<String, AppRecord>,
    pub(crate) table: ClientTable,
    pub(crate) clock: SharedClock,
    pub(crate) limits: AppLimits,
    /// Custom scopes by id (built-ins are constants in `policy`).
    pub(crate) scopes: BTreeMap<String, ScopeRecord>,
    /// Custom roles by id (built-ins are constants in `policy`).
    pub(crate) roles: BTreeMap<String, RoleRecord>,
    pub(crate) users: BTreeMap<String, UserRecord>,
    /// Lowercased username and email → auth id: logins and uniqueness without a scan.
    pub(crate) logins: std::collections::HashMap<String, String>,
    pub(crate) user_table: UserTable,
    pub(crate) services: BTreeMap<String, ServiceRecord>,
    pub(crate) api_keys: BTreeMap<String, ApiKeyRecord>,
    pub(crate) service_keys: ServiceKeys,
    /// (service id, user id) of every user linked to a service.
    pub(crate) service_users: std::collections::BTreeSet<(String, String)>,
    pub(crate) subscriptions: BTreeMap<(String, String), SubscriptionRecord>,
    pub(crate) providers: BTreeMap<String, ProviderRecord>,
}

/// The root app's credentials: the operator's, or generated on first start.
pub struct RootCredentials {
    pub client_id: String,
    pub client_secret: String,
}

impl RootCredentials {
    pub fn generate() -> RootCredentials {
        RootCredentials { client_id: new_client_id(), client_secret: new_secret() }
    }
}

const ROOT_MARKER: &str = "root_app_id";

impl ClientRegistry {
    /// Loads every app and publishes them before the actor starts serving.
    pub fn load(
        store: Arc<dyn Storage>,
        grants: GrantStore,
        clock: SharedClock,
        limits: AppLimits,
    ) -> Result<ClientRegistry, StoreError> {
        let table = ClientTable::default();
        let mut apps = BTreeMap::new();
        for app in store.load_apps()? {
            table.put(Client::from_record(&app));
            apps.insert(app.id.clone(), app);
        }
        let scopes = store.load_scopes()?.into_iter().map(|s| (s.id.clone(), s)).collect();
        let roles = store.load_roles()?.into_iter().map(|r| (r.id.clone(), r)).collect();
        let users: BTreeMap<String, UserRecord> =
            store.load_users()?.into_iter().map(|u| (u.auth_id.clone(), u)).collect();
        let logins = crate::registry::users::login_index(users.values());
        let providers = store.load_providers()?.into_iter().map(|p| (p.id.clone(), p)).collect();
        let service_users =
            store.load_service_users()?.into_iter().map(|(s, u, _)| (s, u)).collect();
        let subscriptions = store
            .load_subscriptions()?
            .into_iter()
            .map(|s| ((s.service_id.clone(), s.user_id.clone()), s))
            .collect();
        let services = store.load_services()?.into_iter().map(|s| (s.id.clone(), s)).collect();
        let api_keys = store.load_api_keys()?.into_iter().map(|k| (k.key_id.clone(), k)).collect();
        let registry = ClientRegistry {
            store,
            grants,
            apps,
            table,
            clock,
            limits,
            scopes,
            roles,
            users,
            logins,
            user_table: UserTable::default(),
            services,
            api_keys,
            service_keys: ServiceKeys::default(),
            service_users,
            subscriptions,
            providers,
        };
        registry.publish_service_keys();
        registry.republish_users();
        Ok(registry)
    }

    /// Ends every refresh family of an app (or, with `subject`, of one user of
    /// `tessera-consumer`) that is being disabled or deleted, after every check and before the
    /// change commits: a failed commit then leaves the families ended, never the reverse.
    pub(crate) fn end_families(
        &self,
        client_id: &str,
        subject: Option<&str>,
    ) -> Result<(), RegistryError> {
        self.grants
            .submit_blocking(GrantOp::RevokeClient {
                client_id: client_id.to_string(),
                subject: subject.map(str::to_string),
                horizon: self.clock.now().saturating_add(self.limits.max_token_ttl),
            })
            .map(drop)
            .map_err(|e| RegistryError::Store(StoreError::Io(std::io::Error::other(e.to_string()))))
    }

    pub fn table(&self) -> ClientTable {
        self.table.clone()
    }

    /// True until the root app has been created in this store.
    pub fn needs_root(&self) -> Result<bool, StoreError> {
        Ok(self.store.meta(ROOT_MARKER)?.is_none())
    }

    /// Creates the root app on a store's first start; later starts change nothing.
    pub fn bootstrap_root(&mut self, creds: &RootCredentials) -> Result<(), RegistryError> {
        if !self.needs_root()? {
            return Ok(());
        }
        if creds.client_id == crate::tables::client::CONSUMER_CLIENT_ID {
            return Err(RegistryError::Invalid(format!(
                "TESSERA_ROOT_CLIENT_ID may not be '{}', the client id of user tokens",
                crate::tables::client::CONSUMER_CLIENT_ID
            )));
        }
        if creds.client_secret.chars().count() < 32 {
            return Err(RegistryError::Invalid(
                "TESSERA_ROOT_CLIENT_SECRET must be at least 32 characters".into(),
            ));
        }
        if creds.client_id.is_empty()
            || creds.client_id.len() > 128
            || !creds.client_id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        {
            return Err(RegistryError::Invalid(
                "TESSERA_ROOT_CLIENT_ID must be 1 to 128 characters of [A-Za-z0-9._~-]".into(),
            ));
        }
        let now = self.clock.now();
        let record = AppRecord {
            id: random_token(12),
            client_id: creds.client_id.clone(),
            name: "root".into(),
            description: "Created on first start; holds the root scope.".into(),
            scopes: vec![ROOT.into()],
            grant_types: vec![GRANT_CLIENT_CREDENTIALS.into()],
            is_active: true,
            metadata: Default::default(),
            token_claims: Default::default(),
            access_token_ttl_secs: None,
            public_key_jwk: None,
            secret_hash: to_hex(&hash_secret(&creds.client_secret)),
            next_secret_hash: None,
            created_at: now,
            updated_at: now,
            disabled_at: None,
        };
        let created = self.store.create_root_app(&record, ROOT_MARKER);
        self.publish_new(record, created)
    }

    fn commit_new(&mut self, record: AppRecord) -> Result<(), RegistryError> {
        let created = self.store.create_app(&record);
        self.publish_new(record, created)
    }

    /// After a create: a taken id is a conflict; otherwise the new app goes live.
    fn publish_new(
        &mut self,
        record: AppRecord,
        created: Result<u64, StoreError>,
    ) -> Result<(), RegistryError> {
        created.map_err(|e| match e {
            StoreError::Conflict(what) => RegistryError::Conflict(format!("{what} already exists")),
            other => RegistryError::Store(other),
        })?;
        self.table.put(Client::from_record(&record));
        self.apps.insert(record.id.clone(), record);
        Ok(())
    }

    fn commit_update(&mut self, record: AppRecord) -> Result<AppRecord, RegistryError> {
        self.store.update_app(&record)?;
        self.table.put(Client::from_record(&record));
        self.apps.insert(record.id.clone(), record.clone());
        Ok(record)
    }

    fn existing(&self, id: &str) -> Result<&AppRecord, RegistryError> {
        self.apps.get(id).ok_or(RegistryError::NotFound)
    }

    pub fn create(
        &mut self,
        caller: &Caller,
        input: NewApp,
    ) -> Result<(AppRecord, String), RegistryError> {
        let name = app::check_name(&input.name).map_err(RegistryError::Invalid)?;
        if input.kind.as_deref().is_some_and(|k| k != "s2s") {
            return Err(RegistryError::Invalid("type must be \"s2s\"".into()));
        }
        let scopes = app::check_scopes(&input.scopes).map_err(RegistryError::Invalid)?;
        policy::check_app_scopes(caller, &scopes)?;
        policy::check_delegation(caller, self.limits.strict_delegation, &scopes, &[])?;
        let grant_types = app::check_grant_types(
            input.grant_types.as_deref().unwrap_or(&[GRANT_CLIENT_CREDENTIALS.to_string()]),
        )
        .map_err(RegistryError::Invalid)?;
        app::check_description(&input.description).map_err(RegistryError::Invalid)?;
        app::check_metadata(&input.metadata).map_err(RegistryError::Invalid)?;
        app::check_token_claims(&input.token_claims).map_err(RegistryError::Invalid)?;
        app::check_ttl(input.access_token_ttl_secs, self.limits.max_token_ttl)
            .map_err(RegistryError::Invalid)?;
        if let Some(jwk) = &input.public_key_jwk {
            app::check_public_jwk(jwk).map_err(RegistryError::Invalid)?;
        }
        let secret = new_secret();
        let now = self.clock.now();
        let record = AppRecord {
            id: random_token(12),
            client_id: new_client_id(),
            name,
            description: input.description,
            scopes,
            grant_types,
            is_active: input.is_active.unwrap_or(true),
            metadata: input.metadata,
            token_claims: input.token_claims,
            access_token_ttl_secs: input.access_token_ttl_secs,
            public_key_jwk: input.public_key_jwk,
            secret_hash: to_hex(&hash_secret(&secret)),
            next_secret_hash: None,
            created_at: now,
            updated_at: now,
            disabled_at: None,
        };
        self.commit_new(record.clone())?;
        Ok((record, secret))
    }

    pub fn update(
        &mut self,
        caller: &Caller,
        id: &str,
        patch: AppPatch,
    ) -> Result<AppRecord, RegistryError> {
        let mut record = self.existing(id)?.clone();
        // Rule 1 first: a request carrying root is answered with rule 1's message.
        if let Some(scopes) = &patch.scopes {
            let scopes = app::check_scopes(scopes).map_err(RegistryError::Invalid)?;
            policy::check_app_scopes(caller, &scopes)?;
            policy::check_manage_app(caller, &record.scopes)?;
            policy::check_delegation(
                caller,
                self.limits.strict_delegation,
                &scopes,
                &record.scopes,
            )?;
            record.scopes = scopes;
        } else {
            policy::check_manage_app(caller, &record.scopes)?;
        }
        if let Some(name) = &patch.name {
            record.name = app::check_name(name).map_err(RegistryError::Invalid)?;
        }
        if let Some(description) = patch.description {
            app::check_description(&description).map_err(RegistryError::Invalid)?;
            record.description = description;
        }
        if let Some(grants) = &patch.grant_types {
            record.grant_types = app::check_grant_types(grants).map_err(RegistryError::Invalid)?;
        }
        let is_disabling = record.is_active && patch.is_active == Some(false);
        if let Some(active) = patch.is_active {
            record.is_active = active;
        }
        if let Some(metadata) = patch.metadata {
            app::check_metadata(&metadata).map_err(RegistryError::Invalid)?;
            record.metadata = metadata;
        }
        if let Some(claims) = patch.token_claims {
            app::check_token_claims(&claims).map_err(RegistryError::Invalid)?;
            record.token_claims = claims;
        }
        if let Some(ttl) = patch.access_token_ttl_secs {
            app::check_ttl(ttl, self.limits.max_token_ttl).map_err(RegistryError::Invalid)?;
            record.access_token_ttl_secs = ttl;
        }
        if let Some(jwk) = patch.public_key_jwk {
            if let Some(jwk) = &jwk {
                app::check_public_jwk(jwk).map_err(RegistryError::Invalid)?;
                // Against the scopes after this update: those are what the key will sign for.
                let strict = self.limits.strict_delegation;
                policy::check_app_credential(caller, strict, &record.scopes)?;
            }
            record.public_key_jwk = jwk;
        }
        record.updated_at = self.clock.now();
        if is_disabling {
            // Refused everywhere first, and only then is the disable dated: a request that still
            // saw the app active read its clock before that (the issuer reads it before the
            // lookup), so all it issues is dated at or before `disabledAt` and stays refused after
            // a re-enable — even a family it opens after the families below were ended.
            self.table.put(Client::from_record(&record));
            record.disabled_at = Some(self.clock.now());
            let ended = self.end_families(&record.client_id, None);
            let committed = ended.and_then(|()| self.commit_update(record));
            if committed.is_err() {
                self.republish_app(id);
            }
            return committed;
        }
        self.commit_update(record)
    }

    /// Publishes an app as the store holds it (after a change that did not commit).
    fn republish_app(&self, id: &str) {
        if let Some(app) = self.apps.get(id) {
            self.table.put(Client::from_record(app));
        }
    }

    pub fn delete(&mut self, caller: &Caller, id: &str) -> Result<(), RegistryError> {
        let record = self.existing(id)?;
        policy::check_manage_app(caller, &record.scopes)?;
        let client_id = record.client_id.clone();
        self.end_families(&client_id, None)?;
        self.store.delete_app(id)?;
        self.table.remove(&client_id);
        self.apps.remove(id);
        Ok(())
    }

    /// Stytch-style rotation: `Start` adds a second secret (both work), `Complete` keeps only
    /// the new one, `Cancel` drops the new one.
    pub fn rotate_secret(
        &mut self,
        caller: &Caller,
        id: &str,
        step: RotationStep,
    ) -> Result<(AppRecord, Option<String>), RegistryError> {
        let mut record = self.existing(id)?.clone();
        policy::check_manage_app(caller, &record.scopes)?;
        let mut shown = None;
        match step {
            RotationStep::Start => {
                let strict = self.limits.strict_delegation;
                policy::check_app_credential(caller, strict, &record.scopes)?;
                if record.next_secret_hash.is_some() {
                    return Err(RegistryError::Conflict(
                        "a secret rotation is already under way; complete or cancel it first"
                            .into(),
                    ));
                }
                let secret = new_secret();
                record.next_secret_hash = Some(to_hex(&hash_secret(&secret)));
                shown = Some(secret);
            }
            RotationStep::Complete | RotationStep::Cancel => {
                let Some(next) = record.next_secret_hash.take() else {
                    return Err(RegistryError::Conflict("no secret rotation is under way".into()));
                };
                if step == RotationStep::Complete {
                    record.secret_hash = next;
                }
            }
        }
        record.updated_at = self.clock.now();
        Ok((self.commit_update(record)?, shown))
    }

    pub fn list(&self, page: Page) -> AppPage {
        let size = page.size.clamp(1, Page::MAX_SIZE);
        let skip = page.number.saturating_sub(1).saturating_mul(size);
        AppPage {
            apps: self.apps.values().skip(skip).take(size).cloned().collect(),
            count: self.apps.len(),
        }
    }
}

impl Actor for ClientRegistry {
    type Context = Context<Self>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationStep {
    Start,
    Complete,
    Cancel,
}

/// A page of apps and the total count.
#[derive(Debug, Clone, actix::MessageResponse)]
pub struct AppPage {
    pub apps: Vec<AppRecord>,
    pub count: usize,
}

#[derive(Message)]
#[rtype(result = "AppPage")]
pub struct ListApps(pub Page);

#[derive(Message)]
#[rtype(result = "Result<AppRecord, RegistryError>")]
pub struct GetApp(pub String);

#[derive(Message)]
#[rtype(result = "Result<(AppRecord, String), RegistryError>")]
pub struct CreateApp {
    pub caller: Caller,
    pub app: NewApp,
}

#[derive(Message)]
#[rtype(result = "Result<AppRecord, RegistryError>")]
pub struct UpdateApp {
    pub caller: Caller,
    pub id: String,
    pub patch: AppPatch,
}

#[derive(Message)]
#[rtype(result = "Result<(), RegistryError>")]
pub struct DeleteApp {
    pub caller: Caller,
    pub id: String,
}

#[derive(Message)]
#[rtype(result = "Result<(AppRecord, Option<String>), RegistryError>")]
pub struct RotateSecret {
    pub caller: Caller,
    pub id: String,
    pub step: RotationStep,
}

impl Handler<ListApps> for ClientRegistry {
    type Result = AppPage;
    fn handle(&mut self, msg: ListApps, _: &mut Context<Self>) -> Self::Result {
        self.list(msg.0)
    }
}

impl Handler<GetApp> for ClientRegistry {
    type Result = Result<AppRecord, RegistryError>;
    fn handle(&mut self, msg: GetApp, _: &mut Context<Self>) -> Self::Result {
        self.existing(&msg.0).cloned()
    }
}

impl Handler<CreateApp> for ClientRegistry {
    type Result = Result<(AppRecord, String), RegistryError>;
    fn handle(&mut self, msg: CreateApp, _: &mut Context<Self>) -> Self::Result {
        self.create(&msg.caller, msg.app)
    }
}

impl Handler<UpdateApp> for ClientRegistry {
    type Result = Result<AppRecord, RegistryError>;
    fn handle(&mut self, msg: UpdateApp, _: &mut Context<Self>) -> Self::Result {
        self.update(&msg.caller, &msg.id, msg.patch)
    }
}

impl Handler<DeleteApp> for ClientRegistry {
    type Result = Result<(), RegistryError>;
    fn handle(&mut self, msg: DeleteApp, _: &mut Context<Self>) -> Self::Result {
        self.delete(&msg.caller, &msg.id)
    }
}

impl Handler<RotateSecret> for ClientRegistry {
    type Result = Result<(AppRecord, Option<String>), RegistryError>;
    fn handle(&mut self, msg: RotateSecret, _: &mut Context<Self>) -> Self::Result {
        self.rotate_secret(&msg.caller, &msg.id, msg.step)
    }
}
