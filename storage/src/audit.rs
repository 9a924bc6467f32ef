//! The audit log: who changed what, and what was refused. An event is written in the
//! transaction of the change it records, so the log never claims a change that did not commit
//! nor misses one that did. Events carry ids, names and reasons, never a secret.

use serde::{Deserialize, Serialize};

/// One audit event as it is stored and answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Unix seconds.
    pub at: u64,
    /// Who asked: "app:<client id>", "service:<id>", "user:<auth id>", "operator", "system".
    pub actor: String,
    /// What was asked, "<kind>.<verb>" ("app.create", "key.rotate", "refresh_token.reuse").
    pub action: String,
    /// "<kind>:<id>" of the record acted on, when there is one.
    pub target: Option<String>,
    pub outcome: AuditOutcome,
    /// Why a call was refused.
    pub reason: Option<String>,
    /// The HTTP request that asked, when one did.
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditOutcome {
    /// The change committed with this event.
    Success,
    /// The call was refused and changed nothing.
    Refused,
}

impl AuditEvent {
    /// A spent refresh token came back, so its family ended in the same commit (RFC 9700
    /// §4.14.2). Written by the store, which alone sees the reuse inside the transaction.
    pub fn refresh_reuse(client_id: &str, family: &str, now: u64) -> AuditEvent {
        AuditEvent {
            at: now,
            actor: format!("app:{client_id}"),
            action: "refresh_token.reuse".into(),
            target: Some(format!("family:{family}")),
            outcome: AuditOutcome::Success,
            reason: Some("a spent refresh token was presented again; its family is revoked".into()),
            request_id: None,
        }
    }
}

/// An event with its place in the log: the cursor a reader passes back as `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub seq: u64,
    pub event: AuditEvent,
}
