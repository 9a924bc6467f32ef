//! Discovery: the JWKS and RFC 8414 metadata.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::api::AppState;
use crate::api::routes::routes;

routes! {
    "/.well-known/jwks.json" => { get: jwks },
    "/oauth2/v1/jwks" => { get: jwks },
    "/.well-known/oauth-authorization-server" => { get: metadata_doc },
    "/.well-known/openid-configuration" => { get: metadata_doc },
}

/// The pre-serialized JWKS of the current snapshot, cacheable for `jwks_max_age`: the
/// rotation rules are written so that a verifier caching it that long never misses a key.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "discovery",
    operation_id = "discovery_jwks",
    description = "The signing keys (RFC 7517); also at /oauth2/v1/jwks.",
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn jwks(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let keys = state.issuer.keys().load();
    let cache = format!("public, max-age={}", state.config.jwks_max_age);
    let is_fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| matches_etag(tag, &keys.etag)));
    let mut builder = if is_fresh { HttpResponse::NotModified() } else { HttpResponse::Ok() };
    builder.insert_header((header::CACHE_CONTROL, cache)).insert_header((
        header::ETAG,
        HeaderValue::from_str(&keys.etag).unwrap_or(HeaderValue::from_static("\"\"")),
    ));
    if is_fresh {
        builder.finish()
    } else {
        builder.content_type("application/json").body(keys.jwks.to_vec())
    }
}

/// RFC 9110 §13.1.2: If-None-Match compares weakly, so `W/"x"` matches `"x"`.
fn matches_etag(tag: &str, etag: &str) -> bool {
    let tag = tag.trim();
    tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag
}

#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    tag = "discovery",
    operation_id = "discovery_metadata_doc",
    description = "Authorization server metadata (RFC 8414); also at /.well-known/openid-configuration.",
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn metadata_doc(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .content_type("application/json")
        .body(state.metadata.clone())
}

/// RFC 8414 §2 metadata for this issuer.
pub fn metadata(issuer: &str, takes_certificates: bool) -> Vec<u8> {
    let mut auth_methods = vec!["client_secret_basic", "client_secret_post", "private_key_jwt"];
    if takes_certificates {
        auth_methods.extend(["tls_client_auth", "self_signed_tls_client_auth"]);
    }
    serde_json::json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}/oauth2/v1/token"),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "introspection_endpoint": format!("{issuer}/oauth2/v1/introspect"),
        "revocation_endpoint": format!("{issuer}/oauth2/v1/revoke"),
        "grant_types_supported": ["client_credentials", "refresh_token", "urn:ietf:params:oauth:grant-type:token-exchange"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": auth_methods,
        // private_key_jwt's. A trusted issuer's workload tokens may use RS256 or ES256 as well,
        // but listing them would send clients with such keys to private_key_jwt, which they
        // cannot use.
        "token_endpoint_auth_signing_alg_values_supported": ["EdDSA"],
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "scopes_supported": tessera_core::policy::BUILT_IN_SCOPES,
        // RFC 8707: a `resource` must name a registered resource the client is granted.
        "resource_indicators_supported": true,
        "dpop_signing_alg_values_supported": tessera_core::oauth::dpop::ALGORITHMS,
        // RFC 8705 §3.3: tokens asked for over a connection with a client certificate are
        // bound to it.
        "tls_client_certificate_bound_access_tokens": takes_certificates,
    })
    .to_string()
    .into_bytes()
}
