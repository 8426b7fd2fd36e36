//! The identity a connection's requests run as, in Kafka's `Type:name` form, ready for ACLs.

use std::fmt;

/// A Kafka principal. PLAINTEXT and SSL connections are `User:ANONYMOUS`; a SASL connection is
/// `User:<authenticated name>` once SaslAuthenticate succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Principal {
    /// Always `User` today (Kafka's only built-in principal type).
    pub kind: String,
    /// The user name.
    pub name: String,
}

impl Principal {
    /// Kafka's name for an unauthenticated client.
    pub const ANONYMOUS: &'static str = "ANONYMOUS";

    /// `User:<name>`.
    pub fn user(name: impl Into<String>) -> Self {
        Principal { kind: "User".into(), name: name.into() }
    }

    /// `User:ANONYMOUS`.
    pub fn anonymous() -> Self {
        Self::user(Self::ANONYMOUS)
    }

    /// Parses `Type:name` (as written in `super_users`).
    pub fn parse(text: &str) -> Option<Self> {
        let (kind, name) = text.split_once(':')?;
        if kind.is_empty() || name.is_empty() {
            return None;
        }
        Some(Principal { kind: kind.into(), name: name.into() })
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.name)
    }
}
