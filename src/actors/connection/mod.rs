//! A client connection: one task per socket. It reads frames (bounded by
//! `socket.request.max.bytes`), decodes them, runs up to `max.inflight.requests.per.connection`
//! handlers at once and writes their responses strictly in request order; Produce requests
//! hand their batches to partitions in request order too. A broken frame closes
//! this connection and nothing else. On shutdown it stops reading, finishes what is in flight
//! and closes; so it does after a Metadata answer that sends the client elsewhere
//! (`handlers::metadata::send_elsewhere`), once the client has been quiet for
//! `connections.redirect.grace.ms`. A handler that panics closes this connection only: it is
//! counted (`raftstream_connection_panics_total`) and logged, and nothing else is harmed (the
//! locks it may have held cannot poison).

mod authenticate;

use crate::handlers::context::Broker;
use crate::handlers::produce_order::ProduceOrder;
use crate::handlers::{self, Decoded, Session};
use crate::protocol::frame::{take_frame, FrameError};
use crate::security::SecurityProtocol;
use bytes::BytesMut;
use futures::stream::FuturesOrdered;
use futures::{FutureExt, StreamExt};
use kafka_protocol::messages::ApiKey;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{watch, OwnedSemaphorePermit};
use tokio_rustls::TlsAcceptor;

/// What a connection needs.
pub struct ConnectionArgs {
    /// The accepted socket.
    pub socket: TcpStream,
    /// What requests are served against.
    pub broker: Arc<dyn Broker>,
    /// Becomes true when the broker shuts down.
    pub shutdown: watch::Receiver<bool>,
    /// Held for the connection's life (bounds connections).
    pub permit: OwnedSemaphorePermit,
    /// Its client address's slot, held for the connection's life.
    pub ip_slot: crate::actors::connection_limits::IpSlot,
    /// A place among connections still authenticating (TLS or SASL), freed once done.
    pub authenticating: Option<OwnedSemaphorePermit>,
    /// The node's limits (a failed authentication is answered later the more its address
    /// failed recently).
    pub limits: Arc<crate::actors::connection_limits::ConnectionLimits>,
    /// The listener's security protocol.
    pub protocol: SecurityProtocol,
    /// The TLS acceptor of a TLS listener.
    pub tls: Option<TlsAcceptor>,
    /// A TLS handshake not done within this long closes the connection.
    pub handshake_timeout: Duration,
}

/// Serves one client connection in a task of its own, until the client or the broker closes
/// it. A panic anywhere in it closes this connection only (counted, logged); the permit goes
/// back to the listener's bound either way.
pub fn spawn_connection(args: ConnectionArgs) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        metrics::gauge!(crate::observability::CONNECTIONS).increment(1.0);
        let peer = args.socket.peer_addr().ok();
        let (permit, ip_slot) = (args.permit, args.ip_slot);
        let opened = Opened {
            protocol: args.protocol,
            tls: args.tls,
            handshake_timeout: args.handshake_timeout,
            authenticating: parking_lot::Mutex::new(args.authenticating),
            limits: args.limits,
            peer,
        };
        let served = std::panic::AssertUnwindSafe(opened.serve(args.socket, args.broker, args.shutdown));
        match served.catch_unwind().await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(?peer, error = %e, "connection closed"),
            Err(_) => {
                metrics::counter!(crate::observability::CONNECTION_PANICS, "api" => "none").increment(1);
                tracing::error!(?peer, "a connection's I/O loop panicked; closed it");
            }
        }
        metrics::gauge!(crate::observability::CONNECTIONS).decrement(1.0);
        drop((permit, ip_slot));
    })
}

/// How a connection's transport is set up: plain TCP, or a TLS handshake first.
struct Opened {
    protocol: SecurityProtocol,
    tls: Option<TlsAcceptor>,
    handshake_timeout: Duration,
    /// The place among connections still authenticating, freed once the TLS handshake and
    /// SASL exchange are done.
    authenticating: parking_lot::Mutex<Option<OwnedSemaphorePermit>>,
    limits: Arc<crate::actors::connection_limits::ConnectionLimits>,
    /// The client's address.
    peer: Option<std::net::SocketAddr>,
}

impl Opened {
    /// Sets the transport up and serves requests over it. A client that does not finish its
    /// TLS handshake in time (or speaks plaintext to a TLS port) is closed: counted, never
    /// served.
    async fn serve(
        self,
        socket: TcpStream,
        broker: Arc<dyn Broker>,
        shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<()> {
        let _ = socket.set_nodelay(true);
        let Some(acceptor) = self.tls.clone() else {
            let (rd, wr) = socket.into_split();
            return self.serve_over(rd, wr, None, broker, shutdown).await;
        };
        let stream = match tokio::time::timeout(self.handshake_timeout, acceptor.accept(socket)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(handshake_failed("failed", e)),
            Err(_) => return Err(handshake_failed("timed out", std::io::ErrorKind::TimedOut.into())),
        };
        let principal = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|certs| certs.first())
            .and_then(crate::security::tls::principal_of);
        let (rd, wr) = tokio::io::split(stream);
        self.serve_over(rd, wr, principal, broker, shutdown).await
    }

    /// Serves over an established transport: on a SASL listener, after the SASL exchange
    /// (whose user is the principal, over any client certificate's, as in Kafka).
    async fn serve_over<R, W>(
        &self,
        mut rd: R,
        mut wr: W,
        cert_principal: Option<String>,
        broker: Arc<dyn Broker>,
        shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<()>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let mut buf = BytesMut::with_capacity(64 * 1024);
        let session = if self.protocol.sasl() {
            let ip = self
                .peer
                .map(|p| p.ip())
                .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
            let user = authenticate::authenticate(&mut rd, &mut wr, &mut buf, &broker, (&self.limits, ip)).await?;
            Session {
                listener: self.protocol,
                principal: format!("User:{user}"),
                sasl_user: Some(user),
            }
        } else {
            Session {
                listener: self.protocol,
                principal: cert_principal.unwrap_or_else(|| handlers::ANONYMOUS.to_string()),
                sasl_user: None,
            }
        };
        self.authenticating.lock().take();
        serve(rd, wr, buf, broker, shutdown, session).await
    }
}

/// Counts a TLS handshake that did not complete, and says why.
fn handshake_failed(how: &'static str, e: std::io::Error) -> std::io::Error {
    metrics::counter!(crate::observability::TLS_HANDSHAKE_FAILURES, "how" => how).increment(1);
    std::io::Error::new(e.kind(), format!("TLS handshake {how}: {e}"))
}

/// A request being handled: resolves to its answer (or why the connection must close) and the
/// size of its request frame.
type InFlight = futures::future::BoxFuture<'static, (Result<handlers::Reply, String>, usize)>;

/// Runs one request's handler; a panic in it becomes an error that closes this connection.
fn handle_caught(broker: Arc<dyn Broker>, req: handlers::Request, size: usize) -> InFlight {
    let api = handlers::api_name(req.api_key);
    let handled = async move {
        crate::actors::broken_build::injected_handler_panic(req.header.client_id.as_deref());
        handlers::handle(broker, req).await
    };
    std::panic::AssertUnwindSafe(handled)
        .catch_unwind()
        .map(move |caught| {
            let reply = caught.unwrap_or_else(|_| {
                metrics::counter!(crate::observability::CONNECTION_PANICS, "api" => api).increment(1);
                tracing::error!(api, "a request handler panicked; closing its connection");
                Err(format!("the {api} handler panicked"))
            });
            (reply, size)
        })
        .boxed()
}

/// Requests read from one connection and not yet answered, answered in order.
struct InFlightRequests {
    /// Each yields its response and the size of its request frame.
    queue: FuturesOrdered<InFlight>,
    bytes: usize,
    max_requests: usize,
    max_bytes: usize,
    max_frame_bytes: i32,
    /// Produce requests hand their batches to partitions in the order they were read.
    produce_order: ProduceOrder,
    /// Who the connection serves; every request carries it.
    session: Arc<Session>,
}

impl InFlightRequests {
    /// Whether another request may be read (a first request is always taken, whatever its
    /// size up to the frame bound).
    fn has_room(&self) -> bool {
        self.queue.len() < self.max_requests && (self.queue.is_empty() || self.bytes < self.max_bytes)
    }

    /// Starts every whole frame already buffered, up to the in-flight bounds; `Err` for a
    /// broken frame, which closes the connection.
    fn take_buffered(&mut self, buf: &mut BytesMut, broker: &Arc<dyn Broker>) -> std::io::Result<()> {
        while self.has_room() {
            let frame = match take_frame(buf, self.max_frame_bytes) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(FrameError::BadLength(n)) => return Err(invalid(format!("bad frame length {n}"))),
            };
            match handlers::decode(frame.clone()) {
                Decoded::Request(mut req) => {
                    if req.api_key == ApiKey::Produce {
                        req.produce_turn = Some(self.produce_order.next_turn());
                    }
                    req.session = Some(self.session.clone());
                    self.bytes += frame.len();
                    self.queue.push_back(handle_caught(broker.clone(), *req, frame.len()));
                }
                Decoded::Respond(bytes) => {
                    let reply = handlers::Reply {
                        bytes: Some(bytes),
                        then_close: false,
                    };
                    self.queue.push_back(futures::future::ready((Ok(reply), 0)).boxed())
                }
                Decoded::Close(why) => return Err(invalid(why)),
            }
        }
        Ok(())
    }
}

fn invalid(why: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, why.into())
}

/// The connection loop.
async fn serve<R, W>(
    mut rd: R,
    mut wr: W,
    mut buf: BytesMut,
    broker: Arc<dyn Broker>,
    mut shutdown: watch::Receiver<bool>,
    session: Session,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let cfg = broker.config();
    let mut revocation = Revocation::of(&session);
    let mut requests = InFlightRequests {
        queue: FuturesOrdered::new(),
        bytes: 0,
        max_requests: cfg.max_inflight_requests_per_connection,
        max_bytes: cfg.connection_max_inflight_bytes,
        max_frame_bytes: cfg.socket_request_max_bytes,
        produce_order: ProduceOrder::default(),
        session: Arc::new(session),
    };
    let redirect_grace = std::time::Duration::from_millis(cfg.connections_redirect_grace_ms);
    let mut reading = !*shutdown.borrow();
    // Set by a Metadata answer that sends the client elsewhere: the connection closes once the
    // client has been quiet for `redirect_grace`. Closing at once lost the answers to requests
    // the client had pipelined behind it (librdkafka sends its own Metadata request and the
    // application's back to back; the second failed with a transport error).
    let mut redirected = false;
    loop {
        if reading {
            requests.take_buffered(&mut buf, &broker)?;
        }
        if !reading && requests.queue.is_empty() {
            wr.shutdown().await.ok();
            return Ok(());
        }
        let quiet = requests.queue.is_empty() && buf.is_empty();
        tokio::select! {
            // A SASL user deleted (AlterUserScramCredentials) loses its connections at once.
            _ = revocation.revoked(&broker) => {
                return Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, "the user's credentials were deleted"));
            }
            Some((resp, size)) = requests.queue.next(), if !requests.queue.is_empty() => {
                requests.bytes -= size;
                let reply = resp.map_err(std::io::Error::other)?;
                if let Some(bytes) = reply.bytes {
                    wr.write_all(&bytes).await?;
                }
                // The latest answer decides: a node that recovered keeps its connections.
                redirected = reply.then_close;
            }
            r = rd.read_buf(&mut buf), if reading && requests.has_room() => {
                if r? == 0 {
                    reading = false;
                }
            }
            _ = shutdown.changed(), if reading => {
                reading = false;
            }
            // Re-armed on every loop turn: it fires only after the client was quiet that long.
            _ = tokio::time::sleep(redirect_grace), if redirected && reading && quiet => {
                tracing::debug!("closing a client's connection after Metadata: cut off or disk full");
                reading = false;
            }
        }
    }
}

/// Watches whether the SASL user a connection authenticated as still has credentials.
struct Revocation {
    /// The user and the check's ticks; `None` for a connection without a SASL user.
    user: Option<(String, tokio::time::Interval)>,
}

/// How often a SASL connection checks its user still exists (a deleted user's connections
/// close within a second).
const REVOCATION_CHECK: Duration = Duration::from_millis(250);

impl Revocation {
    fn of(session: &Session) -> Revocation {
        let user = session.sasl_user.clone().map(|u| {
            let mut ticks = tokio::time::interval(REVOCATION_CHECK);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            (u, ticks)
        });
        Revocation { user }
    }

    /// Resolves once the user has no credential left; never for a connection without one.
    async fn revoked(&mut self, broker: &Arc<dyn Broker>) {
        let Some((user, ticks)) = &mut self.user else {
            return std::future::pending().await;
        };
        loop {
            ticks.tick().await;
            if !broker.metadata().scram.contains_key(user.as_str()) {
                return;
            }
        }
    }
}
