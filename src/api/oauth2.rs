//! The OAuth endpoints: token (RFC 6749 §3.2), introspection (RFC 7662) and revocation
//! (RFC 7009). Thin: read the body within its limit, hand it to the parser and the issuer,
//! write the answer.

use std::sync::Arc;
use std::time::Instant;

use actix_web::http::header::{self, HeaderValue};
use actix_web::web::Bytes;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use serde_json::json;
use tessera_core::auth::secret::parse_split_secret;
use tessera_core::oauth::OAuthError;
use tessera_core::oauth::dpop::ProofError;
use tessera_core::oauth::request::{self, BodyKind};
use tessera_core::tables::client::Client;
use tessera_core::tokens::issuer::Channel;
use tessera_storage::{GrantOp, RefreshStatus};

use crate::api::AppState;
use crate::api::ClientTag;
use crate::api::metrics::{AuthMethod, UNKNOWN_GRANT, grant_index};
use crate::api::routes::routes;
use crate::tls;

pub const TOKEN_PATHS: [&str; 4] =
    ["/oauth2/v1/token", "/oauth2/token", "/token", "/authorization/token"];

routes! {
    "/oauth2/v1/token" => { post: token },
    "/oauth2/token" => { post: token },
    "/token" => { post: token },
    "/authorization/token" => { post: token },
    "/oauth2/v1/introspect" => { post: introspect },
    "/oauth2/v1/revoke" => { post: revoke },
}

/// The body and `Authorization` header of an OAuth request, checked for media type and size.
async fn read(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<(BodyKind, Bytes), OAuthError> {
    // Encoded bodies are refused, not expanded: no decompression bombs (GHSA-qph8-7859-gq2f).
    if req.headers().get(header::CONTENT_ENCODING).is_some_and(|v| v != "identity") {
        return Err(OAuthError::UnsupportedMediaType);
    }
    // A header that is not text is still a Content-Type, and not ours.
    let content_type = req.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or(""));
    // Media type before size (docs/api.md): a declared type is judged before the body is read,
    // and without one only an empty body is acceptable, so not a byte of it is buffered.
    let limit = match content_type {
        Some(_) => {
            request::body_kind(content_type, b"")?;
            state.config.body_limit
        }
        None => 0,
    };
    let body = match payload.to_bytes_limited(limit).await {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => return Err(OAuthError::InvalidRequest("the request body could not be read")),
        Err(_) if content_type.is_none() => return Err(OAuthError::UnsupportedMediaType),
        Err(_) => return Err(OAuthError::PayloadTooLarge),
    };
    Ok((request::body_kind(content_type, &body)?, body))
}

/// The `DPoP` header (RFC 9449 §4.1): at most one, and text.
pub fn dpop_header(req: &HttpRequest) -> Result<Option<&str>, ProofError> {
    let mut values = req.headers().get_all("dpop");
    let first = values.next();
    if values.next().is_some() {
        return Err(ProofError::Repeated);
    }
    first.map(|v| v.to_str().map_err(|_| ProofError::Malformed)).transpose()
}

fn authorization(req: &HttpRequest) -> Result<Option<&str>, OAuthError> {
    match req.headers().get(header::AUTHORIZATION) {
        Some(v) => v.to_str().map(Some).map_err(|_| OAuthError::InvalidClient { is_basic: true }),
        None => Ok(None),
    }
}

#[utoipa::path(
    post,
    path = "/oauth2/v1/token",
    tag = "oauth2",
    operation_id = "oauth2_token",
    security(("client" = []), ()),
    description = "Token endpoint (RFC 6749 §3.2): client_credentials, refresh_token, and the other grants in docs/api.md. Also answered at /oauth2/token, /token and /authorization/token. The client authenticates with HTTP Basic, form credentials or private_key_jwt.",
    request_body(content = crate::api::openapi::TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn token(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let started = Instant::now();
    // What the request asked, once its body could be read: the labels it is counted under.
    let mut asked = (UNKNOWN_GRANT, None);
    let answer = async {
        let (kind, body) = read(&req, payload, &state).await?;
        let parsed = request::parse(kind, authorization(&req)?, &body)?;
        asked = (grant_index(parsed.grant_type), AuthMethod::of(&parsed.credentials));
        let certificate = tls::client_certificate(&req, &state.config, state.tls.as_deref());
        let channel = Channel {
            addr: req.peer_addr().map(|a| a.ip()),
            dpop: dpop_header(&req),
            path: req.path(),
            certificate: certificate.as_deref(),
        };
        if state.config.allow_user_credentials {
            return user_or_app(&state, &parsed, &channel).await;
        }
        state.issuer.answer(&parsed, &channel).await
    };
    let answer = answer.await;
    let (grant, method) = asked;
    state.metrics.token(grant, answer.as_ref().map(|i| i.reused), started.elapsed());
    if let (Err(OAuthError::InvalidClient { .. }), Some(method)) = (&answer, method) {
        state.metrics.failed_authentication(method);
    }
    match answer {
        Ok(issued) => {
            req.extensions_mut().insert(ClientTag(Arc::clone(&issued.client)));
            let body = issued.to_json();
            no_store(HttpResponse::Ok())
                .insert_header((header::CONTENT_TYPE, HeaderValue::from_static("application/json")))
                .body(body)
        }
        Err(e) => error_response(&e),
    }
}

/// With `allow_user_credentials`, Basic may carry a user's username and password. A name that
/// is no app's goes straight to the user check, so a user's sign-in is never first counted as
/// a failed app authentication. A known app with a wrong secret then also waits for one
/// Argon2id verification, as an unknown name does: the answer's timing does not tell which
/// client ids exist.
async fn user_or_app(
    state: &AppState,
    parsed: &request::TokenRequest,
    channel: &Channel<'_>,
) -> Result<tessera_core::tokens::issuer::Issued, OAuthError> {
    let request::Credentials::Basic { client_id: login, secret: password } = &parsed.credentials
    else {
        return state.issuer.answer(parsed, channel).await;
    };
    if parsed.grant_type != request::GrantType::ClientCredentials {
        return state.issuer.answer(parsed, channel).await;
    }
    let addr = channel.addr;
    if state.issuer.clients().get(login).is_none() {
        let checked = crate::api::sign_in::check_password(state, login, password, addr).await?;
        return match checked {
            Some(auth_id) => state.issuer.user_token_at_endpoint(&auth_id, parsed, channel).await,
            None => Err(OAuthError::InvalidClient { is_basic: true }),
        };
    }
    let answer = state.issuer.answer(parsed, channel).await;
    if let Err(OAuthError::InvalidClient { .. }) = answer {
        let dummy = tessera_core::auth::password::DUMMY.clone();
        if let Err(e) = state.passwords.verify(password.clone(), dummy).await {
            // Turned away like an unknown name would be: nothing counted, same answer.
            state.issuer.forgive(login, addr);
            return Err(crate::api::sign_in::busy(e));
        }
    }
    answer
}

/// Authenticates the caller of introspection or revocation; both require a client.
async fn caller(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<(std::sync::Arc<Client>, request::TokenQuery), OAuthError> {
    let (kind, body) = read(req, payload, state).await?;
    let query = request::parse_query(kind, authorization(req)?, &body)?;
    let certificate = tls::client_certificate(req, &state.config, state.tls.as_deref());
    let channel = Channel {
        certificate: certificate.as_deref(),
        ..Channel::plain(req.peer_addr().map(|a| a.ip()))
    };
    let is_basic = matches!(query.credentials, request::Credentials::Basic { .. });
    let authenticated = state.issuer.authenticate(&query.credentials, &channel).await;
    let client = match authenticated {
        Ok(Some(client)) => client,
        Ok(None) | Err(OAuthError::InvalidClient { .. }) => {
            if let Some(method) = AuthMethod::of(&query.credentials) {
                state.metrics.failed_authentication(method);
            }
            return Err(OAuthError::InvalidClient { is_basic });
        }
        Err(e) => return Err(e),
    };
    req.extensions_mut().insert(ClientTag(Arc::clone(&client)));
    Ok((client, query))
}

fn is_jwt(token: &str) -> bool {
    token.bytes().filter(|&b| b == b'.').count() == 2
}

/// RFC 7662: any authenticated client may ask; anything not valid is `{"active":false}`.
#[utoipa::path(
    post,
    path = "/oauth2/v1/introspect",
    tag = "oauth2",
    operation_id = "oauth2_introspect",
    security(("client" = []), ()),
    description = "Token introspection (RFC 7662), for any authenticated app. The client authenticates with HTTP Basic, form credentials or private_key_jwt.",
    request_body(content = crate::api::openapi::TokenHintForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn introspect(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (_, query) = match caller(&req, payload, &state).await {
        Ok(c) => c,
        Err(e) => return error_response(&e),
    };
    let issuer = &state.issuer;
    let body = if is_jwt(&query.token) {
        match issuer.verify_access(&query.token) {
            Ok(c) if issuer.is_token_live_for_subject(&c) => {
                let token_type = if c.jkt().is_some() { "DPoP" } else { "Bearer" };
                let mut body = json!({
                    "active": true, "scope": c.scope, "client_id": c.client_id, "token_type": token_type,
                    "exp": c.exp, "iat": c.iat, "nbf": c.nbf, "sub": c.sub, "aud": c.aud, "iss": c.iss, "jti": c.jti,
                });
                // RFC 9449 §6.2 and RFC 8705 §3.2: what the token is bound to.
                if let Some(cnf) = &c.cnf {
                    body["cnf"] = json!(cnf);
                }
                body
            }
            _ => json!({"active": false}),
        }
    } else {
        let status = match parse_split_secret(&query.token) {
            Some(key) => issuer.refresh_status(key).await,
            None => Ok(None),
        };
        match status {
            Ok(Some(RefreshStatus { record, family }))
                if !record.is_spent
                    && !family.is_revoked
                    && issuer.now() < record.expires_at
                    && issuer.can_refresh(&family) =>
            {
                json!({
                    "active": true, "scope": family.scope, "client_id": record.client_id,
                    "token_type": "refresh_token", "exp": record.expires_at, "iat": record.issued_at,
                    "sub": family.subject, "iss": issuer.settings.issuer,
                })
            }
            Ok(_) => json!({"active": false}),
            Err(e) => return error_response(&e),
        }
    };
    no_store(HttpResponse::Ok()).json(body)
}

/// RFC 7009: `200` whether or not the token was known; only a token's own client can revoke
/// it. Revoking a refresh token ends its family and the access tokens issued from it.
#[utoipa::path(
    post,
    path = "/oauth2/v1/revoke",
    tag = "oauth2",
    operation_id = "oauth2_revoke",
    security(("client" = []), ()),
    description = "Token revocation (RFC 7009). The client authenticates with HTTP Basic, form credentials or private_key_jwt.",
    request_body(content = crate::api::openapi::TokenHintForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Done."),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn revoke(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (client, query) = match caller(&req, payload, &state).await {
        Ok(c) => c,
        Err(e) => return error_response(&e),
    };
    let issuer = &state.issuer;
    let op = if is_jwt(&query.token) {
        match issuer.verify_signature(&query.token) {
            Ok(c) if *c.client_id == *client.client_id && c.exp > issuer.now() => {
                Some(GrantOp::RevokeAccess { jti: c.jti, exp: c.exp })
            }
            _ => None,
        }
    } else {
        parse_split_secret(&query.token).map(|token| GrantOp::RevokeFamily {
            horizon: issuer.revocation_horizon(),
            token,
            client_id: Some(client.client_id.to_string()),
            audit: None,
        })
    };
    if let Some(op) = op
        && let Err(e) = state.grants.submit(op).await
    {
        // A client told 503 comes back; one told 200 would believe the token dead.
        if e.is_unavailable() {
            tracing::warn!(error = %e, "revocation not committed: the store cannot be reached");
            return error_response(&OAuthError::store_unavailable());
        }
        tracing::error!(error = %e, "revocation not committed");
        return error_response(&OAuthError::ServerError);
    }
    no_store(HttpResponse::Ok()).finish()
}

fn no_store(mut builder: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    builder
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .insert_header((header::PRAGMA, HeaderValue::from_static("no-cache")));
    builder
}

/// RFC 6749 §5.2, with the headers each status calls for.
pub fn error_response(e: &OAuthError) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(e.status())
        .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST);
    let mut builder = no_store(HttpResponse::build(status));
    match e {
        OAuthError::InvalidClient { is_basic: true } => {
            builder.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"tessera\""),
            ));
        }
        OAuthError::TooManyRequests { retry_after }
        | OAuthError::QuotaExceeded { retry_after }
        | OAuthError::TemporarilyUnavailable { retry_after, .. } => {
            builder.insert_header((header::RETRY_AFTER, retry_after.to_string()));
        }
        _ => {}
    }
    builder.content_type("application/json").body(e.body())
}
