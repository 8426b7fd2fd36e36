//! A minimal Kafka client for integration tests: encodes requests and decodes responses with
//! kafka-protocol's client-side codecs, over a real TCP connection to an in-process broker.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{bail, Context};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use kafka_protocol::records::{Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use sluice::broker::Broker;
use sluice::config::{BrokerConfig, SecurityProtocol};
use sluice::protocol::listener::{ConnectionLimits, Endpoint};
use sluice::protocol::server::ListenerTask;
use sluice::serve::BoundAddrs;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A broker serving on 127.0.0.1:<free port> with its data in a temporary directory.
pub struct TestBroker {
    pub addr: SocketAddr,
    pub broker: Arc<Broker>,
    stop: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    pub dir: tempfile::TempDir,
}

impl TestBroker {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_in(tempfile::tempdir()?, |_| {}).await
    }

    pub async fn start_in(dir: tempfile::TempDir, tweak: impl FnOnce(&mut BrokerConfig)) -> anyhow::Result<Self> {
        let mut config = BrokerConfig::for_tests(dir.path());
        tweak(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let addrs = BoundAddrs { kafka: addr, admin: addr, advertised: addr.to_string(), listeners: Vec::new() };
        // The first configured listener's protocol (a tweak may make it SASL_PLAINTEXT).
        let protocol = config.listeners.first().map(|l| l.security_protocol).unwrap_or(SecurityProtocol::Plaintext);
        let limits = ConnectionLimits::new(config.max_connections, config.max_connections_per_ip);
        let broker = Broker::open(config, &addrs).await?;
        let (stop, stop_rx) = watch::channel(false);
        let endpoint = Arc::new(Endpoint::new("TEST", protocol, addr, addr.ip().to_string(), i32::from(addr.port())));
        let task = ListenerTask { listener, endpoint, tls: None, limits };
        let server = tokio::spawn(sluice::protocol::server::run(task, Arc::clone(&broker), stop_rx));
        Ok(TestBroker { addr, broker, stop, server, dir })
    }

    /// Graceful stop (as on SIGTERM); returns the data directory for a restart.
    pub async fn stop(self) -> anyhow::Result<tempfile::TempDir> {
        let _ = self.stop.send(true);
        self.server.await?;
        self.broker.shutdown().await?;
        Ok(self.dir)
    }

    pub async fn client(&self) -> anyhow::Result<Client> {
        Client::connect(self.addr).await
    }
}

/// One connection speaking Kafka.
pub struct Client {
    pub stream: TcpStream,
    next_correlation_id: i32,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        Ok(Client { stream, next_correlation_id: 1 })
    }

    /// Encodes a request frame (size prefix, header, body).
    pub fn frame<R: Request>(&mut self, request: &R, version: i16) -> anyhow::Result<(i32, Bytes)> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("sluice-test")));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header.encode(&mut buf, R::header_version(version))?;
        request.encode(&mut buf, version)?;
        let size = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        Ok((correlation_id, buf.freeze()))
    }

    pub async fn send<R: Request>(&mut self, request: &R, version: i16) -> anyhow::Result<i32> {
        let (correlation_id, frame) = self.frame(request, version)?;
        self.stream.write_all(&frame).await?;
        Ok(correlation_id)
    }

    /// Reads one response frame; `Ok(None)` if the broker closed the connection.
    pub async fn read_frame(&mut self) -> anyhow::Result<Option<Bytes>> {
        let mut size = [0u8; 4];
        match self.stream.read_exact(&mut size).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof || e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut body).await?;
        Ok(Some(Bytes::from(body)))
    }

    pub async fn recv<R: Request>(&mut self, correlation_id: i32, version: i16) -> anyhow::Result<R::Response> {
        let mut frame = self.read_frame().await?.context("connection closed")?;
        let api_key = ApiKey::try_from(R::KEY).map_err(|_| anyhow::anyhow!("bad key"))?;
        let header = ResponseHeader::decode(&mut frame, api_key.response_header_version(version))?;
        if header.correlation_id != correlation_id {
            bail!("correlation id {} != {correlation_id}", header.correlation_id);
        }
        let response = R::Response::decode(&mut frame, version)?;
        if frame.has_remaining() {
            bail!("{} trailing bytes after the response", frame.remaining());
        }
        Ok(response)
    }

    pub async fn call<R: Request>(&mut self, request: &R, version: i16) -> anyhow::Result<R::Response> {
        let correlation_id = self.send(request, version).await?;
        self.recv::<R>(correlation_id, version).await
    }

    /// True once the broker has closed the connection (reads EOF or a reset).
    pub async fn is_closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(tokio::time::timeout(std::time::Duration::from_secs(5), self.stream.read(&mut byte)).await, Ok(Ok(0)) | Ok(Err(_)))
    }
}

/// One RecordBatch v2 holding `values`; idempotent when `producer` is `Some((id, epoch, seq))`.
pub fn batch(values: &[&str], producer: Option<(i64, i16, i32)>) -> Bytes {
    let (producer_id, producer_epoch, base_sequence) = producer.unwrap_or((-1, -1, 0));
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: false,
            control: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // offset - sequence constant keeps all records in one batch.
            sequence: base_sequence + i as i32,
            timestamp: 1_700_000_000_000 + i as i64,
            key: None,
            value: Some(Bytes::from(v.to_string())),
            headers: Default::default(),
            delete_horizon: false,
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encode batch");
    buf.freeze()
}

/// The values of every record in `records`, with offsets.
pub fn values(records: Option<Bytes>) -> Vec<(i64, String)> {
    let Some(mut bytes) = records else { return Vec::new() };
    let sets = RecordBatchDecoder::decode_all(&mut bytes).expect("decode batches");
    sets.into_iter()
        .flat_map(|s| s.records)
        .map(|r| (r.offset, String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned()))
        .collect()
}
