//! Commands other than `serve`.
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
//! - `produce`, `consume`: `sluice produce|consume TOPIC` over the Kafka protocol;
//!   `consume_group`, `group_member`: `consume --group` as a real consumer-group member.
//! - `transform_ops`: `sluice transform logs|pause|resume|reset`, with `transform_dev`'s
//!   `init|build|test` flattened into the same `sluice transform` command.
//! - `transform_dev`: `sluice transform init|build|test`, the loop of writing a transform before
//!   any broker is involved: `transform_scaffold` writes a crate, `transform_build` builds it for
//!   wasm32-wasip1, `transform_local` runs the module on sample records with the broker's host.
//! - `apply`, `apply_admin`: `sluice apply|diff|delete -f` (manifests, planned then applied
//!   through [`apply::Admin`], implemented over the admin client); `get_pipelines`: `sluice get
//!   pipelines` from the stored manifests; `wasm_fetch`: a manifest's `wasm:` URL, bounded.
//!
//! Architecture Invariant: the CLI never reaches into a broker's state; it speaks only the Kafka
//! protocol and the admin HTTP API, like any other client. (`transform test` runs the wasm host
//! in-process, with no broker at all.)

pub mod admin_client;
pub mod apply;
pub mod apply_admin;
pub mod args;
pub mod consume;
pub mod consume_group;
pub mod describe;
pub mod get;
pub mod get_pipelines;
pub mod group_member;
pub mod kafka_client;
pub mod kafka_data;
pub mod output;
pub mod produce;
pub mod progress;
pub mod topic;
pub mod transform_build;
pub mod transform_dev;
pub mod transform_local;
pub mod transform_ops;
pub mod transform_scaffold;
pub mod user;
pub mod wasm_fetch;
