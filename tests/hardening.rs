//! Issue 8, privileged targets, strict delegation and registration (docs/api.md, Escalation
//! rules, Users, Scopes, Service API, `POST /consumer/register`).

use serde_json::{Value, json};

use crate::support::{ROOT_ID, Resp, TestServer, jwk};

const PRIVILEGED_USER: &str =
    "Only an app with the root scope can change a user with a privileged role.";
const RULE_2: &str = "Only an app with the root scope can assign a privileged role.";
const ROOT_APP_SCOPE: &str = "Only an app with the root scope can rename or delete a scope held by an app with the root scope.";
const STRICT: &str =
    "With strict_delegation on, a caller without the root scope can grant only scopes it holds.";

fn token_with(server: &TestServer, scopes: &[&str]) -> String {
    let (_, id, secret) = server.create_app(json!({"name": "caller", "scopes": scopes}));
    server.token(&id, &secret, None)
}

fn service(server: &TestServer) -> String {
    let res = server.admin(
        "POST",
        "/api/v1/services",
        &server.root_token(),
        Some(json!({"name": "acme"})),
    );
    assert_eq!(res.status, 201, "{}", res.body);
    res.json()["apiKey"].as_str().unwrap().to_string()
}

fn user(server: &TestServer, auth_id: &str) -> Value {
    let res = server.admin("GET", &format!("/api/v1/users/{auth_id}"), &server.root_token(), None);
    assert_eq!(res.status, 200, "{}", res.body);
    res.json()["user"].clone()
}

fn refused_with(res: &Resp, message: &str) {
    assert_eq!(res.status, 400, "{}", res.body);
    assert_eq!(res.json()["message"], message);
}

#[test]
fn issue_8_a_non_root_caller_cannot_change_a_privileged_user() {
    let server = TestServer::start();
    let root = server.root_token();
    let res = server.admin(
        "POST",
        "/api/v1/roles",
        &root,
        Some(json!({"name": "vip", "privileged": true})),
    );
    assert_eq!(res.status, 201, "{}", res.body);
    let op = token_with(&server, &["read_user", "write_user"]);
    let mut privileged = Vec::new();
    for (name, role) in [("boss", "super_admin"), ("star", "vip")] {
        let id = server.register(name).json()["user"]["authId"].as_str().unwrap().to_string();
        let body = Some(json!({"roles": [role]}));
        assert_eq!(server.admin("PUT", &format!("/api/v1/users/{id}"), &root, body).status, 200);
        privileged.push(id);
    }
    for id in &privileged {
        let path = format!("/api/v1/users/{id}");
        let before = user(&server, id);
        refused_with(
            &server.admin("PUT", &path, &op, Some(json!({"isActive": false}))),
            PRIVILEGED_USER,
        );
        refused_with(
            &server.admin("PUT", &path, &op, Some(json!({"roles": ["consumer"]}))),
            PRIVILEGED_USER,
        );
        refused_with(&server.admin("PUT", &path, &op, Some(json!({"roles": []}))), PRIVILEGED_USER);
        refused_with(
            &server.admin("PUT", &path, &op, Some(json!({"roles": ["super_admin"]}))),
            RULE_2,
        );
        refused_with(&server.admin("DELETE", &path, &op, None), PRIVILEGED_USER);
        assert_eq!(user(&server, id), before, "a refused change changes nothing");
        let res =
            server.admin("PUT", &path, &op, Some(json!({"firstName": "Kim", "isActive": true})));
        assert_eq!(res.status, 200, "names stay editable: {}", res.body);
    }
    // A user without a privileged role is write_user's to change; root may change anyone.
    let plain = server.register("plain").json()["user"]["authId"].as_str().unwrap().to_string();
    let body = Some(json!({"isActive": false}));
    assert_eq!(
        server.admin("PUT", &format!("/api/v1/users/{plain}"), &op, body.clone()).status,
        200
    );
    let boss = format!("/api/v1/users/{}", privileged[0]);
    assert_eq!(server.admin("PUT", &boss, &root, body).status, 200);
    assert_eq!(server.admin("DELETE", &boss, &root, None).status, 204);

    // A service is never root.
    let key = service(&server);
    let res = server.service_call(
        &key,
        "POST",
        "/api/service/users",
        Some(json!({"email": "s@example.com"})),
    );
    let id = res.json()["user"]["user_id"].as_str().unwrap().to_string();
    let body = Some(json!({"roles": ["super_admin"]}));
    assert_eq!(server.admin("PUT", &format!("/api/v1/users/{id}"), &root, body).status, 200);
    let before = user(&server, &id);
    let path = format!("/api/service/users/{id}");
    refused_with(
        &server.service_call(&key, "PATCH", &path, Some(json!({"is_active": false}))),
        PRIVILEGED_USER,
    );
    refused_with(&server.service_call(&key, "DELETE", &path, None), PRIVILEGED_USER);
    assert_eq!(user(&server, &id), before);
    let res = server.service_call(&key, "PATCH", &path, Some(json!({"first_name": "Sam"})));
    assert_eq!(res.status, 200, "{}", res.body);
}

#[test]
fn issue_8_a_scope_held_by_a_root_app_is_roots_to_rename_or_delete() {
    let server = TestServer::start();
    let root = server.root_token();
    let op = token_with(&server, &["read_scope", "write_scope", "read_app"]);
    let mut ids = Vec::new();
    for name in ["ops:x", "ops:free"] {
        let res = server.admin("POST", "/api/v1/scopes", &root, Some(json!({"name": name})));
        ids.push(res.json()["scope"]["id"].as_str().unwrap().to_string());
    }
    let apps = server.admin("GET", "/api/v1/apps", &root, None).json();
    let root_app =
        apps["apps"].as_array().unwrap().iter().find(|a| a["clientId"] == ROOT_ID).unwrap().clone();
    let root_path = format!("/api/v1/apps/{}", root_app["id"].as_str().unwrap());
    let body = Some(json!({"scopes": ["root", "ops:x"]}));
    assert_eq!(server.admin("PUT", &root_path, &root, body).status, 200);
    let root_scopes =
        || server.admin("GET", &root_path, &root, None).json()["app"]["scopes"].clone();

    let held = format!("/api/v1/scopes/{}", ids[0]);
    refused_with(&server.admin("PUT", &held, &op, Some(json!({"name": "ops:y"}))), ROOT_APP_SCOPE);
    refused_with(&server.admin("DELETE", &held, &op, None), ROOT_APP_SCOPE);
    assert_eq!(root_scopes(), json!(["root", "ops:x"]));
    assert_eq!(server.admin("GET", &held, &op, None).json()["scope"]["name"], "ops:x");
    assert_eq!(server.admin("PUT", &held, &op, Some(json!({"note": "n"}))).status, 200);
    let free = format!("/api/v1/scopes/{}", ids[1]);
    assert_eq!(server.admin("PUT", &free, &op, Some(json!({"name": "ops:open"}))).status, 200);

    assert_eq!(server.admin("PUT", &held, &root, Some(json!({"name": "ops:y"}))).status, 200);
    assert_eq!(root_scopes(), json!(["root", "ops:y"]));
    assert_eq!(server.admin("DELETE", &held, &server.root_token(), None).status, 204);
    assert_eq!(root_scopes(), json!(["root"]));
}

#[test]
fn issue_8_strict_delegation_grants_only_held_scopes() {
    let server = TestServer::start_with(|c| c.strict_delegation = true);
    let root = server.root_token();
    for name in ["a", "b"] {
        assert_eq!(
            server.admin("POST", "/api/v1/scopes", &root, Some(json!({"name": name}))).status,
            201
        );
    }
    let op = token_with(&server, &["read_app", "write_app", "read_role", "write_role", "a"]);
    let info = server.admin("GET", "/info", &op, None).json();
    assert_eq!(info["configs"]["features"]["strictDelegation"], true);

    let (target, _, _) = server.create_app(json!({"name": "t", "scopes": ["b"]}));
    let target_path = format!("/api/v1/apps/{}", target["id"].as_str().unwrap());
    let apps_before = server.admin("GET", "/api/v1/apps?pageSize=1000", &root, None).json();
    for scopes in [json!(["a", "b"]), json!(["write_key"]), json!(["read_app", "write_role", "c"])]
    {
        let body = json!({"name": "n", "scopes": scopes});
        refused_with(&server.admin("POST", "/api/v1/apps", &op, Some(body)), STRICT);
    }
    let body = Some(json!({"scopes": ["b", "read_key"]}));
    refused_with(&server.admin("PUT", &target_path, &op, body), STRICT);
    let apps_after = server.admin("GET", "/api/v1/apps?pageSize=1000", &root, None).json();
    assert_eq!(apps_before, apps_after, "a refused change changes nothing");
    let res = server.admin(
        "POST",
        "/api/v1/apps",
        &op,
        Some(json!({"name": "n", "scopes": ["a", "read_app"]})),
    );
    assert_eq!(res.status, 201, "{}", res.body);
    // Keeping a scope the target already holds grants nothing.
    let res = server.admin("PUT", &target_path, &op, Some(json!({"scopes": ["b", "a"]})));
    assert_eq!(res.status, 200, "{}", res.body);

    refused_with(
        &server.admin("POST", "/api/v1/roles", &op, Some(json!({"name": "r", "scopes": ["b"]}))),
        STRICT,
    );
    let res =
        server.admin("POST", "/api/v1/roles", &op, Some(json!({"name": "r", "scopes": ["a"]})));
    assert_eq!(res.status, 201, "{}", res.body);
    let role_path = format!("/api/v1/roles/{}", res.json()["role"]["id"].as_str().unwrap());
    refused_with(
        &server.admin("PUT", &role_path, &op, Some(json!({"scopes": ["a", "b"]}))),
        STRICT,
    );
    assert_eq!(server.admin("GET", &role_path, &op, None).json()["role"]["scopes"], json!(["a"]));
    // Root grants anything.
    assert_eq!(
        server.admin("PUT", &role_path, &root, Some(json!({"scopes": ["a", "b"]}))).status,
        200
    );

    // Off by default: as before, write_app hands out any scope but root.
    let server = TestServer::start();
    let op = token_with(&server, &["write_app"]);
    assert_eq!(
        server.admin("GET", "/info", &op, None).json()["configs"]["features"]["strictDelegation"],
        false
    );
    let res = server.admin(
        "POST",
        "/api/v1/apps",
        &op,
        Some(json!({"name": "n", "scopes": ["write_key"]})),
    );
    assert_eq!(res.status, 201, "{}", res.body);
}

#[test]
fn issue_8_a_taken_name_is_refused_before_the_password_is_hashed() {
    let server = TestServer::start();
    assert_eq!(server.register("ada").status, 201);
    let hashed = server.passwords.computed();
    assert_eq!(hashed, 1);
    for body in [
        json!({"username": "ada", "email": "other@example.com", "password": "correct horse"}),
        json!({"username": "other", "email": "ADA@example.com", "password": "correct horse"}),
    ] {
        let res = server.post_json("/consumer/register", body);
        assert_eq!(res.status, 409, "{}", res.body);
        assert_eq!(res.json()["message"], "a user with that username or email already exists");
    }
    let res = server.post_json(
        "/consumer/register",
        json!({"username": "x", "email": "x@example.com", "password": "correct horse"}),
    );
    assert_eq!(res.status, 400);
    let key = service(&server);
    let body = json!({"email": "ada@example.com", "password": "correct horse"});
    assert_eq!(server.service_call(&key, "POST", "/api/service/users", Some(body)).status, 409);
    assert_eq!(server.passwords.computed(), hashed, "no hash for a refused name");
    assert_eq!(server.register("bob").status, 201);
    assert_eq!(server.passwords.computed(), hashed + 1);
}

const APP_CREDENTIAL: &str = "With strict_delegation on, a caller without the root scope can start a secret rotation of, or set the publicKeyJwk, a client certificate or a federated identity of, only an app whose scopes it holds.";
const SCOPE_RENAME: &str = "With strict_delegation on, only an app with the root scope can rename a scope that apps or roles hold.";
const PRIVILEGED_ROLE: &str = "Only an app with the root scope can manage a privileged role.";

/// Creates a custom scope as root; answers its path.
fn scope(server: &TestServer, name: &str) -> String {
    let res =
        server.admin("POST", "/api/v1/scopes", &server.root_token(), Some(json!({"name": name})));
    assert_eq!(res.status, 201, "{}", res.body);
    format!("/api/v1/scopes/{}", res.json()["scope"]["id"].as_str().unwrap())
}

/// Creates a role with `token`; answers its path.
fn role(server: &TestServer, token: &str, body: Value) -> String {
    let res = server.admin("POST", "/api/v1/roles", token, Some(body));
    assert_eq!(res.status, 201, "{}", res.body);
    format!("/api/v1/roles/{}", res.json()["role"]["id"].as_str().unwrap())
}

/// Everything a refusal must leave as it was.
fn registry(server: &TestServer) -> Value {
    let root = server.root_token();
    let list = |path: &str| server.admin("GET", path, &root, None).json();
    json!({
        "apps": list("/api/v1/apps?pageSize=1000"),
        "scopes": list("/api/v1/scopes?pageSize=1000"),
        "roles": list("/api/v1/roles?pageSize=1000"),
        "users": list("/api/v1/users?pageSize=1000"),
    })
}

#[test]
fn issue_8_strict_delegation_keeps_an_apps_credentials_from_a_caller_lacking_its_scopes() {
    let server = TestServer::start_with(|c| c.strict_delegation = true);
    let root = server.root_token();
    let op = token_with(&server, &["read_app", "write_app", "a"]);
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let (target, _, _) = server.create_app(json!({"name": "payroll", "scopes": ["a", "b"]}));
    let path = format!("/api/v1/apps/{}", target["id"].as_str().unwrap());
    let start = format!("{path}/secrets/rotate/start");

    let before = registry(&server);
    refused_with(&server.admin("POST", &start, &op, None), APP_CREDENTIAL);
    refused_with(
        &server.admin("PUT", &path, &op, Some(json!({"publicKeyJwk": jwk(&key)}))),
        APP_CREDENTIAL,
    );
    // Keeping `b` while setting the key still hands the caller `b`.
    let body = json!({"scopes": ["a", "b"], "publicKeyJwk": jwk(&key)});
    refused_with(&server.admin("PUT", &path, &op, Some(body)), APP_CREDENTIAL);
    assert_eq!(registry(&server), before, "a refused change changes nothing");

    // What gives the caller no credential of the app stays open.
    for body in [
        json!({"isActive": false}),
        json!({"isActive": true, "grantTypes": ["client_credentials", "refresh_token"]}),
        json!({"publicKeyJwk": null, "name": "payroll2"}),
    ] {
        let res = server.admin("PUT", &path, &op, Some(body));
        assert_eq!(res.status, 200, "{}", res.body);
    }
    let res = server.admin("POST", &start, &root, None);
    assert!(res.json()["nextSecret"].is_string(), "{}", res.body);
    let res = server.admin("POST", &format!("{path}/secrets/rotate/cancel"), &op, None);
    assert_eq!(res.status, 200, "cancelling shows no secret: {}", res.body);

    // Once the app holds only what the caller holds, its credentials are the caller's to set.
    let body = json!({"scopes": ["a"], "publicKeyJwk": jwk(&key)});
    let res = server.admin("PUT", &path, &op, Some(body));
    assert_eq!(res.status, 200, "{}", res.body);
    let res = server.admin("POST", &start, &op, None);
    assert!(res.json()["nextSecret"].is_string(), "{}", res.body);

    // Off by default: as before.
    let server = TestServer::start();
    let op = token_with(&server, &["write_app"]);
    let (target, _, _) = server.create_app(json!({"name": "payroll", "scopes": ["b"]}));
    let path = format!("/api/v1/apps/{}", target["id"].as_str().unwrap());
    let res = server.admin("POST", &format!("{path}/secrets/rotate/start"), &op, None);
    assert_eq!(res.status, 200, "{}", res.body);
}

#[test]
fn issue_8_strict_delegation_refuses_renaming_a_scope_that_apps_or_roles_hold() {
    let server = TestServer::start_with(|c| c.strict_delegation = true);
    let root = server.root_token();
    let (reports, role_only, unused) =
        (scope(&server, "reports:read"), scope(&server, "role:only"), scope(&server, "unused"));
    let op = token_with(
        &server,
        &["read_app", "write_app", "write_scope", "write_role", "reports:read", "role:only"],
    );
    let res = server.admin(
        "POST",
        "/api/v1/apps",
        &op,
        Some(json!({"name": "mine", "scopes": ["reports:read"]})),
    );
    assert_eq!(res.status, 201, "{}", res.body);
    let (mine_id, mine_secret) = (
        res.json()["app"]["clientId"].as_str().unwrap().to_string(),
        res.json()["app"]["secret"].as_str().unwrap().to_string(),
    );
    role(&server, &op, json!({"name": "r", "scopes": ["role:only"]}));

    let before = registry(&server);
    for held in [&reports, &role_only] {
        let body = Some(json!({"name": "payroll:admin"}));
        refused_with(&server.admin("PUT", held, &op, body), SCOPE_RENAME);
    }
    assert_eq!(registry(&server), before, "a refused change changes nothing");
    assert_eq!(server.token_response(&mine_id, &mine_secret, None).json()["scope"], "reports:read");

    assert_eq!(server.admin("PUT", &reports, &op, Some(json!({"note": "n"}))).status, 200);
    let res = server.admin("PUT", &unused, &op, Some(json!({"name": "payroll:x"})));
    assert_eq!(res.status, 200, "a scope nobody holds grants nothing: {}", res.body);
    assert_eq!(server.admin("DELETE", &role_only, &op, None).status, 204, "removal grants nothing");
    let res = server.admin("PUT", &reports, &root, Some(json!({"name": "reports:view"})));
    assert_eq!(res.status, 200, "root renames anything: {}", res.body);
    assert_eq!(server.token_response(&mine_id, &mine_secret, None).json()["scope"], "reports:view");
}

#[test]
fn issue_8_strict_delegation_assigns_only_roles_whose_scopes_the_caller_holds() {
    let server = TestServer::start_with(|c| c.strict_delegation = true);
    let root = server.root_token();
    scope(&server, "a");
    scope(&server, "b");
    role(&server, &root, json!({"name": "ra", "scopes": ["a"]}));
    role(&server, &root, json!({"name": "rb", "scopes": ["b"]}));
    role(&server, &root, json!({"name": "rab", "scopes": ["a", "b"]}));
    let op = token_with(&server, &["read_user", "write_user", "a"]);
    let ada = server.register("ada").json()["user"]["authId"].as_str().unwrap().to_string();
    let path = format!("/api/v1/users/{ada}");

    let before = registry(&server);
    for roles in [json!(["rb"]), json!(["ra", "rab"])] {
        refused_with(&server.admin("PUT", &path, &op, Some(json!({"roles": roles}))), STRICT);
        let invite = json!({"email": "new@example.com", "roles": roles});
        refused_with(&server.admin("POST", "/api/v1/users/invitations", &op, Some(invite)), STRICT);
    }
    assert_eq!(registry(&server), before, "a refused change changes nothing");

    let res = server.admin("PUT", &path, &op, Some(json!({"roles": ["consumer", "ra"]})));
    assert_eq!(res.status, 200, "{}", res.body);
    let body = Some(json!({"roles": ["ra", "rb"]}));
    assert_eq!(server.admin("PUT", &path, &root, body).status, 200);
    // Keeping a role the user already holds assigns nothing.
    let res = server.admin("PUT", &path, &op, Some(json!({"roles": ["rb"], "firstName": "Ada"})));
    assert_eq!(res.status, 200, "{}", res.body);
    let invite = json!({"email": "new@example.com", "roles": ["ra"]});
    let res = server.admin("POST", "/api/v1/users/invitations", &op, Some(invite));
    assert_eq!(res.status, 201, "{}", res.body);
}

#[test]
fn issue_8_strict_delegation_guards_the_default_role() {
    let server = TestServer::start_with(|c| {
        c.strict_delegation = true;
        c.default_role = "starter".into();
    });
    let root = server.root_token();
    scope(&server, "a");
    scope(&server, "b");
    let op = token_with(&server, &["read_user", "write_user", "write_role", "a"]);
    let payroll = role(&server, &root, json!({"name": "payroll", "scopes": ["a", "b"]}));
    let helper = role(&server, &op, json!({"name": "helper", "scopes": ["a"]}));

    let before = registry(&server);
    let body = Some(json!({"name": "starter"}));
    refused_with(&server.admin("PUT", &payroll, &op, body), STRICT);
    let body = Some(json!({"name": "starter", "scopes": ["b"]}));
    refused_with(&server.admin("POST", "/api/v1/roles", &op, body), STRICT);
    assert_eq!(registry(&server), before, "a refused change changes nothing");
    assert_eq!(server.register("ada").json()["user"]["roles"], json!([]));

    let res = server.admin("PUT", &helper, &op, Some(json!({"name": "starter"})));
    assert_eq!(res.status, 200, "the caller holds every scope of the role: {}", res.body);
    assert_eq!(server.register("bob").json()["user"]["roles"], json!(["starter"]));
    assert_eq!(
        server.admin("PUT", &helper, &root, Some(json!({"scopes": ["a", "b"]}))).status,
        200
    );
    let before = registry(&server);
    let body = Some(json!({"scopes": ["b", "a"]}));
    refused_with(&server.admin("PUT", &helper, &op, body), STRICT);
    assert_eq!(registry(&server), before, "a refused change changes nothing");

    // Registration hands the default role to anyone, so assigning it hands on nothing.
    let res = server.admin(
        "POST",
        "/api/v1/users/invitations",
        &op,
        Some(json!({"email": "new@example.com"})),
    );
    assert_eq!(res.status, 201, "{}", res.body);
    assert_eq!(res.json()["user"]["roles"], json!(["starter"]));
    let cyd = server.register("cyd").json()["user"]["authId"].as_str().unwrap().to_string();
    let body = Some(json!({"roles": []}));
    assert_eq!(server.admin("PUT", &format!("/api/v1/users/{cyd}"), &root, body).status, 200);
    let body = Some(json!({"roles": ["starter"]}));
    let res = server.admin("PUT", &format!("/api/v1/users/{cyd}"), &op, body);
    assert_eq!(res.status, 200, "{}", res.body);

    // Narrowing the default role to what the caller holds is open.
    let res = server.admin("PUT", &helper, &op, Some(json!({"scopes": ["a"]})));
    assert_eq!(res.status, 200, "{}", res.body);
}

#[test]
fn issue_8_deleting_a_role_of_a_privileged_user_is_roots() {
    let server = TestServer::start();
    let root = server.root_token();
    let team = role(&server, &root, json!({"name": "team"}));
    let plain = role(&server, &root, json!({"name": "plain"}));
    let boss = server.register("boss").json()["user"]["authId"].as_str().unwrap().to_string();
    let pat = server.register("pat").json()["user"]["authId"].as_str().unwrap().to_string();
    let body = Some(json!({"roles": ["super_admin", "team"]}));
    assert_eq!(server.admin("PUT", &format!("/api/v1/users/{boss}"), &root, body).status, 200);
    let body = Some(json!({"roles": ["plain", "team"]}));
    assert_eq!(server.admin("PUT", &format!("/api/v1/users/{pat}"), &root, body).status, 200);
    let op = token_with(&server, &["read_role", "write_role"]);

    let before = registry(&server);
    refused_with(&server.admin("DELETE", &team, &op, None), PRIVILEGED_USER);
    assert_eq!(registry(&server), before, "a refused change changes nothing");

    // A rename changes only the name a privileged user holds the role by.
    assert_eq!(server.admin("PUT", &team, &op, Some(json!({"name": "crew"}))).status, 200);
    assert_eq!(user(&server, &boss)["roles"], json!(["super_admin", "crew"]));
    assert_eq!(server.admin("DELETE", &plain, &op, None).status, 204);
    assert_eq!(user(&server, &pat)["roles"], json!(["crew"]));
    assert_eq!(server.admin("DELETE", &team, &root, None).status, 204);
    assert_eq!(user(&server, &boss)["roles"], json!(["super_admin"]));
}

#[test]
fn issue_8_a_scope_of_a_privileged_role_is_roots_to_rename_or_delete() {
    let server = TestServer::start();
    let root = server.root_token();
    let vip_scope = scope(&server, "vip:s");
    let vip = role(&server, &root, json!({"name": "vip", "privileged": true, "scopes": ["vip:s"]}));
    let op = token_with(&server, &["read_scope", "write_scope", "read_role"]);

    let before = registry(&server);
    let body = Some(json!({"name": "vip:t"}));
    refused_with(&server.admin("PUT", &vip_scope, &op, body), PRIVILEGED_ROLE);
    refused_with(&server.admin("DELETE", &vip_scope, &op, None), PRIVILEGED_ROLE);
    assert_eq!(registry(&server), before, "a refused change changes nothing");
    assert_eq!(server.admin("PUT", &vip_scope, &op, Some(json!({"note": "n"}))).status, 200);

    let res = server.admin("PUT", &vip_scope, &root, Some(json!({"name": "vip:t"})));
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(server.admin("GET", &vip, &root, None).json()["role"]["scopes"], json!(["vip:t"]));
    assert_eq!(server.admin("DELETE", &vip_scope, &root, None).status, 204);
    assert_eq!(server.admin("GET", &vip, &root, None).json()["role"]["scopes"], json!([]));
}
