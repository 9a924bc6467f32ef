//! `GET /api/v1/keys` and `POST /api/v1/keys/rotate`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use tessera_core::keys::KeyInfo;

use super::{AdminError, Bearer, rfc3339};
use crate::api::AppState;
use crate::api::routes::routes;

routes! {
    "/api/v1/keys" => { get: list },
    "/api/v1/keys/rotate" => { post: rotate },
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    #[serde(default)]
    force: bool,
}

/// The keys as the API and the CLI show them: never private material.
pub fn view(keys: &[KeyInfo]) -> serde_json::Value {
    let keys: Vec<_> = keys
        .iter()
        .map(|k| {
            serde_json::json!({
                "kid": k.kid,
                "state": k.state,
                "createdAt": rfc3339(k.created_at),
                "publishedAt": rfc3339(k.published_at),
                "activatedAt": k.activated_at.map(rfc3339),
                "retiredAt": k.retired_at.map(rfc3339),
                "removeAfter": k.remove_after.map(rfc3339),
            })
        })
        .collect();
    serde_json::json!({ "keys": keys })
}

#[utoipa::path(
    get,
    path = "/api/v1/keys",
    tag = "keys",
    operation_id = "keys_list",
    security(("bearer" = ["read_key"])),
    description = "The signing keys and their states. Requires the scope `read_key` (or `root`).",
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn list(caller: Bearer, state: web::Data<AppState>) -> Result<HttpResponse, AdminError> {
    caller.require("read_key")?;
    Ok(HttpResponse::Ok().json(view(&state.keyring.list().await?)))
}

/// The body is optional: an empty body is a safe rotation.
#[utoipa::path(
    post,
    path = "/api/v1/keys/rotate",
    tag = "keys",
    operation_id = "keys_rotate",
    security(("bearer" = ["write_key"])),
    description = "Rotate the signing key (409 while not yet safe, unless forced). Requires the scope `write_key` (or `root`).",
    request_body(content = Option<RotateBody>, content_type = "application/json"),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn rotate(
    caller: Bearer,
    body: Result<web::Bytes, actix_web::Error>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    // Taken as a `Result` so that a body over `body_limit` gets the admin API's JSON `413`.
    let body = body.map_err(|e| {
        if e.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
            AdminError::TooLarge
        } else {
            AdminError::BadRequest("the request body could not be read".into())
        }
    })?;
    caller.require("write_key")?;
    let body: RotateBody = if body.iter().all(u8::is_ascii_whitespace) {
        RotateBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| AdminError::BadRequest(format!("invalid JSON body: {e}")))?
    };
    let keys = state.keyring.rotate(body.force, caller.origin()).await?;
    tracing::warn!(client_id = %caller.claims.client_id, force = body.force, "signing key rotated on request");
    Ok(HttpResponse::Ok().json(view(&keys)))
}
