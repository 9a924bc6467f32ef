//! Heap allocations per token request, counted by a global allocator (allocation-counter's)
//! that counts on the measuring thread only, so the other tests running beside it add nothing.
//!
//! Two figures: the token path we own (parse the body and `Authorization`, authenticate,
//! scope, mint, sign, serialize the answer), held to at most `OWN_PATH`; and the whole request
//! through actix-web in process (routing, headers, the request log, metrics), held below
//! `WHOLE_REQUEST` so that a change that adds allocations to the middleware shows up.

use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use actix_web::App;
use actix_web::test::{TestRequest, call_service, init_service};
use tessera::config::Config;
use tessera::server::prepare;
use tessera_core::clock::SystemClock;
use tessera_core::oauth::request::{BodyKind, parse};
use tessera_core::registry::RootCredentials;
use tessera_core::tokens::issuer::Channel;

use crate::support::{ROOT_ID, ROOT_SECRET, basic};

/// The issue's target for the path from body bytes to answer bytes.
const OWN_PATH: u64 = 8;
/// The whole in-process request, as measured when the hot path was tidied, plus a little room.
const WHOLE_REQUEST: u64 = 28;

/// Runs `f` and counts the allocations (a reallocation is one) it made on this thread.
fn counted<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let mut out = None;
    let info = allocation_counter::measure(|| out = Some(f()));
    (out.expect("ran"), info.count_total)
}

/// Polls `f` once, with a waker that does nothing: the token path must finish without waiting
/// (no actor round trip, no I/O), and an executor's own allocations stay out of the count.
fn at_once<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the token path waited"),
    }
}

#[test]
fn issue_14_token_request_allocates_at_most_8() {
    let dir = tempfile::tempdir().unwrap();
    let system = actix_web::rt::System::new();
    let config = Config { data_dir: dir.path().to_path_buf(), ..Config::default() };
    let root = RootCredentials { client_id: ROOT_ID.into(), client_secret: ROOT_SECRET.into() };
    let iss = "http://127.0.0.1:8080";
    let prepared =
        system.block_on(async { prepare(config, iss, Some(root), None, Arc::new(SystemClock)) });
    let state = prepared.unwrap().state;
    let issuer = Arc::clone(&state.issuer);
    let auth = basic(ROOT_ID, ROOT_SECRET);
    let body = b"grant_type=client_credentials&scope=root";
    // A real request comes from an address, which has a failure window of its own.
    let peer = Some(std::net::IpAddr::from([10, 1, 2, 3]));

    let own = || {
        let req = parse(BodyKind::Form, Some(&auth), body).unwrap();
        let issued = at_once(issuer.answer(&req, &Channel::plain(peer))).unwrap();
        issued.to_json()
    };
    // The first request fills what is made once (limiter shards, lazily built tables).
    own();
    let (answer, own_allocations) = counted(own);
    let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["token_type"], "Bearer", "{answer}");

    let data = state.clone();
    let app = system.block_on(init_service(
        App::new().configure(|cfg| tessera::api::configure(cfg, data.clone())),
    ));
    let request = || {
        TestRequest::post()
            .uri("/oauth2/v1/token")
            .insert_header(("authorization", auth.as_str()))
            .insert_header(("content-type", "application/x-www-form-urlencoded"))
            .set_payload(&body[..])
            .to_request()
    };
    let whole = |req| {
        let res = system.block_on(call_service(&app, req));
        assert!(res.status().is_success(), "{}", res.status());
        res
    };
    whole(request());
    // The request is built outside the count: a real one is made by the HTTP decoder.
    let req = request();
    let (_, whole_allocations) = counted(|| whole(req));
    eprintln!("allocations: token path {own_allocations}, whole request {whole_allocations}");
    assert!(own_allocations <= OWN_PATH, "the token path made {own_allocations} allocations");
    assert!(
        whole_allocations <= WHOLE_REQUEST,
        "the whole request made {whole_allocations} allocations"
    );
}
