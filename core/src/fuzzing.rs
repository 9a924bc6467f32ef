//! Property checks shared by the fuzz targets (`fuzz/`) and the corpus replay test, so CI
//! exercises every saved input without a fuzzer. Each panics when its property fails.

use std::sync::OnceLock;

use tessera_storage::{KeyRecord, KeyState};

use crate::keys::keyset::KeySet;
use crate::oauth::request::{self, BodyKind};
use crate::tokens::jws;

/// Token request parsing: never panics, and every request it accepts survives a trip through
/// [`request::TokenRequest::to_form`] and back unchanged.
///
/// Input layout: byte 0 picks the body kind (even: form, odd: JSON); the bytes up to the first
/// NUL are the `Authorization` header (absent when empty or not UTF-8); the rest is the body.
pub fn token_request_round_trip(data: &[u8]) {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let kind = if kind % 2 == 0 { BodyKind::Form } else { BodyKind::Json };
    let (header, body) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&[][..], rest),
    };
    let header = std::str::from_utf8(header).ok().filter(|h| !h.is_empty());
    let Ok(parsed) = request::parse(kind, header, body) else {
        return;
    };
    let (authorization, form) = parsed.to_form();
    let again = request::parse(BodyKind::Form, authorization.as_deref(), form.as_bytes());
    assert_eq!(again.as_ref(), Ok(&parsed), "round trip changed the request: {form}");
}

/// The hosted flow's form and callback parsers: never panic; a state or CSRF token they accept
/// is one of our token alphabet (so it can go into a `Location` header or a cookie name); and
/// whatever they accept survives being written out and parsed again unchanged.
///
/// Input layout: byte 0 picks the parser (0: sign-in form, 1: sign-out form, else callback
/// query); the rest is the body or query.
pub fn connect_forms_round_trip(data: &[u8]) {
    use crate::oauth::connect_form::{self as form, is_state_token};
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let encode = |pairs: &[(&str, Option<&str>)]| {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            if let Some(v) = v {
                out.append_pair(k, v);
            }
        }
        out.finish()
    };
    match which {
        0 => {
            let Ok(f) = form::parse_sign_in(rest) else { return };
            assert!(is_state_token(&f.state) && is_state_token(&f.csrf));
            let pairs = [
                ("state", Some(f.state.as_str())),
                ("csrf", Some(f.csrf.as_str())),
                ("username", Some(f.username.as_str())),
                ("password", Some(f.password.as_str())),
            ];
            assert_eq!(form::parse_sign_in(encode(&pairs).as_bytes()).as_ref(), Ok(&f));
        }
        1 => {
            let Ok(f) = form::parse_sign_out(rest) else { return };
            assert!(is_state_token(&f.csrf) && f.state.as_deref().is_none_or(is_state_token));
            let pairs = [("csrf", Some(f.csrf.as_str())), ("state", f.state.as_deref())];
            assert_eq!(form::parse_sign_out(encode(&pairs).as_bytes()).as_ref(), Ok(&f));
        }
        _ => {
            let query = String::from_utf8_lossy(rest);
            let Ok(q) = form::parse_callback(&query) else { return };
            assert!(is_state_token(&q.state));
            let pairs = [
                ("state", Some(q.state.as_str())),
                ("code", q.code.as_deref()),
                ("error", q.error.as_deref()),
            ];
            assert_eq!(form::parse_callback(&encode(&pairs)).as_ref(), Ok(&q));
        }
    }
}

struct Fixture {
    keys: KeySet,
    signed: Vec<String>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let record = |n: u8, state| KeyRecord {
            kid: format!("fuzz-key-{n}"),
            state,
            secret: [n; 32],
            created_at: 0,
            published_at: 0,
            is_in_every_jwks: true,
            activated_at: None,
            retired_at: None,
            remove_after: None,
        };
        let records = [record(1, KeyState::Current), record(2, KeyState::Next), record(3, KeyState::Retiring)];
        let keys = KeySet::build(&records);
        // unwrap: the fixture has a current key
        let signer = keys.signer.as_ref().expect("current key");
        let signed = [
            r#"{"iss":"http://t","sub":"a","aud":"http://t","exp":9999999999,"iat":1,"nbf":1,"jti":"j1","client_id":"a","scope":"root"}"#,
            r#"{"iss":"http://t","sub":"b","aud":"x","exp":2,"iat":1,"nbf":1,"jti":"j2","client_id":"b","scope":""}"#,
        ]
        .iter()
        .map(|claims| jws::sign(signer, claims.as_bytes()))
        .collect();
        Fixture { keys, signed }
    })
}

/// The input as a candidate: byte 0 = 0 means the rest as is; otherwise the rest edits one of
/// `genuine` (pairs of position, byte), so the fuzzer explores near misses of what verifies.
fn near_miss(data: &[u8], genuine: &[String]) -> Option<String> {
    let (&mode, rest) = data.split_first()?;
    if mode == 0 {
        return Some(String::from_utf8_lossy(rest).into_owned());
    }
    let mut bytes = genuine[mode as usize % genuine.len()].clone().into_bytes();
    for pair in rest.chunks_exact(2) {
        let at = pair[0] as usize * 7 % bytes.len();
        bytes[at] = pair[1];
    }
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// The bearer verifier accepts only tokens our signer produced, byte for byte.
///
/// Input layout: byte 0 = 0 means the rest is a token as is; otherwise the rest edits one of
/// the genuine tokens (pairs of position, byte), so the fuzzer explores near misses.
pub fn verifier_accepts_only_our_tokens(data: &[u8]) {
    let fixture = fixture();
    let Some(candidate) = near_miss(data, &fixture.signed) else { return };
    if let Ok(payload) = jws::verify(&candidate, &fixture.keys) {
        assert!(
            fixture.signed.contains(&candidate),
            "accepted a token we never signed: {candidate}"
        );
        assert!(!payload.is_empty());
    }
}

/// Genuine DPoP proofs, one per supported key type, for the request [`PROOF_REQUEST`] names.
struct Proofs {
    /// (proof, the thumbprint of the key that signed it).
    signed: Vec<(String, String)>,
    /// Shared by every run, as a node's are, so that a key remembered from one input is
    /// trusted by the next only as far as it deserves.
    keys: crate::oauth::dpop::Keys,
}

/// The request every fixture proof was made for.
const PROOF_REQUEST: crate::oauth::dpop::Expected<'static> = crate::oauth::dpop::Expected {
    htm: "POST",
    htu: "https://tessera.example/oauth2/v1/token",
    now: 1_700_000_000,
    access_token: Some("an-access-token"),
};

fn proofs() -> &'static Proofs {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use sha2::Digest;
    static PROOFS: OnceLock<Proofs> = OnceLock::new();
    PROOFS.get_or_init(|| {
        let e = &PROOF_REQUEST;
        let ath = B64.encode(sha2::Sha256::digest(e.access_token.unwrap_or_default()));
        let claims = serde_json::json!({"htm": e.htm, "htu": e.htu, "iat": e.now, "jti": "j-1", "ath": ath});
        let input = |jwk: serde_json::Value, alg: &str| {
            let header = serde_json::json!({"typ": "dpop+jwt", "alg": alg, "jwk": jwk});
            let jkt = crate::oauth::dpop::thumbprint(&jwk_map(&header["jwk"])).unwrap_or_default();
            (format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string())), jkt)
        };
        let ed = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let ed_jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(ed.verifying_key().to_bytes())});
        let (ed_input, ed_jkt) = input(ed_jwk, "EdDSA");
        let ed_sig = ed25519_dalek::Signer::sign(&ed, ed_input.as_bytes()).to_bytes();
        // unwrap: a fixed scalar well inside the group order
        let ec = p256::ecdsa::SigningKey::from_slice(&[7; 32]).expect("scalar");
        let point = ec.verifying_key().to_sec1_point(false);
        let xy = &point.as_bytes()[1..];
        let ec_jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "x": B64.encode(&xy[..32]), "y": B64.encode(&xy[32..])});
        let (ec_input, ec_jkt) = input(ec_jwk, "ES256");
        let ec_sig: p256::ecdsa::Signature =
            p256::ecdsa::signature::Signer::sign(&ec, ec_input.as_bytes());
        Proofs {
            signed: vec![
                (format!("{ed_input}.{}", B64.encode(ed_sig)), ed_jkt),
                (format!("{ec_input}.{}", B64.encode(ec_sig.to_bytes())), ec_jkt),
            ],
            keys: crate::oauth::dpop::Keys::new(64),
        }
    })
}

fn jwk_map(v: &serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// The DPoP proof check accepts only proofs signed by the key in their own header, for the
/// request they name: never panics, and whatever it accepts is one of the genuine proofs,
/// byte for byte, with that key's thumbprint. (An ES256 proof has a second valid spelling,
/// (r, n−s); no edit of a few bytes reaches it.)
///
/// Input layout as for [`verifier_accepts_only_our_tokens`]: byte 0 = 0 means the rest is a
/// proof as is; otherwise the rest edits one of the genuine proofs (pairs of position, byte).
pub fn dpop_accepts_only_genuine_proofs(data: &[u8]) {
    let proofs = proofs();
    let genuine: Vec<String> = proofs.signed.iter().map(|(p, _)| p.clone()).collect();
    let Some(candidate) = near_miss(data, &genuine) else { return };
    if let Ok(proof) = crate::oauth::dpop::check(&candidate, &PROOF_REQUEST, &proofs.keys) {
        let genuine = proofs.signed.iter().find(|(p, _)| *p == candidate);
        let (_, jkt) =
            genuine.unwrap_or_else(|| panic!("accepted a proof nobody signed: {candidate}"));
        assert_eq!(&proof.jkt, jkt);
    }
}

/// Federated subject patterns: parsing never panics, a pattern it accepts has a literal
/// segment and `*` only as whole segments, and it matches exactly what the
/// character-by-character reference matches.
///
/// Input layout: the bytes up to the first NUL are the pattern, the rest the subject.
pub fn subject_patterns_match_one_segment(data: &[u8]) {
    use crate::federation::subject::{SubjectPattern, reference_matches};
    let (pattern, subject) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let (Ok(pattern), Ok(subject)) = (std::str::from_utf8(pattern), std::str::from_utf8(subject))
    else {
        return;
    };
    let Ok(parsed) = SubjectPattern::parse(pattern) else { return };
    let segments: Vec<&str> = pattern.split([':', '/']).collect();
    assert!(
        segments.iter().any(|s| !s.is_empty() && *s != "*"),
        "accepted a bare pattern: {pattern}"
    );
    assert!(segments.iter().all(|s| *s == "*" || !s.contains('*')), "half a segment: {pattern}");
    assert_eq!(
        parsed.matches(subject),
        reference_matches(pattern, subject),
        "{pattern} vs {subject}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genuine_tokens_verify_and_edited_ones_do_not() {
        let f = fixture();
        for token in &f.signed {
            assert!(jws::verify(token, &f.keys).is_ok());
        }
        verifier_accepts_only_our_tokens(&[1, 3, b'A', 200, b'x']);
        verifier_accepts_only_our_tokens(b"\0eyJ.eyJ.sig");
        token_request_round_trip(b"\0Basic YTpi\0grant_type=client_credentials&scope=a+b");
        connect_forms_round_trip(b"\0state=s&csrf=c&username=a%20b&password=%F0%9F%94%91");
        connect_forms_round_trip(b"\x01csrf=c&state=s");
        connect_forms_round_trip(b"\x02state=s&code=a%2Bb&error=&iss=x");
    }

    #[test]
    fn issue_12_genuine_proofs_pass_and_edited_ones_do_not() {
        for (proof, jkt) in &proofs().signed {
            let checked =
                crate::oauth::dpop::check(proof, &PROOF_REQUEST, &proofs().keys).expect("genuine");
            assert_eq!(&checked.jkt, jkt);
            let stale =
                crate::oauth::dpop::Expected { now: PROOF_REQUEST.now + 61, ..PROOF_REQUEST };
            assert!(crate::oauth::dpop::check(proof, &stale, &proofs().keys).is_err());
        }
        dpop_accepts_only_genuine_proofs(&[1, 3, b'A', 200, b'x']);
        dpop_accepts_only_genuine_proofs(&[2, 255, b'-']);
        dpop_accepts_only_genuine_proofs(b"\0eyJ.eyJ.sig");
    }

    #[test]
    fn issue_13_subject_patterns_hold_their_rule() {
        subject_patterns_match_one_segment(b"repo:acme/*\0repo:acme/web");
        subject_patterns_match_one_segment(b"repo:acme/*\0repo:acme/x/y");
        subject_patterns_match_one_segment(b"*:*\0a:b");
        subject_patterns_match_one_segment(
            b"system:serviceaccount:*:api\0system:serviceaccount::api",
        );
    }
}
