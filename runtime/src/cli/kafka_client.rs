//! A minimal Kafka admin client for the CLI: one connection, one request at a time, encoded and
//! decoded with `kafka-protocol`. It authenticates with SASL/PLAIN (the password goes inside TLS on
//! SASL_SSL listeners) because the CLI needs no more than that to reach the admin APIs.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::SecurityProtocol;

/// The largest response the CLI reads (its responses are small lists).
const RESPONSE_BYTES_MAX: usize = 16 * 1024 * 1024;

/// How to reach and authenticate to the broker.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// host:port of a listener.
    pub bootstrap: String,
    /// That listener's security protocol.
    pub protocol: SecurityProtocol,
    /// PEM CA file that signed the broker's certificate (TLS listeners).
    pub ca_file: Option<PathBuf>,
    /// SASL user and password (SASL listeners).
    pub sasl: Option<(String, String)>,
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// One authenticated connection.
pub struct KafkaClient {
    stream: Box<dyn Stream>,
    next_correlation_id: i32,
}

impl KafkaClient {
    /// Connects, completes TLS if needed, and authenticates with SASL/PLAIN if needed.
    pub async fn connect(options: &ConnectOptions) -> anyhow::Result<Self> {
        let tcp = TcpStream::connect(&options.bootstrap).await.with_context(|| format!("cannot connect to {}", options.bootstrap))?;
        let stream: Box<dyn Stream> = if options.protocol.uses_tls() { Box::new(tls_connect(tcp, options).await?) } else { Box::new(tcp) };
        let mut client = KafkaClient { stream, next_correlation_id: 1 };
        if options.protocol.uses_sasl() {
            let Some((user, password)) = &options.sasl else { bail!("{} needs a SASL user and password", options.protocol.name()) };
            client.authenticate_plain(user, password).await?;
        }
        Ok(client)
    }

    async fn authenticate_plain(&mut self, user: &str, password: &str) -> anyhow::Result<()> {
        let handshake = self.call(&SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")), 1).await?;
        if handshake.error_code != 0 {
            bail!("the broker refused SASL/PLAIN (error {}); it offers {:?}", handshake.error_code, handshake.mechanisms);
        }
        let token = Bytes::from(format!("\0{user}\0{password}"));
        let auth = self.call(&SaslAuthenticateRequest::default().with_auth_bytes(token), 0).await?;
        if auth.error_code != 0 {
            bail!("SASL authentication as {user} failed: {}", auth.error_message.as_deref().unwrap_or("no message"));
        }
        Ok(())
    }

    /// Sends `request` at `version` and reads its response.
    pub async fn call<R: Request>(&mut self, request: &R, version: i16) -> anyhow::Result<R::Response> {
        let api_key = ApiKey::try_from(R::KEY).map_err(|_| anyhow::anyhow!("unknown API key {}", R::KEY))?;
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("sluice-cli")));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header.encode(&mut buf, R::header_version(version))?;
        request.encode(&mut buf, version)?;
        let size = i32::try_from(buf.len() - 4).context("request too large")?;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        self.stream.write_all(&buf).await.context("cannot send the request")?;

        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).await.context("the broker closed the connection")?;
        let size = usize::try_from(i32::from_be_bytes(size)).context("negative response size")?;
        if size > RESPONSE_BYTES_MAX {
            bail!("response of {size} bytes is larger than {RESPONSE_BYTES_MAX}");
        }
        let mut body = vec![0u8; size];
        self.stream.read_exact(&mut body).await.context("truncated response")?;
        let mut frame = Bytes::from(body);
        let header = ResponseHeader::decode(&mut frame, api_key.response_header_version(version))?;
        if header.correlation_id != correlation_id {
            bail!("response for correlation id {} while waiting for {correlation_id}", header.correlation_id);
        }
        R::Response::decode(&mut frame, version)
    }
}

async fn tls_connect(tcp: TcpStream, options: &ConnectOptions) -> anyhow::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let Some(ca_file) = &options.ca_file else {
        bail!("{} needs --ca-file (the CA that signed the broker's certificate)", options.protocol.name())
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).with_context(|| format!("cannot read {}", ca_file.display()))? {
        roots.add(cert.with_context(|| format!("bad certificate in {}", ca_file.display()))?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let host = options.bootstrap.rsplit_once(':').map(|(h, _)| h).unwrap_or(&options.bootstrap);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(host.to_string()).with_context(|| format!("{host} is not a valid TLS server name"))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    connector.connect(name, tcp).await.with_context(|| format!("TLS handshake with {} failed", options.bootstrap))
}
