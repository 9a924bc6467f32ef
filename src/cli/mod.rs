//! The `tessera` command line (docs/api.md, Running and CLI).

mod admin;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

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
    /// Manage signing keys in a data directory (the server must be stopped).
    Keys {
        #[command(subcommand)]
        command: admin::KeysCommand,
    },
    /// Manage apps in a data directory (the server must be stopped).
    Apps {
        #[command(subcommand)]
        command: admin::AppsCommand,
    },
    /// Work with access tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
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
    /// TOML configuration file.
    #[arg(long, env = "TESSERA_CONFIG")]
    pub config: Option<PathBuf>,
    /// Issuer URL written into tokens (default http://<listen>).
    #[arg(long, env = "TESSERA_ISSUER")]
    pub issuer: Option<String>,
}

#[derive(Subcommand)]
enum TokenCommand {
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
        token: String,
    },
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Keys { command } => admin::keys(command),
        Command::Apps { command } => admin::apps(command),
        Command::Token {
            command:
                TokenCommand::Verify { jwks, required_scopes, root_satisfies, issuer, audience, token },
        } => {
            let opts =
                crate::verify::VerifyOptions { required_scopes, root_satisfies, issuer, audience };
            let result = crate::verify::fetch_jwks(&jwks)
                .and_then(|jwks| crate::verify::verify(&token, &jwks, &opts));
            match result {
                Ok(verified) => {
                    println!("{}", serde_json::json!({ "valid": true, "token": verified }));
                    ExitCode::SUCCESS
                }
                Err(reason) => {
                    println!("{}", serde_json::json!({ "valid": false, "reason": reason }));
                    ExitCode::from(1)
                }
            }
        }
    }
}

/// Settles the configuration from file, then flags and env vars over it.
pub fn load_config(args: &ServeArgs) -> Result<crate::config::Config, String> {
    let mut config = match &args.config {
        Some(path) => crate::config::Config::from_file(path)?,
        None => crate::config::Config::default(),
    };
    if let Some(v) = &args.listen {
        config.listen = v.clone();
    }
    if let Some(v) = &args.data_dir {
        config.data_dir = v.clone();
    }
    if let Some(v) = &args.issuer {
        config.issuer = Some(v.trim_end_matches('/').to_string());
    }
    config.validate()?;
    Ok(config)
}
