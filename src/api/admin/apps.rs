//! Apps: CRUD and Stytch-style secret rotation, every change through the registry.

use actix_web::{HttpResponse, web};
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tessera_core::registry::apps::RotationStep;
use tessera_core::registry::apps::fields::{AppPatch, NewApp};
use tessera_core::registry::apps::import::{Imported, ImportedApp};
use tessera_storage::{AppRecord, FederatedIdentity, TlsClientAuth, TokenQuota};

use super::{AdminError, Bearer, PageQuery, rfc3339};
use crate::api::AppState;
use crate::api::routes::routes;

routes! {
    "/api/v1/apps" => { get: list, post: create },
    // Before `{id}`, which would otherwise take this path and answer 405.
    "/api/v1/apps/import" => { post: import },
    "/api/v1/apps/{id}" => { get: get, put: update, delete: delete },
    "/api/v1/apps/{id}/secrets/rotate/start" => { post: rotate_start },
    "/api/v1/apps/{id}/secrets/rotate" => { post: rotate_complete },
    "/api/v1/apps/{id}/secrets/rotate/cancel" => { post: rotate_cancel },
}

/// A new app (`POST /api/v1/apps`).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewAppBody {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
    grant_types: Option<Vec<String>>,
    is_active: Option<bool>,
    #[serde(default)]
    metadata: Map<String, Value>,
    #[serde(default)]
    token_claims: Map<String, Value>,
    access_token_ttl_secs: Option<u64>,
    public_key_jwk: Option<Value>,
    /// Scopes granted per resource identifier (RFC 8707).
    #[serde(default)]
    resources: BTreeMap<String, Vec<String>>,
    require_dpop: Option<bool>,
    /// `tls_client_auth` (RFC 8705): exactly one of subjectDn, sanDns, sanUri, sanIp, sanEmail.
    #[schema(value_type = Option<Object>)]
    tls_client_auth: Option<TlsClientAuth>,
    /// `self_signed_tls_client_auth` (RFC 8705): PEM certificates.
    #[serde(default)]
    self_signed_certificates: Vec<String>,
    /// External workload identities that authenticate as the app with no secret:
    /// `{issuer, subject, audience?, claims?}`.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    federated_identities: Vec<FederatedIdentityBody>,
    /// May use token exchange (RFC 8693).
    can_exchange: Option<bool>,
    /// Token reuse for this app whatever the server's `token_reuse` says; absent follows it.
    token_reuse: Option<bool>,
    /// `{"perMinute": N}`: at most N tokens a minute at each node, then `429`.
    #[schema(value_type = Option<Object>)]
    token_quota: Option<TokenQuota>,
}

// For the OpenAPI document only: `parse_import` reads each line itself, so that a refusal can
// name the line.
/// One line of an import: the body of `POST /api/v1/apps`, and optionally the app's client id
/// and secret from the token service it comes from.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[expect(dead_code, reason = "describes the wire format; never built")]
struct ImportLine {
    #[serde(flatten)]
    app: NewAppBody,
    /// The client id the app had at the token service it comes from; generated when absent.
    client_id: Option<String>,
    /// Its secret in plaintext, hashed on import; generated (and answered) when absent.
    secret: Option<String>,
}

impl From<NewAppBody> for NewApp {
    fn from(b: NewAppBody) -> NewApp {
        NewApp {
            name: b.name,
            description: b.description,
            kind: b.kind,
            scopes: b.scopes,
            grant_types: b.grant_types,
            is_active: b.is_active,
            metadata: b.metadata,
            token_claims: b.token_claims,
            access_token_ttl_secs: b.access_token_ttl_secs,
            public_key_jwk: b.public_key_jwk,
            resources: b.resources,
            require_dpop: b.require_dpop,
            tls_client_auth: b.tls_client_auth,
            self_signed_certificates: b.self_signed_certificates,
            federated_identities: b.federated_identities.into_iter().map(Into::into).collect(),
            can_exchange: b.can_exchange,
            token_reuse: b.token_reuse,
            token_quota: b.token_quota,
        }
    }
}

/// One federated identity as the API takes it. Unknown fields are refused: a misspelt
/// `claims` or `audience` would otherwise drop a condition and accept more workloads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FederatedIdentityBody {
    issuer: String,
    subject: String,
    audience: Option<String>,
    #[serde(default)]
    claims: BTreeMap<String, String>,
}

impl From<FederatedIdentityBody> for FederatedIdentity {
    fn from(b: FederatedIdentityBody) -> FederatedIdentity {
        FederatedIdentity {
            issuer: b.issuer,
            subject: b.subject,
            audience: b.audience,
            claims: b.claims,
        }
    }
}

/// A change to an app (`PUT /api/v1/apps/{id}`); `accessTokenTtlSecs` and `publicKeyJwk` may
/// be `null` to clear them, which is why those two tell absent from `null`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AppPatchBody {
    name: Option<String>,
    description: Option<String>,
    scopes: Option<Vec<String>>,
    grant_types: Option<Vec<String>>,
    is_active: Option<bool>,
    metadata: Option<Map<String, Value>>,
    token_claims: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "present")]
    access_token_ttl_secs: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present")]
    public_key_jwk: Option<Option<Value>>,
    /// Replaces every resource grant.
    resources: Option<BTreeMap<String, Vec<String>>>,
    require_dpop: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    tls_client_auth: Option<Option<TlsClientAuth>>,
    self_signed_certificates: Option<Vec<String>>,
    /// Replaces every federated identity.
    #[schema(value_type = Option<Vec<Object>>)]
    federated_identities: Option<Vec<FederatedIdentityBody>>,
    can_exchange: Option<bool>,
    /// `null` follows the server's `token_reuse` again.
    #[serde(default, deserialize_with = "present")]
    token_reuse: Option<Option<bool>>,
    /// `null` removes the quota.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    token_quota: Option<Option<TokenQuota>>,
}

/// A field that is there, even as `null`, is `Some`.
pub(super) fn present<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(
    de: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(de).map(Some)
}

impl From<AppPatchBody> for AppPatch {
    fn from(b: AppPatchBody) -> AppPatch {
        AppPatch {
            name: b.name,
            description: b.description,
            scopes: b.scopes,
            grant_types: b.grant_types,
            is_active: b.is_active,
            metadata: b.metadata,
            token_claims: b.token_claims,
            access_token_ttl_secs: b.access_token_ttl_secs,
            public_key_jwk: b.public_key_jwk,
            resources: b.resources,
            require_dpop: b.require_dpop,
            tls_client_auth: b.tls_client_auth,
            self_signed_certificates: b.self_signed_certificates,
            federated_identities: b
                .federated_identities
                .map(|ids| ids.into_iter().map(Into::into).collect()),
            can_exchange: b.can_exchange,
            token_reuse: b.token_reuse,
            token_quota: b.token_quota,
        }
    }
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
        "resources": app.resources,
        "requireDpop": app.require_dpop,
        "federatedIdentities": app.federated_identities,
        "canExchange": app.can_exchange,
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
    if let Some(auth) = &app.tls_client_auth {
        v["tlsClientAuth"] = json!(auth);
    }
    if !app.self_signed_certificates.is_empty() {
        v["selfSignedCertificates"] = json!(app.self_signed_certificates);
    }
    if let Some(reuse) = app.token_reuse {
        v["tokenReuse"] = json!(reuse);
    }
    if let Some(quota) = app.token_quota {
        v["tokenQuota"] = json!({ "perMinute": quota.per_minute });
    }
    v
}

#[utoipa::path(
    get,
    path = "/api/v1/apps",
    tag = "apps",
    operation_id = "apps_list",
    security(("bearer" = ["read_app"])),
    description = "List apps. Requires the scope `read_app` (or `root`).",
    params(PageQuery),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn list(
    caller: Bearer,
    query: web::Query<PageQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    caller.require("read_app")?;
    let page = state.registry.list_apps(query.page()?).await?;
    let apps: Vec<_> = page.items.iter().map(view).collect();
    Ok(HttpResponse::Ok().json(json!({ "apps": apps, "count": page.total })))
}

#[utoipa::path(
    get,
    path = "/api/v1/apps/{id}",
    tag = "apps",
    operation_id = "apps_get",
    security(("bearer" = ["read_app"])),
    description = "One app. Requires the scope `read_app` (or `root`).",
    params(("id" = String, Path, description = "the record's id")),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn get(
    caller: Bearer,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    caller.require("read_app")?;
    let app = state.registry.app(id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(json!({ "app": view(&app) })))
}

#[utoipa::path(
    post,
    path = "/api/v1/apps",
    tag = "apps",
    operation_id = "apps_create",
    security(("bearer" = ["write_app"])),
    description = "Create a app. Requires the scope `write_app` (or `root`).",
    request_body(content = NewAppBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn create(
    caller: Bearer,
    body: web::Json<NewAppBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    caller.require("write_app")?;
    let (app, secret) =
        caller.registry(&state).create_app(caller.caller(), body.into_inner().into()).await?;
    tracing::info!(by = %caller.claims.client_id, app = %app.id, client_id = %app.client_id, "app created");
    let mut v = view(&app);
    v["secret"] = json!(secret);
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "app": v })))
}

/// The largest import body: about a million apps of a typical line. Larger than
/// `body_limit`, which bounds ordinary calls; only a `write_app` caller can send one.
const MAX_IMPORT_BYTES: usize = 256 << 20;

#[utoipa::path(
    post,
    path = "/api/v1/apps/import",
    tag = "apps",
    operation_id = "apps_import",
    security(("bearer" = ["write_app"])),
    description = "Create many apps at once, all or none: one JSON object per line, each the body of `POST /api/v1/apps` plus an optional `clientId` and `secret` (hashed on import). A refusal names the first bad line. Requires the scope `write_app` (or `root`).",
    request_body(content = Vec<ImportLine>, content_type = "application/x-ndjson", description = "JSON Lines: one `ImportLine` object per line."),
    responses(
        (status = 201, description = "Done: each app's id and client id, and the secret of each that was given none.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn import(
    caller: Bearer,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    caller.require("write_app")?;
    let body = match payload.to_bytes_limited(MAX_IMPORT_BYTES).await {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => return Err(AdminError::TooLarge),
        Err(e) => return Err(AdminError::BadRequest(format!("the body could not be read: {e}"))),
    };
    let text = std::str::from_utf8(&body)
        .map_err(|_| AdminError::BadRequest("the body is not UTF-8".into()))?;
    let apps = parse_import(text)?;
    let imported = caller.registry(&state).import_apps(caller.caller(), apps).await?;
    tracing::info!(by = %caller.claims.client_id, apps = imported.len(), "apps imported");
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(import_view(&imported)))
}

/// One app per line (JSON Lines); blank lines are skipped but counted, so a refusal's line
/// number is the file's.
pub(crate) fn parse_import(text: &str) -> Result<Vec<ImportedApp>, AdminError> {
    let mut apps = Vec::new();
    for (at, line) in text.lines().enumerate() {
        let line_no = at + 1;
        if line.trim().is_empty() {
            continue;
        }
        let refuse = |why: String| AdminError::BadRequest(format!("line {line_no}: {why}"));
        let mut object: Map<String, Value> =
            serde_json::from_str(line).map_err(|e| refuse(format!("not a JSON object: {e}")))?;
        let mut take = |key: &str| match object.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(refuse(format!("{key} must be a string"))),
        };
        let (client_id, secret) = (take("clientId")?, take("secret")?);
        let app: NewAppBody =
            serde_json::from_value(Value::Object(object)).map_err(|e| refuse(e.to_string()))?;
        apps.push(ImportedApp { line: line_no, app: app.into(), client_id, secret });
    }
    Ok(apps)
}

/// What an import answers: each app's ids, and the secret it was given when it brought none.
/// Serialized straight from the registry's answer: for many apps a JSON tree in between costs
/// more than the answer itself.
#[derive(Serialize)]
pub(crate) struct ImportView<'a> {
    imported: usize,
    apps: Vec<ImportedView<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ImportedView<'a> {
    line: usize,
    id: &'a str,
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<&'a str>,
}

pub(crate) fn import_view(imported: &[Imported]) -> ImportView<'_> {
    let apps = imported
        .iter()
        .map(|i| ImportedView {
            line: i.line,
            id: &i.id,
            client_id: &i.client_id,
            secret: i.secret.as_deref(),
        })
        .collect();
    ImportView { imported: imported.len(), apps }
}

#[utoipa::path(
    put,
    path = "/api/v1/apps/{id}",
    tag = "apps",
    operation_id = "apps_update",
    security(("bearer" = ["write_app"])),
    description = "Change a app. Requires the scope `write_app` (or `root`).",
    request_body(content = AppPatchBody, content_type = "application/json"),
    params(("id" = String, Path, description = "the record's id")),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn update(
    caller: Bearer,
    id: web::Path<String>,
    body: web::Json<AppPatchBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    caller.require("write_app")?;
    let (id, patch) = (id.into_inner(), body.into_inner().into());
    let app = caller.registry(&state).update_app(caller.caller(), id, patch).await?;
    tracing::info!(by = %caller.claims.client_id, app = %app.id, "app updated");
    Ok(HttpResponse::Ok().json(json!({ "app": view(&app) })))
}

#[utoipa::path(
    delete,
    path = "/api/v1/apps/{id}",
    tag = "apps",
    operation_id = "apps_delete",
    security(("bearer" = ["write_app"])),
    description = "Delete a app. Requires the scope `write_app` (or `root`).",
    params(("id" = String, Path, description = "the record's id")),
    responses(
        (status = 204, description = "Done."),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn delete(
    caller: Bearer,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    caller.require("write_app")?;
    let id = id.into_inner();
    caller.registry(&state).delete_app(caller.caller(), id.clone()).await?;
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
    let (app, next) =
        caller.registry(&state).rotate_secret(caller.caller(), id.into_inner(), step).await?;
    tracing::info!(by = %caller.claims.client_id, app = %app.id, ?step, "app secret rotation");
    let mut body = json!({ "app": view(&app) });
    if let Some(secret) = next {
        body["nextSecret"] = json!(secret);
    }
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(body))
}

#[utoipa::path(
    post,
    path = "/api/v1/apps/{id}/secrets/rotate/start",
    tag = "apps",
    operation_id = "apps_rotate_start",
    security(("bearer" = ["write_app"])),
    description = "Start a secret rotation: a second secret, shown once. Requires the scope `write_app` (or `root`).",
    params(("id" = String, Path, description = "the record's id")),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn rotate_start(
    c: Bearer,
    id: web::Path<String>,
    s: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    rotate(c, id, s, RotationStep::Start).await
}

#[utoipa::path(
    post,
    path = "/api/v1/apps/{id}/secrets/rotate",
    tag = "apps",
    operation_id = "apps_rotate_complete",
    security(("bearer" = ["write_app"])),
    description = "Complete a secret rotation: only the new secret works. Requires the scope `write_app` (or `root`).",
    params(("id" = String, Path, description = "the record's id")),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn rotate_complete(
    c: Bearer,
    id: web::Path<String>,
    s: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    rotate(c, id, s, RotationStep::Complete).await
}

#[utoipa::path(
    post,
    path = "/api/v1/apps/{id}/secrets/rotate/cancel",
    tag = "apps",
    operation_id = "apps_rotate_cancel",
    security(("bearer" = ["write_app"])),
    description = "Cancel a secret rotation. Requires the scope `write_app` (or `root`).",
    params(("id" = String, Path, description = "the record's id")),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn rotate_cancel(
    c: Bearer,
    id: web::Path<String>,
    s: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    rotate(c, id, s, RotationStep::Cancel).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_refused_and_null_clears() {
        assert!(serde_json::from_str::<NewAppBody>(r#"{"name":"a","scopez":[]}"#).is_err());
        let patch: AppPatchBody = serde_json::from_str(r#"{"accessTokenTtlSecs":null}"#).unwrap();
        assert_eq!(patch.access_token_ttl_secs, Some(None));
        assert_eq!(patch.public_key_jwk, None);
    }
}
