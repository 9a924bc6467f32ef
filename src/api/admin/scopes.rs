//! `/api/v1/scopes` and `/api/v1/roles`: the registry's scopes and roles, gated by
//! `read_scope`/`write_scope` and `read_role`/`write_role`.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::Value;
use serde_json::json;
use tessera_core::registry::scopes::{RolePatch, RoleView, ScopePatch, ScopeView};

use super::{AdminError, Bearer, PageQuery};
use crate::api::AppState;
use crate::api::routes::routes;

routes! {
    "/api/v1/scopes" => { get: list_scopes, post: create_scope },
    "/api/v1/scopes/{id}" => { get: get_scope, put: update_scope, delete: delete_scope },
    "/api/v1/roles" => { get: list_roles, post: create_role },
    "/api/v1/roles/{id}" => { get: get_role, put: update_role, delete: delete_role },
}

type Answer = Result<HttpResponse, AdminError>;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ScopeBody {
    name: Option<String>,
    note: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

impl From<ScopeBody> for ScopePatch {
    fn from(b: ScopeBody) -> ScopePatch {
        ScopePatch { name: b.name, note: b.note, kind: b.kind }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RoleBody {
    name: Option<String>,
    note: Option<String>,
    scopes: Option<Vec<String>>,
    privileged: Option<bool>,
}

impl From<RoleBody> for RolePatch {
    fn from(b: RoleBody) -> RolePatch {
        RolePatch { name: b.name, note: b.note, scopes: b.scopes, privileged: b.privileged }
    }
}

fn scope_json(s: &ScopeView) -> Value {
    json!({ "id": s.id, "name": s.name, "type": "s2s", "note": s.note, "builtIn": s.built_in })
}

fn role_json(r: &RoleView) -> Value {
    json!({
        "id": r.id, "name": r.name, "note": r.note, "scopes": r.scopes,
        "privileged": r.privileged, "builtIn": r.built_in,
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/scopes",
    tag = "scopes",
    operation_id = "scopes_list_scopes",
    security(("bearer" = ["read_scope"])),
    description = "List scopes. Requires the scope `read_scope` (or `root`).",
    params(PageQuery),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn list_scopes(caller: Bearer, q: web::Query<PageQuery>, s: web::Data<AppState>) -> Answer {
    caller.require("read_scope")?;
    let page = s.registry.list_scopes(q.page()?).await?;
    let scopes: Vec<Value> = page.items.iter().map(scope_json).collect();
    Ok(HttpResponse::Ok().json(json!({ "scopes": scopes, "count": page.total })))
}

#[utoipa::path(
    get,
    path = "/api/v1/scopes/{id}",
    tag = "scopes",
    operation_id = "scopes_get_scope",
    security(("bearer" = ["read_scope"])),
    description = "One scope. Requires the scope `read_scope` (or `root`).",
    params(("id" = String, Path, description = "the record's id")),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn get_scope(caller: Bearer, id: web::Path<String>, s: web::Data<AppState>) -> Answer {
    caller.require("read_scope")?;
    let scope = s.registry.scope(id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(json!({ "scope": scope_json(&scope) })))
}

#[utoipa::path(
    post,
    path = "/api/v1/scopes",
    tag = "scopes",
    operation_id = "scopes_create_scope",
    security(("bearer" = ["write_scope"])),
    description = "Create a scope. Requires the scope `write_scope` (or `root`).",
    request_body(content = ScopeBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn create_scope(
    caller: Bearer,
    body: web::Json<ScopeBody>,
    s: web::Data<AppState>,
) -> Answer {
    caller.require("write_scope")?;
    let scope = caller.registry(&s).create_scope(body.into_inner().into()).await?;
    tracing::info!(by = %caller.claims.client_id, scope = %scope.name, "scope created");
    Ok(HttpResponse::Created().json(json!({ "scope": scope_json(&scope) })))
}

#[utoipa::path(
    put,
    path = "/api/v1/scopes/{id}",
    tag = "scopes",
    operation_id = "scopes_update_scope",
    security(("bearer" = ["write_scope"])),
    description = "Change a scope. Requires the scope `write_scope` (or `root`).",
    request_body(content = ScopeBody, content_type = "application/json"),
    params(("id" = String, Path, description = "the record's id")),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn update_scope(
    caller: Bearer,
    id: web::Path<String>,
    body: web::Json<ScopeBody>,
    s: web::Data<AppState>,
) -> Answer {
    caller.require("write_scope")?;
    let (id, patch) = (id.into_inner(), body.into_inner().into());
    let scope = caller.registry(&s).update_scope(caller.caller(), id, patch).await?;
    tracing::info!(by = %caller.claims.client_id, scope = %scope.name, "scope updated");
    Ok(HttpResponse::Ok().json(json!({ "scope": scope_json(&scope) })))
}

#[utoipa::path(
    delete,
    path = "/api/v1/scopes/{id}",
    tag = "scopes",
    operation_id = "scopes_delete_scope",
    security(("bearer" = ["write_scope"])),
    description = "Delete a scope. Requires the scope `write_scope` (or `root`).",
    params(("id" = String, Path, description = "the record's id")),
    responses(
        (status = 204, description = "Done."),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn delete_scope(caller: Bearer, id: web::Path<String>, s: web::Data<AppState>) -> Answer {
    caller.require("write_scope")?;
    let id = id.into_inner();
    caller.registry(&s).delete_scope(caller.caller(), id.clone()).await?;
    tracing::info!(by = %caller.claims.client_id, scope = %id, "scope deleted");
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    get,
    path = "/api/v1/roles",
    tag = "roles",
    operation_id = "roles_list_roles",
    security(("bearer" = ["read_role"])),
    description = "List roles. Requires the scope `read_role` (or `root`).",
    params(PageQuery),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn list_roles(caller: Bearer, q: web::Query<PageQuery>, s: web::Data<AppState>) -> Answer {
    caller.require("read_role")?;
    let page = s.registry.list_roles(q.page()?).await?;
    let roles: Vec<Value> = page.items.iter().map(role_json).collect();
    Ok(HttpResponse::Ok().json(json!({ "roles": roles, "count": page.total })))
}

#[utoipa::path(
    get,
    path = "/api/v1/roles/{id}",
    tag = "roles",
    operation_id = "roles_get_role",
    security(("bearer" = ["read_role"])),
    description = "One role. Requires the scope `read_role` (or `root`).",
    params(("id" = String, Path, description = "the record's id")),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn get_role(caller: Bearer, id: web::Path<String>, s: web::Data<AppState>) -> Answer {
    caller.require("read_role")?;
    let role = s.registry.role(id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(json!({ "role": role_json(&role) })))
}

#[utoipa::path(
    post,
    path = "/api/v1/roles",
    tag = "roles",
    operation_id = "roles_create_role",
    security(("bearer" = ["write_role"])),
    description = "Create a role. Requires the scope `write_role` (or `root`).",
    request_body(content = RoleBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn create_role(caller: Bearer, body: web::Json<RoleBody>, s: web::Data<AppState>) -> Answer {
    caller.require("write_role")?;
    let role = caller.registry(&s).create_role(caller.caller(), body.into_inner().into()).await?;
    tracing::info!(by = %caller.claims.client_id, role = %role.name, "role created");
    Ok(HttpResponse::Created().json(json!({ "role": role_json(&role) })))
}

#[utoipa::path(
    put,
    path = "/api/v1/roles/{id}",
    tag = "roles",
    operation_id = "roles_update_role",
    security(("bearer" = ["write_role"])),
    description = "Change a role. Requires the scope `write_role` (or `root`).",
    request_body(content = RoleBody, content_type = "application/json"),
    params(("id" = String, Path, description = "the record's id")),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn update_role(
    caller: Bearer,
    id: web::Path<String>,
    body: web::Json<RoleBody>,
    s: web::Data<AppState>,
) -> Answer {
    caller.require("write_role")?;
    let (id, patch) = (id.into_inner(), body.into_inner().into());
    let role = caller.registry(&s).update_role(caller.caller(), id, patch).await?;
    tracing::info!(by = %caller.claims.client_id, role = %role.name, "role updated");
    Ok(HttpResponse::Ok().json(json!({ "role": role_json(&role) })))
}

#[utoipa::path(
    delete,
    path = "/api/v1/roles/{id}",
    tag = "roles",
    operation_id = "roles_delete_role",
    security(("bearer" = ["write_role"])),
    description = "Delete a role. Requires the scope `write_role` (or `root`).",
    params(("id" = String, Path, description = "the record's id")),
    responses(
        (status = 204, description = "Done."),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn delete_role(caller: Bearer, id: web::Path<String>, s: web::Data<AppState>) -> Answer {
    caller.require("write_role")?;
    let id = id.into_inner();
    caller.registry(&s).delete_role(caller.caller(), id.clone()).await?;
    tracing::info!(by = %caller.claims.client_id, role = %id, "role deleted");
    Ok(HttpResponse::NoContent().finish())
}
