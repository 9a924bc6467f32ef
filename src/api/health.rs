//! Liveness and readiness.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::api::AppState;
use crate::api::routes::routes;

routes! {
    "/healthz" => { get: healthz },
    "/readyz" => { get: readyz },
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    operation_id = "operations_healthz",
    description = "Liveness: the process answers.",
    responses(
        (status = 200, description = "Done.", body = String, content_type = "text/plain"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

/// Ready while a signing key is current: tokens are issued from memory, so a store that
/// cannot be reached does not make the node unready (taking every node out of a load balancer
/// would stop the access tokens they can still issue). The body names the store's state as of
/// the follower's last poll, read from memory: the probe never waits on the database.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    operation_id = "operations_readyz",
    description = "Readiness: the store answers (503 while a shared store cannot be reached).",
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let health = &state.store_health;
    let store = if health.is_reachable() { "ok" } else { "unreachable" };
    let mut body = if state.issuer.keys().load().signer.is_some() {
        json!({"status": "ready", "store": store})
    } else {
        json!({"status": "not_ready", "store": store, "reason": "no current signing key"})
    };
    if let Some(lag) = health.change_lag() {
        body["change_lag_seconds"] = json!(lag.as_secs_f64());
    }
    if body["status"] == "ready" {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
