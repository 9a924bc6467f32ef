//! The hosted flow's sign-in/sign-out forms and callback query: never panic, accept only our
//! token alphabet for states, and round-trip everything they accept.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tessera_core::fuzzing::connect_forms_round_trip(data);
});
