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
    assert_eq!(list["count"], tessera_core::policy::BUILT_IN_SCOPES.len());

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
    RenameRole(usize, &'static str),
    DeleteRole(usize),
    CreateApp(Vec<&'static str>),
    UpdateAppScopes(usize, Vec<&'static str>),
    /// Starts a secret rotation: the answer's `nextSecret` is a credential of the app.
    RotateSecret(usize),
    /// Sets a `publicKeyJwk` whose private key the caller has: a credential of the app.
    SetKey(usize),
    /// Invites a user: the invitation token lets the caller sign in as it.
    Invite(Vec<&'static str>),
    /// Turns a user off (the privileged one is refused).
    DeactivateUser(usize),
    /// Gives a user these roles (names of built-in or generated roles).
    SetUserRoles(usize, Vec<&'static str>),
    DeleteUser(usize),
}

/// The configured `default_role`: one of the names the operator may create or rename a role to.
const DEFAULT_ROLE: &str = "x";
const NAMES: [&str; 7] =
    ["root", "write_app", DEFAULT_ROLE, "y", "super_admin", "z:1", "root:extra"];
const ROLES: [&str; 6] = ["super_admin", "consumer", DEFAULT_ROLE, "y", "team", "vip"];
/// The operator: every write scope but root, and one custom scope it may hand on.
const OPERATOR: [&str; 9] = [
    "read_scope",
    "write_scope",
    "read_role",
    "write_role",
    "read_app",
    "write_app",
    "read_user",
    "write_user",
    DEFAULT_ROLE,
];

fn op() -> impl Strategy<Value = Op> {
    let name = proptest::sample::select(NAMES.to_vec());
    let names = proptest::sample::subsequence(NAMES.to_vec(), 0..3);
    let roles = proptest::sample::subsequence(ROLES.to_vec(), 0..3);
    prop_oneof![
        1 => name.clone().prop_map(Op::CreateScope),
        1 => (0usize..5, name.clone()).prop_map(|(i, n)| Op::RenameScope(i, n)),
        1 => (0usize..5).prop_map(Op::DeleteScope),
        1 => (name.clone(), names.clone(), any::<bool>()).prop_map(|(n, s, p)| Op::CreateRole(n, s, p)),
        1 => (0usize..4, names.clone()).prop_map(|(i, s)| Op::UpdateRole(i, s)),
        2 => (0usize..5, name).prop_map(|(i, n)| Op::RenameRole(i, n)),
        1 => (0usize..4).prop_map(Op::DeleteRole),
        1 => names.clone().prop_map(Op::CreateApp),
        1 => (0usize..5, names).prop_map(|(i, s)| Op::UpdateAppScopes(i, s)),
        1 => (0usize..5).prop_map(Op::RotateSecret),
        1 => (0usize..5).prop_map(Op::SetKey),
        1 => roles.clone().prop_map(Op::Invite),
        1 => (0usize..3).prop_map(Op::DeactivateUser),
        2 => (0usize..3, roles).prop_map(|(i, r)| Op::SetUserRoles(i, r)),
        1 => (0usize..3).prop_map(Op::DeleteUser),
    ]
}

fn ids(list: &Value, key: &str) -> Vec<String> {
    list[key]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["builtIn"] != true)
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

fn find<'v>(list: &'v Value, key: &str, field: &str, value: &str) -> Option<&'v Value> {
    list[key].as_array().unwrap().iter().find(|v| v[field] == value)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

/// What of the privileged user the invariants watch: whether it exists, whether it is active,
/// and its roles by id (a role's rename changes only the name the user holds it by).
fn boss_state(users: &Value, roles: &Value, auth_id: &str) -> Value {
    let Some(user) = find(users, "users", "authId", auth_id) else { return Value::Null };
    let mut held: Vec<Value> = strings(&user["roles"])
        .iter()
        .map(|name| find(roles, "roles", "name", name).map_or(Value::Null, |r| r["id"].clone()))
        .collect();
    held.sort_by_key(Value::to_string);
    json!({"isActive": user["isActive"], "roles": held})
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, failure_persistence: None, ..ProptestConfig::default() })]

    /// No path to root: whatever a non-root caller does with scopes, roles, apps and users,
    /// no app but the root app and no role ever holds `root`, no role becomes privileged and
    /// root's privileged role never changes, no scope or role takes a built-in name, the root app never
    /// changes (it holds a custom scope too, which renames and deletions may pick), a user
    /// holding `super_admin` keeps its roles and state, and no other user gets a privileged
    /// role. With `strict_delegation`, nothing the caller can act as (its own app, apps whose
    /// secret or key it has, users it invited, the default role anyone registers into) ever
    /// holds a scope the caller lacks.
    #[test]
    fn no_path_to_root(strict in any::<bool>(), ops in proptest::collection::vec(op(), 1..14)) {
        let server = TestServer::start_with(|c| {
            c.strict_delegation = strict;
            c.default_role = DEFAULT_ROLE.into();
        });
        let (operator, op_id, op_secret) = server.create_app(json!({"name": "operator", "scopes": OPERATOR}));
        let op_token = server.token(&op_id, &op_secret, None);
        let root = server.root_token();
        for name in ["root:extra", "vip:s", "y", DEFAULT_ROLE] {
            prop_assert_eq!(server.admin("POST", "/api/v1/scopes", &root, Some(json!({"name": name}))).status, 201);
        }
        let vip = server.admin("POST", "/api/v1/roles", &root, Some(json!({"name": "vip", "privileged": true, "scopes": ["vip:s"]})));
        prop_assert_eq!(vip.status, 201, "{}", vip.body);
        let vip = vip.json()["role"].clone();
        for (name, scopes) in [("team", ["y"]), ("y", [DEFAULT_ROLE])] {
            let res = server.admin("POST", "/api/v1/roles", &root, Some(json!({"name": name, "scopes": scopes})));
            prop_assert_eq!(res.status, 201, "{}", res.body);
        }
        server.create_app(json!({"name": "payroll", "scopes": ["y"]}));
        let apps = server.admin("GET", "/api/v1/apps", &root, None).json();
        let root_app = find(&apps, "apps", "clientId", crate::support::ROOT_ID).unwrap().clone();
        let root_path = format!("/api/v1/apps/{}", root_app["id"].as_str().unwrap());
        let res = server.admin("PUT", &root_path, &root, Some(json!({"scopes": ["root", "root:extra"]})));
        prop_assert_eq!(res.status, 200, "{}", res.body);
        let root_app = res.json()["app"].clone();
        // users[0] holds super_admin and an ordinary role; users[1] is an ordinary user.
        let mut users = Vec::new();
        for (name, roles) in [("boss", json!(["super_admin", "team"])), ("pat", json!(["consumer"]))] {
            let invite = json!({"email": format!("{name}@example.com"), "username": name, "roles": roles});
            let res = server.admin("POST", "/api/v1/users/invitations", &root, Some(invite));
            prop_assert_eq!(res.status, 201, "{}", res.body);
            let auth_id = res.json()["user"]["authId"].as_str().unwrap().to_string();
            let res = server.admin("PUT", &format!("/api/v1/users/{auth_id}"), &root, Some(json!({"isActive": true})));
            prop_assert_eq!(res.status, 200, "{}", res.body);
            users.push(auth_id);
        }
        // users[2] is the caller's own invitee: the caller can sign in as it.
        let invite = json!({"email": "new@example.com", "roles": ["consumer"]});
        let res = server.admin("POST", "/api/v1/users/invitations", &op_token, Some(invite));
        prop_assert_eq!(res.status, 201, "{}", res.body);
        users.push(res.json()["user"]["authId"].as_str().unwrap().to_string());
        let list = |path: &str| server.admin("GET", path, &server.root_token(), None).json();
        let boss_before = boss_state(&list("/api/v1/users?pageSize=1000"), &list("/api/v1/roles?pageSize=1000"), &users[0]);
        // What the caller can act as: apps by id, users by auth id.
        let mut reach_apps = vec![operator["id"].as_str().unwrap().to_string()];
        let mut reach_users = vec![users[2].clone()];
        let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        for o in ops {
            let scopes = server.admin("GET", "/api/v1/scopes?pageSize=1000", &op_token, None).json();
            let roles = server.admin("GET", "/api/v1/roles?pageSize=1000", &op_token, None).json();
            let apps = server.admin("GET", "/api/v1/apps?pageSize=1000", &op_token, None).json();
            let (scope_ids, role_ids, app_ids) = (ids(&scopes, "scopes"), ids(&roles, "roles"), ids(&apps, "apps"));
            let pick = |v: &[String], i: usize| v.get(i % v.len().max(1)).cloned();
            let user_path = |i: usize| format!("/api/v1/users/{}", users[i % users.len()]);
            let app_path = |i: usize| pick(&app_ids, i).map(|id| format!("/api/v1/apps/{id}"));
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
                Op::RenameRole(i, n) => if let Some(id) = pick(&role_ids, i) {
                    server.admin("PUT", &format!("/api/v1/roles/{id}"), &op_token, Some(json!({"name": n})));
                },
                Op::DeleteRole(i) => if let Some(id) = pick(&role_ids, i) {
                    server.admin("DELETE", &format!("/api/v1/roles/{id}"), &op_token, None);
                },
                Op::CreateApp(s) => {
                    let res = server.admin("POST", "/api/v1/apps", &op_token, Some(json!({"name": "a", "scopes": s})));
                    if res.status == 201 {
                        reach_apps.push(res.json()["app"]["id"].as_str().unwrap().to_string());
                    }
                }
                Op::UpdateAppScopes(i, s) => if let Some(path) = app_path(i) {
                    server.admin("PUT", &path, &op_token, Some(json!({"scopes": s})));
                },
                Op::RotateSecret(i) => if let Some(path) = app_path(i) {
                    let res = server.admin("POST", &format!("{path}/secrets/rotate/start"), &op_token, None);
                    if res.status == 200 {
                        reach_apps.push(res.json()["app"]["id"].as_str().unwrap().to_string());
                    }
                },
                Op::SetKey(i) => if let Some(path) = app_path(i) {
                    let res = server.admin("PUT", &path, &op_token, Some(json!({"publicKeyJwk": crate::support::jwk(&key)})));
                    if res.status == 200 {
                        reach_apps.push(res.json()["app"]["id"].as_str().unwrap().to_string());
                    }
                },
                Op::Invite(r) => {
                    let email = format!("u{}@example.com", users.len());
                    let res = server.admin("POST", "/api/v1/users/invitations", &op_token, Some(json!({"email": email, "roles": r})));
                    if res.status == 201 {
                        let auth_id = res.json()["user"]["authId"].as_str().unwrap().to_string();
                        reach_users.push(auth_id.clone());
                        users.push(auth_id);
                    }
                }
                Op::DeactivateUser(i) => { server.admin("PUT", &user_path(i), &op_token, Some(json!({"isActive": false}))); }
                Op::SetUserRoles(i, r) => { server.admin("PUT", &user_path(i), &op_token, Some(json!({"roles": r}))); }
                Op::DeleteUser(i) => { server.admin("DELETE", &user_path(i), &op_token, None); }
            }
            let scopes = list("/api/v1/scopes?pageSize=1000");
            for s in scopes["scopes"].as_array().unwrap().iter().filter(|s| s["builtIn"] == false) {
                prop_assert!(!tessera_core::policy::is_built_in_scope(s["name"].as_str().unwrap()));
            }
            let roles = list("/api/v1/roles?pageSize=1000");
            for r in roles["roles"].as_array().unwrap().iter().filter(|r| r["builtIn"] == false) {
                prop_assert!(!strings(&r["scopes"]).contains(&"root".to_string()), "role {} holds root", r);
                prop_assert!(!tessera_core::policy::is_built_in_role(r["name"].as_str().unwrap()));
                if r["id"] == vip["id"] {
                    prop_assert_eq!(r, &vip, "a non-root caller changed a privileged role");
                } else {
                    prop_assert_eq!(r["privileged"].clone(), json!(false), "a non-root caller made a privileged role");
                }
            }
            let apps = list("/api/v1/apps?pageSize=1000");
            let holders = apps["apps"].as_array().unwrap().iter().filter(|a| strings(&a["scopes"]).contains(&"root".to_string())).count();
            prop_assert_eq!(holders, 1, "only the root app holds root");
            let root_now = find(&apps, "apps", "id", root_app["id"].as_str().unwrap()).cloned();
            prop_assert_eq!(root_now.as_ref(), Some(&root_app), "the root app changed");
            let all_users = list("/api/v1/users?pageSize=1000");
            prop_assert_eq!(boss_state(&all_users, &roles, &users[0]), boss_before.clone(), "a privileged user changed");
            let privileged = |name: &String| find(&roles, "roles", "name", name).is_some_and(|r| r["privileged"] == true);
            for u in all_users["users"].as_array().unwrap().iter().filter(|u| u["authId"] != users[0].as_str()) {
                prop_assert!(!strings(&u["roles"]).iter().any(privileged), "a user was made privileged: {}", u);
            }
            if strict {
                let lacks = |scopes: &[String]| scopes.iter().find(|s| !OPERATOR.contains(&s.as_str())).cloned();
                let role_scopes = |names: &[String]| -> Vec<String> {
                    names.iter().filter_map(|n| find(&roles, "roles", "name", n)).flat_map(|r| strings(&r["scopes"])).collect()
                };
                for id in &reach_apps {
                    if let Some(app) = find(&apps, "apps", "id", id) {
                        prop_assert_eq!(lacks(&strings(&app["scopes"])), None, "the caller can act as {}", app);
                    }
                }
                for id in &reach_users {
                    if let Some(user) = find(&all_users, "users", "authId", id) {
                        prop_assert_eq!(lacks(&role_scopes(&strings(&user["roles"]))), None, "the caller can sign in as {}", user);
                    }
                }
                prop_assert_eq!(lacks(&role_scopes(&[DEFAULT_ROLE.to_string()])), None, "anyone who registers gets the default role");
            }
        }
    }
}
