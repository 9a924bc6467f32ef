//! Provider tokens and the hosted reauth flow (docs/api.md, Service API, AuthOS's service API), against a stand-in OAuth
//! provider on a loopback port.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::support::{Jar, Resp, TestServer};

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
    setup_on(TestServer::start(), provider)
}

fn setup_on(server: TestServer, provider: &StandInProvider) -> Setup {
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
        server.service_call(
            &key,
            "POST",
            "/api/service/users",
            Some(json!({"email": email, "username": name, "password": "correct horse"})),
        );
    }
    let users = server.service_call(&key, "GET", "/api/service/users", None).json();
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

fn ask(s: &Setup, scopes: &[&str], redirect: &str) -> Resp {
    s.server.service_call(&s.key,
        "POST",
        "/api/service/provider-tokens",
        Some(json!({
            "user_id": s.user_id, "provider": "github", "scopes": scopes, "redirect_uri": redirect, "state": "client-state-1"
        })),
    )
}

/// The path of one of our URLs (the issuer may not be the address the test listens on).
fn path_of(url: &str, _server: &TestServer) -> String {
    url[url.find("/connect/").expect("a hosted-flow URL")..].to_string()
}

/// The hidden CSRF token of a hosted-flow form.
fn csrf_of(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let at = page.find(marker).expect("a CSRF field") + marker.len();
    page[at..].split('"').next().unwrap().to_string()
}

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

/// Signs `user` in on the hosted page `hosted`, as a browser would: the page, then its form.
fn sign_in(server: &TestServer, jar: &mut Jar, hosted: &str, user: &str) {
    let page = server.browse(jar, "GET", hosted, &[], None);
    assert_eq!(page.status, 200, "{}", page.body);
    let state = hosted.rsplit('/').next().unwrap();
    let body = format!(
        "state={state}&csrf={}&username={user}&password=correct+horse",
        csrf_of(&page.body)
    );
    let res = server.browse(jar, "POST", "/connect/sign-in", &[FORM], Some(body.as_bytes()));
    assert_eq!(res.status, 303, "{}", res.body);
    let cookie = res.set_cookies.iter().find(|c| c.starts_with("tessera_session=")).unwrap();
    // A plain-http issuer: no `Secure`, or an ordinary cookie jar would drop it.
    assert!(
        cookie.contains("HttpOnly")
            && !cookie.contains("Secure")
            && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
}

/// A consumer login's user token, as a program would send it.
fn bearer(server: &TestServer, user: &str) -> String {
    let body = format!(r#"{{"username":"{user}","password":"correct horse"}}"#);
    let login = server.request(
        "POST",
        "/consumer/login",
        &[("content-type", "application/json")],
        Some(body.as_bytes()),
    );
    format!("Bearer {}", login.json()["token"].as_str().unwrap())
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
    let mut eve = Jar::default();
    sign_in(&s.server, &mut eve, &hosted, "eve");
    assert_eq!(s.server.browse(&mut eve, "GET", &hosted, &[], None).status, 403);

    // The bound user: off to the provider with our own state.
    let mut ada = Jar::default();
    sign_in(&s.server, &mut ada, &hosted, "ada");
    let res = s.server.browse(&mut ada, "GET", &hosted, &[], None);
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
    let callback = format!("/connect/callback?code=the-code&state={provider_state}");
    let res = s.server.browse(&mut ada, "GET", &callback, &[], None);
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
        s.server.service_call(&s.key, "GET", "/api/service/analytics", None).json()["analytics"]
            .clone();
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
    let again = format!("/connect/callback?code=again&state={provider_state}");
    assert_eq!(s.server.browse(&mut ada, "GET", &again, &[], None).status, 400);
    // The sign-in page gives no session for a spent request; a program's token still learns
    // that it is spent.
    let page = s.server.browse(&mut ada, "GET", &hosted, &[], None);
    let body =
        format!("state={state}&csrf={}&username=ada&password=correct+horse", csrf_of(&page.body));
    let res = s.server.browse(&mut ada, "POST", "/connect/sign-in", &[FORM], Some(body.as_bytes()));
    assert_eq!(res.status, 400);
    assert!(res.set_cookies.iter().all(|c| !c.starts_with("tessera_session=")));
    let res = s.server.get(&hosted, &[("authorization", &bearer(&s.server, "ada"))]);
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
    let res = s.server.service_call(&s.key,
        "POST",
        "/api/service/provider-tokens",
        Some(
            json!({"user_id": s.user_id, "provider": "nope", "scopes": ["x"], "redirect_uri": "https://app.acme.com/cb"}),
        ),
    );
    assert_eq!(res.status, 404);
    let res = s.server.service_call(&s.key,
        "POST",
        "/api/service/provider-tokens",
        Some(
            json!({"user_id": "someone-else", "provider": "github", "scopes": ["x"], "redirect_uri": "https://app.acme.com/cb"}),
        ),
    );
    assert_eq!(res.status, 404);
    assert_eq!(
        s.server
            .service_call("sk_live_wrong", "POST", "/api/service/provider-tokens", Some(json!({})))
            .status,
        401
    );

    // A program may sign in with a Bearer user token instead of the cookie (it keeps the
    // flow-binding cookie like any HTTP client with a cookie jar).
    let token = bearer(&s.server, "ada");
    let auth = [("authorization", token.as_str())];
    let mut program = Jar::default();
    let reauth = ask(&s, &["repo"], "https://app.acme.com/cb").json()["reauth_url"]
        .as_str()
        .unwrap()
        .to_string();
    let hosted = path_of(&reauth, &s.server);
    assert_eq!(s.server.browse(&mut program, "GET", &hosted, &auth, None).status, 303);

    // Denied consent comes back as an error to the service.
    let res = s.server.browse(&mut program, "GET", &hosted, &auth, None);
    let provider_state = query_param(res.header("location").unwrap(), "state").unwrap();
    let denied = format!("/connect/callback?error=access_denied&state={provider_state}");
    let res = s.server.browse(&mut program, "GET", &denied, &auth, None);
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
    let token = bearer(&s.server, "ada");
    let res = s.server.get(&path_of(&reauth, &s.server), &[("authorization", &token)]);
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

/// The reauth URL's path for a fresh request of `user` (ada or eve).
/// Asks for a `repo` token for `user` (ada or eve) at the stand-in provider.
fn ask_for(s: &Setup, user: &str) -> Value {
    let users = s.server.service_call(&s.key, "GET", "/api/service/users", None).json();
    let found = users["users"].as_array().unwrap().iter().find(|u| u["username"] == user);
    let body = json!({
        "user_id": found.unwrap()["user_id"], "provider": "github", "scopes": ["repo"],
        "redirect_uri": "https://app.acme.com/cb", "state": "st"
    });
    s.server.service_call(&s.key, "POST", "/api/service/provider-tokens", Some(body)).json()
}

/// The reauth URL's path for a fresh request of `user`.
fn fresh_request(s: &Setup, user: &str) -> String {
    path_of(ask_for(s, user)["reauth_url"].as_str().unwrap(), &s.server)
}

fn eve_has_grant(s: &Setup) -> bool {
    ask_for(s, "eve")["status"] == "ok"
}

#[test]
fn issue_8_a_provider_url_handed_to_a_victim_completes_nothing() {
    let provider = stand_in_provider();
    let s = setup(&provider);
    // The attacker (eve) starts a flow for her own user and stops at the provider redirect.
    let hosted = fresh_request(&s, "eve");
    let mut attacker = Jar::default();
    sign_in(&s.server, &mut attacker, &hosted, "eve");
    let res = s.server.browse(&mut attacker, "GET", &hosted, &[], None);
    let to_provider = res.header("location").unwrap().to_string();
    let provider_state = query_param(&to_provider, "state").unwrap();
    let binding = attacker.names().into_iter().find(|n| n.starts_with("tessera_flow_")).unwrap();
    assert!(!attacker.get(&binding).unwrap().contains(&provider_state), "a hash, not the state");
    let binding_cookie =
        res.set_cookies.iter().find(|c| c.starts_with(&format!("{binding}="))).unwrap();
    assert!(
        binding_cookie.contains("HttpOnly")
            && binding_cookie.contains("SameSite=Lax")
            && binding_cookie.contains("Path=/connect/callback"),
        "{binding_cookie}"
    );
    // The victim approves at the provider and is sent back with the victim's code: signed out,
    // or signed in as herself, her browser holds no binding for this flow.
    let callback = format!("/connect/callback?code=victims-code&state={provider_state}");
    let mut victim = Jar::default();
    let mut signed_in_victim = Jar::default();
    sign_in(&s.server, &mut signed_in_victim, &fresh_request(&s, "ada"), "ada");
    // Even with the attacker's binding cookie copied over, another user's session is refused.
    let mut mixed = signed_in_victim.clone();
    mixed.absorb(&Resp {
        status: 0,
        headers: Default::default(),
        set_cookies: vec![format!("{binding}={}", attacker.get(&binding).unwrap())],
        body: String::new(),
    });
    for jar in [&mut victim, &mut signed_in_victim, &mut mixed] {
        let res = s.server.browse(jar, "GET", &callback, &[], None);
        assert_eq!(res.status, 303, "{}", res.body);
        let back = res.header("location").unwrap();
        assert!(back.starts_with("https://app.acme.com/cb?"), "{back}");
        assert_eq!(query_param(back, "provider_grant").as_deref(), Some("error"));
        assert_eq!(query_param(back, "reason").as_deref(), Some("session_mismatch"));
    }
    // Nothing was exchanged or stored: the attacker's user holds no grant.
    assert!(provider.bodies.lock().unwrap().is_empty(), "the victim's code was never exchanged");
    assert!(!eve_has_grant(&s));
    // The browser that started the flow still can finish it.
    let res = s.server.browse(&mut attacker, "GET", &callback, &[], None);
    assert_eq!(
        query_param(res.header("location").unwrap(), "provider_grant").as_deref(),
        Some("success")
    );
    assert!(attacker.names().iter().all(|n| n != &binding), "the binding is cleared once used");
}

#[test]
fn issue_8_sign_in_needs_a_csrf_token_our_origin_and_a_live_request() {
    let provider = stand_in_provider();
    let s = setup(&provider);
    let hosted = fresh_request(&s, "ada");
    let state = hosted.rsplit('/').next().unwrap().to_string();
    let mut jar = Jar::default();
    let page = s.server.browse(&mut jar, "GET", &hosted, &[], None);
    let csrf = csrf_of(&page.body);
    assert!(
        page.set_cookies
            .iter()
            .any(|c| c.starts_with("tessera_csrf=") && c.contains("SameSite=Strict"))
    );
    let form = |state: &str, csrf: &str| {
        format!("state={state}&csrf={csrf}&username=ada&password=correct+horse").into_bytes()
    };
    let no_session =
        |res: &Resp| res.set_cookies.iter().all(|c| !c.starts_with("tessera_session="));
    // A page on another site: its own form post carries no CSRF cookie, or a foreign Origin.
    let res = s.server.request("POST", "/connect/sign-in", &[FORM], Some(&form(&state, &csrf)));
    assert_eq!(res.status, 403);
    assert!(no_session(&res));
    let wrong = s.server.browse(
        &mut jar.clone(),
        "POST",
        "/connect/sign-in",
        &[FORM],
        Some(&form(&state, "forged")),
    );
    assert_eq!(wrong.status, 403);
    for header in
        [("origin", "https://evil.example"), ("sec-fetch-site", "cross-site"), ("origin", "null")]
    {
        let res = s.server.browse(
            &mut jar.clone(),
            "POST",
            "/connect/sign-in",
            &[FORM, header],
            Some(&form(&state, &csrf)),
        );
        assert_eq!(res.status, 403, "{header:?}");
        assert!(no_session(&res));
    }
    // A state that is not a live request of ours: refused, no cookie.
    for bad in ["not-a-request-of-ours", "a"] {
        let res = s.server.browse(
            &mut jar.clone(),
            "POST",
            "/connect/sign-in",
            &[FORM],
            Some(&form(bad, &csrf)),
        );
        assert_eq!(res.status, 400);
        assert!(no_session(&res));
    }
    // Our own page, same origin: signed in, with a short session.
    let origin = ("origin", s.server.url.as_str());
    let same = ("sec-fetch-site", "same-origin");
    let res = s.server.browse(
        &mut jar,
        "POST",
        "/connect/sign-in",
        &[FORM, origin, same],
        Some(&form(&state, &csrf)),
    );
    assert_eq!(res.status, 303, "{}", res.body);
    let session = res.set_cookies.iter().find(|c| c.starts_with("tessera_session=")).unwrap();
    let max_age: u64 =
        session.split("Max-Age=").nth(1).unwrap().split(';').next().unwrap().parse().unwrap();
    assert!(max_age <= 900, "{session}");
    let session_token = jar.get("tessera_session").unwrap().to_string();
    let claims = crate::support::claims(&session_token);
    assert_eq!(claims["scope"], "", "a session opens nothing else");
    // The session cannot call the admin API, and is refused as an app token at introspection.
    assert_eq!(s.server.admin("GET", "/info", &session_token, None).status, 401);
    // An expired request gives no session either.
    let stale = fresh_request(&s, "ada");
    let mut other = Jar::default();
    let page = s.server.browse(&mut other, "GET", &stale, &[], None);
    s.server.clock.advance(601);
    let stale_state = stale.rsplit('/').next().unwrap();
    let res = s.server.browse(
        &mut other,
        "POST",
        "/connect/sign-in",
        &[FORM],
        Some(&form(stale_state, &csrf_of(&page.body))),
    );
    assert_eq!(res.status, 400);
    assert!(no_session(&res));
}

#[test]
fn issue_8_a_wrong_session_can_sign_out_and_its_token_dies() {
    let provider = stand_in_provider();
    let s = setup(&provider);
    let hosted = fresh_request(&s, "ada");
    let state = hosted.rsplit('/').next().unwrap().to_string();
    // Eve signed in on a shared browser; ada opens her link.
    let mut jar = Jar::default();
    sign_in(&s.server, &mut jar, &fresh_request(&s, "eve"), "eve");
    let eve_session = jar.get("tessera_session").unwrap().to_string();
    let page = s.server.browse(&mut jar, "GET", &hosted, &[], None);
    assert_eq!(page.status, 403);
    assert!(page.body.contains("/connect/sign-out"), "{}", page.body);
    // Sign-out also needs the CSRF token.
    let forged = format!("state={state}&csrf=forged");
    let res = s.server.browse(
        &mut jar.clone(),
        "POST",
        "/connect/sign-out",
        &[FORM],
        Some(forged.as_bytes()),
    );
    assert_eq!(res.status, 403);
    let body = format!("state={state}&csrf={}", csrf_of(&page.body));
    let res =
        s.server.browse(&mut jar, "POST", "/connect/sign-out", &[FORM], Some(body.as_bytes()));
    assert_eq!(res.status, 303);
    assert_eq!(res.header("location"), Some(hosted.as_str()));
    assert!(jar.get("tessera_session").is_none(), "the cookie is cleared");
    // A copy of the old session is worthless: it is revoked, not just forgotten.
    let res = s.server.get(&hosted, &[("cookie", &format!("tessera_session={eve_session}"))]);
    assert_eq!(res.status, 200, "the sign-in page, not eve's 403");
    // Now ada can sign in on that browser.
    sign_in(&s.server, &mut jar, &hosted, "ada");
    assert_eq!(s.server.browse(&mut jar, "GET", &hosted, &[], None).status, 303);
}

#[test]
fn issue_8_cookies_are_secure_when_the_issuer_is_https() {
    // However the scheme is written, an https issuer gets `__Host-` cookies: Secure, `Path=/`,
    // no `Domain`, so no sibling subdomain or plain-http page can plant a session or binding.
    let provider = stand_in_provider();
    let server = TestServer::start_with(|c| c.issuer = Some("HTTPS://Tessera.Example".into()));
    let s = setup_on(server, &provider);
    let hosted = fresh_request(&s, "ada");
    let is_host_cookie = |c: &String| {
        c.starts_with("__Host-tessera_")
            && c.contains("Secure")
            && c.contains("Path=/;")
            && !c.contains("Domain")
    };
    let mut jar = Jar::default();
    let page = s.server.browse(&mut jar, "GET", &hosted, &[], None);
    assert!(page.set_cookies.iter().all(is_host_cookie), "{:?}", page.set_cookies);
    let state = hosted.rsplit('/').next().unwrap();
    let body =
        format!("state={state}&csrf={}&username=ada&password=correct+horse", csrf_of(&page.body));
    let res = s.server.browse(
        &mut jar,
        "POST",
        "/connect/sign-in",
        &[FORM, ("origin", "https://tessera.example")],
        Some(body.as_bytes()),
    );
    assert_eq!(res.status, 303, "{}", res.body);
    assert!(res.set_cookies.iter().all(is_host_cookie), "{:?}", res.set_cookies);
    let res = s.server.browse(&mut jar, "GET", &hosted, &[], None);
    assert_eq!(res.status, 303);
    assert!(res.set_cookies.iter().all(is_host_cookie), "{:?}", res.set_cookies);
    assert_eq!(res.header("referrer-policy"), Some("same-origin"));
    // Cookies without the prefix (as a subdomain could set them) are not ours.
    let plain = jar.header().replace("__Host-", "");
    assert_eq!(s.server.get(&hosted, &[("cookie", &plain)]).status, 200, "the sign-in page");
    // The issuer's origin is ours; the address we happen to listen on is not.
    let res = s.server.browse(
        &mut jar.clone(),
        "POST",
        "/connect/sign-in",
        &[FORM, ("origin", s.server.url.as_str())],
        Some(body.as_bytes()),
    );
    assert_eq!(res.status, 403);
}

#[test]
fn issue_8_concurrent_wrong_sign_ins_are_counted_before_argon2_runs() {
    let provider = stand_in_provider();
    let server = TestServer::start_with(|c| {
        c.failures_per_client = 3;
        c.failures_per_address = 1000;
    });
    let s = std::sync::Arc::new(setup_on(server, &provider));
    let hosted = fresh_request(&s, "ada");
    let mut jar = Jar::default();
    let page = s.server.browse(&mut jar, "GET", &hosted, &[], None);
    let state = hosted.rsplit('/').next().unwrap().to_string();
    let body =
        format!("state={state}&csrf={}&username=ada&password=wrong+guess", csrf_of(&page.body));
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(12));
    let threads: Vec<_> = (0..12)
        .map(|_| {
            let (s, barrier, body, mut jar) = (
                std::sync::Arc::clone(&s),
                std::sync::Arc::clone(&barrier),
                body.clone(),
                jar.clone(),
            );
            std::thread::spawn(move || {
                barrier.wait();
                s.server
                    .browse(&mut jar, "POST", "/connect/sign-in", &[FORM], Some(body.as_bytes()))
                    .status
            })
        })
        .collect();
    let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let evaluated = statuses.iter().filter(|&&c| c == 401).count();
    assert_eq!((evaluated, statuses.len() - evaluated), (3, 9), "{statuses:?}");
    assert!(statuses.iter().all(|&c| c == 401 || c == 429), "{statuses:?}");
}

/// A provider token URL that answers every request with a redirect to `to`.
fn redirecting_token_url(to: &str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    let to = to.to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let answer = format!(
                "HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            stream.write_all(answer.as_bytes()).ok();
        }
    });
    url
}

#[test]
fn issue_8_provider_redirects_are_not_followed_and_inactive_users_get_nothing() {
    let provider = stand_in_provider();
    let s = setup(&provider);
    let token_url = redirecting_token_url(&format!("{}/token", provider.url));
    let res = s.server.admin(
        "POST",
        "/api/v1/providers",
        &s.server.root_token(),
        Some(json!({
            "name": "redirecting", "authorizeUrl": "https://redirecting.example/authorize",
            "tokenUrl": token_url, "clientId": "c", "clientSecret": "the-secret"
        })),
    );
    assert_eq!(res.status, 201, "{}", res.body);
    let body = json!({"user_id": s.user_id, "provider": "redirecting", "scopes": ["repo"], "redirect_uri": "https://app.acme.com/cb"});
    let res =
        s.server.service_call(&s.key, "POST", "/api/service/provider-tokens", Some(body.clone()));
    let hosted = path_of(res.json()["reauth_url"].as_str().unwrap(), &s.server);
    let mut ada = Jar::default();
    sign_in(&s.server, &mut ada, &hosted, "ada");
    let res = s.server.browse(&mut ada, "GET", &hosted, &[], None);
    let provider_state = query_param(res.header("location").unwrap(), "state").unwrap();
    let callback = format!("/connect/callback?code=c&state={provider_state}");
    let res = s.server.browse(&mut ada, "GET", &callback, &[], None);
    assert_eq!(
        query_param(res.header("location").unwrap(), "reason").as_deref(),
        Some("provider_error")
    );
    assert!(
        provider.bodies.lock().unwrap().is_empty(),
        "the redirect, and our secret, went nowhere"
    );
    // A deactivated user gets no provider token and no consent link.
    let patch = json!({"is_active": false});
    let res = s.server.service_call(
        &s.key,
        "PATCH",
        &format!("/api/service/users/{}", s.user_id),
        Some(patch),
    );
    assert_eq!(res.status, 200, "{}", res.body);
    let res = s.server.service_call(&s.key, "POST", "/api/service/provider-tokens", Some(body));
    assert_eq!(res.status, 400, "{}", res.body);
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
        let (mut ada, mut eve) = (Jar::default(), Jar::default());
        sign_in(&s.server, &mut ada, &hosted, "ada");
        sign_in(&s.server, &mut eve, &hosted, "eve");
        let (mut provider_states, mut completions) = (Vec::<String>::new(), 0);
        for step in steps {
            match step {
                Step::BeginAsOther => proptest::prop_assert_eq!(s.server.browse(&mut eve, "GET", &hosted, &[], None).status, 403),
                Step::BeginAsBound => {
                    let res = s.server.browse(&mut ada, "GET", &hosted, &[], None);
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
                    let res = s.server.browse(&mut ada, "GET", &format!("/connect/callback?code=c&state={ps}"), &[], None);
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

#[test]
fn issue_12_a_dpop_bound_user_token_is_no_bearer_credential_at_the_hosted_pages() {
    let provider = stand_in_provider();
    let s = setup(&provider);
    let body = r#"{"username":"ada","password":"correct horse"}"#;
    let json_type = [("content-type", "application/json")];
    let login = s.server.request("POST", "/consumer/login", &json_type, Some(body.as_bytes()));
    let refresh = login.json()["refresh_token"].as_str().unwrap().to_string();
    // The user's refresh, with a proof: a token bound to the client's key.
    let key = crate::dpop::Key::ed25519(41);
    let proof = key.proof("POST", &format!("{}/oauth2/v1/token", s.server.url), None);
    let form = format!("grant_type=refresh_token&refresh_token={}", crate::support::form(&refresh));
    let headers = [FORM, ("dpop", proof.as_str())];
    let res = s.server.request("POST", "/oauth2/v1/token", &headers, Some(form.as_bytes()));
    assert_eq!(res.json()["token_type"], "DPoP", "{}", res.body);
    let bound = format!("Bearer {}", res.json()["access_token"].as_str().unwrap());

    let reauth = ask(&s, &["repo"], "https://app.acme.com/cb").json()["reauth_url"]
        .as_str()
        .unwrap()
        .to_string();
    let hosted = path_of(&reauth, &s.server);
    // Copied and presented as a bearer token, it signs nobody in: the sign-in page answers.
    let res = s.server.get(&hosted, &[("authorization", &bound)]);
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(res.body.contains("csrf"), "{}", res.body);
    // An unbound user token still does.
    let res = s.server.get(&hosted, &[("authorization", &bearer(&s.server, "ada"))]);
    assert_eq!(res.status, 303);
}
