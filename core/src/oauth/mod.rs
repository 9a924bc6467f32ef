//! What clients send and what they are told: the token request parser, the RFC 6749 error enum,
//! `private_key_jwt` assertions, DPoP proofs and the hosted flow's forms. Pure and actix-free, so fuzzed.

pub mod assertion;
pub mod connect_form;
pub mod dpop;
mod error;
pub mod request;

pub use error::{Cause, OAuthError, REFRESH_REFUSED, TARGET_REFUSED};
