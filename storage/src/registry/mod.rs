//! The registry's records — apps, scopes and roles, users, services and their keys, links and
//! subscriptions, providers, resources, trusted issuers — and [`RegistryChange`], the one way they
//! are written: related changes commit together, one version bump each, whatever the backend.

mod app;
mod change;
mod issuer;
mod provider;
mod resource;
mod scope;
mod service;
mod user;
mod write;

pub use app::{AppRecord, FederatedIdentity, TlsClientAuth, TokenQuota};
pub use change::RegistryChange;
pub(crate) use change::{Key, Row, Table};
pub use issuer::IssuerRecord;
pub use provider::ProviderRecord;
pub(crate) use provider::StoredProvider;
pub use resource::ResourceRecord;
pub use scope::{RoleRecord, ScopeRecord};
pub use service::{ApiKeyRecord, ServiceRecord, SubscriptionRecord};
pub use user::{DisabledBy, UserRecord};
pub(crate) use write::only;
pub use write::{RegistryWrite, WriteOutcomes};
