//! The token endpoint (docs/api.md, Token endpoint) and the tokens it writes (Access tokens).

use base64::Engine;
use serde_json::json;

use crate::support::{ROOT_ID, ROOT_SECRET, TestServer, basic, claims, verify_independently};

#[test]
fn seed_000_request_as_written_with_lowercase_basic() {
    let server = TestServer::start();
    let (_, id, secret) =
        server.create_app(json!({"name": "s2s", "scopes": ["read_user", "write_user"]}));
    let creds = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    let res = server.post_form(
        "/oauth2/v1/token",
        Some(&format!("basic {creds}")),
        "grant_type=client_credentials&scope=read_user+write_user",
    );
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.header("cache-control"), Some("no-store"));
    assert_eq!(res.header("pragma"), Some("no-cache"));
    let body = res.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "read_user write_user");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().unwrap();
    let c = claims(token);
    assert_eq!(body["expires_on"], c["exp"]);
    assert_eq!(c["sub"], id.as_str());
    assert_eq!(c["client_id"], id.as_str());
    assert_eq!(c["iss"], server.url.as_str());
    assert_eq!(c["aud"], server.url.as_str());
    assert_eq!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(), 3600);
    assert_eq!(c["nbf"], c["iat"]);
    verify_independently(token, &server.jwks(), &server.url).expect("jwt-simple accepts our token");
}

#[test]
fn every_path_body_kind_and_auth_method_issues_tokens() {
    let server = TestServer::start();
    let (_, id, secret) = server.create_app(json!({"name": "a", "scopes": ["read_app"]}));
    for path in ["/oauth2/v1/token", "/oauth2/token", "/token", "/authorization/token"] {
        let res =
            server.post_form(path, Some(&basic(&id, &secret)), "grant_type=client_credentials");
        assert_eq!(res.status, 200, "{path}: {}", res.body);
        let body = format!("grant_type=client_credentials&client_id={id}&client_secret={secret}");
        assert_eq!(server.post_form(path, None, &body).status, 200, "{path} post");
        let json_body =
            json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret});
        let res = server.request(
            "POST",
            path,
            &[("content-type", "application/json")],
            Some(json_body.to_string().as_bytes()),
        );
        assert_eq!(res.status, 200, "{path} json: {}", res.body);
    }
}

#[test]
fn scopes_are_all_assigned_when_omitted_and_refused_by_name_when_not_held() {
    let server = TestServer::start();
    let (_, id, secret) =
        server.create_app(json!({"name": "a", "scopes": ["read_app", "read:settings"]}));
    assert_eq!(server.token_response(&id, &secret, None).json()["scope"], "read_app read:settings");
    assert_eq!(
        server.token_response(&id, &secret, Some("read:settings")).json()["scope"],
        "read:settings"
    );
    let res = server.token_response(&id, &secret, Some("read_app write_app"));
    assert_eq!(res.status, 400);
    assert_eq!(res.json()["error"], "invalid_scope");
    assert!(res.json()["error_description"].as_str().unwrap().contains("write_app"));
}

#[test]
fn unknown_client_and_wrong_secret_get_identical_answers() {
    let server = TestServer::start();
    let (_, id, _) = server.create_app(json!({"name": "a"}));
    let wrong = server.token_response(&id, "not-the-secret", None);
    let unknown = server.token_response("no-such-client", "not-the-secret", None);
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.answer(), unknown.answer());
    assert_eq!(wrong.header("www-authenticate"), Some("Basic realm=\"tessera\""));
    assert_eq!(unknown.header("www-authenticate"), wrong.header("www-authenticate"));
    // client_secret_post failures do not ask for Basic.
    let res = server.post_form(
        "/token",
        None,
        &format!("grant_type=client_credentials&client_id={id}&client_secret=x"),
    );
    assert_eq!(res.status, 401);
    assert_eq!(res.header("www-authenticate"), None);
}

#[test]
fn rfc_6749_errors_and_http_statuses() {
    let server = TestServer::start();
    let auth = basic(ROOT_ID, ROOT_SECRET);
    let cases: &[(&str, &str, u16, &str)] = &[
        ("application/x-www-form-urlencoded", "scope=root", 400, "invalid_request"),
        ("application/x-www-form-urlencoded", "grant_type=password", 400, "unsupported_grant_type"),
        ("application/x-www-form-urlencoded", "grant_type=a&grant_type=b", 400, "invalid_request"),
        ("application/json", "{not json", 400, "invalid_request"),
        ("application/json", "[]", 400, "invalid_request"),
        ("text/plain", "grant_type=client_credentials", 415, "invalid_request"),
    ];
    for (ct, body, status, error) in cases {
        let res = server.request(
            "POST",
            "/oauth2/v1/token",
            &[("content-type", ct), ("authorization", &auth)],
            Some(body.as_bytes()),
        );
        assert_eq!(res.status, *status, "{ct} {body}: {}", res.body);
        assert_eq!(res.json()["error"], *error, "{body}");
    }
    // Two authentication methods at once.
    let res = server.post_form(
        "/oauth2/v1/token",
        Some(&auth),
        &format!("grant_type=client_credentials&client_secret={ROOT_SECRET}"),
    );
    assert_eq!(res.json()["error"], "invalid_request");
    // No authentication at all.
    let res = server.post_form("/oauth2/v1/token", None, "grant_type=client_credentials");
    assert_eq!(res.status, 401);
    // Other methods.
    assert_eq!(server.get("/oauth2/v1/token", &[]).status, 405);
    // Over the body limit.
    let big = format!("grant_type=client_credentials&pad={}", "x".repeat(70 * 1024));
    assert_eq!(server.post_form("/oauth2/v1/token", Some(&auth), &big).status, 413);
    // Encoded bodies are not expanded.
    let res = server.request(
        "POST",
        "/oauth2/v1/token",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("content-encoding", "gzip"),
            ("authorization", &auth),
        ],
        Some(b"\x1f\x8b"),
    );
    assert_eq!(res.status, 415);
    // Non-ASCII bytes in headers and bodies are bad input, not a crash.
    let status = raw_status(
        &server.url,
        b"POST /token HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\nauthorization: Basic \xff\xfe\r\ncontent-length: 41\r\nconnection: close\r\n\r\ngrant_type=client_credentials&scope=%FF%FE",
    );
    assert_eq!(status, 401);
}

#[test]
fn disabled_apps_cannot_get_tokens() {
    let server = TestServer::start();
    let (app, id, secret) = server.create_app(json!({"name": "a"}));
    let path = format!("/api/v1/apps/{}", app["id"].as_str().unwrap());
    let res = server.admin("PUT", &path, &server.root_token(), Some(json!({"isActive": false})));
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(server.token_response(&id, &secret, None).status, 401);
}

#[test]
fn token_claims_and_lifetime_come_from_the_app_and_audience_from_the_request() {
    let server = TestServer::start();
    let api = json!({"identifier": "https://api.example.com", "name": "API"});
    let res = server.admin("POST", "/api/v1/resources", &server.root_token(), Some(api));
    assert_eq!(res.status, 201, "{}", res.body);
    let (_, id, secret) = server.create_app(json!({
        "name": "a", "tokenClaims": {"tenant": "t1", "tier": 2}, "accessTokenTtlSecs": 120,
        "resources": {"https://api.example.com": []},
    }));
    let res = server.post_form(
        "/token",
        Some(&basic(&id, &secret)),
        "grant_type=client_credentials&resource=https%3A%2F%2Fapi.example.com",
    );
    let body = res.json();
    assert_eq!(body["expires_in"], 120);
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["tenant"], "t1");
    assert_eq!(c["tier"], 2);
    assert_eq!(c["aud"], "https://api.example.com");
    // A token claim cannot shadow a registered claim.
    let res = server.admin(
        "POST",
        "/api/v1/apps",
        &server.root_token(),
        Some(json!({"name": "b", "tokenClaims": {"scope": "root"}})),
    );
    assert_eq!(res.status, 400);
}

#[test]
fn every_jti_is_unique() {
    let server = TestServer::start();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..50 {
        let token = server.root_token();
        assert!(seen.insert(claims(&token)["jti"].as_str().unwrap().to_string()));
    }
}

#[test]
fn repeated_failures_are_rate_limited_per_client_without_locking_out_others() {
    let server = TestServer::start_with(|c| {
        c.failures_per_client = 3;
        c.failures_per_address = 1000;
    });
    let (_, id, secret) = server.create_app(json!({"name": "a"}));
    for _ in 0..3 {
        assert_eq!(server.token_response(&id, "wrong", None).status, 401);
    }
    let res = server.token_response(&id, &secret, None);
    assert_eq!(res.status, 429);
    assert!(res.header("retry-after").unwrap().parse::<u64>().unwrap() > 0);
    // Another client is not affected.
    assert_eq!(server.token_response(ROOT_ID, ROOT_SECRET, None).status, 200);
    // The window passes.
    server.clock.advance(61);
    assert_eq!(server.token_response(&id, &secret, None).status, 200);
}

/// Sends raw bytes (which an HTTP client library would refuse to send) and reads the status.
fn raw_status(url: &str, request: &[u8]) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(url.trim_start_matches("http://")).unwrap();
    stream.write_all(request).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok();
    answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}
