//! The bearer verifier never accepts a token our signer did not produce.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tessera_core::fuzzing::verifier_accepts_only_our_tokens(data);
});
