//! `tessera keys …` and `tessera apps …` against a data directory. They go through the same
//! owners (the key ring and the registry) as the HTTP API, so the same rules hold; the operator at
//! the console holds the data directory and so acts as root.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use tessera_core::audit::Origin;
use tessera_core::clock::SystemClock;
use tessera_core::grants::GrantStore;
use tessera_core::keys::{KeyRing, KeyRingHandle};
use tessera_core::policy::Caller;
use tessera_core::registry::apps::RotationStep;
use tessera_core::registry::apps::fields::NewApp;
use tessera_core::registry::{Page, Registry, RegistryHandle};
use tessera_storage::{Storage, Store, StoreError};

use super::remote::{self, RemoteError, ServerArgs};
use super::{CliError, ServeArgs, fail};
use crate::server::{kek_from_env, rotation_rules};

/// Where an `apps` or `keys` command works: a running server, or a stopped one's data dir.
#[derive(Args, Debug, Clone)]
pub struct DataDirArgs {
    /// Data directory holding the embedded store (the server must be stopped).
    #[arg(long, env = "TESSERA_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// TOML configuration file.
    #[arg(long, env = "TESSERA_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    server: ServerArgs,
}

impl DataDirArgs {
    /// The running server to send the command to, if one was named: `--server` alone, since
    /// a command given both would leave it unclear which store it changed.
    pub(super) fn remote(&self) -> Result<Option<&ServerArgs>, CliError> {
        match (&self.server.server, &self.data_dir) {
            (Some(_), Some(_)) => Err(RemoteError::BothTargets.into()),
            (Some(_), None) => Ok(Some(&self.server)),
            (None, _) => Ok(None),
        }
    }
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// List signing keys and their states.
    List(DataDirArgs),
    /// Promote the next key and publish a fresh one.
    Rotate {
        #[command(flatten)]
        dir: DataDirArgs,
        /// Rotate even when unsafe and withdraw the old key at once (a compromised key).
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
pub enum AppsCommand {
    /// Create an app; its secret is printed once.
    Create {
        #[command(flatten)]
        dir: DataDirArgs,
        #[arg(long)]
        name: String,
        /// A scope to assign; repeat for several.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List apps.
    List(DataDirArgs),
    /// Show an app (running server only).
    Get {
        // Ids are base64url, so one may begin with `-`: still an id, not a flag.
        #[arg(allow_hyphen_values = true)]
        id: String,
        #[command(flatten)]
        dir: DataDirArgs,
    },
    /// Change an app; `--scope` replaces its scopes (running server only).
    Update {
        #[arg(allow_hyphen_values = true)]
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "scope")]
        scopes: Option<Vec<String>>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        active: Option<bool>,
        #[command(flatten)]
        dir: DataDirArgs,
    },
    /// Delete an app, ending every token it holds (running server only).
    Delete {
        #[arg(allow_hyphen_values = true)]
        id: String,
        #[command(flatten)]
        dir: DataDirArgs,
    },
    /// Rotate an app's secret: start (prints the new secret), then complete or cancel.
    RotateSecret {
        #[command(flatten)]
        dir: DataDirArgs,
        #[arg(allow_hyphen_values = true)]
        id: String,
        #[arg(long, value_parser = ["start", "complete", "cancel"], default_value = "start")]
        step: String,
    },
    /// Create the apps of a JSON Lines file (one `POST /api/v1/apps` body per line, with an
    /// optional clientId and secret), all or none. Each app's ids, and the secret of each that
    /// brought none, go to a new file only you can read.
    Import {
        /// The JSON Lines file.
        file: PathBuf,
        /// Where the ids and made secrets go (default: FILE's name with `.secrets.jsonl`).
        #[arg(long)]
        secrets_out: Option<PathBuf>,
        #[command(flatten)]
        dir: DataDirArgs,
    },
}

fn open(dir: &DataDirArgs) -> Result<(Arc<dyn Storage>, crate::config::Config), CliError> {
    let args = ServeArgs {
        listen: None,
        data_dir: dir.data_dir.clone(),
        metrics_listen: None,
        store: None,
        config: dir.config.clone(),
        issuer: None,
        tls_cert: None,
        tls_key: None,
        tls_client_ca: None,
    };
    let config = super::load_config(&args)?;
    let kek = kek_from_env()?;
    let store = Store::open(&config.data_dir, kek).map_err(|e| match e {
        StoreError::InUse => CliError::DataDirInUse { data_dir: config.data_dir.clone() },
        other => other.into(),
    })?;
    Ok((Arc::new(store), config))
}

fn finish(result: Result<serde_json::Value, CliError>) -> ExitCode {
    match result {
        Ok(v) => {
            println!("{v:#}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

pub fn keys(command: KeysCommand) -> ExitCode {
    let (dir, force) = match &command {
        KeysCommand::List(dir) => (dir, None),
        KeysCommand::Rotate { dir, force } => (dir, Some(*force)),
    };
    match dir.remote() {
        Ok(Some(server)) => {
            return super::print(match force {
                None => remote::call(&remote::KEYS, server, "GET", "", None),
                Some(force) => {
                    let body = serde_json::json!({ "force": force });
                    remote::call(&remote::KEYS, server, "POST", "/rotate", Some(&body))
                }
            });
        }
        Ok(None) => {}
        Err(e) => return fail(&e),
    }
    finish((|| {
        let (store, config) = open(dir)?;
        let ring = KeyRing::load(store, Arc::new(SystemClock), rotation_rules(&config))?;
        let keys = actix::System::new().block_on(async move {
            let ring = KeyRingHandle::start(ring, &actix::Arbiter::current());
            match force {
                None => ring.list().await,
                Some(force) => ring.rotate(force, Origin::operator()).await,
            }
        });
        Ok(crate::api::admin::keys::view(&keys?))
    })())
}

pub fn apps(command: AppsCommand) -> ExitCode {
    let dir = match &command {
        AppsCommand::Create { dir, .. }
        | AppsCommand::List(dir)
        | AppsCommand::Get { dir, .. }
        | AppsCommand::Update { dir, .. }
        | AppsCommand::Delete { dir, .. }
        | AppsCommand::RotateSecret { dir, .. } => dir,
        AppsCommand::Import { file, secrets_out, dir } => {
            return finish(super::import::run(dir, file, secrets_out.as_deref()));
        }
    };
    match dir.remote() {
        Ok(Some(server)) => return super::print(remote_apps(server, &command)),
        Ok(None) => {}
        Err(e) => return fail(&e),
    }
    let dir = dir.clone();
    finish(with_registry(&dir, |registry| apps_command(registry, command)))
}

/// Runs `work` against the registry of a stopped server's store, as the operator.
pub(super) fn with_registry<F: Future<Output = Result<serde_json::Value, CliError>>>(
    dir: &DataDirArgs,
    work: impl FnOnce(RegistryHandle) -> F,
) -> Result<serde_json::Value, CliError> {
    let (store, config) = open(dir)?;
    let issuer = config.issuer.clone().unwrap_or_else(|| format!("http://{}", config.listen));
    let limits = config.app_limits(&issuer);
    let clock = Arc::new(SystemClock);
    let grants = GrantStore::start(Arc::clone(&store), clock.clone(), config.sweep())?;
    let registry = Registry::load(store, grants.clone(), clock, limits)?;
    let answer = actix::System::new().block_on(async move {
        let registry = RegistryHandle::start(registry, &actix::Arbiter::current())
            .on_behalf(Origin::operator());
        work(registry).await
    });
    grants.stop();
    answer
}

/// An `apps` command as the admin API call it stands for.
fn remote_apps(server: &ServerArgs, command: &AppsCommand) -> Result<String, RemoteError> {
    use serde_json::json;
    let path = |id: &str, rest: &str| format!("{}{rest}", remote::segment(id));
    let (method, path, body) = match command {
        AppsCommand::Create { name, scopes, description, .. } => {
            let body = json!({ "name": name, "scopes": scopes, "description": description });
            ("POST", String::new(), Some(body))
        }
        AppsCommand::List(_) => ("GET", "?pageSize=1000".into(), None),
        // Sent as JSON Lines, not JSON: `import::run` sends it.
        AppsCommand::Import { .. } => return Err(RemoteError::NoServer),
        AppsCommand::Get { id, .. } => ("GET", path(id, ""), None),
        AppsCommand::Delete { id, .. } => ("DELETE", path(id, ""), None),
        AppsCommand::Update { id, name, scopes, description, active, .. } => {
            let body = remote::fields([
                ("name", json!(name)),
                ("scopes", json!(scopes)),
                ("description", json!(description)),
                ("isActive", json!(active)),
            ]);
            ("PUT", path(id, ""), Some(body))
        }
        AppsCommand::RotateSecret { id, step, .. } => {
            let rest = match step.as_str() {
                "complete" => "/secrets/rotate",
                "cancel" => "/secrets/rotate/cancel",
                _ => "/secrets/rotate/start",
            };
            ("POST", path(id, rest), None)
        }
    };
    remote::call(&remote::APPS, server, method, &path, body.as_ref())
}

async fn apps_command(
    registry: RegistryHandle,
    command: AppsCommand,
) -> Result<serde_json::Value, CliError> {
    Ok(match command {
        AppsCommand::Create { name, scopes, description, .. } => {
            let input = NewApp { name, scopes, description, ..Default::default() };
            let (app, secret) = registry.create_app(Caller::Operator, input).await?;
            let mut v = crate::api::admin::app_view(&app);
            v["secret"] = serde_json::json!(secret);
            serde_json::json!({ "app": v })
        }
        AppsCommand::Get { .. }
        | AppsCommand::Update { .. }
        | AppsCommand::Delete { .. }
        | AppsCommand::Import { .. } => {
            return Err(RemoteError::NoServer.into());
        }
        AppsCommand::List(_) => {
            let page = registry.list_apps(Page::ALL).await?;
            let apps: Vec<_> = page.items.iter().map(crate::api::admin::app_view).collect();
            serde_json::json!({ "apps": apps, "count": page.total })
        }
        AppsCommand::RotateSecret { id, step, .. } => {
            let step = match step.as_str() {
                "complete" => RotationStep::Complete,
                "cancel" => RotationStep::Cancel,
                _ => RotationStep::Start,
            };
            let (app, next) = registry.rotate_secret(Caller::Operator, id, step).await?;
            let mut v = serde_json::json!({ "app": crate::api::admin::app_view(&app) });
            if let Some(secret) = next {
                v["nextSecret"] = serde_json::json!(secret);
            }
            v
        }
    })
}
