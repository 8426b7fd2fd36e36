//! A small typed client for the broker's admin HTTP API (`/v1/topics`, `/v1/groups`,
//! `/v1/transforms`, `/v1/cluster`). The bodies are the server's own types
//! ([`crate::admin_api`], [`crate::transform`]), so client and server cannot disagree.
//!
//! HTTP goes through `reqwest`, which `object_store` already builds with the features we use:
//! depending on it adds no compile time (ureq would have added a second HTTP stack). Calls are
//! async; the CLI runs them on a current-thread runtime.

use std::time::Duration;

pub use reqwest::Method;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use url::Url;

use crate::admin_api::{AlterTopic, CreateTopic, ErrorBody, GroupDetail, GroupSummary, TopicDetail, TopicSummary};
use crate::transform::{ResetTo, TransformSpec, TransformStatus};

/// Where the admin API listens when neither `--admin` nor `SLUICE_ADMIN` says otherwise.
pub const ADMIN_URL_DEFAULT: &str = "http://127.0.0.1:9644";
/// How long one admin call may take (a deploy compiles the module; a topic create fsyncs).
pub const REQUEST_TIMEOUT_MS: u64 = 120_000;
/// How long to wait for the TCP connection.
pub const CONNECT_TIMEOUT_MS: u64 = 5_000;

/// Why an admin call failed. `Display` is one line fit for a terminal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The base URL does not parse.
    #[error("invalid admin URL {url:?}: {reason}")]
    InvalidUrl {
        /// What was given.
        url: String,
        /// Why it is not a URL.
        reason: String,
    },
    /// No connection, a timeout, or a broken response.
    #[error("cannot reach the admin API at {url}: {reason}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// The transport error, with its causes.
        reason: String,
    },
    /// The server answered with an error.
    #[error("{message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The server's error kind (`unknown_topic`, `topic_exists`, …).
        kind: String,
        /// The server's message.
        message: String,
    },
    /// The server answered 2xx with a body we cannot read.
    #[error("unexpected answer from {url}: {reason}")]
    Decode {
        /// The URL called.
        url: String,
        /// Why it does not parse.
        reason: String,
    },
}

impl AdminError {
    /// True for 404 answers (unknown topic, group or transform).
    pub fn is_not_found(&self) -> bool {
        matches!(self, AdminError::Api { status: 404, .. })
    }

    /// True for 409 answers (already exists).
    pub fn is_conflict(&self) -> bool {
        matches!(self, AdminError::Api { status: 409, .. })
    }
}

/// A body for a request.
enum Body {
    None,
    Json(Vec<u8>),
    Multipart { boundary: String, bytes: Vec<u8> },
}

/// A client for one broker's admin API.
#[derive(Debug, Clone)]
pub struct AdminClient {
    base: Url,
    http: reqwest::Client,
    /// HTTP Basic credentials, for brokers whose admin API requires them.
    basic_auth: Option<(String, String)>,
}

impl AdminClient {
    /// A client for the API at `base` (e.g. `http://127.0.0.1:9644`).
    pub fn new(base: &str) -> Result<Self, AdminError> {
        let invalid = |reason: String| AdminError::InvalidUrl { url: base.to_string(), reason };
        let base = Url::parse(base).map_err(|e| invalid(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(invalid("expected http://host:port or https://host:port".into()));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(REQUEST_TIMEOUT_MS))
            .connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS))
            .build()
            .map_err(|e| invalid(chain(&e)))?;
        Ok(AdminClient { base, http, basic_auth: None })
    }

    /// Sends HTTP Basic credentials with every request.
    pub fn with_basic_auth(mut self, user: &str, password: &str) -> Self {
        self.basic_auth = Some((user.to_string(), password.to_string()));
        self
    }

    /// The base URL.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// `base` + the path segments, each percent-encoded (group ids may hold any character).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            path.extend(segments);
        }
        url
    }

    async fn send(&self, method: Method, segments: &[&str], body: Body) -> Result<(StatusCode, bytes::Bytes, Url), AdminError> {
        self.send_query(method, segments, &[], body).await
    }

    async fn send_query(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Body,
    ) -> Result<(StatusCode, bytes::Bytes, Url), AdminError> {
        let mut url = self.url(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let unreachable = |e: reqwest::Error| AdminError::Unreachable { url: self.base.to_string(), reason: chain(&e) };
        let mut request = self.http.request(method, url.clone());
        if let Some((user, password)) = &self.basic_auth {
            request = request.basic_auth(user, Some(password));
        }
        let request = match body {
            Body::None => request,
            Body::Json(bytes) => request.header(reqwest::header::CONTENT_TYPE, "application/json").body(bytes),
            Body::Multipart { boundary, bytes } => {
                request.header(reqwest::header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}")).body(bytes)
            }
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(unreachable)?;
        if !status.is_success() {
            return Err(api_error(status, &bytes));
        }
        Ok((status, bytes, url))
    }

    async fn call<T: DeserializeOwned>(&self, method: Method, segments: &[&str], body: Body) -> Result<T, AdminError> {
        let (_, bytes, url) = self.send(method, segments, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| AdminError::Decode { url: url.to_string(), reason: e.to_string() })
    }

    fn json_body(value: &impl Serialize) -> Result<Body, AdminError> {
        // Our own types always serialise; keep the error path anyway rather than panic.
        serde_json::to_vec(value).map(Body::Json).map_err(|e| AdminError::Decode { url: String::new(), reason: e.to_string() })
    }

    /// Any route with a JSON answer: `segments` are the path (each percent-encoded), `query`
    /// the query pairs, `body` a JSON body. Routes of other modules (e.g. manifests) build on this.
    pub async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Result<T, AdminError> {
        let body = match body {
            Some(v) => Self::json_body(v)?,
            None => Body::None,
        };
        let (_, bytes, url) = self.send_query(method, segments, query, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| AdminError::Decode { url: url.to_string(), reason: e.to_string() })
    }

    /// Any route whose answer has no body worth reading (e.g. `DELETE` → 204).
    pub async fn no_content(&self, method: Method, segments: &[&str]) -> Result<(), AdminError> {
        self.send(method, segments, Body::None).await.map(|_| ())
    }

    /// `GET /v1/topics`.
    pub async fn topics(&self) -> Result<Vec<TopicSummary>, AdminError> {
        self.call(Method::GET, &["v1", "topics"], Body::None).await
    }

    /// `GET /v1/topics/{name}`.
    pub async fn topic(&self, name: &str) -> Result<TopicDetail, AdminError> {
        self.call(Method::GET, &["v1", "topics", name], Body::None).await
    }

    /// `POST /v1/topics`.
    pub async fn create_topic(&self, topic: &CreateTopic) -> Result<TopicDetail, AdminError> {
        self.call(Method::POST, &["v1", "topics"], Self::json_body(topic)?).await
    }

    /// `PATCH /v1/topics/{name}`.
    pub async fn alter_topic(&self, name: &str, change: &AlterTopic) -> Result<TopicDetail, AdminError> {
        self.call(Method::PATCH, &["v1", "topics", name], Self::json_body(change)?).await
    }

    /// `DELETE /v1/topics/{name}`.
    pub async fn delete_topic(&self, name: &str) -> Result<(), AdminError> {
        self.send(Method::DELETE, &["v1", "topics", name], Body::None).await.map(|_| ())
    }

    /// `GET /v1/groups`.
    pub async fn groups(&self) -> Result<Vec<GroupSummary>, AdminError> {
        self.call(Method::GET, &["v1", "groups"], Body::None).await
    }

    /// `GET /v1/groups/{id}`.
    pub async fn group(&self, id: &str) -> Result<GroupDetail, AdminError> {
        self.call(Method::GET, &["v1", "groups", id], Body::None).await
    }

    /// `GET /v1/transforms`.
    pub async fn transforms(&self) -> Result<Vec<TransformStatus>, AdminError> {
        self.call(Method::GET, &["v1", "transforms"], Body::None).await
    }

    /// `GET /v1/transforms/{name}`.
    pub async fn transform(&self, name: &str) -> Result<TransformStatus, AdminError> {
        self.call(Method::GET, &["v1", "transforms", name], Body::None).await
    }

    /// `POST /v1/transforms` (multipart `spec` + `wasm`): deploys or redeploys.
    pub async fn deploy(&self, spec: &TransformSpec, wasm: &[u8]) -> Result<TransformStatus, AdminError> {
        let spec = serde_json::to_vec(spec).map_err(|e| AdminError::Decode { url: String::new(), reason: e.to_string() })?;
        let boundary = format!("sluice-{}", uuid::Uuid::new_v4().simple());
        let bytes = multipart(&boundary, &[("spec", "application/json", &spec), ("wasm", "application/wasm", wasm)]);
        self.call(Method::POST, &["v1", "transforms"], Body::Multipart { boundary, bytes }).await
    }

    /// `POST /v1/transforms/{name}/pause`.
    pub async fn pause(&self, name: &str) -> Result<TransformStatus, AdminError> {
        self.call(Method::POST, &["v1", "transforms", name, "pause"], Body::None).await
    }

    /// `POST /v1/transforms/{name}/resume`.
    pub async fn resume(&self, name: &str) -> Result<TransformStatus, AdminError> {
        self.call(Method::POST, &["v1", "transforms", name, "resume"], Body::None).await
    }

    /// `POST /v1/transforms/{name}/reset`.
    pub async fn reset(&self, name: &str, to: ResetTo) -> Result<TransformStatus, AdminError> {
        self.call(Method::POST, &["v1", "transforms", name, "reset"], Self::json_body(&to)?).await
    }

    /// `DELETE /v1/transforms/{name}`.
    pub async fn delete_transform(&self, name: &str) -> Result<(), AdminError> {
        self.send(Method::DELETE, &["v1", "transforms", name], Body::None).await.map(|_| ())
    }

    /// `GET /v1/cluster` (node id, cluster id, listeners), as JSON.
    pub async fn cluster(&self) -> Result<serde_json::Value, AdminError> {
        self.call(Method::GET, &["v1", "cluster"], Body::None).await
    }
}

/// The server's `{"error", "message"}`, or the status and the start of whatever it sent.
fn api_error(status: StatusCode, body: &[u8]) -> AdminError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => AdminError::Api { status: status.as_u16(), kind: e.error, message: e.message },
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            let text: String = text.chars().take(200).collect();
            AdminError::Api { status: status.as_u16(), kind: "http".into(), message: format!("HTTP {status}: {text}") }
        }
    }
}

/// An error and its causes on one line (reqwest's own message is only the outermost).
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// A `multipart/form-data` body (RFC 7578) of named parts.
fn multipart(boundary: &str, parts: &[(&str, &str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.2.len() + 200).sum());
    for (name, content_type, bytes) in parts {
        out.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\nContent-Type: {content_type}\r\n\r\n").as_bytes(),
        );
        out.extend_from_slice(bytes);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Path segments are percent-encoded, so a group id with '/' or spaces stays one segment.
    #[test]
    fn urls_encode_segments_and_keep_a_base_path() {
        let c = AdminClient::new("http://127.0.0.1:9644").unwrap();
        assert_eq!(c.url(&["v1", "groups", "a b/c"]).as_str(), "http://127.0.0.1:9644/v1/groups/a%20b%2Fc");
        let c = AdminClient::new("http://proxy/sluice/").unwrap();
        assert_eq!(c.url(&["v1", "topics"]).as_str(), "http://proxy/sluice/v1/topics");
        assert!(AdminClient::new("127.0.0.1:9644").is_err());
        assert!(AdminClient::new("ftp://x").is_err());
    }

    #[test]
    fn server_errors_become_one_line() {
        let e = api_error(StatusCode::NOT_FOUND, br#"{"error":"unknown_topic","message":"unknown topic nope"}"#);
        assert!(e.is_not_found());
        assert_eq!(e.to_string(), "unknown topic nope");
        let e = api_error(StatusCode::SERVICE_UNAVAILABLE, b"the broker is still opening its logs\n");
        assert_eq!(e.to_string(), "HTTP 503 Service Unavailable: the broker is still opening its logs");
    }

    #[test]
    fn multipart_frames_every_part() {
        let body = multipart("B", &[("spec", "application/json", b"{}"), ("wasm", "application/wasm", b"\0asm")]);
        let text = String::from_utf8_lossy(&body);
        assert!(text.starts_with("--B\r\nContent-Disposition: form-data; name=\"spec\""));
        assert!(text.contains("name=\"wasm\"\r\nContent-Type: application/wasm\r\n\r\n\0asm\r\n--B--\r\n"));
    }
}
