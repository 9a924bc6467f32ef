//! People signing in (Fusio): `/consumer/register`, `/consumer/login`, and accepting an
//! invitation. Argon2id runs on the lowest-priority password pool, never on a worker; wrong password, unknown
//! user and inactive user get the same bytes after the same work.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use tessera_core::audit::Origin;
use tessera_core::auth::password;
use tessera_core::oauth::OAuthError;

use crate::api::AppState;
use crate::api::admin::AdminError;
use crate::api::request_id::of_request;
use crate::api::routes::routes;
use crate::api::sign_in;

routes! {
    "/consumer/register" => { post: register },
    "/consumer/login" => { post: login },
    "/consumer/invitations/accept" => { post: accept },
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Registration {
    username: String,
    email: String,
    password: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Credentials {
    username: String,
    password: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Acceptance {
    token: String,
    password: String,
}

async fn hash(state: &AppState, password: String) -> Result<String, AdminError> {
    password::check_policy(&password)?;
    Ok(state.passwords.hash(password).await?)
}

#[utoipa::path(
    post,
    path = "/consumer/register",
    tag = "users",
    operation_id = "users_register",
    description = "Self-service registration (when enabled).",
    request_body(content = Registration, content_type = "application/json"),
    responses(
        (status = 201, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn register(
    req: HttpRequest,
    body: web::Json<Registration>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    let Registration { username, email, password } = body.into_inner();
    password::check_policy(&password)?;
    // A taken or malformed name is refused before the slow hash: registration is open, and
    // each refused attempt would otherwise cost tens of milliseconds of CPU.
    state.registry.check_new_login(Some(username.clone()), email.clone()).await?;
    let password_hash = hash(&state, password).await?;
    let registry = state.registry.on_behalf(Origin::anonymous(of_request(&req).as_deref()));
    let user = registry.register(username, email, password_hash).await?;
    tracing::info!(auth_id = %user.auth_id, "user registered");
    Ok(HttpResponse::Created().json(json!({ "user": crate::api::admin::user_json(&user) })))
}

#[utoipa::path(
    post,
    path = "/consumer/invitations/accept",
    tag = "users",
    operation_id = "users_accept",
    description = "Accept an invitation and set a password.",
    request_body(content = Acceptance, content_type = "application/json"),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn accept(
    req: HttpRequest,
    body: web::Json<Acceptance>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    let Acceptance { token, password } = body.into_inner();
    password::check_policy(&password)?;
    // A bogus token is refused before the slow hash, and counts as a failure of its address:
    // looking a token up costs the registry a pass over the users, so nobody may ask without
    // limit.
    let issuer = &state.issuer;
    let addr = req.peer_addr().map(|a| a.ip());
    let attempt = issuer.begin_attempt("invitation", addr, issuer.now()).map_err(|e| match e {
        OAuthError::TooManyRequests { retry_after } => AdminError::TooMany { retry_after },
        _ => AdminError::Internal,
    })?;
    state.registry.check_invitation(token.clone()).await?;
    issuer.refund(attempt);
    let password_hash = hash(&state, password).await?;
    let registry = state.registry.on_behalf(Origin::anonymous(of_request(&req).as_deref()));
    let user = registry.accept_invitation(token, password_hash).await?;
    tracing::info!(auth_id = %user.auth_id, "invitation accepted");
    Ok(HttpResponse::Ok().json(json!({ "user": crate::api::admin::user_json(&user) })))
}

#[utoipa::path(
    post,
    path = "/consumer/login",
    tag = "users",
    operation_id = "users_login",
    description = "A user's sign-in: a user token.",
    request_body(content = Credentials, content_type = "application/json"),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn login(
    req: HttpRequest,
    body: web::Json<Credentials>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let addr = req.peer_addr().map(|a| a.ip());
    match sign_in::check_password(&state, &body.username, &body.password, addr).await {
        Ok(Some(auth_id)) => match state.issuer.user_token(&auth_id).await {
            Ok(issued) => {
                HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(json!({
                    "token": issued.access_token,
                    "expires_in": issued.expires_in,
                    "refresh_token": issued.refresh_token,
                }))
            }
            Err(e) => crate::api::oauth2::error_response(&e),
        },
        Ok(None) => HttpResponse::Unauthorized()
            .insert_header(("Cache-Control", "no-store"))
            .json(json!({"error": "invalid_credentials", "message": "wrong username or password"})),
        Err(e) => crate::api::oauth2::error_response(&e),
    }
}
