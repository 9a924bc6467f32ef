//! The service API (AuthOS's service API): backend services call `/api/service/*` with `X-API-Key`.
//! Answers are snake_case JSON. A missing, malformed, wrong or revoked key gets one answer.

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use serde_json::json;
use tessera_core::registry::clients::Page;
use tessera_core::registry::service_users::{
    CreateSubscription, DeleteSubscription, GetSubscription, ListSubscriptions, NewServiceUser,
    PatchSubscription, ServiceAnalyticsOf, ServiceCreateUser, ServiceDeleteUser, ServiceGetUser,
    ServiceListUsers, ServicePatchUser, ServiceUser, ServiceUserIds, ServiceUserPatch,
    SubscriptionInput,
};
use tessera_core::registry::services::{GetService, InfoPatch, PatchServiceInfo, ServiceView};
use tessera_core::registry::users::CheckNewLogin;
use tessera_storage::SubscriptionRecord;

use crate::api::admin::{AdminError, rfc3339};
use crate::server::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/service/info").get(info).route(web::patch().to(patch_info)))
        .service(web::resource("/api/service/users").get(list_users).post(create_user))
        .service(
            web::resource("/api/service/users/{user_id}")
                .get(get_user)
                .route(web::patch().to(patch_user))
                .route(web::delete().to(delete_user)),
        )
        .service(
            web::resource("/api/service/subscriptions")
                .get(list_subscriptions)
                .post(create_subscription),
        )
        .service(
            web::resource("/api/service/subscriptions/{user_id}")
                .get(get_subscription)
                .route(web::patch().to(patch_subscription))
                .route(web::delete().to(delete_subscription)),
        )
        .service(web::resource("/api/service/analytics").get(analytics));
}

/// `page` and `per_page` (1-based), snake_case like the rest of the service API.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicePage {
    page: Option<usize>,
    per_page: Option<usize>,
}

impl ServicePage {
    fn page(&self) -> Result<Page, AdminError> {
        let size = self.per_page.unwrap_or(100);
        let number = self.page.unwrap_or(1);
        if size == 0 || size > Page::MAX_SIZE || number == 0 {
            return Err(AdminError::BadRequest(format!(
                "per_page must be 1 to {} and page at least 1",
                Page::MAX_SIZE
            )));
        }
        Ok(Page { size, number })
    }
}

type Answer = Result<HttpResponse, AdminError>;

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

async fn list_users(
    c: ServiceCaller,
    q: web::Query<ServicePage>,
    s: web::Data<AppState>,
) -> Answer {
    let (users, count) =
        s.registry.send(ServiceListUsers { service_id: c.service_id, page: q.page()? }).await?;
    Ok(HttpResponse::Ok()
        .json(json!({ "users": users.iter().map(user_json).collect::<Vec<_>>(), "count": count })))
}

/// With a password, the user can sign in (`/consumer/login`); it is hashed off the workers.
async fn create_user(
    c: ServiceCaller,
    body: web::Json<NewServiceUser>,
    s: web::Data<AppState>,
) -> Answer {
    let mut input = body.into_inner();
    let password_hash = match input.password.take() {
        Some(password) => {
            tessera_core::auth::password::check_policy(&password)
                .map_err(AdminError::BadRequest)?;
            // Taken or malformed names are refused before the slow hash.
            let check =
                CheckNewLogin { username: input.username.clone(), email: input.email.clone() };
            s.registry.send(check).await??;
            Some(s.passwords.hash(password).await?.map_err(|_| AdminError::Internal)?)
        }
        None => None,
    };
    let msg = ServiceCreateUser { service_id: c.service_id, input, password_hash };
    let user = s.registry.send(msg).await??;
    Ok(HttpResponse::Created().json(json!({ "user": user_json(&user) })))
}

async fn get_user(c: ServiceCaller, id: web::Path<String>, s: web::Data<AppState>) -> Answer {
    let user = s
        .registry
        .send(ServiceGetUser { service_id: c.service_id, user_id: id.into_inner() })
        .await??;
    Ok(HttpResponse::Ok().json(json!({ "user": user_json(&user) })))
}

async fn patch_user(
    c: ServiceCaller,
    id: web::Path<String>,
    body: web::Json<ServiceUserPatch>,
    s: web::Data<AppState>,
) -> Answer {
    let msg = ServicePatchUser {
        service_id: c.service_id,
        user_id: id.into_inner(),
        patch: body.into_inner(),
    };
    let user = s.registry.send(msg).await??;
    Ok(HttpResponse::Ok().json(json!({ "user": user_json(&user) })))
}

async fn delete_user(c: ServiceCaller, id: web::Path<String>, s: web::Data<AppState>) -> Answer {
    s.registry
        .send(ServiceDeleteUser { service_id: c.service_id, user_id: id.into_inner() })
        .await??;
    Ok(HttpResponse::NoContent().finish())
}

async fn list_subscriptions(
    c: ServiceCaller,
    q: web::Query<ServicePage>,
    s: web::Data<AppState>,
) -> Answer {
    let (subs, count) =
        s.registry.send(ListSubscriptions { service_id: c.service_id, page: q.page()? }).await?;
    let subs: Vec<_> = subs.iter().map(subscription_json).collect();
    Ok(HttpResponse::Ok().json(json!({ "subscriptions": subs, "count": count })))
}

async fn create_subscription(
    c: ServiceCaller,
    body: web::Json<SubscriptionInput>,
    s: web::Data<AppState>,
) -> Answer {
    let sub = s
        .registry
        .send(CreateSubscription { service_id: c.service_id, input: body.into_inner() })
        .await??;
    Ok(HttpResponse::Created().json(json!({ "subscription": subscription_json(&sub) })))
}

async fn get_subscription(
    c: ServiceCaller,
    id: web::Path<String>,
    s: web::Data<AppState>,
) -> Answer {
    let sub = s
        .registry
        .send(GetSubscription { service_id: c.service_id, user_id: id.into_inner() })
        .await??;
    Ok(HttpResponse::Ok().json(json!({ "subscription": subscription_json(&sub) })))
}

async fn patch_subscription(
    c: ServiceCaller,
    id: web::Path<String>,
    body: web::Json<SubscriptionInput>,
    s: web::Data<AppState>,
) -> Answer {
    let msg = PatchSubscription {
        service_id: c.service_id,
        user_id: id.into_inner(),
        input: body.into_inner(),
    };
    let sub = s.registry.send(msg).await??;
    Ok(HttpResponse::Ok().json(json!({ "subscription": subscription_json(&sub) })))
}

async fn delete_subscription(
    c: ServiceCaller,
    id: web::Path<String>,
    s: web::Data<AppState>,
) -> Answer {
    s.registry
        .send(DeleteSubscription { service_id: c.service_id, user_id: id.into_inner() })
        .await??;
    Ok(HttpResponse::NoContent().finish())
}

/// Live figures: users and subscriptions from the registry, tokens issued per day to the
/// service's users (last 30 days) and provider-token requests by outcome since the start.
async fn analytics(c: ServiceCaller, s: web::Data<AppState>) -> Answer {
    let figures = s.registry.send(ServiceAnalyticsOf { service_id: c.service_id.clone() }).await?;
    let users = s.registry.send(ServiceUserIds { service_id: c.service_id.clone() }).await?;
    let per_day: serde_json::Map<String, serde_json::Value> = s
        .issuer
        .counters
        .user_tokens_per_day(&users, s.issuer.now())
        .into_iter()
        .map(|(day, n)| (rfc3339(day * 86_400)[..10].to_string(), json!(n)))
        .collect();
    let outcomes: serde_json::Map<String, serde_json::Value> =
        ["ok", "action_required", "completed", "error"]
            .iter()
            .map(|o| {
                let n = s.provider_outcomes.get(&(c.service_id.clone(), *o)).map_or(0, |v| *v);
                (o.to_string(), json!(n))
            })
            .collect();
    let mut body = json!(figures);
    body["tokens_issued_per_day"] = json!(per_day);
    body["provider_token_requests"] = json!(outcomes);
    Ok(HttpResponse::Ok().json(json!({ "analytics": body })))
}

/// The service a request authenticated as.
pub struct ServiceCaller {
    pub service_id: String,
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
        let service_id = req
            .app_data::<web::Data<AppState>>()
            .zip(req.headers().get("x-api-key").and_then(|v| v.to_str().ok()))
            .and_then(|(state, key)| state.service_keys.authenticate(key.trim()));
        ready(service_id.map(|service_id| ServiceCaller { service_id }).ok_or(Unauthorized))
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

async fn info(
    caller: ServiceCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    let service = state.registry.send(GetService { id: caller.service_id }).await??;
    Ok(HttpResponse::Ok().json(info_json(&service)))
}

async fn patch_info(
    caller: ServiceCaller,
    body: web::Json<InfoPatch>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    let service = state
        .registry
        .send(PatchServiceInfo { id: caller.service_id, patch: body.into_inner() })
        .await??;
    Ok(HttpResponse::Ok().json(info_json(&service)))
}
