//! Services and API keys (API.md §5, seed 004): admin management and X-API-Key auth.

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
    assert_eq!((missing.status, missing.body.clone()), (wrong.status, wrong.body.clone()));
    assert_eq!((missing.status, missing.body.clone()), (junk.status, junk.body));

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
