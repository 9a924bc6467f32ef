//! The token hot path, against its own floor: one raw Ed25519 signature of a token-sized
//! message. Figures are ratios to that baseline, measured in the same run (BENCHMARKS.md).
//!
//! `cargo bench --bench token`

use std::hint::black_box;
use std::sync::Arc;

use actix_web::{App, test, web};
use base64::Engine;
use criterion::{Criterion, criterion_group, criterion_main};
use ed25519_dalek::{Signer, SigningKey};
use tessera::config::Config;
use tessera::server::prepare;
use tessera_core::clock::SystemClock;
use tessera_core::oauth::request::{BodyKind, parse};
use tessera_core::registry::RootCredentials;
use tessera_core::tokens::claims::Confirmation;
use tessera_core::tokens::issuer::{Channel, mint_with};

const BEARER: Confirmation<'static> = Confirmation { jkt: None, x5t_s256: None };

const ID: &str = "bench-client";
const SECRET: &str = "bench-secret-bench-secret-bench-secret-0000";

fn token_path(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let system = actix_web::rt::System::new();
    let config = Config { data_dir: dir.path().to_path_buf(), ..Config::default() };
    let root = RootCredentials { client_id: ID.into(), client_secret: SECRET.into() };
    let prepared = system
        .block_on(async {
            prepare(config, "http://127.0.0.1:8080", Some(root), None, Arc::new(SystemClock))
        })
        .expect("prepare");
    let state = prepared.state.clone();
    let issuer = Arc::clone(&state.issuer);
    let keys = issuer.keys().load();
    let signer = keys.signer.as_ref().expect("signer");
    let client = issuer.clients().get(ID).expect("root client");

    // A message the size of a real signing input (header + claims, base64url).
    let iss = "http://127.0.0.1:8080";
    let sample = mint_with(signer, iss, &client, ID, "root", iss, (3600, 0), None, BEARER).token;
    let message = sample.rsplit_once('.').expect("jws").0.as_bytes().to_vec();
    let raw = SigningKey::from_bytes(&[7; 32]);

    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ID}:{SECRET}"))
    );
    let body = b"grant_type=client_credentials&scope=root";

    let mut group = c.benchmark_group("token");
    group.bench_function("baseline_raw_ed25519_sign", |b| b.iter(|| raw.sign(black_box(&message))));
    group.bench_function("mint", |b| {
        b.iter(|| {
            mint_with(signer, iss, &client, ID, black_box("root"), iss, (3600, 1), None, BEARER)
        })
    });
    // The failed-authentication reservation every client authentication now makes and gives
    // back (address and client windows), to set against one signature.
    let peer = Some(std::net::IpAddr::from([10, 1, 2, 3]));
    group.bench_function("limiter_reserve_refund", |b| {
        b.iter(|| {
            let attempt = issuer.begin_attempt(black_box(ID), peer, 1).expect("room");
            issuer.refund(attempt)
        })
    });
    group.bench_function("parse_authenticate_mint", |b| {
        b.iter(|| {
            let req = parse(BodyKind::Form, Some(&basic), black_box(body)).expect("parse");
            system.block_on(issuer.answer(&req, &Channel::plain(None))).expect("token")
        })
    });
    let data = state.clone();
    let app = system.block_on(test::init_service(
        App::new().configure(|cfg| tessera::api::configure(cfg, data.clone())),
    ));
    group.bench_function("whole_request_in_process", |b| {
        b.iter(|| {
            let req = test::TestRequest::post()
                .uri("/oauth2/v1/token")
                .insert_header(("authorization", basic.as_str()))
                .insert_header(("content-type", "application/x-www-form-urlencoded"))
                .set_payload(&body[..])
                .to_request();
            let res = system.block_on(test::call_service(&app, req));
            assert!(res.status().is_success());
            res
        })
    });
    group.bench_function("jwks", |b| {
        b.iter(|| {
            let req = test::TestRequest::get().uri("/.well-known/jwks.json").to_request();
            system.block_on(test::call_service(&app, req))
        })
    });
    group.finish();
    drop(web::Data::clone(&state));
}

criterion_group!(benches, token_path);
criterion_main!(benches);
