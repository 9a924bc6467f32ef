//! The bearer check of every admin call: our own token, verified against the published keys,
//! its app still active, then the scope the call needs (`root` passes every check).

use std::future::{Ready, ready};

use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use tessera_core::audit::{self, Origin};
use tessera_core::grants::GrantStore;
use tessera_core::oauth::OAuthError;
use tessera_core::oauth::dpop::{self, ProofError};
use tessera_core::policy::{Caller, ROOT};
use tessera_core::registry::RegistryHandle;
use tessera_core::tokens::claims::AccessClaims;
use tessera_storage::GrantOp;

use super::AdminError;
use crate::api::AppState;
use crate::api::ClientTag;
use crate::api::metrics::AuthMethod;
use crate::api::oauth2::dpop_header;

/// An authenticated admin caller.
pub struct Bearer {
    pub claims: AccessClaims,
    request_id: Option<String>,
    /// Where a refusal for a missing scope is recorded, and what it names.
    denials: Denials,
}

/// What an audit event of a call refused for its scope needs: the grant store that commits
/// it, the call's route, and the time.
struct Denials {
    grants: GrantStore,
    route: String,
    at: u64,
}

impl Bearer {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.claims.scopes().any(|s| s == scope || s == ROOT)
    }

    /// `403 insufficient_scope` unless the token holds `scope` or `root`. A refusal is
    /// audited: an app probing what it may not do is what an audit log is for.
    pub fn require(&self, scope: &'static str) -> Result<(), AdminError> {
        if self.has_scope(scope) {
            return Ok(());
        }
        let refused = AdminError::Forbidden(scope);
        let Denials { grants, route, at } = &self.denials;
        let event =
            self.origin().refusal("request.denied", Some(route.clone()), refused.to_string(), *at);
        audit::emit(&event);
        grants.submit_detached(GrantOp::Audit(event));
        Err(refused)
    }

    /// The caller as the audit log names it.
    pub fn origin(&self) -> Origin {
        Origin::app(&self.claims.client_id, self.request_id.as_deref())
    }

    /// The registry, its writes recorded as this caller's.
    pub fn registry(&self, state: &AppState) -> RegistryHandle {
        state.registry.on_behalf(self.origin())
    }

    /// The caller as the escalation rules see it.
    pub fn caller(&self) -> Caller {
        Caller::App {
            client_id: self.claims.client_id.clone(),
            scopes: self.claims.scopes().map(str::to_string).collect(),
        }
    }
}

impl FromRequest for Bearer {
    type Error = AdminError;
    type Future = Ready<Result<Bearer, AdminError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(authenticate(req))
    }
}

/// A bound token opens nothing without what it is bound to: a certificate-bound one without
/// its certificate on the connection (RFC 8705 §3), a key-bound one without a proof by that
/// key for this very request (RFC 9449 §7) — as `Bearer` it is refused, and a `DPoP` token
/// must be bound.
fn check_binding(
    req: &HttpRequest,
    state: &AppState,
    token: &str,
    claims: &AccessClaims,
    is_dpop: bool,
) -> Result<(), AdminError> {
    let failed = |e| {
        state.metrics.failed_authentication(AuthMethod::Bearer);
        e
    };
    // RFC 8705 §3: a certificate-bound token comes over a connection with that certificate.
    if let Some(x5t) = claims.cnf.as_ref().and_then(|c| c.x5t_s256.as_deref()) {
        let presented = crate::tls::client_certificate(req, &state.config, state.tls.as_deref());
        if presented.is_none_or(|c| c.thumbprint != x5t) {
            return Err(failed(if is_dpop {
                AdminError::DpopToken
            } else {
                AdminError::Unauthorized
            }));
        }
    }
    let bound = match (claims.jkt(), is_dpop) {
        (None, false) => return Ok(()),
        (Some(_), false) => return Err(failed(AdminError::Unauthorized)),
        (None, true) => return Err(failed(AdminError::DpopToken)),
        (Some(jkt), true) => jkt,
    };
    let proof = match dpop_header(req) {
        Ok(Some(proof)) => proof,
        Ok(None) => return Err(failed(AdminError::DpopProof(ProofError::Missing))),
        Err(e) => return Err(failed(AdminError::DpopProof(e))),
    };
    let issuer = &state.issuer;
    let htu = format!("{}{}", issuer.settings.issuer, req.path());
    let expected = dpop::Expected {
        htm: req.method().as_str(),
        htu: &htu,
        now: issuer.now(),
        access_token: Some(token),
    };
    match issuer.fresh_proof(proof, &expected, Some(bound)) {
        Ok(_) => Ok(()),
        Err(OAuthError::InvalidDpopProof(e)) => Err(failed(AdminError::DpopProof(e))),
        Err(_) => Err(AdminError::DpopProof(ProofError::Full)),
    }
}

fn authenticate(req: &HttpRequest) -> Result<Bearer, AdminError> {
    let state = req.app_data::<web::Data<AppState>>().ok_or(AdminError::Internal)?;
    let value = req.headers().get(header::AUTHORIZATION).ok_or(AdminError::Unauthorized)?;
    let value = value.to_str().map_err(|_| AdminError::Unauthorized)?;
    let (scheme, token) = value.trim().split_once(' ').ok_or(AdminError::Unauthorized)?;
    let token = token.trim();
    let is_dpop = scheme.eq_ignore_ascii_case("dpop");
    if !is_dpop && !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AdminError::Unauthorized);
    }
    let refused = if is_dpop { AdminError::DpopToken } else { AdminError::Unauthorized };
    let (claims, client) = state.issuer.verify_bearer(token).map_err(|_| {
        state.metrics.failed_authentication(AuthMethod::Bearer);
        refused
    })?;
    check_binding(req, state, token, &claims, is_dpop)?;
    req.extensions_mut().insert(ClientTag(client));
    let route = format!("route:{} {}", req.method(), req.match_pattern().unwrap_or_default());
    let denials = Denials { grants: state.grants.clone(), route, at: state.issuer.now() };
    Ok(Bearer { claims, request_id: crate::api::request_id::of_request(req), denials })
}
