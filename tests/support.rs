//! A real server per test, on a loopback port with its own data directory and a manual clock.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use base64::Engine;
use serde_json::Value;
use tessera::config::Config;
use tessera_core::clock::ManualClock;
use tessera_core::registry::RootCredentials;

pub const ROOT_ID: &str = "root-app";
pub const ROOT_SECRET: &str = "root-secret-that-is-long-enough-000000";
/// Starts at the real time (independent verifiers check against it); moves only when told.
pub fn now() -> u64 {
    use tessera_core::clock::Clock;
    tessera_core::clock::SystemClock.now()
}

pub struct TestServer {
    pub url: String,
    pub clock: Arc<ManualClock>,
    pub dir: tempfile::TempDir,
    handle: actix_web::dev::ServerHandle,
    pub keyring: tessera_core::keys::KeyRingHandle,
    issuer: Option<Arc<tessera_core::tokens::issuer::Issuer>>,
    /// The server's Argon2id pool: tests read how many computations a path cost.
    pub passwords: tessera_core::auth::password::PasswordPool,
    thread: Option<JoinHandle<()>>,
    agent: ureq::Agent,
}

pub struct Resp {
    pub status: u16,
    pub headers: HashMap<String, String>,
    /// Every `Set-Cookie` header (`headers` keeps only one per name).
    pub set_cookies: Vec<String>,
    pub body: String,
}

/// A browser's cookies, as far as the hosted-flow tests need: name → value, every cookie sent
/// on every request (path scoping is left to the headless-browser test), `Max-Age=0` removes.
#[derive(Debug, Default, Clone)]
pub struct Jar(std::collections::BTreeMap<String, String>);

impl Jar {
    pub fn absorb(&mut self, res: &Resp) {
        for line in &res.set_cookies {
            let pair = line.split(';').next().unwrap_or("");
            let Some((name, value)) = pair.split_once('=') else { continue };
            if line.to_ascii_lowercase().contains("max-age=0") {
                self.0.remove(name.trim());
            } else {
                self.0.insert(name.trim().to_string(), value.trim().to_string());
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn names(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }

    pub fn header(&self) -> String {
        self.0.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The JSON answer without its `request_id`, which differs on every request by design:
    /// what answers must share when they must not tell two cases apart.
    pub fn answer(&self) -> Value {
        let mut body = self.json();
        if let Some(fields) = body.as_object_mut() {
            fields.remove("request_id");
        }
        body
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
}

impl TestServer {
    pub fn start() -> TestServer {
        TestServer::start_with(|_| {})
    }

    pub fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config {
            listen: "127.0.0.1:0".into(),
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        tweak(&mut config);
        TestServer::start_in(dir, config, now())
    }

    /// Starts with private material sealed under `kek`.
    pub fn start_with_kek(
        dir: tempfile::TempDir,
        config: Config,
        kek: tessera_storage::Kek,
    ) -> TestServer {
        TestServer::start_full(dir, config, now(), Some(kek))
    }

    /// Starts on an existing data directory (restart tests).
    pub fn start_in(dir: tempfile::TempDir, config: Config, now: u64) -> TestServer {
        TestServer::start_full(dir, config, now, None)
    }

    fn start_full(
        dir: tempfile::TempDir,
        config: Config,
        now: u64,
        kek: Option<tessera_storage::Kek>,
    ) -> TestServer {
        let clock = ManualClock::new(now);
        let server_clock = clock.clone();
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let system = actix_web::rt::System::new();
            system.block_on(async move {
                let root = RootCredentials {
                    client_id: ROOT_ID.into(),
                    client_secret: ROOT_SECRET.into(),
                };
                let config = Config { workers: Some(1), ..config };
                let scheme = if config.tls_cert.is_some() { "https" } else { "http" };
                match tessera::start(config, Some(root), kek, server_clock).await {
                    Ok(running) => {
                        tx.send(Ok((
                            format!("{scheme}://{}", running.addr),
                            running.server.handle(),
                            running.state.keyring.clone(),
                            Arc::clone(&running.state.issuer),
                            running.state.passwords.clone(),
                        )))
                        .ok();
                        running.wait().await.ok();
                    }
                    Err(e) => {
                        tx.send(Err(e.to_string())).ok();
                    }
                }
            });
        });
        let (url, handle, keyring, issuer, passwords) =
            rx.recv().expect("server thread").expect("server starts");
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .allow_non_standard_methods(true)
            .max_redirects(0)
            .build()
            .into();
        TestServer {
            url,
            clock,
            dir,
            handle,
            keyring,
            issuer: Some(issuer),
            passwords,
            thread: Some(thread),
            agent,
        }
    }

    /// Stops the server and hands back its data directory.
    pub fn stop(mut self) -> tempfile::TempDir {
        self.shutdown();
        let dir = tempfile::tempdir().expect("tempdir");
        std::mem::replace(&mut self.dir, dir)
    }

    /// The running server's issuer (grant store, revocation set, clients).
    pub fn issuer(&self) -> &tessera_core::tokens::issuer::Issuer {
        self.issuer.as_deref().expect("server running")
    }

    fn shutdown(&mut self) {
        // Our reference would keep the store open past the server's stop.
        self.issuer = None;
        if let Some(thread) = self.thread.take() {
            block_on(self.handle.stop(true));
            thread.join().ok();
        }
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Resp {
        let mut builder =
            ureq::http::Request::builder().method(method).uri(format!("{}{path}", self.url));
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let request = builder.body(body.map(<[u8]>::to_vec).unwrap_or_default()).expect("request");
        let mut res = self.agent.run(request).expect("HTTP exchange");
        let status = res.status().as_u16();
        let headers = res
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let set_cookies = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap_or("").to_string())
            .collect();
        let body = res.body_mut().read_to_string().unwrap_or_default();
        Resp { status, headers, set_cookies, body }
    }

    /// A request as a browser with `jar` sends it: its cookies go along, the answer's stay.
    pub fn browse(
        &self,
        jar: &mut Jar,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Resp {
        let cookies = jar.header();
        let mut all = headers.to_vec();
        if !cookies.is_empty() {
            all.push(("cookie", &cookies));
        }
        let res = self.request(method, path, &all, body);
        jar.absorb(&res);
        res
    }

    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        self.request("GET", path, headers, None)
    }

    pub fn post_form(&self, path: &str, auth: Option<&str>, body: &str) -> Resp {
        let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
        if let Some(auth) = auth {
            headers.push(("authorization", auth));
        }
        self.request("POST", path, &headers, Some(body.as_bytes()))
    }

    /// A service-API call: `X-API-Key: key`, and a JSON body when there is one.
    pub fn service_call(&self, key: &str, method: &str, path: &str, body: Option<Value>) -> Resp {
        let bytes = body.map(|b| b.to_string().into_bytes());
        let mut headers = vec![("x-api-key", key)];
        if bytes.is_some() {
            headers.push(("content-type", "application/json"));
        }
        self.request(method, path, &headers, bytes.as_deref())
    }

    /// `POST` with a JSON body.
    pub fn post_json(&self, path: &str, body: Value) -> Resp {
        let body = body.to_string();
        self.request("POST", path, &[("content-type", "application/json")], Some(body.as_bytes()))
    }

    /// Registers `name` (`<name>@example.com`, password "correct horse") at
    /// `/consumer/register`.
    pub fn register(&self, name: &str) -> Resp {
        let email = format!("{name}@example.com");
        let body =
            serde_json::json!({"username": name, "email": email, "password": "correct horse"});
        self.post_json("/consumer/register", body)
    }

    /// `method` with a JSON body and a bearer token.
    pub fn admin(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Resp {
        let auth = format!("Bearer {token}");
        let mut headers = vec![("authorization", auth.as_str())];
        let bytes = body.map(|b| b.to_string().into_bytes());
        if bytes.is_some() {
            headers.push(("content-type", "application/json"));
        }
        self.request(method, path, &headers, bytes.as_deref())
    }

    pub fn token_response(&self, client_id: &str, secret: &str, scope: Option<&str>) -> Resp {
        let mut body = "grant_type=client_credentials".to_string();
        if let Some(scope) = scope {
            body.push_str("&scope=");
            body.push_str(&form(scope));
        }
        self.post_form("/oauth2/v1/token", Some(&basic(client_id, secret)), &body)
    }

    pub fn token(&self, client_id: &str, secret: &str, scope: Option<&str>) -> String {
        let res = self.token_response(client_id, secret, scope);
        assert_eq!(res.status, 200, "token request failed: {}", res.body);
        res.json()["access_token"].as_str().expect("access_token").to_string()
    }

    pub fn root_token(&self) -> String {
        self.token(ROOT_ID, ROOT_SECRET, None)
    }

    /// Creates an app as root; returns (app JSON, client id, secret).
    pub fn create_app(&self, body: Value) -> (Value, String, String) {
        let res = self.admin("POST", "/api/v1/apps", &self.root_token(), Some(body));
        assert_eq!(res.status, 201, "create app: {}", res.body);
        let app = res.json()["app"].clone();
        let id = app["clientId"].as_str().expect("clientId").to_string();
        let secret = app["secret"].as_str().expect("secret").to_string();
        (app, id, secret)
    }

    /// Runs the key ring's scheduled maintenance now (the timer would, every 30 s).
    pub fn tick_keys(&self) {
        let keyring = self.keyring.clone();
        block_on(async move { keyring.tick().await }).expect("tick succeeds");
    }

    pub fn jwks(&self) -> Value {
        self.get("/.well-known/jwks.json", &[]).json()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

pub fn basic(id: &str, secret: &str) -> String {
    let pair = format!("{}:{}", form(id), form(secret));
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
}

pub fn form(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The public JWK of `key`, as an app's `publicKeyJwk`.
pub fn jwk(key: &ed25519_dalek::SigningKey) -> Value {
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes());
    serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x})
}

/// The claims of a compact JWS, unverified (tests verify separately).
pub fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("payload");
    let bytes =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url");
    serde_json::from_slice(&bytes).expect("claims JSON")
}

/// Verifies with jwt-simple, an implementation independent of our signer.
pub fn verify_independently(
    token: &str,
    jwks: &Value,
    issuer: &str,
) -> Result<Value, tessera::verify::VerifyError> {
    let opts =
        tessera::verify::VerifyOptions { issuer: Some(issuer.to_string()), ..Default::default() };
    tessera::verify::verify(token, jwks, &opts).map(|_| claims(token))
}

/// Drives a future to completion on this thread (the server's stop handle needs no runtime).
pub fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    actix_web::rt::System::new().block_on(fut)
}
