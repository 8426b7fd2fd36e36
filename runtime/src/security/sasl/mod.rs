//! The server side of SASL: PLAIN (RFC 4616) and SCRAM-SHA-256/512 (RFC 5802, RFC 7677).
//!
//! An [`Exchange`] is started for the mechanism a client chose in SaslHandshake and fed each
//! token the client sends; it answers with the next server token or with the authenticated user
//! name. It knows nothing of Kafka framing.

use super::credentials::{CredentialStore, ScramMechanism};

pub mod plain;
pub mod scram;

/// A SASL mechanism this broker offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// `PLAIN`: user and password in one message. Only sensible over TLS.
    Plain,
    /// `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    Scram(ScramMechanism),
}

impl Mechanism {
    /// Every mechanism, in the order SaslHandshake lists them.
    pub const ALL: [Mechanism; 3] = [Mechanism::Scram(ScramMechanism::Sha512), Mechanism::Scram(ScramMechanism::Sha256), Mechanism::Plain];

    /// The SASL name.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Scram(m) => m.name(),
        }
    }

    /// From the SASL name (exact, as Kafka compares them).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }
}

#[allow(missing_docs)] // fields are named for what they hold
/// Why an exchange failed. Every variant ends the connection's authentication.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The client's message does not follow the mechanism's grammar.
    #[error("malformed {mechanism} message: {reason}")]
    Malformed { mechanism: &'static str, reason: String },
    /// Unknown user or wrong password; deliberately not saying which.
    #[error("Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}")]
    InvalidCredentials { mechanism: &'static str },
    /// A token arrived after the exchange finished.
    #[error("unexpected SASL token: the {mechanism} exchange is already complete")]
    AlreadyComplete { mechanism: &'static str },
}

/// What one client token produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this token and wait for the client's next one.
    Continue(Vec<u8>),
    /// Authenticated as `user`; send `response` (possibly empty) as the last server token.
    Done {
        /// The authenticated user name.
        user: String,
        /// The last server token.
        response: Vec<u8>,
    },
}

/// One authentication in progress.
#[derive(Debug)]
pub enum Exchange {
    /// PLAIN has a single client message.
    Plain {
        /// Whether the one message was seen.
        finished: bool,
    },
    /// SCRAM has two client messages.
    Scram(Box<scram::ScramServer>),
}

impl Exchange {
    /// Starts an exchange for `mechanism`.
    pub fn start(mechanism: Mechanism) -> Self {
        match mechanism {
            Mechanism::Plain => Exchange::Plain { finished: false },
            Mechanism::Scram(m) => Exchange::Scram(Box::new(scram::ScramServer::new(m))),
        }
    }

    /// Feeds one client token. PBKDF2 runs here for PLAIN: call it off the async workers.
    pub fn step(&mut self, token: &[u8], store: &CredentialStore) -> Result<Step, AuthError> {
        match self {
            Exchange::Plain { finished: true } => Err(AuthError::AlreadyComplete { mechanism: "PLAIN" }),
            Exchange::Plain { finished } => {
                *finished = true;
                let user = plain::authenticate(token, store)?;
                Ok(Step::Done { user, response: Vec::new() })
            }
            Exchange::Scram(server) => server.step(token, store),
        }
    }
}
