//! Authentication of the admin HTTP API, and the ACL check its transform routes make.
//!
//! When any Kafka listener requires SASL, every admin route except `/healthz`, `/readyz` (probes
//! must work without secrets) and — with `admin_metrics_public` (default true, so Prometheus
//! scrapes keep working) — `/metrics` requires HTTP Basic credentials of a user in the same SCRAM
//! store Kafka logins use. The password is checked the way SASL/PLAIN checks it: SaltedPassword
//! is derived with the stored salt and iterations and the resulting StoredKey compared in
//! constant time, so the admin API never stores or sees anything but the SCRAM credential.
//! A successful check is remembered (`security::VerifiedLogins`, keyed by the credential it
//! was checked against), so a client sending Basic credentials with every request pays PBKDF2
//! once; a deleted user or a changed password is refused at once all the same.
//! A wrong or missing credential gets 401 with `WWW-Authenticate: Basic`.
//!
//! The authenticated principal (`User:<name>`, or `User:ANONYMOUS` when no SASL listener exists)
//! and the client's address travel to the handlers in an [`AdminAuth`] request extension; the
//! transform routes ask it for the ACL rights on a transform's topics.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::admin::BrokerCell;
use crate::broker::{Broker, BrokerError};
use crate::protocol::authorize::{check, Operation, Resource};
use crate::security::verified::Lookup;
use crate::security::{Principal, VerifiedLogins};

/// Paths served without credentials.
const ALWAYS_PUBLIC: [&str; 2] = ["/healthz", "/readyz"];
/// Longest `Authorization` header value looked at (a bound on the base64 decode).
const AUTHORIZATION_BYTES_MAX: usize = 4096;

/// Who an admin request runs as, and the broker to check their rights against.
#[derive(Clone)]
pub struct AdminAuth {
    /// The authenticated principal.
    pub principal: Principal,
    /// The client's address (ACL host).
    pub host: IpAddr,
    broker: Arc<Broker>,
}

impl AdminAuth {
    /// Whether the principal may perform `operation` on `resource` (see `protocol::authorize`).
    pub fn authorize(&self, operation: Operation, resource: Resource<'_>) -> Result<(), BrokerError> {
        check(&self.broker, &self.principal, self.host, operation, resource)
    }
}

/// Whether the admin principal may deploy, change or remove a transform with `spec`: READ on
/// its input, WRITE on every topic it writes (default and named outputs, dead-letter topic, and
/// with `stateful` its state changelog). Only asked when the authorizer is on; `None` (no
/// authentication ran) is refused rather than trusted.
pub fn may_manage_transform(auth: Option<&AdminAuth>, spec: &crate::transform::TransformSpec, stateful: bool) -> Result<(), BrokerError> {
    require(auth, Operation::Read, Resource::Topic(&spec.input))?;
    let changelog = stateful.then(|| crate::transform::state::changelog_topic(&spec.name));
    for topic in spec.written_topics().iter().chain(&changelog) {
        require(auth, Operation::Write, Resource::Topic(topic))?;
    }
    Ok(())
}

/// Whether the deployed transform `spec` keeps state: its changelog topic exists.
pub fn has_changelog(auth: Option<&AdminAuth>, spec: &crate::transform::TransformSpec) -> bool {
    auth.is_some_and(|a| a.broker.topic(&crate::transform::state::changelog_topic(&spec.name)).is_some())
}

/// The admin principal's right to `operation` on `resource`, checked as the Kafka API that does
/// the same thing checks it; granted when the authorizer is off. `None` (no authentication ran)
/// is refused rather than trusted.
pub fn require(auth: Option<&AdminAuth>, operation: Operation, resource: Resource<'_>) -> Result<(), BrokerError> {
    let Some(auth) = auth else {
        return Err(BrokerError::InvalidRequest { reason: "the admin request was not authenticated".into() });
    };
    if !auth.broker.config.authorizer {
        return Ok(());
    }
    auth.authorize(operation, resource)
}

/// [`require`] as a filter for listings: whether the principal may see `resource`.
pub fn may(auth: Option<&AdminAuth>, operation: Operation, resource: Resource<'_>) -> bool {
    require(auth, operation, resource).is_ok()
}

/// The middleware's state: the broker (for its credentials) and the logins already verified.
#[derive(Clone)]
pub struct AuthState {
    cell: BrokerCell,
    logins: Arc<VerifiedLogins>,
}

impl AuthState {
    /// State for the broker in `cell`, with an empty login cache.
    pub fn new(cell: BrokerCell) -> Self {
        AuthState { cell, logins: Arc::new(VerifiedLogins::new()) }
    }
}

/// The middleware: authenticates, then runs the route with an [`AdminAuth`] extension.
pub async fn authenticate(State(state): State<AuthState>, mut request: Request, next: Next) -> Response {
    let cell = &state.cell;
    let path = request.uri().path().to_string();
    if ALWAYS_PUBLIC.contains(&path.as_str()) {
        return next.run(request).await;
    }
    let Some(broker) = cell.get().cloned() else {
        // Credentials live in the metadata log: nothing can be checked before it is replayed.
        return (StatusCode::SERVICE_UNAVAILABLE, "the broker is still opening its logs\n").into_response();
    };
    let host = request.extensions().get::<ConnectInfo<SocketAddr>>().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let config = &broker.config;
    let required = config.listeners.iter().any(|l| l.security_protocol.uses_sasl());
    let principal = if !required || (path == "/metrics" && config.admin_metrics_public) {
        Principal::anonymous()
    } else {
        let Some((user, password)) = basic_credentials(&request) else {
            return unauthorized("HTTP Basic credentials are required");
        };
        let valid = match state.logins.lookup(broker.credentials(), &user, &password) {
            Lookup::NoSuchUser => Ok(false),
            Lookup::Verified => Ok(true),
            Lookup::Check(pending) => {
                let logins = Arc::clone(&state.logins);
                // PBKDF2 over thousands of iterations takes milliseconds: off the async threads.
                tokio::task::spawn_blocking(move || {
                    let ok = pending.verify(&password);
                    if ok {
                        logins.remember(&pending);
                    }
                    ok
                })
                .await
            }
        };
        match valid {
            Ok(true) => Principal::user(user),
            Ok(false) => {
                tracing::info!(user, %host, "admin API login refused");
                return unauthorized("invalid user name or password");
            }
            Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot check the password: {e}\n")).into_response(),
        }
    };
    request.extensions_mut().insert(AdminAuth { principal, host, broker });
    next.run(request).await
}

/// `(user, password)` from `Authorization: Basic base64(user:password)`; `None` if absent or
/// malformed.
fn basic_credentials(request: &Request) -> Option<(String, String)> {
    use base64::Engine;
    let value = request.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    if value.len() > AUTHORIZATION_BYTES_MAX {
        return None;
    }
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    (!user.is_empty()).then(|| (user.to_string(), password.to_string()))
}

fn unauthorized(why: &str) -> Response {
    (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Basic realm=\"sluice\", charset=\"UTF-8\"")], format!("{why}\n"))
        .into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn with_header(value: &str) -> Request {
        axum::http::Request::builder().header(header::AUTHORIZATION, value).body(axum::body::Body::empty()).unwrap()
    }

    /// Basic credentials parse; other schemes, bad base64 and a missing colon do not.
    #[test]
    fn parses_basic_credentials() {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert_eq!(basic_credentials(&with_header(&format!("Basic {}", b64("alice:pa:ss")))), Some(("alice".into(), "pa:ss".into())));
        assert_eq!(basic_credentials(&with_header(&format!("basic {}", b64("bob:")))), Some(("bob".into(), String::new())));
        assert_eq!(basic_credentials(&with_header(&format!("Bearer {}", b64("a:b")))), None);
        assert_eq!(basic_credentials(&with_header("Basic !!!")), None);
        assert_eq!(basic_credentials(&with_header(&format!("Basic {}", b64("nocolon")))), None);
        assert_eq!(basic_credentials(&with_header(&format!("Basic {}", b64(":pw")))), None);
    }
}
