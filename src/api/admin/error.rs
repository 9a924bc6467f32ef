//! Admin API errors: `{"error","message"}` with the status docs/api.md, Admin API gives each.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use tessera_core::grants::FlowError;
use tessera_core::keys::KeyRingError;
use tessera_core::oauth::dpop::{ALGORITHMS, ProofError};
use tessera_core::registry::RegistryError;
use tessera_storage::RETRY_UNAVAILABLE_AFTER;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// RFC 6750 §3.1 `invalid_token`: no, bad, expired or revoked token, or its app is gone.
    #[error("the access token is missing, invalid, expired or revoked")]
    Unauthorized,
    /// RFC 9449 §7.1 `invalid_token` under the `DPoP` scheme: the token is not valid, or not
    /// bound to a key.
    #[error("the access token is missing, invalid, expired, revoked or not bound to a DPoP key")]
    DpopToken,
    /// RFC 9449 §7.1 `invalid_dpop_proof`.
    #[error("{}", .0.description())]
    DpopProof(ProofError),
    /// RFC 6750 §3.1 `insufficient_scope`.
    #[error("this call needs the scope '{0}'")]
    Forbidden(&'static str),
    #[error("{0}")]
    BadRequest(String),
    /// Refused to this kind of caller whatever it sends (a service undoing an operator).
    #[error("{0}")]
    Denied(String),
    #[error("not found")]
    NotFound,
    #[error("{message}")]
    Conflict { message: String, safe_at: Option<u64> },
    #[error("the body is too large")]
    TooLarge,
    #[error("the store failed; the change was not made")]
    Internal,
    /// RFC 6585 §4: too many failures from this address; nothing was done.
    #[error("too many failed attempts; retry later")]
    TooMany { retry_after: u64 },
    /// RFC 9110 §15.6.4: the password queue is full; nothing was done.
    #[error("too many sign-ins are being checked; retry shortly")]
    Busy { retry_after: u64 },
    /// RFC 9110 §15.6.4: the shared store cannot be reached; the change was not made (or, cut
    /// off while it committed, may have been: retrying it is safe, as for any lost answer).
    #[error("the store cannot be reached; retry later")]
    Unavailable { retry_after: u64 },
}

impl From<tessera_core::auth::password::PoolError> for AdminError {
    fn from(e: tessera_core::auth::password::PoolError) -> Self {
        match e {
            tessera_core::auth::password::PoolError::Busy => {
                AdminError::Busy { retry_after: tessera_core::auth::password::BUSY_RETRY_AFTER }
            }
            tessera_core::auth::password::PoolError::Stopped
            | tessera_core::auth::password::PoolError::Refused => AdminError::Internal,
        }
    }
}

impl From<tessera_core::auth::password::PolicyRefusal> for AdminError {
    fn from(e: tessera_core::auth::password::PolicyRefusal) -> Self {
        AdminError::BadRequest(e.to_string())
    }
}

impl AdminError {
    pub fn unavailable() -> AdminError {
        AdminError::Unavailable { retry_after: RETRY_UNAVAILABLE_AFTER }
    }

    pub fn from_json(err: actix_web::error::JsonPayloadError) -> AdminError {
        use actix_web::error::JsonPayloadError as E;
        match err {
            E::Overflow { .. } | E::OverflowKnownLength { .. } => AdminError::TooLarge,
            E::ContentType => AdminError::BadRequest("the body must be application/json".into()),
            other => AdminError::BadRequest(format!("invalid JSON body: {other}")),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            AdminError::Unauthorized | AdminError::DpopToken => "invalid_token",
            AdminError::DpopProof(_) => "invalid_dpop_proof",
            AdminError::Forbidden(_) => "insufficient_scope",
            AdminError::BadRequest(_) => "invalid_request",
            AdminError::Denied(_) => "forbidden",
            AdminError::NotFound => "not_found",
            AdminError::Conflict { .. } => "conflict",
            AdminError::TooLarge => "payload_too_large",
            AdminError::Internal => "server_error",
            AdminError::Busy { .. } | AdminError::Unavailable { .. } => "temporarily_unavailable",
            AdminError::TooMany { .. } => "slow_down",
        }
    }
}

impl AdminError {
    /// The refusal of one line of an import, its message saying which.
    fn at_line(self, line: usize) -> AdminError {
        match self {
            AdminError::BadRequest(m) => AdminError::BadRequest(format!("line {line}: {m}")),
            AdminError::Denied(m) => AdminError::Denied(format!("line {line}: {m}")),
            AdminError::Conflict { message, safe_at } => {
                AdminError::Conflict { message: format!("line {line}: {message}"), safe_at }
            }
            other => other,
        }
    }
}

impl From<RegistryError> for AdminError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::NotFound => AdminError::NotFound,
            RegistryError::Invalid { reason, .. } => AdminError::BadRequest(reason),
            RegistryError::Policy(p) => AdminError::BadRequest(p.message().to_string()),
            RegistryError::Conflict(kind) => {
                AdminError::Conflict { message: kind.message(), safe_at: None }
            }
            RegistryError::Forbidden(f) => AdminError::Denied(f.message().to_string()),
            RegistryError::AtLine(line, e) => AdminError::from(*e).at_line(line),
            e if e.is_unavailable() => {
                tracing::warn!(error = %e, "registry change not made: the store cannot be reached");
                AdminError::unavailable()
            }
            e @ (RegistryError::Store(_) | RegistryError::Grants(_) | RegistryError::Stopped) => {
                tracing::error!(error = %e, "registry change not made");
                AdminError::Internal
            }
        }
    }
}

impl From<KeyRingError> for AdminError {
    fn from(e: KeyRingError) -> Self {
        match e {
            KeyRingError::NotSafe { safe_at } => AdminError::Conflict {
                message: format!(
                    "rotation is not safe until {}: the next key has not been published for one JWKS max-age; send {{\"force\":true}} only for a compromised key",
                    super::rfc3339(safe_at)
                ),
                safe_at: Some(safe_at),
            },
            e if e.is_unavailable() => {
                tracing::warn!(error = %e, "key ring change not made: the store cannot be reached");
                AdminError::unavailable()
            }
            e @ (KeyRingError::Store(_) | KeyRingError::Stopped) => {
                tracing::error!(error = %e, "key ring change not made");
                AdminError::Internal
            }
        }
    }
}

impl From<FlowError> for AdminError {
    fn from(e: FlowError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "provider-token step not taken: the store cannot be reached");
            return AdminError::unavailable();
        }
        tracing::error!(error = %e, "provider-token step not taken");
        AdminError::Internal
    }
}

impl From<actix::MailboxError> for AdminError {
    fn from(e: actix::MailboxError) -> Self {
        tracing::error!(error = %e, "actor unavailable");
        AdminError::Internal
    }
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        match self {
            // The node's memory of proofs is full: nothing was judged, and a moment later it can be.
            AdminError::DpopProof(ProofError::Full) => StatusCode::SERVICE_UNAVAILABLE,
            AdminError::Unauthorized | AdminError::DpopToken | AdminError::DpopProof(_) => {
                StatusCode::UNAUTHORIZED
            }
            AdminError::Forbidden(_) | AdminError::Denied(_) => StatusCode::FORBIDDEN,
            AdminError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AdminError::NotFound => StatusCode::NOT_FOUND,
            AdminError::Conflict { .. } => StatusCode::CONFLICT,
            AdminError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AdminError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            AdminError::Busy { .. } | AdminError::Unavailable { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AdminError::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut builder = HttpResponse::build(self.status_code());
        match self {
            AdminError::Unauthorized => {
                builder.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_token\""),
                ));
            }
            AdminError::DpopProof(ProofError::Full) => {
                builder.insert_header((header::RETRY_AFTER, "1"));
            }
            AdminError::DpopToken | AdminError::DpopProof(_) => {
                let error = self.code();
                let algs = ALGORITHMS.join(" ");
                builder.insert_header((
                    header::WWW_AUTHENTICATE,
                    format!("DPoP error=\"{error}\", algs=\"{algs}\""),
                ));
            }
            AdminError::Forbidden(scope) => {
                builder.insert_header((
                    header::WWW_AUTHENTICATE,
                    format!("Bearer error=\"insufficient_scope\", scope=\"{scope}\""),
                ));
            }
            AdminError::Busy { retry_after }
            | AdminError::TooMany { retry_after }
            | AdminError::Unavailable { retry_after } => {
                builder.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            _ => {}
        }
        let mut body = serde_json::json!({ "error": self.code(), "message": self.to_string() });
        if let AdminError::Conflict { safe_at: Some(t), .. } = self {
            body["safeAt"] = serde_json::Value::from(super::rfc3339(*t));
        }
        builder.json(body)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use actix_web::body::MessageBody;
    use tessera_core::grants::GrantError;
    use tessera_storage::{StoreError, Unavailable};

    use super::*;

    fn answer(e: AdminError) -> (u16, Option<String>, serde_json::Value) {
        let res = e.error_response();
        let retry = res.headers().get(header::RETRY_AFTER).map(|v| v.to_str().unwrap().to_string());
        let status = res.status().as_u16();
        let body = res.into_body().try_into_bytes().unwrap_or_default();
        (status, retry, serde_json::from_slice(&body).unwrap())
    }

    fn unreachable() -> StoreError {
        StoreError::Unavailable(Unavailable::Timeout(std::time::Duration::from_secs(2)))
    }

    #[test]
    fn issue_10_an_unreachable_store_is_503_with_retry_after_and_any_other_fault_500() {
        let expected = serde_json::json!({
            "error": "temporarily_unavailable",
            "message": "the store cannot be reached; retry later",
        });
        for e in [
            AdminError::from(RegistryError::from(unreachable())),
            AdminError::from(RegistryError::Grants(GrantError::Store(Arc::new(unreachable())))),
            AdminError::from(KeyRingError::Store(unreachable())),
        ] {
            assert_eq!(answer(e), (503, Some("2".into()), expected.clone()));
        }
        for e in [
            AdminError::from(RegistryError::from(StoreError::Corrupt("x".into()))),
            AdminError::from(RegistryError::Grants(GrantError::Stopped)),
            AdminError::from(KeyRingError::Stopped),
        ] {
            let (status, retry, body) = answer(e);
            assert_eq!((status, retry, body["error"].as_str()), (500, None, Some("server_error")));
        }
    }
}
