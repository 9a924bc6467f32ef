//! Registry changes, and the one mapping from a change to the row it writes: every backend
//! applies the same rows and logs the same "kind:id" entries, so followers read one change log
//! whichever backend wrote it.

use crate::record::encode;
use crate::registry::provider::StoredProvider;
use crate::{
    ApiKeyRecord, AppRecord, Kek, ProviderRecord, RoleRecord, ScopeRecord, ServiceRecord,
    StoreError, SubscriptionRecord, UserRecord,
};

/// One registry change. Related changes (a scope renamed, and every app and role that named
/// it) are applied together in one transaction.
#[derive(Debug, Clone)]
pub enum RegistryChange {
    PutApp(AppRecord),
    PutScope(ScopeRecord),
    DeleteScope(String),
    PutRole(RoleRecord),
    DeleteRole(String),
    PutUser(UserRecord),
    DeleteUser(String),
    PutService(ServiceRecord),
    DeleteService(String),
    PutApiKey(ApiKeyRecord),
    DeleteApiKey(String),
    /// A user linked to a service: (service id, user id, when).
    LinkUser(String, String, u64),
    UnlinkUser(String, String),
    PutSubscription(SubscriptionRecord),
    /// (service id, user id).
    DeleteSubscription(String, String),
    PutProvider(ProviderRecord),
    DeleteProvider(String),
}

/// The registry tables that hold an encoded record under its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    Apps,
    Scopes,
    Roles,
    Users,
    Services,
    ApiKeys,
    Subscriptions,
    Providers,
}

impl Table {
    /// The kind a change is logged under, which followers match on.
    fn kind(self) -> &'static str {
        match self {
            Table::Apps => "app",
            Table::Scopes => "scope",
            Table::Roles => "role",
            Table::Users => "user",
            Table::Services => "service",
            Table::ApiKeys => "api_key",
            Table::Subscriptions => "subscription",
            Table::Providers => "provider",
        }
    }
}

/// A row's key: a record's id, or (service id, user id) for a link or a subscription. Each
/// backend lays a pair out its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key<'a> {
    Id(&'a str),
    Pair(&'a str, &'a str),
}

/// What one registry change writes: a value to put, or `None` to delete. No row carries a
/// condition: the registry's one owner has checked every change against its state before it
/// sends them (ARCHITECTURE.md, "every state change has exactly one owner"), and deleting an
/// absent row is not an error.
#[derive(Debug)]
pub(crate) enum Row<'a> {
    Record {
        table: Table,
        key: Key<'a>,
        value: Option<Vec<u8>>,
    },
    /// A service-user link holds only when it was made, not a record.
    Link {
        key: Key<'a>,
        at: Option<u64>,
    },
}

impl Row<'_> {
    /// The change-log entry: "kind:id", or "kind:service id:user id" for a pair.
    pub(crate) fn logged(&self) -> String {
        let (kind, key) = match self {
            Row::Record { table, key, .. } => (table.kind(), key),
            Row::Link { key, .. } => ("service_user", key),
        };
        match key {
            Key::Id(id) => format!("{kind}:{id}"),
            Key::Pair(service, user) => format!("{kind}:{service}:{user}"),
        }
    }
}

impl RegistryChange {
    /// The row this change writes. A provider's client secret is sealed under `kek` here, so no
    /// backend ever holds it in the clear.
    pub(crate) fn row(&self, kek: Option<&Kek>) -> Result<Row<'_>, StoreError> {
        use RegistryChange as C;
        use Table::*;
        let put = |table, key, value| Row::Record { table, key, value: Some(value) };
        let delete = |table, key| Row::Record { table, key, value: None };
        Ok(match self {
            C::PutApp(app) => put(Apps, Key::Id(&app.id), encode(app)),
            C::PutScope(scope) => put(Scopes, Key::Id(&scope.id), encode(scope)),
            C::DeleteScope(id) => delete(Scopes, Key::Id(id)),
            C::PutRole(role) => put(Roles, Key::Id(&role.id), encode(role)),
            C::DeleteRole(id) => delete(Roles, Key::Id(id)),
            C::PutUser(user) => put(Users, Key::Id(&user.auth_id), encode(user)),
            C::DeleteUser(id) => delete(Users, Key::Id(id)),
            C::PutService(service) => put(Services, Key::Id(&service.id), encode(service)),
            C::DeleteService(id) => delete(Services, Key::Id(id)),
            C::PutApiKey(key) => put(ApiKeys, Key::Id(&key.key_id), encode(key)),
            C::DeleteApiKey(id) => delete(ApiKeys, Key::Id(id)),
            C::LinkUser(service, user, at) => {
                Row::Link { key: Key::Pair(service, user), at: Some(*at) }
            }
            C::UnlinkUser(service, user) => Row::Link { key: Key::Pair(service, user), at: None },
            C::PutSubscription(sub) => {
                put(Subscriptions, Key::Pair(&sub.service_id, &sub.user_id), encode(sub))
            }
            C::DeleteSubscription(service, user) => delete(Subscriptions, Key::Pair(service, user)),
            C::PutProvider(p) => {
                put(Providers, Key::Id(&p.id), encode(&StoredProvider::seal(p, kek)?))
            }
            C::DeleteProvider(id) => delete(Providers, Key::Id(id)),
        })
    }
}
