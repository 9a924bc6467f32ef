//! What a registry command answers when it refuses: typed, so the HTTP layer picks the status
//! and the CLI the exit code, while every message lives here once.

use std::sync::Arc;

use tessera_storage::StoreError;

use crate::grants::GrantError;
use crate::policy::PolicyError;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("not found")]
    NotFound,
    /// A field's value is refused; `reason` is the whole sentence shown to the caller.
    #[error("{reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("{}", .0.message())]
    Policy(PolicyError),
    #[error("{}", .0.message())]
    Conflict(ConflictKind),
    /// Allowed to no caller of this kind, whatever it sends (the service API's `403`).
    #[error("{}", .0.message())]
    Forbidden(Forbidden),
    /// The store did not commit. Shared: one failed group commit fails every command in it.
    #[error(transparent)]
    Store(Arc<StoreError>),
    /// Ending refresh families (before a disable or delete) did not commit.
    #[error(transparent)]
    Grants(#[from] GrantError),
    /// The registry actor is gone (the server is stopping).
    #[error("the registry is not running")]
    Stopped,
    /// An import refused at this line of its file, for this reason.
    #[error("line {0}: {1}")]
    AtLine(usize, Box<RegistryError>),
}

impl RegistryError {
    /// Whether the change was not made because the shared database could not be reached.
    pub fn is_unavailable(&self) -> bool {
        match self {
            RegistryError::Store(e) => e.is_unavailable(),
            RegistryError::AtLine(_, e) => e.is_unavailable(),
            RegistryError::Grants(e) => e.is_unavailable(),
            _ => false,
        }
    }

    pub fn invalid(field: &'static str, reason: impl Into<String>) -> RegistryError {
        RegistryError::Invalid { field, reason: reason.into() }
    }
}

impl From<StoreError> for RegistryError {
    fn from(e: StoreError) -> Self {
        RegistryError::Store(Arc::new(e))
    }
}

impl From<PolicyError> for RegistryError {
    fn from(e: PolicyError) -> Self {
        RegistryError::Policy(e)
    }
}

impl From<ConflictKind> for RegistryError {
    fn from(kind: ConflictKind) -> Self {
        RegistryError::Conflict(kind)
    }
}

/// A change that contradicts what the registry already holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConflictKind {
    /// The store refused a create: this identifier is taken.
    Taken(&'static str),
    ScopeName(String),
    RoleName(String),
    ProviderName(String),
    ResourceIdentifier(String),
    /// An issuer with this URL is already trusted.
    Issuer,
    /// Apps' federated identities name the issuer.
    IssuerInUse,
    Login,
    Subscription,
    RotationUnderWay,
    NoRotation,
}

impl ConflictKind {
    pub fn message(&self) -> String {
        match self {
            ConflictKind::Taken(what) => format!("{what} already exists"),
            ConflictKind::ScopeName(name) => format!("a scope named '{name}' already exists"),
            ConflictKind::RoleName(name) => format!("a role named '{name}' already exists"),
            ConflictKind::ProviderName(name) => format!("a provider named '{name}' already exists"),
            ConflictKind::ResourceIdentifier(identifier) => {
                format!("a resource with the identifier '{identifier}' already exists")
            }
            ConflictKind::Issuer => "an issuer with that issuer URL is already registered".into(),
            ConflictKind::IssuerInUse => {
                "apps' federated identities name this issuer; remove them first".into()
            }
            ConflictKind::Login => "a user with that username or email already exists".into(),
            ConflictKind::Subscription => "the user already has a subscription; PATCH it".into(),
            ConflictKind::RotationUnderWay => {
                "a secret rotation is already under way; complete or cancel it first".into()
            }
            ConflictKind::NoRotation => "no secret rotation is under way".into(),
        }
    }
}

/// Refusals that depend on who the caller is, not on what it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forbidden {
    /// A service tried to undo an operator's deactivation.
    OperatorDisabled,
}

impl Forbidden {
    pub fn message(self) -> &'static str {
        match self {
            Forbidden::OperatorDisabled => {
                "This user was deactivated by an operator; only an operator can activate it again."
            }
        }
    }
}
