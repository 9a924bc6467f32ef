//! Users, invitations, consumer login and the privileged-role rule (docs/api.md, Token endpoint and Admin API; Fusio).

use proptest::prelude::*;
use serde_json::json;

use crate::support::{Resp, TestServer, basic, claims};

const RULE_2: &str = "Only an app with the root scope can assign a privileged role.";

fn login(server: &TestServer, username: &str, password: &str) -> Resp {
    server.post_json("/consumer/login", json!({"username": username, "password": password}))
}

fn writer(server: &TestServer) -> String {
    let scopes =
        ["read_user", "write_user", "read_role", "write_role", "read_scope", "write_scope"];
    let (_, id, secret) = server.create_app(json!({"name": "hr", "scopes": scopes}));
    server.token(&id, &secret, None)
}

#[test]
fn register_then_login_gives_a_user_token_with_its_roles_scopes() {
    let server = TestServer::start();
    let op = writer(&server);
    let res = server.post_json(
        "/consumer/register",
        json!({"username": "ada", "email": "ada@example.com", "password": "correct horse"}),
    );
    assert_eq!(res.status, 201, "{}", res.body);
    let user = res.json()["user"].clone();
    assert_eq!(user["roles"], json!(["consumer"]), "the default role");
    assert!(!res.body.contains("password"), "no hash in answers");
    assert_eq!(
        server
            .post_json(
                "/consumer/register",
                json!({"username": "ada", "email": "x@example.com", "password": "correct horse"})
            )
            .status,
        409
    );
    assert_eq!(
        server
            .post_json(
                "/consumer/register",
                json!({"username": "bob", "email": "b@example.com", "password": "short"})
            )
            .status,
        400
    );

    // A role with scopes, given to the user.
    server.admin("POST", "/api/v1/scopes", &op, Some(json!({"name": "orders:read"})));
    server.admin(
        "POST",
        "/api/v1/roles",
        &op,
        Some(json!({"name": "clerk", "scopes": ["orders:read"]})),
    );
    let auth_id = user["authId"].as_str().unwrap();
    let res = server.admin(
        "PUT",
        &format!("/api/v1/users/{auth_id}"),
        &op,
        Some(json!({"roles": ["consumer", "clerk"], "firstName": "Ada"})),
    );
    assert_eq!(res.status, 200, "{}", res.body);

    for name in ["ada", "ADA@example.com"] {
        let res = login(&server, name, "correct horse");
        assert_eq!(res.status, 200, "{}", res.body);
        let body = res.json();
        assert_eq!(body["expires_in"], 3600);
        let c = claims(body["token"].as_str().unwrap());
        assert_eq!(c["sub"], auth_id);
        assert_eq!(c["scope"], "orders:read");
        // Refresh through the token endpoint.
        let rt = body["refresh_token"].as_str().unwrap();
        let res = server.post_form(
            "/oauth2/v1/token",
            None,
            &format!("grant_type=refresh_token&refresh_token={rt}"),
        );
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(claims(res.json()["access_token"].as_str().unwrap())["sub"], auth_id);
        // A person's token is not an app's: the admin API refuses it; introspection knows it.
        let token = body["token"].as_str().unwrap();
        assert_eq!(server.admin("GET", "/info", token, None).status, 401);
        let res = server.post_form(
            "/oauth2/v1/introspect",
            Some(&basic(crate::support::ROOT_ID, crate::support::ROOT_SECRET)),
            &format!("token={token}"),
        );
        assert_eq!(res.json()["active"], true);
        assert_eq!(res.json()["sub"], auth_id);
        let res = server.post_form(
            "/oauth2/v1/introspect",
            Some(&basic(crate::support::ROOT_ID, crate::support::ROOT_SECRET)),
            &format!("token={rt}"),
        );
        assert_eq!(res.json()["active"], false, "spent by the refresh above");
    }
}

#[test]
fn wrong_password_unknown_and_inactive_users_get_identical_answers() {
    let server = TestServer::start();
    let op = writer(&server);
    server.post_json(
        "/consumer/register",
        json!({"username": "ada", "email": "ada@example.com", "password": "correct horse"}),
    );
    let res = server.post_json(
        "/consumer/register",
        json!({"username": "eve", "email": "eve@example.com", "password": "correct horse"}),
    );
    let eve = res.json()["user"]["authId"].as_str().unwrap().to_string();
    server.admin("PUT", &format!("/api/v1/users/{eve}"), &op, Some(json!({"isActive": false})));
    let wrong = login(&server, "ada", "wrong horse!");
    let unknown = login(&server, "nobody", "correct horse");
    let inactive = login(&server, "eve", "correct horse");
    assert_eq!(wrong.status, 401);
    assert_eq!((wrong.answer(), wrong.status), (unknown.answer(), unknown.status));
    assert_eq!((wrong.answer(), wrong.status), (inactive.answer(), inactive.status));
}

#[test]
fn invitations_create_an_inactive_user_that_a_password_activates() {
    let server = TestServer::start();
    let op = writer(&server);
    let res = server.admin(
        "POST",
        "/api/v1/users/invitations",
        &op,
        Some(json!({"email": "new@example.com", "username": "newbie"})),
    );
    assert_eq!(res.status, 201, "{}", res.body);
    let body = res.json();
    assert_eq!(body["user"]["isActive"], false);
    let token = body["invitationToken"].as_str().unwrap().to_string();
    assert_eq!(login(&server, "newbie", "a good password").status, 401);
    let res = server.post_json(
        "/consumer/invitations/accept",
        json!({"token": token, "password": "a good password"}),
    );
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json()["user"]["isActive"], true);
    assert_eq!(login(&server, "newbie", "a good password").status, 200);
    let again = server.post_json(
        "/consumer/invitations/accept",
        json!({"token": token, "password": "another password"}),
    );
    assert_eq!(again.status, 400, "works once");

    let list = server.admin("GET", "/api/v1/users", &op, None).json();
    assert_eq!(list["count"], 1);
    let auth_id = list["users"][0]["authId"].as_str().unwrap().to_string();
    assert_eq!(server.admin("DELETE", &format!("/api/v1/users/{auth_id}"), &op, None).status, 204);
    assert_eq!(server.admin("GET", &format!("/api/v1/users/{auth_id}"), &op, None).status, 404);
    assert_eq!(login(&server, "newbie", "a good password").status, 401);
}

#[test]
fn failed_logins_are_limited_per_username_and_address() {
    let server = TestServer::start_with(|c| c.failures_per_client = 3);
    server.post_json(
        "/consumer/register",
        json!({"username": "ada", "email": "ada@example.com", "password": "correct horse"}),
    );
    server.post_json(
        "/consumer/register",
        json!({"username": "bob", "email": "bob@example.com", "password": "correct horse"}),
    );
    for _ in 0..3 {
        assert_eq!(login(&server, "ada", "wrong horse!").status, 401);
    }
    let res = login(&server, "ada", "correct horse");
    assert_eq!(res.status, 429);
    assert!(res.header("retry-after").is_some());
    assert_eq!(
        login(&server, "bob", "correct horse").status,
        200,
        "other users are not locked out"
    );
    server.clock.advance(61);
    assert_eq!(login(&server, "ada", "correct horse").status, 200);
}

#[test]
fn user_credentials_on_the_token_endpoint_only_when_allowed() {
    for allowed in [false, true] {
        let server = TestServer::start_with(|c| c.allow_user_credentials = allowed);
        server.post_json(
            "/consumer/register",
            json!({"username": "ada", "email": "ada@example.com", "password": "correct horse"}),
        );
        let res = server.post_form(
            "/authorization/token",
            Some(&basic("ada", "correct horse")),
            "grant_type=client_credentials",
        );
        if allowed {
            assert_eq!(res.status, 200, "{}", res.body);
            assert!(res.json()["refresh_token"].is_string());
        } else {
            assert_eq!(res.status, 401);
        }
        assert_eq!(
            server
                .post_form(
                    "/token",
                    Some(&basic("ada", "wrong horse!")),
                    "grant_type=client_credentials"
                )
                .status,
            401
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, failure_persistence: None, ..ProptestConfig::default() })]

    /// Rule 2 on update and invitation: accepted iff no privileged role or the caller holds
    /// root; a rejection changes nothing.
    #[test]
    fn privileged_role_rule(
        caller_has_root in any::<bool>(),
        roles in proptest::sample::subsequence(vec!["super_admin", "consumer", "vip", "plain"], 0..4),
        via_invite in any::<bool>(),
    ) {
        let server = TestServer::start();
        let root = server.root_token();
        server.admin("POST", "/api/v1/roles", &root, Some(json!({"name": "vip", "privileged": true})));
        server.admin("POST", "/api/v1/roles", &root, Some(json!({"name": "plain"})));
        let mut scopes = vec!["read_user", "write_user"];
        if caller_has_root { scopes.push("root"); }
        let (_, id, secret) = server.create_app(json!({"name": "caller", "scopes": scopes}));
        let caller = server.token(&id, &secret, None);
        let privileged = roles.iter().any(|r| *r == "super_admin" || *r == "vip");
        let should_pass = !privileged || caller_has_root;

        let res = if via_invite {
            server.admin("POST", "/api/v1/users/invitations", &caller, Some(json!({"email": "u@example.com", "roles": roles})))
        } else {
            let made = server.admin("POST", "/api/v1/users/invitations", &root, Some(json!({"email": "u@example.com"}))).json();
            let auth_id = made["user"]["authId"].as_str().unwrap().to_string();
            server.admin("PUT", &format!("/api/v1/users/{auth_id}"), &caller, Some(json!({"roles": roles})))
        };
        let users = server.admin("GET", "/api/v1/users", &root, None).json();
        if should_pass {
            prop_assert!(res.status == 200 || res.status == 201, "{}", res.body);
            let mut held: Vec<String> = serde_json::from_value(users["users"][0]["roles"].clone()).unwrap();
            held.sort();
            let mut want: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
            if want.is_empty() && via_invite {
                want.push("consumer".into()); // an invitation naming no role gets the default
            }
            want.sort();
            prop_assert_eq!(held, want);
        } else {
            prop_assert_eq!(res.status, 400);
            prop_assert_eq!(res.json()["message"].clone(), json!(RULE_2));
            let expected_count = if via_invite { 0 } else { 1 };
            prop_assert_eq!(users["count"].clone(), json!(expected_count));
            if !via_invite {
                prop_assert_eq!(users["users"][0]["roles"].clone(), json!(["consumer"]), "nothing changed");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

    /// Login uniformity: whatever makes a login fail (unknown user, wrong password, inactive
    /// user, invited but not yet active), the answer is the same status and the same bytes.
    #[test]
    fn every_failed_login_looks_the_same(
        exists in any::<bool>(),
        is_active in any::<bool>(),
        is_invited in any::<bool>(),
        right_password in any::<bool>(),
        by_email in any::<bool>(),
    ) {
        let server = TestServer::start();
        let reference = login(&server, "no-such-user", "whatever password");
        prop_assert_eq!(reference.status, 401);
        let op = writer(&server);
        if exists && is_invited {
            server.admin("POST", "/api/v1/users/invitations", &op, Some(json!({"email": "p@example.com", "username": "pat"})));
        } else if exists {
            let res = server.post_json("/consumer/register", json!({"username": "pat", "email": "p@example.com", "password": "the right one"}));
            if !is_active {
                let id = res.json()["user"]["authId"].as_str().unwrap().to_string();
                server.admin("PUT", &format!("/api/v1/users/{id}"), &op, Some(json!({"isActive": false})));
            }
        }
        let name = if by_email { "p@example.com" } else { "pat" };
        let res = login(&server, name, if right_password { "the right one" } else { "the wrong one" });
        let should_succeed = exists && !is_invited && is_active && right_password;
        if should_succeed {
            prop_assert_eq!(res.status, 200);
        } else {
            prop_assert_eq!((res.status, res.answer()), (reference.status, reference.answer()));
        }
    }
}
