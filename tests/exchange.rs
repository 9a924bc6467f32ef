//! Token exchange (RFC 8693): services calling services on a caller's behalf, with `act`
//! chains that never widen, and revocation that reaches down the chain.

use serde_json::{Value, json};

use crate::support::{Resp, TestServer, basic, claims, form};

const API_A: &str = "https://a.example/";
const API_B: &str = "https://b.example/";
const API_C: &str = "https://c.example/";
const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

fn admin_post(server: &TestServer, path: &str, body: Value) -> Value {
    let res = server.admin("POST", path, &server.root_token(), Some(body));
    assert_eq!(res.status, 201, "{}", res.body);
    res.json()
}

fn exchange(server: &TestServer, (id, secret): (&str, &str), subject: &str, extra: &str) -> Resp {
    let body = format!(
        "grant_type={}&subject_token={}&subject_token_type={}{extra}",
        form(EXCHANGE),
        form(subject),
        form(ACCESS)
    );
    server.post_form("/oauth2/v1/token", Some(&basic(id, secret)), &body)
}

fn introspect(server: &TestServer, (id, secret): (&str, &str), token: &str) -> Value {
    let body = format!("token={}", form(token));
    server.post_form("/oauth2/v1/introspect", Some(&basic(id, secret)), &body).json()
}

/// Scopes, three resources and four apps: a frontend calling A, which calls B, which calls C.
struct Chain {
    frontend: (String, String),
    a: (String, String),
    b: (String, String),
    c: (String, String),
}

fn chain(server: &TestServer) -> Chain {
    for name in ["orders:read", "orders:write"] {
        admin_post(server, "/api/v1/scopes", json!({"name": name}));
    }
    for api in [API_A, API_B, API_C] {
        admin_post(
            server,
            "/api/v1/resources",
            json!({"identifier": api, "name": api, "scopes": ["orders:read", "orders:write"]}),
        );
    }
    let app = |name: &str, grants: Value, can_exchange: bool| {
        let (_, id, secret) = server
            .create_app(json!({"name": name, "resources": grants, "canExchange": can_exchange}));
        (id, secret)
    };
    Chain {
        frontend: app("frontend", json!({API_A: ["orders:read", "orders:write"]}), false),
        a: app("service-a", json!({API_B: ["orders:read", "orders:write"]}), true),
        b: app("service-b", json!({API_C: ["orders:read"]}), true),
        c: app("service-c", json!({API_A: ["orders:read"]}), true),
    }
}

fn pair(p: &(String, String)) -> (&str, &str) {
    (p.0.as_str(), p.1.as_str())
}

#[test]
fn issue_13_a_chain_of_three_services_carries_act_and_never_widens() {
    let server = TestServer::start_with(|c| c.max_delegation_depth = 3);
    let ch = chain(&server);
    let resource = |api: &str| format!("&resource={}", form(api));
    let t1 = server.post_form(
        "/oauth2/v1/token",
        Some(&basic(&ch.frontend.0, &ch.frontend.1)),
        &format!("grant_type=client_credentials&scope=orders:read{}", resource(API_A)),
    );
    assert_eq!(t1.status, 200, "{}", t1.body);
    let t1 = t1.json()["access_token"].as_str().unwrap().to_string();

    // The frontend may not exchange; A may, for B.
    let res = exchange(&server, pair(&ch.frontend), &t1, &resource(API_A));
    assert_eq!(res.json()["error"], "unauthorized_client", "{}", res.body);
    let res = exchange(&server, pair(&ch.a), &t1, &resource(API_B));
    assert_eq!(res.status, 200, "{}", res.body);
    let answer = res.json();
    assert_eq!(answer["issued_token_type"], ACCESS);
    assert!(answer.get("refresh_token").is_none());
    let t2 = answer["access_token"].as_str().unwrap().to_string();
    let c2 = claims(&t2);
    let c1 = claims(&t1);
    assert_eq!(c2["sub"], c1["sub"], "the subject stays the frontend");
    assert_eq!(c2["client_id"], ch.a.0.as_str());
    assert_eq!(c2["aud"], API_B);
    assert_eq!(c2["act"], json!({"sub": ch.a.0}));
    // The frontend's token carried orders:read only: A holds orders:write for B, and still
    // cannot get it on the frontend's behalf.
    assert_eq!(c2["scope"], "orders:read");
    assert!(c2["exp"].as_u64() <= c1["exp"].as_u64());
    let res =
        exchange(&server, pair(&ch.a), &t1, &format!("{}&scope=orders:write", resource(API_B)));
    assert_eq!(res.json()["error"], "invalid_scope", "{}", res.body);
    // A has no grant for C: no exchange towards it, nor towards Tessera itself.
    let res = exchange(&server, pair(&ch.a), &t1, &resource(API_C));
    assert_eq!(res.json()["error"], "invalid_target", "{}", res.body);
    let res = exchange(&server, pair(&ch.a), &t1, "");
    assert_eq!(res.json()["error"], "invalid_target", "{}", res.body);

    // B: the chain grows, nested (RFC 8693 §4.1).
    let res = exchange(&server, pair(&ch.b), &t2, &resource(API_C));
    assert_eq!(res.status, 200, "{}", res.body);
    let t3 = res.json()["access_token"].as_str().unwrap().to_string();
    let c3 = claims(&t3);
    assert_eq!(c3["act"], json!({"sub": ch.b.0, "act": {"sub": ch.a.0}}));
    assert_eq!(c3["sub"], c1["sub"]);
    // C: a third actor is the configured limit; a fourth would be refused.
    let res = exchange(&server, pair(&ch.c), &t3, &resource(API_A));
    assert_eq!(res.status, 200, "{}", res.body);
    let t4 = res.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(claims(&t4)["act"]["act"]["act"]["sub"], ch.a.0.as_str());
    let res = exchange(&server, pair(&ch.a), &t4, &resource(API_B));
    assert_eq!(res.json()["error"], "invalid_grant", "{}", res.body);

    // Bad requests: wrong token types, a made-up token, a token that is not the caller's as
    // the actor.
    let res = server.post_form("/oauth2/v1/token", Some(&basic(&ch.a.0, &ch.a.1)), &format!("grant_type={}&subject_token={}&subject_token_type=urn:ietf:params:oauth:token-type:id_token{}", form(EXCHANGE), form(&t1), resource(API_B)));
    assert_eq!(res.json()["error"], "invalid_request", "{}", res.body);
    let res = exchange(&server, pair(&ch.a), "not.a.token", &resource(API_B));
    assert_eq!(res.json()["error"], "invalid_grant", "{}", res.body);
    let actor =
        format!("{}&actor_token={}&actor_token_type={}", resource(API_B), form(&t1), form(ACCESS));
    let res = exchange(&server, pair(&ch.a), &t1, &actor);
    assert_eq!(res.json()["error"], "invalid_grant", "{}", res.body);

    // Revocation mid-chain: A revokes t2; B can no longer exchange it.
    let res = server.post_form(
        "/oauth2/v1/revoke",
        Some(&basic(&ch.a.0, &ch.a.1)),
        &format!("token={}", form(&t2)),
    );
    assert_eq!(res.status, 200, "{}", res.body);
    let res = exchange(&server, pair(&ch.b), &t2, &resource(API_C));
    assert_eq!(res.json()["error"], "invalid_grant", "{}", res.body);
    // And where the chain began: the frontend revokes t1, and every token made from it dies.
    assert_eq!(introspect(&server, pair(&ch.c), &t3)["active"], true);
    let res = server.post_form(
        "/oauth2/v1/revoke",
        Some(&basic(&ch.frontend.0, &ch.frontend.1)),
        &format!("token={}", form(&t1)),
    );
    assert_eq!(res.status, 200, "{}", res.body);
    for token in [&t1, &t2, &t3, &t4] {
        assert_eq!(introspect(&server, pair(&ch.c), token)["active"], false);
    }
    let res = exchange(&server, pair(&ch.a), &t1, &resource(API_B));
    assert_eq!(res.json()["error"], "invalid_grant", "{}", res.body);

    // Counted under a grant label of its own.
    let metrics = server.get("/metrics", &[]).body;
    assert!(
        metrics
            .contains(r#"tessera_token_requests_total{grant="token_exchange",outcome="issued"} 3"#),
        "{metrics}"
    );
    // Metadata says so.
    let metadata = server.get("/.well-known/oauth-authorization-server", &[]).json();
    assert!(metadata["grant_types_supported"].as_array().unwrap().contains(&json!(EXCHANGE)));
}

#[test]
fn issue_13_an_expired_subject_token_is_refused_and_exp_never_outlives_it() {
    let server = TestServer::start();
    let ch = chain(&server);
    let t1 = server.post_form(
        "/oauth2/v1/token",
        Some(&basic(&ch.frontend.0, &ch.frontend.1)),
        &format!("grant_type=client_credentials&resource={}", form(API_A)),
    );
    let t1 = t1.json()["access_token"].as_str().unwrap().to_string();
    let exp = claims(&t1)["exp"].as_u64().unwrap();
    server.clock.advance(exp - server.issuer().now() - 10);
    let res = exchange(&server, pair(&ch.a), &t1, &format!("&resource={}", form(API_B)));
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json()["expires_in"], 10);
    assert_eq!(claims(res.json()["access_token"].as_str().unwrap())["exp"].as_u64(), Some(exp));
    server.clock.advance(10);
    let res = exchange(&server, pair(&ch.a), &t1, &format!("&resource={}", form(API_B)));
    assert_eq!(res.json()["error"], "invalid_grant", "{}", res.body);
}
