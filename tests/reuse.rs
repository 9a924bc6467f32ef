//! Token reuse and issuance quotas (issue 14; docs/api.md, Token reuse and Issuance quotas).

use std::collections::{BTreeMap, HashSet};

use proptest::prelude::*;
use serde_json::{Value, json};
use tessera_core::clock::Clock;

use crate::dpop::{Claims, Key};
use crate::support::{Resp, TestServer, basic, form};

const API: &str = "https://api.example.com/orders";

fn cc(server: &TestServer, id: &str, secret: &str, extra: &str) -> Resp {
    let body = format!("grant_type=client_credentials{extra}");
    server.post_form("/oauth2/v1/token", Some(&basic(id, secret)), &body)
}

fn token(server: &TestServer, id: &str, secret: &str, extra: &str) -> Value {
    let res = cc(server, id, secret, extra);
    assert_eq!(res.status, 200, "{}", res.body);
    res.json()
}

fn access(answer: &Value) -> String {
    answer["access_token"].as_str().unwrap().to_string()
}

fn app_path(app: &Value) -> String {
    format!("/api/v1/apps/{}", app["id"].as_str().unwrap())
}

fn put(server: &TestServer, path: &str, body: Value) -> Resp {
    server.admin("PUT", path, &server.root_token(), Some(body))
}

fn post(server: &TestServer, path: &str) -> Resp {
    server.admin("POST", path, &server.root_token(), None)
}

fn revoke(server: &TestServer, id: &str, secret: &str, token: &str) {
    let body = format!("token={}", form(token));
    let res = server.post_form("/oauth2/v1/revoke", Some(&basic(id, secret)), &body);
    assert_eq!(res.status, 200, "{}", res.body);
}

fn metric(server: &TestServer, line: &str) -> bool {
    server.get("/metrics", &[]).body.lines().any(|l| l == line)
}

#[test]
fn issue_14_reuse_is_off_by_default_and_on_per_server_or_per_app() {
    let server = TestServer::start();
    let (_, plain, plain_secret) = server.create_app(json!({"name": "plain"}));
    let first = access(&token(&server, &plain, &plain_secret, ""));
    assert_ne!(first, access(&token(&server, &plain, &plain_secret, "")), "off by default");
    let (app, id, secret) = server.create_app(json!({"name": "reuser", "tokenReuse": true}));
    assert_eq!(app["tokenReuse"], true);
    let first = access(&token(&server, &id, &secret, ""));
    assert_eq!(first, access(&token(&server, &id, &secret, "")), "the app opted in");
    // `null` follows the server again, which is off.
    assert!(
        put(&server, &app_path(&app), json!({"tokenReuse": null})).json()["app"]
            .get("tokenReuse")
            .is_none()
    );
    let first = access(&token(&server, &id, &secret, ""));
    assert_ne!(first, access(&token(&server, &id, &secret, "")));
    drop(server);

    let server = TestServer::start_with(|c| c.token_reuse = true);
    let (_, id, secret) = server.create_app(json!({"name": "any"}));
    let first = access(&token(&server, &id, &secret, ""));
    assert_eq!(first, access(&token(&server, &id, &secret, "")), "the server opted in");
    let (_, out, out_secret) = server.create_app(json!({"name": "out", "tokenReuse": false}));
    let first = access(&token(&server, &out, &out_secret, ""));
    assert_ne!(first, access(&token(&server, &out, &out_secret, "")), "the app opted out");
    let reused = r#"tessera_token_requests_total{grant="client_credentials",outcome="reused"} "#;
    let body = server.get("/metrics", &[]).body;
    let count: u64 = body
        .lines()
        .find_map(|l| l.strip_prefix(reused))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no reused count in {body}"));
    // The app's one reuse, and the root app's tokens for the admin calls after its first.
    assert!(count >= 1, "{count}");
}

#[test]
fn issue_14_a_reused_token_keeps_its_expiry_until_half_its_life_is_gone() {
    let server = TestServer::start_with(|c| c.token_reuse = true);
    let (_, id, secret) = server.create_app(json!({"name": "a", "accessTokenTtlSecs": 1000}));
    let first = token(&server, &id, &secret, "");
    assert_eq!(first["expires_in"], 1000);
    server.clock.advance(200);
    let again = token(&server, &id, &secret, "");
    assert_eq!(again["access_token"], first["access_token"]);
    assert_eq!(again["expires_in"], 800);
    assert_eq!(again["expires_on"], first["expires_on"]);
    assert_eq!((again["token_type"].clone(), again["scope"].clone()), ("Bearer".into(), "".into()));
    server.clock.advance(300);
    assert_eq!(
        token(&server, &id, &secret, "")["access_token"],
        first["access_token"],
        "half left"
    );
    server.clock.advance(1);
    let next = token(&server, &id, &secret, "");
    assert_ne!(next["access_token"], first["access_token"], "less than half left");
    assert_eq!(next["expires_in"], 1000);
}

#[test]
fn issue_14_another_scope_set_resource_or_sender_key_gets_another_token() {
    let server = TestServer::start_with(|c| c.token_reuse = true);
    let root = server.root_token();
    for name in ["a", "b", "orders:read"] {
        let res = server.admin("POST", "/api/v1/scopes", &root, Some(json!({"name": name})));
        assert_eq!(res.status, 201, "{}", res.body);
    }
    let body = json!({"identifier": API, "name": "Orders", "scopes": ["orders:read"]});
    assert_eq!(server.admin("POST", "/api/v1/resources", &root, Some(body)).status, 201);
    let (_, id, secret) = server.create_app(json!({
        "name": "a", "scopes": ["a", "b"], "resources": {API: ["orders:read"]}
    }));
    let ab = access(&token(&server, &id, &secret, "&scope=a+b"));
    assert_eq!(ab, access(&token(&server, &id, &secret, "&scope=b+a")), "a set, not a list");
    assert_eq!(ab, access(&token(&server, &id, &secret, "")), "all its scopes are a b");
    let a = access(&token(&server, &id, &secret, "&scope=a"));
    assert_ne!(a, ab);
    assert_eq!(a, access(&token(&server, &id, &secret, "&scope=a")));
    let resource = format!("&resource={}", form(API));
    let orders = access(&token(&server, &id, &secret, &resource));
    assert!(![&a, &ab].contains(&&orders));
    assert_eq!(orders, access(&token(&server, &id, &secret, &resource)));

    let proved = |key: &Key| {
        let url = format!("{}/oauth2/v1/token", server.url);
        let claims = Claims {
            htm: "POST".into(),
            htu: url,
            iat: server.clock.now(),
            jti: format!("{}", rand::random::<u64>()),
            ath: None,
        };
        let proof = key.proof_with(&claims);
        let auth = basic(&id, &secret);
        let headers = [
            ("content-type", "application/x-www-form-urlencoded"),
            ("authorization", auth.as_str()),
            ("dpop", proof.as_str()),
        ];
        let res = server.request(
            "POST",
            "/oauth2/v1/token",
            &headers,
            Some(b"grant_type=client_credentials&scope=a"),
        );
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(res.json()["token_type"], "DPoP");
        access(&res.json())
    };
    let (one, two) = (Key::ed25519(1), Key::p256(2));
    let bound = proved(&one);
    assert!(![&a, &ab, &orders].contains(&&bound), "a bound token is never a bearer one");
    assert_eq!(bound, proved(&one), "the same key: the same token");
    assert_ne!(bound, proved(&two), "another key: another token");
}

#[test]
fn issue_14_revocation_disable_rotation_scope_and_grant_changes_end_reuse_at_once() {
    let server = TestServer::start_with(|c| c.token_reuse = true);
    let (app, id, secret) = server.create_app(json!({"name": "a", "scopes": ["read_app"]}));
    let path = app_path(&app);
    let mut seen = HashSet::new();
    let mut fresh = |server: &TestServer, secret: &str, why: &str| {
        let t = access(&token(server, &id, secret, ""));
        assert!(seen.insert(t.clone()), "{why}: a token handed out before came back");
        assert_eq!(t, access(&token(server, &id, secret, "")), "{why}: then reused again");
        t
    };
    let t = fresh(&server, &secret, "first");
    revoke(&server, &id, &secret, &t);
    fresh(&server, &secret, "revoked");
    assert_eq!(put(&server, &path, json!({"isActive": false})).status, 200);
    assert_eq!(cc(&server, &id, &secret, "").status, 401);
    assert_eq!(put(&server, &path, json!({"isActive": true})).status, 200);
    fresh(&server, &secret, "disabled and enabled");
    let started = post(&server, &format!("{path}/secrets/rotate/start"));
    assert_eq!(started.status, 200, "{}", started.body);
    let next = started.json()["nextSecret"].as_str().unwrap().to_string();
    fresh(&server, &secret, "rotation started");
    assert_eq!(post(&server, &format!("{path}/secrets/rotate")).status, 200);
    fresh(&server, &next, "rotation completed");
    assert_eq!(put(&server, &path, json!({"scopes": ["read_app", "read_key"]})).status, 200);
    fresh(&server, &next, "scopes changed");
    assert_eq!(put(&server, &path, json!({"accessTokenTtlSecs": 600})).status, 200);
    fresh(&server, &next, "lifetime changed");
    // With refresh_token, every request opens a family: nothing is reused.
    let grants = json!({"grantTypes": ["client_credentials", "refresh_token"]});
    assert_eq!(put(&server, &path, grants).status, 200);
    let one = token(&server, &id, &next, "");
    let two = token(&server, &id, &next, "");
    assert!(one["refresh_token"].is_string());
    assert_ne!(one["access_token"], two["access_token"]);
    let grants = json!({"grantTypes": ["client_credentials"]});
    assert_eq!(put(&server, &path, grants).status, 200);
    fresh(&server, &next, "grants changed");
}

#[test]
fn issue_14_a_forced_key_rotation_ends_reuse() {
    let server = TestServer::start_with(|c| c.token_reuse = true);
    let (_, id, secret) = server.create_app(json!({"name": "a"}));
    let first = access(&token(&server, &id, &secret, ""));
    let res = server.admin(
        "POST",
        "/api/v1/keys/rotate",
        &server.root_token(),
        Some(json!({"force": true})),
    );
    assert!(res.status == 200 || res.status == 201, "{}", res.body);
    assert_ne!(first, access(&token(&server, &id, &secret, "")));
}

#[test]
fn issue_14_a_quota_answers_429_with_retry_after_for_that_app_only_until_its_window_frees() {
    let server = TestServer::start();
    let (app, id, secret) = server.create_app(json!({"name": "q", "tokenQuota": {"perMinute": 3}}));
    assert_eq!(app["tokenQuota"], json!({"perMinute": 3}));
    let (_, other, other_secret) = server.create_app(json!({"name": "other"}));
    for _ in 0..3 {
        token(&server, &id, &secret, "");
    }
    server.clock.advance(20);
    let refused = cc(&server, &id, &secret, "");
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.header("retry-after"), Some("40"));
    assert_eq!(refused.header("cache-control"), Some("no-store"));
    assert_eq!(refused.json()["error"], "slow_down");
    assert!(refused.json()["error_description"].as_str().unwrap().contains("quota"));
    assert!(metric(
        &server,
        r#"tessera_token_requests_total{grant="client_credentials",outcome="quota"} 1"#
    ));
    token(&server, &other, &other_secret, "");
    server.clock.advance(40);
    token(&server, &id, &secret, "");
    // Removed: no limit.
    assert_eq!(put(&server, &app_path(&app), json!({"tokenQuota": null})).status, 200);
    for _ in 0..5 {
        token(&server, &id, &secret, "");
    }
}

#[test]
fn issue_14_a_reused_token_costs_no_quota_and_a_refresh_over_quota_stays_unspent() {
    let server = TestServer::start();
    let (app, id, secret) = server.create_app(json!({
        "name": "q", "tokenReuse": true, "tokenQuota": {"perMinute": 1}
    }));
    let first = access(&token(&server, &id, &secret, ""));
    for _ in 0..5 {
        assert_eq!(first, access(&token(&server, &id, &secret, "")));
    }
    assert_eq!(cc(&server, &id, &secret, "&scope=").status, 200, "the same set: reused");
    let grants =
        json!({"grantTypes": ["client_credentials", "refresh_token"], "tokenReuse": false});
    assert_eq!(put(&server, &app_path(&app), grants).status, 200);
    server.clock.advance(60);
    let opened = token(&server, &id, &secret, "");
    let rt = opened["refresh_token"].as_str().unwrap();
    let body = format!("grant_type=refresh_token&refresh_token={}", form(rt));
    let refused = server.post_form("/oauth2/v1/token", Some(&basic(&id, &secret)), &body);
    assert_eq!(refused.status, 429, "{}", refused.body);
    server.clock.advance(60);
    let refreshed = server.post_form("/oauth2/v1/token", Some(&basic(&id, &secret)), &body);
    assert_eq!(refreshed.status, 200, "the token was not spent: {}", refreshed.body);
}

#[test]
fn issue_14_bad_quotas_and_reuse_values_are_400_and_change_nothing() {
    let server = TestServer::start();
    let root = server.root_token();
    let (app, _, _) = server.create_app(json!({"name": "q", "tokenQuota": {"perMinute": 5}}));
    let path = app_path(&app);
    for bad in [
        json!({"perMinute": 0}),
        json!({"perMinute": 1_000_001}),
        json!({"perMinute": -1}),
        json!({"perMinute": "10"}),
        json!({"perMinute": 5_000_000_000u64}),
        json!({"perMinute": 5, "perHour": 9}),
        json!({}),
        json!(7),
    ] {
        let res = server.admin("PUT", &path, &root, Some(json!({"tokenQuota": bad})));
        assert_eq!(res.status, 400, "{bad}: {}", res.body);
        let res = server.admin(
            "POST",
            "/api/v1/apps",
            &root,
            Some(json!({"name": "n", "tokenQuota": bad})),
        );
        assert_eq!(res.status, 400, "{bad}: {}", res.body);
    }
    let res = server.admin("PUT", &path, &root, Some(json!({"tokenQuota": {"perMinute": 0}})));
    assert!(
        res.body.contains("tokenQuota.perMinute must be between 1 and 1000000"),
        "{}",
        res.body
    );
    let res = server.admin("PUT", &path, &root, Some(json!({"tokenReuse": "yes"})));
    assert_eq!(res.status, 400, "{}", res.body);
    let now = server.admin("GET", &path, &root, None).json()["app"].clone();
    assert_eq!(now["tokenQuota"], json!({"perMinute": 5}));
    assert!(now.get("tokenReuse").is_none());
    assert_eq!(server.admin("GET", "/api/v1/apps", &root, None).json()["count"], 2);
}

#[derive(Debug, Clone)]
enum Step {
    /// A token for one of the scope requests below.
    Token(usize),
    /// Revokes the last token handed out for one of them.
    Revoke(usize),
    Disable,
    Enable,
    RotateStart,
    RotateComplete,
    /// Toggles a third scope on the app.
    Scopes,
    /// Toggles the refresh_token grant.
    Grants,
    Advance(u64),
}

/// The scope parameters asked with: the same set in two orders, one scope, and none.
const ASKED: [&str; 4] = ["&scope=a+b", "&scope=b+a", "&scope=a", ""];

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0..ASKED.len()).prop_map(Step::Token),
        2 => (0..ASKED.len()).prop_map(Step::Revoke),
        1 => Just(Step::Disable),
        1 => Just(Step::Enable),
        1 => Just(Step::RotateStart),
        1 => Just(Step::RotateComplete),
        1 => Just(Step::Scopes),
        1 => Just(Step::Grants),
        1 => (0u64..400).prop_map(Step::Advance),
    ]
}

/// What the model expects for one reuse key: the token last handed out and when.
#[derive(Debug, Clone)]
struct Last {
    token: String,
    iat: u64,
    exp: u64,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, failure_persistence: None, ..ProptestConfig::default() })]

    /// Random token requests, revocations, disables, rotations, scope and grant changes and
    /// clock moves: a token is handed out again exactly while the model says it may be, and
    /// never after an event that ended it.
    #[test]
    fn issue_14_a_reused_token_never_comes_back_after_an_event_that_ended_it(
        steps in proptest::collection::vec(step(), 1..30),
    ) {
        let server = TestServer::start();
        let root = server.root_token();
        for name in ["a", "b", "c"] {
            server.admin("POST", "/api/v1/scopes", &root, Some(json!({"name": name})));
        }
        let ttl = 600;
        let (app, id, mut secret) = server.create_app(json!({
            "name": "m", "scopes": ["a", "b"], "tokenReuse": true, "accessTokenTtlSecs": ttl
        }));
        let path = app_path(&app);
        let (mut active, mut wide, mut refresh) = (true, false, false);
        let mut next: Option<String> = None;
        // Reuse key (the scope set granted) → the last token; every token that ended.
        let mut last: BTreeMap<String, Last> = BTreeMap::new();
        let mut ended: HashSet<String> = HashSet::new();
        let mut everything: HashSet<String> = HashSet::new();
        let end_all = |last: &mut BTreeMap<String, Last>, ended: &mut HashSet<String>| {
            ended.extend(std::mem::take(last).into_values().map(|l| l.token));
        };
        for step in steps {
            let now = server.clock.now();
            match step {
                Step::Token(i) => {
                    let res = cc(&server, &id, &secret, ASKED[i]);
                    if !active {
                        prop_assert_eq!(res.status, 401);
                        continue;
                    }
                    prop_assert_eq!(res.status, 200, "{}", res.body);
                    let answer = res.json();
                    let t = access(&answer);
                    prop_assert!(!ended.contains(&t), "a token came back after an event that ended it");
                    let set = match (ASKED[i], wide) {
                        ("&scope=a", _) => "a",
                        ("", true) => "a b c",
                        _ => "a b",
                    };
                    let fresh = |l: &&Last| 2 * l.exp.saturating_sub(now) >= ttl;
                    match last.get(set).filter(fresh) {
                        Some(l) => {
                            prop_assert_eq!(&t, &l.token, "the token should have been reused");
                            prop_assert_eq!(answer["expires_in"].as_u64(), Some(l.exp - now));
                            prop_assert_eq!(l.iat + ttl, l.exp);
                        }
                        _ => {
                            prop_assert!(everything.insert(t.clone()), "an old token came back");
                            prop_assert_eq!(answer["expires_in"].as_u64(), Some(ttl));
                            if refresh {
                                prop_assert!(answer["refresh_token"].is_string());
                            } else {
                                let replaced = last.insert(set.into(), Last { token: t, iat: now, exp: now + ttl });
                                // Past its half-life: not handed out again either.
                                ended.extend(replaced.map(|l| l.token));
                            }
                        }
                    }
                }
                Step::Revoke(i) => {
                    let set = if ASKED[i] == "&scope=a" { "a" } else if ASKED[i].is_empty() && wide { "a b c" } else { "a b" };
                    // A disabled app cannot authenticate to revoke.
                    if let Some(l) = last.remove(set).filter(|_| active) {
                        revoke(&server, &id, &secret, &l.token);
                        ended.insert(l.token);
                    }
                }
                Step::Disable | Step::Enable => {
                    let on = matches!(step, Step::Enable);
                    prop_assert_eq!(put(&server, &path, json!({"isActive": on})).status, 200);
                    // Any change publishes the app anew, even one to what it was.
                    end_all(&mut last, &mut ended);
                    active = on;
                }
                Step::RotateStart => {
                    let res = post(&server, &format!("{path}/secrets/rotate/start"));
                    if next.is_none() {
                        prop_assert_eq!(res.status, 200, "{}", res.body);
                        next = Some(res.json()["nextSecret"].as_str().unwrap().to_string());
                        end_all(&mut last, &mut ended);
                    } else {
                        prop_assert_ne!(res.status, 200, "{}", res.body);
                    }
                }
                Step::RotateComplete => {
                    let res = post(&server, &format!("{path}/secrets/rotate"));
                    if let Some(new) = next.take() {
                        prop_assert_eq!(res.status, 200, "{}", res.body);
                        secret = new;
                        end_all(&mut last, &mut ended);
                    } else {
                        prop_assert_ne!(res.status, 200, "{}", res.body);
                    }
                }
                Step::Scopes => {
                    wide = !wide;
                    let scopes = if wide { json!(["a", "b", "c"]) } else { json!(["a", "b"]) };
                    prop_assert_eq!(put(&server, &path, json!({"scopes": scopes})).status, 200);
                    end_all(&mut last, &mut ended);
                }
                Step::Grants => {
                    refresh = !refresh;
                    let grants = if refresh { json!(["client_credentials", "refresh_token"]) } else { json!(["client_credentials"]) };
                    prop_assert_eq!(put(&server, &path, json!({"grantTypes": grants})).status, 200);
                    end_all(&mut last, &mut ended);
                }
                Step::Advance(secs) => server.clock.advance(secs),
            }
        }
    }
}

/// Found while adding `quota`: answers with no outcome of their own were counted as
/// `temporarily_unavailable`.
#[test]
fn issue_14_invalid_target_and_invalid_dpop_proof_are_counted_under_their_own_codes() {
    let server = TestServer::start();
    let (_, id, secret) = server.create_app(json!({"name": "a"}));
    assert_eq!(cc(&server, &id, &secret, "&resource=https%3A%2F%2Fnope.example").status, 400);
    let auth = basic(&id, &secret);
    let headers = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("authorization", auth.as_str()),
        ("dpop", "not-a-proof"),
    ];
    let body = b"grant_type=client_credentials";
    assert_eq!(server.request("POST", "/oauth2/v1/token", &headers, Some(body)).status, 400);
    let counted = |outcome: &str| {
        let line = format!(
            r#"tessera_token_requests_total{{grant="client_credentials",outcome="{outcome}"}} 1"#
        );
        metric(&server, &line)
    };
    assert!(counted("invalid_target") && counted("invalid_dpop_proof"));
    assert!(!counted("temporarily_unavailable"));
}
