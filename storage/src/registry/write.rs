//! One registry commit as a unit of a group commit: the registry queues the commits of the
//! commands that arrive while one is running and hands them over together, and each backend
//! writes them in one transaction, so a burst of admin writes pays for one sync.

use crate::{AppRecord, AuditEvent, RegistryChange, StoreError};

/// What one command commits. App writes carry conditions (a create needs free ids, an update
/// or delete an app that is there) that are checked, inside the transaction, against what the
/// writes before them left; every other change has been checked by the registry already.
#[derive(Debug, Clone)]
pub enum RegistryWrite {
    CreateApp(AppRecord, Option<AuditEvent>),
    UpdateApp(AppRecord, Option<AuditEvent>),
    DeleteApp(String, Option<AuditEvent>),
    /// New apps, all or none: a taken id or client id refuses them all. Logged as one change.
    ImportApps(Vec<AppRecord>, Option<AuditEvent>),
    /// Related changes, each bumping the version once; an audit event among them is appended.
    Changes(Vec<RegistryChange>),
}

/// Each write's outcome: the version it left, or the condition it failed (and wrote nothing).
pub type WriteOutcomes = Vec<Result<u64, StoreError>>;

impl StoreError {
    /// Whether this is a write's condition failing (a taken id, a missing record), which
    /// leaves that write out and the rest of its batch to commit, rather than a fault of the
    /// store, which fails the batch.
    pub fn is_condition(&self) -> bool {
        matches!(self, StoreError::Conflict(_) | StoreError::NotFound)
    }
}

/// The outcome of a batch of one.
pub(crate) fn only(outcomes: Result<WriteOutcomes, StoreError>) -> Result<u64, StoreError> {
    outcomes?.into_iter().next().unwrap_or(Ok(0))
}
