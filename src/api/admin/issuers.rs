//! `/api/v1/issuers`: the external token issuers (Kubernetes, GitHub Actions, SPIFFE, any OIDC
//! provider) whose tokens apps accept in place of a secret, gated like apps (`read_app` /
//! `write_app`): an issuer is a way into every app that names it.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};
use tessera_core::registry::issuers::IssuerInput;
use tessera_storage::IssuerRecord;

use super::{AdminError, Bearer, PageQuery, rfc3339};
use crate::api::AppState;
use crate::api::routes::routes;

routes! {
    "/api/v1/issuers" => { get: list, post: create },
    "/api/v1/issuers/{id}" => { get: get, delete: delete },
}

type Answer = Result<HttpResponse, AdminError>;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct IssuerBody {
    /// The exact `iss` of its tokens: an https URL (http only on a loopback host).
    issuer: Option<String>,
    /// Where its JWK Set is; without this and `jwks`, its OIDC discovery document says.
    jwks_uri: Option<String>,
    /// Its JWK Set itself, for an issuer this server cannot reach.
    #[schema(value_type = Object)]
    jwks: Option<Value>,
    /// Any of RS256, ES256, EdDSA; RS256 when omitted.
    algorithms: Option<Vec<String>>,
    /// The oldest a token may be (now − iat), 1 to 86400 s.
    max_token_age_secs: Option<u64>,
}

pub(super) fn view(r: &IssuerRecord, s: &AppState) -> Value {
    let mut v = json!({
        "id": r.id,
        "issuer": r.issuer,
        "algorithms": r.algorithms,
        "createdAt": rfc3339(r.created_at),
        "updatedAt": rfc3339(r.updated_at),
    });
    if let Some(uri) = &r.jwks_uri {
        v["jwksUri"] = json!(uri);
    }
    if let Some(set) = r.jwks.as_deref().and_then(|t| serde_json::from_str::<Value>(t).ok()) {
        v["jwks"] = set;
    }
    if let Some(age) = r.max_token_age_secs {
        v["maxTokenAgeSecs"] = json!(age);
    }
    // What this node holds now: whether the keys arrived, and how many fetches failed.
    if let Some(trusted) = s.issuer.federation().get(&r.issuer) {
        let keys = trusted.keys();
        v["keys"] = json!(keys.keys.iter().filter_map(|k| k.kid.clone()).collect::<Vec<_>>());
        v["fetchFailures"] = json!(trusted.failures.load(std::sync::atomic::Ordering::Relaxed));
    }
    v
}

#[utoipa::path(
    get,
    path = "/api/v1/issuers",
    tag = "issuers",
    operation_id = "issuers_list",
    security(("bearer" = ["read_app"])),
    description = "List trusted issuers. Requires the scope `read_app` (or `root`).",
    params(PageQuery),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn list(caller: Bearer, q: web::Query<PageQuery>, s: web::Data<AppState>) -> Answer {
    caller.require("read_app")?;
    let page = s.registry.list_issuers(q.page()?).await?;
    let issuers: Vec<Value> = page.items.iter().map(|i| view(i, &s)).collect();
    Ok(HttpResponse::Ok().json(json!({ "issuers": issuers, "count": page.total })))
}

#[utoipa::path(
    get,
    path = "/api/v1/issuers/{id}",
    tag = "issuers",
    operation_id = "issuers_get",
    security(("bearer" = ["read_app"])),
    description = "One trusted issuer, with the key ids this node holds for it. Requires the scope `read_app` (or `root`).",
    params(("id" = String, Path, description = "the record's id")),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn get(caller: Bearer, id: web::Path<String>, s: web::Data<AppState>) -> Answer {
    caller.require("read_app")?;
    let issuer = s.registry.issuer(id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(json!({ "issuer": view(&issuer, &s) })))
}

#[utoipa::path(
    post,
    path = "/api/v1/issuers",
    tag = "issuers",
    operation_id = "issuers_create",
    security(("bearer" = ["write_app"])),
    description = "Trust an external issuer. Requires the scope `write_app` (or `root`).",
    request_body(content = IssuerBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn create(caller: Bearer, body: web::Json<IssuerBody>, s: web::Data<AppState>) -> Answer {
    caller.require("write_app")?;
    let b = body.into_inner();
    let input = IssuerInput {
        issuer: b.issuer,
        jwks_uri: b.jwks_uri,
        jwks: b.jwks,
        algorithms: b.algorithms,
        max_token_age_secs: b.max_token_age_secs,
    };
    let issuer = caller.registry(&s).create_issuer(input).await?;
    tracing::info!(by = %caller.claims.client_id, issuer = %issuer.issuer, "issuer trusted");
    Ok(HttpResponse::Created().json(json!({ "issuer": view(&issuer, &s) })))
}

#[utoipa::path(
    delete,
    path = "/api/v1/issuers/{id}",
    tag = "issuers",
    operation_id = "issuers_delete",
    security(("bearer" = ["write_app"])),
    description = "Stop trusting an issuer; refused while apps' federated identities name it. Requires the scope `write_app` (or `root`).",
    params(("id" = String, Path, description = "the record's id")),
    responses(
        (status = 204, description = "Done."),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn delete(caller: Bearer, id: web::Path<String>, s: web::Data<AppState>) -> Answer {
    caller.require("write_app")?;
    let id = id.into_inner();
    caller.registry(&s).delete_issuer(id.clone()).await?;
    tracing::info!(by = %caller.claims.client_id, issuer = %id, "issuer deleted");
    Ok(HttpResponse::NoContent().finish())
}
