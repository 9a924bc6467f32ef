//! `GET /`: a small page for a person who opens the server in a browser, pointing to what a
//! client or an operator reads next.

use actix_web::{HttpResponse, web};

use crate::api::AppState;
use crate::api::routes::routes;

routes! {
    "/" => { get: home },
}

#[utoipa::path(
    get,
    path = "/",
    tag = "discovery",
    operation_id = "discovery_home",
    description = "A small page linking the docs, discovery documents and JWKS.",
    responses(
        (status = 200, description = "Done.", body = String, content_type = "text/html"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn home(state: web::Data<AppState>) -> HttpResponse {
    // Only what this server answers: the metrics link goes when they have a listener of
    // their own.
    let metrics = if state.config.metrics_listen.is_none() {
        r#"<li><a href="/metrics">/metrics</a>: Prometheus metrics</li>"#
    } else {
        ""
    };
    let page = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tessera</title></head>
<body>
<h1>Tessera</h1>
<p>An OAuth 2.0 token service for machine-to-machine fleets.</p>
<ul>
<li><a href="/docs/">/docs</a>: the API in Swagger UI, from <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1)</li>
<li><a href="/.well-known/oauth-authorization-server">/.well-known/oauth-authorization-server</a>: authorization server metadata (RFC 8414)</li>
<li><a href="/.well-known/openid-configuration">/.well-known/openid-configuration</a>: the same metadata, where OpenID clients look</li>
<li><a href="/.well-known/jwks.json">/.well-known/jwks.json</a>: the keys that verify its access tokens</li>
{metrics}
<li><a href="/readyz">/readyz</a>: readiness</li>
</ul>
</body></html>
"#
    );
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("content-security-policy", "default-src 'none'"))
        .body(page)
}
