//! Apps: CRUD and Stytch-style secret rotation, every change through the ClientRegistry.

use actix_web::{HttpResponse, web};
use serde_json::{Value, json};
use tessera_core::registry::app::{AppPatch, NewApp};
use tessera_core::registry::clients::{
    CreateApp, DeleteApp, GetApp, ListApps, RotateSecret, RotationStep, UpdateApp,
};
use tessera_storage::AppRecord;

use super::{AdminError, Bearer, PageQuery, rfc3339};
use crate::server::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/v1/apps").route(web::get().to(list)).route(web::post().to(create)),
    )
    .service(
        web::resource("/api/v1/apps/{id}")
            .route(web::get().to(get))
            .route(web::put().to(update))
            .route(web::delete().to(delete)),
    )
    .service(web::resource("/api/v1/apps/{id}/secrets/rotate/start").post(rotate_start))
    .service(web::resource("/api/v1/apps/{id}/secrets/rotate").post(rotate_complete))
    .service(web::resource("/api/v1/apps/{id}/secrets/rotate/cancel").post(rotate_cancel));
}

/// An app as the API shows it: never a secret or its hash.
pub fn view(app: &AppRecord) -> Value {
    let mut v = json!({
        "id": app.id,
        "clientId": app.client_id,
        "name": app.name,
        "description": app.description,
        "type": "s2s",
        "scopes": app.scopes,
        "grantTypes": app.grant_types,
        "isActive": app.is_active,
        "metadata": app.metadata,
        "tokenClaims": app.token_claims,
        "isSecretRotating": app.next_secret_hash.is_some(),
        "createdAt": rfc3339(app.created_at),
        "updatedAt": rfc3339(app.updated_at),
    });
    if let Some(ttl) = app.access_token_ttl_secs {
        v["accessTokenTtlSecs"] = json!(ttl);
    }
    if let Some(jwk) = &app.public_key_jwk {
        v["publicKeyJwk"] = jwk.clone();
    }
    v
}

async fn list(
    caller: Bearer,
    query: web::Query<PageQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    caller.require("read_app")?;
    let page = state.registry.send(ListApps(query.page()?)).await?;
    let apps: Vec<_> = page.apps.iter().map(view).collect();
    Ok(HttpResponse::Ok().json(json!({ "apps": apps, "count": page.count })))
}

async fn get(
    caller: Bearer,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    caller.require("read_app")?;
    let app = state.registry.send(GetApp(id.into_inner())).await??;
    Ok(HttpResponse::Ok().json(json!({ "app": view(&app) })))
}

async fn create(
    caller: Bearer,
    body: web::Json<NewApp>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    caller.require("write_app")?;
    let (app, secret) = state
        .registry
        .send(CreateApp { caller: caller.caller(), app: body.into_inner() })
        .await??;
    tracing::info!(by = %caller.claims.client_id, app = %app.id, client_id = %app.client_id, "app created");
    let mut v = view(&app);
    v["secret"] = json!(secret);
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "app": v })))
}

async fn update(
    caller: Bearer,
    id: web::Path<String>,
    body: web::Json<AppPatch>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    caller.require("write_app")?;
    let msg = UpdateApp { caller: caller.caller(), id: id.into_inner(), patch: body.into_inner() };
    let app = state.registry.send(msg).await??;
    tracing::info!(by = %caller.claims.client_id, app = %app.id, "app updated");
    Ok(HttpResponse::Ok().json(json!({ "app": view(&app) })))
}

async fn delete(
    caller: Bearer,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    caller.require("write_app")?;
    let id = id.into_inner();
    state.registry.send(DeleteApp { caller: caller.caller(), id: id.clone() }).await??;
    tracing::info!(by = %caller.claims.client_id, app = %id, "app deleted");
    Ok(HttpResponse::NoContent().finish())
}

async fn rotate(
    caller: Bearer,
    id: web::Path<String>,
    state: web::Data<AppState>,
    step: RotationStep,
) -> Result<HttpResponse, AdminError> {
    caller.require("write_app")?;
    let msg = RotateSecret { caller: caller.caller(), id: id.into_inner(), step };
    let (app, next) = state.registry.send(msg).await??;
    tracing::info!(by = %caller.claims.client_id, app = %app.id, ?step, "app secret rotation");
    let mut body = json!({ "app": view(&app) });
    if let Some(secret) = next {
        body["nextSecret"] = json!(secret);
    }
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(body))
}

async fn rotate_start(
    c: Bearer,
    id: web::Path<String>,
    s: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    rotate(c, id, s, RotationStep::Start).await
}

async fn rotate_complete(
    c: Bearer,
    id: web::Path<String>,
    s: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    rotate(c, id, s, RotationStep::Complete).await
}

async fn rotate_cancel(
    c: Bearer,
    id: web::Path<String>,
    s: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    rotate(c, id, s, RotationStep::Cancel).await
}
