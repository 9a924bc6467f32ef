//! Workload identity federation: apps authenticated by an external issuer's token, with no
//! secret, against a stand-in issuer on a loopback port that behaves like the real ones (OIDC
//! discovery, a JWK Set with RS256 and ES256 keys rotated mid-test, Kubernetes- and GitHub
//! Actions-shaped tokens).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jwt_simple::prelude::*;
use serde_json::{Value, json};

use crate::support::{Resp, TestServer, form};

/// An OIDC issuer: a discovery document and a JWK Set, whose fetches it counts.
struct StandInIssuer {
    url: String,
    jwks: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
}

fn stand_in_issuer() -> StandInIssuer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let jwks: Arc<Mutex<Value>> = Arc::new(Mutex::new(json!({"keys": []})));
    let fetches: Arc<AtomicUsize> = Arc::default();
    let (set, count, base) = (Arc::clone(&jwks), Arc::clone(&fetches), url.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).ok();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            let path = request_line.split(' ').nth(1).unwrap_or("").to_string();
            let body = match path.as_str() {
                "/.well-known/openid-configuration" => {
                    json!({"issuer": base, "jwks_uri": format!("{base}/jwks")}).to_string()
                }
                "/jwks" => {
                    count.fetch_add(1, Ordering::SeqCst);
                    set.lock().unwrap().to_string()
                }
                _ => String::new(),
            };
            let status = if body.is_empty() { "404 Not Found" } else { "200 OK" };
            let answer = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncache-control: public, max-age=300\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(answer.as_bytes()).ok();
        }
    });
    StandInIssuer { url, jwks, fetches }
}

fn rsa_jwk(key: &RS256KeyPair, kid: &str) -> Value {
    let c = key.public_key().to_components();
    json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": B64.encode(c.n), "e": B64.encode(c.e)})
}

fn ec_jwk(key: &ES256KeyPair, kid: &str) -> Value {
    let point = key.public_key().public_key().to_bytes_uncompressed();
    json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..])})
}

/// Claims as a workload's issuer writes them: `iat`/`nbf` at `at`, ten minutes of life.
fn workload_claims(iss: &str, sub: &str, aud: &str, at: u64, custom: Value) -> JWTClaims<Value> {
    let mut claims = Claims::with_custom_claims(custom, Duration::from_secs(600))
        .with_issuer(iss)
        .with_subject(sub)
        .with_audience(aud);
    claims.issued_at = Some(UnixTimeStamp::from_secs(at));
    claims.invalid_before = Some(UnixTimeStamp::from_secs(at));
    claims.expires_at = Some(UnixTimeStamp::from_secs(at + 600));
    claims
}

/// A Kubernetes projected service-account token's claims.
fn kubernetes(iss: &str, namespace: &str, name: &str, aud: &str, at: u64) -> JWTClaims<Value> {
    let custom = json!({"kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": "7d1b0a52"}, "pod": {"name": format!("{name}-5d8f"), "uid": "a1"}}});
    let sub = format!("system:serviceaccount:{namespace}:{name}");
    workload_claims(iss, &sub, aud, at, custom)
        .with_jwt_id(format!("k8s-{name}-{at}-{}", rand_suffix()))
}

/// A GitHub Actions OIDC token's claims.
fn github(iss: &str, repository: &str, git_ref: &str, aud: &str, at: u64) -> JWTClaims<Value> {
    let custom = json!({"repository": repository, "ref": git_ref, "repository_owner": repository.split('/').next(), "workflow": "deploy", "event_name": "push"});
    let sub = format!("repo:{repository}:ref:{git_ref}");
    workload_claims(iss, &sub, aud, at, custom).with_jwt_id(format!("gh-{}", rand_suffix()))
}

fn rand_suffix() -> String {
    let mut bytes = [0u8; 8];
    rand::Rng::fill_bytes(&mut rand::rng(), &mut bytes);
    B64.encode(bytes)
}

fn federated_token(server: &TestServer, client_id: &str, assertion: &str) -> Resp {
    let body = format!(
        "grant_type=client_credentials&client_id={}&client_assertion_type={}&client_assertion={}",
        form(client_id),
        form("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        form(assertion)
    );
    server.post_form("/oauth2/v1/token", None, &body)
}

fn register_issuer(server: &TestServer, body: Value) -> Resp {
    server.admin("POST", "/api/v1/issuers", &server.root_token(), Some(body))
}

#[test]
fn issue_13_kubernetes_and_github_workloads_get_tokens_with_no_secret() {
    let stand_in = stand_in_issuer();
    let rsa = RS256KeyPair::generate(2048).unwrap().with_key_id("rsa-1");
    let ec = ES256KeyPair::generate().with_key_id("ec-1");
    *stand_in.jwks.lock().unwrap() = json!({"keys": [rsa_jwk(&rsa, "rsa-1"), ec_jwk(&ec, "ec-1")]});
    let server = TestServer::start();
    let iss = stand_in.url.as_str();
    let aud = format!("{}/oauth2/v1/token", server.url);

    // Registration: discovery (no jwksUri), both algorithms, a one-hour age limit.
    let bad =
        register_issuer(&server, json!({"issuer": "ftp://x.example", "algorithms": ["RS256"]}));
    assert_eq!(bad.status, 400, "{}", bad.body);
    let bad = register_issuer(&server, json!({"issuer": iss, "algorithms": ["HS256"]}));
    assert_eq!(bad.status, 400, "{}", bad.body);
    let res = register_issuer(
        &server,
        json!({"issuer": iss, "algorithms": ["RS256", "ES256"], "maxTokenAgeSecs": 3600}),
    );
    assert_eq!(res.status, 201, "{}", res.body);
    assert_eq!(register_issuer(&server, json!({"issuer": iss})).status, 409);

    // Identities are checked on write: a registered issuer, no bare wildcard.
    let root = server.root_token();
    for identity in [
        json!({"issuer": "https://unknown.example", "subject": "system:serviceaccount:prod:billing"}),
        json!({"issuer": iss, "subject": "*"}),
        json!({"issuer": iss, "subject": "repo:acme/web-*"}),
        // A misspelt condition is refused, never dropped.
        json!({"issuer": iss, "subject": "system:serviceaccount:prod:billing", "claim": {"a": "b"}}),
    ] {
        let res = server.admin(
            "POST",
            "/api/v1/apps",
            &root,
            Some(json!({"name": "x", "federatedIdentities": [identity]})),
        );
        assert_eq!(res.status, 400, "{}", res.body);
    }
    let (billing, billing_id, _) = server.create_app(json!({
        "name": "billing", "scopes": ["read_app"],
        "federatedIdentities": [{"issuer": iss, "subject": "system:serviceaccount:prod:billing",
                                 "claims": {"/kubernetes.io/namespace": "prod"}}]
    }));
    assert_eq!(billing["federatedIdentities"][0]["subject"], "system:serviceaccount:prod:billing");
    let (_, deploy_id, _) = server.create_app(json!({
        "name": "deploy", "scopes": ["read_app"],
        "federatedIdentities": [{"issuer": iss, "subject": "repo:acme/*:ref:refs/heads/main", "audience": "tessera"}]
    }));

    // A Kubernetes token (RS256), exactly as the workload has it: a token, no secret.
    let now = server.issuer().now();
    let token = rsa.sign(kubernetes(iss, "prod", "billing", &aud, now)).unwrap();
    let res = federated_token(&server, &billing_id, &token);
    assert_eq!(res.status, 200, "{}", res.body);
    let issued = crate::support::claims(res.json()["access_token"].as_str().unwrap());
    assert_eq!(issued["client_id"], billing_id.as_str());
    assert_eq!(issued["sub"], billing_id.as_str());
    // Its jti is accepted once.
    let again = federated_token(&server, &billing_id, &token);
    assert_eq!(again.status, 401, "{}", again.body);

    // A GitHub Actions token (ES256) for any repository of acme on main, audience "tessera".
    let token = ec.sign(github(iss, "acme/web", "refs/heads/main", "tessera", now)).unwrap();
    let res = federated_token(&server, &deploy_id, &token);
    assert_eq!(res.status, 200, "{}", res.body);

    // Every refusal is the same 401 invalid_client bytes.
    let refused = |res: &Resp| {
        assert_eq!(res.status, 401, "{}", res.body);
        let mut answer = res.json();
        answer.as_object_mut().unwrap().remove("request_id");
        assert_eq!(
            answer,
            json!({"error": "invalid_client", "error_description": "client authentication failed"})
        );
    };
    let k8s = |ns: &str, name: &str, aud: &str, at: u64| {
        rsa.sign(kubernetes(iss, ns, name, aud, at)).unwrap()
    };
    // Another service account, namespace, audience; expired; too old; from the future.
    refused(&federated_token(&server, &billing_id, &k8s("prod", "mailer", &aud, now)));
    refused(&federated_token(&server, &billing_id, &k8s("staging", "billing", &aud, now)));
    refused(&federated_token(
        &server,
        &billing_id,
        &k8s("prod", "billing", "https://elsewhere.example", now),
    ));
    refused(&federated_token(&server, &billing_id, &k8s("prod", "billing", &aud, now - 700)));
    let mut old = kubernetes(iss, "prod", "billing", &aud, now - 4000);
    old.expires_at = Some(UnixTimeStamp::from_secs(now + 600));
    refused(&federated_token(&server, &billing_id, &rsa.sign(old).unwrap()));
    refused(&federated_token(&server, &billing_id, &k8s("prod", "billing", &aud, now + 300)));
    // The right token presented for another app.
    refused(&federated_token(&server, &deploy_id, &k8s("prod", "billing", &aud, now)));
    // A claim that differs: the namespace claim says staging though the subject says prod.
    let mut lying = kubernetes(iss, "prod", "billing", &aud, now);
    lying.custom["kubernetes.io"]["namespace"] = json!("staging");
    refused(&federated_token(&server, &billing_id, &rsa.sign(lying).unwrap()));
    // A pattern that must not match: one segment only.
    let nested = ec.sign(github(iss, "acme/x/y", "refs/heads/main", "tessera", now)).unwrap();
    refused(&federated_token(&server, &deploy_id, &nested));
    let branch = ec.sign(github(iss, "acme/web", "refs/heads/dev", "tessera", now)).unwrap();
    refused(&federated_token(&server, &deploy_id, &branch));
    // Another issuer's name on our key; a key of nobody's.
    let forged_iss = rsa
        .sign(workload_claims(
            "https://evil.example",
            "system:serviceaccount:prod:billing",
            &aud,
            now,
            json!({}),
        ))
        .unwrap();
    refused(&federated_token(&server, &billing_id, &forged_iss));
    let stranger = RS256KeyPair::generate(2048).unwrap().with_key_id("rsa-1");
    refused(&federated_token(
        &server,
        &billing_id,
        &stranger.sign(kubernetes(iss, "prod", "billing", &aud, now)).unwrap(),
    ));
    // alg none, and HS256 keyed with the public key's bytes.
    let genuine = rsa.sign(kubernetes(iss, "prod", "billing", &aud, now)).unwrap();
    let payload = genuine.split('.').nth(1).unwrap();
    let none = format!("{}.{payload}.", B64.encode(r#"{"alg":"none","typ":"JWT"}"#));
    refused(&federated_token(&server, &billing_id, &none));
    let hmac = HS256Key::from_bytes(&rsa.public_key().to_der().unwrap()).with_key_id("rsa-1");
    let confused = hmac.authenticate(kubernetes(iss, "prod", "billing", &aud, now)).unwrap();
    refused(&federated_token(&server, &billing_id, &confused));
    // A header that brings its own key.
    let header = json!({"alg": "RS256", "kid": "rsa-1", "jwk": rsa_jwk(&stranger, "x")});
    let (_, rest) = genuine.split_once('.').unwrap();
    refused(&federated_token(
        &server,
        &billing_id,
        &format!("{}.{rest}", B64.encode(header.to_string())),
    ));
    // The genuine token still passes after all that.
    assert_eq!(federated_token(&server, &billing_id, &genuine).status, 200);

    // Rotation: the issuer publishes a new key; a token with its kid makes Tessera fetch the
    // set again, once, and passes (30 s after the last fetch: never more often).
    server.clock.advance(31);
    let fetched = stand_in.fetches.load(Ordering::SeqCst);
    let rotated = RS256KeyPair::generate(2048).unwrap().with_key_id("rsa-2");
    *stand_in.jwks.lock().unwrap() =
        json!({"keys": [rsa_jwk(&rotated, "rsa-2"), ec_jwk(&ec, "ec-1")]});
    let res = federated_token(
        &server,
        &billing_id,
        &rotated.sign(kubernetes(iss, "prod", "billing", &aud, now)).unwrap(),
    );
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(stand_in.fetches.load(Ordering::SeqCst), fetched + 1);
    // The old key is gone from the set: its tokens are refused now.
    refused(&federated_token(&server, &billing_id, &k8s("prod", "billing", &aud, now)));
    // An unknown kid right after a fetch: refused, and no second fetch within 30 s.
    let unknown = RS256KeyPair::generate(2048).unwrap().with_key_id("rsa-3");
    let token = unknown.sign(kubernetes(iss, "prod", "billing", &aud, now)).unwrap();
    refused(&federated_token(&server, &billing_id, &token));
    assert_eq!(stand_in.fetches.load(Ordering::SeqCst), fetched + 1);

    // Past the set's max-age (300 s here), the node's timer fetches it again on its own.
    server.clock.advance(301);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while stand_in.fetches.load(Ordering::SeqCst) == fetched + 1 {
        assert!(std::time::Instant::now() < deadline, "no refetch after max-age");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // The issuer cannot go while an app names it; the reasons are in the audit log.
    let issuers = server.admin("GET", "/api/v1/issuers", &root, None).json();
    let id = issuers["issuers"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(issuers["issuers"][0]["keys"], json!(["rsa-2", "ec-1"]));
    let res = server.admin("DELETE", &format!("/api/v1/issuers/{id}"), &root, None);
    assert_eq!(res.status, 409, "{}", res.body);
    let audit = server.admin("GET", "/api/v1/audit?pageSize=1000", &root, None);
    assert!(audit.body.contains("match no federated identity"), "{}", audit.body);
}

#[test]
fn issue_13_a_static_jwks_serves_an_issuer_nobody_can_reach() {
    let server = TestServer::start();
    let ed = Ed25519KeyPair::generate().with_key_id("spire-1");
    let iss = "https://spire.example.org";
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "kid": "spire-1", "x": B64.encode(ed.public_key().to_bytes())});
    let res = register_issuer(
        &server,
        json!({"issuer": iss, "jwksUri": "https://spire.example.org/keys", "jwks": {"keys": [jwk]}, "algorithms": ["EdDSA"]}),
    );
    assert_eq!(res.status, 400, "{}", res.body);
    let res = register_issuer(
        &server,
        json!({"issuer": iss, "jwks": {"keys": [{"kty": "oct", "k": "AA"}]}, "algorithms": ["EdDSA"]}),
    );
    assert_eq!(res.status, 400, "{}", res.body);
    let res = register_issuer(
        &server,
        json!({"issuer": iss, "jwks": {"keys": [jwk]}, "algorithms": ["EdDSA"]}),
    );
    assert_eq!(res.status, 201, "{}", res.body);
    let (_, id, _) = server.create_app(json!({
        "name": "spiffe", "scopes": ["read_app"],
        "federatedIdentities": [{"issuer": iss, "subject": "spiffe://example.org/ns/*/sa/api", "audience": "tessera"}]
    }));
    let now = server.issuer().now();
    // A JWT-SVID: no jti, no iat limit configured.
    let svid =
        workload_claims(iss, "spiffe://example.org/ns/prod/sa/api", "tessera", now, json!({}));
    let res = federated_token(&server, &id, &ed.sign(svid.clone()).unwrap());
    assert_eq!(res.status, 200, "{}", res.body);
    // No jti: nothing to replay-check, so the same SVID passes again until it expires.
    assert_eq!(federated_token(&server, &id, &ed.sign(svid).unwrap()).status, 200);
    let other =
        workload_claims(iss, "spiffe://example.org/ns/prod/sa/web", "tessera", now, json!({}));
    assert_eq!(federated_token(&server, &id, &ed.sign(other).unwrap()).status, 401);
}
