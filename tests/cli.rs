//! The `tessera` command line against a data directory and a running server.

use std::process::{Command, Output};

use serde_json::Value;

use crate::support::{ROOT_ID, ROOT_SECRET, TestServer};

fn tessera(args: &[&str], data_dir: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .env("TESSERA_DATA_DIR", data_dir)
        .env("TESSERA_ROOT_CLIENT_ID", ROOT_ID)
        .env("TESSERA_ROOT_CLIENT_SECRET", ROOT_SECRET)
        .output()
        .expect("run tessera")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {} / {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn apps_and_keys_commands_work_on_a_stopped_servers_data_dir() {
    // Create the store with a server first, then stop it.
    let server = TestServer::start();
    let dir = server.stop();

    let created =
        tessera(&["apps", "create", "--name", "cli-app", "--scope", "orders:read"], dir.path());
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let app = json(&created)["app"].clone();
    let (id, secret) = (
        app["clientId"].as_str().unwrap().to_string(),
        app["secret"].as_str().unwrap().to_string(),
    );

    let listed = json(&tessera(&["apps", "list"], dir.path()));
    assert_eq!(listed["count"], 2);
    assert!(!listed.to_string().contains(&secret));

    let keys = json(&tessera(&["keys", "list"], dir.path()));
    assert_eq!(keys["keys"].as_array().unwrap().len(), 2);
    assert!(
        tessera(&["keys", "rotate"], dir.path()).status.success(),
        "the first rotation is safe"
    );
    let unsafe_rotation = tessera(&["keys", "rotate"], dir.path());
    assert_eq!(unsafe_rotation.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unsafe_rotation.stderr).contains("not safe"));

    // The server sees what the CLI wrote, and the CLI verifies what the server issues.
    let config = tessera::config::Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    let server = TestServer::start_in(dir, config, crate::support::now());
    let token = server.token(&id, &secret, None);
    let jwks_url = format!("{}/.well-known/jwks.json", server.url);
    let dir = server.dir.path().to_path_buf();

    // While the server runs, the data dir is refused with a clear message.
    let busy = tessera(&["apps", "list"], &dir);
    assert_eq!(busy.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&busy.stderr).contains("in use"));

    let verify = |extra: &[&str], token: &str| {
        let mut args = vec!["token", "verify", "--jwks", jwks_url.as_str()];
        args.extend_from_slice(extra);
        args.push(token);
        tessera(&args, &dir)
    };
    let ok = verify(&["--required-scope", "orders:read"], &token);
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stdout));
    assert_eq!(json(&ok)["token"]["client_id"], id.as_str());
    assert_eq!(verify(&["--required-scope", "orders:write"], &token).status.code(), Some(1));
    let mut tampered = token.clone().into_bytes();
    let at = tampered.len() - 5;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    assert_eq!(verify(&[], std::str::from_utf8(&tampered).unwrap()).status.code(), Some(1));
    // root does not stand in for a required scope unless asked.
    let root = server.root_token();
    assert_eq!(verify(&["--required-scope", "orders:read"], &root).status.code(), Some(1));
    assert_eq!(
        verify(&["--required-scope", "orders:read", "--root-satisfies"], &root).status.code(),
        Some(0)
    );
}
