//! The audit log (issue 11): every admin write that changed something leaves one event in the
//! commit of its change, every refusal one event and no change, over real HTTP.

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::support::{ROOT_ID, TestServer};

/// Every event after `cursor`, read as root; the new cursor.
fn events_after(server: &TestServer, cursor: &str) -> (Vec<Value>, String) {
    let path = format!("/api/v1/audit?after={cursor}&pageSize=1000");
    let page = server.admin("GET", &path, &server.root_token(), None);
    assert_eq!(page.status, 200, "{}", page.body);
    let page = page.json();
    (page["events"].as_array().unwrap().clone(), page["next"].as_str().unwrap().to_string())
}

/// What the registry holds that these calls can change, as the admin API lists it.
fn state(server: &TestServer) -> Value {
    let root = server.root_token();
    let list = |path: &str| server.admin("GET", path, &root, None).json();
    json!([
        list("/api/v1/apps?pageSize=1000"),
        list("/api/v1/scopes?pageSize=1000"),
        list("/api/v1/roles?pageSize=1000"),
    ])
}

#[derive(Debug, Clone)]
enum Call {
    CreateApp { scopes: Vec<&'static str> },
    UpdateApp { app: usize, scopes: Option<Vec<&'static str>>, name: &'static str },
    DeleteApp { app: usize },
    CreateScope { name: &'static str },
    RenameScope { scope: usize, name: &'static str },
    DeleteScope { scope: usize },
    CreateRole { name: &'static str, scopes: Vec<&'static str> },
    DeleteRole { role: usize },
}

const SCOPES: [&str; 5] = ["root", "read_key", "reports:read", "reports:write", "write_app"];
const NAMES: [&str; 3] = ["reports:read", "reports:write", "billing:read"];

fn scopes() -> impl Strategy<Value = Vec<&'static str>> {
    proptest::sample::subsequence(SCOPES.to_vec(), 0..=2)
}

fn call() -> impl Strategy<Value = Call> {
    let name = proptest::sample::select(NAMES.to_vec());
    let app_name = proptest::sample::select(vec!["a", "b"]);
    prop_oneof![
        scopes().prop_map(|scopes| Call::CreateApp { scopes }),
        (0..4usize, proptest::option::of(scopes()), app_name)
            .prop_map(|(app, scopes, name)| Call::UpdateApp { app, scopes, name }),
        (0..4usize).prop_map(|app| Call::DeleteApp { app }),
        name.clone().prop_map(|name| Call::CreateScope { name }),
        (0..3usize, name.clone()).prop_map(|(scope, name)| Call::RenameScope { scope, name }),
        (0..3usize).prop_map(|scope| Call::DeleteScope { scope }),
        (name, scopes()).prop_map(|(name, scopes)| Call::CreateRole { name, scopes }),
        (0..3usize).prop_map(|role| Call::DeleteRole { role }),
    ]
}

/// The ids a call may name: created ones, and one that never existed.
fn pick(ids: &[String], i: usize) -> String {
    ids.get(i).cloned().unwrap_or_else(|| "no-such-id".into())
}

impl Call {
    /// (method, path, body, audit action).
    fn request(
        &self,
        apps: &[String],
        scopes: &[String],
        roles: &[String],
    ) -> (&'static str, String, Option<Value>, &'static str) {
        match self {
            Call::CreateApp { scopes } => (
                "POST",
                "/api/v1/apps".into(),
                Some(json!({"name": "x", "scopes": scopes})),
                "app.create",
            ),
            Call::UpdateApp { app, scopes, name } => {
                let mut body = json!({"name": name});
                if let Some(scopes) = scopes {
                    body["scopes"] = json!(scopes);
                }
                ("PUT", format!("/api/v1/apps/{}", pick(apps, *app)), Some(body), "app.update")
            }
            Call::DeleteApp { app } => {
                ("DELETE", format!("/api/v1/apps/{}", pick(apps, *app)), None, "app.delete")
            }
            Call::CreateScope { name } => {
                ("POST", "/api/v1/scopes".into(), Some(json!({"name": name})), "scope.create")
            }
            Call::RenameScope { scope, name } => (
                "PUT",
                format!("/api/v1/scopes/{}", pick(scopes, *scope)),
                Some(json!({"name": name})),
                "scope.update",
            ),
            Call::DeleteScope { scope } => {
                ("DELETE", format!("/api/v1/scopes/{}", pick(scopes, *scope)), None, "scope.delete")
            }
            Call::CreateRole { name, scopes } => (
                "POST",
                "/api/v1/roles".into(),
                Some(json!({"name": name, "scopes": scopes})),
                "role.create",
            ),
            Call::DeleteRole { role } => {
                ("DELETE", format!("/api/v1/roles/{}", pick(roles, *role)), None, "role.delete")
            }
        }
    }
}

proptest! {
    // Each case drives a real server through a sequence of calls.
    #![proptest_config(ProptestConfig { cases: 10, failure_persistence: None, ..ProptestConfig::default() })]

    /// For any sequence of admin calls, by root or by an app without root: a call that changed
    /// what the API lists leaves exactly one success event, named for it, its caller and its
    /// request; a refused call leaves exactly one refusal and changes nothing; a call that
    /// changed nothing leaves nothing. In order, with no secret anywhere.
    #[test]
    fn issue_11_the_audit_log_lists_exactly_the_calls_that_changed_something(
        calls in proptest::collection::vec((any::<bool>(), call()), 1..14),
    ) {
        let server = TestServer::start();
        let scopes = ["write_app", "read_app", "write_scope", "read_scope", "write_role", "read_role"];
        let (_, limited_id, limited_secret) = server.create_app(json!({"name": "ops", "scopes": scopes}));
        let limited = server.token(&limited_id, &limited_secret, None);
        let root = server.root_token();
        let (mut apps, mut scope_ids, mut role_ids) = (Vec::new(), Vec::new(), Vec::new());
        let (_, mut cursor) = events_after(&server, "");
        let mut secrets = vec![limited_secret.clone()];
        for (n, (as_root, call)) in calls.iter().enumerate() {
            let (method, path, body, action) = call.request(&apps, &scope_ids, &role_ids);
            let (token, actor) = if *as_root { (&root, ROOT_ID) } else { (&limited, limited_id.as_str()) };
            let before = state(&server);
            let request_id = format!("prop-{n}");
            let auth = format!("Bearer {token}");
            let bytes = body.map(|b| b.to_string().into_bytes());
            let headers = [("authorization", auth.as_str()), ("content-type", "application/json"), ("x-request-id", request_id.as_str())];
            let res = server.request(method, &path, &headers, bytes.as_deref());
            prop_assert!(res.status < 500, "{} {} -> {}", method, path, res.body);
            let after = state(&server);
            let (events, next) = events_after(&server, &cursor);
            cursor = next;
            let answer: Value = serde_json::from_str(&res.body).unwrap_or(Value::Null);
            if let Some(id) = answer["app"]["id"].as_str() {
                if method == "POST" { apps.push(id.to_string()); }
                if let Some(secret) = answer["app"]["secret"].as_str() { secrets.push(secret.to_string()); }
            }
            if let (Some(id), "POST") = (answer["scope"]["id"].as_str(), method) { scope_ids.push(id.to_string()); }
            if let (Some(id), "POST") = (answer["role"]["id"].as_str(), method) { role_ids.push(id.to_string()); }
            let changed = before != after;
            if res.status >= 400 {
                prop_assert!(!changed, "a refused call changed something: {}", res.body);
                prop_assert_eq!(events.len(), 1, "one refusal for {} {}: {:?}", method, path, events);
                prop_assert_eq!(&events[0]["outcome"], "refused");
                prop_assert_eq!(&events[0]["reason"], &answer["message"]);
            } else if changed {
                prop_assert_eq!(events.len(), 1, "one event for {} {}: {:?}", method, path, events);
                prop_assert_eq!(&events[0]["outcome"], "success");
            } else {
                prop_assert!(events.is_empty(), "a call that changed nothing left {:?}", events);
                continue;
            }
            let event = &events[0];
            prop_assert_eq!(&event["action"], action);
            prop_assert_eq!(event["actor"].as_str().unwrap(), format!("app:{actor}"));
            prop_assert_eq!(event["requestId"].as_str(), Some(request_id.as_str()));
            let text = event.to_string();
            prop_assert!(secrets.iter().all(|s| !text.contains(s.as_str())), "a secret in {}", text);
        }
    }
}

/// `GET /api/v1/audit` needs `read_audit`, pages by cursor, and refuses a bad cursor or size.
#[test]
fn issue_11_the_audit_log_is_read_with_read_audit_and_paged_by_cursor() {
    let server = TestServer::start();
    let (_, id, secret) = server.create_app(json!({"name": "auditor", "scopes": ["read_audit"]}));
    let (_, other, other_secret) =
        server.create_app(json!({"name": "other", "scopes": ["read_app"]}));
    for name in ["a", "b", "c"] {
        server.create_app(json!({"name": name, "scopes": []}));
    }
    let auditor = server.token(&id, &secret, None);
    let denied =
        server.admin("GET", "/api/v1/audit", &server.token(&other, &other_secret, None), None);
    assert_eq!((denied.status, denied.json()["error"].clone()), (403, json!("insufficient_scope")));
    // The refusal is committed with the grant store's next batch: wait for it.
    for _ in 0..100 {
        if events_after(&server, "").0.iter().any(|e| e["action"] == "request.denied") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let first = server.admin("GET", "/api/v1/audit?pageSize=2", &auditor, None).json();
    let events = first["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["action"], "app.create");
    assert_eq!(events[0]["actor"], format!("app:{ROOT_ID}"));
    assert!(events[0]["target"].as_str().unwrap().starts_with("app:"));
    assert!(events[0]["at"].as_str().unwrap().ends_with('Z'));
    let next = first["next"].as_str().unwrap();
    let rest = server.admin("GET", &format!("/api/v1/audit?after={next}"), &auditor, None).json();
    let rest_events = rest["events"].as_array().unwrap();
    assert_eq!(rest_events.len(), 4, "three more creates and the refusal: {rest}");
    // A call refused for its scope is audited too, by whom and on which route.
    let denial = &rest_events[3];
    assert_eq!(denial["action"], "request.denied");
    assert_eq!(denial["actor"], format!("app:{other}"));
    assert_eq!(denial["target"], "route:GET /api/v1/audit");
    assert_eq!(denial["outcome"], "refused");
    assert_eq!(denial["reason"], "this call needs the scope 'read_audit'");
    assert_ne!(rest["events"][0]["id"], events[1]["id"]);
    let end = rest["next"].as_str().unwrap();
    let empty = server.admin("GET", &format!("/api/v1/audit?after={end}"), &auditor, None).json();
    assert_eq!((empty["events"].clone(), empty["next"].clone()), (json!([]), json!(end)));
    for bad in ["after=x", "pageSize=0", "pageSize=1001", "after=-1", "other=1"] {
        let res = server.admin("GET", &format!("/api/v1/audit?{bad}"), &auditor, None);
        assert_eq!(res.status, 400, "{bad}: {}", res.body);
    }
}

/// Key rotations, refresh-token reuse and a tripped rate limit are in the log too.
#[test]
fn issue_11_rotations_reuse_and_rate_limits_are_audited() {
    let server = TestServer::start_with(|c| {
        c.failures_per_client = 2;
        c.failures_per_address = 1000;
    });
    let root = server.root_token();
    let (_, cursor) = events_after(&server, "");
    // A rotation is done; the next one, before the new next key has been out one max-age, is
    // refused and recorded; a forced one is done.
    let rotate = |body: Value| server.admin("POST", "/api/v1/keys/rotate", &root, Some(body));
    server.jwks();
    assert_eq!(rotate(json!({})).status, 200, "every JWKS held the next key");
    let _ = server.root_token();
    let refused = rotate(json!({}));
    assert_eq!(refused.status, 409, "{}", refused.body);
    let forced = rotate(json!({"force": true}));
    assert_eq!(forced.status, 200, "{}", forced.body);
    let (events, cursor) = events_after(&server, &cursor);
    let got: Vec<_> = events.iter().map(|e| (e["action"].clone(), e["outcome"].clone())).collect();
    let (done, no, rotation) = (json!("success"), json!("refused"), json!("key.rotate"));
    assert_eq!(got, [(rotation.clone(), done.clone()), (rotation.clone(), no), (rotation, done)]);
    assert!(events[1]["reason"].as_str().unwrap().starts_with("rotation is not safe"));
    let keys = forced.json()["keys"].clone();
    let current = keys.as_array().unwrap().iter().find(|k| k["state"] == "current").unwrap();
    assert_eq!(events[2]["target"], format!("key:{}", current["kid"].as_str().unwrap()));

    // Wrong secrets until the client's window is full: one trip, however many refusals follow.
    let (_, id, _) = server.create_app(json!({"name": "guessed", "scopes": []}));
    for _ in 0..5 {
        server.token_response(&id, "wrong-secret-wrong-secret-wrong-secret", None);
    }
    // The refresh grant: a spent token presented again ends its family.
    let (_, cid, secret) = server.create_app(
        json!({"name": "r", "scopes": [], "grantTypes": ["client_credentials", "refresh_token"]}),
    );
    let issued = server.token_response(&cid, &secret, None).json();
    let refresh = issued["refresh_token"].as_str().expect("a refresh token").to_string();
    let body = format!("grant_type=refresh_token&refresh_token={}", crate::support::form(&refresh));
    let auth = crate::support::basic(&cid, &secret);
    assert_eq!(server.post_form("/oauth2/v1/token", Some(&auth), &body).status, 200);
    assert_eq!(server.post_form("/oauth2/v1/token", Some(&auth), &body).status, 400);
    // The trip is committed with the grant store's next batch: wait for it.
    let mut events = Vec::new();
    for _ in 0..50 {
        events = events_after(&server, &cursor).0;
        let actions: Vec<_> = events.iter().map(|e| e["action"].as_str().unwrap_or("")).collect();
        if actions.contains(&"rate_limit.trip") && actions.contains(&"refresh_token.reuse") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let trips: Vec<_> = events.iter().filter(|e| e["action"] == "rate_limit.trip").collect();
    assert_eq!(trips.len(), 1, "{events:?}");
    assert_eq!(trips[0]["target"], format!("client:{id}"));
    assert_eq!(
        (trips[0]["actor"].clone(), trips[0]["outcome"].clone()),
        (json!("system"), json!("refused"))
    );
    assert!(!json!(events).to_string().contains("wrong-secret"));
    let reuse: Vec<_> = events.iter().filter(|e| e["action"] == "refresh_token.reuse").collect();
    assert_eq!(reuse.len(), 1, "{events:?}");
    assert_eq!(reuse[0]["actor"], format!("app:{cid}"));
    assert!(reuse[0]["target"].as_str().unwrap().starts_with("family:"));
    assert!(!json!(events).to_string().contains(&refresh), "no token in the log");
}
