//! Issue 10: several `tessera serve` processes on one real PostgreSQL database, as operators
//! run them. Each test gets a fresh database (see `tessera_storage::test_cluster`) and starts
//! the real binary three times on loopback ports.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tessera_storage::test_cluster::{TestDatabase, fresh_database};

const ROOT_ID: &str = "nodes-root";
const ISSUER: &str = "http://localhost:8080";
const ROOT_SECRET: &str = "nodes-root-secret-0123456789abcdef";
/// A change made at one node must be in force at every node within this.
const PROPAGATION: Duration = Duration::from_secs(1);

pub struct Node {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Node {
    /// Starts the real binary on `db` and waits for its "listening" line.
    pub fn start(db: &TestDatabase) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["serve", "--listen", "127.0.0.1:0", "--store", db.url()])
            .env("TESSERA_DATA_DIR", dir.path())
            // Behind one load balancer every node is the same issuer.
            .env("TESSERA_ISSUER", ISSUER)
            .env("TESSERA_ROOT_CLIENT_ID", ROOT_ID)
            .env("TESSERA_ROOT_CLIENT_SECRET", ROOT_SECRET)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn tessera");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            let line = lines.next().expect("tessera printed its address").expect("line");
            if let Some(url) = line.strip_prefix("tessera listening on ") {
                break url.trim().to_string();
            }
        };
        Node { child, url, _dir: dir }
    }

    pub fn kill_9(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let url = format!("{}{path}", self.url);
        let auth = bearer.map(|t| format!("Bearer {t}"));
        let res = match (method, body) {
            ("GET", _) => {
                let mut req = agent.get(&url);
                if let Some(a) = &auth {
                    req = req.header("authorization", a);
                }
                req.call()
            }
            (m, body) => {
                let mut req = match m {
                    "POST" => agent.post(&url),
                    "PUT" => agent.put(&url),
                    _ => unreachable!("method {m}"),
                };
                if let Some(a) = &auth {
                    req = req.header("authorization", a);
                }
                req.send_json(body.unwrap_or(json!({})))
            }
        };
        let mut res = res.expect("HTTP exchange");
        let status = res.status().as_u16();
        let text = res.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The token endpoint with a form body: (status, answer).
    pub fn token(&self, form: &str, basic: Option<(&str, &str)>) -> (u16, Value) {
        self.oauth2("/oauth2/v1/token", form, basic)
    }

    /// An OAuth endpoint (token, introspection, revocation) with a form body: (status, answer).
    pub fn oauth2(&self, path: &str, form: &str, basic: Option<(&str, &str)>) -> (u16, Value) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let mut req = agent
            .post(format!("{}{path}", self.url))
            .content_type("application/x-www-form-urlencoded");
        if let Some((id, secret)) = basic {
            use base64::Engine;
            let b = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
            req = req.header("authorization", format!("Basic {b}"));
        }
        let mut res = req.send(form.to_string()).expect("token exchange");
        let status = res.status().as_u16();
        let text = res.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub fn root_token(&self) -> String {
        let (status, body) =
            self.token("grant_type=client_credentials", Some((ROOT_ID, ROOT_SECRET)));
        assert_eq!(status, 200, "root token at {}: {body}", self.url);
        body["access_token"].as_str().unwrap().to_string()
    }

    pub fn admin(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.call(method, path, Some(token), body)
    }
}

/// A fresh database and three nodes on it, or `None` (with a note) where no PostgreSQL can be had.
fn three_nodes() -> Option<(TestDatabase, [Node; 3])> {
    let db = fresh_database()?;
    let a = Node::start(&db);
    let b = Node::start(&db);
    let c = Node::start(&db);
    Some((db, [a, b, c]))
}

/// Polls `check` until it holds or `within` has passed; the time it took.
fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if check() {
            return Some(start.elapsed());
        }
        if start.elapsed() > within {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn issue_10_a_change_at_one_node_is_in_force_at_every_node_within_a_second() {
    let Some((_db, [a, b, c])) = three_nodes() else { return };
    // The root app was created once, whichever node started first: all three accept it.
    let root = a.root_token();
    b.root_token();
    c.root_token();
    let (status, created) = a.admin(
        "POST",
        "/api/v1/apps",
        &root,
        Some(json!({"name": "orders", "scopes": ["orders:read"]})),
    );
    assert_eq!(status, 201, "{created}");
    let id = created["app"]["id"].as_str().unwrap().to_string();
    let client_id = created["app"]["clientId"].as_str().unwrap().to_string();
    let secret = created["app"]["secret"].as_str().unwrap().to_string();
    let creds = Some((client_id.as_str(), secret.as_str()));
    let took = eventually(PROPAGATION, || b.token("grant_type=client_credentials", creds).0 == 200)
        .expect("the app created at A issues tokens at B within a second");
    eprintln!("create at A → token at B: {took:?}");

    let (status, _) = b.admin(
        "PUT",
        &format!("/api/v1/apps/{id}"),
        &b.root_token(),
        Some(json!({"isActive": false})),
    );
    assert_eq!(status, 200);
    let took = eventually(PROPAGATION, || c.token("grant_type=client_credentials", creds).0 == 401)
        .expect("the app disabled at B is refused at C within a second");
    eprintln!("disable at B → refused at C: {took:?}");
    eventually(PROPAGATION, || a.token("grant_type=client_credentials", creds).0 == 401)
        .expect("and at A");
}

/// Creates an app at `node` and waits until every node issues it tokens: its client id and
/// secret.
fn app_known_everywhere(nodes: &[Node], node: &Node, body: Value) -> (String, String) {
    let (status, created) = node.admin("POST", "/api/v1/apps", &node.root_token(), Some(body));
    assert_eq!(status, 201, "{created}");
    let client_id = created["app"]["clientId"].as_str().unwrap().to_string();
    let secret = created["app"]["secret"].as_str().unwrap().to_string();
    let creds = Some((client_id.as_str(), secret.as_str()));
    eventually(PROPAGATION, || {
        nodes.iter().all(|n| n.token("grant_type=client_credentials", creds).0 == 200)
    })
    .expect("every node knows the app");
    (client_id, secret)
}

#[test]
fn issue_10_of_concurrent_redemptions_at_three_nodes_exactly_one_wins() {
    let Some((_db, nodes)) = three_nodes() else { return };
    let body = json!({"name": "refresher", "scopes": ["a"], "grantTypes": ["client_credentials", "refresh_token"]});
    let (client_id, secret) = app_known_everywhere(&nodes, &nodes[0], body);
    let creds = Some((client_id.as_str(), secret.as_str()));
    let (_, first) = nodes[1].token("grant_type=client_credentials", creds);
    let refresh = first["refresh_token"].as_str().expect("a refresh token").to_string();
    let form = format!("grant_type=refresh_token&refresh_token={refresh}");
    let answers: Vec<(u16, Value)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let node = &nodes[i % 3];
                let form = form.clone();
                s.spawn(move || node.token(&form, creds))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners: Vec<&Value> = answers.iter().filter(|(s, _)| *s == 200).map(|(_, b)| b).collect();
    assert_eq!(winners.len(), 1, "exactly one redemption wins: {answers:?}");
    assert!(
        answers
            .iter()
            .filter(|(s, _)| *s != 200)
            .all(|(s, b)| *s == 400 && b["error"] == "invalid_grant")
    );
    // The winner's new token was revoked with its family by the losers' reuse, at any node.
    let next = winners[0]["refresh_token"].as_str().unwrap();
    for node in &nodes {
        let (status, body) =
            node.token(&format!("grant_type=refresh_token&refresh_token={next}"), creds);
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    }
}

#[test]
fn issue_10_a_token_revoked_at_one_node_is_refused_at_the_others_within_a_second() {
    let Some((_db, nodes)) = three_nodes() else { return };
    let [a, b, c] = &nodes;
    let (client_id, secret) = app_known_everywhere(&nodes, a, json!({"name": "revoker"}));
    let creds = Some((client_id.as_str(), secret.as_str()));
    let (status, issued) = a.token("grant_type=client_credentials", creds);
    assert_eq!(status, 200, "{issued}");
    let access = issued["access_token"].as_str().unwrap().to_string();
    let introspect = |node: &Node| {
        let (status, answer) =
            node.oauth2("/oauth2/v1/introspect", &format!("token={access}"), creds);
        assert_eq!(status, 200, "{answer}");
        answer
    };
    for node in &nodes {
        assert_eq!(introspect(node)["active"], true, "live at {}", node.url);
    }
    let (status, _) = a.oauth2("/oauth2/v1/revoke", &format!("token={access}"), creds);
    assert_eq!(status, 200);
    assert_eq!(introspect(a), json!({"active": false}), "refused at once where it was revoked");
    for node in [b, c] {
        let took = eventually(PROPAGATION, || introspect(node) == json!({"active": false}))
            .unwrap_or_else(|| panic!("the revoked token is still active at {}", node.url));
        eprintln!("revoke at A → refused at {}: {took:?}", node.url);
    }
}

#[test]
fn issue_10_a_node_killed_under_load_takes_no_acknowledged_write_with_it() {
    let Some((_db, [mut a, b, c])) = three_nodes() else { return };
    let root = b.root_token();
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let node = if i % 2 == 0 { &a } else { &b };
        let (status, created) = node.admin(
            "POST",
            "/api/v1/apps",
            &node.root_token(),
            Some(json!({"name": format!("app-{i}")})),
        );
        assert_eq!(status, 201);
        acknowledged.push(created["app"]["id"].as_str().unwrap().to_string());
        if i == 9 {
            a.kill_9();
            break;
        }
    }
    // The other two keep answering, and every app acknowledged before the kill is there.
    for node in [&b, &c] {
        let has_all = || {
            let (status, list) = node.admin("GET", "/api/v1/apps?pageSize=1000", &root, None);
            assert_eq!(status, 200);
            let ids: Vec<&str> = list["apps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["id"].as_str().unwrap())
                .collect();
            acknowledged.iter().all(|id| ids.contains(&id.as_str()))
        };
        eventually(PROPAGATION, has_all)
            .unwrap_or_else(|| panic!("every acknowledged app is at {}", node.url));
        assert_eq!(
            node.token("grant_type=client_credentials", Some((ROOT_ID, ROOT_SECRET))).0,
            200
        );
    }
}
