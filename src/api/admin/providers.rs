//! `/api/v1/providers`: the OAuth providers services obtain tokens from (`read_service` /
//! `write_service`). The client secret is accepted, never shown.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};
use tessera_core::registry::providers::{NewProvider, ProviderView};

use super::{AdminError, Bearer, rfc3339};
use crate::api::AppState;
use crate::api::routes::routes;

routes! {
    "/api/v1/providers" => { get: list, post: create },
    "/api/v1/providers/{id}" => { get: get, delete: delete },
}

type Answer = Result<HttpResponse, AdminError>;

#[derive(Deserialize, utoipa::ToSchema)]
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

#[utoipa::path(
    get,
    path = "/api/v1/providers",
    tag = "providers",
    operation_id = "providers_list",
    security(("bearer" = ["read_service"])),
    description = "List providers. Requires the scope `read_service` (or `root`).",
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn list(caller: Bearer, s: web::Data<AppState>) -> Answer {
    caller.require("read_service")?;
    let providers = s.registry.providers().await?;
    let count = providers.len();
    Ok(HttpResponse::Ok().json(
        json!({ "providers": providers.iter().map(view).collect::<Vec<_>>(), "count": count }),
    ))
}

#[utoipa::path(
    get,
    path = "/api/v1/providers/{id}",
    tag = "providers",
    operation_id = "providers_get",
    security(("bearer" = ["read_service"])),
    description = "One provider. Requires the scope `read_service` (or `root`).",
    params(("id" = String, Path, description = "the record's id")),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn get(caller: Bearer, id: web::Path<String>, s: web::Data<AppState>) -> Answer {
    caller.require("read_service")?;
    let provider = s.registry.provider(id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(json!({ "provider": view(&provider) })))
}

#[utoipa::path(
    post,
    path = "/api/v1/providers",
    tag = "providers",
    operation_id = "providers_create",
    security(("bearer" = ["write_service"])),
    description = "Create a provider. Requires the scope `write_service` (or `root`).",
    request_body(content = ProviderBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn create(caller: Bearer, body: web::Json<ProviderBody>, s: web::Data<AppState>) -> Answer {
    caller.require("write_service")?;
    let provider = caller.registry(&s).create_provider(body.into_inner().into()).await?;
    tracing::info!(by = %caller.claims.client_id, provider = %provider.name, "provider registered");
    Ok(HttpResponse::Created().json(json!({ "provider": view(&provider) })))
}

#[utoipa::path(
    delete,
    path = "/api/v1/providers/{id}",
    tag = "providers",
    operation_id = "providers_delete",
    security(("bearer" = ["write_service"])),
    description = "Delete a provider. Requires the scope `write_service` (or `root`).",
    params(("id" = String, Path, description = "the record's id")),
    responses(
        (status = 204, description = "Done."),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn delete(caller: Bearer, id: web::Path<String>, s: web::Data<AppState>) -> Answer {
    caller.require("write_service")?;
    caller.registry(&s).delete_provider(id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
