//! The registry: the one owner of apps and their secrets, scopes, roles, users, services with
//! their API keys, providers and resources. Every change passes `policy`, commits durably (the
//! changes that queue up while a commit runs go in one transaction: `batch`), and only then
//! reaches the published tables (`tables/`) that the hot path reads; one module per record kind.

mod apply;
pub mod apps;
mod audit;
mod batch;
mod error;
pub mod follow;
mod handle;
pub mod issuers;
mod page;
pub mod providers;
pub mod resources;
pub mod scopes;
pub mod services;
pub mod users;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use actix::{Actor, Context};
use tessera_storage::{
    ApiKeyRecord, GrantOp, IssuerRecord, ProviderRecord, ResourceRecord, RoleRecord, ScopeRecord,
    ServiceRecord, Storage, StoreError, SubscriptionRecord, UserRecord,
};

use crate::auth::secret::{new_client_id, new_secret};
use crate::clock::SharedClock;
use crate::federation::Federation;
use crate::grants::GrantStore;
use crate::tables::client::ClientTable;
use crate::tables::service_keys::ServiceKeys;
use crate::tables::user::UserTable;

pub use error::{ConflictKind, Forbidden, RegistryError};
pub use handle::RegistryHandle;
pub use page::{Listed, Page};

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
    /// The audiences of Tessera's own tokens (the issuer, `default_audience`): no resource may
    /// take one, or its tokens would open the admin API.
    pub own_audiences: Vec<String>,
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

/// Records per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub apps: usize,
    pub users: usize,
    pub services: usize,
    pub resources: usize,
    pub issuers: usize,
}

pub struct Registry {
    store: Arc<dyn Storage>,
    grants: GrantStore,
    clock: SharedClock,
    limits: AppLimits,
    /// Every app once, as the client the token path reads (`apps/index.rs`).
    apps: apps::index::AppIndex,
    /// Custom scopes by id (built-ins are constants in `policy`).
    scopes: BTreeMap<String, ScopeRecord>,
    /// Custom roles by id (built-ins are constants in `policy`).
    roles: BTreeMap<String, RoleRecord>,
    users: BTreeMap<String, UserRecord>,
    /// Lowercased username and email → auth id: logins and uniqueness without a scan.
    logins: HashMap<String, String>,
    services: BTreeMap<String, ServiceRecord>,
    api_keys: BTreeMap<String, ApiKeyRecord>,
    /// (service id, user id) of every user linked to a service.
    service_users: BTreeSet<(String, String)>,
    subscriptions: BTreeMap<(String, String), SubscriptionRecord>,
    providers: BTreeMap<String, ProviderRecord>,
    /// Resources by id.
    resources: BTreeMap<String, ResourceRecord>,
    /// Trusted issuers by id.
    issuers: BTreeMap<String, IssuerRecord>,
    /// The trusted issuers as the token path reads them.
    federation: Arc<Federation>,
    client_table: ClientTable,
    user_table: UserTable,
    service_keys: ServiceKeys,
    /// The event the command now running will leave, if it is audited.
    audit: Option<audit::Pending>,
    /// What is queued for the next group commit.
    batch: batch::Batch,
}

impl Registry {
    fn counts(&self) -> Counts {
        Counts {
            apps: self.apps.len(),
            users: self.users.len(),
            services: self.services.len(),
            resources: self.resources.len(),
            issuers: self.issuers.len(),
        }
    }

    /// Loads every record and publishes the tables before the actor starts serving.
    pub fn load(
        store: Arc<dyn Storage>,
        grants: GrantStore,
        clock: SharedClock,
        limits: AppLimits,
    ) -> Result<Registry, StoreError> {
        let users = keyed(store.load_users()?, |u| u.auth_id.clone());
        let mut registry = Registry {
            apps: apps::index::AppIndex::default(),
            scopes: keyed(store.load_scopes()?, |s| s.id.clone()),
            roles: keyed(store.load_roles()?, |r| r.id.clone()),
            logins: users::login_index(users.values()),
            users,
            services: keyed(store.load_services()?, |s| s.id.clone()),
            api_keys: keyed(store.load_api_keys()?, |k| k.key_id.clone()),
            service_users: store
                .load_service_users()?
                .into_iter()
                .map(|(s, u, _)| (s, u))
                .collect(),
            subscriptions: store
                .load_subscriptions()?
                .into_iter()
                .map(|s| ((s.service_id.clone(), s.user_id.clone()), s))
                .collect(),
            providers: keyed(store.load_providers()?, |p| p.id.clone()),
            resources: keyed(store.load_resources()?, |r| r.id.clone()),
            issuers: keyed(store.load_issuers()?, |i| i.id.clone()),
            federation: Arc::default(),
            client_table: ClientTable::default(),
            user_table: UserTable::default(),
            service_keys: ServiceKeys::default(),
            audit: None,
            batch: batch::Batch::default(),
            store,
            grants,
            clock,
            limits,
        };
        // After the resources: grants are published with their lifetimes.
        registry.apps.load(&*registry.store, &registry.resources)?;
        registry.client_table = ClientTable::with_capacity(registry.apps.len());
        for (_, client) in registry.apps.iter() {
            registry.client_table.put(Arc::clone(client));
        }
        for key in registry.api_keys.values() {
            registry.service_keys.put(key);
        }
        registry.republish_users();
        registry.publish_issuers();
        // A custom scope stored before a built-in took its name now grants the built-in's power
        // to whoever holds it: the operator must hear of it.
        for scope in registry.scopes.values().filter(|s| crate::policy::is_built_in_scope(&s.name))
        {
            tracing::warn!(scope = %scope.name, id = %scope.id, "a custom scope has a built-in scope's name; whoever holds it holds the built-in");
        }
        Ok(registry)
    }

    /// The published apps, for the issuer.
    pub fn client_table(&self) -> ClientTable {
        self.client_table.clone()
    }

    /// The trusted issuers, for the issuer.
    pub fn federation(&self) -> Arc<Federation> {
        self.federation.clone()
    }

    /// The published users, for the issuer.
    pub fn user_table(&self) -> UserTable {
        self.user_table.clone()
    }

    /// The published service API keys, for `X-API-Key`.
    pub fn service_keys(&self) -> ServiceKeys {
        self.service_keys.clone()
    }

    /// Ends every refresh family of an app (or, with `subject`, of one user of
    /// `tessera-consumer`) that is being disabled or deleted, after every check and before the
    /// change commits: a failed commit then leaves the families ended, never the reverse.
    fn end_families(&self, client_id: &str, subject: Option<&str>) -> Result<(), RegistryError> {
        self.grants.submit_blocking(GrantOp::RevokeClient {
            client_id: client_id.to_string(),
            subject: subject.map(str::to_string),
            horizon: self.clock.now().saturating_add(self.limits.max_token_ttl),
        })?;
        Ok(())
    }
}

fn keyed<T>(rows: Vec<T>, key: impl Fn(&T) -> String) -> BTreeMap<String, T> {
    rows.into_iter().map(|r| (key(&r), r)).collect()
}

/// How many commands may wait in the mailbox, and so at most how many share a group commit.
const MAILBOX: usize = 1024;

impl Actor for Registry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX);
    }

    fn stopping(&mut self, _: &mut Context<Self>) -> actix::Running {
        self.flush();
        actix::Running::Stop
    }
}
