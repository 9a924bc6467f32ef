//! Tessera's integration tests: one binary, real HTTP against servers on `127.0.0.1:0`.
#![allow(clippy::unwrap_used)] // tests state their expectations by unwrapping

mod support;

mod admin;
mod cli;
mod connect;
mod durability;
mod escalation;
mod fuzz_corpus;
mod grants;
mod guesses;
mod hardening;
mod identity;
mod keys;
mod lifecycle;
mod regression;
mod services;
mod token;
mod users;
