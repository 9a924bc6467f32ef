//! The token hot path, against its own floor: one raw Ed25519 signature of a token-sized
//! message. Figures are ratios to that baseline, measured in the same run (BENCHMARKS.md).
//!
//! `cargo bench --bench token`

use std::hint::black_box;
use std::sync::Arc;

use actix_web::{App, test, web};
use base64::Engine;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ed25519_dalek::{Signer, SigningKey};
use tessera::config::Config;
use tessera::server::prepare;
use tessera_core::clock::SystemClock;
use tessera_core::oauth::dpop;
use tessera_core::oauth::request::{BodyKind, parse};
use tessera_core::policy::Caller;
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
            let req = token_request(&basic, &body[..], None).to_request();
            let res = system.block_on(test::call_service(&app, req));
            assert!(res.status().is_success());
            res
        })
    });
    // A token request naming a registered resource its app is granted (RFC 8707): one more
    // lookup, in the client's own published grants.
    let api = "https://api.example/";
    system.block_on(grant_root_a_resource(&state, api));
    let resource_body = format!("grant_type=client_credentials&resource={}", form(api));
    group.bench_function("whole_request_resource", |b| {
        b.iter(|| {
            let req = token_request(&basic, resource_body.as_bytes(), None).to_request();
            let res = system.block_on(test::call_service(&app, req));
            assert!(res.status().is_success());
            res
        })
    });
    // DPoP (RFC 9449): the proof check alone, and the whole request with a fresh proof each
    // time (made outside the timed part; a proof is accepted once).
    let htu = "http://127.0.0.1:8080/oauth2/v1/token";
    for key in [ProofKey::Ed25519(SigningKey::from_bytes(&[5; 32])), ProofKey::p256()] {
        let name = key.alg();
        let expected = dpop::Expected { htm: "POST", htu, now: now(), access_token: None };
        let proof = key.proof(htu);
        let keys = dpop::Keys::new(16);
        group.bench_function(format!("dpop_proof_check_{name}"), |b| {
            b.iter(|| dpop::check(black_box(&proof), &expected, &keys).expect("valid"))
        });
        group.bench_function(format!("whole_request_dpop_{name}"), |b| {
            b.iter_batched(
                || token_request(&basic, &body[..], Some(&key.proof(htu))),
                |req| {
                    let res = system.block_on(test::call_service(&app, req.to_request()));
                    assert!(res.status().is_success());
                    res
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.bench_function("jwks", |b| {
        b.iter(|| {
            let req = test::TestRequest::get().uri("/.well-known/jwks.json").to_request();
            system.block_on(test::call_service(&app, req))
        })
    });
    group.finish();
    drop(web::Data::clone(&state));
}

fn token_request(basic: &str, body: &[u8], proof: Option<&str>) -> test::TestRequest {
    let mut req = test::TestRequest::post()
        .uri("/oauth2/v1/token")
        .insert_header(("authorization", basic))
        .insert_header(("content-type", "application/x-www-form-urlencoded"))
        .set_payload(body.to_vec());
    if let Some(proof) = proof {
        req = req.insert_header(("dpop", proof));
    }
    req
}

fn form(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs()
}

/// Registers `identifier` and grants it to the root app, through the registry as the admin API
/// does.
async fn grant_root_a_resource(state: &tessera::api::AppState, identifier: &str) {
    use tessera_core::registry::Page;
    use tessera_core::registry::apps::fields::AppPatch;
    use tessera_core::registry::resources::ResourcePatch;
    let patch = ResourcePatch {
        identifier: Some(identifier.into()),
        name: Some("bench".into()),
        ..ResourcePatch::default()
    };
    state.registry.create_resource(patch).await.expect("resource");
    let apps = state.registry.list_apps(Page::asked(Some(10), Some(1)).expect("page")).await;
    let root = apps.expect("apps").items.into_iter().find(|a| a.client_id == ID).expect("root");
    let grants = [(identifier.to_string(), Vec::new())].into_iter().collect();
    let patch = AppPatch { resources: Some(grants), ..AppPatch::default() };
    state.registry.update_app(Caller::Operator, root.id, patch).await.expect("grant");
}

/// A client's DPoP key, making proofs as a client library would.
enum ProofKey {
    Ed25519(SigningKey),
    P256(p256::ecdsa::SigningKey),
}

impl ProofKey {
    fn p256() -> ProofKey {
        ProofKey::P256(p256::ecdsa::SigningKey::from_slice(&[6; 32]).expect("scalar"))
    }

    fn alg(&self) -> &'static str {
        match self {
            ProofKey::Ed25519(_) => "eddsa",
            ProofKey::P256(_) => "es256",
        }
    }

    fn proof(&self, htu: &str) -> String {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
        let (alg, jwk) = match self {
            ProofKey::Ed25519(k) => (
                "EdDSA",
                serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(k.verifying_key().to_bytes())}),
            ),
            ProofKey::P256(k) => {
                let point = k.verifying_key().to_sec1_point(false);
                let xy = &point.as_bytes()[1..];
                (
                    "ES256",
                    serde_json::json!({"kty": "EC", "crv": "P-256", "x": B64.encode(&xy[..32]), "y": B64.encode(&xy[32..])}),
                )
            }
        };
        let mut jti = [0u8; 16];
        rand::Rng::fill_bytes(&mut rand::rng(), &mut jti);
        let header = serde_json::json!({"typ": "dpop+jwt", "alg": alg, "jwk": jwk});
        let claims =
            serde_json::json!({"htm": "POST", "htu": htu, "iat": now(), "jti": B64.encode(jti)});
        let input =
            format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
        let signature = match self {
            ProofKey::Ed25519(k) => k.sign(input.as_bytes()).to_bytes().to_vec(),
            ProofKey::P256(k) => {
                let s: p256::ecdsa::Signature = k.sign(input.as_bytes());
                s.to_bytes().to_vec()
            }
        };
        format!("{input}.{}", B64.encode(signature))
    }
}

criterion_group!(benches, token_path);
criterion_main!(benches);
