//! The S2S admin API (docs/api.md, Admin API): bearer-authenticated, scope-gated, Melody Auth envelopes.

pub(crate) mod apps;
pub use apps::view as app_view;
pub mod audit;
pub(crate) mod bearer;
pub(crate) mod error;
pub(crate) mod info;
pub(crate) mod issuers;
pub mod keys;
pub(crate) mod providers;
pub(crate) mod resources;
pub(crate) mod scopes;
pub(crate) mod services;
pub(crate) mod users;

pub use bearer::Bearer;
pub use error::AdminError;
pub use users::user_json;

use actix_web::web;

use crate::api::routes::Area;
use tessera_core::registry::Page;

/// The admin API's areas: their routes, and how each registers them.
pub const AREAS: &[Area] = &[
    (info::ROUTES, info::configure),
    (apps::ROUTES, apps::configure),
    (audit::ROUTES, audit::configure),
    (keys::ROUTES, keys::configure),
    (scopes::ROUTES, scopes::configure),
    (users::ROUTES, users::configure),
    (services::ROUTES, services::configure),
    (providers::ROUTES, providers::configure),
    (resources::ROUTES, resources::configure),
    (issuers::ROUTES, issuers::configure),
];

/// JSON bodies: bounded, and any fault (syntax, unknown field, wrong type) is a `400` that
/// says what was wrong.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, _| AdminError::from_json(err).into())
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default()
        .error_handler(|err, _| AdminError::BadRequest(format!("bad query: {err}")).into())
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default()
        .error_handler(|err, _| AdminError::BadRequest(format!("bad path: {err}")).into())
}

/// `pageSize` and `pageNumber` (1-based), as Melody Auth lists take them.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PageQuery {
    page_size: Option<usize>,
    page_number: Option<usize>,
}

impl PageQuery {
    pub fn page(&self) -> Result<Page, AdminError> {
        Page::asked(self.page_size, self.page_number).ok_or_else(|| {
            AdminError::BadRequest(format!(
                "pageSize must be 1 to {} and pageNumber at least 1",
                Page::MAX_SIZE
            ))
        })
    }
}

/// RFC 3339 for a Unix time, as the admin API writes every date.
pub fn rfc3339(secs: u64) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp(secs as i64)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}
