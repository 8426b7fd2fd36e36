//! Commands other than `serve`.
//!
//! - `kafka_client`: one admin connection over the Kafka protocol (TLS and SASL/PLAIN as the
//!   listener requires), typed requests in, typed responses out.
//! - `user`: `sluice user create|delete|list` on AlterUserScramCredentials /
//!   DescribeUserScramCredentials.
//! - `transform_dev`: `sluice transform init|build|test`, the loop of writing a transform before
//!   any broker is involved: `transform_scaffold` writes a crate, `transform_build` builds it for
//!   wasm32-wasip1, `transform_local` runs the module on sample records with the broker's host.

pub mod kafka_client;
pub mod transform_build;
pub mod transform_dev;
pub mod transform_local;
pub mod transform_scaffold;
pub mod user;
