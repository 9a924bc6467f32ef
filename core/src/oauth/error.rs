//! The token endpoint's errors, each naming the section of the RFC it implements.

use std::borrow::Cow;

use super::dpop::ProofError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuthError {
    /// RFC 6749 §5.2 `invalid_request`: missing, repeated or malformed parameter, two
    /// authentication methods, or an unreadable body.
    InvalidRequest(&'static str),
    /// RFC 6749 §5.2 `invalid_client` (401). `is_basic` asks for `WWW-Authenticate: Basic`,
    /// since the client tried that scheme. Unknown client and wrong secret are one variant,
    /// so they cannot answer differently.
    InvalidClient { is_basic: bool },
    /// RFC 6749 §5.2 `invalid_grant`.
    InvalidGrant(&'static str),
    /// `invalid_grant` for a refresh token that was already spent, which ended its family.
    /// Answered exactly as any other refused refresh token, so the client learns nothing more;
    /// told apart only so that operators can count reuse.
    RefreshReused,
    /// RFC 6749 §5.2 `unauthorized_client`: the app may not use this grant.
    UnauthorizedClient,
    /// RFC 6749 §5.2 `unsupported_grant_type`.
    UnsupportedGrantType,
    /// RFC 6749 §5.2 `invalid_scope`, naming the scope the client does not hold.
    InvalidScope(String),
    /// RFC 8707 §2 `invalid_target`: the resource is unknown, not granted to the client, or
    /// named more than once.
    InvalidTarget(&'static str),
    /// RFC 9449 §5 `invalid_dpop_proof`: the proof is missing where required, malformed,
    /// not for this request, stale, replayed, or signed by another key than the grant's.
    InvalidDpopProof(ProofError),
    /// RFC 6585 §4: too many failed authentications from this client or address.
    TooManyRequests { retry_after: u64 },
    /// RFC 6585 §4: the app has had all the tokens its `tokenQuota` gives it this minute at
    /// this node. Answered as the limiter's 429 is, in words of its own.
    QuotaExceeded { retry_after: u64 },
    /// RFC 9110 §15.5.16: neither form nor JSON, or an encoded body.
    UnsupportedMediaType,
    /// RFC 9110 §15.5.14: the body is over the limit.
    PayloadTooLarge,
    /// RFC 6749 §4.1.2.1 `temporarily_unavailable` (503 with `Retry-After`): the password
    /// queue is full, so nothing was checked, or the shared store cannot be reached, so nothing
    /// was granted.
    TemporarilyUnavailable { retry_after: u64, cause: Cause },
    /// RFC 6749 §4.1.2.1 `server_error`: the store failed; nothing was granted.
    ServerError,
}

/// What a `temporarily_unavailable` answer waits on: each says so in its own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    PasswordQueue,
    Store,
    /// The node remembers as many DPoP proofs as it may (RFC 9449 §11.1).
    Proofs,
}

/// What a token request naming a resource it may not have is told, whichever the reason, so
/// that a client cannot probe which resources exist.
pub const TARGET_REFUSED: &str = "the resource is not registered or not granted to this client";

/// What every refused refresh token is told, reused or not.
pub const REFRESH_REFUSED: &str = "the refresh token is invalid, expired or revoked";

impl OAuthError {
    /// The shared store cannot be reached: a grant that must be durable cannot be made now.
    pub fn store_unavailable() -> OAuthError {
        OAuthError::TemporarilyUnavailable {
            retry_after: tessera_storage::RETRY_UNAVAILABLE_AFTER,
            cause: Cause::Store,
        }
    }

    /// The node cannot remember another DPoP proof now; a moment later it can.
    pub fn proofs_full() -> OAuthError {
        OAuthError::TemporarilyUnavailable { retry_after: 1, cause: Cause::Proofs }
    }

    pub fn status(&self) -> u16 {
        match self {
            OAuthError::InvalidClient { .. } => 401,
            OAuthError::TooManyRequests { .. } | OAuthError::QuotaExceeded { .. } => 429,
            OAuthError::UnsupportedMediaType => 415,
            OAuthError::PayloadTooLarge => 413,
            OAuthError::ServerError => 500,
            OAuthError::TemporarilyUnavailable { .. } => 503,
            _ => 400,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_)
            | OAuthError::UnsupportedMediaType
            | OAuthError::PayloadTooLarge => "invalid_request",
            OAuthError::InvalidClient { .. } => "invalid_client",
            OAuthError::InvalidGrant(_) | OAuthError::RefreshReused => "invalid_grant",
            OAuthError::UnauthorizedClient => "unauthorized_client",
            OAuthError::UnsupportedGrantType => "unsupported_grant_type",
            OAuthError::InvalidScope(_) => "invalid_scope",
            OAuthError::InvalidTarget(_) => "invalid_target",
            OAuthError::InvalidDpopProof(_) => "invalid_dpop_proof",
            OAuthError::TooManyRequests { .. } | OAuthError::QuotaExceeded { .. } => "slow_down",
            OAuthError::ServerError => "server_error",
            OAuthError::TemporarilyUnavailable { .. } => "temporarily_unavailable",
        }
    }

    pub fn description(&self) -> Cow<'static, str> {
        match self {
            OAuthError::InvalidRequest(why)
            | OAuthError::InvalidGrant(why)
            | OAuthError::InvalidTarget(why) => Cow::Borrowed(why),
            OAuthError::RefreshReused => Cow::Borrowed(REFRESH_REFUSED),
            OAuthError::InvalidClient { .. } => Cow::Borrowed("client authentication failed"),
            OAuthError::UnauthorizedClient => {
                Cow::Borrowed("the client is not allowed to use this grant type")
            }
            OAuthError::UnsupportedGrantType => Cow::Borrowed("the grant type is not supported"),
            OAuthError::InvalidDpopProof(why) => Cow::Borrowed(why.description()),
            OAuthError::InvalidScope(scope) => {
                Cow::Owned(format!("the client does not hold the scope '{scope}'"))
            }
            OAuthError::TooManyRequests { .. } => {
                Cow::Borrowed("too many failed authentications; retry later")
            }
            OAuthError::QuotaExceeded { .. } => {
                Cow::Borrowed("the app has had its token quota for this minute; retry later")
            }
            OAuthError::UnsupportedMediaType => Cow::Borrowed(
                "the body must be application/x-www-form-urlencoded or application/json, without Content-Encoding",
            ),
            OAuthError::PayloadTooLarge => Cow::Borrowed("the request body is too large"),
            OAuthError::ServerError => {
                Cow::Borrowed("the server could not complete the grant; retry")
            }
            OAuthError::TemporarilyUnavailable { cause: Cause::PasswordQueue, .. } => {
                Cow::Borrowed("too many sign-ins are being checked; retry shortly")
            }
            OAuthError::TemporarilyUnavailable { cause: Cause::Store, .. } => {
                Cow::Borrowed("the store cannot be reached; retry later")
            }
            OAuthError::TemporarilyUnavailable { cause: Cause::Proofs, .. } => {
                Cow::Borrowed(ProofError::Full.description())
            }
        }
    }

    /// The RFC 6749 §5.2 JSON body.
    pub fn body(&self) -> Vec<u8> {
        let body =
            serde_json::json!({ "error": self.code(), "error_description": self.description() });
        body.to_string().into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_11_a_reused_refresh_token_is_answered_as_any_refused_one() {
        let refused = OAuthError::InvalidGrant(REFRESH_REFUSED);
        let reused = OAuthError::RefreshReused;
        assert_eq!((reused.status(), reused.body()), (refused.status(), refused.body()));
    }

    #[test]
    fn issue_10_an_unreachable_store_is_temporarily_unavailable_in_its_own_words() {
        let e = OAuthError::store_unavailable();
        assert_eq!((e.status(), e.code()), (503, "temporarily_unavailable"));
        assert!(matches!(e, OAuthError::TemporarilyUnavailable { retry_after: 2, .. }));
        let body: serde_json::Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(body["error_description"], "the store cannot be reached; retry later");
    }
}
