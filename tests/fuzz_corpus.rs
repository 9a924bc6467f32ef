//! Replays every saved fuzz input (`fuzz/corpus/*`) through the same property checks the fuzz
//! targets run, so CI exercises the corpus without a fuzzer.

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "property failed on {}", path.display());
        count += 1;
    }
    assert!(count > 0, "no corpus for {target}");
}

#[test]
fn token_request_corpus() {
    replay("token_request", tessera_core::fuzzing::token_request_round_trip);
}

#[test]
fn bearer_verify_corpus() {
    replay("bearer_verify", tessera_core::fuzzing::verifier_accepts_only_our_tokens);
}

#[test]
fn issue_8_connect_forms_corpus() {
    replay("connect_forms", tessera_core::fuzzing::connect_forms_round_trip);
}

#[test]
fn issue_12_dpop_proof_corpus() {
    replay("dpop_proof", tessera_core::fuzzing::dpop_accepts_only_genuine_proofs);
}

#[test]
fn issue_13_subject_pattern_corpus() {
    replay("subject_pattern", tessera_core::fuzzing::subject_patterns_match_one_segment);
}
