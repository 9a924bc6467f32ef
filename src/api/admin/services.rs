//! `/api/v1/services`: services of the service API and their API keys
//! (`read_service`/`write_service`). A key is shown once, when it is issued.

use actix_web::{HttpResponse, web};
use serde_json::{Value, json};
use tessera_core::registry::services::{
    CreateService, DeleteService, GetService, IssueApiKey, ListServices, RevokeApiKey,
    ServiceInput, ServiceView, UpdateService,
};

use super::{AdminError, Bearer, PageQuery, rfc3339};
use crate::server::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/v1/services").get(list).post(create))
        .service(
            web::resource("/api/v1/services/{id}")
                .get(get)
                .route(web::put().to(update))
                .route(web::delete().to(delete)),
        )
        .service(web::resource("/api/v1/services/{id}/api-keys").post(issue_key))
        .service(
            web::resource("/api/v1/services/{id}/api-keys/{key_id}")
                .route(web::delete().to(revoke_key)),
        );
}

type Answer = Result<HttpResponse, AdminError>;

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

async fn list(caller: Bearer, q: web::Query<PageQuery>, s: web::Data<AppState>) -> Answer {
    caller.require("read_service")?;
    let (services, count) = s.registry.send(ListServices { page: q.page()? }).await?;
    Ok(HttpResponse::Ok()
        .json(json!({ "services": services.iter().map(view).collect::<Vec<_>>(), "count": count })))
}

async fn get(caller: Bearer, id: web::Path<String>, s: web::Data<AppState>) -> Answer {
    caller.require("read_service")?;
    let service = s.registry.send(GetService { id: id.into_inner() }).await??;
    Ok(HttpResponse::Ok().json(json!({ "service": view(&service) })))
}

async fn create(caller: Bearer, body: web::Json<ServiceInput>, s: web::Data<AppState>) -> Answer {
    caller.require("write_service")?;
    let (service, key) = s
        .registry
        .send(CreateService { caller: caller.caller(), input: body.into_inner() })
        .await??;
    tracing::info!(by = %caller.claims.client_id, service = %service.id, "service created");
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "service": view(&service), "apiKey": key })))
}

async fn update(
    caller: Bearer,
    id: web::Path<String>,
    body: web::Json<ServiceInput>,
    s: web::Data<AppState>,
) -> Answer {
    caller.require("write_service")?;
    let msg =
        UpdateService { caller: caller.caller(), id: id.into_inner(), input: body.into_inner() };
    let service = s.registry.send(msg).await??;
    Ok(HttpResponse::Ok().json(json!({ "service": view(&service) })))
}

async fn delete(caller: Bearer, id: web::Path<String>, s: web::Data<AppState>) -> Answer {
    caller.require("write_service")?;
    let id = id.into_inner();
    s.registry.send(DeleteService { caller: caller.caller(), id: id.clone() }).await??;
    tracing::info!(by = %caller.claims.client_id, service = %id, "service deleted");
    Ok(HttpResponse::NoContent().finish())
}

async fn issue_key(caller: Bearer, id: web::Path<String>, s: web::Data<AppState>) -> Answer {
    caller.require("write_service")?;
    let (key, secret) = s
        .registry
        .send(IssueApiKey { caller: caller.caller(), service_id: id.into_inner() })
        .await??;
    tracing::info!(by = %caller.claims.client_id, key_id = %key.key_id, "service API key issued");
    Ok(HttpResponse::Created().insert_header(("Cache-Control", "no-store")).json(
        json!({ "keyId": key.key_id, "createdAt": rfc3339(key.created_at), "apiKey": secret }),
    ))
}

async fn revoke_key(
    caller: Bearer,
    path: web::Path<(String, String)>,
    s: web::Data<AppState>,
) -> Answer {
    caller.require("write_service")?;
    let (service_id, key_id) = path.into_inner();
    s.registry
        .send(RevokeApiKey { caller: caller.caller(), service_id, key_id: key_id.clone() })
        .await??;
    tracing::info!(by = %caller.claims.client_id, key_id = %key_id, "service API key revoked");
    Ok(HttpResponse::NoContent().finish())
}
