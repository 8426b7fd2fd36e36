//! [`Admin`] over the admin HTTP client, and the client's calls for the manifest store
//! (`/v1/manifests…`, served by `admin_manifests`). The client is async; the CLI runs each call
//! to completion on a current-thread runtime.

use std::collections::BTreeMap;

use super::admin_client::{AdminClient, AdminError, Method};
use super::apply::Admin;
use super::args::AdminArgs;
use crate::admin_api::{AlterTopic, CreateTopic};
use crate::admin_manifests::StoredManifest;
use crate::manifest::plan::{store_key, Current, CurrentTopic, CurrentTransform};
use crate::manifest::Kind;
use crate::security::acl::AclBinding;
use crate::transform::TransformSpec;
use anyhow::Context;

impl AdminClient {
    /// `GET /v1/manifests`: every stored manifest document.
    pub async fn manifests(&self) -> Result<Vec<StoredManifest>, AdminError> {
        self.json(Method::GET, &["v1", "manifests"], &[], None).await
    }

    /// `PUT /v1/manifests/{kind}/{name}`.
    pub async fn put_manifest(&self, kind: Kind, name: &str, document: &serde_json::Value) -> Result<StoredManifest, AdminError> {
        self.json(Method::PUT, &["v1", "manifests", kind.as_str(), name], &[], Some(document)).await
    }

    /// `DELETE /v1/manifests/{kind}/{name}`.
    pub async fn delete_manifest(&self, kind: Kind, name: &str) -> Result<(), AdminError> {
        self.no_content(Method::DELETE, &["v1", "manifests", kind.as_str(), name]).await
    }

    /// `GET /v1/acls`: every ACL binding.
    pub async fn acls(&self) -> Result<Vec<AclBinding>, AdminError> {
        self.json(Method::GET, &["v1", "acls"], &[], None).await
    }

    /// `POST /v1/acls`: creates bindings (existing ones are a no-op).
    pub async fn create_acls(&self, bindings: &[AclBinding]) -> Result<(), AdminError> {
        let body = acl_body(bindings)?;
        self.json::<Vec<AclBinding>>(Method::POST, &["v1", "acls"], &[], Some(&body)).await.map(drop)
    }

    /// `DELETE /v1/acls`: deletes exactly these bindings; answers those that existed.
    pub async fn delete_acls(&self, bindings: &[AclBinding]) -> Result<Vec<AclBinding>, AdminError> {
        let body = acl_body(bindings)?;
        self.json(Method::DELETE, &["v1", "acls"], &[], Some(&body)).await
    }
}

fn acl_body(bindings: &[AclBinding]) -> Result<serde_json::Value, AdminError> {
    serde_json::to_value(bindings).map_err(|e| AdminError::Decode { url: String::new(), reason: e.to_string() })
}

/// The admin API, called synchronously.
pub struct HttpAdmin {
    client: AdminClient,
    runtime: tokio::runtime::Runtime,
}

impl HttpAdmin {
    /// A client for the admin API the flags name.
    pub fn new(args: &AdminArgs) -> anyhow::Result<HttpAdmin> {
        let client = args.client()?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
        Ok(HttpAdmin { client, runtime })
    }

    /// Runs one client call to completion.
    fn run<T>(&self, f: impl std::future::Future<Output = Result<T, AdminError>>) -> anyhow::Result<T> {
        Ok(self.runtime.block_on(f)?)
    }
}

impl Admin for HttpAdmin {
    fn current(&self) -> anyhow::Result<Current> {
        let c = &self.client;
        let mut current = Current::default();
        for t in self.run(c.topics())? {
            current.topics.insert(t.name, CurrentTopic { partitions: t.partitions, configs: t.configs });
        }
        for t in self.run(c.transforms())? {
            current.transforms.insert(t.name, CurrentTransform { spec: t.spec, module_sha256: t.module_sha256 });
        }
        current.acls = self.run(c.acls())?.into_iter().collect();
        for m in self.run(c.manifests())? {
            if let Some(kind) = Kind::parse(&m.kind) {
                current.manifests.insert(store_key(kind, &m.name), m.document);
            }
        }
        Ok(current)
    }

    fn create_topic(&self, name: &str, partitions: i32, configs: &BTreeMap<String, String>) -> anyhow::Result<()> {
        let create = CreateTopic { name: name.to_string(), partitions: Some(partitions), configs: configs.clone(), validate_only: false };
        self.run(self.client.create_topic(&create)).map(drop)
    }

    fn alter_topic(&self, name: &str, partitions: Option<i32>, configs: &BTreeMap<String, Option<String>>) -> anyhow::Result<()> {
        let change = AlterTopic { partitions, configs: configs.clone() };
        self.run(self.client.alter_topic(name, &change)).map(drop)
    }

    fn delete_topic(&self, name: &str) -> anyhow::Result<()> {
        self.run(self.client.delete_topic(name))
    }

    fn deploy_transform(&self, spec: &TransformSpec, wasm: Vec<u8>) -> anyhow::Result<()> {
        self.run(self.client.deploy(spec, &wasm)).map(drop)
    }

    fn delete_transform(&self, name: &str) -> anyhow::Result<()> {
        self.run(self.client.delete_transform(name))
    }

    fn put_manifest(&self, kind: Kind, name: &str, document: &serde_json::Value) -> anyhow::Result<()> {
        self.run(self.client.put_manifest(kind, name, document)).map(drop)
    }

    fn delete_manifest(&self, kind: Kind, name: &str) -> anyhow::Result<()> {
        self.run(self.client.delete_manifest(kind, name))
    }

    fn create_acls(&self, bindings: &[AclBinding]) -> anyhow::Result<()> {
        if bindings.is_empty() {
            return Ok(());
        }
        self.run(self.client.create_acls(bindings))
    }

    fn delete_acls(&self, bindings: &[AclBinding]) -> anyhow::Result<()> {
        if bindings.is_empty() {
            return Ok(());
        }
        self.run(self.client.delete_acls(bindings)).map(drop)
    }
}
