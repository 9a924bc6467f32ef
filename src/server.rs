//! Opening the store, starting the actors, and binding the HTTP server.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;

use actix::Arbiter;
use actix_web::{App, HttpServer, web};
use tessera_core::audit::AuditLog;
use tessera_core::auth::limiter::Limits;
use tessera_core::auth::password::PasswordPool;
use tessera_core::clock::SharedClock;
use tessera_core::follower::{Follower, StoreHealth};
use tessera_core::grants::{GrantStore, ProviderFlow};
use tessera_core::keys::ring::RotationRules;
use tessera_core::keys::{KeyRing, KeyRingHandle};
use tessera_core::registry::{Registry, RegistryError, RegistryHandle, RootCredentials};
use tessera_core::tokens::issuer::{Issuer, TokenSettings};
use tessera_storage::{Kek, KekError, PgStore, Storage, Store, StoreError};

use crate::api;
use crate::api::AppState;
use crate::config::{Config, ConfigError};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The root app could not be created with the credentials given (TESSERA_ROOT_*).
    #[error(transparent)]
    Root(RegistryError),
    #[error("cannot listen on {0}: {1}")]
    Bind(String, std::io::Error),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

/// A started server: where it listens and the handle that stops it.
pub struct Running {
    pub addr: SocketAddr,
    pub issuer_url: String,
    pub server: actix_web::dev::Server,
    /// Where `/metrics` is answered when `metrics_listen` put it on a listener of its own.
    pub metrics_addr: Option<SocketAddr>,
    /// Spawned at start, since nothing awaits it until [`Running::wait`].
    metrics_server:
        Option<(actix_web::dev::ServerHandle, actix_rt::task::JoinHandle<std::io::Result<()>>)>,
    pub state: web::Data<AppState>,
    /// Set when this start created the root app with generated credentials.
    pub root_credentials_file: Option<PathBuf>,
    arbiter: Arbiter,
}

impl Running {
    /// Stops the actors' thread once the HTTP server has stopped.
    pub async fn wait(self) -> std::io::Result<()> {
        let out = self.server.await;
        if let Some((handle, task)) = self.metrics_server {
            handle.stop(true).await;
            task.await.ok();
        }
        self.state.grants.stop();
        drop(self.state);
        // Joining lets the actors drop the store, so the data directory is free on return.
        self.arbiter.stop();
        self.arbiter.join().ok();
        out
    }
}

/// Only one of the two root credential variables is set. Refused rather than ignored: a root
/// app generated instead would not be the one the operator expects to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("set both TESSERA_ROOT_CLIENT_ID and TESSERA_ROOT_CLIENT_SECRET, or neither")]
pub struct HalfRootCredentials;

/// Root credentials from the environment (docs/api.md, Running), both or neither.
pub fn root_from_env() -> Result<Option<RootCredentials>, HalfRootCredentials> {
    let id = std::env::var("TESSERA_ROOT_CLIENT_ID").ok().filter(|v| !v.is_empty());
    let secret = std::env::var("TESSERA_ROOT_CLIENT_SECRET").ok().filter(|v| !v.is_empty());
    match (id, secret) {
        (Some(client_id), Some(client_secret)) => {
            Ok(Some(RootCredentials { client_id, client_secret }))
        }
        (None, None) => Ok(None),
        _ => Err(HalfRootCredentials),
    }
}

pub fn kek_from_env() -> Result<Option<Kek>, KekError> {
    match std::env::var("TESSERA_KEK") {
        Ok(v) if !v.is_empty() => Kek::from_hex(&v).map(Some),
        _ => Ok(None),
    }
}

pub fn rotation_rules(config: &Config) -> RotationRules {
    RotationRules {
        jwks_max_age: config.jwks_max_age,
        max_token_ttl: config.max_access_token_ttl,
        rotate_every: config.rotate_every,
        propagation: 0,
    }
}

/// On a shared store, how long another node may take to learn of a key change: a few follower
/// polls, with room for a slow one.
const SHARED_PROPAGATION: u64 = 2;

/// The state a server serves from, with the thread its actors run on.
pub struct Prepared {
    pub state: web::Data<AppState>,
    pub arbiter: Arbiter,
    /// Set when this start created the root app with generated credentials.
    pub root_credentials_file: Option<PathBuf>,
}

/// Opens the store, bootstraps it, loads the actors and starts them on their own thread:
/// everything but the HTTP listener. Must run inside an actix system.
pub fn prepare(
    config: Config,
    issuer_url: &str,
    root: Option<RootCredentials>,
    kek: Option<Kek>,
    clock: SharedClock,
) -> Result<Prepared, StartError> {
    config.validate()?;
    let (store, shared): (Arc<dyn Storage>, bool) = match &config.store {
        Some(url) => (Arc::new(PgStore::connect(&url.0, kek)?), true),
        None => (Arc::new(Store::open(&config.data_dir, kek)?), false),
    };
    // Read before any snapshot is loaded: the follower starts from here, so a change another
    // node commits while this one loads is applied (perhaps twice, which is harmless).
    let loaded_from = store.version()?;
    let limits = config.app_limits(issuer_url);
    let grants = GrantStore::start(Arc::clone(&store), Arc::clone(&clock), config.sweep())?;
    let mut registry =
        Registry::load(Arc::clone(&store), grants.clone(), Arc::clone(&clock), limits)?;
    let mut root_credentials_file = None;
    if registry.needs_root()? {
        // Generated credentials reach the file before the app exists: a crash in between
        // leaves a file for an app that a restart creates anew, never an app nobody can use.
        let creds = match root {
            Some(given) => given,
            None => {
                let generated = RootCredentials::generate();
                root_credentials_file = Some(write_root_credentials(&config, &generated)?);
                generated
            }
        };
        let created = registry.bootstrap_root(&creds).map_err(StartError::Root)?;
        if !created {
            // Another node created the root app first: the credentials generated here open
            // nothing, so their file must not suggest otherwise.
            if let Some(file) = root_credentials_file.take() {
                std::fs::remove_file(file).ok();
            }
        }
    }
    let mut rules = rotation_rules(&config);
    let keyring = if shared {
        rules.propagation = SHARED_PROPAGATION;
        KeyRing::load_shared(Arc::clone(&store), Arc::clone(&clock), rules)?
    } else {
        KeyRing::load(Arc::clone(&store), Arc::clone(&clock), rules)?
    };
    let mut assertion_audiences: Vec<String> =
        api::oauth2::TOKEN_PATHS.iter().map(|p| format!("{issuer_url}{p}")).collect();
    assertion_audiences.push(issuer_url.to_string());
    let settings = TokenSettings {
        issuer: issuer_url.to_string(),
        default_audience: config.default_audience.clone().unwrap_or_else(|| issuer_url.to_string()),
        default_ttl: config.access_token_ttl,
        max_ttl: config.max_access_token_ttl,
        refresh_ttl: config.refresh_token_ttl,
        max_assertion_lifetime: config.max_assertion_lifetime,
        assertion_audiences,
        dpop_proofs: config.dpop_proofs,
        max_delegation_depth: config.max_delegation_depth,
        token_reuse: config.token_reuse,
    };
    let limits = Limits {
        window_secs: config.rate_window,
        per_client: config.failures_per_client,
        per_addr: config.failures_per_address,
    };
    let callback_url = format!("{issuer_url}{}", api::connect::CALLBACK_PATH);
    let provider_flow = ProviderFlow::new(grants.clone(), Arc::clone(&clock), callback_url);
    let issuer = Arc::new(
        Issuer::new(
            settings,
            keyring.key_set(),
            registry.client_table(),
            limits,
            grants.clone(),
            registry.user_table(),
            clock,
        )
        .with_federation(registry.federation()),
    );

    // The actors get a thread of their own: their durable commits (fsync) never stall a worker.
    let arbiter = Arbiter::new();
    let service_keys = registry.service_keys();
    let registry = RegistryHandle::start(registry, &arbiter.handle());
    let keyring = KeyRingHandle::start(keyring, &arbiter.handle());
    let audit = AuditLog::new(grants.clone());
    let mut store_health = StoreHealth::default();
    if shared {
        let revoked = grants.revoked().clone();
        let follower =
            Follower::new(store, registry.clone(), keyring.clone(), revoked, loaded_from);
        store_health = follower.health();
        arbiter.spawn(follower.run());
    }
    arbiter.spawn(refresh_issuer_keys(Arc::clone(&issuer)));
    let metrics = Arc::new(api::metrics::Metrics::new(Arc::clone(grants.commit_times()), shared));
    let tls = crate::tls::Tls::load(&config)?.map(Arc::new);
    // Certificates reach the token endpoint from the TLS handshake or a trusted proxy's header.
    let takes_certificates =
        config.tls_client_ca.is_some() || config.tls_client_cert_header.is_some();
    let metadata = api::wellknown::metadata(issuer_url, takes_certificates);
    let openapi = api::openapi::document(&config);
    let passwords = PasswordPool::start(2, config.password_queue).map_err(StoreError::Io)?;
    let state = web::Data::new(AppState {
        issuer,
        registry,
        grants,
        provider_flow,
        keyring,
        config,
        metadata,
        openapi,
        passwords,
        service_keys,
        store_health,
        metrics,
        audit,
        tls,
    });
    Ok(Prepared { state, arbiter, root_credentials_file })
}

/// Fetches every trusted issuer's JWK Set whose `max-age` ran out, off the token path.
async fn refresh_issuer_keys(issuer: Arc<Issuer>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        tick.tick().await;
        issuer.federation().refresh_stale(issuer.now()).await;
    }
}

/// Starts Tessera: must run inside an actix system (`#[actix_web::main]` or `actix_rt`).
pub async fn start(
    config: Config,
    root: Option<RootCredentials>,
    kek: Option<Kek>,
    clock: SharedClock,
) -> Result<Running, StartError> {
    let bind_err = |e| StartError::Bind(config.listen.clone(), e);
    let listener = TcpListener::bind(&config.listen).map_err(bind_err)?;
    let addr = listener.local_addr().map_err(bind_err)?;
    let scheme = if config.tls_cert.is_some() { "https" } else { "http" };
    let issuer_url = config.issuer.clone().unwrap_or_else(|| format!("{scheme}://{addr}"));
    let workers = config.workers;
    let Prepared { state, arbiter, root_credentials_file } =
        prepare(config.clone(), &issuer_url, root, kek, clock)?;
    let data = state.clone();
    let server =
        HttpServer::new(move || App::new().configure(|cfg| api::configure(cfg, data.clone())));
    let mut server = match state.tls.as_ref().and_then(|t| Some((t, t.server.as_ref()?))) {
        Some((tls, server_config)) => server
            .on_connect(tls.on_connect())
            .listen_rustls_0_23(listener, (**server_config).clone()),
        None => server.listen(listener),
    }
    .map_err(bind_err)?
    .shutdown_timeout(10);
    if let Some(workers) = workers {
        server = server.workers(workers);
    }
    let (metrics_addr, metrics_server) = match &config.metrics_listen {
        Some(listen) => {
            let bind_err = |e| StartError::Bind(listen.clone(), e);
            let listener = TcpListener::bind(listen).map_err(bind_err)?;
            let addr = listener.local_addr().map_err(bind_err)?;
            let data = state.clone();
            let server = HttpServer::new(move || {
                App::new().configure(|cfg| api::configure_metrics(cfg, data.clone()))
            })
            .listen(listener)
            .map_err(bind_err)?
            .workers(1)
            .shutdown_timeout(1)
            .run();
            (Some(addr), Some((server.handle(), actix_rt::spawn(server))))
        }
        None => (None, None),
    };
    Ok(Running {
        addr,
        issuer_url,
        server: server.run(),
        metrics_addr,
        metrics_server,
        state,
        root_credentials_file,
        arbiter,
    })
}

/// Writes generated root credentials, readable by the owner only, and makes the file durable
/// before the root app is created. A file left by an earlier start that crashed before
/// creating the app is replaced, never followed if it is a link.
fn write_root_credentials(config: &Config, creds: &RootCredentials) -> Result<PathBuf, StartError> {
    use std::io::Write;
    let path = config.data_dir.join("root-credentials.json");
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(StoreError::Io(e).into()),
    }
    let body = serde_json::json!({
        "clientId": creds.client_id,
        "clientSecret": creds.client_secret,
        "note": "Root app credentials, written once on first start. Store them safely and delete this file.",
    });
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&path).map_err(StoreError::Io)?;
    file.write_all(format!("{body:#}\n").as_bytes()).map_err(StoreError::Io)?;
    file.sync_all().map_err(StoreError::Io)?;
    std::fs::File::open(&config.data_dir).and_then(|dir| dir.sync_all()).map_err(StoreError::Io)?;
    Ok(path)
}
