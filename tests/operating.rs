//! Issue 11, operating Tessera: `/metrics` on the main listener, or with `metrics_listen` on
//! its own listener only (what the families hold is checked by the Prometheus parser in the
//! black-box suite, tests/blackbox/python/test_metrics.py); request ids in answers, error
//! bodies and log lines; the home page.

use std::io::{BufRead, BufReader};
use std::process::{ChildStdout, Command, Stdio};

use serde_json::Value;

use crate::support::{ROOT_ID, ROOT_SECRET, TestServer};

fn get(url: &str) -> (u16, String, String) {
    let mut res = agent().get(url).call().expect("HTTP exchange");
    let kind = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    let kind = kind.to_string();
    (res.status().as_u16(), kind, res.body_mut().read_to_string().unwrap_or_default())
}

#[test]
fn issue_11_metrics_are_answered_on_the_main_listener_by_default() {
    let server = TestServer::start();
    server.token(ROOT_ID, ROOT_SECRET, None);
    let (status, kind, body) = get(&format!("{}/metrics", server.url));
    assert_eq!(status, 200);
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    assert!(body.ends_with("# EOF\n"), "{body}");
    let issued = "tessera_token_requests_total{grant=\"client_credentials\",outcome=\"issued\"} 1";
    assert!(body.contains(issued), "{body}");
    assert!(!body.contains("tessera_change_lag"), "no lag on the embedded store: {body}");
}

#[test]
fn issue_11_metrics_listen_moves_metrics_to_a_listener_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, stdout) = spawn(&dir, &["--metrics-listen", "127.0.0.1:0"], "warn");
    child.0.stderr.take();
    let mut lines = BufReader::new(stdout).lines();
    let mut metrics = None;
    let main = loop {
        let line = lines.next().expect("tessera printed its addresses").unwrap();
        if let Some(url) = line.strip_prefix("tessera metrics on ") {
            metrics = Some(url.trim().to_string());
        }
        if let Some(url) = line.strip_prefix("tessera listening on ") {
            break url.trim().to_string();
        }
    };
    let metrics = metrics.expect("the metrics address comes first");
    let (status, _, body) = get(&metrics);
    assert_eq!(status, 200);
    assert!(body.contains("# TYPE tessera_signing_keys gauge"), "{body}");
    assert_eq!(get(&format!("{main}/metrics")).0, 404, "not on the main listener");
    let base = metrics.trim_end_matches("/metrics");
    assert_eq!(get(&format!("{base}/oauth2/v1/token")).0, 404, "nothing else on the metrics one");
    assert_eq!(get(&format!("{main}/healthz")).0, 200);
}

/// Starts the binary on loopback with `args` and the log filter `log`; stdout is handed back
/// to read its address lines from, stderr stays in the child.
fn spawn(dir: &tempfile::TempDir, args: &[&str], log: &str) -> (Killed, ChildStdout) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env("TESSERA_DATA_DIR", dir.path())
        .env("TESSERA_ROOT_CLIENT_ID", ROOT_ID)
        .env("TESSERA_ROOT_CLIENT_SECRET", ROOT_SECRET)
        .env("RUST_LOG", log)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tessera");
    let stdout = child.stdout.take().unwrap();
    (Killed(child), stdout)
}

/// The main listener's URL, as the server prints it.
fn address(stdout: ChildStdout) -> String {
    BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("tessera listening on ").map(|u| u.trim().to_string()))
        .expect("tessera printed its address")
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

/// Killed however the test ends, so a failed assertion leaves no server behind.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

#[test]
fn issue_11_every_answer_carries_a_request_id_and_error_bodies_name_it() {
    let server = TestServer::start();
    let fresh = server.get("/healthz", &[]);
    let id = fresh.header("x-request-id").expect("a generated id").to_string();
    assert!(!id.is_empty() && id.len() <= 128, "{id}");
    assert_ne!(server.get("/healthz", &[]).header("x-request-id"), Some(id.as_str()));
    let kept = server.get("/healthz", &[("x-request-id", "gw-7f3a:edge.1")]);
    assert_eq!(kept.header("x-request-id"), Some("gw-7f3a:edge.1"), "a caller's id is kept");
    let replaced = server.get("/healthz", &[("x-request-id", "two words")]);
    assert_ne!(replaced.header("x-request-id"), Some("two words"), "a malformed one is not");
    // OAuth, admin and routing errors alike.
    let refused = server.token_response(ROOT_ID, "not-the-secret", None);
    assert_eq!(refused.status, 401);
    let body: Value = refused.json();
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["request_id"].as_str(), refused.header("x-request-id"));
    let admin = server.admin("GET", "/api/v1/apps", "not-a-token", None);
    assert_eq!(
        (admin.status, admin.json()["request_id"].as_str()),
        (401, admin.header("x-request-id"))
    );
    let missing = server.get("/no-such-path", &[("x-request-id", "lost-1")]);
    assert_eq!((missing.status, missing.json()["request_id"].as_str()), (404, Some("lost-1")));
    // A success keeps its body as it was.
    let token = server.token_response(ROOT_ID, ROOT_SECRET, None);
    assert!(token.json().get("request_id").is_none());
}

#[test]
fn issue_11_log_lines_name_the_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, stdout) = spawn(&dir, &[], "info");
    let stderr = server.0.stderr.take().unwrap();
    let url = address(stdout);
    let agent = agent();
    let res = agent
        .post(format!("{url}/oauth2/v1/token"))
        .header("x-request-id", "trace-in-the-log-42")
        .content_type("application/x-www-form-urlencoded")
        .send("grant_type=client_credentials&client_id=nobody&client_secret=wrong")
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    server.0.kill().ok();
    server.0.wait().ok();
    let log: Vec<String> = BufReader::new(stderr).lines().map_while(Result::ok).collect();
    let line = log.iter().find(|l| l.contains("/oauth2/v1/token")).expect("the request's line");
    assert!(line.contains("trace-in-the-log-42"), "{log:#?}");
}

/// Each audit event is also a tracing event with target `audit`, so a log pipeline sees it: who,
/// what, on which record, through which request.
#[test]
fn issue_11_audit_events_reach_the_log_under_target_audit() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, stdout) = spawn(&dir, &[], "warn,audit=info");
    let stderr = server.0.stderr.take().unwrap();
    let url = address(stdout);
    let agent = agent();
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{ROOT_ID}:{ROOT_SECRET}"),
    );
    let mut token = agent
        .post(format!("{url}/oauth2/v1/token"))
        .header("authorization", &format!("Basic {basic}"))
        .content_type("application/x-www-form-urlencoded")
        .send("grant_type=client_credentials")
        .unwrap();
    let token: Value = serde_json::from_str(&token.body_mut().read_to_string().unwrap()).unwrap();
    let token = token["access_token"].as_str().unwrap();
    let res = agent
        .post(format!("{url}/api/v1/apps"))
        .header("authorization", &format!("Bearer {token}"))
        .header("x-request-id", "audited-write-7")
        .content_type("application/json")
        .send(r#"{"name":"logged"}"#)
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    server.0.kill().ok();
    server.0.wait().ok();
    let log: Vec<String> = BufReader::new(stderr).lines().map_while(Result::ok).collect();
    let line = log.iter().find(|l| l.contains("action=app.create")).expect("an audit line");
    for part in [
        "action=app.create",
        &format!("actor=app:{ROOT_ID}"),
        "audited-write-7",
        "target_id=\"app:",
    ] {
        assert!(line.contains(part), "{part} in {line}");
    }
    assert!(!log.iter().any(|l| l.contains("request method=")), "only the audit target at info");
}

#[test]
fn issue_11_the_home_page_links_what_a_reader_needs_next() {
    let server = TestServer::start();
    let page = server.get("/", &[]);
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    let links = [
        "/.well-known/oauth-authorization-server",
        "/.well-known/jwks.json",
        "/metrics",
        "/docs/",
        "/openapi.json",
    ];
    for link in links {
        assert!(page.body.contains(&format!("href=\"{link}\"")), "{link}: {}", page.body);
    }
}

/// The (method, path) pairs of an OpenAPI document.
fn operations(doc: &Value) -> std::collections::BTreeSet<(String, String)> {
    let mut found = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "put", "post", "delete", "patch"] {
            if item.get(method).is_some() {
                found.insert((method.to_string(), path.clone()));
            }
        }
    }
    found
}

/// `/openapi.json` lists exactly the routes the server registers (its routing table, as the
/// areas declare and register it), each of which the running server answers; every operation
/// that needs a scope names it as a security requirement and in its description.
#[test]
fn issue_11_the_openapi_document_lists_exactly_the_routes_the_server_answers() {
    let server = TestServer::start();
    let (status, kind, body) = get(&format!("{}/openapi.json", server.url));
    assert_eq!((status, kind.as_str()), (200, "application/json"));
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    let config = tessera::config::Config::default();
    let table: std::collections::BTreeSet<(String, String)> = tessera::api::routes(&config)
        .into_iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(operations(&doc), table);
    let mut scoped = 0;
    for (method, path) in &table {
        let op = &doc["paths"][path][method];
        let needs: Vec<&str> = op["security"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["bearer"].as_array())
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for scope in &needs {
            scoped += 1;
            let description = op["description"].as_str().unwrap_or("");
            assert!(description.contains(&format!("`{scope}`")), "{method} {path}: {description}");
        }
        // Reached with made-up ids and no credentials: never the fallback or a wrong method.
        let concrete = path.replace("{file}", "index.html").replace('{', "x-").replace('}', "");
        let res = server.request(&method.to_uppercase(), &concrete, &[], None);
        assert!(res.status != 405, "{method} {path}: {}", res.status);
        assert!(!res.body.contains("no such endpoint"), "{method} {path} is not routed");
    }
    assert!(scoped > 30, "the admin API's operations name their scopes");
    assert_eq!(doc["paths"]["/api/v1/apps"]["post"]["security"][0]["bearer"][0], "write_app");

    // With metrics on a listener of their own, the main one neither answers nor lists them.
    let moved = tessera::config::Config { metrics_listen: Some("127.0.0.1:0".into()), ..config };
    let listed = tessera::api::routes(&moved);
    assert!(!listed.contains(&("get", "/metrics")));
    let doc: Value = serde_json::from_slice(&tessera::api::openapi::document(&moved)).unwrap();
    assert!(doc["paths"].get("/metrics").is_none());
    assert_eq!(operations(&doc).len(), listed.len());
}

/// Swagger UI is served from the binary: its page and its script, no CDN named.
#[test]
fn issue_11_swagger_ui_is_served_from_bundled_assets() {
    let server = TestServer::start();
    let res = server.get("/docs", &[]);
    assert_eq!((res.status, res.header("location")), (308, Some("/docs/")));
    let page = server.get("/docs/", &[]);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("swagger-ui"), "{}", page.body);
    assert!(!page.body.contains("https://"), "no asset from elsewhere: {}", page.body);
    let init = server.get("/docs/swagger-initializer.js", &[]);
    assert!(init.body.contains("/openapi.json"), "{}", init.body);
    let script = server.get("/docs/swagger-ui-bundle.js", &[]);
    assert_eq!(script.status, 200);
    assert!(script.body.len() > 100_000);
}
