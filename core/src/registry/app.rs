//! Apps as operators describe them, and the checks an app must pass to be stored.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::policy::is_scope_token;
use crate::tokens::claims::REGISTERED_CLAIMS;

pub const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";
pub const GRANT_REFRESH_TOKEN: &str = "refresh_token";

/// A new app, as `POST /api/v1/apps` and `tessera apps create` take it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewApp {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub grant_types: Option<Vec<String>>,
    #[serde(default)]
    pub is_active: Option<bool>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    #[serde(default)]
    pub token_claims: Map<String, Value>,
    #[serde(default)]
    pub access_token_ttl_secs: Option<u64>,
    #[serde(default)]
    pub public_key_jwk: Option<Value>,
}

/// A change to an app (`PUT /api/v1/apps/{id}`): each field present replaces the stored one.
/// `accessTokenTtlSecs` and `publicKeyJwk` may be `null` to clear them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub grant_types: Option<Vec<String>>,
    pub is_active: Option<bool>,
    pub metadata: Option<Map<String, Value>>,
    pub token_claims: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "double_option")]
    pub access_token_ttl_secs: Option<Option<u64>>,
    #[serde(default, deserialize_with = "double_option")]
    pub public_key_jwk: Option<Option<Value>>,
}

fn double_option<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(
    de: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(de).map(Some)
}

const MAX_SCOPES: usize = 100;
const MAX_BLOB: usize = 4096;

pub fn check_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 128 {
        return Err("name must be 1 to 128 characters".into());
    }
    Ok(name.to_string())
}

pub fn check_description(text: &str) -> Result<(), String> {
    if text.chars().count() > 1024 {
        return Err("description must be at most 1024 characters".into());
    }
    Ok(())
}

/// Valid RFC 6749 §3.3 tokens, duplicates dropped, order kept.
pub fn check_scopes(scopes: &[String]) -> Result<Vec<String>, String> {
    if scopes.len() > MAX_SCOPES {
        return Err(format!("an app holds at most {MAX_SCOPES} scopes"));
    }
    let mut out: Vec<String> = Vec::with_capacity(scopes.len());
    for scope in scopes {
        if !is_scope_token(scope) {
            return Err(format!("'{scope}' is not a valid scope name (RFC 6749 §3.3)"));
        }
        if !out.contains(scope) {
            out.push(scope.clone());
        }
    }
    Ok(out)
}

pub fn check_grant_types(grants: &[String]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for grant in grants {
        if grant != GRANT_CLIENT_CREDENTIALS && grant != GRANT_REFRESH_TOKEN {
            return Err(format!(
                "grant type '{grant}' is not supported (client_credentials, refresh_token)"
            ));
        }
        if !out.contains(grant) {
            out.push(grant.clone());
        }
    }
    if !out.iter().any(|g| g == GRANT_CLIENT_CREDENTIALS) {
        return Err("grantTypes must include client_credentials".into());
    }
    Ok(out)
}

pub fn check_token_claims(claims: &Map<String, Value>) -> Result<(), String> {
    if let Some(name) = claims.keys().find(|k| REGISTERED_CLAIMS.contains(&k.as_str())) {
        return Err(format!("tokenClaims cannot set the registered claim '{name}'"));
    }
    if Value::Object(claims.clone()).to_string().len() > MAX_BLOB {
        return Err(format!("tokenClaims must serialize to at most {MAX_BLOB} bytes"));
    }
    Ok(())
}

pub fn check_metadata(metadata: &Map<String, Value>) -> Result<(), String> {
    if Value::Object(metadata.clone()).to_string().len() > MAX_BLOB {
        return Err(format!("metadata must serialize to at most {MAX_BLOB} bytes"));
    }
    Ok(())
}

pub fn check_ttl(ttl: Option<u64>, max: u64) -> Result<(), String> {
    match ttl {
        Some(t) if t == 0 || t > max => {
            Err(format!("accessTokenTtlSecs must be between 1 and {max}"))
        }
        _ => Ok(()),
    }
}

/// The 32 key bytes of a checked Ed25519 public JWK.
pub fn jwk_key_bytes(jwk: &Value) -> Option<[u8; 32]> {
    use base64::Engine;
    let x = jwk.get("x")?.as_str()?;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(x).ok()?.try_into().ok()
}

/// An Ed25519 public JWK (RFC 8037): `kty` OKP, `crv` Ed25519, `x` of 32 bytes; no private part.
pub fn check_public_jwk(jwk: &Value) -> Result<(), String> {
    use base64::Engine;
    let bad = || {
        "publicKeyJwk must be an Ed25519 public JWK {\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":…}"
            .to_string()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_claims_cannot_shadow_registered_claims() {
        let mut claims = Map::new();
        claims.insert("tenant".into(), Value::from("t1"));
        assert!(check_token_claims(&claims).is_ok());
        claims.insert("scope".into(), Value::from("root"));
        assert!(check_token_claims(&claims).unwrap_err().contains("scope"));
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

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<NewApp>(r#"{"name":"a","scopez":[]}"#).is_err());
        let patch: AppPatch = serde_json::from_str(r#"{"accessTokenTtlSecs":null}"#).unwrap();
        assert_eq!(patch.access_token_ttl_secs, Some(None));
    }
}
