//! `/api/v1/services`: services of the service API and their API keys
//! (`read_service`/`write_service`). A key is shown once, when it is issued.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};
use tessera_core::registry::services::{ServicePatch, ServiceView};

use super::{AdminError, Bearer, PageQuery, rfc3339};
use crate::api::AppState;
use crate::api::routes::routes;

routes! {
    "/api/v1/services" => { get: list, post: create },
    "/api/v1/services/{id}" => { get: get, put: update, delete: delete },
    "/api/v1/services/{id}/api-keys" => { post: issue_key },
    "/api/v1/services/{id}/api-keys/{key_id}" => { delete: revoke_key },
}

type Answer = Result<HttpResponse, AdminError>;

/// A new service, or a change to one, as operators send it.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ServiceBody {
    name: Option<String>,
    description: Option<String>,
    callback_uris: Option<Vec<String>>,
}

impl From<ServiceBody> for ServicePatch {
    fn from(b: ServiceBody) -> ServicePatch {
        ServicePatch { name: b.name, description: b.description, callback_uris: b.callback_uris }
    }
}

fn view(s: &ServiceView) -> Value {
    let keys: Vec<Value> = s
        .api_keys
        .iter()
        .map(|k| json!({"keyId": k.key_id, "createdAt": rfc3339(k.created_at)}))
        .collect();
    json!({
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "callbackUris": s.callback_uris,
        "apiKeys": keys,
        "createdAt": rfc3339(s.created_at),
        "updatedAt": rfc3339(s.updated_at),
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/services",
    tag = "services",
    operation_id = "services_list",
    security(("bearer" = ["read_service"])),
    description = "List services. Requires the scope `read_service` (or `root`).",
    params(PageQuery),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn list(caller: Bearer, q: web::Query<PageQuery>, s: web::Data<AppState>) -> Answer {
    caller.require("read_service")?;
    let page = s.registry.list_services(q.page()?).await?;
    let services: Vec<Value> = page.items.iter().map(view).collect();
    Ok(HttpResponse::Ok().json(json!({ "services": services, "count": page.total })))
}

#[utoipa::path(
    get,
    path = "/api/v1/services/{id}",
    tag = "services",
    operation_id = "services_get",
    security(("bearer" = ["read_service"])),
    description = "One service. Requires the scope `read_service` (or `root`).",
    params(("id" = String, Path, description = "the record's id")),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn get(caller: Bearer, id: web::Path<String>, s: web::Data<AppState>) -> Answer {
    caller.require("read_service")?;
    let service = s.registry.service(id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(json!({ "service": view(&service) })))
}

#[utoipa::path(
    post,
    path = "/api/v1/services",
    tag = "services",
    operation_id = "services_create",
    security(("bearer" = ["write_service"])),
    description = "Create a service. Requires the scope `write_service` (or `root`).",
    request_body(content = ServiceBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn create(caller: Bearer, body: web::Json<ServiceBody>, s: web::Data<AppState>) -> Answer {
    caller.require("write_service")?;
    let (service, key) = caller.registry(&s).create_service(body.into_inner().into()).await?;
    tracing::info!(by = %caller.claims.client_id, service = %service.id, "service created");
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "service": view(&service), "apiKey": key })))
}

#[utoipa::path(
    put,
    path = "/api/v1/services/{id}",
    tag = "services",
    operation_id = "services_update",
    security(("bearer" = ["write_service"])),
    description = "Change a service. Requires the scope `write_service` (or `root`).",
    request_body(content = ServiceBody, content_type = "application/json"),
    params(("id" = String, Path, description = "the record's id")),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn update(
    caller: Bearer,
    id: web::Path<String>,
    body: web::Json<ServiceBody>,
    s: web::Data<AppState>,
) -> Answer {
    caller.require("write_service")?;
    let service =
        caller.registry(&s).patch_service(id.into_inner(), body.into_inner().into()).await?;
    Ok(HttpResponse::Ok().json(json!({ "service": view(&service) })))
}

#[utoipa::path(
    delete,
    path = "/api/v1/services/{id}",
    tag = "services",
    operation_id = "services_delete",
    security(("bearer" = ["write_service"])),
    description = "Delete a service. Requires the scope `write_service` (or `root`).",
    params(("id" = String, Path, description = "the record's id")),
    responses(
        (status = 204, description = "Done."),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn delete(caller: Bearer, id: web::Path<String>, s: web::Data<AppState>) -> Answer {
    caller.require("write_service")?;
    let id = id.into_inner();
    caller.registry(&s).delete_service(id.clone()).await?;
    tracing::info!(by = %caller.claims.client_id, service = %id, "service deleted");
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    post,
    path = "/api/v1/services/{id}/api-keys",
    tag = "services",
    operation_id = "services_issue_key",
    security(("bearer" = ["write_service"])),
    description = "Issue another API key, shown once. Requires the scope `write_service` (or `root`).",
    params(("id" = String, Path, description = "the record's id")),
    responses(
        (status = 201, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn issue_key(caller: Bearer, id: web::Path<String>, s: web::Data<AppState>) -> Answer {
    caller.require("write_service")?;
    let (key, secret) = caller.registry(&s).issue_api_key(id.into_inner()).await?;
    tracing::info!(by = %caller.claims.client_id, key_id = %key.key_id, "service API key issued");
    Ok(HttpResponse::Created().insert_header(("Cache-Control", "no-store")).json(
        json!({ "keyId": key.key_id, "createdAt": rfc3339(key.created_at), "apiKey": secret }),
    ))
}

#[utoipa::path(
    delete,
    path = "/api/v1/services/{id}/api-keys/{key_id}",
    tag = "services",
    operation_id = "services_revoke_key",
    security(("bearer" = ["write_service"])),
    description = "Revoke an API key. Requires the scope `write_service` (or `root`).",
    params(("id" = String, Path, description = "the record's id"), ("key_id" = String, Path, description = "the API key's id")),
    responses(
        (status = 204, description = "Done."),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn revoke_key(
    caller: Bearer,
    path: web::Path<(String, String)>,
    s: web::Data<AppState>,
) -> Answer {
    caller.require("write_service")?;
    let (service_id, key_id) = path.into_inner();
    caller.registry(&s).revoke_api_key(service_id, key_id.clone()).await?;
    tracing::info!(by = %caller.claims.client_id, key_id = %key_id, "service API key revoked");
    Ok(HttpResponse::NoContent().finish())
}
