//! The `tessera` command line against a data directory and a running server.

use std::process::{Command, Output};

use serde_json::{Value, json};

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

/// `tessera` against a running server as the app in `TESSERA_CLIENT_ID`.
fn remote(server: &TestServer, id: &str, secret: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .env("TESSERA_SERVER", &server.url)
        .env("TESSERA_CLIENT_ID", id)
        .env("TESSERA_CLIENT_SECRET", secret)
        .env_remove("TESSERA_DATA_DIR")
        .output()
        .expect("run tessera")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn issue_11_the_cli_manages_a_running_server_through_its_admin_api() {
    let server = TestServer::start();
    let root = |args: &[&str]| {
        let out = remote(&server, ROOT_ID, ROOT_SECRET, args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        json(&out)
    };
    let app =
        root(&["apps", "create", "--name", "billing", "--scope", "orders:read"])["app"].clone();
    let id = app["id"].as_str().unwrap();
    let (client_id, secret) = (app["clientId"].as_str().unwrap(), app["secret"].as_str().unwrap());
    assert_eq!(root(&["apps", "list"])["count"], 2);
    root(&[
        "apps",
        "update",
        id,
        "--name",
        "billing-2",
        "--scope",
        "orders:read",
        "--scope",
        "orders:write",
    ]);
    let got = root(&["apps", "get", id])["app"].clone();
    assert_eq!(
        (got["name"].clone(), got["scopes"].clone()),
        (json!("billing-2"), json!(["orders:read", "orders:write"]))
    );
    let rotation = root(&["apps", "rotate-secret", id]);
    assert!(rotation["nextSecret"].as_str().is_some());
    root(&["apps", "rotate-secret", id, "--step", "cancel"]);

    let scope = root(&["scopes", "create", "--name", "orders:read", "--note", "read orders"]);
    let scope_id = scope["scope"]["id"].as_str().unwrap();
    root(&["scopes", "update", scope_id, "--note", "reads orders"]);
    assert_eq!(root(&["scopes", "get", scope_id])["scope"]["note"], "reads orders");
    let role = root(&["roles", "create", "--name", "reader", "--scope", "orders:read"]);
    assert_eq!(role["role"]["scopes"], json!(["orders:read"]));
    assert!(root(&["roles", "list"])["roles"].as_array().unwrap().len() >= 3);
    assert_eq!(root(&["users", "list"])["count"], 0);
    let service = root(&["services", "create", "--name", "crm"]);
    let service_id = service["service"]["id"].as_str().unwrap();
    assert!(service["apiKey"].as_str().is_some(), "the first key is shown once");
    let key = root(&["services", "issue-key", service_id]);
    let key_id = key["apiKey"]["keyId"].as_str().or(key["keyId"].as_str()).unwrap().to_string();
    root(&["services", "revoke-key", service_id, &key_id]);
    assert_eq!(root(&["keys", "list"])["keys"].as_array().unwrap().len(), 2);
    server.jwks();
    assert!(root(&["keys", "rotate"])["keys"].is_array());

    // `token get` is client_credentials: the token verifies and holds what was asked.
    let token = remote(&server, client_id, secret, &["token", "get", "--scope", "orders:read"]);
    let token = json(&token);
    assert_eq!(token["scope"], "orders:read");
    let access = token["access_token"].as_str().unwrap();
    let jwks = format!("{}/.well-known/jwks.json", server.url);
    let verified = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["token", "verify", "--jwks", &jwks, "--required-scope", "orders:read", access])
        .output()
        .unwrap();
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stdout));

    // The audit log names the CLI's calls as the root app's, in order.
    let events = root(&["audit", "--page-size", "1000"])["events"].clone();
    let actions: Vec<&str> =
        events.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    let expected = [
        "app.create",
        "app.update",
        "app.rotate_secret",
        "app.rotate_secret",
        "scope.create",
        "scope.update",
        "role.create",
        "service.create",
        "service.issue_key",
        "service.revoke_key",
        "key.rotate",
    ];
    assert_eq!(actions, expected);
    assert!(events.as_array().unwrap().iter().all(|e| e["actor"] == format!("app:{ROOT_ID}")));
    assert!(!events.to_string().contains(secret));
    root(&["apps", "delete", id]);
    assert_eq!(root(&["apps", "list"])["count"], 1);

    // Refusals: one line with the server's own words, exit code 1.
    let gone = remote(&server, ROOT_ID, ROOT_SECRET, &["apps", "get", id]);
    assert_eq!(
        (gone.status.code(), stderr(&gone)),
        (Some(1), "tessera: 404 not_found: not found\n".into())
    );
    let bad = remote(&server, ROOT_ID, "not-the-secret", &["apps", "list"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).starts_with("tessera: 401 invalid_client: "), "{}", stderr(&bad));
    let (_, reader, reader_secret) =
        server.create_app(json!({"name": "reader", "scopes": ["read_app"]}));
    let denied = remote(&server, &reader, &reader_secret, &["apps", "create", "--name", "x"]);
    assert_eq!(
        stderr(&denied),
        "tessera: 403 insufficient_scope: this call needs the scope 'write_app'\n"
    );
    let plain = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["apps", "list", "--server", "http://example.com"])
        .output()
        .unwrap();
    assert_eq!(plain.status.code(), Some(1));
    assert!(stderr(&plain).contains("http only on a loopback host"), "{}", stderr(&plain));
    let scopes_offline = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["scopes", "list"])
        .env_remove("TESSERA_SERVER")
        .output()
        .unwrap();
    assert_eq!(
        stderr(&scopes_offline),
        "tessera: this command needs --server URL (or TESSERA_SERVER)\n"
    );

    // Tables for people: columns under headings.
    let table = remote(&server, ROOT_ID, ROOT_SECRET, &["apps", "list", "--output", "table"]);
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(
        table.starts_with("ID  ") && table.contains("CLIENT ID") && table.contains(ROOT_ID),
        "{table}"
    );
}

#[test]
fn issue_11_completions_are_printed_for_each_shell() {
    for (shell, mark) in
        [("bash", "_tessera()"), ("zsh", "#compdef tessera"), ("fish", "complete -c tessera")]
    {
        let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success());
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains(mark) && script.contains("audit"), "{shell}");
    }
}

#[test]
fn issue_12_resources_from_the_cli_and_verify_refuses_a_bound_token_without_its_proof() {
    use crate::dpop::Key;
    let server = TestServer::start();
    let root = |args: &[&str]| {
        let out = remote(&server, ROOT_ID, ROOT_SECRET, args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        json(&out)
    };
    root(&["scopes", "create", "--name", "orders:read"]);
    let api = "https://api.example.com/orders";
    let created = root(&[
        "resources",
        "create",
        "--identifier",
        api,
        "--name",
        "Orders",
        "--scope",
        "orders:read",
        "--ttl",
        "300",
    ]);
    let id = created["resource"]["id"].as_str().unwrap().to_string();
    assert_eq!(created["resource"]["accessTokenTtlSecs"], 300);
    root(&["resources", "update", &id, "--name", "Orders API"]);
    assert_eq!(root(&["resources", "get", &id])["resource"]["name"], "Orders API");
    assert_eq!(root(&["resources", "list"])["count"], 1);

    // A DPoP-bound token for the resource, checked offline as its API would.
    let (_, client_id, secret) =
        server.create_app(json!({"name": "a", "resources": {api: ["orders:read"]}}));
    let key = Key::ed25519(31);
    let token_url = format!("{}/oauth2/v1/token", server.url);
    let auth = crate::support::basic(&client_id, &secret);
    let proof = key.proof("POST", &token_url, None);
    let body = format!("grant_type=client_credentials&resource={}", crate::support::form(api));
    let headers = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("authorization", auth.as_str()),
        ("dpop", proof.as_str()),
    ];
    let res = server.request("POST", "/oauth2/v1/token", &headers, Some(body.as_bytes()));
    let token = res.json()["access_token"].as_str().unwrap().to_string();
    let jwks = format!("{}/.well-known/jwks.json", server.url);
    let verify = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["token", "verify", "--jwks", &jwks, "--audience", api])
            .args(extra)
            .arg(&token)
            .output()
            .unwrap();
        (out.status.success(), json(&out))
    };
    let (ok, answer) = verify(&[]);
    assert!(!ok && answer["reason"].as_str().unwrap().contains("DPoP"), "{answer}");
    let call = format!("{api}/42");
    let good = key.proof("GET", &call, Some(&token));
    assert!(verify(&["--dpop-proof", &good, "--htm", "GET", "--htu", &call]).0);
    let thief = Key::ed25519(32).proof("GET", &call, Some(&token));
    let (ok, answer) = verify(&["--dpop-proof", &thief, "--htm", "GET", "--htu", &call]);
    assert!(!ok && answer["reason"].as_str().unwrap().contains("key"), "{answer}");
    let (ok, _) = verify(&["--dpop-proof", &good, "--htm", "POST", "--htu", &call]);
    assert!(!ok, "a proof is for one method");

    root(&["resources", "delete", &id]);
    assert_eq!(root(&["resources", "list"])["count"], 0);
}

#[test]
fn issue_13_issuers_from_the_cli() {
    let server = TestServer::start();
    let run = |args: &[&str]| remote(&server, ROOT_ID, ROOT_SECRET, args);
    let jwks = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
    let out = run(&[
        "issuers",
        "create",
        "--issuer",
        "https://spire.example.org",
        "--jwks",
        jwks,
        "--algorithm",
        "EdDSA",
        "--max-token-age",
        "600",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let created = json(&out);
    assert_eq!(created["issuer"]["keys"], json!(["k1"]));
    assert_eq!(created["issuer"]["maxTokenAgeSecs"], 600);
    let id = created["issuer"]["id"].as_str().unwrap().to_string();
    assert_eq!(json(&run(&["issuers", "list"]))["count"], 1);
    // Refused by the server, with its words.
    let out = run(&["issuers", "create", "--issuer", "https://x.example", "--jwks", "not json"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("JWK Set"), "{}", stderr(&out));
    let out = run(&["issuers", "delete", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&run(&["issuers", "list"]))["count"], 0);
}

#[test]
fn issue_14_apps_import_writes_made_secrets_to_a_private_file_only() {
    use std::os::unix::fs::PermissionsExt;
    let lines = [
        json!({"name": "kept", "scopes": ["orders:read"], "clientId": "kept-id", "secret": "a-secret-the-fleet-already-uses"}),
        json!({"name": "made", "scopes": ["orders:read"]}),
    ];
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("fleet.jsonl");
    std::fs::write(&file, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    let file = file.to_str().unwrap();

    // On a stopped server's data dir.
    let server = TestServer::start();
    let dir = server.stop();
    let out = tessera(&["apps", "import", file], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let answer = json(&out);
    assert_eq!(answer["imported"], 2);
    let secrets = work.path().join("fleet.secrets.jsonl");
    assert_eq!(answer["secretsFile"], secrets.to_str().unwrap());
    let mode = std::fs::metadata(&secrets).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let written: Vec<Value> = std::fs::read_to_string(&secrets)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(written.len(), 2);
    assert_eq!(written[0]["clientId"], "kept-id");
    assert!(written[0].get("secret").is_none());
    let made = written[1]["secret"].as_str().unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains(made), "no secret on the terminal");
    // An existing secrets file is never overwritten, and then nothing is imported.
    let again = tessera(&["apps", "import", file], dir.path());
    assert!(!again.status.success());
    assert!(stderr(&again).contains("fleet.secrets.jsonl"), "{}", stderr(&again));
    let listed = json(&tessera(&["apps", "list"], dir.path()));
    assert_eq!(listed["count"], 3, "root and the two imported");

    // Against a running server, with a refusal that names its line and leaves no file behind.
    let config = tessera::config::Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    let server = TestServer::start_in(dir, config, crate::support::now());
    let run = |args: &[&str]| remote(&server, ROOT_ID, ROOT_SECRET, args);
    let bad = work.path().join("bad.jsonl");
    std::fs::write(&bad, format!("{}\n{{\"name\":\"x\",\"scopes\":\"no\"}}\n", lines[1])).unwrap();
    let out = run(&["apps", "import", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("line 2"), "{}", stderr(&out));
    assert!(!work.path().join("bad.secrets.jsonl").exists());
    let out_path = work.path().join("elsewhere.jsonl");
    let out = run(&["apps", "import", file, "--secrets-out", out_path.to_str().unwrap()]);
    assert!(!out.status.success(), "the kept client id is taken now");
    assert!(stderr(&out).contains("line 1"), "{}", stderr(&out));
    let only_made = work.path().join("made.jsonl");
    std::fs::write(&only_made, format!("{}\n", lines[1])).unwrap();
    let out = run(&["apps", "import", only_made.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let written = std::fs::read_to_string(work.path().join("made.secrets.jsonl")).unwrap();
    let made: Value = serde_json::from_str(written.trim()).unwrap();
    server.token(made["clientId"].as_str().unwrap(), made["secret"].as_str().unwrap(), None);
}

/// Ids are base64url and may begin with `-` (a service's id once did, and the CLI read it as a
/// flag): every id argument takes it as the id it is.
#[test]
fn issue_14_an_id_that_begins_with_a_hyphen_is_an_id() {
    let server = TestServer::start();
    for args in [
        &["apps", "get", "-no-such-app"][..],
        &["services", "get", "-no-such-service"],
        &["services", "revoke-key", "-no-such-service", "-no-such-key"],
    ] {
        let out = remote(&server, ROOT_ID, ROOT_SECRET, args);
        let said = stderr(&out);
        assert!(!out.status.success(), "{args:?}");
        assert!(!said.contains("unexpected argument"), "{args:?} read as a flag: {said}");
        assert!(
            said.to_lowercase().contains("not found") || said.contains("404"),
            "{args:?}: {said}"
        );
    }
}
