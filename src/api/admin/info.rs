//! `GET /info`: the server's client-facing configuration (Melody Auth's S2S API), for any valid token.

use actix_web::{HttpResponse, web};

use super::{AdminError, Bearer};
use crate::api::AppState;
use crate::api::routes::routes;

routes! {
    "/info" => { get: info },
}

/// Any valid admin token may read it: the `Bearer` extractor is the whole check.
#[utoipa::path(
    get,
    path = "/info",
    tag = "admin",
    operation_id = "admin_info",
    security(("bearer" = [])),
    description = "The server's client-facing configuration; any valid admin token. Requires any admin token.",
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
pub async fn info(_token: Bearer, state: web::Data<AppState>) -> Result<HttpResponse, AdminError> {
    let c = &state.config;
    let s = &state.issuer.settings;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "configs": {
            "issuer": s.issuer,
            "defaultAudience": s.default_audience,
            "tokenEndpoint": format!("{}/oauth2/v1/token", s.issuer),
            "jwksUri": format!("{}/.well-known/jwks.json", s.issuer),
            "accessTokenTtlSecs": c.access_token_ttl,
            "maxAccessTokenTtlSecs": c.max_access_token_ttl,
            "grantTypes": ["client_credentials", "refresh_token"],
            "tokenEndpointAuthMethods": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
            "refreshTokenTtlSecs": c.refresh_token_ttl,
            "maxAssertionLifetimeSecs": c.max_assertion_lifetime,
            "signingAlgorithm": "EdDSA",
            "keyRotation": {
                "rotateEverySecs": c.rotate_every,
                "jwksMaxAgeSecs": c.jwks_max_age,
            },
            "rateLimit": {
                "windowSecs": c.rate_window,
                "failuresPerClient": c.failures_per_client,
                "failuresPerAddress": c.failures_per_address,
            },
            "bodyLimitBytes": c.body_limit,
            "features": {
                "allowUserCredentials": c.allow_user_credentials,
                "strictDelegation": c.strict_delegation,
                "privateKeyJwt": true,
                "refreshTokens": true,
                "introspection": true,
                "revocation": true,
            },
            "version": env!("CARGO_PKG_VERSION"),
        }
    })))
}
