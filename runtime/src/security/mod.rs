//! Authentication: who is on the other end of a connection.
//!
//! # Layout
//! - `principal`: [`Principal`], the identity a request runs as (`User:alice`, `User:ANONYMOUS`).
//! - `credentials`: salted SCRAM credentials ([`ScramCredential`]) and the in-memory
//!   [`CredentialStore`] the broker keeps in front of its metadata log.
//! - `verified`: [`VerifiedLogins`], a bounded cache of password checks that succeeded, keyed
//!   by the credential they were checked against (the admin API's Basic auth).
//! - `acl/`: ACLs in Kafka's model, their in-memory store and the authorization decision.
//! - `sasl/`: the server side of the SASL mechanisms PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512.
//!
//! Nothing here knows the Kafka wire format: `protocol::apis::sasl_*` translate, and
//! `protocol::error_code` maps [`sasl::AuthError`] to Kafka codes.

pub mod acl;
pub mod credentials;
pub mod principal;
pub mod sasl;
pub mod verified;

pub use credentials::{CredentialStore, ScramCredential, ScramMechanism};
pub use principal::Principal;
pub use verified::VerifiedLogins;
