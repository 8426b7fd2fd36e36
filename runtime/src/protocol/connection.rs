//! One client connection: size-prefixed frames in, responses out in request order.
//!
//! Up to `config.max_in_flight_per_connection` requests run concurrently (each on its own task so
//! a slow fsync or a long-poll fetch does not stall decoding); responses are written strictly in
//! request order, as Kafka clients require. Anything malformed closes this connection only, with
//! a warning naming the peer; other connections are unaffected.
//!
//! The stream is anything async (plain TCP or TLS). The connection's [`Session`] decides which
//! requests may run before SASL authentication; until it succeeds one request runs at a time, so
//! the exchange is strictly sequential. An idle connection (nothing in flight, nothing received for
//! `connection_idle_timeout_ms`) and one that has not authenticated within `sasl_auth_timeout_ms`
//! are closed.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::buf::Limit;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::future::BoxFuture;
use futures::stream::{FuturesOrdered, StreamExt};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{oneshot, watch};
use tokio::time::{Duration, Instant};
use tracing::Instrument;

use super::apis;
use super::frame_pool::{self, POOLED_FRAME_BYTES_MIN};
use super::read_low_water::ReadLowWater;
use super::session::Session;
use super::{AppendTurn, RequestContext};
use crate::broker::Broker;

/// Bytes of the size prefix in front of every request and response.
const SIZE_PREFIX_BYTES: usize = 4;
/// api_key (2) + api_version (2) + correlation_id (4): the fixed start of every request header.
const HEADER_FIXED_BYTES: usize = 8;
/// Initial read buffer; it grows to the largest frame seen that is below
/// [`POOLED_FRAME_BYTES_MIN`] (larger ones are read into a pooled buffer of their own).
const READ_BUFFER_BYTES: usize = 64 * 1024;
/// Largest single growth of the read buffer while a big frame arrives.
const READ_RESERVE_STEP_BYTES: usize = 1024 * 1024;

/// What one request produced: an encoded response frame, nothing (acks=0 produce), or a reason to
/// close the connection.
type Outcome = Result<Option<Bytes>, String>;

/// Serves one connection until the client disconnects, a protocol error occurs, or `shutdown`
/// turns true (then it stops reading and finishes the requests already read). `low_water` is the
/// socket under `stream` (see `read_low_water`); both are dropped together when this returns.
pub async fn serve<S>(
    stream: S,
    mut low_water: ReadLowWater,
    peer: SocketAddr,
    broker: Arc<Broker>,
    session: Arc<Session>,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let _counted = broker.metrics.connection_opened();
    let (mut reader, mut writer) = tokio::io::split(stream);
    let idle_timeout = Duration::from_millis(broker.config.connection_idle_timeout_ms);
    let auth_deadline = Instant::now() + Duration::from_millis(broker.config.sasl_auth_timeout_ms);
    let mut last_activity = Instant::now();
    let max_in_flight = broker.config.max_in_flight_per_connection.max(1);
    let max_frame_bytes = broker.config.max_frame_bytes;
    let mut buf = BytesMut::with_capacity(READ_BUFFER_BYTES);
    // A large frame being read into a pooled buffer, limited to the bytes it still lacks.
    let mut large: Option<Limit<Vec<u8>>> = None;
    let mut in_flight: FuturesOrdered<BoxFuture<'static, Outcome>> = FuturesOrdered::new();
    let mut last_append: Option<oneshot::Receiver<()>> = None;
    let mut reading = !*shutdown.borrow();

    loop {
        // Before authentication requests run one at a time (the SASL exchange is sequential).
        let authenticated = session.is_authenticated();
        let max_in_flight = if authenticated { max_in_flight } else { 1 };
        if reading && in_flight.len() < max_in_flight {
            match take_frame(&mut buf, &mut large, max_frame_bytes) {
                Ok(Some(frame)) => {
                    in_flight.push_back(start_request(&broker, &session, peer, frame, &mut last_append));
                    continue;
                }
                // A partial frame is normal: read more, woken once the rest (or most of it) is here.
                Ok(None) => low_water.want(missing_bytes(&buf, large.as_ref())),
                Err(reason) => {
                    tracing::warn!(%peer, "closing connection: {reason}");
                    reading = false;
                    buf.clear();
                    large = None;
                }
            }
        }
        if !reading && in_flight.is_empty() {
            break;
        }
        // Idle time counts only while nothing is in flight: a long-poll fetch is not idleness.
        let deadline = if !authenticated { auth_deadline } else { last_activity + idle_timeout };
        let watch_deadline = reading && (in_flight.is_empty() || !authenticated);
        tokio::select! {
            biased;
            Some(outcome) = in_flight.next(), if !in_flight.is_empty() => match outcome {
                Ok(Some(frame)) => {
                    // flush: TLS may keep encrypted bytes buffered after a partial socket write
                    // until the next write; with nothing more to send the client would wait. A
                    // no-op on plain TCP.
                    if let Err(e) = async { writer.write_all(&frame).await?; writer.flush().await }.await {
                        tracing::debug!(%peer, "cannot write response, closing: {e}");
                        return;
                    }
                    last_activity = Instant::now();
                    if session.has_failed() {
                        // Kafka sends the SASL failure, then closes.
                        tracing::info!(%peer, listener = %session.endpoint.name, "SASL authentication failed, closing");
                        break;
                    }
                }
                Ok(None) => {}
                Err(reason) => {
                    tracing::warn!(%peer, "closing connection: {reason}");
                    return;
                }
            },
            read = read_some(&mut reader, &mut buf, &mut large), if reading && in_flight.len() < max_in_flight => match read {
                Ok(0) => {
                    if !buf.is_empty() || large.is_some() {
                        tracing::debug!(%peer, bytes = buf.len(), "client closed mid-frame");
                    }
                    reading = false;
                }
                Ok(_) => last_activity = Instant::now(),
                Err(e) => {
                    tracing::debug!(%peer, "read failed, closing: {e}");
                    return;
                }
            },
            _ = tokio::time::sleep_until(deadline), if watch_deadline => {
                let limit = if authenticated { "connection_idle_timeout_ms" } else { "sasl_auth_timeout_ms" };
                tracing::info!(%peer, listener = %session.endpoint.name, "closing connection: {limit} passed");
                return;
            }
            changed = shutdown.changed(), if reading => {
                // Err: the sender is gone, which also means stop.
                if changed.is_err() || *shutdown.borrow() {
                    reading = false;
                }
            }
        }
    }
    let _ = writer.shutdown().await;
}

/// Reads what the socket has: into the large frame being filled, else into the read buffer.
/// Cancel-safe (a cancelled `read_buf` read nothing), as `select!` needs.
async fn read_some<R: AsyncRead + Unpin>(reader: &mut R, buf: &mut BytesMut, large: &mut Option<Limit<Vec<u8>>>) -> std::io::Result<usize> {
    match large {
        Some(frame) => reader.read_buf(frame).await,
        None => reader.read_buf(buf).await,
    }
}

/// Splits one complete frame (without its size prefix) off the front of `buf`, or returns the
/// large frame once it is filled. A frame of at least [`POOLED_FRAME_BYTES_MIN`] that has not
/// fully arrived moves to `large`, a pooled buffer the next reads fill directly, so big requests
/// neither grow `buf` nor get fresh memory each time.
/// `Ok(None)`: not all of it has arrived yet. `Err`: the declared size is unacceptable.
fn take_frame(buf: &mut BytesMut, large: &mut Option<Limit<Vec<u8>>>, max_frame_bytes: usize) -> Result<Option<Bytes>, String> {
    if let Some(frame) = large.take() {
        if Limit::limit(&frame) > 0 {
            *large = Some(frame);
            return Ok(None);
        }
        return Ok(Some(frame_pool::freeze(frame.into_inner())));
    }
    if buf.len() < SIZE_PREFIX_BYTES {
        return Ok(None);
    }
    let declared = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let size = usize::try_from(declared).map_err(|_| format!("negative frame size {declared}"))?;
    if size > max_frame_bytes {
        return Err(format!("frame of {size} bytes exceeds max_frame_bytes {max_frame_bytes}"));
    }
    if buf.len() < SIZE_PREFIX_BYTES + size && size >= POOLED_FRAME_BYTES_MIN {
        buf.advance(SIZE_PREFIX_BYTES);
        // The size is within max_frame_bytes, and the pool rounds up only to a power of two.
        let mut frame = frame_pool::take(size);
        frame.extend_from_slice(buf);
        buf.clear();
        let missing = size - frame.len();
        *large = Some(frame.limit(missing));
        return Ok(None);
    }
    if buf.len() < SIZE_PREFIX_BYTES + size {
        // Grow in steps rather than trusting the peer's declared size with one allocation.
        buf.reserve((SIZE_PREFIX_BYTES + size - buf.len()).min(READ_RESERVE_STEP_BYTES));
        return Ok(None);
    }
    buf.advance(SIZE_PREFIX_BYTES);
    Ok(Some(buf.split_to(size).freeze()))
}

/// Bytes the frame being read still needs, once `take_frame` found it incomplete: what the
/// pooled large frame lacks, else what the frame at the front of `buf` lacks; 0 while the size
/// itself is incomplete.
fn missing_bytes(buf: &[u8], large: Option<&Limit<Vec<u8>>>) -> usize {
    if let Some(frame) = large {
        return frame.limit();
    }
    let Some(prefix) = buf.get(..SIZE_PREFIX_BYTES) else { return 0 };
    let declared = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    usize::try_from(declared).map_or(0, |size| (SIZE_PREFIX_BYTES + size).saturating_sub(buf.len()))
}

/// Decodes a frame and starts its handler. Errors become an `Err` outcome that closes the
/// connection once the responses before it have been written.
fn start_request(
    broker: &Arc<Broker>,
    session: &Arc<Session>,
    peer: SocketAddr,
    mut frame: Bytes,
    last_append: &mut Option<oneshot::Receiver<()>>,
) -> BoxFuture<'static, Outcome> {
    if session.expects_raw_token() {
        return ready(super::apis::sasl_authenticate::raw_token(broker, session, &frame));
    }
    let (api_key, version, correlation_id) = match peek_header(&frame) {
        Ok(peeked) => peeked,
        Err(e) => return ready(Err(e)),
    };
    if let Err(reason) = session.admits(api_key) {
        return ready(Err(reason));
    }
    if !apis::is_supported(api_key, version) {
        if api_key == ApiKey::ApiVersions {
            // How clients negotiate: answer v0 with UNSUPPORTED_VERSION and our table.
            let response = apis::api_versions::unsupported_version_response();
            return ready(encode_frame(api_key, 0, correlation_id, &ResponseKind::ApiVersions(response)).map(Some));
        }
        // Kafka closes the connection on a version it does not support.
        return ready(Err(format!("unsupported {api_key:?} version {version} (correlation id {correlation_id})")));
    }
    let (header, request) = match decode_request(api_key, version, &mut frame) {
        Ok(decoded) => decoded,
        Err(e) => return ready(Err(e)),
    };
    let no_response = matches!(&request, RequestKind::Produce(p) if p.acks == 0);
    let append_turn = if matches!(request, RequestKind::Produce(_)) {
        let (turn, next) = AppendTurn::chained(last_append.take());
        *last_append = Some(next);
        turn
    } else {
        AppendTurn::free()
    };
    let ctx = RequestContext {
        api_version: version,
        correlation_id,
        client_id: header.client_id.map(|s| s.to_string()),
        peer,
        append_turn,
        principal: session.principal(),
        session: Arc::clone(session),
    };
    let broker = Arc::clone(broker);
    // Every log line a handler writes carries who asked what; records are never logged one by one.
    let span =
        tracing::info_span!("request", api = ?api_key, version, correlation_id, client_id = ctx.client_id.as_deref().unwrap_or(""), %peer);
    let started = Instant::now();
    // A task per request: handlers run in parallel and a panic stays inside its task.
    let task = tokio::spawn(
        async move {
            let response = apis::dispatch(&broker, &ctx, request).await;
            ctx.append_turn.finish();
            let response = response?;
            let frame = if no_response { None } else { Some(encode_frame(api_key, version, correlation_id, &response)?) };
            broker.metrics.observe_request(api_key, version, started.elapsed(), &response);
            Ok(frame)
        }
        .instrument(span),
    );
    Box::pin(async move {
        match task.await {
            Ok(outcome) => outcome,
            Err(e) => Err(format!("{api_key:?} handler failed: {e}")),
        }
    })
}

/// `(api key, version, correlation id)` from the fixed start of a request frame. Hostile input
/// (fuzzed by `fuzz/`): an error, never a panic.
pub fn peek_header(frame: &[u8]) -> Result<(ApiKey, i16, i32), String> {
    let Some(fixed) = frame.get(..HEADER_FIXED_BYTES) else {
        return Err(format!("request of {} bytes is shorter than a request header", frame.len()));
    };
    let key = i16::from_be_bytes([fixed[0], fixed[1]]);
    let version = i16::from_be_bytes([fixed[2], fixed[3]]);
    let correlation_id = i32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
    let api_key = ApiKey::try_from(key).map_err(|_| format!("unknown API key {key} (correlation id {correlation_id})"))?;
    Ok((api_key, version, correlation_id))
}

/// Decodes the header and body of a request whose key and (supported) version were peeked.
/// Hostile input (fuzzed by `fuzz/`): an error, never a panic.
pub fn decode_request(api_key: ApiKey, version: i16, frame: &mut Bytes) -> Result<(RequestHeader, RequestKind), String> {
    let header = RequestHeader::decode(frame, api_key.request_header_version(version))
        .map_err(|e| format!("cannot decode {api_key:?} v{version} request header: {e:#}"))?;
    let request =
        RequestKind::decode(api_key, frame, version).map_err(|e| format!("cannot decode {api_key:?} v{version} request: {e:#}"))?;
    Ok((header, request))
}

fn ready(outcome: Outcome) -> BoxFuture<'static, Outcome> {
    Box::pin(std::future::ready(outcome))
}

/// Encodes size prefix, response header and body into one frame.
fn encode_frame(api_key: ApiKey, version: i16, correlation_id: i32, response: &ResponseKind) -> Result<Bytes, String> {
    let mut out = BytesMut::with_capacity(256);
    out.put_i32(0); // patched below
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    header
        .encode(&mut out, api_key.response_header_version(version))
        .map_err(|e| format!("cannot encode {api_key:?} v{version} response header: {e:#}"))?;
    response.encode(&mut out, version).map_err(|e| format!("cannot encode {api_key:?} v{version} response: {e:#}"))?;
    let size =
        i32::try_from(out.len() - SIZE_PREFIX_BYTES).map_err(|_| format!("{api_key:?} response of {} bytes is too large", out.len()))?;
    out[..SIZE_PREFIX_BYTES].copy_from_slice(&size.to_be_bytes());
    Ok(out.freeze())
}
