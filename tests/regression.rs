//! Regression tests, named after the issue that found them.

use serde_json::json;

use crate::support::{ROOT_ID, ROOT_SECRET, TestServer, basic};

/// Issue 2 review: narrowing `max_access_token_ttl` across a restart must not shorten how long
/// a retiring key stays published (tokens signed under the old cap are still live).
#[test]
fn issue_2_rotation_rules_never_narrow_across_restarts() {
    let server = TestServer::start_with(|c| c.max_access_token_ttl = 86_400);
    let dir = server.stop();
    let config = tessera::config::Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        max_access_token_ttl: 7200,
        ..Default::default()
    };
    let server = TestServer::start_in(dir, config, crate::support::now());
    let root = server.root_token();
    let keys = server.admin("POST", "/api/v1/keys/rotate", &root, None).json();
    let retiring =
        keys["keys"].as_array().unwrap().iter().find(|k| k["state"] == "retiring").unwrap().clone();
    let parse = |v: &serde_json::Value| {
        time::OffsetDateTime::parse(
            v.as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    let kept = parse(&retiring["removeAfter"]) - parse(&retiring["retiredAt"]);
    assert_eq!(kept.whole_seconds(), 86_400);
}

/// Issue 2 review: a scope of only separators is "no scope asked for", never an empty-scope
/// token.
#[test]
fn issue_2_blank_scope_is_treated_as_omitted() {
    let server = TestServer::start();
    let res = server.post_form(
        "/token",
        Some(&basic(ROOT_ID, ROOT_SECRET)),
        "grant_type=client_credentials&scope=+++",
    );
    assert_eq!(res.status, 200);
    assert_eq!(res.json()["scope"], json!("root"));
}

/// Issue 2 review: a weak validator in If-None-Match still gets 304 (RFC 9110 §13.1.2).
#[test]
fn issue_2_weak_etag_matches() {
    let server = TestServer::start();
    let etag = server.get("/.well-known/jwks.json", &[]).header("etag").unwrap().to_string();
    let weak = format!("W/{etag}");
    assert_eq!(server.get("/.well-known/jwks.json", &[("if-none-match", &weak)]).status, 304);
}

/// Issue 4 review: the root app may not take the client id of user tokens, or every user
/// token would speak for the root app at the admin API.
#[test]
fn issue_4_root_client_id_cannot_be_the_consumer_id() {
    let dir = tempfile::tempdir().unwrap();
    let config = tessera::config::Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    let root = tessera_actors::clients::RootCredentials {
        client_id: tessera_actors::client::CONSUMER_CLIENT_ID.into(),
        client_secret: ROOT_SECRET.into(),
    };
    let clock = tessera_actors::clock::ManualClock::new(crate::support::now());
    let started = actix_web::rt::System::new()
        .block_on(async { tessera::start(config, Some(root), None, clock).await.map(|_| ()) });
    assert!(started.is_err_and(|e| e.to_string().contains("tessera-consumer")));
}
