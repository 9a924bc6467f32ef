//! `GET /api/v1/audit`: the audit log, oldest first, paged by cursor (scope `read_audit`).
//! A cursor is an event's position; `next` is always the last position answered (or the one
//! asked after), so a reader that polls with it sees every later event exactly once.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use tessera_core::registry::RegistryError;
use tessera_storage::{AuditOutcome, Logged};

use super::{AdminError, Bearer, rfc3339};
use crate::api::AppState;
use crate::api::routes::routes;

routes! {
    "/api/v1/audit" => { get: list },
}

/// Events per page unless asked: as many as a list of records.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AuditQuery {
    after: Option<String>,
    page_size: Option<usize>,
}

pub fn event_json(logged: &Logged) -> serde_json::Value {
    let e = &logged.event;
    json!({
        "id": logged.seq.to_string(),
        "at": rfc3339(e.at),
        "actor": e.actor,
        "action": e.action,
        "target": e.target,
        "outcome": match e.outcome {
            AuditOutcome::Success => "success",
            AuditOutcome::Refused => "refused",
        },
        "reason": e.reason,
        "requestId": e.request_id,
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "audit",
    operation_id = "audit_list",
    security(("bearer" = ["read_audit"])),
    description = "The audit log, oldest first, paged by cursor. Requires the scope `read_audit` (or `root`).",
    params(AuditQuery),
    responses(
        (status = 200, description = "Done.", body = Object, content_type = "application/json"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn list(
    caller: Bearer,
    q: web::Query<AuditQuery>,
    s: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    caller.require("read_audit")?;
    let after = match q.after.as_deref() {
        None | Some("") => 0,
        Some(cursor) => cursor.parse::<u64>().map_err(|_| {
            AdminError::BadRequest("after must be a cursor from an earlier page".into())
        })?,
    };
    let size = q.page_size.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&size) {
        return Err(AdminError::BadRequest(format!("pageSize must be 1 to {MAX_PAGE}")));
    }
    let log = s.audit.clone();
    let events = web::block(move || log.after(after, size))
        .await
        .map_err(|_| AdminError::Internal)?
        .map_err(|e| AdminError::from(RegistryError::Grants(e)))?;
    let next = events.last().map_or(after, |e| e.seq);
    let listed: Vec<_> = events.iter().map(event_json).collect();
    Ok(HttpResponse::Ok().json(json!({ "events": listed, "next": next.to_string() })))
}
