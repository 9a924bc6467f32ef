//! `tessera store`: the shared PostgreSQL store's schema, and moving a store between backends.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use tessera_storage::{Dump, PgStore, Storage, Store, StoreError};

use super::{CliError, fail};

#[derive(Subcommand)]
pub enum StoreCommand {
    /// Apply the schema migrations this binary carries (nodes also do it at start, under the
    /// same lock, so running it while nodes start is safe).
    Migrate {
        /// The database, postgres://user@host:port/database.
        #[arg(long, env = "TESSERA_STORE")]
        store: String,
    },
    /// Copy every app, key, user, grant and revocation of one store into an empty one: an
    /// embedded store's data directory into a PostgreSQL database, or back. The source must
    /// not be in use by a server; the target must hold nothing. Sealed secrets are copied
    /// sealed: the target's nodes need the source's TESSERA_KEK.
    Copy {
        /// The data directory or postgres:// URL to copy from.
        #[arg(long)]
        from: String,
        /// The data directory or postgres:// URL to copy into.
        #[arg(long)]
        to: String,
    },
}

pub fn run(command: StoreCommand) -> ExitCode {
    let answer = match command {
        StoreCommand::Migrate { store } => PgStore::migrate(&store)
            .map(|applied| serde_json::json!({ "applied": applied }))
            .map_err(CliError::from),
        StoreCommand::Copy { from, to } => copy(&from, &to),
    };
    match answer {
        Ok(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

/// Copies in one read of the source and one transaction on the target, then reads the target
/// back: the copy is reported only when the target holds exactly what the source did.
fn copy(from: &str, to: &str) -> Result<serde_json::Value, CliError> {
    let source = open(from, Role::Source)?;
    let target = open(to, Role::Target)?;
    let dump = source.export()?;
    target.import(&dump)?;
    let copied = target.export()?;
    if copied != dump {
        return Err(CliError::CopyMismatch(differences(&dump, &copied)));
    }
    let counts: serde_json::Map<String, serde_json::Value> =
        dump.counts().into_iter().map(|(table, n)| (table.to_string(), n.into())).collect();
    Ok(serde_json::json!({ "copied": counts, "version": dump.version }))
}

#[derive(Clone, Copy, PartialEq)]
enum Role {
    Source,
    Target,
}

/// A postgres:// URL is the shared store; anything else a data directory. A source directory
/// must hold a store already, so that a typo copies nothing rather than an empty new one.
fn open(place: &str, role: Role) -> Result<Box<dyn Storage>, CliError> {
    if place.starts_with("postgres://") || place.starts_with("postgresql://") {
        return Ok(Box::new(PgStore::connect(place, None)?));
    }
    let dir = PathBuf::from(place);
    if role == Role::Source && !dir.join(Store::FILE).is_file() {
        return Err(CliError::NoStore { data_dir: dir });
    }
    Store::open(Path::new(place), None).map(|s| Box::new(s) as Box<dyn Storage>).map_err(
        |e| match e {
            StoreError::InUse => CliError::DataDirInUse { data_dir: dir },
            other => other.into(),
        },
    )
}

/// The tables whose rows the target does not hold as the source did.
fn differences(source: &Dump, target: &Dump) -> String {
    let mut differ: Vec<String> = source
        .counts()
        .into_iter()
        .zip(target.counts())
        .filter(|(a, b)| a != b)
        .map(|((table, a), (_, b))| format!("{table}: {a} in the source, {b} in the target"))
        .collect();
    if differ.is_empty() {
        differ.push("same counts, different rows".into());
    }
    differ.join("; ")
}
