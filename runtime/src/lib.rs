//! Sluice: a single-binary streaming platform that speaks the Kafka wire protocol.
//!
//! # Layout
//! - [`config`]: flags, `SLUICE_*` environment variables and the YAML file, resolved once.
//! - [`log`]: the partition log storage engine (knows nothing of the network).
//! - [`broker`]: shared broker state: topics, partitions, metadata log, producer ids.
//! - [`group`]: consumer group coordinator and committed offsets.
//! - [`protocol`]: Kafka listeners (TLS, SASL sessions), framing, connections, one file per API.
//! - [`security`]: principals, SCRAM credentials and the SASL mechanisms (no wire format).
//! - [`metrics`]: Prometheus metrics (one registry per broker; scrape-time sources).
//! - [`health`]: readiness conditions behind `/readyz`.
//! - [`admin`]: the admin HTTP API (`/healthz`, `/readyz`, `/v1/cluster`, `/v1/tier`, `/metrics`);
//!   `admin_transforms`: its transform routes; `admin_topics`: its topic and group routes;
//!   [`admin_api`]: the JSON bodies shared by those routes and the CLI; `admin_error`: the error
//!   answer they share; `admin_auth`: HTTP Basic authentication around every route; `admin_acls`: its ACL
//!   routes; `admin_tls`:
//!   HTTPS for it.
//! - [`security`]'s `acl/` and `protocol::authorize`: ACLs and the one authorization seam.
//! - [`tier`]: tiered storage: closed segments offloaded to an object store and read back.
//! - [`transform`]: WebAssembly transforms between topics (wasmtime host, runners, manager).
//! - [`manifest`]: YAML manifests (topics, transforms, pipelines): loading, located validation,
//!   plans for `sluice apply|diff|delete`; `admin_manifests`: the broker's store of applied ones.
//! - [`cli`]: every command other than `serve` (`user`, `get`, `describe`, `topic`, `produce`,
//!   `consume`, `transform …`, `apply|diff|delete`): clients of the Kafka protocol and the admin HTTP API.
//! - `fuzzing`: fuzz target bodies shared by `fuzz/` (cargo fuzz) and stable tests.
//! - [`serve`]: starts everything and shuts it down on SIGINT/SIGTERM.

#![warn(missing_docs)]

pub mod admin;
mod admin_acls;
pub mod admin_api;
mod admin_auth;
mod admin_error;
pub mod admin_manifests;
mod admin_tls;
mod admin_topics;
mod admin_transforms;
pub mod broker;
pub mod cli;
pub mod config;
#[doc(hidden)]
pub mod fuzzing;
pub mod group;
pub mod health;
pub mod log;
pub mod manifest;
pub mod metrics;
pub mod protocol;
pub mod security;
pub mod serve;
pub mod tier;
pub mod transform;
