//! Liveness and readiness.

use actix_web::{HttpResponse, web};

use crate::api::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/healthz").get(healthz))
        .service(web::resource("/readyz").get(readyz));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

/// Ready when a signing key is current. The store is open by construction: the server does
/// not start without it.
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.issuer.keys().load().signer.is_some() {
        HttpResponse::Ok().content_type("text/plain").body("ready")
    } else {
        HttpResponse::ServiceUnavailable().content_type("text/plain").body("no current signing key")
    }
}
