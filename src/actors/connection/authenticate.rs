//! The SASL exchange at the start of a connection on a SASL listener. Until it succeeds only
//! ApiVersions, SaslHandshake and SaslAuthenticate are read, one at a time; any other request
//! closes the connection without an answer (as Kafka does). SaslHandshake v1 carries the
//! tokens in SaslAuthenticate requests; after v0 they come as raw length-prefixed frames. A
//! failed exchange is answered (SASL_AUTHENTICATION_FAILED, the same message whatever was
//! wrong) after `connection.failed.authentication.delay.ms`, doubled for each recent failure
//! from the same address up to a bound, and the connection closes.

use crate::actors::connection_limits::ConnectionLimits;
use crate::handlers::context::Broker;
use crate::handlers::{self, Body, Decoded};
use crate::protocol::frame::{take_frame, take_sized, FrameError};
use crate::security::sasl::{parse_mechanisms, AuthFailure, Exchange, Progress, SaslMechanism};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, SaslAuthenticateResponse, SaslHandshakeResponse};
use kafka_protocol::protocol::StrBytes;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest frame read before authentication (Kafka's `sasl.server.max.receive.size`):
/// an unauthenticated client cannot make the broker hold more.
const MAX_RECEIVE_BYTES: i32 = 512 * 1024;

/// Where the exchange is.
enum State {
    /// Waiting for SaslHandshake.
    Handshake,
    /// Handshake v1 done: tokens come in SaslAuthenticate requests.
    Framed(Exchange),
    /// Handshake v0 done: tokens come as raw frames.
    Raw(Exchange),
}

/// Runs the exchange within `connections.authentication.timeout.ms`; the authenticated user,
/// or why the connection closes.
pub(super) async fn authenticate<R, W>(
    rd: &mut R,
    wr: &mut W,
    buf: &mut BytesMut,
    broker: &Arc<dyn Broker>,
    client: (&ConnectionLimits, IpAddr),
) -> std::io::Result<String>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let timeout = Duration::from_millis(broker.config().connections_authentication_timeout_ms);
    let outcome = match tokio::time::timeout(timeout, exchange(rd, wr, buf, broker, client)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(closed("authentication timed out")),
    };
    let result = if outcome.is_ok() { "ok" } else { "failed" };
    metrics::counter!(crate::observability::SASL_AUTHENTICATIONS, "result" => result).increment(1);
    outcome
}

/// What answering one client message decided.
enum Next {
    /// Wait for the client's next message.
    Continue,
    /// Authenticated as this user.
    Authenticated(String),
    /// Refused: the answer goes out after the failure delay, then the connection closes.
    Refused(String),
}

async fn exchange<R, W>(
    rd: &mut R,
    wr: &mut W,
    buf: &mut BytesMut,
    broker: &Arc<dyn Broker>,
    (limits, ip): (&ConnectionLimits, IpAddr),
) -> std::io::Result<String>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let cfg = broker.config();
    let offered = parse_mechanisms(&cfg.sasl_enabled_mechanisms).map_err(|e| closed(&e.to_string()))?;
    let failure_delay = Duration::from_millis(cfg.connection_failed_authentication_delay_ms);
    let mut state = State::Handshake;
    loop {
        let raw = matches!(state, State::Raw(_));
        let frame = next_frame(rd, buf, cfg.socket_request_max_bytes.min(MAX_RECEIVE_BYTES), raw).await?;
        let (answer, next) = match &mut state {
            State::Raw(exchange) => raw_step(exchange, &frame, broker),
            _ => match handlers::decode(frame) {
                Decoded::Request(req) if req.api_key == ApiKey::ApiVersions => {
                    let reply = handlers::handle(broker.clone(), *req).await.map_err(|e| closed(&e))?;
                    (reply.bytes, Next::Continue)
                }
                Decoded::Request(req) => answer_request(*req, &mut state, &offered, broker)?,
                // An ApiVersions newer than served: its v0 answer (KIP-511).
                Decoded::Respond(bytes) => (Some(bytes), Next::Continue),
                _ => (None, Next::Refused("a frame that is not a request".into())),
            },
        };
        match next {
            Next::Refused(_) => tokio::time::sleep(limits.failed(ip, failure_delay)).await,
            Next::Authenticated(_) => limits.succeeded(ip),
            Next::Continue => {}
        }
        if let Some(bytes) = answer {
            wr.write_all(&bytes).await?;
        }
        match next {
            Next::Continue => {}
            Next::Authenticated(user) => return Ok(user),
            Next::Refused(why) => return Err(closed(&why)),
        }
    }
}

/// A raw token after SaslHandshake v0: the raw answer (none for a failure: Kafka closes).
fn raw_step(exchange: &mut Exchange, token: &[u8], broker: &Arc<dyn Broker>) -> (Option<Bytes>, Next) {
    match step(exchange, token, broker) {
        Ok(Progress::Challenge(token)) => (Some(raw_frame(&token)), Next::Continue),
        Ok(Progress::Authenticated { user, last }) => (Some(raw_frame(&last)), Next::Authenticated(user)),
        Err(failure) => (None, Next::Refused(failure.to_string())),
    }
}

/// SaslHandshake or SaslAuthenticate in their place; any other request is refused unanswered.
fn answer_request(
    req: handlers::Request,
    state: &mut State,
    offered: &[SaslMechanism],
    broker: &Arc<dyn Broker>,
) -> std::io::Result<(Option<Bytes>, Next)> {
    let (key, version, correlation_id) = (req.api_key, req.version, req.header.correlation_id);
    let encode = |body: &dyn EncodeAs| body.encode_as(key, correlation_id, version).map(Some);
    Ok(match (req.body, &mut *state) {
        (Body::SaslHandshake(h), State::Handshake) => {
            let names: Vec<StrBytes> = offered.iter().map(|m| StrBytes::from_static_str(m.name())).collect();
            match SaslMechanism::from_name(&h.mechanism).filter(|m| offered.contains(m)) {
                Some(mechanism) => {
                    let exchange = Exchange::new(mechanism);
                    *state = if version == 0 {
                        State::Raw(exchange)
                    } else {
                        State::Framed(exchange)
                    };
                    (
                        encode(&SaslHandshakeResponse::default().with_mechanisms(names))?,
                        Next::Continue,
                    )
                }
                None => {
                    let refused = SaslHandshakeResponse::default()
                        .with_error_code(ResponseError::UnsupportedSaslMechanism.code())
                        .with_mechanisms(names);
                    (encode(&refused)?, Next::Refused("unsupported SASL mechanism".into()))
                }
            }
        }
        (Body::SaslAuthenticate(a), State::Framed(exchange)) => {
            let (resp, next) = match step(exchange, &a.auth_bytes, broker) {
                Ok(Progress::Challenge(token)) => (
                    SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(token)),
                    Next::Continue,
                ),
                Ok(Progress::Authenticated { user, last }) => (
                    SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(last)),
                    Next::Authenticated(user),
                ),
                Err(failure) => (
                    SaslAuthenticateResponse::default()
                        .with_error_code(ResponseError::SaslAuthenticationFailed.code())
                        .with_error_message(Some(StrBytes::from_string(failure.to_string()))),
                    Next::Refused(failure.to_string()),
                ),
            };
            (encode(&resp)?, next)
        }
        _ => (None, Next::Refused(format!("{key:?} before authentication"))),
    })
}

/// Steps `exchange` against the replicated credentials.
fn step(exchange: &mut Exchange, token: &[u8], broker: &Arc<dyn Broker>) -> Result<Progress, AuthFailure> {
    let meta = broker.metadata();
    exchange.step(token, &meta.scram, &meta.sasl_secret)
}

/// A response body that encodes as a response frame of the request it answers.
trait EncodeAs {
    fn encode_as(&self, key: ApiKey, correlation_id: i32, version: i16) -> std::io::Result<Bytes>;
}

impl<T: kafka_protocol::protocol::Encodable> EncodeAs for T {
    fn encode_as(&self, key: ApiKey, correlation_id: i32, version: i16) -> std::io::Result<Bytes> {
        handlers::encode_response(key, correlation_id, version, self).map_err(|e| closed(&e.to_string()))
    }
}

/// The next whole frame (a request, or a raw SASL token after SaslHandshake v0), reading as
/// needed; end of stream or a broken frame is an error.
async fn next_frame<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    max_frame_bytes: i32,
    raw: bool,
) -> std::io::Result<Bytes> {
    loop {
        let taken = if raw {
            take_sized(buf, 0, max_frame_bytes)
        } else {
            take_frame(buf, max_frame_bytes)
        };
        match taken {
            Ok(Some(frame)) => return Ok(frame),
            Ok(None) => {}
            Err(FrameError::BadLength(n)) => return Err(closed(&format!("bad frame length {n}"))),
        }
        if rd.read_buf(buf).await? == 0 {
            return Err(closed("the client closed the connection during authentication"));
        }
    }
}

/// A raw SASL token's frame (after SaslHandshake v0): its length, then the bytes.
fn raw_frame(token: &[u8]) -> Bytes {
    let mut frame = BytesMut::with_capacity(4 + token.len());
    frame.put_i32(token.len() as i32);
    frame.put_slice(token);
    frame.freeze()
}

fn closed(why: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::PermissionDenied, why.to_string())
}
