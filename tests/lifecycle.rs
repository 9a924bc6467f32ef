//! Issue 8, lifecycle (docs/api.md, Users and Service API): deactivating or deleting a user
//! ends its refresh families at once; re-enabling an app or a user never revives tokens issued
//! before the disable; a service cannot undo an operator's deactivation.

use proptest::prelude::*;
use serde_json::{Value, json};
use tessera_core::clock::Clock;

use crate::support::{ROOT_ID, ROOT_SECRET, Resp, TestServer, basic, claims, form};

/// Registers a user whose password is "correct horse"; its auth id.
fn register(server: &TestServer, name: &str) -> String {
    let res = server.register(name);
    assert_eq!(res.status, 201, "{}", res.body);
    res.json()["user"]["authId"].as_str().unwrap().to_string()
}

fn login_response(server: &TestServer, name: &str) -> Resp {
    server.post_json("/consumer/login", json!({"username": name, "password": "correct horse"}))
}

/// Signs a user in: (access token, refresh token).
fn login(server: &TestServer, name: &str) -> (String, String) {
    let res = login_response(server, name);
    assert_eq!(res.status, 200, "{}", res.body);
    let body = res.json();
    (body["token"].as_str().unwrap().into(), body["refresh_token"].as_str().unwrap().into())
}

fn refresh(server: &TestServer, token: &str) -> Resp {
    let body = format!("grant_type=refresh_token&refresh_token={}", form(token));
    server.post_form("/oauth2/v1/token", None, &body)
}

fn is_active(server: &TestServer, token: &str) -> bool {
    let res = server.post_form(
        "/oauth2/v1/introspect",
        Some(&basic(ROOT_ID, ROOT_SECRET)),
        &format!("token={}", form(token)),
    );
    assert_eq!(res.status, 200, "{}", res.body);
    res.json()["active"] == true
}

/// A service with a callback URI; its API key.
fn service(server: &TestServer) -> String {
    let body = json!({"name": "acme", "callbackUris": ["https://app.acme.com/cb"]});
    let res = server.admin("POST", "/api/v1/services", &server.root_token(), Some(body));
    assert_eq!(res.status, 201, "{}", res.body);
    res.json()["apiKey"].as_str().unwrap().to_string()
}

/// A user of the service who can sign in with "correct horse"; its id.
fn service_user(server: &TestServer, key: &str, name: &str) -> String {
    let body = json!({"email": format!("{name}@example.com"), "username": name, "password": "correct horse"});
    let res = server.service_call(key, "POST", "/api/service/users", Some(body));
    assert_eq!(res.status, 201, "{}", res.body);
    res.json()["user"]["user_id"].as_str().unwrap().to_string()
}

fn set_user_active(server: &TestServer, auth_id: &str, active: bool) -> Resp {
    let path = format!("/api/v1/users/{auth_id}");
    server.admin("PUT", &path, &server.root_token(), Some(json!({"isActive": active})))
}

fn is_sid_revoked(server: &TestServer, access: &str) -> bool {
    let sid = claims(access)["sid"].as_str().unwrap().to_string();
    server.issuer().grants().revoked().is_revoked(&sid)
}

fn is_family_revoked(server: &TestServer, refresh: &str) -> bool {
    let key = tessera_core::auth::secret::parse_split_secret(refresh).unwrap();
    let store = server.issuer().grants().store().unwrap();
    store.refresh_status(&key).unwrap().unwrap().family.is_revoked
}

#[test]
fn issue_8_deactivating_a_user_ends_its_refresh_families_at_once() {
    let server = TestServer::start();
    let ada = register(&server, "ada");
    register(&server, "bob");
    let (ada_at, ada_rt) = login(&server, "ada");
    let (bob_at, bob_rt) = login(&server, "bob");

    assert_eq!(set_user_active(&server, &ada, false).status, 200);
    assert!(is_sid_revoked(&server, &ada_at), "the family's access tokens are refused at once");
    assert!(is_family_revoked(&server, &ada_rt));
    assert!(!is_sid_revoked(&server, &bob_at), "another user's family goes on");
    assert_eq!(set_user_active(&server, &ada, true).status, 200);
    assert_eq!(refresh(&server, &ada_rt).json()["error"], "invalid_grant", "ended for good");
    assert!(!is_active(&server, &ada_at));
    assert_eq!(refresh(&server, &bob_rt).status, 200);

    // The service API's deactivation does the same.
    let key = service(&server);
    let cy = service_user(&server, &key, "cyd");
    let (cy_at, cy_rt) = login(&server, "cyd");
    let path = format!("/api/service/users/{cy}");
    assert_eq!(
        server.service_call(&key, "PATCH", &path, Some(json!({"is_active": false}))).status,
        200
    );
    assert!(is_sid_revoked(&server, &cy_at));
    assert_eq!(
        server.service_call(&key, "PATCH", &path, Some(json!({"is_active": true}))).status,
        200
    );
    assert_eq!(refresh(&server, &cy_rt).json()["error"], "invalid_grant");
}

#[test]
fn issue_8_deleting_a_user_ends_its_refresh_families_at_once() {
    let server = TestServer::start();
    let ada = register(&server, "ada");
    let (ada_at, ada_rt) = login(&server, "ada");
    let path = format!("/api/v1/users/{ada}");
    assert_eq!(server.admin("DELETE", &path, &server.root_token(), None).status, 204);
    assert!(is_sid_revoked(&server, &ada_at));
    assert!(is_family_revoked(&server, &ada_rt));

    let key = service(&server);
    let cy = service_user(&server, &key, "cyd");
    let (cy_at, cy_rt) = login(&server, "cyd");
    let path = format!("/api/service/users/{cy}");
    assert_eq!(server.service_call(&key, "DELETE", &path, None).status, 204);
    assert!(is_sid_revoked(&server, &cy_at));
    assert!(is_family_revoked(&server, &cy_rt));
}

#[test]
fn issue_8_reenabling_an_app_does_not_revive_its_old_tokens() {
    let server = TestServer::start();
    let (app, id, secret) = server.create_app(json!({"name": "ops", "scopes": ["read_key"]}));
    let path = format!("/api/v1/apps/{}", app["id"].as_str().unwrap());
    let old = server.token(&id, &secret, None);
    let set = |active: bool| {
        let body = Some(json!({"isActive": active}));
        assert_eq!(server.admin("PUT", &path, &server.root_token(), body).status, 200);
    };
    set(false);
    set(true);
    assert_eq!(server.admin("GET", "/api/v1/keys", &old, None).status, 401);
    assert!(!is_active(&server, &old));
    // `iat` is whole seconds: a token from the second of the disable does not survive it.
    let same_second = server.token(&id, &secret, None);
    assert_eq!(server.admin("GET", "/api/v1/keys", &same_second, None).status, 401);
    server.clock.advance(1);
    let new = server.token(&id, &secret, None);
    assert_eq!(server.admin("GET", "/api/v1/keys", &new, None).status, 200);
    assert!(is_active(&server, &new));

    // The disable time is durable.
    let now = server.clock.now();
    let config = tessera::config::Config {
        listen: "127.0.0.1:0".into(),
        data_dir: server.dir.path().to_path_buf(),
        ..Default::default()
    };
    let server = TestServer::start_in(server.stop(), config, now);
    // The restarted server has another address and so another issuer: ask the check itself.
    let live = |token: &str| {
        let claims: tessera_core::tokens::claims::AccessClaims =
            serde_json::from_value(claims(token)).unwrap();
        server.issuer().is_token_live_for_subject(&claims)
    };
    assert!(!live(&old));
    assert!(live(&new));
}

#[test]
fn issue_8_reenabling_a_user_does_not_revive_its_old_tokens() {
    let server = TestServer::start();
    let key = service(&server);
    let ada = service_user(&server, &key, "ada");
    let provider = json!({
        "name": "github", "authorizeUrl": "https://github.example/login/oauth/authorize",
        "tokenUrl": "https://github.example/token", "clientId": "gh", "clientSecret": "gh-secret"
    });
    let res = server.admin("POST", "/api/v1/providers", &server.root_token(), Some(provider));
    assert_eq!(res.status, 201, "{}", res.body);
    let ask = json!({"user_id": ada, "provider": "github", "scopes": ["repo"], "redirect_uri": "https://app.acme.com/cb"});
    let res = server.service_call(&key, "POST", "/api/service/provider-tokens", Some(ask));
    assert_eq!(res.json()["status"], "action_required", "{}", res.body);
    let hosted =
        res.json()["reauth_url"].as_str().unwrap().strip_prefix(&server.url).unwrap().to_string();
    let hosted_status = |token: &str| {
        let auth = format!("Bearer {token}");
        server.get(&hosted, &[("authorization", auth.as_str())]).status
    };
    let (old, _) = login(&server, "ada");
    assert_eq!(hosted_status(&old), 303, "signed in: on to the provider");

    let path = format!("/api/service/users/{ada}");
    assert_eq!(
        server.service_call(&key, "PATCH", &path, Some(json!({"is_active": false}))).status,
        200
    );
    assert_eq!(
        server.service_call(&key, "PATCH", &path, Some(json!({"is_active": true}))).status,
        200
    );
    assert_eq!(hosted_status(&old), 200, "the old session is no session: the sign-in page");
    assert!(!is_active(&server, &old));
    server.clock.advance(1);
    let (new, _) = login(&server, "ada");
    assert_eq!(hosted_status(&new), 303);
    assert!(is_active(&server, &new));
}

const OPERATOR_DISABLED: &str =
    "This user was deactivated by an operator; only an operator can activate it again.";

#[test]
fn issue_8_a_service_cannot_reenable_a_user_an_operator_disabled() {
    let server = TestServer::start();
    let key = service(&server);
    let ada = service_user(&server, &key, "ada");
    let path = format!("/api/service/users/{ada}");
    let patch = |body: Value| server.service_call(&key, "PATCH", &path, Some(body));

    assert_eq!(set_user_active(&server, &ada, false).status, 200);
    let res = patch(json!({"is_active": true, "first_name": "Ada"}));
    assert_eq!(res.status, 403, "{}", res.body);
    assert_eq!(res.answer(), json!({"error": "forbidden", "message": OPERATOR_DISABLED}));
    let user = server.service_call(&key, "GET", &path, None).json()["user"].clone();
    assert_eq!((user["is_active"].clone(), user["first_name"].clone()), (json!(false), json!("")));
    assert_eq!(login_response(&server, "ada").status, 401);
    // A service's own deactivation on top does not hide the operator's.
    assert_eq!(patch(json!({"is_active": false})).status, 200);
    assert_eq!(patch(json!({"is_active": true})).status, 403);

    // An operator can re-enable anything; a service can undo its own deactivation.
    assert_eq!(set_user_active(&server, &ada, true).status, 200);
    assert_eq!(login_response(&server, "ada").status, 200);
    assert_eq!(patch(json!({"is_active": false})).status, 200);
    assert_eq!(patch(json!({"is_active": true})).json()["user"]["is_active"], true);
    assert_eq!(patch(json!({"is_active": false})).status, 200);
    assert_eq!(set_user_active(&server, &ada, true).status, 200);

    // Nor can an invitee undo it by accepting its invitation.
    let root = server.root_token();
    let invite = json!({"email": "new@example.com"});
    let res = server.admin("POST", "/api/v1/users/invitations", &root, Some(invite)).json();
    let token = res["invitationToken"].as_str().unwrap().to_string();
    let invited = res["user"]["authId"].as_str().unwrap().to_string();
    assert_eq!(set_user_active(&server, &invited, false).status, 200);
    let accept = json!({"token": token, "password": "a good password"});
    assert_eq!(server.post_json("/consumer/invitations/accept", accept).status, 400);
}

#[test]
fn issue_8_a_refused_app_update_ends_no_families() {
    let server = TestServer::start();
    let body = json!({"name": "r", "grantTypes": ["client_credentials", "refresh_token"]});
    let (app, id, secret) = server.create_app(body);
    let path = format!("/api/v1/apps/{}", app["id"].as_str().unwrap());
    let res = server.token_response(&id, &secret, None);
    let rt = res.json()["refresh_token"].as_str().unwrap().to_string();
    let big = json!({"isActive": false, "metadata": {"x": "y".repeat(5000)}});
    assert_eq!(server.admin("PUT", &path, &server.root_token(), Some(big)).status, 400);
    assert_eq!(refresh(&server, &rt).status, 200, "a refused change changes nothing");
}

#[derive(Debug, Clone)]
enum Step {
    Disable,
    Enable,
    Mint,
    Advance(u64),
    Check(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => Just(Step::Disable),
        1 => Just(Step::Enable),
        2 => Just(Step::Mint),
        2 => (0u64..3).prop_map(Step::Advance),
        3 => (0usize..8).prop_map(Step::Check),
    ]
}

/// The reference model: is the subject active, when was it last disabled, and which tokens
/// were minted when.
#[derive(Debug, Default)]
struct Model {
    is_disabled: bool,
    last_disable: Option<u64>,
    tokens: Vec<(String, u64)>,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, failure_persistence: None, ..ProptestConfig::default() })]

    /// Disable, enable, mint and clock moves on an app or a user: a token is accepted (by the
    /// admin API for an app's, by introspection for both) iff the subject is active now and the
    /// token was minted after its last disable, in whole seconds.
    #[test]
    fn issue_8_tokens_live_iff_minted_after_the_last_disable(
        is_user in any::<bool>(),
        steps in proptest::collection::vec(step(), 1..20),
    ) {
        let server = TestServer::start();
        let (path, id, secret) = if is_user {
            let auth_id = register(&server, "ada");
            (format!("/api/v1/users/{auth_id}"), String::new(), String::new())
        } else {
            let (app, id, secret) = server.create_app(json!({"name": "m", "scopes": ["read_key"]}));
            (format!("/api/v1/apps/{}", app["id"].as_str().unwrap()), id, secret)
        };
        let mut m = Model::default();
        for step in steps {
            let now = server.clock.now();
            match step {
                Step::Disable | Step::Enable => {
                    let active = matches!(step, Step::Enable);
                    let res = server.admin("PUT", &path, &server.root_token(), Some(json!({"isActive": active})));
                    prop_assert_eq!(res.status, 200, "{}", res.body);
                    if !active && !m.is_disabled {
                        m.last_disable = Some(now);
                    }
                    m.is_disabled = !active;
                }
                Step::Mint => {
                    let res = if is_user { login_response(&server, "ada") } else { server.token_response(&id, &secret, None) };
                    if m.is_disabled {
                        prop_assert_eq!(res.status, 401, "a disabled subject gets no token");
                    } else {
                        prop_assert_eq!(res.status, 200, "{}", res.body);
                        let field = if is_user { "token" } else { "access_token" };
                        m.tokens.push((res.json()[field].as_str().unwrap().to_string(), now));
                    }
                }
                Step::Advance(s) => server.clock.advance(s),
                Step::Check(i) => {
                    if m.tokens.is_empty() { continue; }
                    let (token, iat) = m.tokens[i % m.tokens.len()].clone();
                    let should = !m.is_disabled && m.last_disable.is_none_or(|d| iat > d);
                    prop_assert_eq!(is_active(&server, &token), should, "introspection: {:?} iat {}", m, iat);
                    if !is_user {
                        let status = server.admin("GET", "/api/v1/keys", &token, None).status;
                        prop_assert_eq!(status == 200, should, "admin API: {:?} iat {}", m, iat);
                    }
                }
            }
        }
    }
}

/// A family a token request opens while its app or user is being disabled (its `CreateFamily`
/// committed after the disable's `RevokeClient`), dated at the disable: the store holds it as
/// live, yet a re-enable must not make it work.
fn late_family(server: &TestServer, client_id: &str, subject: &str, at: u64) -> String {
    let (token, key) = tessera_core::auth::secret::new_split_secret();
    let family = tessera_storage::FamilyRecord {
        id: tessera_core::auth::secret::time_ordered_id(),
        client_id: client_id.to_string(),
        subject: subject.to_string(),
        scope: String::new(),
        created_at: at,
        expires_at: at + 86_400,
        is_revoked: false,
        audience: None,
        jkt: None,
    };
    let op = tessera_storage::GrantOp::CreateFamily {
        family,
        token: key,
        token_expires_at: at + 86_400,
    };
    server.issuer().grants().submit_blocking(op).unwrap();
    token
}

#[test]
fn issue_8_a_family_opened_during_a_disable_stays_dead_after_a_re_enable() {
    let server = TestServer::start();
    let (app, client_id, _) = server.create_app(
        json!({"name": "svc", "scopes": [], "grantTypes": ["client_credentials", "refresh_token"]}),
    );
    let path = format!("/api/v1/apps/{}", app["id"].as_str().unwrap());
    let root = server.root_token();
    assert_eq!(server.admin("PUT", &path, &root, Some(json!({"isActive": false}))).status, 200);
    let disabled_at = server.clock.now();
    let app_family = late_family(&server, &client_id, &client_id, disabled_at);
    let ada = register(&server, "ada");
    assert_eq!(set_user_active(&server, &ada, false).status, 200);
    let user_family =
        late_family(&server, tessera_core::tables::client::CONSUMER_CLIENT_ID, &ada, disabled_at);
    server.clock.advance(5);
    assert_eq!(server.admin("PUT", &path, &root, Some(json!({"isActive": true}))).status, 200);
    assert_eq!(set_user_active(&server, &ada, true).status, 200);
    for token in [app_family, user_family] {
        assert!(!is_active(&server, &token), "introspection: inactive");
        let res = refresh(&server, &token);
        assert_eq!(res.status, 400, "{}", res.body);
        assert_eq!(res.json()["error"], "invalid_grant");
    }
}
