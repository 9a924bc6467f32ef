//! Signing keys: the `KeyRing` actor that owns them, the pure rotation rules (`ring`), and the
//! published `KeySet`. Keeps the rotation invariant: a key never signs before every cached JWKS
//! holds it, and stays published until its last token expires.

mod key_ring;
pub mod keyset;
pub mod ring;

pub use key_ring::*;
