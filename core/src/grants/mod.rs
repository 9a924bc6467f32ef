//! Grant state — refresh-token families, revocations, used assertions, provider-token requests —
//! owned by the `GrantStore` committer thread: nothing is acknowledged before its group commit.

mod store;

pub use store::*;
