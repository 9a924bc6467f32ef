//! Who asks for a change, and the audit events their calls leave (docs/api.md, Audit log).
//! The owners of state (`registry`, `keys`, `grants`) write each event in the commit of the
//! change it records; this module names the asker and tells the log's readers.

use tessera_storage::{AuditEvent, AuditOutcome, Logged};

use crate::grants::{GrantError, GrantStore};

/// Who asks, and through which request: carried with every write to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    actor: String,
    request_id: Option<String>,
    /// Refusals are recorded for callers who proved who they are; an anonymous caller's
    /// refused attempts (a taken username at sign-up) would let anyone fill the log.
    records_refusals: bool,
}

impl Origin {
    /// An app, by its client id, through the admin API.
    pub fn app(client_id: &str, request_id: Option<&str>) -> Origin {
        Origin::named(format!("app:{client_id}"), request_id, true)
    }

    /// A service, through the service API.
    pub fn service(service_id: &str, request_id: Option<&str>) -> Origin {
        Origin::named(format!("service:{service_id}"), request_id, true)
    }

    /// Someone not signed in: registration and invitations.
    pub fn anonymous(request_id: Option<&str>) -> Origin {
        Origin::named("anonymous".into(), request_id, false)
    }

    /// The operator, through the CLI on a stopped server's data directory.
    pub fn operator() -> Origin {
        Origin::named("operator".into(), None, true)
    }

    /// The server itself: scheduled rotations, limits tripped.
    pub fn system() -> Origin {
        Origin::named("system".into(), None, true)
    }

    fn named(actor: String, request_id: Option<&str>, records_refusals: bool) -> Origin {
        Origin { actor, request_id: request_id.map(str::to_string), records_refusals }
    }

    pub fn records_refusals(&self) -> bool {
        self.records_refusals
    }

    /// The event of a call that changed something.
    pub fn success(&self, action: &str, target: Option<String>, at: u64) -> AuditEvent {
        self.event(action, target, AuditOutcome::Success, None, at)
    }

    /// The event of a refused call, which changed nothing.
    pub fn refusal(
        &self,
        action: &str,
        target: Option<String>,
        reason: String,
        at: u64,
    ) -> AuditEvent {
        self.event(action, target, AuditOutcome::Refused, Some(reason), at)
    }

    fn event(
        &self,
        action: &str,
        target: Option<String>,
        outcome: AuditOutcome,
        reason: Option<String>,
        at: u64,
    ) -> AuditEvent {
        AuditEvent {
            at,
            actor: self.actor.clone(),
            action: action.to_string(),
            target,
            outcome,
            reason,
            request_id: self.request_id.clone(),
        }
    }
}

/// Tells an event that has committed to the `audit` tracing target, so that a log pipeline
/// sees it as well as `GET /api/v1/audit`.
pub fn emit(event: &AuditEvent) {
    tracing::info!(
        target: "audit",
        actor = %event.actor,
        action = %event.action,
        target_id = event.target.as_deref(),
        outcome = ?event.outcome,
        reason = event.reason.as_deref(),
        request_id = event.request_id.as_deref(),
        "audit"
    );
}

/// Pages the audit log for its readers. Reads go straight to the store, as the grant store
/// lends it for reads (and takes back when the server stops): the log only grows at its end
/// and a page is one ordered range read, so no owner needs to stand between.
#[derive(Clone)]
pub struct AuditLog {
    grants: GrantStore,
}

impl AuditLog {
    pub fn new(grants: GrantStore) -> AuditLog {
        AuditLog { grants }
    }

    /// Up to `limit` events after cursor `after`, oldest first (blocking: run it off the
    /// workers).
    pub fn after(&self, after: u64, limit: usize) -> Result<Vec<Logged>, GrantError> {
        let store = self.grants.store()?;
        store.audit_after(after, limit).map_err(|e| GrantError::Store(std::sync::Arc::new(e)))
    }
}
