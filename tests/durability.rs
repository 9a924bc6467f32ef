//! Acknowledged writes survive restarts and `kill -9`; a second process is refused.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::json;

use crate::support::{ROOT_ID, ROOT_SECRET, TestServer, basic};

#[test]
fn apps_and_keys_survive_a_clean_restart() {
    let server = TestServer::start();
    let (_, id, secret) = server.create_app(json!({"name": "kept", "scopes": ["read_app"]}));
    let jwks = server.jwks();
    let dir = server.stop();
    let config = tessera::config::Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    let server = TestServer::start_in(dir, config, crate::support::now());
    assert_eq!(server.token_response(&id, &secret, None).status, 200);
    assert_eq!(server.jwks(), jwks, "the same keys after a restart");
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// Starts the real binary and waits for its "listening" line.
fn spawn(dir: &std::path::Path) -> (Proc, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("TESSERA_DATA_DIR", dir)
        .env("TESSERA_ROOT_CLIENT_ID", ROOT_ID)
        .env("TESSERA_ROOT_CLIENT_SECRET", ROOT_SECRET)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
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
    (Proc(child), url)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

fn token(agent: &ureq::Agent, url: &str, id: &str, secret: &str) -> (u16, serde_json::Value) {
    let mut res = agent
        .post(format!("{url}/oauth2/v1/token"))
        .header("authorization", &basic(id, secret))
        .content_type("application/x-www-form-urlencoded")
        .send("grant_type=client_credentials")
        .expect("token exchange");
    let status = res.status().as_u16();
    (status, serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap())
}

#[test]
fn every_acknowledged_app_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let agent = agent();
    let (mut proc, url) = spawn(dir.path());

    // A second process on the same data dir gets a clear error and exit code 1.
    let second = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("TESSERA_DATA_DIR", dir.path())
        .output()
        .expect("second process");
    assert_eq!(second.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("in use"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );

    let (_, root) = token(&agent, &url, ROOT_ID, ROOT_SECRET);
    let root = root["access_token"].as_str().unwrap().to_string();
    let mut created = Vec::new();
    for i in 0..20 {
        let mut res = agent
            .post(format!("{url}/api/v1/apps"))
            .header("authorization", &format!("Bearer {root}"))
            .send_json(json!({"name": format!("app-{i}")}))
            .expect("create");
        assert_eq!(res.status().as_u16(), 201);
        let body: serde_json::Value =
            serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap();
        created.push((
            body["app"]["clientId"].as_str().unwrap().to_string(),
            body["app"]["secret"].as_str().unwrap().to_string(),
        ));
    }
    let mut res = agent
        .post(format!("{url}/api/v1/keys/rotate"))
        .header("authorization", &format!("Bearer {root}"))
        .send_empty()
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let rotated: serde_json::Value =
        serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap();

    proc.0.kill().expect("kill -9"); // SIGKILL: no shutdown code runs
    proc.0.wait().ok();
    drop(proc);

    let (_proc, url) = spawn(dir.path());
    for (id, secret) in &created {
        assert_eq!(token(&agent, &url, id, secret).0, 200, "acknowledged app {id} survived");
    }
    let (_, root) = token(&agent, &url, ROOT_ID, ROOT_SECRET);
    let mut res = agent
        .get(format!("{url}/api/v1/keys"))
        .header("authorization", &format!("Bearer {}", root["access_token"].as_str().unwrap()))
        .call()
        .unwrap();
    let keys: serde_json::Value =
        serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap();
    let kids = |v: &serde_json::Value| -> Vec<String> {
        let mut kids: Vec<String> = v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| format!("{}:{}", k["kid"], k["state"]))
            .collect();
        kids.sort();
        kids
    };
    assert_eq!(kids(&keys), kids(&rotated), "the rotated ring survived");
}

#[test]
fn generated_root_credentials_are_written_once_with_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("TESSERA_DATA_DIR", dir.path())
        .env_remove("TESSERA_ROOT_CLIENT_ID")
        .env_remove("TESSERA_ROOT_CLIENT_SECRET")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    loop {
        let line = lines.next().unwrap().unwrap();
        printed.push_str(&line);
        if line.starts_with("tessera listening on ") {
            break;
        }
    }
    let url = printed.rsplit("tessera listening on ").next().unwrap().to_string();
    let path = dir.path().join("root-credentials.json");
    assert!(printed.contains(&path.display().to_string()), "the path is printed: {printed}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let creds: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let (status, body) = token(
        &agent(),
        &url,
        creds["clientId"].as_str().unwrap(),
        creds["clientSecret"].as_str().unwrap(),
    );
    assert_eq!(status, 200);
    assert_eq!(body["scope"], "root");
    child.kill().ok();
    child.wait().ok();
    // The store never holds the secret in the clear.
    let file = std::fs::read(dir.path().join("tessera.redb")).unwrap();
    let secret = creds["clientSecret"].as_str().unwrap().as_bytes();
    assert!(!file.windows(secret.len()).any(|w| w == secret));
}

#[test]
fn sigterm_stops_the_server_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let (mut proc, url) = spawn(dir.path());
    assert_eq!(token(&agent(), &url, ROOT_ID, ROOT_SECRET).0, 200);
    let pid = proc.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = proc.0.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed().as_secs() < 15, "no exit after SIGTERM");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    // And the data dir is free again for the next start.
    let (_proc, url) = spawn(dir.path());
    assert_eq!(token(&agent(), &url, ROOT_ID, ROOT_SECRET).0, 200);
}

/// Issue 3: every refresh token the server returned survives `kill -9` mid-load and is
/// redeemable after restart; every token it spent stays spent.
#[test]
fn refresh_tokens_survive_kill_9_under_load() {
    use std::collections::HashSet;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    let dir = tempfile::tempdir().unwrap();
    let (mut proc, url) = spawn(dir.path());
    let agent = agent();
    let (_, root) = token(&agent, &url, ROOT_ID, ROOT_SECRET);
    let mut res = agent
        .post(format!("{url}/api/v1/apps"))
        .header("authorization", &format!("Bearer {}", root["access_token"].as_str().unwrap()))
        .send_json(json!({"name": "r", "grantTypes": ["client_credentials", "refresh_token"]}))
        .unwrap();
    let app: serde_json::Value =
        serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap();
    let (id, secret) = (
        app["app"]["clientId"].as_str().unwrap().to_string(),
        app["app"]["secret"].as_str().unwrap().to_string(),
    );

    let live: Mutex<HashSet<String>> = Mutex::default();
    let spent: Mutex<HashSet<String>> = Mutex::default();
    let stop = AtomicBool::new(false);
    let redeem = |agent: &ureq::Agent, token: &str| -> Option<(u16, serde_json::Value)> {
        let mut res = agent
            .post(format!("{url}/oauth2/v1/token"))
            .content_type("application/x-www-form-urlencoded")
            .send(format!("grant_type=refresh_token&refresh_token={token}"))
            .ok()?;
        let status = res.status().as_u16();
        Some((status, serde_json::from_str(&res.body_mut().read_to_string().ok()?).ok()?))
    };
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let agent = self::agent();
                while !stop.load(Ordering::Relaxed) {
                    let issued = agent
                        .post(format!("{url}/oauth2/v1/token"))
                        .header("authorization", &basic(&id, &secret))
                        .content_type("application/x-www-form-urlencoded")
                        .send("grant_type=client_credentials");
                    let Ok(mut issued) = issued else { break };
                    let Ok(text) = issued.body_mut().read_to_string() else { break };
                    let Ok(body) = serde_json::from_str::<serde_json::Value>(&text) else { break };
                    let mut current = body["refresh_token"].as_str().unwrap().to_string();
                    live.lock().unwrap().insert(current.clone());
                    for _ in 0..3 {
                        // In flight: neither live nor spent until the answer says which.
                        live.lock().unwrap().remove(&current);
                        match redeem(&agent, &current) {
                            Some((200, body)) => {
                                spent.lock().unwrap().insert(current.clone());
                                current = body["refresh_token"].as_str().unwrap().to_string();
                                live.lock().unwrap().insert(current.clone());
                            }
                            _ => return,
                        }
                    }
                }
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(700));
        proc.0.kill().expect("kill -9");
        stop.store(true, Ordering::Relaxed);
    });
    proc.0.wait().ok();
    drop(proc);

    let live = live.into_inner().unwrap();
    let spent = spent.into_inner().unwrap();
    assert!(live.len() >= 10, "the load ran ({} live, {} spent)", live.len(), spent.len());
    let (_proc, url2) = spawn(dir.path());
    let check = |token: &str| {
        let res = agent
            .post(format!("{url2}/oauth2/v1/token"))
            .content_type("application/x-www-form-urlencoded")
            .send(format!("grant_type=refresh_token&refresh_token={token}"))
            .unwrap();
        res.status().as_u16()
    };
    for token in &live {
        assert_eq!(check(token), 200, "a returned refresh token was lost");
    }
    for token in &spent {
        assert_eq!(check(token), 400, "a spent refresh token was redeemable again");
    }
}
