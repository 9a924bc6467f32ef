//! The S2S admin API (docs/api.md, Admin API): bearer checks, apps CRUD, secret rotation.

use serde_json::json;

use crate::support::TestServer;

#[test]
fn bearer_checks_answer_401_and_403_with_rfc_6750_headers() {
    let server = TestServer::start();
    for auth in [None, Some("Bearer garbage"), Some("Basic abc")] {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
        let res = server.get("/api/v1/apps", &headers);
        assert_eq!(res.status, 401);
        assert_eq!(res.header("www-authenticate"), Some("Bearer error=\"invalid_token\""));
    }
    let (_, id, secret) = server.create_app(json!({"name": "reader", "scopes": ["read_key"]}));
    let token = server.token(&id, &secret, None);
    let res = server.admin("GET", "/api/v1/apps", &token, None);
    assert_eq!(res.status, 403);
    assert_eq!(
        res.header("www-authenticate"),
        Some("Bearer error=\"insufficient_scope\", scope=\"read_app\"")
    );
    assert_eq!(res.json()["error"], "insufficient_scope");
    assert_eq!(server.admin("GET", "/api/v1/keys", &token, None).status, 200);
    // An expired token.
    server.clock.advance(3601);
    assert_eq!(server.admin("GET", "/api/v1/keys", &token, None).status, 401);
}

#[test]
fn info_needs_a_token_but_no_scope() {
    let server = TestServer::start();
    assert_eq!(server.get("/info", &[]).status, 401);
    let (_, id, secret) = server.create_app(json!({"name": "none"}));
    let res = server.admin("GET", "/info", &server.token(&id, &secret, None), None);
    assert_eq!(res.status, 200);
    let configs = &res.json()["configs"];
    assert_eq!(configs["issuer"], server.url.as_str());
    assert_eq!(configs["accessTokenTtlSecs"], 3600);
    assert!(configs["version"].is_string());
}

#[test]
fn apps_crud_with_melody_envelopes() {
    let server = TestServer::start();
    let root = server.root_token();
    let (app, _, _) = server.create_app(json!({
        "name": "billing", "description": "d", "scopes": ["read_app"], "metadata": {"team": "x"}
    }));
    let id = app["id"].as_str().unwrap();
    assert_eq!(app["type"], "s2s");
    assert_eq!(app["grantTypes"], json!(["client_credentials"]));
    assert_eq!(app["secret"].as_str().unwrap().len(), 43);

    let got = server.admin("GET", &format!("/api/v1/apps/{id}"), &root, None).json();
    assert_eq!(got["app"]["name"], "billing");
    assert!(got["app"].get("secret").is_none(), "the secret is shown once only");
    assert!(!got.to_string().contains("secretHash"));

    let list = server.admin("GET", "/api/v1/apps?pageSize=1&pageNumber=2", &root, None).json();
    assert_eq!(list["count"], 2, "root app and billing");
    assert_eq!(list["apps"].as_array().unwrap().len(), 1);
    assert_eq!(server.admin("GET", "/api/v1/apps?pageSize=abc", &root, None).status, 400);

    let res = server.admin(
        "PUT",
        &format!("/api/v1/apps/{id}"),
        &root,
        Some(json!({"name": "renamed", "scopes": []})),
    );
    assert_eq!(res.status, 200);
    assert_eq!(res.json()["app"]["name"], "renamed");
    assert_eq!(res.json()["app"]["scopes"], json!([]));
    assert_eq!(res.json()["app"]["description"], "d", "absent fields are kept");

    for bad in [
        json!({"name": ""}),
        json!({"scopes": ["a b"]}),
        json!({"grantTypes": ["password"]}),
        json!({"nope": 1}),
    ] {
        let res = server.admin("PUT", &format!("/api/v1/apps/{id}"), &root, Some(bad.clone()));
        assert_eq!(res.status, 400, "{bad}: {}", res.body);
        assert_eq!(res.json()["error"], "invalid_request");
    }

    assert_eq!(server.admin("DELETE", &format!("/api/v1/apps/{id}"), &root, None).status, 204);
    assert_eq!(server.admin("GET", &format!("/api/v1/apps/{id}"), &root, None).status, 404);
    assert_eq!(server.admin("DELETE", &format!("/api/v1/apps/{id}"), &root, None).status, 404);
}

#[test]
fn a_deleted_or_disabled_apps_tokens_are_refused_at_once() {
    let server = TestServer::start();
    let (app, id, secret) = server.create_app(json!({"name": "ops", "scopes": ["read_key"]}));
    let path = format!("/api/v1/apps/{}", app["id"].as_str().unwrap());
    let token = server.token(&id, &secret, None);
    assert_eq!(server.admin("GET", "/api/v1/keys", &token, None).status, 200);
    server.admin("PUT", &path, &server.root_token(), Some(json!({"isActive": false})));
    assert_eq!(server.admin("GET", "/api/v1/keys", &token, None).status, 401);
    server.admin("PUT", &path, &server.root_token(), Some(json!({"isActive": true})));
    assert_eq!(server.admin("GET", "/api/v1/keys", &token, None).status, 401, "not revived");
    server.clock.advance(1);
    let token = server.token(&id, &secret, None);
    assert_eq!(server.admin("GET", "/api/v1/keys", &token, None).status, 200);
    server.admin("DELETE", &path, &server.root_token(), None);
    assert_eq!(server.admin("GET", "/api/v1/keys", &token, None).status, 401);
}

#[test]
fn secret_rotation_follows_stytch() {
    let server = TestServer::start();
    let root = server.root_token();
    let (app, id, old) = server.create_app(json!({"name": "rot"}));
    let base = format!("/api/v1/apps/{}/secrets/rotate", app["id"].as_str().unwrap());

    assert_eq!(server.admin("POST", &base, &root, None).status, 409, "nothing to complete yet");
    let started = server.admin("POST", &format!("{base}/start"), &root, None);
    assert_eq!(started.status, 200);
    let new = started.json()["nextSecret"].as_str().unwrap().to_string();
    assert_eq!(server.token_response(&id, &old, None).status, 200, "both work during rotation");
    assert_eq!(server.token_response(&id, &new, None).status, 200);
    assert_eq!(server.admin("POST", &format!("{base}/start"), &root, None).status, 409);

    assert_eq!(server.admin("POST", &base, &root, None).status, 200);
    assert_eq!(server.token_response(&id, &old, None).status, 401, "the old one is gone");
    assert_eq!(server.token_response(&id, &new, None).status, 200);

    let again = server.admin("POST", &format!("{base}/start"), &root, None).json();
    let dropped = again["nextSecret"].as_str().unwrap().to_string();
    assert_eq!(server.admin("POST", &format!("{base}/cancel"), &root, None).status, 200);
    assert_eq!(server.token_response(&id, &dropped, None).status, 401, "cancel drops the new one");
    assert_eq!(server.token_response(&id, &new, None).status, 200);
}

#[test]
fn admin_bodies_are_bounded_and_must_be_json() {
    let server = TestServer::start();
    let root = server.root_token();
    let huge = json!({"name": "x", "description": "d".repeat(70 * 1024)});
    assert_eq!(server.admin("POST", "/api/v1/apps", &root, Some(huge)).status, 413);
    let auth = format!("Bearer {root}");
    let res = server.request(
        "POST",
        "/api/v1/apps",
        &[("authorization", &auth), ("content-type", "text/plain")],
        Some(b"{}"),
    );
    assert_eq!(res.status, 400);
    let res = server.request(
        "POST",
        "/api/v1/apps",
        &[("authorization", &auth), ("content-type", "application/json")],
        Some(b"{"),
    );
    assert_eq!(res.status, 400);
    assert_eq!(server.get("/no/such/path", &[]).status, 404);
    assert_eq!(server.request("POST", "/.well-known/jwks.json", &[], None).status, 405);
    assert_eq!(server.request("DELETE", "/api/v1/keys", &[], None).status, 405);
}

#[test]
fn health_and_readiness() {
    let server = TestServer::start();
    let res = server.get("/healthz", &[]);
    assert_eq!((res.status, res.body.as_str()), (200, "ok"));
    let res = server.get("/readyz", &[]);
    assert_eq!(res.status, 200);
    // The embedded store is always reachable.
    assert_eq!(res.json(), json!({"status": "ready", "store": "ok"}));
}

/// A node remembers the signature check of a bearer token it verified (`tokens/verified.rs`);
/// everything else about the token is still judged on every call.
#[test]
fn issue_14_a_bearer_token_verified_before_is_still_refused_once_revoked_expired_or_disabled() {
    use crate::support::{basic, form};
    let server = TestServer::start();
    let (app, id, secret) = server.create_app(json!({"name": "reader", "scopes": ["read_key"]}));
    let reads = |token: &str| server.admin("GET", "/api/v1/keys", token, None).status;

    let revoked = server.token(&id, &secret, None);
    assert_eq!((reads(&revoked), reads(&revoked)), (200, 200), "verified, then remembered");
    let body = format!("token={}", form(&revoked));
    assert_eq!(
        server.post_form("/oauth2/v1/revoke", Some(&basic(&id, &secret)), &body).status,
        200
    );
    assert_eq!(reads(&revoked), 401, "revoked after it was remembered");

    let expiring = server.token(&id, &secret, None);
    assert_eq!(reads(&expiring), 200);
    server.clock.advance(3601);
    assert_eq!(reads(&expiring), 401, "expired after it was remembered");

    let disabled = server.token(&id, &secret, None);
    assert_eq!(reads(&disabled), 200);
    let path = format!("/api/v1/apps/{}", app["id"].as_str().unwrap());
    let res = server.admin("PUT", &path, &server.root_token(), Some(json!({"isActive": false})));
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(reads(&disabled), 401, "its app disabled after it was remembered");

    // A token that differs by one byte is verified afresh, and fails.
    let root = server.root_token();
    assert_eq!(reads(&root), 200);
    let at = root.len() - 10;
    let swapped = if &root[at..=at] == "A" { "B" } else { "A" };
    let forged = format!("{}{swapped}{}", &root[..at], &root[at + 1..]);
    assert_eq!(reads(&forged), 401);
}
