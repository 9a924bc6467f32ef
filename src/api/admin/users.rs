//! `/api/v1/users`: list, get, update, delete and invitations (`read_user`/`write_user`), with
//! the privileged-role rule applied by the registry on every path that sets roles.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};
use tessera_core::registry::users::{Invitation, UserPatch, UserView};

use super::{AdminError, Bearer, PageQuery, rfc3339};
use crate::api::AppState;
use crate::api::routes::routes;

routes! {
    "/api/v1/users" => { get: list },
    "/api/v1/users/invitations" => { post: invite },
    "/api/v1/users/{auth_id}" => { get: get, put: update, delete: delete },
}

type Answer = Result<HttpResponse, AdminError>;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UserPatchBody {
    first_name: Option<String>,
    last_name: Option<String>,
    is_active: Option<bool>,
    roles: Option<Vec<String>>,
}

#[derive(Deserialize, utoipa::ToSchema)]
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

#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "users",
    operation_id = "users_list",
    security(("bearer" = ["read_user"])),
    description = "List users. Requires the scope `read_user` (or `root`).",
    params(PageQuery),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn list(caller: Bearer, q: web::Query<PageQuery>, s: web::Data<AppState>) -> Answer {
    caller.require("read_user")?;
    let page = s.registry.list_users(q.page()?).await?;
    let users: Vec<Value> = page.items.iter().map(user_json).collect();
    Ok(HttpResponse::Ok().json(json!({ "users": users, "count": page.total })))
}

#[utoipa::path(
    get,
    path = "/api/v1/users/{auth_id}",
    tag = "users",
    operation_id = "users_get",
    security(("bearer" = ["read_user"])),
    description = "One user. Requires the scope `read_user` (or `root`).",
    params(("auth_id" = String, Path, description = "the user's auth id")),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn get(caller: Bearer, id: web::Path<String>, s: web::Data<AppState>) -> Answer {
    caller.require("read_user")?;
    let user = s.registry.user(id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(json!({ "user": user_json(&user) })))
}

#[utoipa::path(
    put,
    path = "/api/v1/users/{auth_id}",
    tag = "users",
    operation_id = "users_update",
    security(("bearer" = ["write_user"])),
    description = "Change a user. Requires the scope `write_user` (or `root`).",
    request_body(content = UserPatchBody, content_type = "application/json"),
    params(("auth_id" = String, Path, description = "the user's auth id")),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
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

#[utoipa::path(
    delete,
    path = "/api/v1/users/{auth_id}",
    tag = "users",
    operation_id = "users_delete",
    security(("bearer" = ["write_user"])),
    description = "Delete a user. Requires the scope `write_user` (or `root`).",
    params(("auth_id" = String, Path, description = "the user's auth id")),
    responses(
        (status = 204, description = "Done."),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn delete(caller: Bearer, id: web::Path<String>, s: web::Data<AppState>) -> Answer {
    caller.require("write_user")?;
    let auth_id = id.into_inner();
    caller.registry(&s).delete_user(caller.caller(), auth_id.clone()).await?;
    tracing::info!(by = %caller.claims.client_id, auth_id = %auth_id, "user deleted");
    Ok(HttpResponse::NoContent().finish())
}

/// `201` with the inactive user and its one-time `invitationToken` (shown only here), which
/// `POST /consumer/invitations/accept` turns into an active user with a password.
#[utoipa::path(
    post,
    path = "/api/v1/users/invitations",
    tag = "users",
    operation_id = "users_invite",
    security(("bearer" = ["write_user"])),
    description = "Invite a user: an inactive user and a one-time token. Requires the scope `write_user` (or `root`).",
    request_body(content = InvitationBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
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
