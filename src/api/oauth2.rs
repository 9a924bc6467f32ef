//! The token endpoint (RFC 6749 §3.2, §4.4). Thin: read the body within its limit, hand it to
//! the parser and the issuer, write the answer.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use tessera_actors::oauth::OAuthError;
use tessera_actors::request;

use crate::api::ClientTag;
use crate::server::AppState;

pub const TOKEN_PATHS: [&str; 4] = [
    "/oauth2/v1/token",
    "/oauth2/token",
    "/token",
    "/authorization/token",
];

pub fn configure(cfg: &mut web::ServiceConfig) {
    for path in TOKEN_PATHS {
        cfg.service(web::resource(path).route(web::post().to(token)));
    }
}

async fn token(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    match answer(&req, payload, &state).await {
        Ok(issued) => {
            req.extensions_mut()
                .insert(ClientTag(issued.client_id.clone()));
            // unwrap: a struct of strings and integers always serializes
            let body = serde_json::to_vec(&issued).expect("token response serializes");
            no_store(HttpResponse::Ok())
                .content_type("application/json")
                .body(body)
        }
        Err(e) => error_response(&e),
    }
}

async fn answer(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<tessera_actors::issuer::Issued, OAuthError> {
    // Encoded bodies are refused, not expanded: no decompression bombs (DEPENDENCIES.md).
    if req
        .headers()
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v != "identity")
    {
        return Err(OAuthError::UnsupportedMediaType);
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let kind = request::body_kind(content_type)?;
    let body = match payload.to_bytes_limited(state.config.body_limit).await {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => {
            return Err(OAuthError::InvalidRequest(
                "the request body could not be read",
            ));
        }
        Err(_) => return Err(OAuthError::PayloadTooLarge),
    };
    let authorization = match req.headers().get(header::AUTHORIZATION) {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| OAuthError::InvalidClient { is_basic: true })?,
        ),
        None => None,
    };
    let parsed = request::parse(kind, authorization, &body)?;
    let peer = req.peer_addr().map(|a| a.ip());
    state.issuer.token(&parsed, peer)
}

fn no_store(mut builder: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    builder
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .insert_header((header::PRAGMA, HeaderValue::from_static("no-cache")));
    builder
}

/// RFC 6749 §5.2, with the headers each status calls for.
pub fn error_response(e: &OAuthError) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(e.status())
        .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST);
    let mut builder = no_store(HttpResponse::build(status));
    match e {
        OAuthError::InvalidClient { is_basic: true } => {
            builder.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"tessera\""),
            ));
        }
        OAuthError::TooManyRequests { retry_after } => {
            builder.insert_header((header::RETRY_AFTER, retry_after.to_string()));
        }
        _ => {}
    }
    builder.content_type("application/json").body(e.body())
}
