//! Keys, the JWKS and rotation (docs/api.md, Key rotation, ARCHITECTURE.md, the rotation invariant).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use proptest::prelude::*;
use serde_json::json;
use tessera_core::audit::Origin;
use tessera_core::clock::ManualClock;
use tessera_core::keys::KeyRing;
use tessera_core::keys::ring::RotationRules;
use tessera_storage::{Storage, Store};

use crate::support::{TestServer, claims, verify_independently};

#[test]
fn jwks_is_cacheable_with_etag_and_304() {
    let server = TestServer::start_with(|c| c.jwks_max_age = 120);
    let res = server.get("/.well-known/jwks.json", &[]);
    assert_eq!(res.status, 200);
    assert_eq!(res.header("cache-control"), Some("public, max-age=120"));
    let etag = res.header("etag").unwrap().to_string();
    let keys = res.json()["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 2, "current and next are both published from the start");
    for key in &keys {
        assert_eq!(key["kty"], "OKP");
        assert_eq!(key["crv"], "Ed25519");
        assert_eq!(key["alg"], "EdDSA");
        assert_eq!(key["use"], "sig");
        assert!(key.get("d").is_none(), "never private material");
    }
    let again = server.get("/.well-known/jwks.json", &[("if-none-match", &etag)]);
    assert_eq!(again.status, 304);
    assert_eq!(again.body, "");
    assert_eq!(server.get("/oauth2/v1/jwks", &[]).body, res.body);
}

#[test]
fn metadata_is_served_at_both_well_known_paths() {
    let server = TestServer::start();
    let a = server.get("/.well-known/oauth-authorization-server", &[]).json();
    let b = server.get("/.well-known/openid-configuration", &[]).json();
    assert_eq!(a, b);
    assert_eq!(a["issuer"], server.url.as_str());
    assert_eq!(a["token_endpoint"], format!("{}/oauth2/v1/token", server.url));
    assert_eq!(a["jwks_uri"], format!("{}/.well-known/jwks.json", server.url));
    assert!(a["grant_types_supported"].as_array().unwrap().contains(&json!("client_credentials")));
    assert_eq!(a["token_endpoint_auth_signing_alg_values_supported"], json!(["EdDSA"]));
}

#[test]
fn rotation_over_http_keeps_old_tokens_valid_and_refuses_unsafe_rotation() {
    let server = TestServer::start();
    let root = server.root_token();
    let before = claims(&root);
    let old_kid = jwt_kid(&root);
    let jwks0 = server.jwks();

    let res = server.admin("POST", "/api/v1/keys/rotate", &root, None);
    assert_eq!(res.status, 200, "the first rotation is safe: every JWKS held the next key");
    let fresh = server.root_token();
    let new_kid = jwt_kid(&fresh);
    assert_ne!(old_kid, new_kid);
    // A verifier that cached the JWKS before the rotation still knows the new key.
    verify_independently(&fresh, &jwks0, &server.url).expect("cached JWKS verifies the new key");
    // The old token still verifies against the fresh JWKS, and still works here.
    verify_independently(&root, &server.jwks(), &server.url).expect("retiring key still published");
    assert_eq!(server.admin("GET", "/api/v1/keys", &root, None).status, 200);

    let res = server.admin("POST", "/api/v1/keys/rotate", &fresh, Some(json!({})));
    assert_eq!(res.status, 409, "the new next key has not been out one max-age");
    assert!(res.json()["safeAt"].is_string());
    assert_eq!(
        server.admin("POST", "/api/v1/keys/rotate", &fresh, Some(json!({"bogus": 1}))).status,
        400
    );

    // Forced: the old current key is withdrawn at once, and its tokens stop working here.
    let res = server.admin("POST", "/api/v1/keys/rotate", &fresh, Some(json!({"force": true})));
    assert_eq!(res.status, 200);
    let kids: Vec<String> = server.jwks()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect();
    assert!(!kids.contains(&new_kid), "forced rotation withdrew {new_kid}");
    assert_eq!(server.admin("GET", "/api/v1/keys", &fresh, None).status, 401);

    // The retiring key leaves once every token it signed has expired.
    assert!(kids.contains(&old_kid));
    server.clock.advance(86_400 + 1);
    server.tick_keys();
    let kids = server.jwks().to_string();
    assert!(!kids.contains(&old_kid), "retired key pruned after the longest token lifetime");
    let _ = before;
}

#[test]
fn keys_rotate_on_schedule() {
    let server = TestServer::start_with(|c| c.rotate_every = 3600);
    let before = jwt_kid(&server.root_token());
    server.clock.advance(3599);
    server.tick_keys();
    assert_eq!(jwt_kid(&server.root_token()), before, "not due yet");
    server.clock.advance(1);
    server.tick_keys();
    assert_ne!(jwt_kid(&server.root_token()), before, "rotated when due");
}

#[test]
fn rotation_needs_write_key_and_listing_read_key() {
    let server = TestServer::start();
    let (_, id, secret) = server.create_app(json!({"name": "r", "scopes": ["read_key"]}));
    let token = server.token(&id, &secret, None);
    let res = server.admin("POST", "/api/v1/keys/rotate", &token, None);
    assert_eq!(res.status, 403);
    let listed = server.admin("GET", "/api/v1/keys", &token, None);
    assert_eq!(listed.status, 200);
    let text = listed.body;
    assert!(text.contains("\"current\"") && text.contains("\"next\""));
    assert!(!text.contains("secret") && !text.contains("seed"));
}

fn jwt_kid(token: &str) -> String {
    use base64::Engine;
    let header = token.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["typ"], "at+jwt");
    assert_eq!(v["alg"], "EdDSA");
    v["kid"].as_str().unwrap().to_string()
}

#[derive(Debug, Clone)]
enum Op {
    Advance(u64),
    ServeJwks,
    Sign,
    Rotate { force: bool },
    Tick,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u64..2_000).prop_map(Op::Advance),
        1 => (80_000u64..100_000).prop_map(Op::Advance),
        4 => Just(Op::ServeJwks),
        4 => Just(Op::Sign),
        2 => Just(Op::Rotate { force: false }),
        1 => Just(Op::Rotate { force: true }),
        2 => Just(Op::Tick),
    ]
}

const RULES: RotationRules =
    RotationRules { jwks_max_age: 300, max_token_ttl: 3600, rotate_every: 86_400, propagation: 0 };

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    /// (c) Across any sequence of rotations (safe and forced), scheduled maintenance and clock
    /// advances, on the real KeyRing over a real store: no key signs while a JWKS served less
    /// than one max-age ago lacked it, and every unexpired token's kid stays in the JWKS unless
    /// a forced rotation withdrew it.
    #[test]
    fn rotation_invariant(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Storage> = Arc::new(Store::open(dir.path(), None).unwrap());
        let clock = ManualClock::new(1_000_000);
        let mut ring = KeyRing::load(store, clock.clone(), RULES).unwrap();
        let keys = ring.key_set();
        let mut served: Vec<(u64, HashSet<String>)> = Vec::new();
        let mut tokens: Vec<(String, u64)> = Vec::new();
        let mut withdrawn: HashSet<String> = HashSet::new();
        let mut forced_in: HashSet<String> = HashSet::new();
        for op in ops {
            let now = tessera_core::clock::Clock::now(&*clock);
            match op {
                Op::Advance(s) => clock.advance(s),
                Op::ServeJwks => {
                    let set = keys.load();
                    let kids: HashSet<String> = set.published.iter().map(|k| k.kid.clone()).collect();
                    // The served bytes say the same as the snapshot.
                    let bytes: serde_json::Value = serde_json::from_slice(&set.jwks).unwrap();
                    prop_assert_eq!(bytes["keys"].as_array().unwrap().len(), kids.len());
                    for (kid, exp) in &tokens {
                        if *exp > now && !withdrawn.contains(kid) {
                            prop_assert!(kids.contains(kid), "unexpired token's key {} left the JWKS", kid);
                        }
                    }
                    served.push((now, kids));
                }
                Op::Sign => {
                    let set = keys.load();
                    let kid = set.signer.as_ref().unwrap().kid.clone();
                    if !forced_in.contains(&kid) {
                        for (t, kids) in &served {
                            if now - t < RULES.jwks_max_age {
                                prop_assert!(kids.contains(&kid), "{} signs while a JWKS served at {} lacked it", kid, t);
                            }
                        }
                    }
                    tokens.push((kid, now + RULES.max_token_ttl));
                }
                Op::Rotate { force } => {
                    let before: HashMap<String, _> = ring.list().into_iter().map(|k| (k.kid.clone(), k.state)).collect();
                    if ring.rotate(force, &Origin::operator()).is_ok() && force {
                        for (kid, state) in before {
                            if state == tessera_storage::KeyState::Current {
                                withdrawn.insert(kid);
                            }
                        }
                        forced_in.insert(keys.load().signer.as_ref().unwrap().kid.clone());
                    }
                }
                Op::Tick => ring.tick().unwrap(),
            }
        }
    }
}

/// Two key rings on one store stand for two nodes. A node that learns of a current key late
/// (it never served it as `next`) keeps signing with the key before it until its own JWKS has
/// carried the new one for more than one max-age, and the key before stays published long
/// enough for that.
#[test]
fn issue_10_a_node_that_learns_a_key_late_signs_with_it_only_after_its_own_jwks_carried_it() {
    let rules = RotationRules { propagation: 2, ..RULES };
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Storage> = Arc::new(Store::open(dir.path(), None).unwrap());
    let clock = ManualClock::new(1_000_000);
    let mut a = KeyRing::load(Arc::clone(&store), clock.clone(), rules).unwrap();
    let mut b = KeyRing::load(store, clock.clone(), rules).unwrap();
    let signer = |ring: &KeyRing| ring.key_set().load().signer.as_ref().unwrap().kid.clone();
    // The genesis next key is in every JWKS: a rotates at once; then the fresh next key must
    // wait one max-age (plus the propagation margin) before a may promote it.
    a.rotate(false, &Origin::operator()).unwrap();
    clock.advance(RULES.jwks_max_age + 3);
    a.rotate(false, &Origin::operator()).unwrap();
    let newest = signer(&a);
    let before = a
        .list()
        .into_iter()
        .find(|k| {
            k.state == tessera_storage::KeyState::Retiring
                && k.retired_at == Some(1_000_000 + RULES.jwks_max_age + 3)
        })
        .unwrap()
        .kid;
    // b slept through both rotations: it never served `newest` before it became current.
    b.reload().unwrap();
    assert_eq!(signer(&b), before, "b signs with the key its JWKS has long carried");
    assert!(
        b.key_set().load().published.iter().any(|k| k.kid == newest),
        "b serves the new key at once"
    );
    clock.advance(RULES.jwks_max_age);
    b.tick().unwrap();
    assert_eq!(signer(&b), before, "exactly one max-age is not enough");
    clock.advance(1);
    b.tick().unwrap();
    assert_eq!(signer(&b), newest, "more than one max-age after b first served it");
    // The key b signed with until then stays published for a whole token lifetime after.
    let kept = b.list().into_iter().find(|k| k.kid == before).unwrap();
    let now = tessera_core::clock::Clock::now(&*clock);
    assert!(kept.remove_after.unwrap() >= now - 1 + RULES.max_token_ttl);
}

/// Two key rings on one store as two nodes on a shared one: only the holder of the rotation
/// lease rotates on schedule, and when it stops renewing the lease the other takes over.
#[test]
fn issue_10_only_the_holder_of_the_rotation_lease_rotates_on_schedule() {
    let rules = RotationRules { rotate_every: 400, propagation: 2, ..RULES };
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Storage> = Arc::new(Store::open(dir.path(), None).unwrap());
    let clock = ManualClock::new(1_000_000);
    // Loading ticks once: a, loaded first, takes the lease.
    let mut a = KeyRing::load_shared(Arc::clone(&store), clock.clone(), rules).unwrap();
    let mut b = KeyRing::load_shared(Arc::clone(&store), clock.clone(), rules).unwrap();
    let current = |ring: &KeyRing| {
        ring.list().into_iter().find(|k| k.state == tessera_storage::KeyState::Current).unwrap().kid
    };
    let genesis = current(&a);
    // a renews the lease every 60 s, as its 30 s ticks would.
    for _ in 0..6 {
        clock.advance(60);
        a.tick().unwrap();
    }
    assert_eq!(current(&a), genesis, "not due before 400 s");
    clock.advance(60);
    b.tick().unwrap();
    b.reload().unwrap();
    assert_eq!(current(&b), genesis, "due, but b does not hold the lease");
    a.tick().unwrap();
    let rotated = current(&a);
    assert_ne!(rotated, genesis, "the holder rotates when due");
    b.reload().unwrap();
    assert_eq!(current(&b), rotated);
    // a stops ticking (its node is gone); its lease runs out 90 s after its last renewal.
    clock.advance(60);
    b.tick().unwrap();
    b.reload().unwrap();
    assert_eq!(current(&b), rotated);
    clock.advance(400);
    b.tick().unwrap();
    let taken_over = current(&b);
    assert_ne!(taken_over, rotated, "b took the expired lease and rotated on schedule");
    a.reload().unwrap();
    assert_eq!(current(&a), taken_over);
    assert!(
        !store
            .try_lease("key_rotation", "someone", tessera_core::clock::Clock::now(&*clock), 1)
            .unwrap()
    );
}

/// Two key rings on one store as two nodes that change the ring at once, each from the ring
/// as it last read it: the one whose view is stale reads the ring again and applies its change
/// to that, so no key either published is lost.
#[test]
fn issue_10_a_rotation_from_a_stale_ring_keeps_the_other_nodes_change() {
    use tessera_storage::KeyState::{Current, Next};
    let rules = RotationRules { propagation: 2, ..RULES };
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Storage> = Arc::new(Store::open(dir.path(), None).unwrap());
    let clock = ManualClock::new(1_000_000);
    let mut a = KeyRing::load_shared(Arc::clone(&store), clock.clone(), rules).unwrap();
    let mut b = KeyRing::load_shared(Arc::clone(&store), clock.clone(), rules).unwrap();
    let kid =
        |ring: &KeyRing, state| ring.list().into_iter().find(|k| k.state == state).unwrap().kid;
    let stored = || {
        let mut kids: Vec<String> = store.load_keys().unwrap().into_iter().map(|k| k.kid).collect();
        kids.sort_unstable();
        kids
    };
    let genesis = kid(&a, Current);
    // Both may rotate the genesis ring at once; a commits first.
    a.rotate(false, &Origin::operator()).unwrap();
    let after_a = stored();
    assert_eq!(after_a.len(), 3);
    let answered = b
        .rotate(false, &Origin::operator())
        .expect("b's rotation is answered with the ring as it now is");
    let mut answered: Vec<String> = answered.into_iter().map(|k| k.kid).collect();
    answered.sort_unstable();
    assert_eq!(answered, after_a, "one rotation, and a's next key kept");
    assert_eq!(stored(), after_a);
    assert_eq!(kid(&b, Next), kid(&a, Next));
    assert_ne!(kid(&b, Current), genesis);

    // A change other than a rotation meanwhile: b's rotation is applied to the ring as it is.
    clock.advance(rules.jwks_max_age + rules.propagation + 1);
    let signer = kid(&a, Current);
    let ahead = kid(&a, Next);
    clock.advance(rules.retired_for());
    a.tick().unwrap();
    assert!(!stored().contains(&genesis), "a pruned the genesis key");
    // The prune re-stamped the next key's publication too: wait one max-age more.
    clock.advance(rules.jwks_max_age + rules.propagation + 1);
    b.rotate(false, &Origin::operator()).unwrap();
    assert_eq!(kid(&b, Current), ahead, "b rotated away from {signer}");
    assert!(!stored().contains(&genesis), "and did not bring the pruned key back");
    a.reload().unwrap();
    assert_eq!(kid(&a, Current), ahead);

    // A forced rotation at a node that missed a rotation still withdraws the key it meant.
    clock.advance(rules.jwks_max_age + rules.propagation + 1);
    let compromised = kid(&b, Current);
    a.rotate(false, &Origin::operator()).unwrap();
    let promoted = kid(&a, Current);
    b.rotate(true, &Origin::operator()).unwrap();
    let kids = stored();
    assert!(!kids.contains(&compromised), "withdrawn");
    assert!(kids.contains(&promoted) && kid(&b, Current) == promoted, "the newer key goes on");
    assert!(kids.contains(&signer), "the retiring key before stays");
}
