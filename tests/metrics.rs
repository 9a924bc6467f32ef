//! Issue 11: `/metrics` on the main listener, or with `metrics_listen` on its own listener
//! only. What the families hold is checked by the Prometheus parser in the black-box suite
//! (tests/blackbox/python/test_metrics.py); here, where they are answered.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::support::TestServer;

fn get(url: &str) -> (u16, String, String) {
    let agent: ureq::Agent =
        ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut res = agent.get(url).call().expect("HTTP exchange");
    let kind = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    let kind = kind.to_string();
    (res.status().as_u16(), kind, res.body_mut().read_to_string().unwrap_or_default())
}

#[test]
fn issue_11_metrics_are_answered_on_the_main_listener_by_default() {
    let server = TestServer::start();
    server.token(crate::support::ROOT_ID, crate::support::ROOT_SECRET, None);
    let (status, kind, body) = get(&format!("{}/metrics", server.url));
    assert_eq!(status, 200);
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    assert!(body.ends_with("# EOF\n"), "{body}");
    let issued = "tessera_token_requests_total{grant=\"client_credentials\",outcome=\"issued\"} 1";
    assert!(body.contains(issued), "{body}");
    assert!(!body.contains("tessera_change_lag"), "no lag on the embedded store: {body}");
}

#[test]
fn issue_11_metrics_listen_moves_metrics_to_a_listener_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .env("TESSERA_DATA_DIR", dir.path())
        .env("TESSERA_ROOT_CLIENT_ID", crate::support::ROOT_ID)
        .env("TESSERA_ROOT_CLIENT_SECRET", crate::support::ROOT_SECRET)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn tessera");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut metrics = None;
    let main = loop {
        let line = lines.next().expect("tessera printed its addresses").unwrap();
        if let Some(url) = line.strip_prefix("tessera metrics on ") {
            metrics = Some(url.trim().to_string());
        }
        if let Some(url) = line.strip_prefix("tessera listening on ") {
            break url.trim().to_string();
        }
    };
    let metrics = metrics.expect("the metrics address comes first");
    let (status, _, body) = get(&metrics);
    assert_eq!(status, 200);
    assert!(body.contains("# TYPE tessera_signing_keys gauge"), "{body}");
    assert_eq!(get(&format!("{main}/metrics")).0, 404, "not on the main listener");
    let base = metrics.trim_end_matches("/metrics");
    assert_eq!(get(&format!("{base}/oauth2/v1/token")).0, 404, "nothing else on the metrics one");
    assert_eq!(get(&format!("{main}/healthz")).0, 200);
    child.kill().ok();
    child.wait().ok();
}
