//! `tessera serve`.

use std::process::ExitCode;
use std::sync::Arc;

use tessera_core::clock::SystemClock;

use super::{CliError, ServeArgs, fail};
use crate::server::{kek_from_env, root_from_env, start};

pub fn run(args: ServeArgs) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let prepared = (|| -> Result<_, CliError> {
        Ok((super::load_config(&args)?, root_from_env()?, kek_from_env()?))
    })();
    let (config, root, kek) = match prepared {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    let system = actix_web::rt::System::new();
    let outcome = system.block_on(async move {
        let running = start(config.clone(), root, kek, Arc::new(SystemClock)).await?;
        if let Some(path) = &running.root_credentials_file {
            println!("Root app created. Its credentials were written once to {}", path.display());
        }
        tracing::info!(addr = %running.addr, issuer = %running.issuer_url, data_dir = %config.data_dir.display(), "tessera listening");
        if let Some(addr) = running.metrics_addr {
            println!("tessera metrics on http://{addr}/metrics");
        }
        println!("tessera listening on http://{}", running.addr);
        running.wait().await.map_err(|e| crate::server::StartError::Bind(config.listen.clone(), e))
    });
    match outcome {
        Ok(()) => {
            tracing::info!("tessera stopped");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}
