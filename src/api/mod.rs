//! HTTP routes. [`configure`] is the one routing table, used by `main` and by the tests.

pub mod admin;
pub mod connect;
pub mod consumer;
pub mod health;
pub(crate) mod home;
pub mod metrics;
pub mod oauth2;
pub mod openapi;
mod request_id;
pub mod routes;
pub mod service;
pub mod sign_in;
mod state;
pub mod wellknown;

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpMessage, HttpResponse, web};
use request_id::RequestId;
use tracing::Instrument;

pub use state::AppState;

/// Set by a handler that knows which client a request came from, for the request log: the
/// published client itself, so tagging copies no id.
#[derive(Clone)]
pub struct ClientTag(pub std::sync::Arc<tessera_core::tables::client::Client>);

/// Every area but `/metrics`, which has a listener of its own when `metrics_listen` is set.
const AREAS: &[routes::Area] = &[
    (oauth2::ROUTES, oauth2::configure),
    (home::ROUTES, home::configure),
    (wellknown::ROUTES, wellknown::configure),
    (health::ROUTES, health::configure),
    (consumer::ROUTES, consumer::configure),
    (service::ROUTES, service::configure),
    (connect::ROUTES, connect::configure),
    (openapi::ROUTES, openapi::configure),
    (openapi::UI_ROUTES, openapi::configure_ui),
];

/// Every (method, path) the main listener answers, as registered.
pub fn routes(config: &crate::config::Config) -> Vec<routes::Route> {
    let metrics = config.metrics_listen.is_none().then_some(metrics::ROUTES);
    let areas = AREAS.iter().chain(admin::AREAS).map(|(routes, _)| *routes);
    areas.chain(metrics).flatten().copied().collect()
}

pub fn configure(cfg: &mut web::ServiceConfig, state: web::Data<AppState>) {
    let limit = state.config.body_limit;
    // With `metrics_listen` set, `/metrics` is answered there only (`metrics_app`).
    let metrics_here = state.config.metrics_listen.is_none();
    cfg.app_data(state)
        .app_data(admin::json_config(limit))
        // Forms and raw bodies (`Bytes`, `String`) take the same `body_limit`; actix's own
        // defaults (16 KiB, 256 KiB) would be second limits that no operator configured.
        .app_data(web::FormConfig::default().limit(limit))
        .app_data(web::PayloadConfig::new(limit))
        .app_data(admin::query_config())
        .app_data(admin::path_config())
        .service(
            web::scope("")
                .wrap(from_fn(log_request))
                .configure(|cfg| {
                    for (_, configure) in AREAS.iter().chain(admin::AREAS) {
                        configure(cfg);
                    }
                    if metrics_here {
                        metrics::configure(cfg);
                    }
                })
                .default_service(web::to(not_found)),
        );
}

/// The routes of the `metrics_listen` listener: `/metrics` and nothing else.
pub fn configure_metrics(cfg: &mut web::ServiceConfig, state: web::Data<AppState>) {
    cfg.app_data(state).configure(metrics::configure).default_service(web::to(not_found));
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .json(serde_json::json!({"error": "not_found", "message": "no such endpoint"}))
}

/// One structured line per request: method, route, status, latency and, where known, the
/// client, inside a span that names the request id (`request_id.rs`). The route is the matched pattern (`/connect/provider-token/{state}`), never the path:
/// path segments can be credentials (a one-time state), and an unmatched path is whatever a
/// client sent, so it is logged as `(unmatched)`. The query, which may carry a token, is never
/// logged either. Successful hot-path requests log at debug so that a busy server does not
/// spend its cores on log lines.
async fn log_request(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().clone();
    let id = RequestId::of(req.headers());
    // Every line logged while the request runs carries its id.
    let span = tracing::info_span!("request", request_id = id.as_str());
    // Lent to the handlers (the audit log records it) and taken back for the answer.
    req.extensions_mut().insert(id);
    let res = next.call(req).instrument(span.clone()).await?;
    let logged = span.enter();
    let status = res.status().as_u16();
    let latency_us = started.elapsed().as_micros() as u64;
    // Routes the `routes!` table registers are named by their pattern; services mounted
    // otherwise (Swagger UI) are asked for theirs.
    let pattern = match res.request().match_name() {
        Some(name) => Some(std::borrow::Cow::Borrowed(name)),
        None => res.request().match_pattern().map(std::borrow::Cow::Owned),
    };
    let route = pattern.as_deref().unwrap_or("(unmatched)");
    if let Some(state) = res.request().app_data::<web::Data<AppState>>() {
        state.metrics.http_request(route, status);
    }
    let is_routine = status < 400
        && (route.ends_with("/token") || route.contains("jwks") || route.ends_with('z'));
    {
        let extensions = res.request().extensions();
        let client_id = extensions.get::<ClientTag>().map_or("-", |t| &*t.0.client_id);
        if is_routine {
            tracing::debug!(%method, route, status, latency_us, client_id, "request");
        } else {
            tracing::info!(%method, route, status, latency_us, client_id, "request");
        }
    }
    drop(logged);
    let id = res.request().extensions_mut().remove::<RequestId>();
    Ok(request_id::stamp(res, id.as_ref()).await)
}
