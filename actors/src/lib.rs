//! Tessera's state owners and the pure rules they apply.
//!
//! Actors (`KeyRing`, `ClientRegistry`) own every piece of mutable state and publish snapshots
//! (`KeySet`, `ClientTable`) that the token hot path reads without a message hop. Nothing here
//! knows about HTTP.

#[macro_use]
mod macros;

pub mod app;
pub mod assertion;
pub mod claims;
pub mod client;
pub mod clients;
pub mod clock;
pub mod connect_form;
pub mod fuzzing;
pub mod grants;
pub mod issuer;
pub mod jws;
pub mod keys;
pub mod keyset;
pub mod limiter;
pub mod oauth;
pub mod password;
pub mod policy;
pub mod providers;
pub mod request;
pub mod ring;
pub mod scopes;
pub mod secret;
pub mod service_users;
pub mod services;
pub mod url_rule;
pub mod users;
