//! `/api/v1/users`: list, get, update, delete and invitations (`read_user`/`write_user`), with
//! the privileged-role rule applied by the registry on every path that sets roles.

use actix_web::{HttpResponse, web};
use serde_json::json;
use tessera_core::registry::users::{
    DeleteUser, GetUser, Invitation, InviteUser, ListUsers, UpdateUser, UserPatch,
};

use super::{AdminError, Bearer, PageQuery, rfc3339};
use crate::server::AppState;

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

/// A user as the API shows it, dates in RFC 3339 like every other admin answer.
pub fn user_json(user: &tessera_core::registry::users::UserView) -> serde_json::Value {
    let mut v = json!(user);
    v["createdAt"] = json!(rfc3339(user.created_at));
    v["updatedAt"] = json!(rfc3339(user.updated_at));
    v
}

async fn list(caller: Bearer, q: web::Query<PageQuery>, s: web::Data<AppState>) -> Answer {
    caller.require("read_user")?;
    let (users, count) = s.registry.send(ListUsers { page: q.page()? }).await?;
    Ok(HttpResponse::Ok()
        .json(json!({ "users": users.iter().map(user_json).collect::<Vec<_>>(), "count": count })))
}

async fn get(caller: Bearer, id: web::Path<String>, s: web::Data<AppState>) -> Answer {
    caller.require("read_user")?;
    let user = s.registry.send(GetUser { auth_id: id.into_inner() }).await??;
    Ok(HttpResponse::Ok().json(json!({ "user": user_json(&user) })))
}

async fn update(
    caller: Bearer,
    id: web::Path<String>,
    body: web::Json<UserPatch>,
    s: web::Data<AppState>,
) -> Answer {
    caller.require("write_user")?;
    let msg =
        UpdateUser { caller: caller.caller(), auth_id: id.into_inner(), patch: body.into_inner() };
    let user = s.registry.send(msg).await??;
    tracing::info!(by = %caller.claims.client_id, auth_id = %user.auth_id, "user updated");
    Ok(HttpResponse::Ok().json(json!({ "user": user_json(&user) })))
}

async fn delete(caller: Bearer, id: web::Path<String>, s: web::Data<AppState>) -> Answer {
    caller.require("write_user")?;
    let auth_id = id.into_inner();
    s.registry.send(DeleteUser { caller: caller.caller(), auth_id: auth_id.clone() }).await??;
    tracing::info!(by = %caller.claims.client_id, auth_id = %auth_id, "user deleted");
    Ok(HttpResponse::NoContent().finish())
}

/// `201` with the inactive user and its one-time `invitationToken` (shown only here), which
/// `POST /consumer/invitations/accept` turns into an active user with a password.
async fn invite(caller: Bearer, body: web::Json<Invitation>, s: web::Data<AppState>) -> Answer {
    caller.require("write_user")?;
    let ttl = s.config.invitation_ttl;
    let input = body.into_inner();
    let (user, token) =
        s.registry.send(InviteUser { caller: caller.caller(), input, ttl }).await??;
    tracing::info!(by = %caller.claims.client_id, auth_id = %user.auth_id, "user invited");
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "user": user_json(&user), "invitationToken": token })))
}
