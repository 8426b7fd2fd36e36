//! Commands other than `serve` that talk to a running broker.
//!
//! - `kafka_client`: one admin connection over the Kafka protocol (TLS and SASL/PLAIN as the
//!   listener requires), typed requests in, typed responses out.
//! - `kafka_data`: Metadata, ListOffsets, Produce, Fetch and group offsets on that connection.
//! - `admin_client`: a typed client for the admin HTTP API (`--admin URL`, `SLUICE_ADMIN`).
//! - `args`: the flags every command shares, and how a command runs and fails (one line, exit 1).
//! - `output`, `progress`: tables / YAML / JSON, and progress lines shown only on a terminal.
//! - `user`: `sluice user create|delete|list` on AlterUserScramCredentials /
//!   DescribeUserScramCredentials.
//! - `get`, `describe`, `topic`: `sluice get|describe|topic …` over the admin API.
//! - `produce`, `consume`: `sluice produce|consume TOPIC` over the Kafka protocol.
//! - `transform_ops`: `sluice transform logs|pause|resume|reset`.
//! - `apply`, `apply_admin`: `sluice apply|diff|delete -f` (manifests, planned then applied
//!   through [`apply::Admin`], implemented over the admin client); `get_pipelines`: `sluice get
//!   pipelines` from the stored manifests.
//!
//! Architecture Invariant: the CLI never reaches into broker state; it speaks only the Kafka
//! protocol and the admin HTTP API, like any other client.

pub mod admin_client;
pub mod apply;
pub mod apply_admin;
pub mod args;
pub mod consume;
pub mod describe;
pub mod get;
pub mod get_pipelines;
pub mod kafka_client;
pub mod kafka_data;
pub mod output;
pub mod produce;
pub mod progress;
pub mod topic;
pub mod transform_ops;
pub mod user;
