//! The DPoP proof check accepts only proofs signed by the key their header names.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tessera_core::fuzzing::dpop_accepts_only_genuine_proofs(data);
});
