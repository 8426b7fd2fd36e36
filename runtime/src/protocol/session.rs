//! One connection's security state: which listener it came in on, whether it still has to
//! authenticate, and the principal its requests run as.
//!
//! On a SASL listener a connection moves `AwaitingHandshake → Handshaken → Authenticated`; until
//! then only ApiVersions, SaslHandshake and (after the handshake) SaslAuthenticate are admitted,
//! and anything else closes the connection, as Kafka does. A SaslHandshake v0 switches the
//! connection to raw SASL tokens (size-prefixed, no Kafka header) until authentication ends;
//! v1 (KIP-152) carries tokens inside SaslAuthenticate requests.

use std::sync::Arc;

use kafka_protocol::messages::ApiKey;
use parking_lot::Mutex;

use super::listener::Endpoint;
use crate::security::sasl::{AuthError, Exchange, Mechanism, Step};
use crate::security::{CredentialStore, Principal};

/// The security state of one connection, shared by its in-flight requests.
#[derive(Debug)]
pub struct Session {
    /// The listener the client connected to (its advertised address goes into Metadata).
    pub endpoint: Arc<Endpoint>,
    state: Mutex<AuthState>,
}

#[derive(Debug)]
enum AuthState {
    /// Requests are served as this principal.
    Authenticated(Principal),
    AwaitingHandshake,
    Handshaken {
        exchange: Exchange,
        raw_tokens: bool,
    },
    /// Authentication failed: the connection closes after the failure response.
    Failed,
}

/// Why SaslHandshake was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeRefusal {
    /// Not a SASL listener, or already authenticated.
    IllegalState,
    /// The mechanism is not offered.
    UnsupportedMechanism,
}

impl Session {
    /// A new connection on `endpoint`: authenticated as `User:ANONYMOUS` unless it is a SASL
    /// listener.
    pub fn new(endpoint: Arc<Endpoint>) -> Self {
        let state =
            if endpoint.protocol.uses_sasl() { AuthState::AwaitingHandshake } else { AuthState::Authenticated(Principal::anonymous()) };
        Session { endpoint, state: Mutex::new(state) }
    }

    /// The principal requests run as (`User:ANONYMOUS` before authentication; the admission
    /// check keeps such requests from running on a SASL listener).
    pub fn principal(&self) -> Principal {
        match &*self.state.lock() {
            AuthState::Authenticated(p) => p.clone(),
            _ => Principal::anonymous(),
        }
    }

    /// Whether requests other than the SASL ones may run.
    pub fn is_authenticated(&self) -> bool {
        matches!(&*self.state.lock(), AuthState::Authenticated(_))
    }

    /// Whether authentication failed (the connection must close).
    pub fn has_failed(&self) -> bool {
        matches!(&*self.state.lock(), AuthState::Failed)
    }

    /// Whether the next frame is a raw SASL token (after a SaslHandshake v0).
    pub fn expects_raw_token(&self) -> bool {
        matches!(&*self.state.lock(), AuthState::Handshaken { raw_tokens: true, .. })
    }

    /// Whether a request of `api_key` may run now. `Err` names why the connection must close.
    pub fn admits(&self, api_key: ApiKey) -> Result<(), String> {
        let allowed = match &*self.state.lock() {
            AuthState::Authenticated(_) => true,
            AuthState::AwaitingHandshake => matches!(api_key, ApiKey::ApiVersions | ApiKey::SaslHandshake),
            AuthState::Handshaken { raw_tokens: false, .. } => api_key == ApiKey::SaslAuthenticate,
            AuthState::Handshaken { raw_tokens: true, .. } | AuthState::Failed => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(format!("unexpected {api_key:?} request before SASL authentication on listener {}", self.endpoint.name))
        }
    }

    /// SaslHandshake: picks the mechanism. `version` 0 switches to raw tokens.
    pub fn handshake(&self, mechanism: &str, version: i16, offered: &[Mechanism]) -> Result<(), HandshakeRefusal> {
        let mut state = self.state.lock();
        if !matches!(*state, AuthState::AwaitingHandshake) {
            return Err(HandshakeRefusal::IllegalState);
        }
        let mechanism = Mechanism::from_name(mechanism).filter(|m| offered.contains(m)).ok_or(HandshakeRefusal::UnsupportedMechanism)?;
        *state = AuthState::Handshaken { exchange: Exchange::start(mechanism), raw_tokens: version == 0 };
        Ok(())
    }

    /// Feeds one client token to the exchange; returns the server's token. On success the
    /// session becomes authenticated; on failure it is marked failed.
    pub fn authenticate(&self, token: &[u8], store: &CredentialStore) -> Result<Vec<u8>, SessionAuthError> {
        let mut state = self.state.lock();
        let AuthState::Handshaken { exchange, .. } = &mut *state else {
            *state = AuthState::Failed;
            return Err(SessionAuthError::IllegalState);
        };
        match exchange.step(token, store) {
            Ok(Step::Continue(reply)) => Ok(reply),
            Ok(Step::Done { user, response }) => {
                tracing::debug!(listener = %self.endpoint.name, user, "SASL authentication succeeded");
                *state = AuthState::Authenticated(Principal::user(user));
                Ok(response)
            }
            Err(e) => {
                *state = AuthState::Failed;
                Err(SessionAuthError::Failed(e))
            }
        }
    }
}

/// Why SaslAuthenticate failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionAuthError {
    /// No SaslHandshake came first (or authentication already ended).
    #[error("SaslAuthenticate is only valid after a SaslHandshake")]
    IllegalState,
    /// The exchange refused the client.
    #[error(transparent)]
    Failed(AuthError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecurityProtocol;
    use crate::security::{ScramCredential, ScramMechanism};

    fn endpoint(protocol: SecurityProtocol) -> Arc<Endpoint> {
        Arc::new(Endpoint::new("L", protocol, "127.0.0.1:1".parse().expect("addr"), "127.0.0.1".into(), 1))
    }

    /// Before authentication a SASL listener admits only the SASL APIs; PLAIN then unlocks all.
    #[test]
    fn sasl_gate() {
        let store = CredentialStore::default();
        store.upsert("u", ScramMechanism::Sha512, ScramCredential::from_password(ScramMechanism::Sha512, "p", 4096).expect("rng"));
        let s = Session::new(endpoint(SecurityProtocol::SaslSsl));
        assert!(s.admits(ApiKey::ApiVersions).is_ok());
        assert!(s.admits(ApiKey::Metadata).is_err());
        assert!(s.admits(ApiKey::SaslAuthenticate).is_err());
        assert_eq!(s.handshake("GSSAPI", 1, &Mechanism::ALL), Err(HandshakeRefusal::UnsupportedMechanism));
        s.handshake("PLAIN", 1, &Mechanism::ALL).expect("handshake");
        assert!(s.admits(ApiKey::Metadata).is_err());
        s.authenticate(b"\0u\0p", &store).expect("auth");
        assert!(s.admits(ApiKey::Metadata).is_ok());
        assert_eq!(s.principal(), Principal::user("u"));
        assert_eq!(s.handshake("PLAIN", 1, &Mechanism::ALL), Err(HandshakeRefusal::IllegalState));
    }

    /// A wrong password fails the session; PLAINTEXT listeners are open as ANONYMOUS.
    #[test]
    fn failure_and_plaintext() {
        let store = CredentialStore::default();
        let s = Session::new(endpoint(SecurityProtocol::SaslPlaintext));
        s.handshake("PLAIN", 0, &Mechanism::ALL).expect("handshake");
        assert!(s.expects_raw_token());
        assert!(matches!(s.authenticate(b"\0u\0p", &store), Err(SessionAuthError::Failed(_))));
        assert!(s.has_failed());
        let p = Session::new(endpoint(SecurityProtocol::Plaintext));
        assert!(p.admits(ApiKey::Produce).is_ok());
        assert_eq!(p.principal().to_string(), "User:ANONYMOUS");
    }
}
