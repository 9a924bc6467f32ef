//! The token hot path: authenticate, grant, mint, sign, verify. Keeps the architecture invariant
//! that issuing an access token does no disk I/O, no actor round trip and holds no lock across
//! `.await` (ARCHITECTURE.md).

pub mod bearer;
pub mod claims;
pub mod exchange;
pub mod issuer;
pub mod jws;
pub mod quota;
pub mod refresh;
pub mod reuse;
pub mod verified;
