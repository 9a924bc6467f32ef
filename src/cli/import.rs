//! `tessera apps import FILE`: a fleet's apps, all or none, through a running server's admin
//! API or a stopped one's registry. The secrets the import makes go to a new file only its
//! owner can read (created before the import, so a file that cannot be written never costs the
//! secrets), never to the terminal.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tessera_core::policy::Caller;

use super::CliError;
use super::admin::{DataDirArgs, with_registry};
use super::remote::{Remote, RemoteError};
use crate::api::admin::apps::{import_view, parse_import};

pub(super) fn run(
    dir: &DataDirArgs,
    file: &Path,
    secrets_out: Option<&Path>,
) -> Result<Value, CliError> {
    let text = std::fs::read_to_string(file)
        .map_err(|error| CliError::File { path: file.to_path_buf(), error })?;
    let out = secrets_out.map_or_else(|| secrets_path(file), Path::to_path_buf);
    let sink = create_private(&out)?;
    let answer = match dir.remote()? {
        Some(server) => {
            let remote = Remote::connect(server.server.as_deref().ok_or(RemoteError::NoServer)?)?;
            remote
                .send("POST", "/api/v1/apps/import", "application/x-ndjson", text)
                .map_err(CliError::from)
        }
        None => match parse_import(&text) {
            Err(refused) => Err(CliError::Refused(refused.to_string())),
            Ok(apps) => with_registry(dir, |registry| async move {
                let imported = registry.import_apps(Caller::Operator, apps).await?;
                Ok(json!(import_view(&imported)))
            }),
        },
    };
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => {
            // Nothing was imported: the empty file would only mislead.
            drop(sink);
            let _ = std::fs::remove_file(&out);
            return Err(e);
        }
    };
    write_lines(sink, &answer).map_err(|error| CliError::File { path: out.clone(), error })?;
    Ok(json!({ "imported": answer["imported"], "secretsFile": out }))
}

/// `apps.jsonl` → `apps.secrets.jsonl`, beside it.
fn secrets_path(file: &Path) -> PathBuf {
    let stem = file.file_stem().map_or_else(|| "apps".into(), |s| s.to_string_lossy());
    file.with_file_name(format!("{stem}.secrets.jsonl"))
}

/// A new file readable by its owner alone; an existing one is never overwritten.
fn create_private(path: &Path) -> Result<BufWriter<File>, CliError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file =
        options.open(path).map_err(|error| CliError::File { path: path.to_path_buf(), error })?;
    Ok(BufWriter::new(file))
}

/// One line per app: its line in the import, ids, and the secret it was given if any.
fn write_lines(mut sink: BufWriter<File>, answer: &Value) -> std::io::Result<()> {
    for app in answer["apps"].as_array().into_iter().flatten() {
        writeln!(sink, "{app}")?;
    }
    sink.into_inner().map_err(|e| e.into_error())?.sync_all()
}
