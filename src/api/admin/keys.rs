//! `GET /api/v1/keys` and `POST /api/v1/keys/rotate`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use tessera_core::keys::KeyInfo;

use super::{AdminError, Bearer, rfc3339};
use crate::api::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/v1/keys").get(list))
        .service(web::resource("/api/v1/keys/rotate").post(rotate));
}

#[derive(Debug, Default, Deserialize)]
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

async fn list(caller: Bearer, state: web::Data<AppState>) -> Result<HttpResponse, AdminError> {
    caller.require("read_key")?;
    Ok(HttpResponse::Ok().json(view(&state.keyring.list().await?)))
}

/// The body is optional: an empty body is a safe rotation.
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
