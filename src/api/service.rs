//! The service API (AuthOS's service API): backend services call `/api/service/*` with `X-API-Key`.
//! Answers are snake_case JSON. A missing, malformed, wrong or revoked key gets one answer.

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use serde::Deserialize;
use serde_json::json;
use serde_json::{Map, Value};
use tessera_core::audit::Origin;
use tessera_core::registry::services::members::{NewServiceUser, ServiceUser, SubscriptionPatch};
use tessera_core::registry::services::{ServicePatch, ServiceView};
use tessera_core::registry::users::UserPatch;
use tessera_core::registry::{Page, RegistryHandle};
use tessera_storage::SubscriptionRecord;

use crate::api::AppState;
use crate::api::admin::{AdminError, rfc3339};
use crate::api::metrics::AuthMethod;
use crate::api::routes::routes;

routes! {
    "/api/service/info" => { get: info, patch: patch_info },
    "/api/service/users" => { get: list_users, post: create_user },
    "/api/service/users/{user_id}" => { get: get_user, patch: patch_user, delete: delete_user },
    "/api/service/subscriptions" => { get: list_subscriptions, post: create_subscription },
    "/api/service/subscriptions/{user_id}" => {
        get: get_subscription,
        patch: patch_subscription,
        delete: delete_subscription,
    },
    "/api/service/analytics" => { get: analytics },
}

/// `page` and `per_page` (1-based), snake_case like the rest of the service API.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ServicePage {
    page: Option<usize>,
    per_page: Option<usize>,
}

impl ServicePage {
    fn page(&self) -> Result<Page, AdminError> {
        Page::asked(self.per_page, self.page).ok_or_else(|| {
            AdminError::BadRequest(format!(
                "per_page must be 1 to {} and page at least 1",
                Page::MAX_SIZE
            ))
        })
    }
}

type Answer = Result<HttpResponse, AdminError>;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewUserBody {
    email: String,
    username: Option<String>,
    /// Hashed here, off the workers, before anything reaches the registry.
    password: Option<String>,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct UserPatchBody {
    first_name: Option<String>,
    last_name: Option<String>,
    is_active: Option<bool>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SubscriptionBody {
    user_id: Option<String>,
    plan: Option<String>,
    status: Option<String>,
    current_period_end: Option<u64>,
    metadata: Option<Map<String, Value>>,
}

impl From<SubscriptionBody> for SubscriptionPatch {
    fn from(b: SubscriptionBody) -> SubscriptionPatch {
        SubscriptionPatch {
            user_id: b.user_id,
            plan: b.plan,
            status: b.status,
            current_period_end: b.current_period_end,
            metadata: b.metadata,
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct InfoBody {
    name: Option<String>,
    description: Option<String>,
    callback_uris: Option<Vec<String>>,
}

fn user_json(u: &ServiceUser) -> serde_json::Value {
    json!({
        "user_id": u.user_id, "email": u.email, "username": u.username, "first_name": u.first_name,
        "last_name": u.last_name, "is_active": u.is_active, "created_at": rfc3339(u.created_at),
    })
}

fn subscription_json(s: &SubscriptionRecord) -> serde_json::Value {
    json!({
        "user_id": s.user_id, "plan": s.plan, "status": s.status,
        "current_period_end": s.current_period_end.map(rfc3339), "metadata": s.metadata,
        "created_at": rfc3339(s.created_at), "updated_at": rfc3339(s.updated_at),
    })
}

#[utoipa::path(
    get,
    path = "/api/service/users",
    tag = "service",
    operation_id = "service_list_users",
    security(("api_key" = [])),
    description = "The service's users. Requires a service API key (`X-API-Key`).",
    params(ServicePage),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn list_users(
    c: ServiceCaller,
    q: web::Query<ServicePage>,
    s: web::Data<AppState>,
) -> Answer {
    let page = s.registry.service_users(c.service_id, q.page()?).await?;
    let users: Vec<Value> = page.items.iter().map(user_json).collect();
    Ok(HttpResponse::Ok().json(json!({ "users": users, "count": page.total })))
}

/// With a password, the user can sign in (`/consumer/login`); it is hashed off the workers.
#[utoipa::path(
    post,
    path = "/api/service/users",
    tag = "service",
    operation_id = "service_create_user",
    security(("api_key" = [])),
    description = "Add a user to the service. Requires a service API key (`X-API-Key`).",
    request_body(content = NewUserBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn create_user(
    c: ServiceCaller,
    body: web::Json<NewUserBody>,
    s: web::Data<AppState>,
) -> Answer {
    let NewUserBody { email, username, password, first_name, last_name } = body.into_inner();
    let password_hash = match password {
        Some(password) => {
            tessera_core::auth::password::check_policy(&password)?;
            // Taken or malformed names are refused before the slow hash.
            s.registry.check_new_login(username.clone(), email.clone()).await?;
            Some(s.passwords.hash(password).await?)
        }
        None => None,
    };
    let input = NewServiceUser { email, username, first_name, last_name };
    let user = c.registry(&s).add_service_user(c.service_id.clone(), input, password_hash).await?;
    Ok(HttpResponse::Created().json(json!({ "user": user_json(&user) })))
}

#[utoipa::path(
    get,
    path = "/api/service/users/{user_id}",
    tag = "service",
    operation_id = "service_get_user",
    security(("api_key" = [])),
    description = "One of the service's users. Requires a service API key (`X-API-Key`).",
    params(("user_id" = String, Path, description = "the user's id")),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn get_user(c: ServiceCaller, id: web::Path<String>, s: web::Data<AppState>) -> Answer {
    let user = s.registry.service_user(c.service_id, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(json!({ "user": user_json(&user) })))
}

#[utoipa::path(
    patch,
    path = "/api/service/users/{user_id}",
    tag = "service",
    operation_id = "service_patch_user",
    security(("api_key" = [])),
    description = "Change one of the service's users. Requires a service API key (`X-API-Key`).",
    request_body(content = UserPatchBody, content_type = "application/json"),
    params(("user_id" = String, Path, description = "the user's id")),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn patch_user(
    c: ServiceCaller,
    id: web::Path<String>,
    body: web::Json<UserPatchBody>,
    s: web::Data<AppState>,
) -> Answer {
    let UserPatchBody { first_name, last_name, is_active } = body.into_inner();
    let patch = UserPatch { first_name, last_name, is_active, roles: None };
    let user =
        c.registry(&s).patch_service_user(c.service_id.clone(), id.into_inner(), patch).await?;
    Ok(HttpResponse::Ok().json(json!({ "user": user_json(&user) })))
}

#[utoipa::path(
    delete,
    path = "/api/service/users/{user_id}",
    tag = "service",
    operation_id = "service_delete_user",
    security(("api_key" = [])),
    description = "Remove a user from the service. Requires a service API key (`X-API-Key`).",
    params(("user_id" = String, Path, description = "the user's id")),
    responses(
        (status = 204, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn delete_user(c: ServiceCaller, id: web::Path<String>, s: web::Data<AppState>) -> Answer {
    c.registry(&s).remove_service_user(c.service_id.clone(), id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    get,
    path = "/api/service/subscriptions",
    tag = "service",
    operation_id = "service_list_subscriptions",
    security(("api_key" = [])),
    description = "The service's subscriptions. Requires a service API key (`X-API-Key`).",
    params(ServicePage),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn list_subscriptions(
    c: ServiceCaller,
    q: web::Query<ServicePage>,
    s: web::Data<AppState>,
) -> Answer {
    let page = s.registry.subscriptions(c.service_id, q.page()?).await?;
    let subs: Vec<Value> = page.items.iter().map(subscription_json).collect();
    Ok(HttpResponse::Ok().json(json!({ "subscriptions": subs, "count": page.total })))
}

#[utoipa::path(
    post,
    path = "/api/service/subscriptions",
    tag = "service",
    operation_id = "service_create_subscription",
    security(("api_key" = [])),
    description = "Subscribe a user. Requires a service API key (`X-API-Key`).",
    request_body(content = SubscriptionBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn create_subscription(
    c: ServiceCaller,
    body: web::Json<SubscriptionBody>,
    s: web::Data<AppState>,
) -> Answer {
    let sub =
        c.registry(&s).create_subscription(c.service_id.clone(), body.into_inner().into()).await?;
    Ok(HttpResponse::Created().json(json!({ "subscription": subscription_json(&sub) })))
}

#[utoipa::path(
    get,
    path = "/api/service/subscriptions/{user_id}",
    tag = "service",
    operation_id = "service_get_subscription",
    security(("api_key" = [])),
    description = "A user's subscription. Requires a service API key (`X-API-Key`).",
    params(("user_id" = String, Path, description = "the user's id")),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn get_subscription(
    c: ServiceCaller,
    id: web::Path<String>,
    s: web::Data<AppState>,
) -> Answer {
    let sub = s.registry.subscription(c.service_id, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(json!({ "subscription": subscription_json(&sub) })))
}

#[utoipa::path(
    patch,
    path = "/api/service/subscriptions/{user_id}",
    tag = "service",
    operation_id = "service_patch_subscription",
    security(("api_key" = [])),
    description = "Change a user's subscription. Requires a service API key (`X-API-Key`).",
    request_body(content = SubscriptionBody, content_type = "application/json"),
    params(("user_id" = String, Path, description = "the user's id")),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn patch_subscription(
    c: ServiceCaller,
    id: web::Path<String>,
    body: web::Json<SubscriptionBody>,
    s: web::Data<AppState>,
) -> Answer {
    let (user_id, patch) = (id.into_inner(), body.into_inner().into());
    let sub = c.registry(&s).patch_subscription(c.service_id.clone(), user_id, patch).await?;
    Ok(HttpResponse::Ok().json(json!({ "subscription": subscription_json(&sub) })))
}

#[utoipa::path(
    delete,
    path = "/api/service/subscriptions/{user_id}",
    tag = "service",
    operation_id = "service_delete_subscription",
    security(("api_key" = [])),
    description = "End a user's subscription. Requires a service API key (`X-API-Key`).",
    params(("user_id" = String, Path, description = "the user's id")),
    responses(
        (status = 204, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn delete_subscription(
    c: ServiceCaller,
    id: web::Path<String>,
    s: web::Data<AppState>,
) -> Answer {
    c.registry(&s).delete_subscription(c.service_id.clone(), id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Live figures: users and subscriptions from the registry, tokens issued per day to the
/// service's users (last 30 days) and provider-token requests by outcome since the start.
#[utoipa::path(
    get,
    path = "/api/service/analytics",
    tag = "service",
    operation_id = "service_analytics",
    security(("api_key" = [])),
    description = "The service's figures. Requires a service API key (`X-API-Key`).",
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn analytics(c: ServiceCaller, s: web::Data<AppState>) -> Answer {
    let figures = s.registry.service_figures(c.service_id.clone()).await?;
    let users = s.registry.service_user_ids(c.service_id.clone()).await?;
    let analytics = &s.issuer.analytics;
    let per_day: Map<String, Value> = analytics
        .user_tokens_per_day(&users, s.issuer.now())
        .into_iter()
        .map(|(day, n)| (rfc3339(day * 86_400)[..10].to_string(), json!(n)))
        .collect();
    let outcomes: Map<String, Value> = analytics
        .provider_requests(&c.service_id)
        .into_iter()
        .map(|(outcome, n)| (outcome.name().to_string(), json!(n)))
        .collect();
    let body = json!({
        "users": figures.users,
        "active_users": figures.active_users,
        "subscriptions": figures.subscriptions,
        "active_subscriptions": figures.active_subscriptions,
        "tokens_issued_per_day": per_day,
        "provider_token_requests": outcomes,
    });
    Ok(HttpResponse::Ok().json(json!({ "analytics": body })))
}

/// The service a request authenticated as.
pub struct ServiceCaller {
    pub service_id: String,
    request_id: Option<String>,
}

impl ServiceCaller {
    /// The registry, its writes recorded as this service's.
    fn registry(&self, state: &AppState) -> RegistryHandle {
        state.registry.on_behalf(Origin::service(&self.service_id, self.request_id.as_deref()))
    }
}

#[derive(Debug)]
pub struct Unauthorized;

impl std::fmt::Display for Unauthorized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a valid X-API-Key is required")
    }
}

impl ResponseError for Unauthorized {
    fn status_code(&self) -> actix_web::http::StatusCode {
        actix_web::http::StatusCode::UNAUTHORIZED
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::Unauthorized()
            .json(json!({"error": "unauthorized", "message": self.to_string()}))
    }
}

impl FromRequest for ServiceCaller {
    type Error = Unauthorized;
    type Future = Ready<Result<ServiceCaller, Unauthorized>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let Some(state) = req.app_data::<web::Data<AppState>>() else {
            return ready(Err(Unauthorized));
        };
        let key = req.headers().get("x-api-key").and_then(|v| v.to_str().ok());
        let service_id = key.and_then(|key| state.service_keys.authenticate(key.trim()));
        if service_id.is_none() && key.is_some() {
            state.metrics.failed_authentication(AuthMethod::ApiKey);
        }
        let request_id = crate::api::request_id::of_request(req);
        ready(
            service_id
                .map(|service_id| ServiceCaller { service_id, request_id })
                .ok_or(Unauthorized),
        )
    }
}

fn info_json(s: &ServiceView) -> serde_json::Value {
    json!({
        "service": {
            "id": s.id,
            "name": s.name,
            "description": s.description,
            "callback_uris": s.callback_uris,
            "created_at": rfc3339(s.created_at),
            "updated_at": rfc3339(s.updated_at),
        }
    })
}

#[utoipa::path(
    get,
    path = "/api/service/info",
    tag = "service",
    operation_id = "service_info",
    security(("api_key" = [])),
    description = "The calling service. Requires a service API key (`X-API-Key`).",
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn info(
    caller: ServiceCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    let service = state.registry.service(caller.service_id).await?;
    Ok(HttpResponse::Ok().json(info_json(&service)))
}

#[utoipa::path(
    patch,
    path = "/api/service/info",
    tag = "service",
    operation_id = "service_patch_info",
    security(("api_key" = [])),
    description = "Change the calling service. Requires a service API key (`X-API-Key`).",
    request_body(content = InfoBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn patch_info(
    caller: ServiceCaller,
    body: web::Json<InfoBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    let InfoBody { name, description, callback_uris } = body.into_inner();
    let patch = ServicePatch { name, description, callback_uris };
    let service = caller.registry(&state).patch_service(caller.service_id.clone(), patch).await?;
    Ok(HttpResponse::Ok().json(info_json(&service)))
}
