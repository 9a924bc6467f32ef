//! Resources (RFC 8707): registered APIs, per-app grants, and token requests that name them.

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::support::{TestServer, basic, claims, form};

const API: &str = "https://api.example.com/orders";

/// A custom scope named `name`.
fn scope(server: &TestServer, name: &str) -> Value {
    let res =
        server.admin("POST", "/api/v1/scopes", &server.root_token(), Some(json!({"name": name})));
    assert_eq!(res.status, 201, "{}", res.body);
    res.json()["scope"].clone()
}

fn resource(server: &TestServer, body: Value) -> Value {
    let res = server.admin("POST", "/api/v1/resources", &server.root_token(), Some(body));
    assert_eq!(res.status, 201, "{}", res.body);
    res.json()["resource"].clone()
}

fn token_for(server: &TestServer, id: &str, secret: &str, extra: &str) -> crate::support::Resp {
    server.post_form(
        "/token",
        Some(&basic(id, secret)),
        &format!("grant_type=client_credentials{extra}"),
    )
}

fn app_view(server: &TestServer, id: &Value) -> Value {
    let path = format!("/api/v1/apps/{}", id.as_str().unwrap());
    server.admin("GET", &path, &server.root_token(), None).json()["app"].clone()
}

/// The orders API with two scopes, and an app granted one of them.
fn orders(server: &TestServer) -> (Value, Value, String, String) {
    scope(server, "orders:read");
    scope(server, "orders:write");
    let api = resource(
        server,
        json!({"identifier": API, "name": "Orders", "scopes": ["orders:read", "orders:write"]}),
    );
    let (app, id, secret) = server.create_app(json!({
        "name": "shipper", "scopes": ["read_app"], "resources": {API: ["orders:read"]}
    }));
    (api, app, id, secret)
}

#[test]
fn issue_12_resources_are_managed_with_their_own_scopes() {
    let server = TestServer::start();
    scope(&server, "orders:read");
    let root = server.root_token();
    let created = resource(
        &server,
        json!({"identifier": API, "name": "Orders", "scopes": ["orders:read"], "accessTokenTtlSecs": 60}),
    );
    assert_eq!(created["identifier"], API);
    assert_eq!(created["accessTokenTtlSecs"], 60);
    let path = format!("/api/v1/resources/{}", created["id"].as_str().unwrap());
    assert_eq!(server.admin("GET", &path, &root, None).json()["resource"], created);
    let list = server.admin("GET", "/api/v1/resources", &root, None).json();
    assert_eq!((list["count"].clone(), list["resources"][0].clone()), (json!(1), created.clone()));

    // Refused, each with its reason, and nothing changes.
    for (body, status, says) in [
        (json!({"identifier": "/relative", "name": "x"}), 400, "absolute URI"),
        (json!({"identifier": "https://a.example/#frag", "name": "x"}), 400, "fragment"),
        (json!({"identifier": server.url, "name": "x"}), 400, "own audience"),
        (json!({"identifier": API, "name": "again"}), 409, "already exists"),
        (
            json!({"identifier": "https://b.example", "name": "x", "scopes": ["nope"]}),
            400,
            "not a registered scope",
        ),
        (
            json!({"identifier": "https://b.example", "name": "x", "scopes": ["root"]}),
            400,
            "root scope",
        ),
        (json!({"name": "x"}), 400, "identifier is required"),
        (json!({"identifier": "https://b.example", "name": "x", "bogus": 1}), 400, "bogus"),
    ] {
        let res = server.admin("POST", "/api/v1/resources", &root, Some(body));
        assert_eq!(res.status, status, "{}", res.body);
        assert!(res.body.contains(says), "{says}: {}", res.body);
    }
    assert_eq!(server.admin("GET", "/api/v1/resources", &root, None).json()["count"], 1);

    // The built-in scopes gate it.
    let (_, id, secret) = server.create_app(json!({"name": "reader", "scopes": ["read_resource"]}));
    let reader = server.token(&id, &secret, None);
    assert_eq!(server.admin("GET", &path, &reader, None).status, 200);
    let res = server.admin("PUT", &path, &reader, Some(json!({"name": "mine"})));
    assert_eq!(res.status, 403);
    assert!(res.header("www-authenticate").unwrap().contains("write_resource"));

    let res = server.admin(
        "PUT",
        &path,
        &root,
        Some(json!({"name": "Orders v2", "accessTokenTtlSecs": null})),
    );
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(res.json()["resource"].get("accessTokenTtlSecs").is_none());
    assert_eq!(server.admin("DELETE", &path, &root, None).status, 204);
    assert_eq!(server.admin("GET", &path, &root, None).status, 404);
}

#[test]
fn issue_12_a_token_names_only_a_resource_the_app_was_granted() {
    let server = TestServer::start();
    let (_, _, id, secret) = orders(&server);
    let other =
        resource(&server, json!({"identifier": "https://billing.example", "name": "Billing"}));

    // The grant, whole when no scope is asked, with the resource as the only audience.
    let res = token_for(&server, &id, &secret, &format!("&resource={}", form(API)));
    assert_eq!(res.status, 200, "{}", res.body);
    let c = claims(res.json()["access_token"].as_str().unwrap());
    assert_eq!((c["aud"].clone(), c["scope"].clone()), (json!(API), json!("orders:read")));
    let res =
        token_for(&server, &id, &secret, &format!("&audience={}&scope=orders%3Aread", form(API)));
    assert_eq!(res.status, 200, "{}", res.body);

    // Without a resource: the app's own scopes, for Tessera.
    let c = claims(token_for(&server, &id, &secret, "").json()["access_token"].as_str().unwrap());
    assert_eq!((c["aud"].clone(), c["scope"].clone()), (json!(server.url), json!("read_app")));

    for (extra, error) in [
        (format!("&resource={}&scope=orders%3Awrite", form(API)), "invalid_scope"),
        (format!("&resource={}&scope=read_app", form(API)), "invalid_scope"),
        (format!("&resource={}", form("https://nowhere.example")), "invalid_target"),
        (format!("&resource={}", form(other["identifier"].as_str().unwrap())), "invalid_target"),
        (format!("&resource={}&resource={}", form(API), form(API)), "invalid_target"),
        (format!("&resource={}&audience=https%3A%2F%2Fx.example", form(API)), "invalid_target"),
    ] {
        let res = token_for(&server, &id, &secret, &extra);
        assert_eq!(
            (res.status, res.json()["error"].as_str().unwrap()),
            (400, error),
            "{extra}: {}",
            res.body
        );
    }
    // An unknown resource and one not granted are told alike.
    let unknown =
        token_for(&server, &id, &secret, &format!("&resource={}", form("https://nowhere.example")));
    let ungranted =
        token_for(&server, &id, &secret, &format!("&resource={}", form("https://billing.example")));
    assert_eq!(unknown.answer(), ungranted.answer());
}

#[test]
fn issue_12_a_resource_lifetime_wins_over_the_app_and_refreshes_stay_with_the_resource() {
    let server = TestServer::start();
    scope(&server, "orders:read");
    resource(
        &server,
        json!({"identifier": API, "name": "Orders", "scopes": ["orders:read"], "accessTokenTtlSecs": 90}),
    );
    let (_, id, secret) = server.create_app(json!({
        "name": "a", "accessTokenTtlSecs": 600, "grantTypes": ["client_credentials", "refresh_token"],
        "resources": {API: ["orders:read"]},
    }));
    let res = token_for(&server, &id, &secret, &format!("&resource={}", form(API)));
    let body = res.json();
    assert_eq!(body["expires_in"], 90);
    assert_eq!(token_for(&server, &id, &secret, "").json()["expires_in"], 600);

    let refresh = body["refresh_token"].as_str().unwrap();
    let res = server.post_form(
        "/token",
        Some(&basic(&id, &secret)),
        &format!("grant_type=refresh_token&refresh_token={}", form(refresh)),
    );
    assert_eq!(res.status, 200, "{}", res.body);
    let next = res.json();
    let c = claims(next["access_token"].as_str().unwrap());
    assert_eq!(
        (c["aud"].clone(), c["scope"].clone(), next["expires_in"].clone()),
        (json!(API), json!("orders:read"), json!(90))
    );
    // A family stays with its resource: naming another, even Tessera's own, is refused, and
    // refuses nothing else (the token is not spent).
    let next_refresh = next["refresh_token"].as_str().unwrap();
    for other in [server.url.as_str(), "https://other.example"] {
        let res = server.post_form(
            "/token",
            Some(&basic(&id, &secret)),
            &format!(
                "grant_type=refresh_token&refresh_token={}&resource={}",
                form(next_refresh),
                form(other)
            ),
        );
        assert_eq!(res.json()["error"], "invalid_target", "{other}: {}", res.body);
    }
    let res = server.post_form(
        "/token",
        Some(&basic(&id, &secret)),
        &format!(
            "grant_type=refresh_token&refresh_token={}&resource={}",
            form(next_refresh),
            form(API)
        ),
    );
    assert_eq!(res.status, 200, "naming its own resource again: {}", res.body);
}

#[test]
fn issue_12_renames_narrowings_and_deletes_reach_every_grant() {
    let server = TestServer::start();
    let (api, app, id, secret) = orders(&server);
    let root = server.root_token();
    let api_path = format!("/api/v1/resources/{}", api["id"].as_str().unwrap());
    let scopes = server.admin("GET", "/api/v1/scopes?pageSize=100", &root, None).json();
    let read = scopes["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "orders:read")
        .unwrap()
        .clone();
    let read_path = format!("/api/v1/scopes/{}", read["id"].as_str().unwrap());

    // A scope renamed: the resource and the grant follow.
    assert_eq!(
        server.admin("PUT", &read_path, &root, Some(json!({"name": "orders:view"}))).status,
        200
    );
    assert_eq!(app_view(&server, &app["id"])["resources"], json!({API: ["orders:view"]}));
    assert_eq!(
        server.admin("GET", &api_path, &root, None).json()["resource"]["scopes"],
        json!(["orders:view", "orders:write"])
    );

    // The resource renamed: the grant moves with it, and the old name opens nothing.
    let moved = "https://api.example.com/orders/v2";
    assert_eq!(
        server.admin("PUT", &api_path, &root, Some(json!({"identifier": moved}))).status,
        200
    );
    assert_eq!(app_view(&server, &app["id"])["resources"], json!({moved: ["orders:view"]}));
    assert_eq!(
        token_for(&server, &id, &secret, &format!("&resource={}", form(API))).json()["error"],
        "invalid_target"
    );
    let c = claims(token_for(&server, &id, &secret, &format!("&resource={}", form(moved))).json()["access_token"].as_str().unwrap());
    assert_eq!((c["aud"].clone(), c["scope"].clone()), (json!(moved), json!("orders:view")));

    // Narrowed: the grant loses what the resource lost.
    assert_eq!(
        server.admin("PUT", &api_path, &root, Some(json!({"scopes": ["orders:write"]}))).status,
        200
    );
    assert_eq!(app_view(&server, &app["id"])["resources"], json!({moved: []}));

    // Deleted: the grant goes in the same commit, and the audit log holds one event for it.
    assert_eq!(server.admin("DELETE", &api_path, &root, None).status, 204);
    assert_eq!(app_view(&server, &app["id"])["resources"], json!({}));
    let audit = server.admin("GET", "/api/v1/audit?pageSize=100", &root, None).json();
    let deletes: Vec<&Value> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "resource.delete")
        .collect();
    assert_eq!(deletes.len(), 1, "{audit}");
    assert_eq!(
        token_for(&server, &id, &secret, &format!("&resource={}", form(moved))).json()["error"],
        "invalid_target"
    );
}

#[test]
fn issue_12_grants_follow_the_escalation_rules() {
    let server = TestServer::start_with(|c| c.strict_delegation = true);
    let (api, _, _, _) = orders(&server);
    let root = server.root_token();
    // Not a resource, or not one of its scopes: refused, and nothing changes.
    let (target, _, _) = server.create_app(json!({"name": "target"}));
    let target_path = format!("/api/v1/apps/{}", target["id"].as_str().unwrap());
    for (grants, says) in [
        (json!({"https://nowhere.example": []}), "not a registered resource"),
        (json!({API: ["read_app"]}), "not a scope of the resource"),
    ] {
        let res = server.admin("PUT", &target_path, &root, Some(json!({"resources": grants})));
        assert_eq!(res.status, 400, "{}", res.body);
        assert!(res.body.contains(says), "{}", res.body);
    }
    assert_eq!(app_view(&server, &target["id"])["resources"], json!({}));

    // Strict delegation: a caller grants only resource scopes it holds itself.
    let (_, id, secret) = server
        .create_app(json!({"name": "admin", "scopes": ["write_app", "read_app", "orders:read"]}));
    let admin = server.token(&id, &secret, None);
    let res = server.admin(
        "PUT",
        &target_path,
        &admin,
        Some(json!({"resources": {API: ["orders:write"]}})),
    );
    assert_eq!(res.status, 400, "{}", res.body);
    assert!(res.body.contains("strict_delegation"), "{}", res.body);
    let res = server.admin(
        "PUT",
        &target_path,
        &admin,
        Some(json!({"resources": {API: ["orders:read"]}})),
    );
    assert_eq!(res.status, 200, "{}", res.body);

    // A resource a root app holds a grant for is root's to rename, narrow, re-time or delete.
    let (_, _, _) = server.create_app(
        json!({"name": "root-2", "scopes": ["root"], "resources": {API: ["orders:read"]}}),
    );
    let (_, id, secret) =
        server.create_app(json!({"name": "ops", "scopes": ["write_resource", "read_resource"]}));
    let ops = server.token(&id, &secret, None);
    let api_path = format!("/api/v1/resources/{}", api["id"].as_str().unwrap());
    for (method, body) in [
        ("PUT", Some(json!({"identifier": "https://elsewhere.example"}))),
        ("PUT", Some(json!({"scopes": ["orders:write"]}))),
        ("PUT", Some(json!({"accessTokenTtlSecs": 120}))),
        ("DELETE", None),
    ] {
        let res = server.admin(method, &api_path, &ops, body);
        assert_eq!(res.status, 400, "{}", res.body);
        assert!(res.body.contains("granted to an app with the root scope"), "{}", res.body);
    }
    let res = server.admin("PUT", &api_path, &ops, Some(json!({"name": "Orders (renamed)"})));
    assert_eq!(res.status, 200, "a new name rewrites no grant: {}", res.body);

    // Strict delegation: renaming a granted resource would point grants the caller could never
    // give at an audience of its choosing.
    let billing = resource(
        &server,
        json!({"identifier": "https://billing.example", "name": "Billing", "scopes": ["orders:read"]}),
    );
    let grant = json!({"resources": {"https://billing.example": ["orders:read"]}});
    assert_eq!(server.admin("PUT", &target_path, &root, Some(grant)).status, 200);
    let billing_path = format!("/api/v1/resources/{}", billing["id"].as_str().unwrap());
    let moved = json!({"identifier": "https://payments.example"});
    let res = server.admin("PUT", &billing_path, &ops, Some(moved));
    assert_eq!(res.status, 400, "{}", res.body);
    assert!(res.body.contains("strict_delegation"), "{}", res.body);
    let held = app_view(&server, &target["id"])["resources"].clone();
    assert_eq!(held, json!({"https://billing.example": ["orders:read"]}));
}

/// One step of the property below.
#[derive(Debug, Clone)]
enum Step {
    /// Register resource `n` with these of the pool's scopes.
    Register(usize, Vec<usize>),
    /// Grant the app these scopes of resource `n` (refused when they are not all its own).
    Grant(usize, Vec<usize>),
    /// Narrow resource `n` to these scopes.
    Narrow(usize, Vec<usize>),
    Delete(usize),
    /// Ask for a token for resource `n` (or none), with these scopes (or none).
    Ask(Option<usize>, Option<Vec<usize>>),
}

const POOL: [&str; 4] = ["p:a", "p:b", "p:c", "p:d"];

fn picks() -> impl Strategy<Value = Vec<usize>> {
    proptest::sample::subsequence(vec![0, 1, 2, 3], 0..=4)
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => (0..3usize, picks()).prop_map(|(n, s)| Step::Register(n, s)),
        1 => (0..3usize, picks()).prop_map(|(n, s)| Step::Grant(n, s)),
        1 => (0..3usize, picks()).prop_map(|(n, s)| Step::Narrow(n, s)),
        1 => (0..3usize).prop_map(Step::Delete),
        3 => (proptest::option::of(0..4usize), proptest::option::of(picks())).prop_map(|(n, s)| Step::Ask(n, s)),
    ]
}

fn names(picks: &[usize]) -> Vec<&'static str> {
    picks.iter().map(|&i| POOL[i]).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, failure_persistence: None, ..ProptestConfig::default() })]

    /// For any resources, grants and changes to them, every token issued names an audience and
    /// scopes within a grant the app held when it was issued, and a refusal happens exactly
    /// when no such grant exists.
    #[test]
    fn issue_12_issued_tokens_stay_within_a_grant_held_at_issue(steps in proptest::collection::vec(step(), 1..14)) {
        let server = TestServer::start();
        let root = server.root_token();
        for name in POOL {
            scope(&server, name);
        }
        let (app, id, secret) = server.create_app(json!({"name": "prop", "scopes": ["p:a"]}));
        let app_path = format!("/api/v1/apps/{}", app["id"].as_str().unwrap());
        let identifier = |n: usize| format!("https://r{n}.example/api");
        let mut ids: [Option<String>; 3] = Default::default();
        for step in steps {
            match step {
                Step::Register(n, s) => {
                    let body = json!({"identifier": identifier(n), "name": "r", "scopes": names(&s)});
                    let res = server.admin("POST", "/api/v1/resources", &root, Some(body));
                    prop_assert!(res.status == 201 || (res.status == 409 && ids[n].is_some()), "{}", res.body);
                    if res.status == 201 {
                        ids[n] = res.json()["resource"]["id"].as_str().map(String::from);
                    }
                }
                Step::Grant(n, s) => {
                    let mut grants = app_view(&server, &app["id"])["resources"].clone();
                    grants[identifier(n)] = json!(names(&s));
                    let res = server.admin("PUT", &app_path, &root, Some(json!({"resources": grants})));
                    prop_assert!(res.status == 200 || res.status == 400, "{}", res.body);
                }
                Step::Narrow(n, s) => {
                    if let Some(rid) = &ids[n] {
                        let path = format!("/api/v1/resources/{rid}");
                        let res = server.admin("PUT", &path, &root, Some(json!({"scopes": names(&s)})));
                        prop_assert_eq!(res.status, 200, "{}", res.body);
                    }
                }
                Step::Delete(n) => {
                    if let Some(rid) = ids[n].take() {
                        let path = format!("/api/v1/resources/{rid}");
                        prop_assert_eq!(server.admin("DELETE", &path, &root, None).status, 204);
                    }
                }
                Step::Ask(n, s) => {
                    // What the app holds now, read before the request: the grant at issue time.
                    let held = app_view(&server, &app["id"]);
                    let mut extra = String::new();
                    if let Some(n) = n {
                        extra.push_str(&format!("&resource={}", form(&identifier(n))));
                    }
                    if let Some(s) = &s {
                        extra.push_str(&format!("&scope={}", form(&names(s).join(" "))));
                    }
                    let res = token_for(&server, &id, &secret, &extra);
                    let (aud, allowed): (String, Vec<String>) = match n {
                        None => (server.url.clone(), serde_json::from_value(held["scopes"].clone()).unwrap()),
                        Some(n) => match held["resources"].get(identifier(n)) {
                            Some(g) => (identifier(n), serde_json::from_value(g.clone()).unwrap()),
                            None => {
                                prop_assert_eq!(res.json()["error"].clone(), json!("invalid_target"), "{}", res.body);
                                continue;
                            }
                        },
                    };
                    let asked: Vec<String> = s.map(|s| names(&s).into_iter().map(String::from).collect()).unwrap_or_default();
                    if asked.iter().any(|a| !allowed.contains(a)) {
                        prop_assert_eq!(res.json()["error"].clone(), json!("invalid_scope"), "{}", res.body);
                        continue;
                    }
                    prop_assert_eq!(res.status, 200, "{}", res.body);
                    let c = claims(res.json()["access_token"].as_str().unwrap());
                    prop_assert_eq!(c["aud"].as_str().unwrap(), aud.as_str());
                    let issued: Vec<&str> = c["scope"].as_str().unwrap().split(' ').filter(|s| !s.is_empty()).collect();
                    let expected: Vec<&str> = if asked.is_empty() { allowed.iter().map(String::as_str).collect() } else { asked.iter().map(String::as_str).collect() };
                    prop_assert_eq!(issued, expected);
                }
            }
        }
    }
}
