//! The registry actor, the one owner of apps, secrets, scopes, roles, users, services, API keys,
//! subscriptions and providers: every change is checked against `policy`, committed durably, and
//! only then published to the tables.

#[macro_use]
mod macros;

pub mod app;
pub mod clients;
pub mod providers;
pub mod scopes;
pub mod service_users;
pub mod services;
pub mod users;
