//! The service API (seed 004): backend services call `/api/service/*` with `X-API-Key`.
//! Answers are snake_case JSON. A missing, malformed, wrong or revoked key gets one answer.

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use serde_json::json;
use tessera_actors::services::{GetService, InfoPatch, PatchServiceInfo, ServiceView};

use crate::api::admin::{AdminError, rfc3339};
use crate::server::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/service/info").get(info).patch(patch_info));
}

/// The service a request authenticated as.
pub struct ServiceCaller {
    pub service_id: String,
}

#[derive(Debug)]
pub struct Unauthorized;

impl std::fmt::Display for Unauthorized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a valid X-API-Key is required")
    }
}

impl ResponseError for Unauthorized {
    fn status_code(&self) -> actix_web::http::StatusCode {
        actix_web::http::StatusCode::UNAUTHORIZED
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::Unauthorized()
            .json(json!({"error": "unauthorized", "message": self.to_string()}))
    }
}

impl FromRequest for ServiceCaller {
    type Error = Unauthorized;
    type Future = Ready<Result<ServiceCaller, Unauthorized>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let service_id = req
            .app_data::<web::Data<AppState>>()
            .zip(req.headers().get("x-api-key").and_then(|v| v.to_str().ok()))
            .and_then(|(state, key)| state.service_keys.authenticate(key.trim()));
        ready(service_id.map(|service_id| ServiceCaller { service_id }).ok_or(Unauthorized))
    }
}

fn info_json(s: &ServiceView) -> serde_json::Value {
    json!({
        "service": {
            "id": s.id,
            "name": s.name,
            "description": s.description,
            "callback_uris": s.callback_uris,
            "created_at": rfc3339(s.created_at),
            "updated_at": rfc3339(s.updated_at),
        }
    })
}

async fn info(
    caller: ServiceCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    let service = state.registry.send(GetService { id: caller.service_id }).await??;
    Ok(HttpResponse::Ok().json(info_json(&service)))
}

async fn patch_info(
    caller: ServiceCaller,
    body: web::Json<InfoPatch>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    let service = state
        .registry
        .send(PatchServiceInfo { id: caller.service_id, patch: body.into_inner() })
        .await??;
    Ok(HttpResponse::Ok().json(info_json(&service)))
}
