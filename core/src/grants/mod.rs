//! Grant state — refresh-token families, revocations, used assertions, provider-token requests —
//! owned by the `GrantStore` committer thread: nothing is acknowledged before its group commit.
//! `ProviderFlow` is the provider-token flow's domain steps over it, with the one client of the
//! providers' token endpoints.

mod provider_exchange;
mod provider_flow;
mod store;

pub use provider_exchange::ExchangeError;
pub use provider_flow::*;
pub use store::*;
