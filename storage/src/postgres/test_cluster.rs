//! A fresh PostgreSQL database for each test (feature `test-postgres`).
//!
//! The server is `TESSERA_TEST_POSTGRES` when set (a URL such as
//! `postgres://postgres@127.0.0.1:5432/postgres`); otherwise one private, throwaway cluster per
//! test process, started on first use from the newest `/usr/lib/postgresql/<version>/bin` (where
//! Debian's `postgresql` package puts it) and removed when the process exits. Without either a
//! test is skipped, except under `CI=true`, where it fails: CI never passes without PostgreSQL.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use tokio_postgres::{NoTls, SimpleQueryMessage};

/// A database of its own for one test, dropped with the guard.
pub struct TestDatabase {
    url: String,
    server: String,
    name: String,
}

impl TestDatabase {
    /// The URL to hand to [`crate::PgStore::connect`].
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs `query` on this database outside any store, for tests that look at what was
    /// written (a secret must never be there in the clear): the first column of each row, as
    /// PostgreSQL prints it.
    pub fn query_text(&self, query: &str) -> Vec<String> {
        simple_query(&self.url, query).expect("test query")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // FORCE: a store the test leaked may still hold connections.
        let drop_it = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(e) = simple_query(&self.server, &drop_it) {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}

/// A fresh, empty database, or `None` (having said so) when no PostgreSQL can be had and this
/// is not CI. A test starts with `let Some(db) = fresh_database() else { return };`.
pub fn fresh_database() -> Option<TestDatabase> {
    let Some(server) = server() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but no PostgreSQL for the tests: install Debian's postgresql or set \
             TESSERA_TEST_POSTGRES"
        );
        println!("skipped: no PostgreSQL (set TESSERA_TEST_POSTGRES)");
        return None;
    };
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("random bytes");
    let name = format!("t_{}", crate::grant::hex(&bytes));
    simple_query(server, &format!("CREATE DATABASE {name}")).expect("create the test database");
    Some(TestDatabase { url: with_database(server, &name), server: server.to_string(), name })
}

/// The server's URL, the private cluster started on the first call.
fn server() -> Option<&'static str> {
    static SERVER: OnceLock<Option<String>> = OnceLock::new();
    SERVER
        .get_or_init(|| match std::env::var("TESSERA_TEST_POSTGRES") {
            Ok(url) if !url.trim().is_empty() => Some(url.trim().to_string()),
            _ => start_cluster(),
        })
        .as_deref()
}

/// Starts a cluster of our own in a temporary directory. The postgres server refuses to run as
/// root, so it runs as the `postgres` user, which only root can switch to.
fn start_cluster() -> Option<String> {
    let bin = newest_binaries()?;
    if output("id", &["-u"]).as_deref() != Some("0") {
        return None;
    }
    let dir = PathBuf::from(output("mktemp", &["-d", "-t", "tessera-pg.XXXXXX"])?);
    let data = dir.join("data");
    let pg_ctl = bin.join("pg_ctl");
    // Statics are never dropped, so the cluster is stopped by a watcher of its own, in a
    // session of its own so that an interrupted test run does not take it down first.
    let watcher = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
         runuser -u postgres -- {pg_ctl} -D {data} -m immediate stop >/dev/null 2>&1; \
         rm -rf {dir}",
        pid = std::process::id(),
        pg_ctl = pg_ctl.display(),
        data = data.display(),
        dir = dir.display(),
    );
    // `setsid -f` forks: it returns at once, and no child of ours is left to reap. No pipe of
    // ours either, or reading its output would wait for the watcher to end.
    let detached = Command::new("setsid")
        .args(["-f", "sh", "-c", &watcher])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run setsid");
    assert!(detached.success(), "the cluster's watcher did not start");
    run(Command::new("chown").args(["postgres:postgres"]).arg(&dir));
    // No sync of the initial files (they are throwaway), but fsync stays on for the server:
    // the tests see the commit path a deployment has.
    run(as_postgres(&bin.join("initdb")).arg("-D").arg(&data).args([
        "-U",
        "postgres",
        "--auth=trust",
        "-E",
        "UTF8",
        "--no-sync",
    ]));
    // A free port can be taken by someone else before the server binds it: try a few.
    for _ in 0..3 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let options = format!("-c listen_addresses=127.0.0.1 -p {port} -k {}", dir.display());
        let started = as_postgres(&pg_ctl)
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.join("log"))
            .args(["-w", "-o", &options, "start"])
            .stdout(Stdio::null())
            .status()
            .expect("run pg_ctl");
        if started.success() {
            return Some(format!("postgres://postgres@127.0.0.1:{port}/postgres"));
        }
    }
    let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
    panic!("the test cluster did not start:\n{log}");
}

/// The newest installed version's binaries, as Debian lays them out.
fn newest_binaries() -> Option<PathBuf> {
    let root = Path::new("/usr/lib/postgresql");
    let version = |name: &str| -> Vec<u32> {
        name.split('.').map(|part| part.parse().unwrap_or(0)).collect()
    };
    std::fs::read_dir(root)
        .ok()?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| root.join(name).join("bin/initdb").exists())
        .max_by_key(|name| version(name))
        .map(|name| root.join(name).join("bin"))
}

fn as_postgres(program: &Path) -> Command {
    let mut command = Command::new("runuser");
    command.args(["-u", "postgres", "--"]).arg(program);
    command
}

fn run(command: &mut Command) {
    let out = command.stdin(Stdio::null()).output().expect("run a cluster command");
    assert!(out.status.success(), "{command:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).stdin(Stdio::null()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `server` with its database replaced by `name` (URL form only).
fn with_database(server: &str, name: &str) -> String {
    let (head, query) = match server.split_once('?') {
        Some((head, query)) => (head, format!("?{query}")),
        None => (server, String::new()),
    };
    let authority = head.find("://").map_or(0, |i| i + 3);
    let base = match head[authority..].find('/') {
        Some(slash) => &head[..authority + slash],
        None => head,
    };
    format!("{base}/{name}{query}")
}

/// One query on a connection of its own, on a thread of its own: the caller may be inside a
/// runtime (an actix test), where blocking on another one panics.
fn simple_query(url: &str, query: &str) -> Result<Vec<String>, tokio_postgres::Error> {
    let (url, query) = (url.to_string(), query.to_string());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the test query");
        runtime.block_on(async move {
            let (client, connection) = tokio_postgres::connect(&url, NoTls).await?;
            let connection = tokio::spawn(connection);
            let messages = client.simple_query(&query).await?;
            drop(client);
            connection.await.ok();
            Ok(messages
                .into_iter()
                .filter_map(|m| match m {
                    SimpleQueryMessage::Row(row) => Some(row.get(0).unwrap_or("").to_string()),
                    _ => None,
                })
                .collect())
        })
    })
    .join()
    .expect("the test query's thread")
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn a_server_url_gets_the_test_database() {
        let name = "t_1";
        assert_eq!(with_database("postgres://u@h:5/postgres", name), "postgres://u@h:5/t_1");
        assert_eq!(with_database("postgres://u@h:5", name), "postgres://u@h:5/t_1");
        assert_eq!(
            with_database("postgres://u:p@h/x?sslmode=disable", name),
            "postgres://u:p@h/t_1?sslmode=disable"
        );
    }
}
