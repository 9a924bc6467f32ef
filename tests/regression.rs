//! Regression tests, named after the issue that found them.

use serde_json::json;

use crate::support::{ROOT_ID, ROOT_SECRET, TestServer, basic};

/// Issue 2 review: narrowing `max_access_token_ttl` across a restart must not shorten how long
/// a retiring key stays published (tokens signed under the old cap are still live).
#[test]
fn issue_2_rotation_rules_never_narrow_across_restarts() {
    let server = TestServer::start_with(|c| c.max_access_token_ttl = 86_400);
    let dir = server.stop();
    let config = tessera::config::Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        max_access_token_ttl: 7200,
        ..Default::default()
    };
    let server = TestServer::start_in(dir, config, crate::support::now());
    let root = server.root_token();
    let keys = server.admin("POST", "/api/v1/keys/rotate", &root, None).json();
    let retiring =
        keys["keys"].as_array().unwrap().iter().find(|k| k["state"] == "retiring").unwrap().clone();
    let parse = |v: &serde_json::Value| {
        time::OffsetDateTime::parse(
            v.as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    let kept = parse(&retiring["removeAfter"]) - parse(&retiring["retiredAt"]);
    assert_eq!(kept.whole_seconds(), 86_400);
}

/// Issue 2 review: a scope of only separators is "no scope asked for", never an empty-scope
/// token.
#[test]
fn issue_2_blank_scope_is_treated_as_omitted() {
    let server = TestServer::start();
    let res = server.post_form(
        "/token",
        Some(&basic(ROOT_ID, ROOT_SECRET)),
        "grant_type=client_credentials&scope=+++",
    );
    assert_eq!(res.status, 200);
    assert_eq!(res.json()["scope"], json!("root"));
}

/// Issue 2 review: a weak validator in If-None-Match still gets 304 (RFC 9110 §13.1.2).
#[test]
fn issue_2_weak_etag_matches() {
    let server = TestServer::start();
    let etag = server.get("/.well-known/jwks.json", &[]).header("etag").unwrap().to_string();
    let weak = format!("W/{etag}");
    assert_eq!(server.get("/.well-known/jwks.json", &[("if-none-match", &weak)]).status, 304);
}

/// Issue 4 review: the root app may not take the client id of user tokens, or every user
/// token would speak for the root app at the admin API.
#[test]
fn issue_4_root_client_id_cannot_be_the_consumer_id() {
    let dir = tempfile::tempdir().unwrap();
    let config = tessera::config::Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    let root = tessera_core::registry::RootCredentials {
        client_id: tessera_core::tables::client::CONSUMER_CLIENT_ID.into(),
        client_secret: ROOT_SECRET.into(),
    };
    let clock = tessera_core::clock::ManualClock::new(crate::support::now());
    let started = actix_web::rt::System::new()
        .block_on(async { tessera::start(config, Some(root), None, clock).await.map(|_| ()) });
    assert!(started.is_err_and(|e| e.to_string().contains("tessera-consumer")));
}

/// Issue 8: callback URIs are judged as the URL parser reads them. Credentials before the host
/// are refused with a message that says so, `http` is allowed on any host the parser reads as
/// loopback (and only there), and a `#` that hides the real host is a fragment.
#[test]
fn issue_8_callback_uris_are_judged_by_the_parsed_url() {
    let server = TestServer::start();
    let root = server.root_token();
    let create = |uri: &str| {
        server.admin(
            "POST",
            "/api/v1/services",
            &root,
            Some(json!({"name": "acme", "callbackUris": [uri]})),
        )
    };
    let userinfo = "must not contain a user name or password";
    let not_https = "is not an absolute https URL without a fragment";
    for (uri, why) in [
        ("https://user@app.acme.com/cb", userinfo),
        ("https://user:pass@app.acme.com/cb", userinfo),
        ("http://localhost:80@evil.example/cb", userinfo),
        ("http://127.0.0.1:3000@evil.example/cb", userinfo),
        ("https://evil.example#@app.acme.com/cb", not_https),
        ("http://localhost.evil.example/cb", not_https),
        ("http://127.0.0.1.evil.example/cb", not_https),
        ("ftp://app.acme.com/cb", not_https),
    ] {
        let res = create(uri);
        assert_eq!(res.status, 400, "{uri}: {}", res.body);
        assert_eq!(res.json()["message"], format!("'{uri}' {why}"), "{uri}");
    }
    for uri in
        ["http://127.0.0.2:3000/cb", "http://[0:0:0:0:0:0:0:1]/cb", "HTTPS://App.Acme.com/cb"]
    {
        let res = create(uri);
        assert_eq!(res.status, 201, "{uri}: {}", res.body);
        // Kept as sent: a provider-token request names it exactly.
        assert_eq!(res.json()["service"]["callbackUris"], json!([uri]));
    }
    // The service API's own change of its callbacks takes the same rule.
    let key = create("https://app.acme.com/cb").json()["apiKey"].as_str().unwrap().to_string();
    let res = server.request(
        "PATCH",
        "/api/service/info",
        &[("x-api-key", &key), ("content-type", "application/json")],
        Some(json!({"callback_uris": ["https://user@app.acme.com/cb"]}).to_string().as_bytes()),
    );
    assert_eq!(res.status, 400, "{}", res.body);
    assert!(res.json()["message"].as_str().unwrap().contains("user name or password"));
}

/// Issue 8: provider endpoints follow the same rule, and what is kept is what the parser read.
#[test]
fn issue_8_provider_urls_are_judged_by_the_parsed_url() {
    let server = TestServer::start();
    let root = server.root_token();
    let create = |authorize: &str, token: &str| {
        server.admin(
            "POST",
            "/api/v1/providers",
            &root,
            Some(json!({
                "name": "github", "authorizeUrl": authorize, "tokenUrl": token,
                "clientId": "gh-client", "clientSecret": "gh-secret"
            })),
        )
    };
    let good = "https://github.example/login/oauth/authorize";
    let res = create("https://user:pass@github.example/authorize", "https://github.example/token");
    assert_eq!(res.status, 400, "{}", res.body);
    assert_eq!(res.json()["message"], "authorizeUrl must not contain a user name or password");
    let res = create(good, "http://localhost:1@evil.example/token");
    assert_eq!(res.status, 400, "{}", res.body);
    assert_eq!(res.json()["message"], "tokenUrl must not contain a user name or password");
    let res = create(good, "https://evil.example#@github.example/token");
    assert_eq!(res.json()["message"], "tokenUrl must be an absolute https URL without a fragment");
    let res = create(good, "http://127.0.0.1.evil.example/token");
    assert_eq!(res.json()["message"], "tokenUrl must be an absolute https URL without a fragment");
    let res = create("HTTPS://GitHub.Example/login/oauth/authorize", "http://127.0.0.2:9/token");
    assert_eq!(res.status, 201, "{}", res.body);
    assert_eq!(res.json()["provider"]["authorizeUrl"], good);
    assert_eq!(res.json()["provider"]["tokenUrl"], "http://127.0.0.2:9/token");
}

/// Issue 8: the issuer (flag, env var or TOML) follows the URL rule, with a clear config error.
#[test]
fn issue_8_issuer_must_follow_the_url_rule() {
    let check = |issuer: &str| {
        tessera::config::Config { issuer: Some(issuer.into()), ..Default::default() }
            .validate()
            .map_err(|e| e.to_string())
    };
    for ok in [
        "https://auth.example",
        "https://auth.example/tenant-1",
        "http://127.0.0.1:8080",
        "http://localhost:8080",
        "http://[::1]:8080",
    ] {
        assert_eq!(check(ok), Ok(()), "{ok}");
    }
    for bad in ["https://user@auth.example", "https://user:pass@auth.example"] {
        let err = check(bad).unwrap_err();
        assert!(err.contains("must not contain a user name or password"), "{bad}: {err}");
    }
    for bad in [
        "http://auth.example",
        "http://localhost.evil.example",
        "ftp://auth.example",
        "auth.example",
        "https://auth.example#x",
        "https://auth.example/?tenant=1",
    ] {
        let err = check(bad).unwrap_err();
        assert!(err.contains("must be an absolute https URL"), "{bad}: {err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.toml");
    std::fs::write(&path, "issuer = \"https://admin:pw@auth.example\"\n").unwrap();
    let err = tessera::config::Config::from_file(&path).unwrap_err().to_string();
    assert!(err.contains("user name or password"), "{err}");
}

/// Issue 8: `token verify --jwks` takes a URL by the same rule: the keys decide what verifies.
#[test]
fn issue_8_token_verify_refuses_a_jwks_url_with_credentials() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["token", "verify", "--jwks", "http://user:pass@127.0.0.1:1/jwks.json", "x.y.z"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["valid"], false);
    assert!(answer["reason"].as_str().unwrap().contains("user name or password"), "{answer}");
}

/// Sends `request` as is and returns the status and the body.
fn raw(url: &str, request: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(url.trim_start_matches("http://")).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok();
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// Issue 8: an empty POST without a Content-Type has no wrong media type; it lacks its
/// parameters, so it gets `400 invalid_request`. A body without a Content-Type stays `415`.
#[test]
fn issue_8_empty_body_without_content_type_is_invalid_request() {
    let server = TestServer::start();
    let auth = basic(ROOT_ID, ROOT_SECRET);
    let cases = [
        ("/oauth2/v1/token", "grant_type is required"),
        ("/token", "grant_type is required"),
        ("/oauth2/v1/introspect", "token is required"),
        ("/oauth2/v1/revoke", "token is required"),
    ];
    for (path, description) in cases {
        for length in ["content-length: 0\r\n", ""] {
            let (status, body) = raw(
                &server.url,
                &format!(
                    "POST {path} HTTP/1.1\r\nhost: x\r\nauthorization: {auth}\r\n{length}connection: close\r\n\r\n"
                ),
            );
            assert_eq!(status, 400, "{path} {length:?}: {body}");
            let body: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(body["error"], "invalid_request");
            assert_eq!(body["error_description"], description);
        }
        let res = server.request("POST", path, &[("authorization", &auth)], Some(b"token=x"));
        assert_eq!(res.status, 415, "{path}: {}", res.body);
        let res = server.request(
            "POST",
            path,
            &[("authorization", &auth), ("content-type", "text/plain")],
            Some(b""),
        );
        assert_eq!(res.status, 415, "{path}: {}", res.body);
    }
}

/// Issue 8: every body extractor takes `body_limit`, not actix's defaults (256 KiB for raw
/// bodies, 16 KiB for forms). A body one byte over it is refused with `413` and changes nothing.
#[test]
fn issue_8_every_body_honours_body_limit() {
    let server = TestServer::start_with(|c| c.body_limit = 1024);
    let root = server.root_token();
    let bearer = format!("Bearer {root}");
    let padded = |json: &str, len: usize| format!("{json}{}", " ".repeat(len - json.len()));
    let keys = server.admin("GET", "/api/v1/keys", &root, None).json();
    let over = padded(r#"{"force":true}"#, 1025);
    let res = server.request(
        "POST",
        "/api/v1/keys/rotate",
        &[("authorization", &bearer), ("content-type", "application/json")],
        Some(over.as_bytes()),
    );
    assert_eq!(res.status, 413, "{}", res.body);
    assert_eq!(res.json()["error"], "payload_too_large");
    assert_eq!(server.admin("GET", "/api/v1/keys", &root, None).json(), keys, "not rotated");
    let at = padded(r#"{"force":true}"#, 1024);
    let res = server.request(
        "POST",
        "/api/v1/keys/rotate",
        &[("authorization", &bearer)],
        Some(at.as_bytes()),
    );
    assert_eq!(res.status, 200, "{}", res.body);

    let form = |len: usize| {
        let head = "state=abc&username=nobody&password=";
        format!("{head}{}", "x".repeat(len - head.len()))
    };
    let sign_in = |body: String| {
        server.request(
            "POST",
            "/connect/sign-in",
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(body.as_bytes()),
        )
    };
    assert_eq!(sign_in(form(1025)).status, 413);
    // At the limit the form is read, and refused for what it says (it has no CSRF token).
    assert_eq!(sign_in(form(1024)).status, 400);
}

/// Issue 8: the request log names the matched route, never the path: a one-time state in
/// `/connect/provider-token/<state>` is a credential, and an unmatched path is whatever the
/// client sent.
#[test]
fn issue_8_request_log_names_routes_never_paths() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("TESSERA_DATA_DIR", dir.path().join("data"))
        .env("TESSERA_ROOT_CLIENT_ID", ROOT_ID)
        .env("TESSERA_ROOT_CLIENT_SECRET", ROOT_SECRET)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("tessera printed its address").unwrap();
        if let Some(url) = line.strip_prefix("tessera listening on ") {
            break url.trim().to_string();
        }
    };
    let agent: ureq::Agent =
        ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into();
    agent.get(format!("{url}/connect/provider-token/SECRETSTATE123")).call().unwrap();
    agent.get(format!("{url}/no/such/UNMATCHEDMARKER456")).call().unwrap();
    agent.get(format!("{url}/healthz")).call().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let log = loop {
        let log = std::fs::read_to_string(&log_path).unwrap();
        if log.contains("/healthz") || std::time::Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    child.kill().ok();
    child.wait().ok();
    assert!(log.contains("/connect/provider-token/{state}"), "{log}");
    assert!(log.contains("(unmatched)"), "{log}");
    assert!(!log.contains("SECRETSTATE123"), "{log}");
    assert!(!log.contains("UNMATCHEDMARKER456"), "{log}");
}
