//! `/api/v1/providers`: the OAuth providers services obtain tokens from (`read_service` /
//! `write_service`). The client secret is accepted, never shown.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};
use tessera_core::registry::providers::{NewProvider, ProviderView};

use super::{AdminError, Bearer, rfc3339};
use crate::api::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/v1/providers").get(list).post(create))
        .service(web::resource("/api/v1/providers/{id}").get(get).route(web::delete().to(delete)));
}

type Answer = Result<HttpResponse, AdminError>;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ProviderBody {
    name: String,
    authorize_url: String,
    token_url: String,
    client_id: String,
    client_secret: String,
}

impl From<ProviderBody> for NewProvider {
    fn from(b: ProviderBody) -> NewProvider {
        NewProvider {
            name: b.name,
            authorize_url: b.authorize_url,
            token_url: b.token_url,
            client_id: b.client_id,
            client_secret: b.client_secret,
        }
    }
}

fn view(p: &ProviderView) -> Value {
    json!({
        "id": p.id, "name": p.name, "authorizeUrl": p.authorize_url, "tokenUrl": p.token_url,
        "clientId": p.client_id, "createdAt": rfc3339(p.created_at),
    })
}

async fn list(caller: Bearer, s: web::Data<AppState>) -> Answer {
    caller.require("read_service")?;
    let providers = s.registry.providers().await?;
    let count = providers.len();
    Ok(HttpResponse::Ok().json(
        json!({ "providers": providers.iter().map(view).collect::<Vec<_>>(), "count": count }),
    ))
}

async fn get(caller: Bearer, id: web::Path<String>, s: web::Data<AppState>) -> Answer {
    caller.require("read_service")?;
    let provider = s.registry.provider(id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(json!({ "provider": view(&provider) })))
}

async fn create(caller: Bearer, body: web::Json<ProviderBody>, s: web::Data<AppState>) -> Answer {
    caller.require("write_service")?;
    let provider = caller.registry(&s).create_provider(body.into_inner().into()).await?;
    tracing::info!(by = %caller.claims.client_id, provider = %provider.name, "provider registered");
    Ok(HttpResponse::Created().json(json!({ "provider": view(&provider) })))
}

async fn delete(caller: Bearer, id: web::Path<String>, s: web::Data<AppState>) -> Answer {
    caller.require("write_service")?;
    caller.registry(&s).delete_provider(id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
