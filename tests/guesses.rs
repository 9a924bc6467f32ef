//! Password guessing: failures are counted before Argon2id runs, so concurrent guesses cannot
//! all be evaluated; the Argon2id queue is bounded; and with user credentials allowed at the
//! token endpoint, a known client id costs the same work as an unknown name.

use std::sync::Arc;

use serde_json::json;

use crate::support::{Resp, TestServer, basic};

fn login(server: &TestServer, username: &str, password: &str) -> Resp {
    server.post_json("/consumer/login", json!({"username": username, "password": password}))
}

fn user_credentials(server: &TestServer, username: &str, password: &str) -> Resp {
    server.post_form(
        "/oauth2/v1/token",
        Some(&basic(username, password)),
        "grant_type=client_credentials",
    )
}

/// A way to send a username and password.
type PasswordPath = fn(&TestServer, &str, &str) -> Resp;

/// `n` attempts at once; the statuses they got.
fn all_at_once(n: usize, attempt: impl Fn() -> u16 + Send + Sync + 'static) -> Vec<u16> {
    let attempt = Arc::new(attempt);
    let barrier = Arc::new(std::sync::Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (attempt, barrier) = (Arc::clone(&attempt), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                attempt()
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

#[test]
fn issue_8_concurrent_wrong_guesses_are_counted_before_argon2_runs() {
    let server = Arc::new(TestServer::start_with(|c| {
        c.failures_per_client = 3;
        c.failures_per_address = 1000;
        c.allow_user_credentials = true;
    }));
    for name in ["ada", "bob"] {
        assert_eq!(server.register(name).status, 201);
    }
    let paths: [(&str, PasswordPath); 2] = [("ada", login), ("bob", user_credentials)];
    for (user, path) in paths {
        let s = Arc::clone(&server);
        let statuses = all_at_once(12, move || path(&s, user, "wrong guess").status);
        let evaluated = statuses.iter().filter(|&&s| s == 401).count();
        let refused = statuses.iter().filter(|&&s| s == 429).count();
        assert_eq!((evaluated, refused), (3, 9), "{user}: {statuses:?}");
        // The window is full for the right password too, until it ends.
        assert_eq!(path(&server, user, "correct horse").status, 429);
        server.clock.advance(61);
        assert_eq!(path(&server, user, "correct horse").status, 200);
    }
    // A right password gives its reservation back: successes never fill a window.
    for _ in 0..5 {
        assert_eq!(login(&server, "ada", "correct horse").status, 200);
    }
    // App secrets at the token endpoint follow the same rule.
    let (_, id, _) = server.create_app(json!({"name": "svc", "scopes": []}));
    let s = Arc::clone(&server);
    let statuses = all_at_once(12, move || {
        s.post_form("/token", Some(&basic(&id, "wrong-secret")), "grant_type=client_credentials")
            .status
    });
    assert_eq!(statuses.iter().filter(|&&s| s == 401).count(), 3, "{statuses:?}");
}

#[test]
fn issue_8_a_full_password_queue_answers_503_with_retry_after() {
    let server = Arc::new(TestServer::start_with(|c| {
        c.password_queue = 2;
        c.failures_per_address = 1000;
    }));
    let s = Arc::clone(&server);
    let n = std::sync::atomic::AtomicUsize::new(0);
    let statuses = all_at_once(16, move || {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let res = login(&s, &format!("nobody{i}"), "wrong guess");
        if res.status == 503 {
            assert_eq!(res.header("retry-after"), Some("1"));
            assert_eq!(res.json()["error"], "temporarily_unavailable");
        }
        res.status
    });
    let busy = statuses.iter().filter(|&&s| s == 503).count();
    assert!(busy > 0, "two threads and two waiting places cannot take 16 at once: {statuses:?}");
    assert!(statuses.iter().all(|&s| s == 401 || s == 503), "{statuses:?}");
    // Afterwards the queue is free again.
    assert_eq!(login(&server, "nobody", "wrong guess").status, 401);
}

#[test]
fn issue_8_a_known_client_id_costs_the_same_argon2_work_as_an_unknown_name() {
    let server = TestServer::start_with(|c| c.allow_user_credentials = true);
    let (_, id, secret) = server.create_app(json!({"name": "svc", "scopes": []}));
    let cost = |client_id: &str, secret: &str| {
        let before = server.passwords.computed();
        let res = user_credentials(&server, client_id, secret);
        (res.status, server.passwords.computed() - before)
    };
    let unknown = cost("nobody-at-all", "wrong");
    let known = cost(&id, "wrong");
    assert_eq!(unknown, (401, 1));
    assert_eq!(known, unknown, "same answer, same work");
    // The right secret is not slowed down.
    assert_eq!(cost(&id, &secret), (200, 0));
}

#[test]
fn issue_8_a_person_is_one_limit_whatever_name_they_are_guessed_by() {
    let server = TestServer::start_with(|c| {
        c.failures_per_client = 3;
        c.failures_per_address = 1000;
    });
    assert_eq!(server.register("ada").status, 201);
    // Username and email (any case) draw on one window: the person's.
    for name in ["ada", "ADA@example.com", "ada@example.com"] {
        assert_eq!(login(&server, name, "wrong guess").status, 401);
    }
    assert_eq!(login(&server, "Ada", "correct horse").status, 429);
    // A name too long for a window of its own (it can only be nobody's) shares a wider
    // overflow window, but is still limited.
    let long = format!("{}@example.com", "x".repeat(200));
    let refused_at = (1..=200).find(|_| login(&server, &long, "guess").status == 429);
    assert!(refused_at.is_some_and(|n| n <= 3 * 32 + 1), "{refused_at:?}");
    // A typed name never takes a person's window.
    server.clock.advance(61);
    let auth_id = server.admin("GET", "/api/v1/users", &server.root_token(), None).json()["users"]
        [0]["authId"]
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..5 {
        login(&server, &format!("user:{auth_id}"), "guess");
    }
    assert_eq!(login(&server, "ada", "correct horse").status, 200);
}

#[test]
fn issue_8_a_bogus_invitation_costs_no_argon2_hash() {
    let server = TestServer::start();
    let before = server.passwords.computed();
    let body = json!({"token": "not-an-invitation", "password": "a good password"});
    let res = server.post_json("/consumer/invitations/accept", body);
    assert_eq!(res.status, 400, "{}", res.body);
    assert_eq!(server.passwords.computed(), before, "refused before hashing");
}

#[test]
fn issue_8_with_user_credentials_a_client_id_and_an_unknown_name_are_limited_alike() {
    let server = TestServer::start_with(|c| {
        c.allow_user_credentials = true;
        c.failures_per_client = 3;
        c.failures_per_address = 1000;
    });
    let (_, id, _) = server.create_app(json!({"name": "svc", "scopes": []}));
    // Three failures, then the same name, then the name in another case: an app id and a name
    // that is nobody's answer the same sequence.
    let trace = |name: &str| {
        let mut statuses: Vec<u16> =
            (0..4).map(|_| user_credentials(&server, name, "wrong").status).collect();
        statuses.push(user_credentials(&server, &name.to_uppercase(), "wrong").status);
        statuses
    };
    assert_eq!(trace(&id), trace("nobody-at-all-xyz"));
    assert_eq!(trace("someone-else"), [401, 401, 401, 429, 401]);
}

#[test]
fn issue_8_bogus_invitations_are_limited_per_address() {
    let server = TestServer::start_with(|c| c.failures_per_client = 3);
    let body = json!({"token": "not-an-invitation", "password": "a good password"});
    let statuses: Vec<u16> = (0..5)
        .map(|_| server.post_json("/consumer/invitations/accept", body.clone()).status)
        .collect();
    assert_eq!(statuses, [400, 400, 400, 429, 429]);
}
