//! Federated subject patterns match exactly what the character-by-character reference does.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tessera_core::fuzzing::subject_patterns_match_one_segment(data);
});
