//! Apps as operators describe them, and the checks an app must pass to be stored.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use tessera_storage::{FederatedIdentity, TlsClientAuth, TokenQuota};

use crate::auth::certificate;
use crate::policy::is_scope_token;
use crate::registry::RegistryError;
use crate::tables::client::{GRANT_CLIENT_CREDENTIALS, GRANT_REFRESH_TOKEN};
use crate::tokens::claims::REGISTERED_CLAIMS;

fn invalid(field: &'static str, reason: impl Into<String>) -> RegistryError {
    RegistryError::invalid(field, reason)
}

/// A new app, as operators describe it over HTTP or the CLI.
#[derive(Debug, Clone, Default)]
pub struct NewApp {
    pub name: String,
    pub description: String,
    /// Only `s2s` exists; sent for the API's shape.
    pub kind: Option<String>,
    pub scopes: Vec<String>,
    pub grant_types: Option<Vec<String>>,
    pub is_active: Option<bool>,
    pub metadata: Map<String, Value>,
    pub token_claims: Map<String, Value>,
    pub access_token_ttl_secs: Option<u64>,
    pub public_key_jwk: Option<Value>,
    /// Scopes granted per resource identifier (RFC 8707).
    pub resources: BTreeMap<String, Vec<String>>,
    pub require_dpop: Option<bool>,
    pub tls_client_auth: Option<TlsClientAuth>,
    pub self_signed_certificates: Vec<String>,
    pub federated_identities: Vec<FederatedIdentity>,
    pub can_exchange: Option<bool>,
    /// `None` follows the server's `token_reuse`.
    pub token_reuse: Option<bool>,
    pub token_quota: Option<TokenQuota>,
}

/// A change to an app: each field present replaces the stored one; the lifetime and the key
/// can also be cleared (`Some(None)`).
#[derive(Debug, Clone, Default)]
pub struct AppPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub grant_types: Option<Vec<String>>,
    pub is_active: Option<bool>,
    pub metadata: Option<Map<String, Value>>,
    pub token_claims: Option<Map<String, Value>>,
    pub access_token_ttl_secs: Option<Option<u64>>,
    pub public_key_jwk: Option<Option<Value>>,
    /// Replaces every grant.
    pub resources: Option<BTreeMap<String, Vec<String>>>,
    pub require_dpop: Option<bool>,
    pub tls_client_auth: Option<Option<TlsClientAuth>>,
    pub self_signed_certificates: Option<Vec<String>>,
    /// Replaces every federated identity.
    pub federated_identities: Option<Vec<FederatedIdentity>>,
    pub can_exchange: Option<bool>,
    /// `Some(None)` goes back to following the server's `token_reuse`.
    pub token_reuse: Option<Option<bool>>,
    /// `Some(None)` removes the quota.
    pub token_quota: Option<Option<TokenQuota>>,
}

const MAX_SCOPES: usize = 100;
const MAX_BLOB: usize = 4096;

pub fn check_name(name: &str) -> Result<String, RegistryError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 128 {
        return Err(invalid("name", "name must be 1 to 128 characters"));
    }
    Ok(name.to_string())
}

pub fn check_description(text: &str) -> Result<(), RegistryError> {
    if text.chars().count() > 1024 {
        return Err(invalid("description", "description must be at most 1024 characters"));
    }
    Ok(())
}

/// Valid RFC 6749 §3.3 tokens, duplicates dropped, order kept.
pub fn check_scopes(scopes: &[String]) -> Result<Vec<String>, RegistryError> {
    if scopes.len() > MAX_SCOPES {
        return Err(invalid("scopes", format!("an app holds at most {MAX_SCOPES} scopes")));
    }
    let mut out: Vec<String> = Vec::with_capacity(scopes.len());
    for scope in scopes {
        if !is_scope_token(scope) {
            return Err(invalid(
                "scopes",
                format!("'{scope}' is not a valid scope name (RFC 6749 §3.3)"),
            ));
        }
        if !out.contains(scope) {
            out.push(scope.clone());
        }
    }
    Ok(out)
}

pub fn check_grant_types(grants: &[String]) -> Result<Vec<String>, RegistryError> {
    let mut out: Vec<String> = Vec::new();
    for grant in grants {
        if grant != GRANT_CLIENT_CREDENTIALS && grant != GRANT_REFRESH_TOKEN {
            return Err(invalid(
                "grantTypes",
                format!(
                    "grant type '{grant}' is not supported (client_credentials, refresh_token)"
                ),
            ));
        }
        if !out.contains(grant) {
            out.push(grant.clone());
        }
    }
    if !out.iter().any(|g| g == GRANT_CLIENT_CREDENTIALS) {
        return Err(invalid("grantTypes", "grantTypes must include client_credentials"));
    }
    Ok(out)
}

pub fn check_token_claims(claims: &Map<String, Value>) -> Result<(), RegistryError> {
    if let Some(name) = claims.keys().find(|k| REGISTERED_CLAIMS.contains(&k.as_str())) {
        return Err(invalid(
            "tokenClaims",
            format!("tokenClaims cannot set the registered claim '{name}'"),
        ));
    }
    if Value::Object(claims.clone()).to_string().len() > MAX_BLOB {
        return Err(invalid(
            "tokenClaims",
            format!("tokenClaims must serialize to at most {MAX_BLOB} bytes"),
        ));
    }
    Ok(())
}

pub fn check_metadata(metadata: &Map<String, Value>) -> Result<(), RegistryError> {
    if Value::Object(metadata.clone()).to_string().len() > MAX_BLOB {
        return Err(invalid(
            "metadata",
            format!("metadata must serialize to at most {MAX_BLOB} bytes"),
        ));
    }
    Ok(())
}

pub fn check_ttl(ttl: Option<u64>, max: u64) -> Result<(), RegistryError> {
    match ttl {
        Some(t) if t == 0 || t > max => Err(invalid(
            "accessTokenTtlSecs",
            format!("accessTokenTtlSecs must be between 1 and {max}"),
        )),
        _ => Ok(()),
    }
}

/// The most tokens per minute a quota may allow: past this a quota limits nothing a node could
/// sign anyway, and the window's count fits its bits (`tokens/quota.rs`).
pub const MAX_TOKENS_PER_MINUTE: u32 = 1_000_000;

pub fn check_token_quota(quota: TokenQuota) -> Result<TokenQuota, RegistryError> {
    if !(1..=MAX_TOKENS_PER_MINUTE).contains(&quota.per_minute) {
        return Err(invalid(
            "tokenQuota",
            format!("tokenQuota.perMinute must be between 1 and {MAX_TOKENS_PER_MINUTE}"),
        ));
    }
    Ok(quota)
}

/// An Ed25519 public JWK (RFC 8037): `kty` OKP, `crv` Ed25519, `x` of 32 bytes; no private part.
pub fn check_public_jwk(jwk: &Value) -> Result<(), RegistryError> {
    use base64::Engine;
    let bad = || {
        invalid(
            "publicKeyJwk",
            "publicKeyJwk must be an Ed25519 public JWK {\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":…}",
        )
    };
    let obj = jwk.as_object().ok_or_else(bad)?;
    if obj.get("kty").and_then(Value::as_str) != Some("OKP")
        || obj.get("crv").and_then(Value::as_str) != Some("Ed25519")
        || obj.contains_key("d")
    {
        return Err(bad());
    }
    let x = obj.get("x").and_then(Value::as_str).ok_or_else(bad)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(x).map_err(|_| bad())?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| bad())?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| bad())?;
    Ok(())
}

/// At most this many self-signed certificates, so a rotation can overlap old and new.
const MAX_CERTIFICATES: usize = 4;

/// `tls_client_auth`: exactly one name, well formed; a DN kept in the RFC 4514 form
/// certificates are compared in.
pub fn check_tls_client_auth(auth: &TlsClientAuth) -> Result<TlsClientAuth, RegistryError> {
    let field = "tlsClientAuth";
    let given = [&auth.subject_dn, &auth.san_dns, &auth.san_uri, &auth.san_ip, &auth.san_email];
    if given.iter().filter(|v| v.is_some()).count() != 1 {
        let reason =
            "tlsClientAuth names exactly one of subjectDn, sanDns, sanUri, sanIp, sanEmail";
        return Err(invalid(field, reason));
    }
    if given.iter().flat_map(|v| v.as_deref()).any(|v| v.is_empty() || v.len() > 1024) {
        return Err(invalid(field, "a tlsClientAuth name must be 1 to 1024 characters"));
    }
    let mut checked = auth.clone();
    if let Some(dn) = &auth.subject_dn {
        let normal = certificate::normalize_dn(dn).ok_or_else(|| {
            invalid(field, format!("'{dn}' is not a distinguished name (RFC 4514)"))
        })?;
        checked.subject_dn = Some(normal);
    }
    if let Some(ip) = &auth.san_ip {
        let parsed: std::net::IpAddr =
            ip.parse().map_err(|_| invalid(field, format!("'{ip}' is not an IP address")))?;
        checked.san_ip = Some(parsed.to_string());
    }
    Ok(checked)
}

/// `self_signed_tls_client_auth`: certificates, PEM or base64 DER, at most a few.
pub fn check_certificates(certs: &[String]) -> Result<(), RegistryError> {
    let field = "selfSignedCertificates";
    if certs.len() > MAX_CERTIFICATES {
        let reason = format!("an app registers at most {MAX_CERTIFICATES} certificates");
        return Err(invalid(field, reason));
    }
    for cert in certs {
        if cert.len() > 16 * 1024 || certificate::registered_thumbprint(cert).is_none() {
            return Err(invalid(
                field,
                "each selfSignedCertificates entry must be a PEM certificate",
            ));
        }
    }
    Ok(())
}

/// A client id an operator chooses (the root's, an imported app's): 1 to 128 characters that
/// need no escaping in a URL or a Basic credential.
pub fn is_client_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_claims_cannot_shadow_registered_claims() {
        let mut claims = Map::new();
        claims.insert("tenant".into(), Value::from("t1"));
        assert!(check_token_claims(&claims).is_ok());
        claims.insert("scope".into(), Value::from("root"));
        assert!(check_token_claims(&claims).unwrap_err().to_string().contains("scope"));
    }

    #[test]
    fn grant_types_need_client_credentials() {
        assert!(check_grant_types(&["refresh_token".into()]).is_err());
        assert!(check_grant_types(&["password".into()]).is_err());
        assert_eq!(
            check_grant_types(&["client_credentials".into(), "client_credentials".into()]).unwrap(),
            vec!["client_credentials".to_string()]
        );
    }
}
