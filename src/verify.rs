//! Offline verification of a Tessera access token against a JWKS, as a resource server does
//! it (Stytch's `required_scopes`). Built on jwt-simple, an implementation independent of
//! our signer, so this also cross-checks what the server writes.

use std::collections::HashSet;

use jwt_simple::prelude::*;
use tessera_core::auth::certificate;
use tessera_core::auth::url_rule::UrlRefusal;
use tessera_core::oauth::dpop::{self, ProofError};
use tessera_core::tokens::claims::BoundTo;

#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    pub required_scopes: Vec<String>,
    /// Let `root` stand for any required scope (off by default: a resource server should ask
    /// for the scope it means).
    pub root_satisfies: bool,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// The DPoP proof the token came with, and the request it was made for.
    pub dpop: Option<DpopRequest>,
    /// The DER of the client certificate the token came with.
    pub client_cert: Option<Vec<u8>>,
}

/// A DPoP proof as a resource server receives it: for one method and URL.
#[derive(Debug, Clone, Default)]
pub struct DpopRequest {
    pub proof: String,
    pub htm: String,
    pub htu: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TesseraClaims {
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub cnf: Option<BoundTo>,
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

/// Why a token does not verify, or its JWKS could not be had. The message is the `reason`
/// `tessera token verify` prints.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot fetch {jwks}: {refusal}")]
    JwksUrl { jwks: String, refusal: UrlRefusal },
    #[error("cannot fetch {jwks}: {error}")]
    JwksUnreachable {
        jwks: String,
        #[source]
        error: ureq::Error,
    },
    #[error("cannot read {jwks}: {error}")]
    JwksUnreadable {
        jwks: String,
        #[source]
        error: ureq::Error,
    },
    #[error("cannot read {jwks}: {error}")]
    JwksFile {
        jwks: String,
        #[source]
        error: std::io::Error,
    },
    #[error("{jwks} is not JSON: {error}")]
    JwksNotJson {
        jwks: String,
        #[source]
        error: serde_json::Error,
    },
    #[error("not a JWT: {0}")]
    NotJwt(jwt_simple::Error),
    /// Our tokens are only ever EdDSA; accepting another algorithm is how JWT verifiers are
    /// tricked.
    #[error("algorithm {0} is not EdDSA")]
    Algorithm(String),
    #[error("the token names no key (kid)")]
    NoKid,
    #[error("key {0} is not in the JWKS")]
    UnknownKey(String),
    #[error("key {0} is not an Ed25519 key")]
    NotEd25519(String),
    #[error("the JWK has no x")]
    JwkNoX,
    #[error("the JWK's x is not base64url")]
    JwkXNotBase64,
    #[error("bad key: {0}")]
    BadKey(jwt_simple::Error),
    /// jwt-simple's refusal: the signature, expiry, type, issuer or audience.
    #[error("invalid token: {0}")]
    BadToken(jwt_simple::Error),
    #[error("the token lacks the required scope '{0}'")]
    MissingScope(String),
    #[error("the token is bound to a DPoP key: give its proof (--dpop-proof, --htm, --htu)")]
    ProofMissing,
    #[error("the DPoP proof does not hold: {}", .0.description())]
    BadProof(ProofError),
    #[error("a DPoP proof was given, but the token is not bound to a DPoP key")]
    NotDpopBound,
    #[error("the token is bound to a client certificate: give it (--client-cert)")]
    CertificateMissing,
    #[error("the token is bound to another client certificate")]
    WrongCertificate,
    #[error("cannot read the client certificate {path}: {reason}")]
    CertificateFile { path: String, reason: String },
}

pub fn verify(
    token: &str,
    jwks: &serde_json::Value,
    opts: &VerifyOptions,
) -> Result<Verified, VerifyError> {
    let meta = Token::decode_metadata(token).map_err(VerifyError::NotJwt)?;
    if meta.algorithm() != "EdDSA" {
        return Err(VerifyError::Algorithm(meta.algorithm().to_string()));
    }
    let kid = meta.key_id().ok_or(VerifyError::NoKid)?.to_string();
    let jwk = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == kid.as_str()))
        .ok_or_else(|| VerifyError::UnknownKey(kid.clone()))?;
    if jwk["kty"] != "OKP" || jwk["crv"] != "Ed25519" {
        return Err(VerifyError::NotEd25519(kid));
    }
    let x = jwk["x"].as_str().ok_or(VerifyError::JwkNoX)?;
    let raw =
        Base64UrlSafeNoPadding::decode_to_vec(x, None).map_err(|_| VerifyError::JwkXNotBase64)?;
    let key = Ed25519PublicKey::from_bytes(&raw).map_err(VerifyError::BadKey)?;
    let options = VerificationOptions {
        required_signature_type: Some("at+jwt".into()),
        allowed_issuers: opts.issuer.clone().map(|i| HashSet::from([i])),
        allowed_audiences: opts.audience.clone().map(|a| HashSet::from([a])),
        time_tolerance: Some(Duration::from_secs(0)),
        ..Default::default()
    };
    let claims =
        key.verify_token::<TesseraClaims>(token, Some(options)).map_err(VerifyError::BadToken)?;
    check_binding(token, claims.custom.cnf.as_ref(), opts)?;
    let scopes: Vec<String> =
        claims.custom.scope.split(' ').filter(|s| !s.is_empty()).map(String::from).collect();
    let is_root = opts.root_satisfies && scopes.iter().any(|s| s == "root");
    if let Some(missing) = opts.required_scopes.iter().find(|r| !is_root && !scopes.contains(r)) {
        return Err(VerifyError::MissingScope(missing.clone()));
    }
    Ok(Verified {
        sub: claims.subject,
        client_id: claims.custom.client_id,
        scopes,
        kid,
        expires_at: claims.expires_at.map(|t| t.as_secs()),
    })
}

/// A bound token holds only with what it is bound to: the proof by its DPoP key for the
/// request at hand (RFC 9449 §7), the certificate it was issued over (RFC 8705 §3). Offline,
/// a proof's `jti` cannot be checked for replay; the server's own API does that.
fn check_binding(
    token: &str,
    cnf: Option<&BoundTo>,
    opts: &VerifyOptions,
) -> Result<(), VerifyError> {
    let jkt = cnf.and_then(|c| c.jkt.as_deref());
    match (jkt, &opts.dpop) {
        (None, None) => {}
        (None, Some(_)) => return Err(VerifyError::NotDpopBound),
        (Some(_), None) => return Err(VerifyError::ProofMissing),
        (Some(bound), Some(request)) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let expected = dpop::Expected {
                htm: &request.htm,
                htu: &request.htu,
                now,
                access_token: Some(token),
            };
            let proof = dpop::check(&request.proof, &expected, &dpop::Keys::new(1))
                .map_err(VerifyError::BadProof)?;
            if proof.jkt != bound {
                return Err(VerifyError::BadProof(ProofError::WrongKey));
            }
        }
    }
    if let Some(x5t) = cnf.and_then(|c| c.x5t_s256.as_deref()) {
        let der = opts.client_cert.as_deref().ok_or(VerifyError::CertificateMissing)?;
        if certificate::thumbprint(der) != x5t {
            return Err(VerifyError::WrongCertificate);
        }
    }
    Ok(())
}

/// A client certificate from a PEM file, as DER.
pub fn read_certificate(path: &str) -> Result<Vec<u8>, VerifyError> {
    let fail = |reason: String| VerifyError::CertificateFile { path: path.to_string(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    crate::tls::from_header(text.as_bytes()).ok_or_else(|| fail("no PEM certificate in it".into()))
}

/// Reads a JWKS from a URL or a file. The keys decide what verifies, so a URL follows the URL
/// rule (`https`, or `http` on a loopback host; no user name or password): a remote `http`
/// JWKS could be swapped by anyone on the path.
pub fn fetch_jwks(source: &str) -> Result<serde_json::Value, VerifyError> {
    let jwks = || source.to_string();
    let is_url = ::url::Url::parse(source).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
    let text = if is_url {
        let url = tessera_core::auth::url_rule::check(source)
            .map_err(|refusal| VerifyError::JwksUrl { jwks: jwks(), refusal })?;
        ureq::get(url.as_str())
            .call()
            .map_err(|error| VerifyError::JwksUnreachable { jwks: jwks(), error })?
            .body_mut()
            .read_to_string()
            .map_err(|error| VerifyError::JwksUnreadable { jwks: jwks(), error })?
    } else {
        std::fs::read_to_string(source)
            .map_err(|error| VerifyError::JwksFile { jwks: jwks(), error })?
    };
    serde_json::from_str(&text).map_err(|error| VerifyError::JwksNotJson { jwks: jwks(), error })
}
