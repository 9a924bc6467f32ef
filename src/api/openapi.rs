//! `GET /openapi.json` (OpenAPI 3.1), generated from the handlers' `#[utoipa::path]`
//! annotations, and Swagger UI at `/docs` from assets bundled into the binary. Each operation
//! names the scope it needs as a security requirement and in its description.

use actix_web::{HttpResponse, web};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, PathItem};
use utoipa::{Modify, OpenApi};

use crate::api::AppState;
use crate::api::routes::{Route, routes};
use crate::config::Config;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tessera",
        description = "OAuth2 token service for machine-to-machine fleets. The reference is docs/api.md."
    ),
    paths(
        crate::api::openapi::document_json,
        crate::api::openapi::docs,
        crate::api::openapi::docs_file,
        crate::api::oauth2::token,
        crate::api::oauth2::introspect,
        crate::api::oauth2::revoke,
        crate::api::home::home,
        crate::api::wellknown::jwks,
        crate::api::wellknown::metadata_doc,
        crate::api::health::healthz,
        crate::api::health::readyz,
        crate::api::metrics::scrape,
        crate::api::consumer::register,
        crate::api::consumer::login,
        crate::api::consumer::accept,
        crate::api::service::info,
        crate::api::service::patch_info,
        crate::api::service::list_users,
        crate::api::service::create_user,
        crate::api::service::get_user,
        crate::api::service::patch_user,
        crate::api::service::delete_user,
        crate::api::service::list_subscriptions,
        crate::api::service::create_subscription,
        crate::api::service::get_subscription,
        crate::api::service::patch_subscription,
        crate::api::service::delete_subscription,
        crate::api::service::analytics,
        crate::api::connect::provider_tokens,
        crate::api::connect::hosted,
        crate::api::connect::sign_in,
        crate::api::connect::sign_out,
        crate::api::connect::callback,
        crate::api::admin::info::info,
        crate::api::admin::apps::list,
        crate::api::admin::apps::create,
        crate::api::admin::apps::import,
        crate::api::admin::apps::get,
        crate::api::admin::apps::update,
        crate::api::admin::apps::delete,
        crate::api::admin::apps::rotate_start,
        crate::api::admin::apps::rotate_complete,
        crate::api::admin::apps::rotate_cancel,
        crate::api::admin::audit::list,
        crate::api::admin::resources::list,
        crate::api::admin::resources::create,
        crate::api::admin::resources::get,
        crate::api::admin::resources::update,
        crate::api::admin::resources::delete,
        crate::api::admin::issuers::list,
        crate::api::admin::issuers::create,
        crate::api::admin::issuers::get,
        crate::api::admin::issuers::delete,
        crate::api::admin::keys::list,
        crate::api::admin::keys::rotate,
        crate::api::admin::scopes::list_scopes,
        crate::api::admin::scopes::create_scope,
        crate::api::admin::scopes::get_scope,
        crate::api::admin::scopes::update_scope,
        crate::api::admin::scopes::delete_scope,
        crate::api::admin::scopes::list_roles,
        crate::api::admin::scopes::create_role,
        crate::api::admin::scopes::get_role,
        crate::api::admin::scopes::update_role,
        crate::api::admin::scopes::delete_role,
        crate::api::admin::users::list,
        crate::api::admin::users::get,
        crate::api::admin::users::update,
        crate::api::admin::users::delete,
        crate::api::admin::users::invite,
        crate::api::admin::services::list,
        crate::api::admin::services::create,
        crate::api::admin::services::get,
        crate::api::admin::services::update,
        crate::api::admin::services::delete,
        crate::api::admin::services::issue_key,
        crate::api::admin::services::revoke_key,
        crate::api::admin::providers::list,
        crate::api::admin::providers::create,
        crate::api::admin::providers::get,
        crate::api::admin::providers::delete

    ),
    modifiers(&Schemes)
)]
struct ApiDoc;

/// How callers prove who they are: an admin token, a service's API key, or a client's
/// credentials at the OAuth endpoints.
struct Schemes;

impl Modify for Schemes {
    fn modify(&self, api: &mut Document) {
        let components = api.components.get_or_insert_with(Default::default);
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.bearer_format = Some("JWT".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
        let key = ApiKey::Header(ApiKeyValue::new("X-API-Key"));
        components.add_security_scheme("api_key", SecurityScheme::ApiKey(key));
        components
            .add_security_scheme("client", SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)));
    }
}

// The form bodies the OAuth endpoints and the hosted flow read. They are parsed from raw
// bytes (so that a repeated parameter can be refused), never through these types: the types
// only describe the forms.

/// RFC 6749 §4.4 and §6 (and the other grants of docs/api.md).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct TokenForm {
    grant_type: String,
    scope: Option<String>,
    refresh_token: Option<String>,
    resource: Option<String>,
    audience: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// RFC 7662 §2.1 and RFC 7009 §2.1.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct TokenHintForm {
    token: String,
    token_type_hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
}

/// The hosted flow's sign-in form.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct SignInForm {
    state: String,
    csrf: String,
    username: String,
    password: String,
}

/// The hosted flow's sign-out form.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct SignOutForm {
    csrf: String,
    state: Option<String>,
}

/// Paths that answer exactly as another one does: (alias, path documented).
const ALIASES: &[(&str, &str)] = &[
    ("/oauth2/token", "/oauth2/v1/token"),
    ("/token", "/oauth2/v1/token"),
    ("/authorization/token", "/oauth2/v1/token"),
    ("/oauth2/v1/jwks", "/.well-known/jwks.json"),
    ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"),
];

/// The routes this area registers beyond the table's: Swagger UI's own files.
pub const UI_ROUTES: &[Route] = &[("get", "/docs/{file}")];

/// The document a server with `config` answers, serialized once at start: aliases spelled
/// out, `/metrics` only where it is served.
pub fn document(config: &Config) -> Vec<u8> {
    let mut api = ApiDoc::openapi();
    for (alias, of) in ALIASES {
        if let Some(item) = api.paths.paths.get(*of).cloned() {
            api.paths.paths.insert(alias.to_string(), renamed(item, alias));
        }
    }
    if config.metrics_listen.is_some() {
        api.paths.paths.remove("/metrics");
    }
    // unwrap-free: a document of plain values always serializes
    serde_json::to_vec(&api).unwrap_or_default()
}

/// An alias's operations, each with an operation id of its own.
fn renamed(mut item: PathItem, alias: &str) -> PathItem {
    let suffix: String =
        alias.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    for operation in [&mut item.get, &mut item.post].into_iter().flatten() {
        operation.operation_id = operation.operation_id.take().map(|id| format!("{id}{suffix}"));
    }
    item
}

#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "discovery",
    operation_id = "discovery_openapi",
    description = "This document: every route the server answers, with the scope each needs.",
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
    ),
)]
async fn document_json(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(state.openapi.clone())
}

#[utoipa::path(
    get,
    path = "/docs",
    tag = "discovery",
    operation_id = "discovery_docs",
    description = "Swagger UI for this document (its files are served under /docs/).",
    responses((status = 308, description = "To /docs/.")),
)]
async fn docs() -> HttpResponse {
    HttpResponse::PermanentRedirect().insert_header(("location", "/docs/")).finish()
}

#[utoipa::path(
    get,
    path = "/docs/{file}",
    tag = "discovery",
    operation_id = "discovery_docs_file",
    description = "Swagger UI's page and files, bundled into the binary.",
    params(("file" = String, Path, description = "a file of Swagger UI; empty for its page")),
    responses(
        (status = 200, description = "Done.", body = String, content_type = "text/html"),
        (status = 404, description = "No such file."),
    ),
)]
#[allow(dead_code)] // documents the files `SwaggerUi` serves; it is never routed itself
async fn docs_file() {}

routes! {
    "/openapi.json" => { get: document_json },
    "/docs" => { get: docs },
}

/// Swagger UI's files, reading the document from `/openapi.json`.
pub fn configure_ui(cfg: &mut web::ServiceConfig) {
    let ui = utoipa_swagger_ui::SwaggerUi::new("/docs/{_:.*}")
        .config(utoipa_swagger_ui::Config::from("/openapi.json"));
    cfg.service(ui);
}
