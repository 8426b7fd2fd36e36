//! The security part of the configuration: named listeners with their security protocol, the TLS
//! files, SASL mechanisms and the bootstrap user. Parsed and checked here, at the edge.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;
use crate::security::sasl::Mechanism;

/// Kafka's `security.protocol` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SecurityProtocol {
    /// No TLS, no authentication: every client is `User:ANONYMOUS`.
    Plaintext,
    /// TLS; clients are `User:ANONYMOUS` (optionally required to show a trusted certificate).
    Ssl,
    /// SASL without TLS (PLAIN would send passwords in clear: prefer SCRAM here).
    SaslPlaintext,
    /// SASL inside TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Kafka's spelling.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// Parses Kafka's spelling.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Plaintext, Self::Ssl, Self::SaslPlaintext, Self::SaslSsl].into_iter().find(|p| p.name() == text)
    }

    /// Whether connections start with a TLS handshake.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether clients must authenticate with SASL before any other request.
    pub fn uses_sasl(self) -> bool {
        matches!(self, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl)
    }
}

/// One Kafka listener.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Unique name (Kafka's listener name, e.g. `PLAINTEXT`, `EXTERNAL`).
    pub name: String,
    /// Address to bind; port 0 picks a free port.
    pub addr: SocketAddr,
    /// How clients on this listener are secured.
    pub security_protocol: SecurityProtocol,
    /// host:port given to clients that connected here. [default: the bound address; for the first
    /// listener, `advertised_addr`]
    #[serde(default)]
    pub advertised_addr: Option<String>,
}

impl ListenerConfig {
    /// The default listener: PLAINTEXT on `addr`.
    pub fn plaintext(addr: SocketAddr) -> Self {
        ListenerConfig { name: "PLAINTEXT".into(), addr, security_protocol: SecurityProtocol::Plaintext, advertised_addr: None }
    }

    /// Parses the flag form `NAME=PROTOCOL://HOST:PORT` (or `PROTOCOL://HOST:PORT`, named after
    /// its protocol).
    pub fn parse_flag(text: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid { field: "listener", reason };
        let (name, rest) = match text.split_once('=') {
            Some((name, rest)) => (Some(name), rest),
            None => (None, text),
        };
        let (protocol, addr) = rest.split_once("://").ok_or_else(|| invalid(format!("{text:?} is not NAME=PROTOCOL://HOST:PORT")))?;
        let protocol = SecurityProtocol::parse(protocol)
            .ok_or_else(|| invalid(format!("{protocol:?} is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")))?;
        let addr: SocketAddr = addr.parse().map_err(|e| invalid(format!("address {addr:?}: {e}")))?;
        let name = name.unwrap_or(protocol.name()).to_string();
        Ok(ListenerConfig { name, addr, security_protocol: protocol, advertised_addr: None })
    }
}

/// Whether TLS clients must present a certificate signed by `client_ca_file`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// Do not ask for a client certificate.
    #[default]
    None,
    /// Ask; accept clients without one, refuse an untrusted one.
    Requested,
    /// Refuse clients without a trusted certificate.
    Required,
}

/// Certificate files for TLS listeners. Re-read on SIGHUP and when they change
/// (`protocol/tls_reload.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM: the server certificate, then its chain.
    pub cert_file: PathBuf,
    /// PEM: the server's private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM: CAs trusted to sign client certificates. Needed unless `client_auth` is `none`.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// Client certificate policy.
    #[serde(default)]
    pub client_auth: ClientAuth,
}

/// Parses SASL mechanism names, refusing unknown ones.
pub fn parse_mechanisms(names: &[String]) -> Result<Vec<Mechanism>, ConfigError> {
    names
        .iter()
        .map(|n| {
            Mechanism::from_name(n).ok_or_else(|| ConfigError::Invalid {
                field: "sasl_mechanisms",
                reason: format!("{n:?} is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"),
            })
        })
        .collect()
}

/// Checks listeners against each other and against the TLS/SASL settings.
pub fn validate(listeners: &[ListenerConfig], tls: Option<&TlsConfig>, mechanisms: &[Mechanism]) -> Result<(), ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid { field: "listeners", reason };
    if listeners.is_empty() {
        return Err(invalid("at least one listener is needed".into()));
    }
    for (i, l) in listeners.iter().enumerate() {
        if l.name.is_empty() || !l.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return Err(invalid(format!("name {:?} must be non-empty ASCII letters, digits, '_' or '-'", l.name)));
        }
        if listeners[..i].iter().any(|other| other.name == l.name) {
            return Err(invalid(format!("two listeners are named {}", l.name)));
        }
        if l.security_protocol.uses_tls() && tls.is_none() {
            return Err(invalid(format!("{} uses {} but no tls cert_file/key_file is configured", l.name, l.security_protocol.name())));
        }
        if l.security_protocol.uses_sasl() && mechanisms.is_empty() {
            return Err(invalid(format!("{} uses {} but sasl_mechanisms is empty", l.name, l.security_protocol.name())));
        }
    }
    if let Some(tls) = tls {
        if tls.client_auth != ClientAuth::None && tls.client_ca_file.is_none() {
            return Err(ConfigError::Invalid {
                field: "tls.client_ca_file",
                reason: "needed when client_auth is requested or required".into(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flag form names a listener after its protocol unless told otherwise.
    #[test]
    fn listener_flags() {
        let l = ListenerConfig::parse_flag("EXTERNAL=SASL_SSL://0.0.0.0:9093").expect("valid");
        assert_eq!((l.name.as_str(), l.security_protocol, l.addr.port()), ("EXTERNAL", SecurityProtocol::SaslSsl, 9093));
        let l = ListenerConfig::parse_flag("SSL://127.0.0.1:0").expect("valid");
        assert_eq!(l.name, "SSL");
        assert!(ListenerConfig::parse_flag("X=TLS://127.0.0.1:1").is_err());
        assert!(ListenerConfig::parse_flag("X=SSL://nowhere").is_err());
    }

    /// A TLS listener without certificates, or two listeners with one name, are refused.
    #[test]
    fn validation() {
        let ssl = ListenerConfig::parse_flag("S=SSL://127.0.0.1:0").expect("valid");
        let err = validate(std::slice::from_ref(&ssl), None, &Mechanism::ALL).expect_err("no tls");
        assert!(err.to_string().contains("cert_file"), "{err}");
        let plain = ListenerConfig::plaintext("127.0.0.1:0".parse().expect("addr"));
        assert!(validate(&[plain.clone(), plain], None, &Mechanism::ALL).is_err());
    }
}
