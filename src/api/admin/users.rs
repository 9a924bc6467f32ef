//! `/api/v1/users`: list, get, update, delete and invitations (`read_user`/`write_user`), with
//! the privileged-role rule applied by the registry on every path that sets roles.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};
use tessera_core::registry::users::{Invitation, UserPatch, UserView};

use super::{AdminError, Bearer, PageQuery, rfc3339};
use crate::api::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/v1/users").get(list))
        .service(web::resource("/api/v1/users/invitations").post(invite))
        .service(
            web::resource("/api/v1/users/{auth_id}")
                .get(get)
                .route(web::put().to(update))
                .route(web::delete().to(delete)),
        );
}

type Answer = Result<HttpResponse, AdminError>;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UserPatchBody {
    first_name: Option<String>,
    last_name: Option<String>,
    is_active: Option<bool>,
    roles: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InvitationBody {
    email: String,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    roles: Vec<String>,
}

/// A user as the API shows it, dates in RFC 3339 like every other admin answer.
pub fn user_json(u: &UserView) -> Value {
    json!({
        "authId": u.auth_id, "username": u.username, "email": u.email,
        "firstName": u.first_name, "lastName": u.last_name, "roles": u.roles,
        "isActive": u.is_active, "createdAt": rfc3339(u.created_at),
        "updatedAt": rfc3339(u.updated_at),
    })
}

async fn list(caller: Bearer, q: web::Query<PageQuery>, s: web::Data<AppState>) -> Answer {
    caller.require("read_user")?;
    let page = s.registry.list_users(q.page()?).await?;
    let users: Vec<Value> = page.items.iter().map(user_json).collect();
    Ok(HttpResponse::Ok().json(json!({ "users": users, "count": page.total })))
}

async fn get(caller: Bearer, id: web::Path<String>, s: web::Data<AppState>) -> Answer {
    caller.require("read_user")?;
    let user = s.registry.user(id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(json!({ "user": user_json(&user) })))
}

async fn update(
    caller: Bearer,
    id: web::Path<String>,
    body: web::Json<UserPatchBody>,
    s: web::Data<AppState>,
) -> Answer {
    caller.require("write_user")?;
    let UserPatchBody { first_name, last_name, is_active, roles } = body.into_inner();
    let patch = UserPatch { first_name, last_name, is_active, roles };
    let user = caller.registry(&s).update_user(caller.caller(), id.into_inner(), patch).await?;
    tracing::info!(by = %caller.claims.client_id, auth_id = %user.auth_id, "user updated");
    Ok(HttpResponse::Ok().json(json!({ "user": user_json(&user) })))
}

async fn delete(caller: Bearer, id: web::Path<String>, s: web::Data<AppState>) -> Answer {
    caller.require("write_user")?;
    let auth_id = id.into_inner();
    caller.registry(&s).delete_user(caller.caller(), auth_id.clone()).await?;
    tracing::info!(by = %caller.claims.client_id, auth_id = %auth_id, "user deleted");
    Ok(HttpResponse::NoContent().finish())
}

/// `201` with the inactive user and its one-time `invitationToken` (shown only here), which
/// `POST /consumer/invitations/accept` turns into an active user with a password.
async fn invite(caller: Bearer, body: web::Json<InvitationBody>, s: web::Data<AppState>) -> Answer {
    caller.require("write_user")?;
    let InvitationBody { email, username, first_name, last_name, roles } = body.into_inner();
    let input = Invitation { email, username, first_name, last_name, roles };
    let ttl = s.config.invitation_ttl;
    let (user, token) = caller.registry(&s).invite_user(caller.caller(), input, ttl).await?;
    tracing::info!(by = %caller.claims.client_id, auth_id = %user.auth_id, "user invited");
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "user": user_json(&user), "invitationToken": token })))
}
