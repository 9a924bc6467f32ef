//! Provider tokens and the hosted reauth flow (API.md §5, seed 004), against a stand-in OAuth
//! provider on a loopback port.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::support::{Resp, TestServer};

/// A provider's token endpoint: answers every code with a fresh token and remembers the bodies.
struct StandInProvider {
    url: String,
    bodies: Arc<Mutex<Vec<String>>>,
}

fn stand_in_provider() -> StandInProvider {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let bodies: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = Arc::clone(&bodies);
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).ok();
            seen.lock().unwrap().push(String::from_utf8_lossy(&body).into_owned());
            let answer = json!({"access_token": format!("provider-at-{n}"), "refresh_token": "provider-rt", "expires_in": 3600, "token_type": "bearer"}).to_string();
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
            stream.write_all(response.as_bytes()).ok();
        }
    });
    StandInProvider { url, bodies }
}

struct Setup {
    server: TestServer,
    key: String,
    user_id: String,
}

fn setup(provider: &StandInProvider) -> Setup {
    let server = TestServer::start();
    let (_, id, secret) =
        server.create_app(json!({"name": "ops", "scopes": ["read_service", "write_service"]}));
    let op = server.token(&id, &secret, None);
    let res = server.admin(
        "POST",
        "/api/v1/services",
        &op,
        Some(json!({"name": "acme", "callbackUris": ["https://app.acme.com/cb"]})),
    );
    let key = res.json()["apiKey"].as_str().unwrap().to_string();
    let res = server.admin("POST", "/api/v1/providers", &op, Some(json!({
        "name": "github", "authorizeUrl": "https://github.example/login/oauth/authorize",
        "tokenUrl": format!("{}/token", provider.url), "clientId": "gh-client", "clientSecret": "gh-secret"
    })));
    assert_eq!(res.status, 201, "{}", res.body);
    for (name, email) in [("ada", "ada@example.com"), ("eve", "eve@example.com")] {
        call(
            &server,
            &key,
            "POST",
            "/api/service/users",
            Some(json!({"email": email, "username": name, "password": "correct horse"})),
        );
    }
    let users = call(&server, &key, "GET", "/api/service/users", None).json();
    let user_id = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "ada")
        .unwrap()["user_id"]
        .as_str()
        .unwrap()
        .to_string();
    Setup { server, key, user_id }
}

fn call(server: &TestServer, key: &str, method: &str, path: &str, body: Option<Value>) -> Resp {
    let bytes = body.map(|b| b.to_string().into_bytes());
    let mut headers = vec![("x-api-key", key)];
    if bytes.is_some() {
        headers.push(("content-type", "application/json"));
    }
    server.request(method, path, &headers, bytes.as_deref())
}

fn ask(s: &Setup, scopes: &[&str], redirect: &str) -> Resp {
    call(
        &s.server,
        &s.key,
        "POST",
        "/api/service/provider-tokens",
        Some(json!({
            "user_id": s.user_id, "provider": "github", "scopes": scopes, "redirect_uri": redirect, "state": "client-state-1"
        })),
    )
}

fn path_of(url: &str, server: &TestServer) -> String {
    url.strip_prefix(&server.url).unwrap().to_string()
}

fn sign_in(server: &TestServer, state: &str, user: &str) -> String {
    let body = format!("state={state}&username={user}&password=correct+horse");
    let res = server.request(
        "POST",
        "/connect/sign-in",
        &[("content-type", "application/x-www-form-urlencoded")],
        Some(body.as_bytes()),
    );
    assert_eq!(res.status, 303, "{}", res.body);
    let cookie = res.header("set-cookie").unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("Secure") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    cookie.split(';').next().unwrap().to_string()
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

#[test]
fn the_whole_flow_from_action_required_to_ok() {
    let provider = stand_in_provider();
    let s = setup(&provider);
    let res = ask(&s, &["repo"], "https://app.acme.com/cb");
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json()["status"], "action_required");
    let reauth = res.json()["reauth_url"].as_str().unwrap().to_string();
    assert!(reauth.starts_with(&format!("{}/connect/provider-token/", s.server.url)));
    let hosted = path_of(&reauth, &s.server);
    let state = hosted.rsplit('/').next().unwrap().to_string();

    // Not signed in: a plain sign-in page, no external assets.
    let page = s.server.get(&hosted, &[]);
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("<form")
            && !page.body.contains("http://")
            && !page.body.contains("https://")
    );
    assert!(!page.body.contains("organization") && !page.body.contains("dashboard"));

    // Another user signed in: 403.
    let eve = sign_in(&s.server, &state, "eve");
    assert_eq!(s.server.get(&hosted, &[("cookie", &eve)]).status, 403);

    // The bound user: off to the provider with our own state.
    let ada = sign_in(&s.server, &state, "ada");
    let res = s.server.get(&hosted, &[("cookie", &ada)]);
    assert_eq!(res.status, 303, "{}", res.body);
    let to_provider = res.header("location").unwrap().to_string();
    assert!(to_provider.starts_with("https://github.example/login/oauth/authorize?"));
    assert_eq!(query_param(&to_provider, "client_id").as_deref(), Some("gh-client"));
    assert_eq!(query_param(&to_provider, "scope").as_deref(), Some("repo"));
    let provider_state = query_param(&to_provider, "state").unwrap();
    assert_ne!(provider_state, state, "the provider gets a state of its own");
    assert_eq!(
        query_param(&to_provider, "redirect_uri").unwrap(),
        format!("{}/connect/callback", s.server.url)
    );

    // The provider calls back; the code is exchanged; the user goes back to the service.
    let res = s.server.get(&format!("/connect/callback?code=the-code&state={provider_state}"), &[]);
    assert_eq!(res.status, 303, "{}", res.body);
    let back = res.header("location").unwrap().to_string();
    assert!(back.starts_with("https://app.acme.com/cb?"), "{back}");
    assert_eq!(query_param(&back, "provider_grant").as_deref(), Some("success"));
    assert_eq!(query_param(&back, "provider").as_deref(), Some("github"));
    assert_eq!(query_param(&back, "state").as_deref(), Some("client-state-1"));
    let exchanged = provider.bodies.lock().unwrap().clone();
    assert_eq!(exchanged.len(), 1);
    assert!(
        exchanged[0].contains("grant_type=authorization_code")
            && exchanged[0].contains("code=the-code")
            && exchanged[0].contains("client_secret=gh-secret")
    );

    // Now the grant covers the scopes: ok, with the provider's token.
    let res = ask(&s, &["repo"], "https://app.acme.com/cb");
    assert_eq!(res.json()["status"], "ok", "{}", res.body);
    assert_eq!(res.json()["access_token"], "provider-at-0");
    // Analytics counts what happened, for this service only.
    let figures =
        call(&s.server, &s.key, "GET", "/api/service/analytics", None).json()["analytics"].clone();
    assert_eq!(
        figures["provider_token_requests"],
        json!({"ok": 1, "action_required": 1, "completed": 1, "error": 0})
    );
    let per_day = figures["tokens_issued_per_day"].as_object().unwrap();
    let signed_in: u64 = per_day.values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(signed_in, 2, "ada and eve, both this service's users, signed in once each");
    // Expired: renewed with the provider's refresh token, without the user.
    s.server.clock.advance(3601);
    let res = ask(&s, &["repo"], "https://app.acme.com/cb");
    assert_eq!(res.json()["status"], "ok", "{}", res.body);
    assert_eq!(res.json()["access_token"], "provider-at-1");
    assert!(
        provider.bodies.lock().unwrap()[1]
            .contains("grant_type=refresh_token&refresh_token=provider-rt")
    );
    // Wider scopes need consent again.
    assert_eq!(
        ask(&s, &["repo", "gist"], "https://app.acme.com/cb").json()["status"],
        "action_required"
    );

    // One time only: the callback and the hosted URL are spent.
    assert_eq!(
        s.server.get(&format!("/connect/callback?code=again&state={provider_state}"), &[]).status,
        400
    );
    // (The session from before the clock moved has expired: sign in again.)
    let ada = sign_in(&s.server, &state, "ada");
    let res = s.server.get(&hosted, &[("cookie", &ada)]);
    assert_eq!(res.status, 303);
    assert_eq!(
        query_param(res.header("location").unwrap(), "reason").as_deref(),
        Some("already_used")
    );
    assert_eq!(provider.bodies.lock().unwrap().len(), 2, "no second code exchange");
}

#[test]
fn requests_are_bound_checked_and_expire() {
    let provider = stand_in_provider();
    let s = setup(&provider);
    // Unregistered callback: 400. Unknown provider or another service's user: 404.
    assert_eq!(ask(&s, &["repo"], "https://evil.example/cb").status, 400);
    let res = call(
        &s.server,
        &s.key,
        "POST",
        "/api/service/provider-tokens",
        Some(
            json!({"user_id": s.user_id, "provider": "nope", "scopes": ["x"], "redirect_uri": "https://app.acme.com/cb"}),
        ),
    );
    assert_eq!(res.status, 404);
    let res = call(
        &s.server,
        &s.key,
        "POST",
        "/api/service/provider-tokens",
        Some(
            json!({"user_id": "someone-else", "provider": "github", "scopes": ["x"], "redirect_uri": "https://app.acme.com/cb"}),
        ),
    );
    assert_eq!(res.status, 404);
    assert_eq!(
        call(&s.server, "sk_live_wrong", "POST", "/api/service/provider-tokens", Some(json!({})))
            .status,
        401
    );

    // A program may sign in with a Bearer user token instead of the cookie.
    let login = s.server.request(
        "POST",
        "/consumer/login",
        &[("content-type", "application/json")],
        Some(br#"{"username":"ada","password":"correct horse"}"#),
    );
    let bearer = format!("Bearer {}", login.json()["token"].as_str().unwrap());
    let reauth = ask(&s, &["repo"], "https://app.acme.com/cb").json()["reauth_url"]
        .as_str()
        .unwrap()
        .to_string();
    let hosted = path_of(&reauth, &s.server);
    assert_eq!(s.server.get(&hosted, &[("authorization", &bearer)]).status, 303);

    // Denied consent comes back as an error to the service.
    let res = s.server.get(&hosted, &[("authorization", &bearer)]);
    let provider_state = query_param(res.header("location").unwrap(), "state").unwrap();
    let res =
        s.server.get(&format!("/connect/callback?error=access_denied&state={provider_state}"), &[]);
    assert_eq!(
        query_param(res.header("location").unwrap(), "provider_grant").as_deref(),
        Some("error")
    );
    assert_eq!(query_param(res.header("location").unwrap(), "reason").as_deref(), Some("denied"));

    // Expiry: ten minutes.
    let reauth = ask(&s, &["repo"], "https://app.acme.com/cb").json()["reauth_url"]
        .as_str()
        .unwrap()
        .to_string();
    s.server.clock.advance(601);
    let login = s.server.request(
        "POST",
        "/consumer/login",
        &[("content-type", "application/json")],
        Some(br#"{"username":"ada","password":"correct horse"}"#),
    );
    let bearer = format!("Bearer {}", login.json()["token"].as_str().unwrap());
    let res = s.server.get(&path_of(&reauth, &s.server), &[("authorization", &bearer)]);
    assert_eq!(query_param(res.header("location").unwrap(), "reason").as_deref(), Some("expired"));
    // A forged state on the sign-in form: a clear page, not a header injection or a 500.
    let res = s.server.request(
        "POST",
        "/connect/sign-in",
        &[("content-type", "application/x-www-form-urlencoded")],
        Some(b"state=a%0d%0aX-Evil:%201&username=ada&password=correct+horse"),
    );
    assert_eq!(res.status, 400);
    // An unknown state: a clear page, no redirect.
    assert_eq!(s.server.get("/connect/provider-token/not-a-state", &[]).status, 400);
}

#[derive(Debug, Clone)]
enum Step {
    BeginAsBound,
    BeginAsOther,
    CallbackLatest,
    CallbackFirst,
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 8, failure_persistence: None, ..Default::default() })]

    /// A request completes at most once, only for its bound user, and grants only the scopes
    /// it asked for.
    #[test]
    fn a_request_completes_at_most_once_for_its_user_and_scopes(
        steps in proptest::collection::vec(proptest::prop_oneof![
            proptest::strategy::Just(Step::BeginAsBound),
            proptest::strategy::Just(Step::BeginAsOther),
            proptest::strategy::Just(Step::CallbackLatest),
            proptest::strategy::Just(Step::CallbackFirst),
        ], 1..10),
        asked in proptest::sample::subsequence(vec!["repo", "gist", "user"], 1..3),
    ) {
        let provider = stand_in_provider();
        let s = setup(&provider);
        let res = ask(&s, &asked, "https://app.acme.com/cb");
        let hosted = path_of(res.json()["reauth_url"].as_str().unwrap(), &s.server);
        let state = hosted.rsplit('/').next().unwrap().to_string();
        let ada = sign_in(&s.server, &state, "ada");
        let eve = sign_in(&s.server, &state, "eve");
        let (mut provider_states, mut completions) = (Vec::<String>::new(), 0);
        for step in steps {
            match step {
                Step::BeginAsOther => proptest::prop_assert_eq!(s.server.get(&hosted, &[("cookie", &eve)]).status, 403),
                Step::BeginAsBound => {
                    let res = s.server.get(&hosted, &[("cookie", &ada)]);
                    proptest::prop_assert_eq!(res.status, 303);
                    let location = res.header("location").unwrap().to_string();
                    if completions == 0 {
                        provider_states.push(query_param(&location, "state").unwrap());
                    } else {
                        proptest::prop_assert_eq!(query_param(&location, "reason"), Some("already_used".to_string()));
                    }
                }
                Step::CallbackLatest | Step::CallbackFirst => {
                    let pick = if matches!(step, Step::CallbackLatest) { provider_states.last() } else { provider_states.first() };
                    let Some(ps) = pick.cloned() else { continue };
                    let res = s.server.get(&format!("/connect/callback?code=c&state={ps}"), &[]);
                    let is_success = res.status == 303
                        && res.header("location").and_then(|l| query_param(l, "provider_grant")).as_deref() == Some("success");
                    if is_success {
                        completions += 1;
                        // Only the latest state we handed out can complete.
                        proptest::prop_assert_eq!(Some(&ps), provider_states.last());
                    }
                }
            }
            proptest::prop_assert!(completions <= 1, "completed twice");
        }
        // Only the requested scopes were granted.
        let all = ["repo", "gist", "user"];
        for scope in all {
            let status = ask(&s, &[scope], "https://app.acme.com/cb").json()["status"].as_str().unwrap().to_string();
            let covered = completions == 1 && asked.contains(&scope);
            proptest::prop_assert_eq!(status == "ok", covered, "scope {}", scope);
        }
    }
}
