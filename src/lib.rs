//! Tessera's HTTP API and server assembly. `main.rs` and the tests share [`start`] and
//! [`configure`], so what the tests exercise is what the binary serves.

pub mod api;
pub mod cli;
pub mod config;
pub mod server;
pub mod tls;
pub mod verify;

pub use server::{Running, StartError, start};
