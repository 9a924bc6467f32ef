//! Offline verification of a Tessera access token against a JWKS, as a resource server does
//! it (Stytch's `required_scopes`). Built on jwt-simple, an implementation independent of
//! our signer, so this also cross-checks what the server writes.

use std::collections::HashSet;

use jwt_simple::prelude::*;

#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    pub required_scopes: Vec<String>,
    /// Let `root` stand for any required scope (off by default: a resource server should ask
    /// for the scope it means).
    pub root_satisfies: bool,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TesseraClaims {
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub client_id: String,
}

/// A verified token: its subject, client and scopes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    pub sub: Option<String>,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub kid: String,
    pub expires_at: Option<u64>,
}

pub fn verify(
    token: &str,
    jwks: &serde_json::Value,
    opts: &VerifyOptions,
) -> Result<Verified, String> {
    let meta = Token::decode_metadata(token).map_err(|e| format!("not a JWT: {e}"))?;
    if meta.algorithm() != "EdDSA" {
        return Err(format!("algorithm {} is not EdDSA", meta.algorithm()));
    }
    let kid = meta.key_id().ok_or("the token names no key (kid)")?.to_string();
    let jwk = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == kid.as_str()))
        .ok_or_else(|| format!("key {kid} is not in the JWKS"))?;
    if jwk["kty"] != "OKP" || jwk["crv"] != "Ed25519" {
        return Err(format!("key {kid} is not an Ed25519 key"));
    }
    let x = jwk["x"].as_str().ok_or("the JWK has no x")?;
    let raw = Base64UrlSafeNoPadding::decode_to_vec(x, None)
        .map_err(|_| "the JWK's x is not base64url")?;
    let key = Ed25519PublicKey::from_bytes(&raw).map_err(|e| format!("bad key: {e}"))?;
    let options = VerificationOptions {
        required_signature_type: Some("at+jwt".into()),
        allowed_issuers: opts.issuer.clone().map(|i| HashSet::from([i])),
        allowed_audiences: opts.audience.clone().map(|a| HashSet::from([a])),
        time_tolerance: Some(Duration::from_secs(0)),
        ..Default::default()
    };
    let claims = key
        .verify_token::<TesseraClaims>(token, Some(options))
        .map_err(|e| format!("invalid token: {e}"))?;
    let scopes: Vec<String> =
        claims.custom.scope.split(' ').filter(|s| !s.is_empty()).map(String::from).collect();
    let is_root = opts.root_satisfies && scopes.iter().any(|s| s == "root");
    if let Some(missing) = opts.required_scopes.iter().find(|r| !is_root && !scopes.contains(r)) {
        return Err(format!("the token lacks the required scope '{missing}'"));
    }
    Ok(Verified {
        sub: claims.subject,
        client_id: claims.custom.client_id,
        scopes,
        kid,
        expires_at: claims.expires_at.map(|t| t.as_secs()),
    })
}

/// Reads a JWKS from a URL or a file. The keys decide what verifies, so a URL follows the URL
/// rule (`https`, or `http` on a loopback host; no user name or password): a remote `http`
/// JWKS could be swapped by anyone on the path.
pub fn fetch_jwks(source: &str) -> Result<serde_json::Value, String> {
    let is_url = ::url::Url::parse(source).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
    let text = if is_url {
        let url = tessera_core::auth::url_rule::check(source)
            .map_err(|refusal| format!("cannot fetch {source}: {refusal}"))?;
        ureq::get(url.as_str())
            .call()
            .map_err(|e| format!("cannot fetch {source}: {e}"))?
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("cannot read {source}: {e}"))?
    } else {
        std::fs::read_to_string(source).map_err(|e| format!("cannot read {source}: {e}"))?
    };
    serde_json::from_str(&text).map_err(|e| format!("{source} is not JSON: {e}"))
}
