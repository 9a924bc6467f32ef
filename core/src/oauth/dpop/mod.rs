//! DPoP proofs (RFC 9449 §4): a JWT the client signs with a key of its own for each request,
//! so a token bound to that key is useless to whoever copies it. Checked here, without actix,
//! in the order of RFC 9449 §4.3; this is the code the fuzzer drives.

mod replay;

pub use replay::{ReplayWindow, Seen};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `alg` values a proof may use: what most DPoP clients sign with (ES256), and Ed25519
/// under both its names (`EdDSA`, and the fully-specified `Ed25519` newer clients send).
pub const ALGORITHMS: [&str; 3] = ["ES256", "EdDSA", "Ed25519"];
/// How far a proof's `iat` may be from the server's clock, either way (RFC 9449 §11.1).
pub const MAX_SKEW: u64 = 60;
/// Longer than any honest proof (a P-256 key, a long URL, a token hash).
pub const MAX_PROOF: usize = 4096;
const MAX_JTI: usize = 256;

/// What the request a proof came with looks like to the server.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The request's method.
    pub htm: &'a str,
    /// The request's URL as the client reached it, without query or fragment.
    pub htu: &'a str,
    pub now: u64,
    /// The access token the request carries, whose hash the proof must name (`ath`).
    pub access_token: Option<&'a str>,
}

/// A proof that passed every check but replay: its key's thumbprint and its `jti`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// RFC 7638 JWK SHA-256 thumbprint, base64url: a bound token's `cnf.jkt`.
    pub jkt: String,
    pub jti: String,
    pub iat: u64,
}

/// Why a proof was refused; each is answered as `invalid_dpop_proof` with its own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofError {
    Missing,
    /// More than one `DPoP` header (RFC 9449 §4.3 point 1).
    Repeated,
    Malformed,
    Type,
    Algorithm,
    /// The `jwk` is not a public key of the `alg`, or carries private members.
    Key,
    Signature,
    Method,
    Uri,
    Time,
    TokenHash,
    Replayed,
    /// The proof's key is not the key the token or grant is bound to.
    WrongKey,
    /// The node has remembered as many proofs as it may; nothing was checked against it.
    Full,
}

impl ProofError {
    pub fn description(self) -> &'static str {
        match self {
            ProofError::Missing => "a DPoP proof is required",
            ProofError::Repeated => "exactly one DPoP header is allowed",
            ProofError::Malformed => "the DPoP proof is not a well-formed JWT",
            ProofError::Type => "the DPoP proof's typ must be dpop+jwt",
            ProofError::Algorithm => "the DPoP proof's alg must be ES256, EdDSA or Ed25519",
            ProofError::Key => "the DPoP proof's jwk must be a public key for its alg",
            ProofError::Signature => "the DPoP proof's signature does not verify",
            ProofError::Method => "the DPoP proof's htm is not this request's method",
            ProofError::Uri => "the DPoP proof's htu is not this request's URL",
            ProofError::Time => "the DPoP proof's iat is not within 60 seconds of now",
            ProofError::TokenHash => "the DPoP proof's ath is not the hash of the access token",
            ProofError::Replayed => "the DPoP proof's jti was already used",
            ProofError::WrongKey => "the DPoP proof is not signed by the key the token is bound to",
            ProofError::Full => "too many DPoP proofs are being remembered; retry shortly",
        }
    }
}

#[derive(Deserialize)]
struct Header {
    typ: String,
    alg: String,
    jwk: serde_json::Map<String, Value>,
    /// RFC 7515 §4.1.11: a critical extension we do not know makes the JWS invalid.
    #[serde(default)]
    crit: Option<Value>,
}

#[derive(Deserialize)]
struct Claims {
    jti: String,
    htm: String,
    htu: String,
    iat: u64,
    #[serde(default)]
    ath: Option<String>,
}

/// Members only a private or symmetric JWK has (RFC 7518 §6).
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

/// Checks a proof against the request it came with: every rule of RFC 9449 §4.3 but the
/// `jti` replay check, which needs the node's memory ([`ReplayWindow`]).
pub fn check(proof: &str, expected: &Expected<'_>) -> Result<Proof, ProofError> {
    if proof.len() > MAX_PROOF {
        return Err(ProofError::Malformed);
    }
    let mut parts = proof.split('.');
    let (Some(h64), Some(c64), Some(s64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ProofError::Malformed);
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| ProofError::Malformed);
    let header: Header =
        serde_json::from_slice(&decode(h64)?).map_err(|_| ProofError::Malformed)?;
    if !header.typ.eq_ignore_ascii_case("dpop+jwt") {
        return Err(ProofError::Type);
    }
    if header.crit.is_some() {
        return Err(ProofError::Malformed);
    }
    let key = PublicKey::from_jwk(&header.alg, &header.jwk)?;
    let signature = decode(s64)?;
    let signed = &proof[..h64.len() + 1 + c64.len()];
    key.verify(signed.as_bytes(), &signature)?;
    let claims: Claims =
        serde_json::from_slice(&decode(c64)?).map_err(|_| ProofError::Malformed)?;
    if claims.jti.is_empty() || claims.jti.len() > MAX_JTI {
        return Err(ProofError::Malformed);
    }
    if claims.htm != expected.htm {
        return Err(ProofError::Method);
    }
    if !same_target(&claims.htu, expected.htu) {
        return Err(ProofError::Uri);
    }
    if claims.iat.abs_diff(expected.now) > MAX_SKEW {
        return Err(ProofError::Time);
    }
    if let Some(token) = expected.access_token {
        let hash = URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()));
        if claims.ath.as_deref() != Some(hash.as_str()) {
            return Err(ProofError::TokenHash);
        }
    }
    Ok(Proof { jkt: key.thumbprint(), jti: claims.jti, iat: claims.iat })
}

/// RFC 9449 §4.3 point 9: the URLs compared without query and fragment, after the
/// normalization of RFC 3986 §6 that the WHATWG parser applies (case of scheme and host,
/// default port, dot segments).
fn same_target(htu: &str, expected: &str) -> bool {
    let strip = |u: &str| {
        let mut url = url::Url::parse(u).ok()?;
        url.set_query(None);
        url.set_fragment(None);
        Some(url)
    };
    match (strip(htu), strip(expected)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// A proof's key, read from its `jwk` for its `alg`.
enum PublicKey {
    Ed25519([u8; 32]),
    P256 { x: [u8; 32], y: [u8; 32] },
}

impl PublicKey {
    fn from_jwk(alg: &str, jwk: &serde_json::Map<String, Value>) -> Result<PublicKey, ProofError> {
        if !ALGORITHMS.contains(&alg) {
            return Err(ProofError::Algorithm);
        }
        if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
            return Err(ProofError::Key);
        }
        let member = |name: &str| -> Result<[u8; 32], ProofError> {
            let text = jwk.get(name).and_then(Value::as_str).ok_or(ProofError::Key)?;
            let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| ProofError::Key)?;
            bytes.try_into().map_err(|_| ProofError::Key)
        };
        let is = |name: &str, value: &str| jwk.get(name).and_then(Value::as_str) == Some(value);
        match alg {
            "EdDSA" | "Ed25519" if is("kty", "OKP") && is("crv", "Ed25519") => {
                Ok(PublicKey::Ed25519(member("x")?))
            }
            "ES256" if is("kty", "EC") && is("crv", "P-256") => {
                Ok(PublicKey::P256 { x: member("x")?, y: member("y")? })
            }
            _ => Err(ProofError::Key),
        }
    }

    fn verify(&self, signed: &[u8], signature: &[u8]) -> Result<(), ProofError> {
        match self {
            PublicKey::Ed25519(x) => {
                let key =
                    ed25519_dalek::VerifyingKey::from_bytes(x).map_err(|_| ProofError::Key)?;
                let signature = ed25519_dalek::Signature::from_slice(signature)
                    .map_err(|_| ProofError::Signature)?;
                key.verify_strict(signed, &signature).map_err(|_| ProofError::Signature)
            }
            PublicKey::P256 { x, y } => {
                use p256::ecdsa::signature::Verifier;
                let mut point = [0u8; 65];
                point[0] = 0x04;
                point[1..33].copy_from_slice(x);
                point[33..].copy_from_slice(y);
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point)
                    .map_err(|_| ProofError::Key)?;
                // JWS ES256 is the 64-byte r‖s form (RFC 7518 §3.4), never DER. Both s and n−s
                // verify, and both are accepted: WebCrypto and RFC 6979 signers emit either, and
                // replay is judged by (key, jti), never by the signature's bytes.
                let signature = p256::ecdsa::Signature::from_slice(signature)
                    .map_err(|_| ProofError::Signature)?;
                key.verify(signed, &signature).map_err(|_| ProofError::Signature)
            }
        }
    }

    /// RFC 7638 §3: the required members, in lexicographic order, no whitespace; the key's
    /// own bytes re-encoded, so two spellings of one key have one thumbprint.
    fn thumbprint(&self) -> String {
        let json = match self {
            PublicKey::Ed25519(x) => {
                format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, URL_SAFE_NO_PAD.encode(x))
            }
            PublicKey::P256 { x, y } => format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                URL_SAFE_NO_PAD.encode(x),
                URL_SAFE_NO_PAD.encode(y)
            ),
        };
        URL_SAFE_NO_PAD.encode(Sha256::digest(json.as_bytes()))
    }
}

/// RFC 7638 thumbprint of an Ed25519 or P-256 public JWK, as a bound token's `cnf.jkt` names
/// it; `None` for any other key.
pub fn thumbprint(jwk: &serde_json::Map<String, Value>) -> Option<String> {
    let alg = match jwk.get("kty").and_then(Value::as_str) {
        Some("OKP") => "EdDSA",
        Some("EC") => "ES256",
        _ => return None,
    };
    PublicKey::from_jwk(alg, jwk).ok().map(|k| k.thumbprint())
}
