//! Workload identity federation: external issuers (Kubernetes, GitHub Actions, SPIFFE, any
//! OIDC provider) whose signed tokens authenticate apps with no secret (docs/api.md,
//! "Workload identity federation").

pub mod assertion;
pub mod jwks;
pub mod subject;
pub mod trust;

pub use assertion::{Federated, Identity, IssuerRules, Refusal};
pub use subject::{PatternError, SubjectPattern};
pub use trust::{Federation, TrustedIssuer};
