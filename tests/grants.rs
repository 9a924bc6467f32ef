//! Grant state over HTTP (docs/api.md, Token endpoint and Key rotation): refresh tokens, revocation, introspection,
//! private_key_jwt, cleanup.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signer;
use serde_json::{Value, json};
use tessera_core::clock::Clock;
use tessera_storage::GrantOp;

use crate::support::{Resp, TestServer, basic, form, jwk};

const BOTH: [&str; 2] = ["client_credentials", "refresh_token"];

fn refresh_app(server: &TestServer, scopes: &[&str]) -> (Value, String, String) {
    server.create_app(json!({"name": "r", "scopes": scopes, "grantTypes": BOTH}))
}

fn refresh(
    server: &TestServer,
    token: &str,
    auth: Option<(&str, &str)>,
    scope: Option<&str>,
) -> Resp {
    let mut body = format!("grant_type=refresh_token&refresh_token={}", form(token));
    if let Some(scope) = scope {
        body.push_str(&format!("&scope={}", form(scope)));
    }
    let auth = auth.map(|(id, secret)| basic(id, secret));
    server.post_form("/oauth2/v1/token", auth.as_deref(), &body)
}

fn rt(res: &Resp) -> String {
    assert_eq!(res.status, 200, "{}", res.body);
    res.json()["refresh_token"].as_str().expect("refresh_token").to_string()
}

fn introspect(server: &TestServer, caller: (&str, &str), token: &str) -> Value {
    let res = server.post_form(
        "/oauth2/v1/introspect",
        Some(&basic(caller.0, caller.1)),
        &format!("token={}", form(token)),
    );
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.header("cache-control"), Some("no-store"));
    res.json()
}

fn revoke(server: &TestServer, caller: (&str, &str), token: &str) -> u16 {
    server
        .post_form(
            "/oauth2/v1/revoke",
            Some(&basic(caller.0, caller.1)),
            &format!("token={}", form(token)),
        )
        .status
}

#[test]
fn refresh_tokens_only_for_apps_that_opt_in() {
    let server = TestServer::start();
    let (_, plain, plain_secret) = server.create_app(json!({"name": "p"}));
    assert!(
        server.token_response(&plain, &plain_secret, None).json().get("refresh_token").is_none()
    );
    let (_, id, secret) = refresh_app(&server, &["a"]);
    let token = rt(&server.token_response(&id, &secret, None));
    assert_eq!(token.len(), 65, "a 128-bit selector and a 256-bit secret, base64url");
}

#[test]
fn refresh_rotates_and_reuse_revokes_the_family() {
    let server = TestServer::start();
    let (_, id, secret) = refresh_app(&server, &["a", "b"]);
    let first = server.token_response(&id, &secret, None);
    let access0 = first.json()["access_token"].as_str().unwrap().to_string();
    let t1 = rt(&first);

    // With the refresh token alone (Leanly) and with matching client credentials.
    let r2 = refresh(&server, &t1, None, None);
    let t2 = rt(&r2);
    assert_eq!(r2.json()["scope"], "a b");
    let t3 = rt(&refresh(&server, &t2, Some((&id, &secret)), Some("a")));
    let narrowed = refresh(&server, &t3, None, Some("a"));
    let t4 = rt(&narrowed);
    let access4 = narrowed.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(crate::support::claims(&access4)["scope"], "a");

    // Widening is refused and does not spend the token.
    let wide = refresh(&server, &t4, None, Some("a c"));
    assert_eq!(wide.status, 400);
    assert_eq!(wide.json()["error"], "invalid_scope");

    // A spent token comes back, even with a scope it may not have: invalid_grant, and the
    // whole family ends.
    assert_eq!(refresh(&server, &t1, None, Some("zzz")).json()["error"], "invalid_grant");
    let reused = refresh(&server, &t1, None, None);
    assert_eq!(reused.status, 400);
    assert_eq!(reused.json()["error"], "invalid_grant");
    assert_eq!(
        refresh(&server, &t4, None, None).json()["error"],
        "invalid_grant",
        "family revoked"
    );
    // ...and the access tokens issued from it are refused at once.
    assert_eq!(introspect(&server, (&id, &secret), &access4), json!({"active": false}));
    assert_eq!(introspect(&server, (&id, &secret), &access0), json!({"active": false}));
}

#[test]
fn refresh_tokens_are_bound_to_their_app() {
    let server = TestServer::start();
    let (_, id, secret) = refresh_app(&server, &["a"]);
    let (_, other, other_secret) = refresh_app(&server, &["a"]);
    let t1 = rt(&server.token_response(&id, &secret, None));
    let res = refresh(&server, &t1, Some((&other, &other_secret)), None);
    assert_eq!(res.json()["error"], "invalid_grant");
    // Not spent by the failed attempt: its owner still can.
    assert_eq!(refresh(&server, &t1, Some((&id, &secret)), None).status, 200);
    // Wrong credentials are an authentication failure, not a grant failure.
    assert_eq!(refresh(&server, "whatever", Some((&id, "wrong")), None).status, 401);
    assert_eq!(refresh(&server, "not-a-token", None, None).json()["error"], "invalid_grant");
    let res = server.post_form("/token", None, "grant_type=refresh_token");
    assert_eq!(res.json()["error"], "invalid_request");
}

#[test]
fn a_disabled_app_and_expiry_end_the_family() {
    let server = TestServer::start_with(|c| c.refresh_token_ttl = 1000);
    let (app, id, secret) = refresh_app(&server, &["a"]);
    let path = format!("/api/v1/apps/{}", app["id"].as_str().unwrap());
    let t1 = rt(&server.token_response(&id, &secret, None));
    server.admin("PUT", &path, &server.root_token(), Some(json!({"isActive": false})));
    assert_eq!(refresh(&server, &t1, None, None).json()["error"], "invalid_grant");
    server.admin("PUT", &path, &server.root_token(), Some(json!({"isActive": true})));
    assert_eq!(
        refresh(&server, &t1, None, None).json()["error"],
        "invalid_grant",
        "the family stays ended"
    );

    // Ended at the moment of disabling, even if re-enabled before the token comes back.
    let t1b = rt(&server.token_response(&id, &secret, None));
    server.admin("PUT", &path, &server.root_token(), Some(json!({"isActive": false})));
    server.admin("PUT", &path, &server.root_token(), Some(json!({"isActive": true})));
    assert_eq!(refresh(&server, &t1b, None, None).json()["error"], "invalid_grant");

    // Disable times are whole seconds: what is issued in the second of a disable stays refused.
    server.clock.advance(1);
    let t2 = rt(&server.token_response(&id, &secret, None));
    let t3 = rt(&refresh(&server, &t2, None, None));
    server.clock.advance(999);
    let t4 = rt(&refresh(&server, &t3, None, None));
    server.clock.advance(1000);
    assert_eq!(refresh(&server, &t4, None, None).json()["error"], "invalid_grant", "expired");
}

#[test]
fn concurrent_redemptions_of_one_token_let_exactly_one_win() {
    let server = TestServer::start();
    let (_, id, secret) = refresh_app(&server, &["a"]);
    for _ in 0..3 {
        let token = rt(&server.token_response(&id, &secret, None));
        let wins = std::thread::scope(|s| {
            let handles: Vec<_> =
                (0..8).map(|_| s.spawn(|| refresh(&server, &token, None, None).status)).collect();
            handles.into_iter().map(|h| h.join().unwrap()).filter(|&st| st == 200).count()
        });
        assert_eq!(wins, 1);
    }
}

#[test]
fn revocation_follows_rfc_7009() {
    let server = TestServer::start();
    let (_, id, secret) =
        server.create_app(json!({"name": "ops", "scopes": ["read_key"], "grantTypes": BOTH}));
    let (_, other, other_secret) = server.create_app(json!({"name": "other"}));
    let res = server.token_response(&id, &secret, None);
    let access = res.json()["access_token"].as_str().unwrap().to_string();
    let refresh_token = rt(&res);

    // Another client cannot revoke it (answered 200, nothing happens).
    assert_eq!(revoke(&server, (&other, &other_secret), &access), 200);
    assert_eq!(revoke(&server, (&other, &other_secret), &refresh_token), 200);
    assert_eq!(server.admin("GET", "/api/v1/keys", &access, None).status, 200);
    assert_eq!(
        refresh(&server, &refresh_token, None, None).status,
        200,
        "still usable by its owner"
    );

    // Its own client can; the admin API refuses it at once.
    let res = server.token_response(&id, &secret, None);
    let access = res.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(revoke(&server, (&id, &secret), &access), 200);
    assert_eq!(server.admin("GET", "/api/v1/keys", &access, None).status, 401);

    // Revoking a refresh token ends its family and the access tokens issued from it.
    let res = server.token_response(&id, &secret, None);
    let (access, family_token) =
        (res.json()["access_token"].as_str().unwrap().to_string(), rt(&res));
    let next = refresh(&server, &family_token, None, None);
    let (access2, t2) = (next.json()["access_token"].as_str().unwrap().to_string(), rt(&next));
    assert_eq!(
        server
            .post_form(
                "/oauth2/v1/revoke",
                Some(&basic(&id, &secret)),
                &format!("token={t2}&token_type_hint=refresh_token")
            )
            .status,
        200
    );
    assert_eq!(refresh(&server, &t2, None, None).status, 400);
    assert_eq!(server.admin("GET", "/api/v1/keys", &access, None).status, 401);
    assert_eq!(server.admin("GET", "/api/v1/keys", &access2, None).status, 401);

    // Unknown tokens: 200. Unauthenticated callers: 401.
    assert_eq!(revoke(&server, (&id, &secret), "garbage"), 200);
    assert_eq!(server.post_form("/oauth2/v1/revoke", None, "token=x").status, 401);
    assert_eq!(
        server.post_form("/oauth2/v1/revoke", Some(&basic(&id, &secret)), "").json()["error"],
        "invalid_request"
    );
}

#[test]
fn introspection_follows_rfc_7662() {
    let server = TestServer::start();
    let (_, id, secret) = refresh_app(&server, &["a", "b"]);
    let (_, rs, rs_secret) = server.create_app(json!({"name": "resource-server"}));
    let res = server.token_response(&id, &secret, Some("a"));
    let access = res.json()["access_token"].as_str().unwrap().to_string();
    let refresh_token = rt(&res);

    let v = introspect(&server, (&rs, &rs_secret), &access);
    assert_eq!(v["active"], true);
    assert_eq!(v["scope"], "a");
    assert_eq!(v["client_id"], id.as_str());
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["iss"], server.url.as_str());
    for field in ["exp", "iat", "nbf", "sub", "aud", "jti"] {
        assert!(!v[field].is_null(), "{field}");
    }
    let v = introspect(&server, (&rs, &rs_secret), &refresh_token);
    assert_eq!(v["active"], true);
    assert_eq!(v["token_type"], "refresh_token");
    assert_eq!(v["scope"], "a", "the family's grant");

    let mut tampered = access.clone().into_bytes();
    let at = tampered.len() - 3;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    for garbage in ["", "x", "a.b.c", std::str::from_utf8(&tampered).unwrap()] {
        if garbage.is_empty() {
            continue;
        }
        assert_eq!(
            introspect(&server, (&rs, &rs_secret), garbage),
            json!({"active": false}),
            "{garbage}"
        );
    }
    server.clock.advance(3601);
    assert_eq!(
        introspect(&server, (&rs, &rs_secret), &access),
        json!({"active": false}),
        "expired"
    );
    assert_eq!(
        server.post_form("/oauth2/v1/introspect", Some(&basic(&rs, "wrong")), "token=x").status,
        401
    );
}

fn assertion(key: &ed25519_dalek::SigningKey, header: Value, claims: Value) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
}

fn with_assertion(server: &TestServer, client_assertion: &str) -> Resp {
    let body = format!(
        "grant_type=client_credentials&client_assertion_type={}&client_assertion={}",
        form("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        form(client_assertion)
    );
    server.post_form("/oauth2/v1/token", None, &body)
}

#[test]
fn private_key_jwt_follows_rfc_7523() {
    let server = TestServer::start();
    let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let (_, id, _) =
        server.create_app(json!({"name": "keyed", "scopes": ["a"], "publicKeyJwk": jwk(&key)}));
    let now = server.clock.now();
    let aud = format!("{}/oauth2/v1/token", server.url);
    let claims = |jti: &str, exp: u64, aud: &str| json!({"iss": id, "sub": id, "aud": aud, "exp": exp, "iat": now, "jti": jti});
    let header = json!({"alg": "EdDSA", "typ": "JWT"});

    let good = assertion(&key, header.clone(), claims("j1", now + 60, &aud));
    let res = with_assertion(&server, &good);
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json()["scope"], "a");
    // The issuer is an accepted audience too.
    assert_eq!(
        with_assertion(
            &server,
            &assertion(&key, header.clone(), claims("j2", now + 60, &server.url))
        )
        .status,
        200
    );

    let other = ed25519_dalek::SigningKey::from_bytes(&[8; 32]);
    let refused = [
        ("replayed jti", good.clone()),
        ("wrong key", assertion(&other, header.clone(), claims("j3", now + 60, &aud))),
        (
            "wrong audience",
            assertion(&key, header.clone(), claims("j4", now + 60, "https://elsewhere")),
        ),
        ("expired", assertion(&key, header.clone(), claims("j5", now - 100, &aud))),
        ("too long-lived", assertion(&key, header.clone(), claims("j6", now + 3600, &aud))),
        (
            "embedded jwk",
            assertion(
                &key,
                json!({"alg": "EdDSA", "jwk": jwk(&key)}),
                claims("j7", now + 60, &aud),
            ),
        ),
        (
            "jku",
            assertion(
                &key,
                json!({"alg": "EdDSA", "jku": "https://x"}),
                claims("j8", now + 60, &aud),
            ),
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
                URL_SAFE_NO_PAD.encode(claims("j9", now + 60, &aud).to_string())
            ),
        ),
        (
            "no jti",
            assertion(
                &key,
                header.clone(),
                json!({"iss": id, "sub": id, "aud": aud, "exp": now + 60}),
            ),
        ),
    ];
    for (why, a) in refused {
        let res = with_assertion(&server, &a);
        assert_eq!(res.status, 401, "{why}: {}", res.body);
        assert_eq!(res.json()["error"], "invalid_client", "{why}");
    }
    let meta = server.get("/.well-known/oauth-authorization-server", &[]).json();
    assert!(
        meta["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("private_key_jwt"))
    );
}

#[test]
fn cleanup_removes_expired_grant_state() {
    let server = TestServer::start_with(|c| c.refresh_token_ttl = 100);
    let (_, id, secret) = refresh_app(&server, &["a"]);
    let res = server.token_response(&id, &secret, None);
    let access = res.json()["access_token"].as_str().unwrap().to_string();
    let t1 = rt(&res);
    assert_eq!(revoke(&server, (&id, &secret), &access), 200);
    let grants = server.issuer().grants();
    let store = grants.store().unwrap();
    assert_eq!(store.revoked_access_tokens().unwrap().len(), 1);
    assert!(
        store
            .refresh_status(&tessera_core::auth::secret::parse_split_secret(&t1).unwrap())
            .unwrap()
            .is_some()
    );

    server.clock.advance(3601);
    grants.submit_blocking(GrantOp::Cleanup { now: server.clock.now(), audit_before: 0 }).unwrap();
    assert!(store.revoked_access_tokens().unwrap().is_empty(), "revocations pruned after exp");
    assert!(
        store
            .refresh_status(&tessera_core::auth::secret::parse_split_secret(&t1).unwrap())
            .unwrap()
            .is_none(),
        "expired token gone"
    );
    assert!(grants.revoked().is_empty());
}

#[test]
fn the_store_file_holds_no_raw_refresh_token_or_secret() {
    let server = TestServer::start();
    let (_, id, secret) = refresh_app(&server, &["a"]);
    let mut tokens = vec![rt(&server.token_response(&id, &secret, None))];
    for _ in 0..5 {
        let next = rt(&refresh(&server, tokens.last().unwrap(), None, None));
        tokens.push(next);
    }
    let path = server.dir.path().join("tessera.redb");
    let dir = server.stop();
    let file = std::fs::read(&path).unwrap();
    for needle in tokens.iter().chain([&secret]) {
        assert!(
            !file.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "found {needle} in the store file"
        );
    }
    drop(dir);
}

#[derive(Debug, Clone)]
enum FamilyOp {
    Redeem,
    Replay(usize),
    Revoke,
    Advance(u64),
    Disable,
    Enable,
    CheckAccess,
}

fn family_op() -> impl proptest::strategy::Strategy<Value = FamilyOp> {
    use proptest::prelude::*;
    prop_oneof![
        5 => Just(FamilyOp::Redeem),
        1 => (0usize..8).prop_map(FamilyOp::Replay),
        1 => Just(FamilyOp::Revoke),
        2 => (0u64..400).prop_map(FamilyOp::Advance),
        1 => Just(FamilyOp::Disable),
        1 => Just(FamilyOp::Enable),
        3 => Just(FamilyOp::CheckAccess),
    ]
}

/// The reference model of one refresh family: what must succeed and what must not.
#[derive(Debug)]
struct Model {
    current: String,
    current_exp: u64,
    spent: Vec<String>,
    is_revoked: bool,
    is_app_active: bool,
    access: String,
    access_exp: u64,
}

const REFRESH_TTL: u64 = 500;
const ACCESS_TTL: u64 = 300;

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 16, failure_persistence: None, ..Default::default() })]

    /// A refresh family against its model over HTTP: redeem, replay, revoke, expire, disable.
    #[test]
    fn refresh_family_matches_its_model(ops in proptest::collection::vec(family_op(), 1..24)) {
        let server = TestServer::start_with(|c| c.refresh_token_ttl = REFRESH_TTL);
        let (app, id, secret) = server.create_app(json!({
            "name": "m", "scopes": ["a"], "grantTypes": BOTH, "accessTokenTtlSecs": ACCESS_TTL
        }));
        let path = format!("/api/v1/apps/{}", app["id"].as_str().unwrap());
        let first = server.token_response(&id, &secret, None);
        let now = server.clock.now();
        let mut m = Model {
            current: rt(&first),
            current_exp: now + REFRESH_TTL,
            spent: Vec::new(),
            is_revoked: false,
            is_app_active: true,
            access: first.json()["access_token"].as_str().unwrap().to_string(),
            access_exp: now + ACCESS_TTL,
        };
        for op in ops {
            let now = server.clock.now();
            match op {
                FamilyOp::Redeem => {
                    let res = refresh(&server, &m.current, None, None);
                    let should = !m.is_revoked && m.is_app_active && now < m.current_exp;
                    proptest::prop_assert_eq!(res.status == 200, should, "redeem: {:?} {}", m, res.body);
                    if should {
                        m.spent.push(std::mem::replace(&mut m.current, rt(&res)));
                        m.current_exp = now + REFRESH_TTL;
                        m.access = res.json()["access_token"].as_str().unwrap().to_string();
                        m.access_exp = now + ACCESS_TTL;
                    } else if !m.is_app_active {
                        m.is_revoked = true;
                    }
                }
                FamilyOp::Replay(i) => {
                    if m.spent.is_empty() { continue; }
                    let token = m.spent[i % m.spent.len()].clone();
                    let res = refresh(&server, &token, None, None);
                    proptest::prop_assert_eq!(res.status, 400);
                    m.is_revoked = true;
                }
                FamilyOp::Revoke => {
                    // A disabled app cannot authenticate, so cannot revoke either.
                    let status = revoke(&server, (&id, &secret), &m.current);
                    proptest::prop_assert_eq!(status, if m.is_app_active { 200 } else { 401 });
                    m.is_revoked |= m.is_app_active;
                }
                FamilyOp::Advance(s) => server.clock.advance(s),
                FamilyOp::Disable | FamilyOp::Enable => {
                    let active = matches!(op, FamilyOp::Enable);
                    // A fresh root token: the clock may have outrun the first.
                    let res = server.admin("PUT", &path, &server.root_token(), Some(json!({"isActive": active})));
                    proptest::prop_assert_eq!(res.status, 200);
                    // Disabling ends the app's families at once, whatever comes after.
                    m.is_revoked |= m.is_app_active && !active;
                    m.is_app_active = active;
                }
                FamilyOp::CheckAccess => {
                    let (rs, rs_secret) = (crate::support::ROOT_ID, crate::support::ROOT_SECRET);
                    let active = introspect(&server, (rs, rs_secret), &m.access)["active"] == true;
                    let should = !m.is_revoked && m.is_app_active && now < m.access_exp;
                    proptest::prop_assert_eq!(active, should, "access: {:?}", m);
                }
            }
        }
    }
}

/// Issue 3: the scheduled sweep also runs while the grant queue never goes idle.
#[test]
fn cleanup_runs_under_steady_load() {
    let server = TestServer::start_with(|c| {
        c.refresh_token_ttl = 100;
        c.grant_cleanup_every = 1;
    });
    let (_, id, secret) = refresh_app(&server, &["a"]);
    let res = server.token_response(&id, &secret, None);
    let access = res.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(revoke(&server, (&id, &secret), &access), 200);
    server.clock.advance(3601);
    let store = server.issuer().grants().store().unwrap();
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_millis(2500) {
        rt(&server.token_response(&id, &secret, None));
        if store.revoked_access_tokens().unwrap().is_empty() {
            return;
        }
    }
    panic!("no sweep ran while grants kept arriving");
}
