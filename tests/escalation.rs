//! Property tests of the escalation rules (docs/api.md, Admin API), over real HTTP and through the
//! registry itself, against a small reference model.

use proptest::prelude::*;
use serde_json::json;
use tessera_core::policy::{self, Caller};

use crate::support::TestServer;

const ROOT_RULE: &str = "Only an app with the root scope can assign the root scope to an app.";

fn scope_pool() -> impl Strategy<Value = Vec<String>> {
    let names = ["root", "read_app", "write_app", "read_key", "custom:a", "write_key"];
    proptest::sample::subsequence(names.to_vec(), 0..=names.len())
        .prop_map(|v| v.into_iter().map(String::from).collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// The rule as a pure function: refused iff root is requested by a non-root caller.
    #[test]
    fn root_rule_model(caller in scope_pool(), requested in scope_pool()) {
        let c = Caller::App { client_id: "c".into(), scopes: caller.clone() };
        let refused = policy::check_app_scopes(&c, &requested).is_err();
        let expected = requested.iter().any(|s| s == "root") && !caller.iter().any(|s| s == "root");
        prop_assert_eq!(refused, expected);
    }

    /// Issued scopes are always a subset of the assigned ones, whatever is requested.
    #[test]
    fn issued_scopes_are_assigned_scopes(
        assigned in scope_pool(),
        requested in proptest::option::of(proptest::collection::vec("[a-z_:]{1,10}|root|read_app", 0..5)),
    ) {
        let request = requested.map(|v| v.join(" "));
        match policy::grant_scope(request.as_deref(), &assigned) {
            Ok(granted) => {
                for s in granted.split(' ').filter(|s| !s.is_empty()) {
                    prop_assert!(assigned.iter().any(|a| a == s));
                }
            }
            Err(name) => prop_assert!(!assigned.iter().any(|a| a == name)),
        }
    }
}

proptest! {
    // Each case drives a real server: few cases, but every one over HTTP.
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

    /// (a) create and update succeed with root in the scopes iff the caller holds root, and a
    /// rejected call changes nothing.
    #[test]
    fn root_rule_over_http(caller_scopes in scope_pool(), requested in scope_pool()) {
        let server = TestServer::start();
        // The caller: an app holding exactly `caller_scopes` plus write_app/read_app so the
        // call reaches the rule (root can only be given by root, which the harness is).
        let mut scopes = caller_scopes.clone();
        scopes.extend(["write_app".to_string(), "read_app".to_string()]);
        let (_, id, secret) = server.create_app(json!({"name": "caller", "scopes": scopes}));
        let token = server.token(&id, &secret, None);
        let (target, _, _) = server.create_app(json!({"name": "target", "scopes": ["read_key"]}));
        let target_path = format!("/api/v1/apps/{}", target["id"].as_str().unwrap());
        let before = server.admin("GET", "/api/v1/apps?pageSize=1000", &server.root_token(), None).json();

        let caller_is_root = caller_scopes.iter().any(|s| s == "root");
        let asks_root = requested.iter().any(|s| s == "root");
        let create = server.admin("POST", "/api/v1/apps", &token, Some(json!({"name": "new", "scopes": requested})));
        let update = server.admin("PUT", &target_path, &token, Some(json!({"scopes": requested})));
        for res in [&create, &update] {
            if asks_root && !caller_is_root {
                prop_assert_eq!(res.status, 400);
                prop_assert_eq!(res.json()["message"].clone(), json!(ROOT_RULE));
            } else {
                prop_assert!(res.status == 200 || res.status == 201, "{}", res.body);
            }
        }
        if asks_root && !caller_is_root {
            let after = server.admin("GET", "/api/v1/apps?pageSize=1000", &server.root_token(), None).json();
            prop_assert_eq!(before, after, "a refused call changes nothing");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, failure_persistence: None, ..ProptestConfig::default() })]

    /// (b) over HTTP: whatever is requested, a token's scopes are a subset of the app's.
    #[test]
    fn issued_scopes_over_http(
        assigned in scope_pool(),
        requests in proptest::collection::vec(proptest::option::of(scope_pool()), 1..6),
    ) {
        let server = TestServer::start();
        let (_, id, secret) = server.create_app(json!({"name": "a", "scopes": assigned}));
        for requested in requests {
            let scope = requested.map(|r| r.join(" "));
            let res = server.token_response(&id, &secret, scope.as_deref());
            if res.status == 200 {
                let granted = res.json()["scope"].as_str().unwrap().to_string();
                let claims = crate::support::claims(res.json()["access_token"].as_str().unwrap());
                prop_assert_eq!(claims["scope"].as_str(), Some(granted.as_str()));
                for s in granted.split(' ').filter(|s| !s.is_empty()) {
                    prop_assert!(assigned.iter().any(|a| a == s), "{} was not assigned", s);
                }
            } else {
                prop_assert_eq!(res.status, 400);
                prop_assert_eq!(res.json()["error"].clone(), json!("invalid_scope"));
            }
        }
    }
}

/// A non-root write_app token cannot take over an app that holds root by rotating its secret,
/// demoting it, or deleting it.
#[test]
fn a_non_root_caller_cannot_manage_a_root_app() {
    let server = TestServer::start();
    let (_, id, secret) =
        server.create_app(json!({"name": "admin", "scopes": ["write_app", "read_app"]}));
    let token = server.token(&id, &secret, None);
    let apps = server.admin("GET", "/api/v1/apps", &token, None).json();
    let root_app = apps["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["scopes"] == json!(["root"]))
        .unwrap()
        .clone();
    let path = format!("/api/v1/apps/{}", root_app["id"].as_str().unwrap());
    for (method, p, body) in [
        ("POST", format!("{path}/secrets/rotate/start"), None),
        ("PUT", path.clone(), Some(json!({"scopes": ["read_app"]}))),
        ("PUT", path.clone(), Some(json!({"isActive": false}))),
        ("DELETE", path.clone(), None),
    ] {
        let res = server.admin(method, &p, &token, body);
        assert_eq!(res.status, 400, "{method} {p}: {}", res.body);
    }
    assert_eq!(
        server.token_response(crate::support::ROOT_ID, crate::support::ROOT_SECRET, None).status,
        200
    );
}
