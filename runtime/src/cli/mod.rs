//! Commands other than `serve` that talk to a running broker.
//!
//! - `kafka_client`: one admin connection over the Kafka protocol (TLS and SASL/PLAIN as the
//!   listener requires), typed requests in, typed responses out.
//! - `apply`: `sluice apply|diff|delete -f` (manifests, planned then applied through [`apply::Admin`]).
//! - `user`: `sluice user create|delete|list` on AlterUserScramCredentials /
//!   DescribeUserScramCredentials.

pub mod apply;
pub mod kafka_client;
pub mod user;
