//! Registry changes, and the one mapping from a change to the row it writes: every backend
//! applies the same rows and logs the same "kind:id" entries, so followers read one change log
//! whichever backend wrote it.

use crate::record::encode;
use crate::registry::provider::StoredProvider;
use crate::{
    ApiKeyRecord, AppRecord, AuditEvent, IssuerRecord, Kek, ProviderRecord, ResourceRecord,
    RoleRecord, ScopeRecord, ServiceRecord, StoreError, SubscriptionRecord, UserRecord,
};

/// One registry change. Related changes (a scope renamed, and every app and role that named
/// it) are applied together in one transaction.
#[derive(Debug, Clone)]
// A change lives for one commit, in batches of a few: boxing every app it carries would buy
// nothing but an allocation.
#[allow(clippy::large_enum_variant)]
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
    PutResource(ResourceRecord),
    DeleteResource(String),
    PutIssuer(IssuerRecord),
    DeleteIssuer(String),
    /// The audit event of the changes it travels with; no follower reads it.
    Audit(AuditEvent),
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
    Resources,
    Issuers,
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
            Table::Resources => "resource",
            Table::Issuers => "issuer",
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
    /// Appended to the audit log at the next position.
    Audit(&'a AuditEvent),
}

impl Row<'_> {
    /// The change-log entry: "kind:id", or "kind:service id:user id" for a pair; none for an
    /// audit event, which no follower needs.
    pub(crate) fn logged(&self) -> Option<String> {
        match self {
            Row::Record { table, key, .. } => Some(entry(table.kind(), key)),
            Row::Link { key, .. } => Some(entry("service_user", key)),
            Row::Audit(_) => None,
        }
    }
}

impl RegistryChange {
    /// The row this change writes. A provider's client secret is sealed under `kek` here, so no
    /// backend ever holds it in the clear.
    pub(crate) fn row(&self, kek: Option<&Kek>) -> Result<Row<'_>, StoreError> {
        use RegistryChange as C;
        let (table, key) = match (self, self.place()) {
            (C::Audit(event), _) => return Ok(Row::Audit(event)),
            (C::LinkUser(_, _, at), Some((_, key))) => return Ok(Row::Link { key, at: Some(*at) }),
            (C::UnlinkUser(..), Some((_, key))) => return Ok(Row::Link { key, at: None }),
            (_, Some((Some(table), key))) => (table, key),
            _ => return Err(StoreError::Corrupt("a change without a row".into())),
        };
        let value = match self {
            C::PutApp(app) => Some(encode(app)),
            C::PutScope(scope) => Some(encode(scope)),
            C::PutRole(role) => Some(encode(role)),
            C::PutUser(user) => Some(encode(user)),
            C::PutService(service) => Some(encode(service)),
            C::PutApiKey(key) => Some(encode(key)),
            C::PutSubscription(sub) => Some(encode(sub)),
            C::PutProvider(p) => Some(encode(&StoredProvider::seal(p, kek)?)),
            C::PutResource(r) => Some(encode(r)),
            C::PutIssuer(i) => Some(encode(i)),
            C::DeleteScope(_)
            | C::DeleteRole(_)
            | C::DeleteUser(_)
            | C::DeleteService(_)
            | C::DeleteApiKey(_)
            | C::DeleteSubscription(..)
            | C::DeleteProvider(_)
            | C::DeleteResource(_)
            | C::DeleteIssuer(_) => None,
            C::LinkUser(..) | C::UnlinkUser(..) | C::Audit(_) => {
                return Err(StoreError::Corrupt("a change without a record".into()));
            }
        };
        Ok(Row::Record { table, key, value })
    }

    /// "kind:id" of the record this change writes, as the change log names it; none for an
    /// audit event. The audit log names an event's target this way.
    pub fn entry(&self) -> Option<String> {
        let (table, key) = self.place()?;
        Some(entry(table.map_or("service_user", Table::kind), &key))
    }

    /// The table (none for a service-user link) and key this change writes.
    fn place(&self) -> Option<(Option<Table>, Key<'_>)> {
        use RegistryChange as C;
        use Table::*;
        let (table, key) = match self {
            C::PutApp(app) => (Apps, Key::Id(&app.id)),
            C::PutScope(scope) => (Scopes, Key::Id(&scope.id)),
            C::DeleteScope(id) => (Scopes, Key::Id(id)),
            C::PutRole(role) => (Roles, Key::Id(&role.id)),
            C::DeleteRole(id) => (Roles, Key::Id(id)),
            C::PutUser(user) => (Users, Key::Id(&user.auth_id)),
            C::DeleteUser(id) => (Users, Key::Id(id)),
            C::PutService(service) => (Services, Key::Id(&service.id)),
            C::DeleteService(id) => (Services, Key::Id(id)),
            C::PutApiKey(key) => (ApiKeys, Key::Id(&key.key_id)),
            C::DeleteApiKey(id) => (ApiKeys, Key::Id(id)),
            C::LinkUser(service, user, _) | C::UnlinkUser(service, user) => {
                return Some((None, Key::Pair(service, user)));
            }
            C::PutSubscription(sub) => (Subscriptions, Key::Pair(&sub.service_id, &sub.user_id)),
            C::DeleteSubscription(service, user) => (Subscriptions, Key::Pair(service, user)),
            C::PutProvider(p) => (Providers, Key::Id(&p.id)),
            C::DeleteProvider(id) => (Providers, Key::Id(id)),
            C::PutResource(r) => (Resources, Key::Id(&r.id)),
            C::DeleteResource(id) => (Resources, Key::Id(id)),
            C::PutIssuer(i) => (Issuers, Key::Id(&i.id)),
            C::DeleteIssuer(id) => (Issuers, Key::Id(id)),
            C::Audit(_) => return None,
        };
        Some((Some(table), key))
    }
}

/// "kind:id", or "kind:service id:user id" for a pair.
fn entry(kind: &str, key: &Key<'_>) -> String {
    match key {
        Key::Id(id) => format!("{kind}:{id}"),
        Key::Pair(service, user) => format!("{kind}:{service}:{user}"),
    }
}
