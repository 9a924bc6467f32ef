//! `/api/v1/resources`: the APIs that accept Tessera's tokens (RFC 8707), gated by
//! `read_resource`/`write_resource`. Apps are granted their scopes in the app's `resources`.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};
use tessera_core::registry::resources::ResourcePatch;
use tessera_storage::ResourceRecord;

use super::{AdminError, Bearer, PageQuery, rfc3339};
use crate::api::AppState;
use crate::api::routes::routes;

routes! {
    "/api/v1/resources" => { get: list, post: create },
    "/api/v1/resources/{id}" => { get: get, put: update, delete: delete },
}

type Answer = Result<HttpResponse, AdminError>;

/// A new resource, or a change to one; on a change `accessTokenTtlSecs` may be `null` to clear
/// it, which is why it tells absent from `null`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ResourceBody {
    /// An absolute URI without a fragment: the `aud` of its tokens.
    identifier: Option<String>,
    name: Option<String>,
    /// Registered scopes apps may be granted for it.
    scopes: Option<Vec<String>>,
    #[serde(default, deserialize_with = "super::apps::present")]
    access_token_ttl_secs: Option<Option<u64>>,
}

impl From<ResourceBody> for ResourcePatch {
    fn from(b: ResourceBody) -> ResourcePatch {
        ResourcePatch {
            identifier: b.identifier,
            name: b.name,
            scopes: b.scopes,
            access_token_ttl_secs: b.access_token_ttl_secs,
        }
    }
}

fn view(r: &ResourceRecord) -> Value {
    let mut v = json!({
        "id": r.id,
        "identifier": r.identifier,
        "name": r.name,
        "scopes": r.scopes,
        "createdAt": rfc3339(r.created_at),
        "updatedAt": rfc3339(r.updated_at),
    });
    if let Some(ttl) = r.access_token_ttl_secs {
        v["accessTokenTtlSecs"] = json!(ttl);
    }
    v
}

#[utoipa::path(
    get,
    path = "/api/v1/resources",
    tag = "resources",
    operation_id = "resources_list",
    security(("bearer" = ["read_resource"])),
    description = "List resources. Requires the scope `read_resource` (or `root`).",
    params(PageQuery),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn list(caller: Bearer, q: web::Query<PageQuery>, s: web::Data<AppState>) -> Answer {
    caller.require("read_resource")?;
    let page = s.registry.list_resources(q.page()?).await?;
    let resources: Vec<Value> = page.items.iter().map(view).collect();
    Ok(HttpResponse::Ok().json(json!({ "resources": resources, "count": page.total })))
}

#[utoipa::path(
    get,
    path = "/api/v1/resources/{id}",
    tag = "resources",
    operation_id = "resources_get",
    security(("bearer" = ["read_resource"])),
    description = "One resource. Requires the scope `read_resource` (or `root`).",
    params(("id" = String, Path, description = "the record's id")),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn get(caller: Bearer, id: web::Path<String>, s: web::Data<AppState>) -> Answer {
    caller.require("read_resource")?;
    let resource = s.registry.resource(id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(json!({ "resource": view(&resource) })))
}

#[utoipa::path(
    post,
    path = "/api/v1/resources",
    tag = "resources",
    operation_id = "resources_create",
    security(("bearer" = ["write_resource"])),
    description = "Register a resource. Requires the scope `write_resource` (or `root`).",
    request_body(content = ResourceBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn create(caller: Bearer, body: web::Json<ResourceBody>, s: web::Data<AppState>) -> Answer {
    caller.require("write_resource")?;
    let resource = caller.registry(&s).create_resource(body.into_inner().into()).await?;
    tracing::info!(by = %caller.claims.client_id, resource = %resource.identifier, "resource created");
    Ok(HttpResponse::Created().json(json!({ "resource": view(&resource) })))
}

#[utoipa::path(
    put,
    path = "/api/v1/resources/{id}",
    tag = "resources",
    operation_id = "resources_update",
    security(("bearer" = ["write_resource"])),
    description = "Change a resource; a new identifier or fewer scopes reach every app's grant. Requires the scope `write_resource` (or `root`).",
    request_body(content = ResourceBody, content_type = "application/json"),
    params(("id" = String, Path, description = "the record's id")),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn update(
    caller: Bearer,
    id: web::Path<String>,
    body: web::Json<ResourceBody>,
    s: web::Data<AppState>,
) -> Answer {
    caller.require("write_resource")?;
    let (id, patch) = (id.into_inner(), body.into_inner().into());
    let resource = caller.registry(&s).update_resource(caller.caller(), id, patch).await?;
    tracing::info!(by = %caller.claims.client_id, resource = %resource.identifier, "resource updated");
    Ok(HttpResponse::Ok().json(json!({ "resource": view(&resource) })))
}

#[utoipa::path(
    delete,
    path = "/api/v1/resources/{id}",
    tag = "resources",
    operation_id = "resources_delete",
    security(("bearer" = ["write_resource"])),
    description = "Delete a resource and every app's grant for it. Requires the scope `write_resource` (or `root`).",
    params(("id" = String, Path, description = "the record's id")),
    responses(
        (status = 204, description = "Done."),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn delete(caller: Bearer, id: web::Path<String>, s: web::Data<AppState>) -> Answer {
    caller.require("write_resource")?;
    let id = id.into_inner();
    caller.registry(&s).delete_resource(caller.caller(), id.clone()).await?;
    tracing::info!(by = %caller.claims.client_id, resource = %id, "resource deleted");
    Ok(HttpResponse::NoContent().finish())
}
