//! A person's password, checked the one way every sign-in uses (the login endpoint, the hosted
//! sign-in page, the token endpoint with user credentials): counted against the guess limits
//! first, hashed on the password pool, never on a worker.

use tessera_core::auth::password;
use tessera_core::oauth::{Cause, OAuthError};

use crate::api::AppState;
use crate::api::metrics::AuthMethod;

/// Checks a person's password; `Ok(Some(auth_id))` when it is right. Used by the login
/// endpoint, the hosted sign-in page and `client_credentials` with user credentials. The
/// failure is counted before Argon2id runs and given back only when the password is right, so
/// concurrent guesses cannot all be evaluated. It counts against the person the name finds
/// (username and email alike), or the name as sent when it finds nobody (as an app's client
/// id is counted, so with user credentials allowed the limits do not tell the two apart). A
/// full password queue answers `503` and counts nothing: nothing was judged.
pub async fn check_password(
    state: &AppState,
    login: &str,
    password: &str,
    addr: Option<std::net::IpAddr>,
) -> Result<Option<String>, OAuthError> {
    let issuer = &state.issuer;
    let target = state
        .registry
        .login_target(login.to_string())
        .await
        .map_err(|_| OAuthError::ServerError)?;
    // Prefixed, so no typed name can take a person's key.
    let limit_key = match &target.auth_id {
        Some(auth_id) => format!("user:{auth_id}"),
        None => format!("name:{login}"),
    };
    let attempt = issuer.begin_attempt(&limit_key, addr, issuer.now())?;
    let hash = target.password_hash.unwrap_or_else(|| password::DUMMY.clone());
    match state.passwords.verify(password.to_string(), hash).await {
        Ok(true) if target.auth_id.is_some() => {
            issuer.refund(attempt);
            Ok(target.auth_id)
        }
        Ok(_) => {
            state.metrics.failed_authentication(AuthMethod::Password);
            Ok(None)
        }
        Err(e) => {
            issuer.refund(attempt);
            Err(busy(e))
        }
    }
}

/// A password-pool failure as the OAuth answer it becomes.
pub fn busy(e: password::PoolError) -> OAuthError {
    match e {
        password::PoolError::Busy => OAuthError::TemporarilyUnavailable {
            retry_after: password::BUSY_RETRY_AFTER,
            cause: Cause::PasswordQueue,
        },
        password::PoolError::Stopped | password::PoolError::Refused => OAuthError::ServerError,
    }
}
