//! Services and API keys (docs/api.md, Service API, AuthOS's service API): admin management and X-API-Key auth.

use serde_json::json;

use crate::support::{Resp, TestServer};

fn service_call(
    server: &TestServer,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<serde_json::Value>,
) -> Resp {
    let mut headers = Vec::new();
    if let Some(key) = key {
        headers.push(("x-api-key", key));
    }
    let bytes = body.map(|b| b.to_string().into_bytes());
    if bytes.is_some() {
        headers.push(("content-type", "application/json"));
    }
    server.request(method, path, &headers, bytes.as_deref())
}

fn admin_token(server: &TestServer) -> String {
    let (_, id, secret) =
        server.create_app(json!({"name": "ops", "scopes": ["read_service", "write_service"]}));
    server.token(&id, &secret, None)
}

#[test]
fn services_get_keys_shown_once_and_x_api_key_auth() {
    let server = TestServer::start();
    let op = admin_token(&server);
    let res = server.admin(
        "POST",
        "/api/v1/services",
        &op,
        Some(json!({"name": "acme", "callbackUris": ["https://app.acme.com/callback"]})),
    );
    assert_eq!(res.status, 201, "{}", res.body);
    let key = res.json()["apiKey"].as_str().unwrap().to_string();
    assert!(key.starts_with("sk_live_"));
    let service = res.json()["service"].clone();
    let path = format!("/api/v1/services/{}", service["id"].as_str().unwrap());
    let got = server.admin("GET", &path, &op, None);
    assert!(!got.body.contains(&key), "the key is shown once");
    assert_eq!(got.json()["service"]["apiKeys"].as_array().unwrap().len(), 1);

    let info = service_call(&server, "GET", "/api/service/info", Some(&key), None);
    assert_eq!(info.status, 200, "{}", info.body);
    assert_eq!(info.json()["service"]["callback_uris"], json!(["https://app.acme.com/callback"]));

    // Missing, wrong and malformed keys: one answer.
    let missing = service_call(&server, "GET", "/api/service/info", None, None);
    let wrong = service_call(
        &server,
        "GET",
        "/api/service/info",
        Some(&format!("{}x", &key[..key.len() - 1])),
        None,
    );
    let junk = service_call(&server, "GET", "/api/service/info", Some("sk_live_abc123"), None);
    assert_eq!(missing.status, 401);
    assert_eq!((missing.status, missing.answer()), (wrong.status, wrong.answer()));
    assert_eq!((missing.status, missing.answer()), (junk.status, junk.answer()));

    // A second key; revoking the first leaves the second working.
    let res = server.admin("POST", &format!("{path}/api-keys"), &op, None);
    assert_eq!(res.status, 201);
    let second = res.json()["apiKey"].as_str().unwrap().to_string();
    let first_id = service["apiKeys"][0]["keyId"].as_str().unwrap().to_string();
    assert_eq!(
        server.admin("DELETE", &format!("{path}/api-keys/{first_id}"), &op, None).status,
        204
    );
    assert_eq!(service_call(&server, "GET", "/api/service/info", Some(&key), None).status, 401);
    assert_eq!(service_call(&server, "GET", "/api/service/info", Some(&second), None).status, 200);

    // PATCH info, snake_case, validated.
    let res = service_call(
        &server,
        "PATCH",
        "/api/service/info",
        Some(&second),
        Some(json!({"name": "acme-2", "callback_uris": ["https://app.acme.com/cb2"]})),
    );
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json()["service"]["name"], "acme-2");
    let bad = service_call(
        &server,
        "PATCH",
        "/api/service/info",
        Some(&second),
        Some(json!({"callback_uris": ["http://evil.example/cb"]})),
    );
    assert_eq!(bad.status, 400);
    assert_eq!(
        service_call(
            &server,
            "PATCH",
            "/api/service/info",
            Some(&second),
            Some(json!({"nope": 1}))
        )
        .status,
        400
    );

    // Deleting the service revokes every key.
    assert_eq!(server.admin("DELETE", &path, &op, None).status, 204);
    assert_eq!(service_call(&server, "GET", "/api/service/info", Some(&second), None).status, 401);
    assert_eq!(server.admin("GET", &path, &op, None).status, 404);
}

#[test]
fn service_admin_needs_its_scopes_and_keys_are_not_stored_in_clear() {
    let server = TestServer::start();
    let (_, id, secret) = server.create_app(json!({"name": "weak", "scopes": ["read_app"]}));
    let weak = server.token(&id, &secret, None);
    assert_eq!(server.admin("GET", "/api/v1/services", &weak, None).status, 403);
    assert_eq!(
        server.admin("POST", "/api/v1/services", &weak, Some(json!({"name": "x"}))).status,
        403
    );
    let op = admin_token(&server);
    assert_eq!(
        server
            .admin(
                "POST",
                "/api/v1/services",
                &op,
                Some(json!({"name": "x", "callbackUris": ["ftp://x"]}))
            )
            .status,
        400
    );
    let res = server.admin("POST", "/api/v1/services", &op, Some(json!({"name": "kept"})));
    let key = res.json()["apiKey"].as_str().unwrap().to_string();
    let list = server.admin("GET", "/api/v1/services", &op, None).json();
    assert_eq!(list["count"], 1);
    let dir = server.stop();
    let file = std::fs::read(dir.path().join("tessera.redb")).unwrap();
    let secret_part = &key[key.len() - 43..];
    assert!(!file.windows(secret_part.len()).any(|w| w == secret_part.as_bytes()));
}

fn new_service(server: &TestServer, op: &str, name: &str) -> String {
    let res = server.admin(
        "POST",
        "/api/v1/services",
        op,
        Some(json!({"name": name, "callbackUris": ["https://app.acme.com/cb"]})),
    );
    assert_eq!(res.status, 201, "{}", res.body);
    res.json()["apiKey"].as_str().unwrap().to_string()
}

#[test]
fn each_service_sees_only_its_own_users_and_subscriptions() {
    let server = TestServer::start();
    let op = admin_token(&server);
    let (acme, other) = (new_service(&server, &op, "acme"), new_service(&server, &op, "other"));

    let res = service_call(
        &server,
        "POST",
        "/api/service/users",
        Some(&acme),
        Some(
            json!({"email": "ada@example.com", "username": "ada", "password": "correct horse", "first_name": "Ada"}),
        ),
    );
    assert_eq!(res.status, 201, "{}", res.body);
    let user_id = res.json()["user"]["user_id"].as_str().unwrap().to_string();
    assert_eq!(
        service_call(
            &server,
            "POST",
            "/api/service/users",
            Some(&other),
            Some(json!({"email": "ada@example.com"}))
        )
        .status,
        409
    );
    // With a password, the user can sign in.
    let login = server.request(
        "POST",
        "/consumer/login",
        &[("content-type", "application/json")],
        Some(json!({"username": "ada", "password": "correct horse"}).to_string().as_bytes()),
    );
    assert_eq!(login.status, 200, "{}", login.body);

    let path = format!("/api/service/users/{user_id}");
    assert_eq!(
        service_call(&server, "GET", &path, Some(&acme), None).json()["user"]["first_name"],
        "Ada"
    );
    assert_eq!(
        service_call(&server, "GET", &path, Some(&other), None).status,
        404,
        "another service's user"
    );
    assert_eq!(
        service_call(&server, "PATCH", &path, Some(&other), Some(json!({"is_active": false})))
            .status,
        404
    );
    assert_eq!(
        service_call(&server, "GET", "/api/service/users", Some(&other), None).json()["count"],
        0
    );
    let res =
        service_call(&server, "PATCH", &path, Some(&acme), Some(json!({"last_name": "Lovelace"})));
    assert_eq!(res.json()["user"]["last_name"], "Lovelace");

    // Subscriptions.
    let res = service_call(
        &server,
        "POST",
        "/api/service/subscriptions",
        Some(&acme),
        Some(json!({"user_id": user_id, "plan": "pro"})),
    );
    assert_eq!(res.status, 201, "{}", res.body);
    assert_eq!(res.json()["subscription"]["status"], "active");
    assert_eq!(
        service_call(
            &server,
            "POST",
            "/api/service/subscriptions",
            Some(&acme),
            Some(json!({"user_id": user_id, "plan": "pro"}))
        )
        .status,
        409
    );
    assert_eq!(
        service_call(
            &server,
            "POST",
            "/api/service/subscriptions",
            Some(&other),
            Some(json!({"user_id": user_id, "plan": "x"}))
        )
        .status,
        404
    );
    let sub_path = format!("/api/service/subscriptions/{user_id}");
    assert_eq!(service_call(&server, "GET", &sub_path, Some(&other), None).status, 404);
    let res =
        service_call(&server, "PATCH", &sub_path, Some(&acme), Some(json!({"status": "canceled"})));
    assert_eq!(res.json()["subscription"]["status"], "canceled");
    assert_eq!(
        service_call(&server, "PATCH", &sub_path, Some(&acme), Some(json!({"status": "bogus"})))
            .status,
        400
    );

    let figures = service_call(&server, "GET", "/api/service/analytics", Some(&acme), None).json()
        ["analytics"]
        .clone();
    for (field, value) in
        [("users", 1), ("active_users", 1), ("subscriptions", 1), ("active_subscriptions", 0)]
    {
        assert_eq!(figures[field], json!(value), "{field}");
    }
    // Ada signed in once (the login above); no provider tokens were asked for.
    assert_eq!(
        figures["tokens_issued_per_day"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>(),
        1
    );
    assert_eq!(figures["provider_token_requests"]["ok"], 0);
    assert_eq!(
        service_call(&server, "GET", "/api/service/analytics", Some(&other), None).json()["analytics"]
            ["users"],
        0
    );

    assert_eq!(service_call(&server, "DELETE", &sub_path, Some(&acme), None).status, 204);
    assert_eq!(service_call(&server, "DELETE", &path, Some(&acme), None).status, 204);
    assert_eq!(service_call(&server, "GET", &path, Some(&acme), None).status, 404);
    let login = server.request(
        "POST",
        "/consumer/login",
        &[("content-type", "application/json")],
        Some(json!({"username": "ada", "password": "correct horse"}).to_string().as_bytes()),
    );
    assert_eq!(login.status, 401, "a user only this service held is gone");
}

#[test]
fn providers_are_registered_once_by_name_and_their_secret_is_never_shown_or_stored_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let kek = tessera_storage::Kek::from_hex(&"ab".repeat(32)).unwrap();
    let config = tessera::config::Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    let server = TestServer::start_with_kek(dir, config, kek);
    let op = admin_token(&server);
    let body = json!({
        "name": "github", "authorizeUrl": "https://github.com/login/oauth/authorize",
        "tokenUrl": "https://github.com/login/oauth/access_token", "clientId": "gh-client",
        "clientSecret": "gh-secret-value-that-must-stay-hidden"
    });
    let res = server.admin("POST", "/api/v1/providers", &op, Some(body.clone()));
    assert_eq!(res.status, 201, "{}", res.body);
    assert!(!res.body.contains("gh-secret-value"));
    assert_eq!(server.admin("POST", "/api/v1/providers", &op, Some(body.clone())).status, 409);
    let mut bad = body.clone();
    bad["name"] = json!("other");
    bad["tokenUrl"] = json!("http://evil.example/token");
    assert_eq!(server.admin("POST", "/api/v1/providers", &op, Some(bad)).status, 400);
    let list = server.admin("GET", "/api/v1/providers", &op, None);
    assert_eq!(list.json()["count"], 1);
    assert!(!list.body.contains("gh-secret-value"));
    let dir = server.stop();
    let file = std::fs::read(dir.path().join("tessera.redb")).unwrap();
    let needle = b"gh-secret-value-that-must-stay-hidden";
    assert!(!file.windows(needle.len()).any(|w| w == needle), "sealed under the KEK");
}
