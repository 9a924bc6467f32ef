//! Issue 10: several `tessera serve` processes on one real PostgreSQL database, as operators
//! run them. Each test gets a fresh database (see `tessera_storage::test_cluster`) and starts
//! the real binary on loopback ports; the outage test gets a PostgreSQL of its own to stop.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tessera_storage::test_cluster::{TestDatabase, fresh_database, private_cluster};

const ROOT_ID: &str = "nodes-root";
const ISSUER: &str = "http://localhost:8080";
const ROOT_SECRET: &str = "nodes-root-secret-0123456789abcdef";
/// Every node of a deployment opens the same sealed keys with the same KEK.
const KEK: &str = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";
/// A change made at one node must be in force at every node within this.
const PROPAGATION: Duration = Duration::from_secs(1);

/// What a node keeps its state in.
pub enum Backing<'a> {
    /// A PostgreSQL URL.
    Shared(&'a str),
    /// A data directory for the embedded store.
    Embedded(&'a std::path::Path),
}

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
        Node::start_on(db.url(), None)
    }

    /// [`Node::start`] with `config` as its TOML configuration file.
    pub fn start_with(db: &TestDatabase, config: Option<&str>) -> Node {
        Node::start_on(db.url(), config)
    }

    /// The same, on the database at `url`.
    pub fn start_on(url: &str, config: Option<&str>) -> Node {
        Node::start_at(Backing::Shared(url), config)
    }

    pub fn start_at(backing: Backing<'_>, config: Option<&str>) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
        command.args(["serve", "--listen", "127.0.0.1:0"]);
        match backing {
            Backing::Shared(url) => command.args(["--store", url]),
            Backing::Embedded(data_dir) => command.arg("--data-dir").arg(data_dir),
        };
        if let Some(config) = config {
            let path = dir.path().join("tessera.toml");
            std::fs::write(&path, config).unwrap();
            command.arg("--config").arg(path);
        }
        let mut child = command
            .env("TESSERA_DATA_DIR", dir.path())
            // Behind one load balancer every node is the same issuer.
            .env("TESSERA_ISSUER", ISSUER)
            .env("TESSERA_ROOT_CLIENT_ID", ROOT_ID)
            .env("TESSERA_ROOT_CLIENT_SECRET", ROOT_SECRET)
            .env("TESSERA_KEK", KEK)
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

    /// Stops the node as an operator does (SIGTERM), and waits for it to exit.
    pub fn stop(&mut self) {
        Command::new("kill").arg(self.child.id().to_string()).status().expect("kill");
        self.child.wait().ok();
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
        let answer = self.exchange(method, path, bearer, body);
        (answer.status, answer.body)
    }

    /// One HTTP exchange, with the headers a test looks at.
    fn exchange(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
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
        Answer::read(res.expect("HTTP exchange"))
    }

    /// The token endpoint with a form body: (status, answer).
    pub fn token(&self, form: &str, basic: Option<(&str, &str)>) -> (u16, Value) {
        let answer = self.oauth("/oauth2/v1/token", form, basic);
        (answer.status, answer.body)
    }

    /// An OAuth endpoint (token, introspection, revocation) with a form body: (status, answer).
    pub fn oauth2(&self, path: &str, form: &str, basic: Option<(&str, &str)>) -> (u16, Value) {
        let answer = self.oauth(path, form, basic);
        (answer.status, answer.body)
    }

    /// An OAuth endpoint with a form body, with the headers a test looks at.
    fn oauth(&self, path: &str, form: &str, basic: Option<(&str, &str)>) -> Answer {
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
        Answer::read(req.send(form.to_string()).expect("OAuth exchange"))
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

    /// `POST /api/v1/apps/import` with a JSON Lines body.
    fn import(&self, token: &str, lines: &str) -> (u16, Value) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let req = agent
            .post(format!("{}/api/v1/apps/import", self.url))
            .header("authorization", format!("Bearer {token}"))
            .content_type("application/x-ndjson");
        let answer = Answer::read(req.send(lines.to_string()).expect("HTTP exchange"));
        (answer.status, answer.body)
    }

    /// Creates an app; its client id and secret.
    fn create_app(&self, token: &str, body: Value) -> (String, String) {
        let (status, created) = self.admin("POST", "/api/v1/apps", token, Some(body));
        assert_eq!(status, 201, "{created}");
        let field = |name: &str| created["app"][name].as_str().unwrap().to_string();
        (field("clientId"), field("secret"))
    }
}

/// What a node answered.
#[derive(Debug)]
struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: Value,
}

impl Answer {
    fn read(mut res: ureq::http::Response<ureq::Body>) -> Answer {
        let status = res.status().as_u16();
        let retry_after =
            res.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(String::from);
        let text = res.body_mut().read_to_string().unwrap_or_default();
        Answer { status, retry_after, body: serde_json::from_str(&text).unwrap_or(Value::Null) }
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
    // Each follower reports how late the last change came in, by the database's clock.
    for node in [&a, &c] {
        let (status, ready) = node.call("GET", "/readyz", None, None);
        let lag = ready["change_lag_seconds"].as_f64();
        assert!(status == 200 && lag.is_some_and(|l| l < 1.0), "{ready}");
        let metrics = ureq::get(format!("{}/metrics", node.url)).call().unwrap();
        let metrics = metrics.into_body().read_to_string().unwrap();
        assert!(metrics.contains("\ntessera_change_lag_seconds "), "{metrics}");
    }
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

/// The JWKS `max-age` of the rotation test: a rotation is safe again a few seconds after the
/// last one.
const MAX_AGE: Duration = Duration::from_secs(1);
/// How long a node may take to learn of another's key change, as the nodes assume it.
const KEY_PROPAGATION: Duration = Duration::from_secs(2);

/// A JWKS as one node served it.
struct Served {
    node: usize,
    sent: Instant,
    received: Instant,
    kids: BTreeSet<String>,
    /// Index of its body among the distinct bodies served.
    body: usize,
}

/// An access token one node minted.
struct Minted {
    node: usize,
    received: Instant,
    kid: String,
    token: String,
}

#[test]
fn issue_10_rotations_at_every_node_keep_every_jwks_valid() {
    let Some(db) = fresh_database() else { return };
    let config = format!("[keys]\njwks_max_age = {}\n", MAX_AGE.as_secs());
    let nodes: Vec<Node> = (0..3).map(|_| Node::start_with(&db, Some(&config))).collect();
    let started = Instant::now();
    let stop = started + Duration::from_secs(14);
    let (served, bodies, minted, rounds) = std::thread::scope(|s| {
        let checker = s.spawn(|| watch_jwks(&nodes, stop));
        // Rotations at every node, all three at once each round: one rotates the ring, the
        // others either answer with the ring as it now is or refuse with its new `safeAt`.
        let mut rounds = Vec::new();
        let mut keys = nodes[0].admin("GET", "/api/v1/keys", &nodes[0].root_token(), None).1;
        let mut turn = 0;
        while Instant::now() + Duration::from_secs(1) < stop {
            let answers: Vec<(u16, Value)> = std::thread::scope(|s| {
                let calls: Vec<_> = nodes
                    .iter()
                    .map(|n| {
                        s.spawn(move || {
                            let body = Some(json!({"force": false}));
                            n.admin("POST", "/api/v1/keys/rotate", &n.root_token(), body)
                        })
                    })
                    .collect();
                calls.into_iter().map(|c| c.join().unwrap()).collect()
            });
            let rings: Vec<(BTreeSet<String>, String)> = answers
                .iter()
                .filter(|(status, _)| *status == 200)
                .map(|(_, b)| ring_of(b))
                .collect();
            assert!(answers.iter().all(|(status, _)| [200, 409].contains(status)), "{answers:?}");
            if let Some(first) = rings.first() {
                assert!(
                    rings.iter().all(|r| r == first),
                    "every answer is the ring as it is: {answers:?}"
                );
                let before = ring_of(&keys).0;
                assert_eq!(first.0.len(), before.len() + 1, "exactly one rotation: {answers:?}");
                assert!(first.0.is_superset(&before), "no key lost: {before:?} → {answers:?}");
                keys = answers.iter().find(|(status, _)| *status == 200).unwrap().1.clone();
                rounds.push(answers);
            }
            // The next rotation waits for the new next key, asked of the next node in turn.
            turn += 1;
            let n = &nodes[turn % 3];
            let (status, refused) = n.admin(
                "POST",
                "/api/v1/keys/rotate",
                &n.root_token(),
                Some(json!({"force": false})),
            );
            assert_eq!(status, 409, "the fresh next key is not yet safe: {refused}");
            let safe_at = time::OffsetDateTime::parse(
                refused["safeAt"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap();
            let wait = (safe_at - time::OffsetDateTime::now_utc()).max(time::Duration::ZERO);
            std::thread::sleep(Duration::try_from(wait).unwrap() + Duration::from_millis(100));
        }
        let (served, bodies, minted) = checker.join().unwrap();
        (served, bodies, minted, rounds)
    });
    let statuses: Vec<Vec<u16>> =
        rounds.iter().map(|answers| answers.iter().map(|(status, _)| *status).collect()).collect();
    eprintln!(
        "{} rotation rounds {statuses:?}, {} JWKS fetched ({} distinct), {} tokens, in {:?}",
        rounds.len(),
        served.len(),
        bodies.len(),
        minted.len(),
        started.elapsed()
    );
    assert!(rounds.len() >= 3, "{} rotations", rounds.len());
    assert_rotation_invariant(&served, &bodies, &minted, started);
}

/// The scheduled half of (c): with a rotation due every few seconds, the lease holder alone
/// rotates, on time, and every node's JWKS keeps the invariant as the others learn of it.
#[test]
fn issue_10_scheduled_rotation_by_the_lease_holder_keeps_every_jwks_valid() {
    let Some(db) = fresh_database() else { return };
    let every = Duration::from_secs(4);
    let config = format!(
        "[keys]\njwks_max_age = {}\nrotate_every = {}\n",
        MAX_AGE.as_secs(),
        every.as_secs()
    );
    let nodes: Vec<Node> = (0..3).map(|_| Node::start_with(&db, Some(&config))).collect();
    let started = Instant::now();
    let run = Duration::from_secs(16);
    let (served, bodies, minted) = watch_jwks(&nodes, started + run);
    let (status, keys) = nodes[0].admin("GET", "/api/v1/keys", &nodes[0].root_token(), None);
    assert_eq!(status, 200);
    let kids = ring_of(&keys).0;
    let signed: BTreeSet<&str> = minted.iter().map(|t| t.kid.as_str()).collect();
    eprintln!("{} keys in the ring after {run:?}; tokens signed by {signed:?}", kids.len());
    // Two first keys, then one per rotation: a rotation each `every` at the most, since only
    // the lease holder rotates, and at least one each `every` plus the time a rotation waits
    // to be safe.
    let rotations = kids.len() - 2;
    let most = (run.as_secs() / every.as_secs() + 1) as usize;
    assert!((2..=most).contains(&rotations), "{rotations} rotations in {run:?}: {keys}");
    assert!(signed.len() >= 3, "the rotations reached the signers: {signed:?}");
    assert_rotation_invariant(&served, &bodies, &minted, started);
}

/// Fetches every node's JWKS and mints a token at every node, over and over until `stop`:
/// what verifiers and clients saw.
fn watch_jwks(nodes: &[Node], stop: Instant) -> (Vec<Served>, Vec<Value>, Vec<Minted>) {
    let (mut served, mut bodies, mut minted) = (Vec::new(), Vec::<Value>::new(), Vec::new());
    while Instant::now() < stop {
        for (node, n) in nodes.iter().enumerate() {
            let sent = Instant::now();
            let (status, jwks) = n.call("GET", "/.well-known/jwks.json", None, None);
            assert_eq!(status, 200);
            let kids = jwks["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["kid"].as_str().unwrap().to_string())
                .collect();
            let body = bodies.iter().position(|b| *b == jwks).unwrap_or_else(|| {
                bodies.push(jwks);
                bodies.len() - 1
            });
            served.push(Served { node, sent, received: Instant::now(), kids, body });
        }
        for (node, n) in nodes.iter().enumerate() {
            let token = n.root_token();
            minted.push(Minted { node, received: Instant::now(), kid: jwt_kid(&token), token });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (served, bodies, minted)
}

/// The rotation invariant, as verifiers meet it, over what [`watch_jwks`] saw.
fn assert_rotation_invariant(
    served: &[Served],
    bodies: &[Value],
    minted: &[Minted],
    started: Instant,
) {
    let at = |t: Instant| t.duration_since(started);
    // A token's key is in every JWKS served within one max-age before it was issued (a
    // verifier may hold such a JWKS still), and in every JWKS served since (no token expires
    // while this runs).
    let mut verified = BTreeSet::new();
    for (i, token) in minted.iter().enumerate() {
        for jwks in served.iter().filter(|f| f.sent + MAX_AGE > token.received) {
            assert!(
                jwks.kids.contains(&token.kid),
                "a token of node {} at {:?} is signed by {}, which node {}'s JWKS of {:?} lacks",
                token.node,
                at(token.received),
                token.kid,
                jwks.node,
                at(jwks.sent)
            );
            if verified.insert((i, jwks.body)) {
                assert!(
                    verifies(&token.token, &bodies[jwks.body]),
                    "{} at {:?}",
                    token.kid,
                    at(token.received)
                );
            }
        }
    }
    // No key leaves while this runs (no retired key has expired): once one node served a key,
    // every node serves it from at most the propagation time later.
    for first in served {
        for kid in &first.kids {
            for later in served.iter().filter(|f| f.sent > first.received + KEY_PROPAGATION) {
                assert!(
                    later.kids.contains(kid),
                    "{kid}, served by node {} at {:?}, is missing from node {}'s JWKS at {:?}",
                    first.node,
                    at(first.received),
                    later.node,
                    at(later.sent)
                );
            }
        }
    }
    // The rotations reached every node: each signed with the keys they promoted.
    for node in 0..3 {
        let kids: BTreeSet<&str> =
            minted.iter().filter(|t| t.node == node).map(|t| t.kid.as_str()).collect();
        assert!(kids.len() >= 3, "node {node} signed with {kids:?}");
    }
    eprintln!("{} (token, JWKS) signatures verified", verified.len());
}

/// The kids of a `{"keys":[…]}` answer of the admin API, and its current key.
fn ring_of(answer: &Value) -> (BTreeSet<String>, String) {
    let keys = answer["keys"].as_array().unwrap();
    let kids = keys.iter().map(|k| k["kid"].as_str().unwrap().to_string()).collect();
    let current = keys.iter().find(|k| k["state"] == "current").unwrap()["kid"].as_str().unwrap();
    (kids, current.to_string())
}

fn jwt_kid(token: &str) -> String {
    use base64::Engine;
    let header = token.split('.').next().unwrap();
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap();
    serde_json::from_slice::<Value>(&header).unwrap()["kid"].as_str().unwrap().to_string()
}

/// Whether `token`'s signature verifies with the key of its kid in `jwks`.
fn verifies(token: &str, jwks: &Value) -> bool {
    use base64::Engine;
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let kid = jwt_kid(token);
    let Some(jwk) = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid) else {
        return false;
    };
    let x: [u8; 32] = b64.decode(jwk["x"].as_str().unwrap()).unwrap().try_into().unwrap();
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let signature: [u8; 64] = b64.decode(signature).unwrap().try_into().unwrap();
    VerifyingKey::from_bytes(&x)
        .is_ok_and(|key| key.verify(signed.as_bytes(), &Signature::from_bytes(&signature)).is_ok())
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

#[test]
fn issue_10_store_migrate_applies_the_schema_once() {
    let Some(db) = fresh_database() else { return };
    let migrate = || {
        let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["store", "migrate", "--store", db.url()])
            .output()
            .expect("run tessera store migrate");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).expect("JSON answer")
    };
    let first = migrate();
    assert!(!first["applied"].as_array().unwrap().is_empty(), "{first}");
    assert_eq!(migrate(), json!({ "applied": [] }), "nothing left to apply");
    // A node starts on the migrated database as on an empty one.
    let node = Node::start(&db);
    node.root_token();
}

/// What a node tells a client to wait while the store cannot be reached.
const RETRY_AFTER: Option<&str> = Some("2");

#[test]
fn issue_10_a_database_outage_keeps_access_tokens_flowing_and_loses_nothing_acknowledged() {
    let began = Instant::now();
    let Some(pg) = private_cluster() else { return };
    let url = pg.database_url();
    let nodes = [Node::start_on(&url, None), Node::start_on(&url, None)];
    let [a, b] = &nodes;
    let root = a.root_token();
    let plain = a.create_app(&root, json!({"name": "plain", "scopes": ["orders:read"]}));
    let plain = Some((plain.0.as_str(), plain.1.as_str()));
    let body = json!({"name": "refresher", "scopes": ["a"], "grantTypes": ["client_credentials", "refresh_token"]});
    let refresher = b.create_app(&root, body);
    let refresher = Some((refresher.0.as_str(), refresher.1.as_str()));
    let cc = "grant_type=client_credentials";
    eventually(PROPAGATION, || {
        nodes.iter().all(|n| n.token(cc, plain).0 == 200 && n.token(cc, refresher).0 == 200)
    })
    .expect("both nodes know both apps");
    // Acknowledged: its family is durable before this answer was sent.
    let (status, first) = a.token(cc, refresher);
    assert_eq!(status, 200, "{first}");
    let r1 = first["refresh_token"].as_str().expect("a refresh token").to_string();
    let redeem_r1 = format!("grant_type=refresh_token&refresh_token={r1}");
    let readiness = |node: &Node| {
        let (status, body) = node.call("GET", "/readyz", None, None);
        (status, body["status"].clone(), body["store"].clone())
    };
    for node in &nodes {
        assert_eq!(readiness(node), (200, json!("ready"), json!("ok")));
    }

    pg.stop();
    let down = Instant::now();
    for node in &nodes {
        let took = eventually(Duration::from_secs(5), || {
            let (status, ready, store) = readiness(node);
            assert_eq!(
                (status, &ready),
                (200, &json!("ready")),
                "a node that can sign stays ready"
            );
            store == "unreachable"
        })
        .expect("/readyz names the store unreachable");
        eprintln!("store down → /readyz at {} says so: {took:?}", node.url);
    }
    let mut issued = 0;
    while down.elapsed() < Duration::from_secs(2) {
        for node in &nodes {
            let (status, body) = node.token(cc, plain);
            assert_eq!(status, 200, "access tokens keep coming at {}: {body}", node.url);
            assert!(body.get("refresh_token").is_none());
            issued += 1;
        }
    }
    eprintln!("{issued} access tokens issued during the outage");
    for node in &nodes {
        let (status, jwks) = node.call("GET", "/.well-known/jwks.json", None, None);
        assert_eq!(status, 200);
        assert!(!jwks["keys"].as_array().unwrap().is_empty(), "{jwks}");
        node.root_token();
        // Introspecting an access token needs nothing but memory.
        let (_, token) = node.token(cc, plain);
        let at = token["access_token"].as_str().unwrap();
        let introspected = node.oauth("/oauth2/v1/introspect", &format!("token={at}"), plain);
        assert_eq!((introspected.status, &introspected.body["active"]), (200, &json!(true)));

        // Writes wait for the store: each is refused with a time to come back.
        let unavailable = |what: &str, answer: Answer| {
            assert_eq!(
                (answer.status, answer.retry_after.as_deref(), answer.body["error"].as_str()),
                (503, RETRY_AFTER, Some("temporarily_unavailable")),
                "{what} at {}: {:?}",
                node.url,
                answer.body,
            );
            let mut body = answer.body;
            body.as_object_mut().map(|fields| fields.remove("request_id"));
            body
        };
        let (status, list) = node.admin("GET", "/api/v1/apps?pageSize=1000", &root, None);
        assert_eq!(status, 200, "admin reads answer from the snapshot: {list}");
        let body = unavailable("refresh", node.oauth("/oauth2/v1/token", &redeem_r1, refresher));
        assert_eq!(body["error_description"], "the store cannot be reached; retry later");
        // An app that gets a refresh token needs its family stored first.
        unavailable("a token with a refresh token", node.oauth("/oauth2/v1/token", cc, refresher));
        unavailable("revocation", node.oauth("/oauth2/v1/revoke", &format!("token={at}"), plain));
        let r1 = format!("token={r1}");
        unavailable(
            "introspection of a refresh token",
            node.oauth("/oauth2/v1/introspect", &r1, plain),
        );
        let created = node.exchange(
            "POST",
            "/api/v1/apps",
            Some(&root),
            Some(json!({"name": "during-the-outage"})),
        );
        let body = unavailable("admin create", created);
        assert_eq!(
            body,
            json!({"error": "temporarily_unavailable", "message": "the store cannot be reached; retry later"})
        );
    }
    let outage = down.elapsed();

    pg.start();
    let up = Instant::now();
    for node in &nodes {
        let ok = (200, json!("ready"), json!("ok"));
        let took = eventually(Duration::from_secs(5), || readiness(node) == ok)
            .expect("/readyz says the store is back");
        eprintln!("store up → /readyz at {} says so: {took:?}", node.url);
    }
    // R1, refused only with 503 during the outage, was never spent: it redeems once, and a
    // client told to come back may do so.
    let mut answers = Vec::new();
    eventually(Duration::from_secs(5), || {
        let answer = b.oauth("/oauth2/v1/token", &redeem_r1, refresher);
        let done = answer.status != 503;
        answers.push(answer);
        done
    })
    .expect("refreshes work again");
    eprintln!("store up → R1 redeemed: {:?}, in {} attempts", up.elapsed(), answers.len());
    let last = answers.last().unwrap();
    assert_eq!(last.status, 200, "R1 redeems after the outage: {answers:?}");
    assert!(last.body["refresh_token"].is_string());
    let (status, reuse) = a.token(&redeem_r1, refresher);
    assert_eq!((status, reuse["error"].as_str()), (400, Some("invalid_grant")), "{reuse}");

    // What was acknowledged before the outage is there; what was refused during it is not.
    let (status, list) = b.admin("GET", "/api/v1/apps?pageSize=1000", &root, None);
    assert_eq!(status, 200);
    let names: Vec<&str> =
        list["apps"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"plain") && names.contains(&"refresher"), "{names:?}");
    assert!(!names.contains(&"during-the-outage"), "{names:?}");
    // And the nodes follow each other again.
    let after = b.create_app(&root, json!({"name": "after-the-outage"}));
    let after = Some((after.0.as_str(), after.1.as_str()));
    let took = eventually(PROPAGATION, || a.token(cc, after).0 == 200)
        .expect("an app created at B after the outage issues tokens at A within a second");
    eprintln!("create at B after the outage → token at A: {took:?}");
    eprintln!("outage {outage:?}; whole test {:?}", began.elapsed());
}

/// Runs `tessera store copy`; whether it succeeded, and its stdout as JSON or its stderr.
fn store_copy(from: &std::ffi::OsStr, to: &std::ffi::OsStr) -> Result<Value, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["store", "copy"])
        .arg("--from")
        .arg(from)
        .arg("--to")
        .arg(to)
        .output()
        .expect("run tessera store copy");
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).expect("JSON answer"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// (f): an embedded store moves into PostgreSQL and back, and each copy serves what the
/// source did: the same root and apps, the same keys (tokens minted before still verify), and
/// refresh tokens that still redeem exactly once.
#[test]
fn issue_10_store_copy_moves_an_embedded_store_to_postgresql_and_back() {
    let Some(db) = fresh_database() else { return };
    let data = tempfile::tempdir().unwrap();
    let mut embedded = Node::start_at(Backing::Embedded(data.path()), None);
    let root = embedded.root_token();
    let body = json!({"name": "mover", "scopes": ["a"], "grantTypes": ["client_credentials", "refresh_token"]});
    let (client_id, secret) = embedded.create_app(&root, body);
    let creds = Some((client_id.as_str(), secret.as_str()));
    let (_, first) = embedded.token("grant_type=client_credentials", creds);
    let access = first["access_token"].as_str().unwrap().to_string();
    let redeem = |node: &Node, token: &str| {
        node.token(&format!("grant_type=refresh_token&refresh_token={token}"), creds)
    };
    let (status, second) = redeem(&embedded, first["refresh_token"].as_str().unwrap());
    assert_eq!(status, 200, "{second}");
    let fresh = second["refresh_token"].as_str().unwrap().to_string();
    let (_, jwks) = embedded.call("GET", "/.well-known/jwks.json", None, None);
    assert!(
        store_copy(data.path().as_os_str(), db.url().as_ref())
            .unwrap_err()
            .contains("in use by another Tessera process"),
        "a running server's store is not copied"
    );
    embedded.stop();

    let copied = store_copy(data.path().as_os_str(), db.url().as_ref()).expect("copied");
    assert_eq!(copied["copied"]["apps"], 2, "the root and the app: {copied}");
    assert_eq!(copied["copied"]["refresh_tokens"], 2, "{copied}");
    assert!(copied["copied"]["keys"].as_u64().unwrap() >= 1, "{copied}");
    let again = store_copy(data.path().as_os_str(), db.url().as_ref()).unwrap_err();
    assert!(again.contains("not empty"), "a second copy is refused: {again}");

    let node = Node::start(&db);
    let (status, apps) = node.admin("GET", "/api/v1/apps", &node.root_token(), None);
    assert_eq!((status, apps["count"].as_u64()), (200, Some(2)), "no second root: {apps}");
    let (_, moved_jwks) = node.call("GET", "/.well-known/jwks.json", None, None);
    assert_eq!(moved_jwks, jwks, "the same keys");
    assert!(verifies(&access, &moved_jwks), "a token minted before the move still verifies");
    let (status, third) = redeem(&node, &fresh);
    assert_eq!(status, 200, "{third}");
    let (status, minted) = node.token("grant_type=client_credentials", creds);
    assert_eq!(status, 200, "{minted}");

    // And back into a new data directory, from the database the node is still running on.
    let back = tempfile::tempdir().unwrap();
    let back_dir = back.path().join("data");
    let copied_back = store_copy(db.url().as_ref(), back_dir.as_os_str()).expect("copied back");
    assert_eq!(copied_back["copied"]["refresh_tokens"], 4, "{copied_back}");
    drop(node);
    let embedded = Node::start_at(Backing::Embedded(&back_dir), None);
    let (status, fourth) = redeem(&embedded, third["refresh_token"].as_str().unwrap());
    assert_eq!(status, 200, "the newest token redeems once: {fourth}");
    let (status, reused) = redeem(&embedded, &fresh);
    assert_eq!((status, reused["error"].as_str()), (400, Some("invalid_grant")), "{reused}");
    let (status, _) = redeem(&embedded, fourth["refresh_token"].as_str().unwrap());
    assert_eq!(status, 400, "the reuse ended the family, as at the source");
}

/// Point 9's propagation figure (BENCHMARKS.md), not a check:
/// `cargo test --release --test tests -- --ignored --nocapture propagation_lag`.
/// Each round disables or re-enables one app at one node, in turn, and two threads poll the
/// other two nodes' admin API until it shows the change. (Not the token endpoint: refused
/// client authentications would trip the failed-auth limit.)
#[test]
#[ignore = "a measurement: prints the lag's percentiles"]
fn issue_10_propagation_lag_over_three_nodes() {
    let Some((_db, nodes)) = three_nodes() else { return };
    let root = nodes[0].root_token();
    let (status, created) = nodes[0].admin(
        "POST",
        "/api/v1/apps",
        &root,
        Some(json!({"name": "toggled", "scopes": ["a"]})),
    );
    assert_eq!(status, 201, "{created}");
    let id = created["app"]["id"].as_str().unwrap().to_string();
    let client_id = created["app"]["clientId"].as_str().unwrap().to_string();
    let secret = created["app"]["secret"].as_str().unwrap().to_string();
    let creds = Some((client_id.as_str(), secret.as_str()));
    let cc = "grant_type=client_credentials";
    eventually(PROPAGATION, || nodes.iter().all(|n| n.token(cc, creds).0 == 200))
        .expect("every node knows the app");
    let roots: Vec<String> = nodes.iter().map(Node::root_token).collect();
    let mut lags = Vec::new();
    for round in 0..200 {
        let writer = round % 3;
        let active = round % 2 == 1;
        let body = Some(json!({ "isActive": active }));
        let path = format!("/api/v1/apps/{id}");
        let (status, _) = nodes[writer].admin("PUT", &path, &roots[writer], body);
        assert_eq!(status, 200);
        let written = Instant::now();
        std::thread::scope(|s| {
            let readers: Vec<_> = (1..3)
                .map(|k| (&nodes[(writer + k) % 3], &roots[(writer + k) % 3]))
                .map(|(node, root)| {
                    let path = &path;
                    s.spawn(move || {
                        while node.admin("GET", path, root, None).1["app"]["isActive"] != active {
                            assert!(written.elapsed() < Duration::from_secs(5), "never came");
                        }
                        written.elapsed()
                    })
                })
                .collect();
            lags.extend(readers.into_iter().map(|r| r.join().unwrap()));
        });
    }
    lags.sort_unstable();
    let at = |p: f64| lags[((lags.len() - 1) as f64 * p).round() as usize];
    let reported: Vec<f64> = nodes
        .iter()
        .filter_map(|n| n.call("GET", "/readyz", None, None).1["change_lag_seconds"].as_f64())
        .collect();
    eprintln!(
        "propagation over {} observations: p50 {:?}, p99 {:?}, max {:?}; last lag each node reports: {reported:?} s",
        lags.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
}

#[test]
fn issue_12_a_resource_and_its_grants_are_in_force_at_every_node_within_a_second() {
    let Some((_db, nodes)) = three_nodes() else { return };
    let [a, b, c] = &nodes;
    let root = a.root_token();
    let api = "https://orders.example.com";
    let (status, made) = a.admin(
        "POST",
        "/api/v1/resources",
        &root,
        Some(json!({"identifier": api, "name": "Orders", "accessTokenTtlSecs": 120})),
    );
    assert_eq!(status, 201, "{made}");
    let resource_id = made["resource"]["id"].as_str().unwrap().to_string();
    // Granted at A once the resource is known there; named at B and C.
    let (client_id, secret) =
        app_known_everywhere(&nodes, a, json!({"name": "o", "resources": {api: []}}));
    let creds = Some((client_id.as_str(), secret.as_str()));
    let form = format!("grant_type=client_credentials&resource={}", crate::support::form(api));
    for node in [b, c] {
        eventually(PROPAGATION, || {
            let (status, body) = node.token(&form, creds);
            status == 200 && body["expires_in"] == 120
        })
        .expect("the resource and the grant made at A are in force at B and C");
    }
    // Renamed at C: the grant moves with it everywhere, and the old name opens nothing.
    let path = format!("/api/v1/resources/{resource_id}");
    let moved = json!({"identifier": "https://orders.example.com/v2"});
    assert_eq!(c.admin("PUT", &path, &c.root_token(), Some(moved)).0, 200);
    for node in [a, b] {
        eventually(PROPAGATION, || node.token(&form, creds).1["error"] == "invalid_target")
            .expect("the resource renamed at C is refused by its old name at A and B");
    }
}

#[test]
fn issue_13_a_trusted_issuer_is_in_force_at_every_node_and_a_jti_is_spent_at_all() {
    use jwt_simple::prelude::*;
    let Some((_db, nodes)) = three_nodes() else { return };
    let [a, b, c] = &nodes;
    let key = Ed25519KeyPair::generate().with_key_id("k1");
    let x = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        key.public_key().to_bytes(),
    );
    let iss = "https://spire.example.org";
    let jwks = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1", "x": x}]});
    let body = json!({"issuer": iss, "jwks": jwks, "algorithms": ["EdDSA"]});
    let (status, made) = a.admin("POST", "/api/v1/issuers", &a.root_token(), Some(body));
    assert_eq!(status, 201, "{made}");
    let identity = json!([{"issuer": iss, "subject": "spiffe://example.org/ns/prod/sa/api", "audience": "tessera"}]);
    let (client_id, _) =
        app_known_everywhere(&nodes, a, json!({"name": "api", "federatedIdentities": identity}));
    let assertion = |jti: &str| {
        let claims = Claims::create(Duration::from_secs(300))
            .with_issuer(iss)
            .with_subject("spiffe://example.org/ns/prod/sa/api")
            .with_audience("tessera")
            .with_jwt_id(jti);
        let token = key.sign(claims).unwrap();
        format!(
            "grant_type=client_credentials&client_id={client_id}&client_assertion_type={}&client_assertion={token}",
            crate::support::form("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        )
    };
    for (n, node) in [b, c].into_iter().enumerate() {
        eventually(PROPAGATION, || {
            node.token(&assertion(&format!("probe-{n}-{}", rand_id())), None).0 == 200
        })
        .expect("the issuer and the identity made at A are in force at B and C");
    }
    // One jti, spent at B, is refused at C and at A.
    let once = assertion("spent-once");
    assert_eq!(b.token(&once, None).0, 200);
    assert_eq!(c.token(&once, None).0, 401);
    assert_eq!(a.token(&once, None).0, 401);
}

fn rand_id() -> String {
    let mut bytes = [0u8; 8];
    rand::Rng::fill_bytes(&mut rand::rng(), &mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn issue_14_apps_imported_at_one_node_are_in_force_at_every_node() {
    let Some((_db, nodes)) = three_nodes() else { return };
    let [a, b, c] = &nodes;
    let secret = "the-secret-this-fleet-already-uses";
    let lines = format!(
        "{}\n{}\n",
        json!({"name": "billing", "scopes": ["orders:read"], "clientId": "billing-svc", "secret": secret}),
        json!({"name": "shipping", "scopes": ["orders:read"]}),
    );
    let (status, answer) = a.import(&a.root_token(), &lines);
    assert_eq!(status, 201, "{answer}");
    let made = &answer["apps"][1];
    let made = (made["clientId"].as_str().unwrap(), made["secret"].as_str().unwrap());
    for node in [b, c] {
        eventually(PROPAGATION, || {
            node.token("grant_type=client_credentials", Some(("billing-svc", secret))).0 == 200
                && node.token("grant_type=client_credentials", Some(made)).0 == 200
        })
        .expect("the imported apps are in force at B and C");
    }
    // The client id is taken for every node: a second import at B is refused whole.
    let again = format!(
        "{}\n{}\n",
        json!({"name": "other", "scopes": []}),
        json!({"name": "dup", "scopes": [], "clientId": "billing-svc"})
    );
    let (status, refused) = b.import(&b.root_token(), &again);
    assert_eq!(status, 409, "{refused}");
    let (_, listed) = c.admin("GET", "/api/v1/apps?pageSize=1000", &c.root_token(), None);
    assert!(!listed.to_string().contains("\"other\""), "nothing of the refused import landed");
}
