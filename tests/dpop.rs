//! DPoP (RFC 9449): proofs at the token endpoint and the admin API, bound tokens and refresh
//! families, and every way a proof can be wrong.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signer as _;
use serde_json::{Value, json};
use sha2::Digest;

use crate::support::{Resp, TestServer, basic, claims, form, now};

/// A client's DPoP key.
pub enum Key {
    Ed25519(ed25519_dalek::SigningKey),
    P256(p256::ecdsa::SigningKey),
}

/// What a proof says, each field changeable to make a bad one.
pub struct Claims {
    pub htm: String,
    pub htu: String,
    pub iat: u64,
    pub jti: String,
    pub ath: Option<String>,
}

impl Key {
    pub fn ed25519(seed: u8) -> Key {
        Key::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[seed; 32]))
    }

    pub fn p256(seed: u8) -> Key {
        Key::P256(p256::ecdsa::SigningKey::from_slice(&[seed; 32]).expect("scalar"))
    }

    fn alg(&self) -> &'static str {
        match self {
            Key::Ed25519(_) => "EdDSA",
            Key::P256(_) => "ES256",
        }
    }

    pub fn jwk(&self) -> Value {
        match self {
            Key::Ed25519(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(k.verifying_key().to_bytes())})
            }
            Key::P256(k) => {
                let point = k.verifying_key().to_sec1_point(false);
                let bytes = point.as_bytes();
                json!({"kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(&bytes[1..33]), "y": URL_SAFE_NO_PAD.encode(&bytes[33..65])})
            }
        }
    }

    /// RFC 7638: the thumbprint a bound token's `cnf.jkt` names.
    pub fn jkt(&self) -> String {
        let jwk = self.jwk();
        let canonical = match self {
            Key::Ed25519(_) => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":{}}}"#, jwk["x"]),
            Key::P256(_) => {
                format!(r#"{{"crv":"P-256","kty":"EC","x":{},"y":{}}}"#, jwk["x"], jwk["y"])
            }
        };
        URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(canonical.as_bytes()))
    }

    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = match self {
            Key::Ed25519(k) => k.sign(input.as_bytes()).to_bytes().to_vec(),
            Key::P256(k) => {
                let s: p256::ecdsa::Signature = k.sign(input.as_bytes());
                s.to_bytes().to_vec()
            }
        };
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    pub fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": self.alg(), "jwk": self.jwk()})
    }

    pub fn proof_with(&self, c: &Claims) -> String {
        let mut body = json!({"htm": c.htm, "htu": c.htu, "iat": c.iat, "jti": c.jti});
        if let Some(ath) = &c.ath {
            body["ath"] = json!(ath);
        }
        self.sign(&self.header(), &body)
    }

    /// A good proof for `method url`, for `token` when given.
    pub fn proof(&self, method: &str, url: &str, token: Option<&str>) -> String {
        self.proof_with(&Claims {
            htm: method.into(),
            htu: url.into(),
            iat: now(),
            jti: fresh_jti(),
            ath: token.map(ath),
        })
    }
}

pub fn ath(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(token.as_bytes()))
}

fn fresh_jti() -> String {
    let mut bytes = [0u8; 16];
    rand::Rng::fill_bytes(&mut rand::rng(), &mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn token_with_proof(
    server: &TestServer,
    id: &str,
    secret: &str,
    proof: Option<&str>,
    body: &str,
) -> Resp {
    let auth = basic(id, secret);
    let mut headers = vec![
        ("content-type", "application/x-www-form-urlencoded"),
        ("authorization", auth.as_str()),
    ];
    if let Some(p) = proof {
        headers.push(("dpop", p));
    }
    server.request("POST", "/oauth2/v1/token", &headers, Some(body.as_bytes()))
}

fn call(server: &TestServer, scheme: &str, token: &str, proof: Option<&str>, path: &str) -> Resp {
    let auth = format!("{scheme} {token}");
    let mut headers = vec![("authorization", auth.as_str())];
    if let Some(p) = proof {
        headers.push(("dpop", p));
    }
    server.request("GET", path, &headers, None)
}

const CC: &str = "grant_type=client_credentials";

#[test]
fn issue_12_a_dpop_token_is_bound_to_its_key_and_useless_without_it() {
    let server = TestServer::start();
    let (_, id, secret) = server.create_app(json!({"name": "bound", "scopes": ["read_key"]}));
    let token_url = format!("{}/oauth2/v1/token", server.url);
    let keys_url = format!("{}/api/v1/keys", server.url);
    for key in [Key::ed25519(3), Key::p256(4)] {
        let res =
            token_with_proof(&server, &id, &secret, Some(&key.proof("POST", &token_url, None)), CC);
        assert_eq!(res.status, 200, "{}", res.body);
        let body = res.json();
        assert_eq!(body["token_type"], "DPoP");
        let token = body["access_token"].as_str().unwrap().to_string();
        assert_eq!(claims(&token)["cnf"], json!({"jkt": key.jkt()}));

        // With a proof by its key for this very request: in.
        let res = call(
            &server,
            "DPoP",
            &token,
            Some(&key.proof("GET", &keys_url, Some(&token))),
            "/api/v1/keys",
        );
        assert_eq!(res.status, 200, "{}", res.body);
        // Copied and sent as a bearer token: refused.
        let res = call(&server, "Bearer", &token, None, "/api/v1/keys");
        assert_eq!(res.status, 401);
        assert!(res.header("www-authenticate").unwrap().starts_with("Bearer"));
        // With no proof, or a proof by another key: refused under the DPoP scheme.
        let res = call(&server, "DPoP", &token, None, "/api/v1/keys");
        assert_eq!((res.status, res.json()["error"].as_str()), (401, Some("invalid_dpop_proof")));
        assert!(
            res.header("www-authenticate").unwrap().contains("DPoP error=\"invalid_dpop_proof\"")
        );
        assert!(res.header("www-authenticate").unwrap().contains("ES256"));
        let thief = Key::ed25519(99);
        let res = call(
            &server,
            "DPoP",
            &token,
            Some(&thief.proof("GET", &keys_url, Some(&token))),
            "/api/v1/keys",
        );
        assert_eq!((res.status, res.json()["error"].as_str()), (401, Some("invalid_dpop_proof")));

        // Introspection says what it is bound to.
        let res = server.post_form(
            "/oauth2/v1/introspect",
            Some(&basic(&id, &secret)),
            &format!("token={token}"),
        );
        let info = res.json();
        assert_eq!(
            (info["active"].clone(), info["token_type"].clone()),
            (json!(true), json!("DPoP"))
        );
        assert_eq!(info["cnf"]["jkt"], key.jkt());
    }
    // A bearer token under the DPoP scheme is not bound to anything: refused.
    let bearer = server.token(&id, &secret, None);
    let key = Key::ed25519(5);
    let res = call(
        &server,
        "DPoP",
        &bearer,
        Some(&key.proof("GET", &keys_url, Some(&bearer))),
        "/api/v1/keys",
    );
    assert_eq!((res.status, res.json()["error"].as_str()), (401, Some("invalid_token")));
    assert!(res.header("www-authenticate").unwrap().starts_with("DPoP error=\"invalid_token\""));

    // The metadata says which algorithms proofs may use.
    let meta = server.get("/.well-known/oauth-authorization-server", &[]).json();
    assert_eq!(meta["dpop_signing_alg_values_supported"], json!(["ES256", "EdDSA", "Ed25519"]));
}

#[test]
fn issue_12_bad_proofs_are_refused_each_for_its_reason_and_issue_nothing() {
    let server = TestServer::start();
    let (_, id, secret) = server.create_app(json!({"name": "a"}));
    let token_url = format!("{}/oauth2/v1/token", server.url);
    let key = Key::p256(7);
    let good = || Claims {
        htm: "POST".into(),
        htu: token_url.clone(),
        iat: now(),
        jti: fresh_jti(),
        ath: None,
    };
    let replayed = key.proof_with(&good());
    assert_eq!(token_with_proof(&server, &id, &secret, Some(&replayed), CC).status, 200);

    let mut with_private = key.header();
    with_private["jwk"]["d"] = json!(URL_SAFE_NO_PAD.encode([1u8; 32]));
    let body = |c: &Claims| json!({"htm": c.htm, "htu": c.htu, "iat": c.iat, "jti": c.jti});
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD
            .encode(json!({"typ": "dpop+jwt", "alg": "none", "jwk": key.jwk()}).to_string()),
        URL_SAFE_NO_PAD.encode(body(&good()).to_string())
    );
    let mut wrong_typ = key.header();
    wrong_typ["typ"] = json!("JWT");
    let mut ed_alg_on_ec = key.header();
    ed_alg_on_ec["alg"] = json!("EdDSA");
    let forged = {
        let p = key.proof_with(&good());
        let (head, _) = p.rsplit_once('.').unwrap();
        format!("{head}.{}", URL_SAFE_NO_PAD.encode([0u8; 64]))
    };
    let cases: Vec<(&str, String)> = vec![
        ("htu", key.proof_with(&Claims { htu: format!("{}/token", server.url), ..good() })),
        (
            "htu",
            key.proof_with(&Claims {
                htu: "https://elsewhere.example/oauth2/v1/token".into(),
                ..good()
            }),
        ),
        ("htm", key.proof_with(&Claims { htm: "GET".into(), ..good() })),
        ("iat", key.proof_with(&Claims { iat: now() - 120, ..good() })),
        ("iat", key.proof_with(&Claims { iat: now() + 120, ..good() })),
        ("jti", replayed),
        ("jwk", key.sign(&with_private, &body(&good()))),
        ("alg", none),
        ("typ", key.sign(&wrong_typ, &body(&good()))),
        ("jwk", key.sign(&ed_alg_on_ec, &body(&good()))),
        ("signature", forged),
        ("well-formed", "not.a.jwt".into()),
        ("well-formed", "x".repeat(5000)),
    ];
    for (says, proof) in cases {
        let res = token_with_proof(&server, &id, &secret, Some(&proof), CC);
        assert_eq!(
            (res.status, res.json()["error"].as_str()),
            (400, Some("invalid_dpop_proof")),
            "{says}: {}",
            res.body
        );
        assert!(
            res.json()["error_description"].as_str().unwrap().contains(says),
            "{says}: {}",
            res.body
        );
    }
    // Two DPoP headers: refused as well.
    let auth = basic(&id, &secret);
    let (a, b) = (key.proof_with(&good()), key.proof_with(&good()));
    let headers = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("authorization", auth.as_str()),
        ("dpop", a.as_str()),
        ("dpop", b.as_str()),
    ];
    let res = server.request("POST", "/oauth2/v1/token", &headers, Some(CC.as_bytes()));
    assert_eq!(res.json()["error"], "invalid_dpop_proof", "{}", res.body);

    // A proof for the admin API names the token it comes with.
    let bound = token_with_proof(&server, &id, &secret, Some(&key.proof_with(&good())), CC).json()
        ["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let info_url = format!("{}/info", server.url);
    let other = key.proof_with(&Claims {
        htm: "GET".into(),
        htu: info_url.clone(),
        ath: Some(ath("another token")),
        ..good()
    });
    let res = call(&server, "DPoP", &bound, Some(&other), "/info");
    assert_eq!(res.status, 401, "{}", res.body);
    assert!(res.json()["message"].as_str().unwrap().contains("ath"), "{}", res.body);
    let missing = key.proof_with(&Claims { htm: "GET".into(), htu: info_url.clone(), ..good() });
    assert_eq!(call(&server, "DPoP", &bound, Some(&missing), "/info").status, 401);
    let right = key.proof_with(&Claims {
        htm: "GET".into(),
        htu: info_url,
        ath: Some(ath(&bound)),
        ..good()
    });
    assert_eq!(call(&server, "DPoP", &bound, Some(&right), "/info").status, 200);
    assert_eq!(
        call(&server, "DPoP", &bound, Some(&right), "/info").status,
        401,
        "a proof works once"
    );
}

#[test]
fn issue_12_require_dpop_and_refresh_tokens_bound_to_the_proof_key() {
    let server = TestServer::start();
    let token_url = format!("{}/oauth2/v1/token", server.url);
    let (app, id, secret) = server.create_app(json!({
        "name": "strict", "requireDpop": true, "grantTypes": ["client_credentials", "refresh_token"]
    }));
    assert_eq!(app["requireDpop"], true);
    let res = token_with_proof(&server, &id, &secret, None, CC);
    assert_eq!((res.status, res.json()["error"].as_str()), (400, Some("invalid_dpop_proof")));

    let key = Key::ed25519(11);
    let first =
        token_with_proof(&server, &id, &secret, Some(&key.proof("POST", &token_url, None)), CC)
            .json();
    let refresh = first["refresh_token"].as_str().unwrap();
    let body = format!("grant_type=refresh_token&refresh_token={}", form(refresh));
    // The refresh token copied: without the key, or with another, it opens nothing, and it
    // stays unspent for its owner.
    let thief = Key::ed25519(12);
    for proof in [None, Some(thief.proof("POST", &token_url, None))] {
        let res = token_with_proof(&server, &id, &secret, proof.as_deref(), &body);
        assert_eq!(
            (res.status, res.json()["error"].as_str()),
            (400, Some("invalid_dpop_proof")),
            "{}",
            res.body
        );
    }
    let res =
        token_with_proof(&server, &id, &secret, Some(&key.proof("POST", &token_url, None)), &body);
    assert_eq!(res.status, 200, "{}", res.body);
    let next = res.json();
    assert_eq!(next["token_type"], "DPoP");
    assert_eq!(claims(next["access_token"].as_str().unwrap())["cnf"]["jkt"], key.jkt());

    // Turned off, the app may ask for bearer tokens again.
    let path = format!("/api/v1/apps/{}", app["id"].as_str().unwrap());
    assert_eq!(
        server
            .admin("PUT", &path, &server.root_token(), Some(json!({"requireDpop": false})))
            .status,
        200
    );
    let res = token_with_proof(&server, &id, &secret, None, CC);
    assert_eq!((res.status, res.json()["token_type"].as_str()), (200, Some("Bearer")));
}

#[test]
fn issue_12_user_credentials_name_no_resource_and_bind_like_an_app() {
    let server = TestServer::start_with(|c| c.allow_user_credentials = true);
    assert_eq!(server.register("ada").status, 201);
    let token_url = format!("{}/oauth2/v1/token", server.url);
    let (user, password) = ("ada", "correct horse");
    let res = token_with_proof(
        &server,
        user,
        password,
        None,
        &format!("{CC}&resource={}", form("https://api.example")),
    );
    assert_eq!(res.json()["error"], "invalid_target", "{}", res.body);
    let key = Key::p256(21);
    let res =
        token_with_proof(&server, user, password, Some(&key.proof("POST", &token_url, None)), CC);
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json()["token_type"], "DPoP");
    assert_eq!(claims(res.json()["access_token"].as_str().unwrap())["cnf"]["jkt"], key.jkt());
    let res = token_with_proof(&server, user, password, Some("not.a.proof"), CC);
    assert_eq!(res.json()["error"], "invalid_dpop_proof", "{}", res.body);
}
