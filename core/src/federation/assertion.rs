//! A workload's identity token presented as a client assertion (RFC 7523 §2.2, with an
//! external `iss`): checked against a trusted issuer's keys and the federated identities of
//! the app it names. Every refusal is one answer to the client; the [`Refusal`] is for the log.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_simple::prelude::Token;
use serde_json::Value;

use super::jwks::{ALGORITHMS, KeySet};
use super::subject::SubjectPattern;

/// Clock skew allowed either way on `exp`, `nbf` and `iat` (RFC 7519 §4.1.4 leeway).
pub const SKEW: u64 = 60;
/// Longer than any workload token (Kubernetes and GitHub Actions tokens are ~1–2 KB).
pub const MAX_ASSERTION: usize = 16 * 1024;

/// What an issuer's record asks of its tokens.
#[derive(Debug, Clone)]
pub struct IssuerRules {
    pub issuer: String,
    pub algorithms: Vec<String>,
    pub max_token_age: Option<u64>,
}

/// One federated identity of an app, compiled.
#[derive(Debug, Clone)]
pub struct Identity {
    pub issuer: String,
    pub subject: SubjectPattern,
    /// The `aud` the token must carry; when absent, one of Tessera's own (its issuer or token
    /// endpoint URLs).
    pub audience: Option<String>,
    /// Claims the token must carry with exactly these values. A name starting with `/` is a
    /// JSON Pointer (RFC 6901) into the claims, for nested ones such as Kubernetes'
    /// `/kubernetes.io/namespace`; any other name is a top-level claim.
    pub claims: BTreeMap<String, String>,
}

/// A token that passed: which identity it matched, and what the replay record needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Federated {
    pub identity: usize,
    pub subject: String,
    pub jti: Option<String>,
    pub exp: u64,
}

/// Why a token was refused: for the debug log and the audit log, never for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Malformed,
    /// `alg` not one the issuer is trusted with, or a header that brings its own key.
    Header,
    /// No key of the issuer's set has the token's `kid` (after a refresh, if one was allowed).
    UnknownKey,
    /// Signature, `iss`, time or age, in words.
    Invalid(String),
    MissingExpiry,
    MissingIssuedAt,
    /// Valid, but no federated identity of the app accepts its `sub`, `aud` and claims.
    NoIdentity,
    /// Its `jti` was already used.
    Replayed,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Malformed => f.write_str("not a JWT"),
            Refusal::Header => {
                f.write_str("alg not allowed for the issuer, or a key in the header")
            }
            Refusal::UnknownKey => f.write_str("no key of the issuer has the token's kid"),
            Refusal::Invalid(why) => write!(f, "{why}"),
            Refusal::MissingExpiry => f.write_str("no exp"),
            Refusal::MissingIssuedAt => f.write_str("no iat, and the issuer limits token age"),
            Refusal::NoIdentity => {
                f.write_str("sub, aud or claims match no federated identity of the app")
            }
            Refusal::Replayed => f.write_str("its jti was already used"),
        }
    }
}

/// The header fields that choose the key: read before any key is trusted.
pub struct Header {
    pub alg: String,
    pub kid: Option<String>,
}

/// Reads and judges the header: an allowed `alg`, and no key, key URL or certificate of the
/// token's own choosing (RFC 8725 §3.1, §3.10).
pub fn header(assertion: &str, rules: &IssuerRules) -> Result<Header, Refusal> {
    if assertion.len() > MAX_ASSERTION {
        return Err(Refusal::Malformed);
    }
    let meta = Token::decode_metadata(assertion).map_err(|_| Refusal::Malformed)?;
    let alg = meta.algorithm();
    let allowed = ALGORITHMS.contains(&alg) && rules.algorithms.iter().any(|a| a == alg);
    if !allowed
        || meta.public_key().is_some()
        || meta.key_set_url().is_some()
        || meta.certificate_url().is_some()
        || meta.certificate_chain().is_some()
        || meta.critical().is_some()
    {
        return Err(Refusal::Header);
    }
    Ok(Header { alg: alg.to_string(), kid: meta.key_id().map(str::to_string) })
}

/// Checks a token whose header passed [`header`] against the issuer's keys and the app's
/// identities for this issuer; `audiences` are Tessera's own.
pub fn check(
    assertion: &str,
    head: &Header,
    rules: &IssuerRules,
    keys: &KeySet,
    identities: &[Identity],
    audiences: &[String],
    now: u64,
) -> Result<Federated, Refusal> {
    let (signed, signature) = assertion.rsplit_once('.').ok_or(Refusal::Malformed)?;
    let payload = signed.split_once('.').map(|(_, p)| p).ok_or(Refusal::Malformed)?;
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| Refusal::Malformed)?;
    let mut candidates = keys.candidates(head.kid.as_deref(), &head.alg).peekable();
    if candidates.peek().is_none() {
        return Err(Refusal::UnknownKey);
    }
    if !candidates.any(|k| k.key.verify(signed.as_bytes(), &signature)) {
        return Err(Refusal::Invalid("the signature does not verify".into()));
    }
    let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| Refusal::Malformed)?;
    let claims: Value = serde_json::from_slice(&payload).map_err(|_| Refusal::Malformed)?;
    if claims.get("iss").and_then(Value::as_str) != Some(rules.issuer.as_str()) {
        return Err(Refusal::Invalid("iss is not the issuer's".into()));
    }
    let time = |name: &str| claims.get(name).and_then(Value::as_f64).map(|t| t.max(0.0) as u64);
    let exp = time("exp").ok_or(Refusal::MissingExpiry)?;
    if now > exp.saturating_add(SKEW) {
        return Err(Refusal::Invalid("expired".into()));
    }
    if time("nbf").is_some_and(|nbf| nbf > now.saturating_add(SKEW)) {
        return Err(Refusal::Invalid("not valid yet (nbf)".into()));
    }
    let iat = time("iat");
    if iat.is_some_and(|iat| iat > now.saturating_add(SKEW)) {
        return Err(Refusal::Invalid("issued in the future (iat)".into()));
    }
    if let Some(max_age) = rules.max_token_age {
        let iat = iat.ok_or(Refusal::MissingIssuedAt)?;
        if now.saturating_sub(iat) > max_age.saturating_add(SKEW) {
            return Err(Refusal::Invalid("older than maxTokenAgeSecs".into()));
        }
    }
    let subject = claims.get("sub").and_then(Value::as_str).unwrap_or_default().to_string();
    let token_audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let identity = identities.iter().position(|id| {
        id.issuer == rules.issuer
            && id.subject.matches(&subject)
            && match &id.audience {
                Some(aud) => token_audiences.contains(&aud.as_str()),
                None => audiences.iter().any(|a| token_audiences.contains(&a.as_str())),
            }
            && id.claims.iter().all(|(name, want)| claim(&claims, name).as_deref() == Some(want))
    });
    let identity = identity.ok_or(Refusal::NoIdentity)?;
    let jti = claims.get("jti").and_then(Value::as_str).filter(|j| !j.is_empty());
    if jti.is_some_and(|j| j.len() > 256) {
        return Err(Refusal::Malformed);
    }
    Ok(Federated { identity, subject, jti: jti.map(str::to_string), exp })
}

/// A claim's value as text: strings as they are, numbers and booleans as JSON writes them.
/// Objects, arrays and null match nothing.
fn claim(claims: &Value, name: &str) -> Option<String> {
    let value = if name.starts_with('/') { claims.pointer(name) } else { claims.get(name) }?;
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(value.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::public_key::PublicKey;
    use crate::federation::jwks::{ExternalKey, KeySet};
    use crate::federation::subject::reference_matches;
    use jwt_simple::prelude::*;
    use proptest::prelude::*;

    const ISS: &str = "https://issuer.example";
    const SUBJECTS: [&str; 5] =
        ["repo:acme/web", "repo:acme/x/y", "repo:acme/web:ref:main", "ns:prod:api", "ns:dev:api"];
    const PATTERNS: [&str; 5] =
        ["repo:acme/*", "repo:acme/web", "repo:*/web:ref:main", "ns:*:api", "ns:prod:*"];
    const AUDIENCES: [&str; 3] = ["tessera", "https://tessera.example/oauth2/v1/token", "other"];
    const OURS: [&str; 1] = ["https://tessera.example/oauth2/v1/token"];

    fn key() -> &'static Ed25519KeyPair {
        static KEY: std::sync::OnceLock<Ed25519KeyPair> = std::sync::OnceLock::new();
        KEY.get_or_init(|| Ed25519KeyPair::generate().with_key_id("k"))
    }

    /// An identity, with its pattern's text for the reference.
    fn identity() -> impl Strategy<Value = (Identity, &'static str)> {
        (
            0..PATTERNS.len(),
            proptest::option::of(0..AUDIENCES.len()),
            proptest::option::of(0..2usize),
        )
            .prop_map(|(p, a, env)| {
                let identity = Identity {
                    issuer: ISS.to_string(),
                    subject: SubjectPattern::parse(PATTERNS[p]).expect("valid"),
                    audience: a.map(|a| AUDIENCES[a].to_string()),
                    claims: env
                        .map(|e| [("env".to_string(), ["prod", "dev"][e].to_string())].into())
                        .unwrap_or_default(),
                };
                (identity, PATTERNS[p])
            })
    }

    /// What an identity accepts, written out from the documented rule.
    fn reference(id: &Identity, pattern: &str, sub: &str, aud: &str, env: &str) -> bool {
        reference_matches(pattern, sub)
            && id.audience.as_deref().map_or(OURS.contains(&aud), |a| a == aud)
            && id.claims.get("env").is_none_or(|want| want == env)
    }

    proptest! {
        /// An accepted assertion always matched one identity of the app, and one that matches
        /// an identity is never refused.
        #[test]
        fn issue_13_an_accepted_assertion_matched_one_identity(
            picks in proptest::collection::vec(identity(), 0..4),
            sub in 0..SUBJECTS.len(), aud in 0..AUDIENCES.len(), env in 0..2usize,
        ) {
            let (identities, patterns): (Vec<Identity>, Vec<&str>) = picks.into_iter().unzip();
            let (sub, aud, env) = (SUBJECTS[sub], AUDIENCES[aud], ["prod", "dev"][env]);
            let now = 1_700_000_000;
            let mut claims = Claims::with_custom_claims(serde_json::json!({"env": env}), Duration::from_secs(300))
                .with_issuer(ISS).with_subject(sub).with_audience(aud);
            claims.issued_at = Some(UnixTimeStamp::from_secs(now));
            claims.invalid_before = Some(UnixTimeStamp::from_secs(now));
            claims.expires_at = Some(UnixTimeStamp::from_secs(now + 300));
            let token = key().sign(claims).expect("signs");
            let rules = IssuerRules { issuer: ISS.into(), algorithms: vec!["EdDSA".into()], max_token_age: Some(600) };
            let keys = KeySet { keys: vec![ExternalKey { kid: Some("k".into()), key: PublicKey::ed25519(&key().public_key().to_bytes().try_into().expect("32")).expect("key") }] };
            let head = header(&token, &rules).expect("header");
            let ours: Vec<String> = OURS.iter().map(|s| s.to_string()).collect();
            let result = check(&token, &head, &rules, &keys, &identities, &ours, now);
            let matching: Vec<usize> = (0..identities.len())
                .filter(|&i| reference(&identities[i], patterns[i], sub, aud, env))
                .collect();
            match result {
                Ok(found) => prop_assert!(matching.contains(&found.identity), "{found:?} not in {matching:?}"),
                Err(refusal) => {
                    prop_assert!(matching.is_empty(), "refused ({refusal}) though {matching:?} match");
                    prop_assert_eq!(refusal, Refusal::NoIdentity);
                }
            }
        }
    }
}
