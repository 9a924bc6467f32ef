//! A fresh PostgreSQL database for each test (feature `test-postgres`).
//!
//! The server is `TESSERA_TEST_POSTGRES` when set (a URL such as
//! `postgres://postgres@127.0.0.1:5432/postgres`); otherwise one private, throwaway cluster per
//! test process, started on first use from the newest `/usr/lib/postgresql/<version>/bin` (where
//! Debian's `postgresql` package puts it) and removed when the process exits. Without either a
//! test is skipped, except under `CI=true`, where it fails: CI never passes without PostgreSQL.
//!
//! A test that takes the database away ([`private_cluster`]) gets a cluster of its own, which it
//! can stop and start again without disturbing the tests that share the other one.

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
        return skipped(
            "no PostgreSQL for the tests: install Debian's postgresql or set TESSERA_TEST_POSTGRES",
        );
    };
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("random bytes");
    let name = format!("t_{}", crate::grant::hex(&bytes));
    simple_query(server, &format!("CREATE DATABASE {name}")).expect("create the test database");
    Some(TestDatabase { url: with_database(server, &name), server: server.to_string(), name })
}

/// Says why a test does not run, or fails it under `CI=true`.
fn skipped<T>(why: &str) -> Option<T> {
    assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true but {why}");
    println!("skipped: {why}");
    None
}

/// A cluster of this test alone, on a port and in a data directory that stay its own across
/// [`stop`](PrivateCluster::stop) and [`start`](PrivateCluster::start), removed when it is
/// dropped (or, should the process die first, when it exits). Needs the local binaries: a
/// server named by `TESSERA_TEST_POSTGRES` is shared and cannot be taken away.
pub struct PrivateCluster {
    cluster: Cluster,
    port: u16,
}

/// A started private cluster, or `None` (having said so) when this machine cannot run one and
/// this is not CI.
pub fn private_cluster() -> Option<PrivateCluster> {
    let Some(cluster) = Cluster::create() else {
        return skipped(
            "no PostgreSQL binaries to run a private cluster: install Debian's postgresql and \
             run as root",
        );
    };
    let port = cluster.start_on_a_free_port();
    Some(PrivateCluster { cluster, port })
}

impl PrivateCluster {
    /// The cluster's `postgres` database: the test has the cluster to itself.
    pub fn database_url(&self) -> String {
        local_url(self.port)
    }

    /// Stops the server as a crash would (`-m immediate`): nothing is flushed on the way down,
    /// so what a restart finds is what was durable. Returns once it has stopped.
    pub fn stop(&self) {
        run(as_postgres(&self.cluster.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.cluster.data)
            .args(["-m", "immediate", "-w", "stop"]));
    }

    /// Starts it again on the same port and data directory; returns once it accepts
    /// connections (after crash recovery).
    pub fn start(&self) {
        assert!(self.cluster.start(self.port), "{}", self.cluster.log());
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let pg_ctl = self.cluster.bin.join("pg_ctl");
        as_postgres(&pg_ctl)
            .arg("-D")
            .arg(&self.cluster.data)
            .args(["-m", "immediate", "stop"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok();
        std::fs::remove_dir_all(&self.cluster.dir).ok();
    }
}

/// The server's URL, the shared cluster started on the first call.
fn server() -> Option<&'static str> {
    static SERVER: OnceLock<Option<String>> = OnceLock::new();
    SERVER
        .get_or_init(|| match std::env::var("TESSERA_TEST_POSTGRES") {
            Ok(url) if !url.trim().is_empty() => Some(url.trim().to_string()),
            // Statics are never dropped: the watcher removes this one when the process exits.
            _ => Cluster::create().map(|cluster| local_url(cluster.start_on_a_free_port())),
        })
        .as_deref()
}

fn local_url(port: u16) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/postgres")
}

/// A cluster of our own in a temporary directory, initialized.
struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    data: PathBuf,
}

impl Cluster {
    /// Initializes a cluster, or `None` when this machine cannot run one. The postgres server
    /// refuses to run as root, so it runs as the `postgres` user, which only root can switch to.
    fn create() -> Option<Cluster> {
        let bin = newest_binaries()?;
        if output("id", &["-u"]).as_deref() != Some("0") {
            return None;
        }
        let dir = PathBuf::from(output("mktemp", &["-d", "-t", "tessera-pg.XXXXXX"])?);
        let data = dir.join("data");
        watch(&bin.join("pg_ctl"), &dir, &data);
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
        Some(Cluster { bin, dir, data })
    }

    /// A free port can be taken by someone else before the server binds it: try a few.
    fn start_on_a_free_port(&self) -> u16 {
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            if self.start(port) {
                return port;
            }
        }
        panic!("the test cluster did not start:\n{}", self.log());
    }

    /// Starts the server on `port` and waits until it accepts connections.
    fn start(&self, port: u16) -> bool {
        let options = format!("-c listen_addresses=127.0.0.1 -p {port} -k {}", self.dir.display());
        as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.dir.join("log"))
            .args(["-w", "-o", &options, "start"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .expect("run pg_ctl")
            .success()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

/// Stops the cluster in `dir` and removes it once this process has exited, however it exits.
fn watch(pg_ctl: &Path, dir: &Path, data: &Path) {
    // Run by a watcher in a session of its own, so that an interrupted test run does not take
    // it down first, and so that a cluster held by a static, never dropped, goes too.
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
