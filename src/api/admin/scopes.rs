//! `/api/v1/scopes` and `/api/v1/roles`: the registry's scopes and roles, gated by
//! `read_scope`/`write_scope` and `read_role`/`write_role`.

use actix_web::{HttpResponse, web};
use serde_json::json;
use tessera_core::registry::scopes::{
    CreateRole, CreateScope, DeleteRole, DeleteScope, GetRole, GetScope, ListRoles, ListScopes,
    RoleInput, ScopeInput, UpdateRole, UpdateScope,
};

use super::{AdminError, Bearer, PageQuery};
use crate::server::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/v1/scopes").get(list_scopes).post(create_scope))
        .service(
            web::resource("/api/v1/scopes/{id}")
                .get(get_scope)
                .route(web::put().to(update_scope))
                .route(web::delete().to(delete_scope)),
        )
        .service(web::resource("/api/v1/roles").get(list_roles).post(create_role))
        .service(
            web::resource("/api/v1/roles/{id}")
                .get(get_role)
                .route(web::put().to(update_role))
                .route(web::delete().to(delete_role)),
        );
}

type Answer = Result<HttpResponse, AdminError>;

async fn list_scopes(caller: Bearer, q: web::Query<PageQuery>, s: web::Data<AppState>) -> Answer {
    caller.require("read_scope")?;
    let (scopes, count) = s.registry.send(ListScopes { page: q.page()? }).await?;
    Ok(HttpResponse::Ok().json(json!({ "scopes": scopes, "count": count })))
}

async fn get_scope(caller: Bearer, id: web::Path<String>, s: web::Data<AppState>) -> Answer {
    caller.require("read_scope")?;
    let scope = s.registry.send(GetScope { id: id.into_inner() }).await??;
    Ok(HttpResponse::Ok().json(json!({ "scope": scope })))
}

async fn create_scope(
    caller: Bearer,
    body: web::Json<ScopeInput>,
    s: web::Data<AppState>,
) -> Answer {
    caller.require("write_scope")?;
    let scope = s
        .registry
        .send(CreateScope { caller: caller.caller(), input: body.into_inner() })
        .await??;
    tracing::info!(by = %caller.claims.client_id, scope = %scope.name, "scope created");
    Ok(HttpResponse::Created().json(json!({ "scope": scope })))
}

async fn update_scope(
    caller: Bearer,
    id: web::Path<String>,
    body: web::Json<ScopeInput>,
    s: web::Data<AppState>,
) -> Answer {
    caller.require("write_scope")?;
    let msg =
        UpdateScope { caller: caller.caller(), id: id.into_inner(), input: body.into_inner() };
    let scope = s.registry.send(msg).await??;
    tracing::info!(by = %caller.claims.client_id, scope = %scope.name, "scope updated");
    Ok(HttpResponse::Ok().json(json!({ "scope": scope })))
}

async fn delete_scope(caller: Bearer, id: web::Path<String>, s: web::Data<AppState>) -> Answer {
    caller.require("write_scope")?;
    let id = id.into_inner();
    s.registry.send(DeleteScope { caller: caller.caller(), id: id.clone() }).await??;
    tracing::info!(by = %caller.claims.client_id, scope = %id, "scope deleted");
    Ok(HttpResponse::NoContent().finish())
}

async fn list_roles(caller: Bearer, q: web::Query<PageQuery>, s: web::Data<AppState>) -> Answer {
    caller.require("read_role")?;
    let (roles, count) = s.registry.send(ListRoles { page: q.page()? }).await?;
    Ok(HttpResponse::Ok().json(json!({ "roles": roles, "count": count })))
}

async fn get_role(caller: Bearer, id: web::Path<String>, s: web::Data<AppState>) -> Answer {
    caller.require("read_role")?;
    let role = s.registry.send(GetRole { id: id.into_inner() }).await??;
    Ok(HttpResponse::Ok().json(json!({ "role": role })))
}

async fn create_role(caller: Bearer, body: web::Json<RoleInput>, s: web::Data<AppState>) -> Answer {
    caller.require("write_role")?;
    let role =
        s.registry.send(CreateRole { caller: caller.caller(), input: body.into_inner() }).await??;
    tracing::info!(by = %caller.claims.client_id, role = %role.name, "role created");
    Ok(HttpResponse::Created().json(json!({ "role": role })))
}

async fn update_role(
    caller: Bearer,
    id: web::Path<String>,
    body: web::Json<RoleInput>,
    s: web::Data<AppState>,
) -> Answer {
    caller.require("write_role")?;
    let msg = UpdateRole { caller: caller.caller(), id: id.into_inner(), input: body.into_inner() };
    let role = s.registry.send(msg).await??;
    tracing::info!(by = %caller.claims.client_id, role = %role.name, "role updated");
    Ok(HttpResponse::Ok().json(json!({ "role": role })))
}

async fn delete_role(caller: Bearer, id: web::Path<String>, s: web::Data<AppState>) -> Answer {
    caller.require("write_role")?;
    let id = id.into_inner();
    s.registry.send(DeleteRole { caller: caller.caller(), id: id.clone() }).await??;
    tracing::info!(by = %caller.claims.client_id, role = %id, "role deleted");
    Ok(HttpResponse::NoContent().finish())
}
