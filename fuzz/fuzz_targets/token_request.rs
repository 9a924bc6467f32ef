//! The token-request parser never panics and round-trips everything it accepts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tessera_core::fuzzing::token_request_round_trip(data);
});
