//! The `tessera` command line (docs/api.md, Running and CLI).

mod admin;
mod import;
mod remote;
mod serve;
mod store;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};
use tessera_core::keys::KeyRingError;
use tessera_core::registry::RegistryError;
use tessera_storage::{KekError, StoreError};

use crate::config::{Config, ConfigError};
use crate::server::HalfRootCredentials;

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "High-throughput OAuth2 token service for machine-to-machine fleets"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server on the embedded store.
    Serve(ServeArgs),
    /// Manage signing keys: on a running server (--server), or in a stopped one's data dir.
    Keys {
        #[command(subcommand)]
        command: admin::KeysCommand,
    },
    /// Manage apps: on a running server (--server), or in a stopped one's data dir.
    Apps {
        #[command(subcommand)]
        command: admin::AppsCommand,
    },
    /// Manage scopes on a running server.
    Scopes {
        #[command(subcommand)]
        command: remote::Records<remote::ScopeWrite>,
    },
    /// Manage roles on a running server.
    Roles {
        #[command(subcommand)]
        command: remote::Records<remote::RoleWrite>,
    },
    /// Manage users on a running server.
    Users {
        #[command(subcommand)]
        command: remote::Records<remote::UserWrite>,
    },
    /// Manage services and their API keys on a running server.
    Services {
        #[command(subcommand)]
        command: remote::Records<remote::ServiceWrite>,
    },
    /// Manage resources (the APIs tokens are for, RFC 8707) on a running server.
    Resources {
        #[command(subcommand)]
        command: remote::Records<remote::ResourceWrite>,
    },
    /// Manage trusted issuers (workload identity federation) on a running server.
    Issuers {
        #[command(subcommand)]
        command: remote::Records<remote::IssuerWrite>,
    },
    /// Read a running server's audit log.
    Audit(remote::AuditArgs),
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Work with access tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Manage a shared PostgreSQL store, or move a store between backends.
    Store {
        #[command(subcommand)]
        command: store::StoreCommand,
    },
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TESSERA_LISTEN")]
    pub listen: Option<String>,
    /// Data directory holding the embedded store.
    #[arg(long, env = "TESSERA_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Answer `/metrics` on this address instead of the main one (and only there).
    #[arg(long, env = "TESSERA_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// A shared PostgreSQL store (postgres://user@host:port/database) instead of the embedded
    /// one: every node given the same URL serves the same apps, keys and grants.
    #[arg(long, env = "TESSERA_STORE")]
    pub store: Option<String>,
    /// TOML configuration file.
    #[arg(long, env = "TESSERA_CONFIG")]
    pub config: Option<PathBuf>,
    /// Issuer URL written into tokens (default http://<listen>, https:// with --tls-cert).
    #[arg(long, env = "TESSERA_ISSUER")]
    pub issuer: Option<String>,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "TESSERA_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "TESSERA_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Ask clients for certificates (RFC 8705); those chaining to these CAs (PEM) may
    /// authenticate apps registered for tls_client_auth.
    #[arg(long, env = "TESSERA_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Get an access token from a running server as TESSERA_CLIENT_ID (client_credentials);
    /// prints the token, or with `--output json` the whole token response.
    Get {
        /// The scopes to ask for (default: all the app holds).
        #[arg(long)]
        scope: Option<String>,
        #[command(flatten)]
        server: remote::ServerArgs,
    },
    /// Verify an access token offline against a JWKS; exit code 0 only when valid and every
    /// required scope is present.
    Verify {
        /// JWKS URL (http:// or https://) or file.
        #[arg(long)]
        jwks: String,
        /// A scope the token must hold; repeat for several.
        #[arg(long = "required-scope")]
        required_scopes: Vec<String>,
        /// Let the root scope satisfy every required scope.
        #[arg(long)]
        root_satisfies: bool,
        /// Required issuer.
        #[arg(long)]
        issuer: Option<String>,
        /// Required audience.
        #[arg(long)]
        audience: Option<String>,
        /// The DPoP proof the token came with (RFC 9449); a DPoP-bound token needs it.
        #[arg(long, requires_all = ["htm", "htu"])]
        dpop_proof: Option<String>,
        /// The method of the request the proof came with.
        #[arg(long, requires = "dpop_proof")]
        htm: Option<String>,
        /// The URL of the request the proof came with.
        #[arg(long, requires = "dpop_proof")]
        htu: Option<String>,
        /// The client certificate (PEM) the token came with (RFC 8705); a certificate-bound
        /// token needs it.
        #[arg(long)]
        client_cert: Option<String>,
        token: String,
    },
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Keys { command } => admin::keys(command),
        Command::Apps { command } => admin::apps(command),
        Command::Store { command } => store::run(command),
        Command::Scopes { command } => print(remote::run_records(&remote::SCOPES, &command)),
        Command::Resources { command } => print(remote::run_records(&remote::RESOURCES, &command)),
        Command::Issuers { command } => print(remote::run_records(&remote::ISSUERS, &command)),
        Command::Roles { command } => print(remote::run_records(&remote::ROLES, &command)),
        Command::Users { command } => print(remote::run_records(&remote::USERS, &command)),
        Command::Services { command } => print(remote::run_records(&remote::SERVICES, &command)),
        Command::Audit(args) => print(remote::run_audit(&args)),
        Command::Token { command: TokenCommand::Get { scope, server } } => {
            print(remote::token_get(scope.as_deref(), &server))
        }
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "tessera", &mut script);
            print(Ok(String::from_utf8_lossy(&script).into_owned()))
        }
        Command::Token {
            command:
                TokenCommand::Verify {
                    jwks,
                    required_scopes,
                    root_satisfies,
                    issuer,
                    audience,
                    dpop_proof,
                    htm,
                    htu,
                    client_cert,
                    token,
                },
        } => {
            let dpop = dpop_proof.map(|proof| crate::verify::DpopRequest {
                proof,
                htm: htm.unwrap_or_default(),
                htu: htu.unwrap_or_default(),
            });
            let result =
                client_cert.as_deref().map(crate::verify::read_certificate).transpose().and_then(
                    |client_cert| {
                        let opts = crate::verify::VerifyOptions {
                            required_scopes,
                            root_satisfies,
                            issuer,
                            audience,
                            dpop,
                            client_cert,
                        };
                        let jwks = crate::verify::fetch_jwks(&jwks)?;
                        crate::verify::verify(&token, &jwks, &opts)
                    },
                );
            match result {
                Ok(verified) => {
                    println!("{}", serde_json::json!({ "valid": true, "token": verified }));
                    ExitCode::SUCCESS
                }
                Err(reason) => {
                    println!(
                        "{}",
                        serde_json::json!({ "valid": false, "reason": reason.to_string() })
                    );
                    ExitCode::from(1)
                }
            }
        }
    }
}

/// Settles the configuration from file, then flags and env vars over it.
pub fn load_config(args: &ServeArgs) -> Result<Config, ConfigError> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(v) = &args.listen {
        config.listen = v.clone();
    }
    if let Some(v) = &args.data_dir {
        config.data_dir = v.clone();
    }
    if let Some(v) = &args.metrics_listen {
        config.metrics_listen = Some(v.clone());
    }
    if let Some(v) = &args.store {
        config.store = Some(crate::config::StoreUrl(v.clone()));
    }
    if let Some(v) = &args.issuer {
        config.issuer = Some(v.trim_end_matches('/').to_string());
    }
    config.tls_cert = args.tls_cert.clone().or(config.tls_cert.take());
    config.tls_key = args.tls_key.clone().or(config.tls_key.take());
    config.tls_client_ca = args.tls_client_ca.clone().or(config.tls_client_ca.take());
    config.validate()?;
    Ok(config)
}

/// Why a command stopped before its work was done; printed as `tessera: <message>`.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    RootCredentials(#[from] HalfRootCredentials),
    #[error(transparent)]
    Kek(#[from] KekError),
    /// Another process holds the store's lock: most likely the server, whose admin API does the
    /// same work while it runs.
    #[error(
        "{} ({}): stop it, or use the admin API of the running server",
        StoreError::InUse,
        .data_dir.display()
    )]
    DataDirInUse { data_dir: PathBuf },
    #[error("no store in {}: nothing to copy", .data_dir.display())]
    NoStore { data_dir: PathBuf },
    /// The target read back differs from the source: the copy must not be used.
    #[error("the copy does not match its source ({0}); do not start nodes on it")]
    CopyMismatch(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    KeyRing(#[from] KeyRingError),
    #[error(transparent)]
    Remote(#[from] remote::RemoteError),
    #[error("{}: {error}", .path.display())]
    File { path: PathBuf, error: std::io::Error },
    /// A file the command reads is refused, in the words the admin API would use.
    #[error("{0}")]
    Refused(String),
}

/// Prints what a command rendered, or its error.
fn print(result: Result<String, remote::RemoteError>) -> ExitCode {
    match result {
        Ok(mut text) => {
            use std::io::Write;
            if !text.ends_with('\n') {
                text.push('\n');
            }
            // A reader that stops early (`| head`) is no failure of the command.
            let _ = std::io::stdout().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

/// Reports a failed command the way every command does: one line on stderr, exit code 1.
fn fail(error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("tessera: {error}");
    ExitCode::from(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_data_directory_names_itself_and_the_way_out() {
        let e = CliError::DataDirInUse { data_dir: PathBuf::from("/srv/tessera") };
        assert_eq!(
            e.to_string(),
            "the data directory is in use by another Tessera process (/srv/tessera): stop it, \
             or use the admin API of the running server"
        );
    }
}
