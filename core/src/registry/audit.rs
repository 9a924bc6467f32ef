//! The registry's side of the audit log: each audited command opens a pending event, the one
//! commit the command makes carries it (logged once that commit is durable), and a refusal
//! leaves an event of its own that changes nothing else. A command that changes nothing (a patch equal to what is held) leaves none.

use tessera_storage::{AuditEvent, RegistryChange, RegistryWrite};

use super::{Registry, RegistryError};
use crate::audit::Origin;

/// The event a running command will leave.
pub(super) struct Pending {
    origin: Origin,
    action: &'static str,
    /// "kind:id" named by the command's arguments; a create learns it from its commit.
    target: Option<String>,
    is_written: bool,
}

impl Registry {
    pub(super) fn begin_audit(
        &mut self,
        origin: Origin,
        action: &'static str,
        target: Option<String>,
    ) {
        self.audit = Some(Pending { origin, action, target, is_written: false });
    }

    /// The success event for the commit about to be made, whose first record is `first`;
    /// none outside an audited command or once its event is written.
    pub(super) fn audit_event(&self, first: Option<String>) -> Option<AuditEvent> {
        let pending = self.audit.as_ref().filter(|p| !p.is_written)?;
        let target = pending.target.clone().or(first);
        Some(pending.origin.success(pending.action, target, self.clock.now()))
    }

    /// The commit carrying `event` is queued; it is logged once durable.
    pub(super) fn audit_staged(&mut self, event: &Option<AuditEvent>) {
        if let (Some(_), Some(pending)) = (event, self.audit.as_mut()) {
            pending.is_written = true;
        }
    }

    /// Ends the command: a refusal is recorded on its own. A failure of the store or of the
    /// actor is no refusal (nothing was decided), and nothing more can be written then anyway.
    pub(super) fn end_audit<T>(&mut self, result: &Result<T, RegistryError>) {
        let Some(pending) = self.audit.take() else { return };
        let Err(error) = result else { return };
        let is_refusal = !matches!(
            error,
            RegistryError::Store(_) | RegistryError::Grants(_) | RegistryError::Stopped
        );
        if pending.is_written || !is_refusal || !pending.origin.records_refusals() {
            return;
        }
        let event = pending.origin.refusal(
            pending.action,
            pending.target,
            error.to_string(),
            self.clock.now(),
        );
        self.stage(RegistryWrite::Changes(vec![RegistryChange::Audit(event)]));
    }
}
