//! Provider tokens (AuthOS's service API): `POST /api/service/provider-tokens` answers `ok` with a stored
//! grant, or `action_required` with a one-time hosted URL; the hosted flow at
//! `/connect/provider-token/<state>` signs the bound user in, sends them to the provider, takes
//! the provider's callback, exchanges the code, keeps the grant and sends the user back to the
//! service. It never sends anyone to a dashboard or asks for an organization.
//!
//! The browser that starts a flow is the only one that can finish it (RFC 6749 §10.12, RFC 9700
//! §4.7): the redirect to the provider sets a flow-binding cookie (a hash of the provider
//! state, scoped to the callback), and the callback completes the request only with that cookie
//! and a session of the request's bound user. Forms carry a double-submit CSRF token and are
//! refused from another origin; a session lasts minutes and can be ended by signing out.
//!
//! The flow's domain steps (stored grants, requests, the code exchange) are
//! `tessera_core::grants::ProviderFlow`'s; this file is their HTTP: cookies, forms, pages.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use tessera_core::analytics::ProviderOutcome;
use tessera_core::auth::secret::{hash_secret, hex_matches, random_token, to_hex};
use tessera_core::grants::{Begin, Completion, FlowError, NewRequest};
use tessera_core::oauth::OAuthError;
use tessera_core::oauth::connect_form;
use tessera_core::tables::client::CONSUMER_CLIENT_ID;
use tessera_storage::{
    ConnectRecord, ConnectRefusal, GrantOp, ProviderRecord, RETRY_UNAVAILABLE_AFTER,
};

use crate::api::AppState;
use crate::api::admin::{AdminError, rfc3339};
use crate::api::routes::routes;
use crate::api::service::ServiceCaller;

/// How long a hosted-flow session lasts: long enough to sign in and consent, short enough that
/// a session left on a shared browser does not linger.
const SESSION_TTL: u64 = 900;
const SESSION_COOKIE: &str = "tessera_session";
const CSRF_COOKIE: &str = "tessera_csrf";
/// Followed by a prefix of the binding's hash, so flows started side by side in one browser
/// each keep their own cookie.
const FLOW_COOKIE_PREFIX: &str = "tessera_flow_";
/// Where providers send the user back; the flow names it again in the code exchange.
pub const CALLBACK_PATH: &str = "/connect/callback";

routes! {
    "/api/service/provider-tokens" => { post: provider_tokens },
    "/connect/provider-token/{state}" => { get: hosted },
    "/connect/sign-in" => { post: sign_in },
    "/connect/sign-out" => { post: sign_out },
    CALLBACK_PATH => { get: callback },
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ProviderTokenRequest {
    user_id: String,
    provider: String,
    scopes: Vec<String>,
    redirect_uri: String,
    #[serde(default)]
    state: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/service/provider-tokens",
    tag = "service",
    operation_id = "service_provider_tokens",
    security(("api_key" = [])),
    description = "A user's provider token, or the hosted flow to get one. Requires a service API key (`X-API-Key`).",
    request_body(content = ProviderTokenRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn provider_tokens(
    caller: ServiceCaller,
    body: web::Json<ProviderTokenRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    let req = body.into_inner();
    if req.scopes.is_empty() || !req.scopes.iter().all(|s| tessera_core::policy::is_scope_token(s))
    {
        return Err(AdminError::BadRequest(
            "scopes must be a non-empty list of scope names".into(),
        ));
    }
    if req.state.as_ref().is_some_and(|s| s.len() > 512) {
        return Err(AdminError::BadRequest("state must be at most 512 characters".into()));
    }
    let service_id = caller.service_id;
    // Another service's user, or no such user: the same 404.
    let user = state.registry.service_user(service_id.clone(), req.user_id.clone()).await?;
    // A deactivated user's provider tokens are not handed out, nor can it be sent to consent.
    if !user.is_active {
        return Err(AdminError::BadRequest("the user is inactive".into()));
    }
    let provider =
        state.registry.provider_by_name(req.provider.clone()).await?.ok_or(AdminError::NotFound)?;
    let service = state.registry.service(service_id.clone()).await?;
    if !service.callback_uris.contains(&req.redirect_uri) {
        return Err(AdminError::BadRequest(
            "redirect_uri is not a registered callback URI of this service".into(),
        ));
    }
    let flow = &state.provider_flow;
    let live = flow.live_grant(&service_id, &req.user_id, &provider, &req.scopes).await;
    if let Some(g) = live? {
        count(&state, &service_id, ProviderOutcome::Ok);
        return Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(json!({
            "status": "ok",
            "access_token": g.access_token,
            "token_type": "Bearer",
            "scopes": g.scopes,
            "expires_at": g.expires_at.map(rfc3339),
        })));
    }
    let ask = NewRequest {
        service_id,
        user_id: req.user_id,
        provider_id: provider.id,
        scopes: req.scopes,
        redirect_uri: req.redirect_uri,
        client_state: req.state,
    };
    let record = flow.create_request(ask).await?;
    let url = format!("{}/connect/provider-token/{}", state.issuer.settings.issuer, record.state);
    count(&state, &record.service_id, ProviderOutcome::ActionRequired);
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(json!({
        "status": "action_required",
        "reauth_url": url,
        "expires_at": rfc3339(record.expires_at),
    })))
}

/// One provider-token request of a service, by outcome, for its analytics.
fn count(state: &AppState, service_id: &str, outcome: ProviderOutcome) {
    state.issuer.analytics.count_provider_request(service_id, outcome);
}

fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        query.append_pair(k, v);
    }
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{}", query.finish())
}

/// `Referrer-Policy: same-origin` here and on every page: the hosted URLs carry one-time
/// states, which must not reach the provider or anyone else in a `Referer`. Not
/// `no-referrer`: under it browsers send `Origin: null` even on our own form posts, which the
/// sign-in's origin check must then refuse.
fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Referrer-Policy", "same-origin"))
        .finish()
}

/// Back to the service with an error, when the request is known (so the callback is safe).
fn error_back(
    state: &AppState,
    record: &ConnectRecord,
    provider: &str,
    reason: &str,
) -> HttpResponse {
    count(state, &record.service_id, ProviderOutcome::Error);
    let mut pairs = vec![("provider_grant", "error"), ("reason", reason), ("provider", provider)];
    if let Some(s) = &record.client_state {
        pairs.push(("state", s));
    }
    redirect(&with_query(&record.redirect_uri, &pairs))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(status: actix_web::http::StatusCode, title: &str, body: &str) -> HttpResponse {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <meta name=\"viewport\" content=\"width=device-width\"></head>\
         <body style=\"font-family:sans-serif;max-width:28em;margin:4em auto\"><h1>{t}</h1>{body}</body></html>",
        t = escape(title)
    );
    HttpResponse::build(status)
        .insert_header(("Cache-Control", "no-store"))
        // No `form-action`: the sign-in form's redirect chain goes on to the provider's origin,
        // which `form-action 'self'` would block.
        .insert_header(("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("Referrer-Policy", "same-origin"))
        .content_type("text/html; charset=utf-8")
        .body(html)
}

fn invalid_link() -> HttpResponse {
    page(
        StatusCode::BAD_REQUEST,
        "This link is not valid",
        "<p>Ask the application that sent you here to start again.</p>",
    )
}

fn try_again() -> HttpResponse {
    page(StatusCode::INTERNAL_SERVER_ERROR, "Try again", "<p>Something went wrong on our side.</p>")
}

/// A step the store could not take: while the database cannot be reached the link is still
/// good, and the person should be told to come back rather than to start over.
fn failed(e: &FlowError) -> HttpResponse {
    if e.is_unavailable() { unavailable() } else { try_again() }
}

fn unavailable() -> HttpResponse {
    let mut res = page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again in a moment",
        "<p>We cannot complete this right now. Reload this page in a moment.</p>",
    );
    res.headers_mut().insert(header::RETRY_AFTER, RETRY_UNAVAILABLE_AFTER.into());
    res
}

fn is_https(state: &AppState) -> bool {
    state.issuer.settings.issuer.get(..8).is_some_and(|p| p.eq_ignore_ascii_case("https://"))
}

/// A hosted-flow cookie's name. With an https issuer it is a `__Host-` cookie (RFC 6265bis
/// §4.1.3.2: Secure, `Path=/`, no `Domain`), which no sibling subdomain and no plain-http page
/// can set: an attacker cannot plant their own session or flow binding in a victim's browser.
/// A plain-http issuer (loopback, development) cannot have that; its cookies are scoped by path.
fn cookie_name(state: &AppState, base: &str) -> String {
    if is_https(state) { format!("__Host-{base}") } else { base.to_string() }
}

/// A cookie of the hosted flow: HttpOnly; `Secure` and `__Host-` when the issuer is https (a
/// plain-http loopback issuer, in development and tests, must still work with an ordinary
/// cookie jar).
fn cookie(
    state: &AppState,
    base: &str,
    value: String,
    path: &'static str,
    same_site: SameSite,
    max_age: u64,
) -> Cookie<'static> {
    let https = is_https(state);
    Cookie::build(cookie_name(state, base), value)
        .path(if https { "/" } else { path })
        .http_only(true)
        .secure(https)
        .same_site(same_site)
        .max_age(actix_web::cookie::time::Duration::seconds(max_age as i64))
        .finish()
}

fn removal(state: &AppState, base: &str, path: &'static str) -> Cookie<'static> {
    cookie(state, base, String::new(), path, SameSite::Lax, 0)
}

fn read_cookie(req: &HttpRequest, state: &AppState, base: &str) -> Option<String> {
    req.cookie(&cookie_name(state, base)).map(|c| c.value().to_string())
}

/// A fresh CSRF token for a form, and the cookie that carries it too (double submit: a page
/// on another site can neither read the cookie nor set it).
fn new_csrf(state: &AppState) -> (Cookie<'static>, String) {
    let token = random_token(32);
    let c = cookie(state, CSRF_COOKIE, token.clone(), "/connect", SameSite::Strict, SESSION_TTL);
    (c, token)
}

/// A page that holds a form: `body` gets the form's CSRF token, the answer its cookie.
fn form_page(
    state: &AppState,
    status: StatusCode,
    title: &str,
    body: impl FnOnce(&str) -> String,
) -> HttpResponse {
    let (csrf_cookie, csrf) = new_csrf(state);
    let mut res = page(status, title, &body(&csrf));
    res.add_cookie(&csrf_cookie).ok();
    res
}

fn csrf_matches(req: &HttpRequest, state: &AppState, presented: &str) -> bool {
    read_cookie(req, state, CSRF_COOKIE).is_some_and(|c| hex_matches(&c, presented))
}

/// A form post from a page of ours: `Sec-Fetch-Site` (when the browser sends it) says
/// same-origin or user-initiated, and `Origin` (when sent) is the issuer's.
fn is_same_origin(req: &HttpRequest, state: &AppState) -> bool {
    let header = |name| req.headers().get(name).map(|v| v.to_str().unwrap_or("\u{0}"));
    if header("sec-fetch-site").is_some_and(|site| site != "same-origin" && site != "none") {
        return false;
    }
    let Some(origin) = header("origin") else { return true };
    url::Url::parse(&state.issuer.settings.issuer)
        .is_ok_and(|issuer| issuer.origin().ascii_serialization() == origin)
}

fn cross_site() -> HttpResponse {
    page(
        StatusCode::FORBIDDEN,
        "Not allowed",
        "<p>This form can only be sent from this site's own pages.</p>",
    )
}

fn form_expired() -> HttpResponse {
    page(
        StatusCode::FORBIDDEN,
        "This form has expired",
        "<p>Go back, reload the page and try again.</p>",
    )
}

fn sign_in_page(
    state: &AppState,
    connect_state: &str,
    message: Option<&str>,
    status: StatusCode,
) -> HttpResponse {
    let note = message.map(|m| format!("<p role=\"alert\">{}</p>", escape(m))).unwrap_or_default();
    form_page(state, status, "Sign in", |csrf| {
        format!(
            "{note}<p>Sign in to continue.</p><form method=\"post\" action=\"/connect/sign-in\">\
             <input type=\"hidden\" name=\"state\" value=\"{s}\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <p><label>Username or email<br><input name=\"username\" autocomplete=\"username\" required></label></p>\
             <p><label>Password<br><input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label></p>\
             <p><button type=\"submit\">Sign in</button></p></form>",
            s = escape(connect_state)
        )
    })
}

/// The wrong account is signed in: say so, and offer to sign out and start again.
fn wrong_account_page(state: &AppState, connect_state: &str) -> HttpResponse {
    form_page(state, StatusCode::FORBIDDEN, "Wrong account", |csrf| {
        format!(
            "<p>This link was made for another account.</p>\
             <form method=\"post\" action=\"/connect/sign-out\">\
             <input type=\"hidden\" name=\"state\" value=\"{s}\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <p><button type=\"submit\">Sign out and use another account</button></p></form>",
            s = escape(connect_state)
        )
    })
}

/// The bearer token or session cookie a request carries.
fn presented_token(req: &HttpRequest, state: &AppState) -> Option<String> {
    let bearer =
        req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| {
            v.split_once(' ')
                .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t.trim().to_string())
        });
    bearer.or_else(|| read_cookie(req, state, SESSION_COOKIE))
}

/// The signed-in person: the session cookie set by the sign-in page, or a Bearer user token.
fn signed_in(req: &HttpRequest, state: &AppState) -> Option<String> {
    let claims = state.issuer.verify_access(&presented_token(req, state)?).ok()?;
    // A bound token is no bearer credential (RFC 9449 §7, RFC 8705 §3); the hosted pages take
    // no proof, so they take no bound token.
    let is_bearer = claims.cnf.is_none();
    (is_bearer
        && claims.client_id == CONSUMER_CLIENT_ID
        && state.issuer.is_token_live_for_subject(&claims))
    .then_some(claims.sub)
}

fn refusal_reason(why: ConnectRefusal) -> &'static str {
    match why {
        ConnectRefusal::Unknown => "unknown_request",
        ConnectRefusal::Expired => "expired",
        ConnectRefusal::Used => "already_used",
        ConnectRefusal::OtherUser => "wrong_user",
    }
}

async fn provider_of(state: &AppState, record: &ConnectRecord) -> Option<ProviderRecord> {
    state.registry.provider_by_id(record.provider_id.clone()).await.ok().flatten()
}

/// The cookie that binds a flow to the browser that started it: its name carries a prefix of
/// the provider state's hash, its value the whole hash (never the state itself).
fn flow_binding(provider_state: &str) -> (String, String) {
    let digest = to_hex(&hash_secret(provider_state));
    (format!("{FLOW_COOKIE_PREFIX}{}", &digest[..12]), digest)
}

#[utoipa::path(
    get,
    path = "/connect/provider-token/{state}",
    tag = "connect",
    operation_id = "connect_hosted",
    description = "The hosted provider-token flow's page.",
    params(("state" = String, Path, description = "the request's one-time state")),
    responses(
        (status = 200, description = "Done.", body = String, content_type = "text/html"),
        (status = 303, description = "On to the next step."),
        (status = "default", description = "An error page.", body = String, content_type = "text/html"),
    ),
)]
async fn hosted(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let connect_state = path.into_inner();
    let record = match state.provider_flow.request(&connect_state).await {
        Ok(Some(record)) => record,
        Err(e) if e.is_unavailable() => return unavailable(),
        Ok(None) | Err(_) => return invalid_link(),
    };
    let Some(provider) = provider_of(&state, &record).await else {
        return error_back(&state, &record, "", "provider_unavailable");
    };
    // Who is asking comes first: another user learns nothing about the request, not even
    // whether it is spent.
    let Some(auth_id) = signed_in(&req, &state) else {
        return sign_in_page(&state, &connect_state, None, StatusCode::OK);
    };
    if auth_id != record.user_id {
        return wrong_account_page(&state, &connect_state);
    }
    let (provider_state, lifetime) = match state.provider_flow.begin(&record, &auth_id).await {
        Ok(Begin::Sent { provider_state, expires_in }) => (provider_state, expires_in),
        Ok(Begin::Refused(why)) => {
            return error_back(&state, &record, &provider.name, refusal_reason(why));
        }
        Err(e) => return failed(&e),
    };
    let scope = record.scopes.join(" ");
    let mut res = redirect(&with_query(
        &provider.authorize_url,
        &[
            ("response_type", "code"),
            ("client_id", &provider.client_id),
            ("redirect_uri", state.provider_flow.callback_url()),
            ("scope", &scope),
            ("state", &provider_state),
        ],
    ));
    // Lax: the provider's redirect back is a top-level navigation from its site.
    let (name, value) = flow_binding(&provider_state);
    res.add_cookie(&cookie(&state, &name, value, CALLBACK_PATH, SameSite::Lax, lifetime)).ok();
    res
}

/// A form posted to us, checked in this order: sent from our own pages, well formed, and
/// carrying the CSRF token of its cookie. A refusal names the page to answer.
fn checked_form<F>(
    req: &HttpRequest,
    state: &AppState,
    body: &[u8],
    parse: fn(&[u8]) -> Result<F, connect_form::FormError>,
    csrf: fn(&F) -> &str,
) -> Result<F, fn() -> HttpResponse> {
    if !is_same_origin(req, state) {
        return Err(cross_site);
    }
    let form = parse(body).map_err(|_| invalid_link as fn() -> HttpResponse)?;
    if !csrf_matches(req, state, csrf(&form)) {
        return Err(form_expired);
    }
    Ok(form)
}

#[utoipa::path(
    post,
    path = "/connect/sign-in",
    tag = "connect",
    operation_id = "connect_sign_in",
    description = "Sign in during the hosted flow (form).",
    request_body(content = crate::api::openapi::SignInForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "A page.", body = String, content_type = "text/html"),
        (status = 303, description = "On to the next step."),
        (status = "default", description = "An error page.", body = String, content_type = "text/html"),
    ),
)]
async fn sign_in(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    let parse = connect_form::parse_sign_in;
    let form = match checked_form(&req, &state, &body, parse, |f| &f.csrf) {
        Ok(form) => form,
        Err(refusal) => return refusal(),
    };
    // Only a request of ours that can still complete gets a session.
    match state.provider_flow.open_request(&form.state).await {
        Ok(Some(_)) => {}
        Err(e) if e.is_unavailable() => return unavailable(),
        Ok(None) | Err(_) => return invalid_link(),
    }
    let addr = req.peer_addr().map(|a| a.ip());
    let checked =
        crate::api::sign_in::check_password(&state, &form.username, &form.password, addr).await;
    let auth_id = match checked {
        Ok(Some(auth_id)) => auth_id,
        Ok(None) => {
            let why = Some("Wrong username or password.");
            return sign_in_page(&state, &form.state, why, StatusCode::UNAUTHORIZED);
        }
        Err(OAuthError::TooManyRequests { retry_after })
        | Err(OAuthError::TemporarilyUnavailable { retry_after, .. }) => {
            let (status, why) = match checked {
                Err(OAuthError::TooManyRequests { .. }) => (
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many attempts. Wait a minute and try again.",
                ),
                _ => (StatusCode::SERVICE_UNAVAILABLE, "We are busy. Try again in a moment."),
            };
            let mut res = sign_in_page(&state, &form.state, Some(why), status);
            res.headers_mut().insert(header::RETRY_AFTER, retry_after.into());
            return res;
        }
        Err(_) => return try_again(),
    };
    let Ok(session) = state.issuer.session_token(&auth_id, SESSION_TTL) else { return try_again() };
    let lifetime = session.exp.saturating_sub(state.issuer.now());
    let session =
        cookie(&state, SESSION_COOKIE, session.token, "/connect", SameSite::Lax, lifetime);
    let mut res = redirect(&format!("/connect/provider-token/{}", form.state));
    res.add_cookie(&session).ok();
    res.add_cookie(&removal(&state, CSRF_COOKIE, "/connect")).ok();
    res
}

/// Ends the browser's session: the cookie is cleared and the token behind it revoked, so a
/// copy of it is worthless too. Then back to the request, if one is named, to sign in again.
#[utoipa::path(
    post,
    path = "/connect/sign-out",
    tag = "connect",
    operation_id = "connect_sign_out",
    description = "Sign out of the hosted flow (form).",
    request_body(content = crate::api::openapi::SignOutForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "A page.", body = String, content_type = "text/html"),
        (status = 303, description = "On to the next step."),
        (status = "default", description = "An error page.", body = String, content_type = "text/html"),
    ),
)]
async fn sign_out(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    let parse = connect_form::parse_sign_out;
    let form = match checked_form(&req, &state, &body, parse, |f| &f.csrf) {
        Ok(form) => form,
        Err(refusal) => return refusal(),
    };
    let session = read_cookie(&req, &state, SESSION_COOKIE);
    if let Some(claims) = session.and_then(|t| state.issuer.verify_access(&t).ok()) {
        let op = GrantOp::RevokeAccess { jti: claims.jti, exp: claims.exp };
        if let Err(e) = state.grants.submit(op).await {
            tracing::error!(error = %e, "sign-out revocation not committed");
            return failed(&FlowError::Grants(e));
        }
    }
    let mut res = match &form.state {
        Some(s) => redirect(&format!("/connect/provider-token/{s}")),
        None => page(StatusCode::OK, "Signed out", "<p>You are signed out.</p>"),
    };
    res.add_cookie(&removal(&state, SESSION_COOKIE, "/connect")).ok();
    res.add_cookie(&removal(&state, CSRF_COOKIE, "/connect")).ok();
    res
}

#[utoipa::path(
    get,
    path = "/connect/callback",
    tag = "connect",
    operation_id = "connect_callback",
    description = "The provider's redirect back to Tessera.",
    responses(
        (status = 200, description = "A page.", body = String, content_type = "text/html"),
        (status = 303, description = "On to the next step."),
        (status = "default", description = "An error page.", body = String, content_type = "text/html"),
    ),
)]
async fn callback(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let Ok(answer) = connect_form::parse_callback(req.query_string()) else {
        return invalid_link();
    };
    let record = match state.provider_flow.request_by_provider_state(&answer.state).await {
        Ok(Some(record)) => record,
        Err(e) if e.is_unavailable() => return unavailable(),
        Ok(None) | Err(_) => return invalid_link(),
    };
    let Some(provider) = provider_of(&state, &record).await else {
        return error_back(&state, &record, "", "provider_unavailable");
    };
    // Only the browser that was sent to the provider, signed in as the bound user, finishes
    // the flow: a provider URL handed to someone else completes nothing and stores nothing.
    let (binding_name, binding) = flow_binding(&answer.state);
    let is_bound =
        read_cookie(&req, &state, &binding_name).is_some_and(|c| hex_matches(&c, &binding));
    let user = is_bound.then(|| signed_in(&req, &state)).flatten();
    let Some(user) = user.filter(|user| *user == record.user_id) else {
        tracing::warn!(service_id = %record.service_id, "provider callback from a browser that did not start the flow");
        return error_back(&state, &record, &provider.name, "session_mismatch");
    };
    let done = state.provider_flow.complete(&record, &provider, &user, answer).await;
    let mut res = finished(&state, &record, &provider, done);
    res.add_cookie(&removal(&state, &binding_name, CALLBACK_PATH)).ok();
    res
}

/// Back to the service with how the flow ended.
fn finished(
    state: &AppState,
    record: &ConnectRecord,
    provider: &ProviderRecord,
    done: Result<Completion, FlowError>,
) -> HttpResponse {
    match done {
        Ok(Completion::Completed(done)) => {
            count(state, &done.service_id, ProviderOutcome::Completed);
            let mut pairs =
                vec![("provider_grant", "success"), ("provider", provider.name.as_str())];
            if let Some(s) = &done.client_state {
                pairs.push(("state", s));
            }
            redirect(&with_query(&done.redirect_uri, &pairs))
        }
        Ok(Completion::Refused(why)) => {
            error_back(state, record, &provider.name, refusal_reason(why))
        }
        Ok(Completion::ProviderError) => {
            error_back(state, record, &provider.name, "provider_error")
        }
        Ok(Completion::Denied) => error_back(state, record, &provider.name, "denied"),
        Err(e) => failed(&e),
    }
}
