//! Scopes and roles (docs/api.md, Admin API, rule 3): built-ins fixed, custom ones managed, no path to root.

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::support::TestServer;

const BUILT_IN: &str = "Built-in scopes and roles cannot be created, renamed, updated or deleted.";

/// A non-root operator with every write scope but root.
fn operator(server: &TestServer) -> String {
    let scopes = ["read_scope", "write_scope", "read_role", "write_role", "read_app", "write_app"];
    let (_, id, secret) = server.create_app(json!({"name": "operator", "scopes": scopes}));
    server.token(&id, &secret, None)
}

#[test]
fn scopes_crud_with_built_ins_fixed() {
    let server = TestServer::start();
    let op = operator(&server);
    let list = server.admin("GET", "/api/v1/scopes", &op, None).json();
    let root =
        list["scopes"].as_array().unwrap().iter().find(|s| s["name"] == "root").unwrap().clone();
    assert_eq!(root["builtIn"], true);
    assert_eq!(list["count"], 13);

    let res = server.admin(
        "POST",
        "/api/v1/scopes",
        &op,
        Some(json!({"name": "read:settings", "note": "Stytch's M2M API"})),
    );
    assert_eq!(res.status, 201, "{}", res.body);
    let scope = res.json()["scope"].clone();
    assert_eq!(scope["builtIn"], false);
    let path = format!("/api/v1/scopes/{}", scope["id"].as_str().unwrap());
    assert_eq!(server.admin("GET", &path, &op, None).json()["scope"]["name"], "read:settings");
    assert_eq!(
        server.admin("POST", "/api/v1/scopes", &op, Some(json!({"name": "read:settings"}))).status,
        409
    );
    assert_eq!(
        server.admin("POST", "/api/v1/scopes", &op, Some(json!({"name": "a b"}))).status,
        400
    );

    for (method, path, body) in [
        ("POST", "/api/v1/scopes".to_string(), Some(json!({"name": "root"}))),
        ("POST", "/api/v1/scopes".to_string(), Some(json!({"name": "write_app"}))),
        ("PUT", path.clone(), Some(json!({"name": "root"}))),
        ("PUT", "/api/v1/scopes/read_app".to_string(), Some(json!({"note": "x"}))),
        ("DELETE", "/api/v1/scopes/root".to_string(), None),
    ] {
        let res = server.admin(method, &path, &op, body);
        assert_eq!(res.status, 400, "{method} {path}");
        assert_eq!(res.json()["message"], BUILT_IN);
    }
    // Even root cannot change a built-in.
    assert_eq!(
        server.admin("DELETE", "/api/v1/scopes/root", &server.root_token(), None).json()["message"],
        BUILT_IN
    );

    // read_scope can read but not write.
    let (_, id, secret) = server.create_app(json!({"name": "r", "scopes": ["read_scope"]}));
    let reader = server.token(&id, &secret, None);
    assert_eq!(server.admin("GET", &path, &reader, None).status, 200);
    let res = server.admin("POST", "/api/v1/scopes", &reader, Some(json!({"name": "q"})));
    assert_eq!(res.status, 403);
    assert_eq!(
        res.header("www-authenticate"),
        Some("Bearer error=\"insufficient_scope\", scope=\"write_scope\"")
    );
}

#[test]
fn renaming_or_deleting_a_scope_reaches_apps_and_roles() {
    let server = TestServer::start();
    let op = operator(&server);
    let scope = server
        .admin("POST", "/api/v1/scopes", &op, Some(json!({"name": "orders:read"})))
        .json()["scope"]
        .clone();
    let scope_path = format!("/api/v1/scopes/{}", scope["id"].as_str().unwrap());
    let (app, id, secret) =
        server.create_app(json!({"name": "svc", "scopes": ["orders:read", "read_app"]}));
    let role = server
        .admin(
            "POST",
            "/api/v1/roles",
            &op,
            Some(json!({"name": "clerk", "scopes": ["orders:read"]})),
        )
        .json()["role"]
        .clone();
    let role_path = format!("/api/v1/roles/{}", role["id"].as_str().unwrap());
    let app_path = format!("/api/v1/apps/{}", app["id"].as_str().unwrap());

    let res = server.admin("PUT", &scope_path, &op, Some(json!({"name": "orders:view"})));
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(
        server.admin("GET", &app_path, &op, None).json()["app"]["scopes"],
        json!(["orders:view", "read_app"])
    );
    assert_eq!(
        server.admin("GET", &role_path, &op, None).json()["role"]["scopes"],
        json!(["orders:view"])
    );
    assert_eq!(server.token_response(&id, &secret, None).json()["scope"], "orders:view read_app");

    assert_eq!(server.admin("DELETE", &scope_path, &op, None).status, 204);
    assert_eq!(server.admin("GET", &scope_path, &op, None).status, 404);
    assert_eq!(
        server.admin("GET", &app_path, &op, None).json()["app"]["scopes"],
        json!(["read_app"])
    );
    assert_eq!(server.admin("GET", &role_path, &op, None).json()["role"]["scopes"], json!([]));
    assert_eq!(
        server.token_response(&id, &secret, Some("orders:view")).json()["error"],
        "invalid_scope"
    );
}

#[test]
fn roles_crud_and_the_privilege_rules() {
    let server = TestServer::start();
    let op = operator(&server);
    let root = server.root_token();
    let roles = server.admin("GET", "/api/v1/roles", &op, None).json();
    let admin = roles["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "super_admin")
        .unwrap()
        .clone();
    assert_eq!((admin["privileged"].clone(), admin["builtIn"].clone()), (json!(true), json!(true)));

    let res = server.admin(
        "POST",
        "/api/v1/roles",
        &op,
        Some(json!({"name": "reader", "note": "n", "scopes": ["read_app"]})),
    );
    assert_eq!(res.status, 201, "{}", res.body);
    let reader = format!("/api/v1/roles/{}", res.json()["role"]["id"].as_str().unwrap());
    assert_eq!(
        server.admin("POST", "/api/v1/roles", &op, Some(json!({"name": "reader"}))).status,
        409
    );
    assert_eq!(
        server
            .admin("POST", "/api/v1/roles", &op, Some(json!({"name": "x", "scopes": ["nope"]})))
            .status,
        400
    );
    assert_eq!(
        server.admin("POST", "/api/v1/roles", &op, Some(json!({"name": "super_admin"}))).json()["message"],
        BUILT_IN
    );
    assert_eq!(
        server.admin("PUT", "/api/v1/roles/consumer", &op, Some(json!({"scopes": []}))).json()["message"],
        BUILT_IN
    );

    let res = server.admin(
        "POST",
        "/api/v1/roles",
        &op,
        Some(json!({"name": "god", "scopes": ["root"]})),
    );
    assert_eq!(
        res.json()["message"],
        "Only an app with the root scope can assign the root scope to a role."
    );
    let res = server.admin(
        "POST",
        "/api/v1/roles",
        &op,
        Some(json!({"name": "vip", "privileged": true})),
    );
    assert_eq!(
        res.json()["message"],
        "Only an app with the root scope can manage a privileged role."
    );
    // Root may; the role is then out of a non-root caller's reach.
    let res = server.admin(
        "POST",
        "/api/v1/roles",
        &root,
        Some(json!({"name": "vip", "privileged": true})),
    );
    assert_eq!(res.status, 201);
    let vip = format!("/api/v1/roles/{}", res.json()["role"]["id"].as_str().unwrap());
    assert_eq!(server.admin("PUT", &vip, &op, Some(json!({"privileged": false}))).status, 400);
    assert_eq!(server.admin("DELETE", &vip, &op, None).status, 400);
    assert_eq!(server.admin("PUT", &reader, &op, Some(json!({"privileged": true}))).status, 400);

    let res = server.admin(
        "PUT",
        &reader,
        &op,
        Some(json!({"name": "viewer", "scopes": ["read_app", "read_key"]})),
    );
    assert_eq!(res.json()["role"]["name"], "viewer");
    assert_eq!(server.admin("DELETE", &reader, &op, None).status, 204);
    assert_eq!(server.admin("GET", &reader, &op, None).status, 404);

    let (_, id, secret) = server.create_app(json!({"name": "r", "scopes": ["read_app"]}));
    let weak = server.token(&id, &secret, None);
    assert_eq!(server.admin("GET", "/api/v1/roles", &weak, None).status, 403);
    assert_eq!(
        server.admin("POST", "/api/v1/scopes", &weak, Some(json!({"name": "z"}))).status,
        403
    );
}

#[derive(Debug, Clone)]
enum Op {
    CreateScope(&'static str),
    RenameScope(usize, &'static str),
    DeleteScope(usize),
    CreateRole(&'static str, Vec<&'static str>, bool),
    UpdateRole(usize, Vec<&'static str>),
    CreateApp(Vec<&'static str>),
    /// Turns a user off (the privileged one is refused).
    DeactivateUser(usize),
    /// Gives a user these roles (names of built-in or generated roles).
    SetUserRoles(usize, Vec<&'static str>),
    DeleteUser(usize),
}

const NAMES: [&str; 7] = ["root", "write_app", "x", "y", "super_admin", "z:1", "root:extra"];

fn op() -> impl Strategy<Value = Op> {
    let name = proptest::sample::select(NAMES.to_vec());
    let names = proptest::sample::subsequence(NAMES.to_vec(), 0..3);
    let roles = proptest::sample::subsequence(vec!["super_admin", "consumer", "x", "y"], 0..3);
    prop_oneof![
        name.clone().prop_map(Op::CreateScope),
        (0usize..4, name.clone()).prop_map(|(i, n)| Op::RenameScope(i, n)),
        (0usize..4).prop_map(Op::DeleteScope),
        (name, names.clone(), any::<bool>()).prop_map(|(n, s, p)| Op::CreateRole(n, s, p)),
        (0usize..4, names.clone()).prop_map(|(i, s)| Op::UpdateRole(i, s)),
        names.prop_map(Op::CreateApp),
        (0usize..2).prop_map(Op::DeactivateUser),
        (0usize..2, roles).prop_map(|(i, r)| Op::SetUserRoles(i, r)),
        (0usize..2).prop_map(Op::DeleteUser),
    ]
}

fn ids(list: &Value, key: &str) -> Vec<String> {
    list[key]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["builtIn"] == false)
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

/// What of a user the invariants watch: its roles, whether it is active, whether it exists.
fn user_state(server: &TestServer, root: &str, auth_id: &str) -> (u16, Value, Value) {
    let res = server.admin("GET", &format!("/api/v1/users/{auth_id}"), root, None);
    let user = if res.status == 200 { res.json()["user"].clone() } else { Value::Null };
    (res.status, user["roles"].clone(), user["isActive"].clone())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, failure_persistence: None, ..ProptestConfig::default() })]

    /// No path to root: whatever a non-root caller does with scopes, roles, apps and users,
    /// no app but the root app and no role ever holds `root`, no role becomes privileged, no
    /// scope or role takes a built-in name, the root app's scopes never change (it holds a
    /// custom scope too, which renames and deletions may pick), and a user holding
    /// `super_admin` is never changed.
    #[test]
    fn no_path_to_root(ops in proptest::collection::vec(op(), 1..14)) {
        let server = TestServer::start();
        let op_token = {
            let scopes = ["read_scope", "write_scope", "read_role", "write_role", "read_app", "write_app", "read_user", "write_user"];
            let (_, id, secret) = server.create_app(json!({"name": "operator", "scopes": scopes}));
            server.token(&id, &secret, None)
        };
        let root = server.root_token();
        prop_assert_eq!(server.admin("POST", "/api/v1/scopes", &root, Some(json!({"name": "root:extra"}))).status, 201);
        let apps = server.admin("GET", "/api/v1/apps", &root, None).json();
        let root_app = apps["apps"].as_array().unwrap().iter().find(|a| a["clientId"] == crate::support::ROOT_ID).unwrap().clone();
        let root_path = format!("/api/v1/apps/{}", root_app["id"].as_str().unwrap());
        let root_scopes = json!(["root", "root:extra"]);
        prop_assert_eq!(server.admin("PUT", &root_path, &root, Some(json!({"scopes": root_scopes.clone()}))).status, 200);
        // users[0] holds super_admin; users[1] is an ordinary user.
        let mut users = Vec::new();
        for (name, roles) in [("boss", json!(["super_admin"])), ("pat", json!(["consumer"]))] {
            let invite = json!({"email": format!("{name}@example.com"), "username": name, "roles": roles});
            let res = server.admin("POST", "/api/v1/users/invitations", &root, Some(invite));
            prop_assert_eq!(res.status, 201, "{}", res.body);
            let auth_id = res.json()["user"]["authId"].as_str().unwrap().to_string();
            let res = server.admin("PUT", &format!("/api/v1/users/{auth_id}"), &root, Some(json!({"isActive": true})));
            prop_assert_eq!(res.status, 200, "{}", res.body);
            users.push(auth_id);
        }
        let boss_before = user_state(&server, &root, &users[0]);
        for o in ops {
            let scopes = server.admin("GET", "/api/v1/scopes", &op_token, None).json();
            let roles = server.admin("GET", "/api/v1/roles", &op_token, None).json();
            let (scope_ids, role_ids) = (ids(&scopes, "scopes"), ids(&roles, "roles"));
            let pick = |v: &[String], i: usize| v.get(i % v.len().max(1)).cloned();
            let user_path = |i: usize| format!("/api/v1/users/{}", users[i % users.len()]);
            match o {
                Op::CreateScope(n) => { server.admin("POST", "/api/v1/scopes", &op_token, Some(json!({"name": n}))); }
                Op::RenameScope(i, n) => if let Some(id) = pick(&scope_ids, i) {
                    server.admin("PUT", &format!("/api/v1/scopes/{id}"), &op_token, Some(json!({"name": n})));
                },
                Op::DeleteScope(i) => if let Some(id) = pick(&scope_ids, i) {
                    server.admin("DELETE", &format!("/api/v1/scopes/{id}"), &op_token, None);
                },
                Op::CreateRole(n, s, p) => { server.admin("POST", "/api/v1/roles", &op_token, Some(json!({"name": n, "scopes": s, "privileged": p}))); }
                Op::UpdateRole(i, s) => if let Some(id) = pick(&role_ids, i) {
                    server.admin("PUT", &format!("/api/v1/roles/{id}"), &op_token, Some(json!({"scopes": s})));
                },
                Op::CreateApp(s) => { server.admin("POST", "/api/v1/apps", &op_token, Some(json!({"name": "a", "scopes": s}))); }
                Op::DeactivateUser(i) => { server.admin("PUT", &user_path(i), &op_token, Some(json!({"isActive": false}))); }
                Op::SetUserRoles(i, r) => { server.admin("PUT", &user_path(i), &op_token, Some(json!({"roles": r}))); }
                Op::DeleteUser(i) => { server.admin("DELETE", &user_path(i), &op_token, None); }
            }
            let root = server.root_token();
            let scopes = server.admin("GET", "/api/v1/scopes", &root, None).json();
            for s in scopes["scopes"].as_array().unwrap().iter().filter(|s| s["builtIn"] == false) {
                prop_assert!(!tessera_actors::policy::is_built_in_scope(s["name"].as_str().unwrap()));
            }
            let roles = server.admin("GET", "/api/v1/roles", &root, None).json();
            for r in roles["roles"].as_array().unwrap().iter().filter(|r| r["builtIn"] == false) {
                prop_assert!(!r["scopes"].as_array().unwrap().contains(&json!("root")), "role {} holds root", r);
                prop_assert!(!tessera_actors::policy::is_built_in_role(r["name"].as_str().unwrap()));
                prop_assert_eq!(r["privileged"].clone(), json!(false), "a non-root caller made a privileged role");
            }
            let apps = server.admin("GET", "/api/v1/apps?pageSize=1000", &root, None).json();
            let holders = apps["apps"].as_array().unwrap().iter().filter(|a| a["scopes"].as_array().unwrap().contains(&json!("root"))).count();
            prop_assert_eq!(holders, 1, "only the root app holds root");
            let now_scopes = server.admin("GET", &root_path, &root, None).json()["app"]["scopes"].clone();
            prop_assert_eq!(&now_scopes, &root_scopes, "the root app's scopes changed");
            prop_assert_eq!(user_state(&server, &root, &users[0]), boss_before.clone(), "a privileged user changed");
            let (_, pat_roles, _) = user_state(&server, &root, &users[1]);
            prop_assert!(!pat_roles.as_array().is_some_and(|r| r.contains(&json!("super_admin"))), "a user was made privileged");
        }
    }
}
