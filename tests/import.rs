//! Bulk import of apps (issue 14): a JSON Lines file, all or none, over HTTP and the CLI.

use serde_json::{Value, json};

use crate::support::TestServer;

/// Sends `lines` to the import endpoint as `token`.
fn import(server: &TestServer, token: &str, lines: &[Value]) -> crate::support::Resp {
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let auth = format!("Bearer {token}");
    let headers = [("authorization", auth.as_str()), ("content-type", "application/x-ndjson")];
    server.request("POST", "/api/v1/apps/import", &headers, Some(body.as_bytes()))
}

fn app_count(server: &TestServer, token: &str) -> u64 {
    let res = server.admin("GET", "/api/v1/apps?pageSize=1", token, None);
    res.json()["count"].as_u64().unwrap()
}

#[test]
fn issue_14_an_import_creates_every_app_keeping_what_the_fleet_brings() {
    let server = TestServer::start();
    let root = server.root_token();
    let kept = "imported-secret-from-the-old-service";
    let body = format!(
        "{}\n\n{}\n{}\n",
        json!({"name": "billing", "scopes": ["orders:read"], "clientId": "billing-svc", "secret": kept}),
        json!({"name": "shipping", "scopes": ["orders:read"], "description": "made here"}),
        json!({"name": "audit", "scopes": []}),
    );
    let auth = format!("Bearer {root}");
    let headers = [("authorization", auth.as_str()), ("content-type", "application/x-ndjson")];
    let res = server.request("POST", "/api/v1/apps/import", &headers, Some(body.as_bytes()));
    assert_eq!(res.status, 201, "{}", res.body);
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let answer = res.json();
    assert_eq!(answer["imported"], 3);
    let apps = answer["apps"].as_array().unwrap();
    // Line numbers are the file's: the blank line counts.
    assert_eq!(apps.iter().map(|a| a["line"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 3, 4]);
    assert_eq!(apps[0]["clientId"], "billing-svc");
    assert!(apps[0].get("secret").is_none(), "a brought secret is never echoed");
    // The kept secret and a made one both work at the token endpoint.
    let token = server.token("billing-svc", kept, Some("orders:read"));
    assert_eq!(crate::support::claims(&token)["client_id"], "billing-svc");
    let made = apps[1]["secret"].as_str().unwrap();
    server.token(apps[1]["clientId"].as_str().unwrap(), made, None);
    // Each app is an ordinary one afterwards.
    let id = apps[1]["id"].as_str().unwrap();
    let got = server.admin("GET", &format!("/api/v1/apps/{id}"), &root, None).json();
    assert_eq!(got["app"]["description"], "made here");
    // Neither secret reached the audit log.
    let audit = server.admin("GET", "/api/v1/audit?pageSize=100", &root, None);
    assert!(audit.body.contains("app.import"), "{}", audit.body);
    assert!(!audit.body.contains(kept) && !audit.body.contains(made));
}

#[test]
fn issue_14_a_bad_line_refuses_the_whole_import_and_names_itself() {
    let server = TestServer::start();
    let root = server.root_token();
    let before = app_count(&server, &root);
    let good = json!({"name": "fine", "scopes": ["orders:read"]});
    let (existing, _, _) = server.create_app(json!({"name": "there", "scopes": []}));
    let taken = existing["clientId"].as_str().unwrap();
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"name": "x", "scopes": ["not a scope!"]}), 400, "line 2: "),
        (json!({"name": "x", "scopes": [], "secret": "short"}), 400, "line 2: secret must be"),
        (json!({"name": "x", "scopes": [], "clientId": "has space"}), 400, "line 2: clientId"),
        (json!({"name": "x", "scopes": [], "clientId": taken}), 409, "line 2: "),
        (json!({"name": "x", "scopes": [], "clientId": "tessera-consumer"}), 400, "line 2: "),
        (json!({"name": "x", "scopes": [], "secrets": "typo"}), 400, "line 2: unknown field"),
        (json!({"name": "x", "scopes": [], "secret": 7}), 400, "line 2: secret must be a string"),
        (json!({"name": "", "scopes": []}), 400, "line 2: "),
    ];
    for (bad, status, message) in cases {
        let res = import(&server, &root, &[good.clone(), bad.clone(), good.clone()]);
        assert_eq!(res.status, status, "{bad}: {}", res.body);
        let said = res.json()["message"].as_str().unwrap().to_string();
        assert!(said.starts_with(message), "{bad}: {said}");
        assert!(!said.contains("short"), "a secret is never repeated: {said}");
    }
    // Two lines with one client id, and a line that is not JSON.
    let twice = json!({"name": "x", "scopes": [], "clientId": "same-id"});
    let res = import(&server, &root, &[good.clone(), twice.clone(), twice]);
    assert_eq!(res.status, 400);
    assert!(res.json()["message"].as_str().unwrap().starts_with("line 3: client id same-id"));
    let auth = format!("Bearer {root}");
    let headers = [("authorization", auth.as_str())];
    let res = server.request("POST", "/api/v1/apps/import", &headers, Some(b"{\"name\":\"a\"}\n{"));
    assert_eq!(res.status, 400);
    assert!(res.json()["message"].as_str().unwrap().starts_with("line 2: not a JSON object"));
    let res = server.request("POST", "/api/v1/apps/import", &headers, Some(b"\n\n"));
    assert_eq!(res.status, 400, "an empty import is refused");
    assert_eq!(app_count(&server, &root), before + 1, "nothing of any refused import landed");
}

#[test]
fn issue_14_an_import_holds_the_rules_of_a_create() {
    let server = TestServer::start_with(|c| c.strict_delegation = true);
    let root = server.root_token();
    let (_, id, secret) = server.create_app(json!({"name": "deployer", "scopes": ["write_app"]}));
    let deployer = server.token(&id, &secret, None);
    // Strict delegation: it gives only scopes it holds, whichever line asks.
    let lines = [json!({"name": "a", "scopes": []}), json!({"name": "b", "scopes": ["read_app"]})];
    let res = import(&server, &deployer, &lines);
    assert_eq!(res.status, 400, "{}", res.body);
    assert!(res.json()["message"].as_str().unwrap().starts_with("line 2: "), "{}", res.body);
    // Rule 1: only root gives root, on any line.
    let res = import(&server, &deployer, &[json!({"name": "c", "scopes": ["root"]})]);
    assert_eq!(res.status, 400, "{}", res.body);
    assert!(res.json()["message"].as_str().unwrap().starts_with("line 1: "), "{}", res.body);
    // Without write_app, no import at all.
    let (_, id, secret) = server.create_app(json!({"name": "reader", "scopes": ["read_app"]}));
    let reader = server.token(&id, &secret, None);
    assert_eq!(import(&server, &reader, &lines[..1]).status, 403);
    assert_eq!(import(&server, &root, &lines).status, 201);
}
