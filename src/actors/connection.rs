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

use crate::handlers::context::Broker;
use crate::handlers::produce_order::ProduceOrder;
use crate::handlers::{self, Decoded};
use crate::protocol::frame::{take_frame, FrameError};
use bytes::BytesMut;
use futures::stream::FuturesOrdered;
use futures::{FutureExt, StreamExt};
use kafka_protocol::messages::ApiKey;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{watch, OwnedSemaphorePermit};

/// What a connection needs.
pub struct ConnectionArgs {
    pub socket: TcpStream,
    pub broker: Arc<dyn Broker>,
    /// Becomes true when the broker shuts down.
    pub shutdown: watch::Receiver<bool>,
    /// Held for the connection's life (bounds connections).
    pub permit: OwnedSemaphorePermit,
}

/// Serves one client connection in a task of its own, until the client or the broker closes
/// it. A panic anywhere in it closes this connection only (counted, logged); the permit goes
/// back to the listener's bound either way.
pub fn spawn_connection(args: ConnectionArgs) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        metrics::gauge!(crate::observability::CONNECTIONS).increment(1.0);
        let peer = args.socket.peer_addr().ok();
        let served = std::panic::AssertUnwindSafe(serve(args.socket, args.broker, args.shutdown));
        match served.catch_unwind().await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(?peer, error = %e, "connection closed"),
            Err(_) => {
                metrics::counter!(crate::observability::CONNECTION_PANICS, "api" => "none").increment(1);
                tracing::error!(?peer, "a connection's I/O loop panicked; closed it");
            }
        }
        metrics::gauge!(crate::observability::CONNECTIONS).decrement(1.0);
        drop(args.permit);
    })
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

/// The connection loop.
async fn serve(socket: TcpStream, broker: Arc<dyn Broker>, mut shutdown: watch::Receiver<bool>) -> std::io::Result<()> {
    let _ = socket.set_nodelay(true);
    let (mut rd, mut wr) = socket.into_split();
    let max_frame = broker.config().socket_request_max_bytes;
    let max_inflight = broker.config().max_inflight_requests_per_connection;
    let max_inflight_bytes = broker.config().connection_max_inflight_bytes;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    // Each in-flight request yields its response and the size of its request frame.
    let mut inflight: FuturesOrdered<InFlight> = FuturesOrdered::new();
    let mut inflight_bytes = 0usize;
    // Produce requests hand their batches to partitions in the order they were read.
    let mut produce_order = ProduceOrder::default();
    let redirect_grace = std::time::Duration::from_millis(broker.config().connections_redirect_grace_ms);
    let mut reading = !*shutdown.borrow();
    // Set by a Metadata answer that sends the client elsewhere: the connection closes once the
    // client has been quiet for `redirect_grace`. Closing at once lost the answers to requests
    // the client had pipelined behind it (librdkafka sends its own Metadata request and the
    // application's back to back; the second failed with a transport error).
    let mut redirected = false;
    loop {
        // Take every whole frame already buffered, up to the in-flight bounds (a first request
        // is always taken, whatever its size up to the frame bound).
        while reading && inflight.len() < max_inflight && (inflight.is_empty() || inflight_bytes < max_inflight_bytes) {
            match take_frame(&mut buf, max_frame) {
                Ok(Some(frame)) => match handlers::decode(frame.clone()) {
                    Decoded::Request(mut req) => {
                        if req.api_key == ApiKey::Produce {
                            req.produce_turn = Some(produce_order.next_turn());
                        }
                        let size = frame.len();
                        inflight_bytes += size;
                        inflight.push_back(handle_caught(broker.clone(), *req, size));
                    }
                    Decoded::Respond(bytes) => {
                        let reply = handlers::Reply {
                            bytes: Some(bytes),
                            then_close: false,
                        };
                        inflight.push_back(futures::future::ready((Ok(reply), 0)).boxed())
                    }
                    Decoded::Close(why) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, why)),
                },
                Ok(None) => break,
                Err(FrameError::BadLength(n)) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("bad frame length {n}"),
                    ));
                }
            }
        }
        if !reading && inflight.is_empty() {
            wr.shutdown().await.ok();
            return Ok(());
        }
        tokio::select! {
            Some((resp, size)) = inflight.next(), if !inflight.is_empty() => {
                inflight_bytes -= size;
                let reply = resp.map_err(std::io::Error::other)?;
                if let Some(bytes) = reply.bytes {
                    wr.write_all(&bytes).await?;
                }
                // The latest answer decides: a node that recovered keeps its connections.
                redirected = reply.then_close;
            }
            r = rd.read_buf(&mut buf),
                if reading && inflight.len() < max_inflight && (inflight.is_empty() || inflight_bytes < max_inflight_bytes) => {
                if r? == 0 {
                    reading = false;
                }
            }
            _ = shutdown.changed(), if reading => {
                reading = false;
            }
            // Re-armed on every loop turn: it fires only after the client was quiet that long.
            _ = tokio::time::sleep(redirect_grace), if redirected && reading && inflight.is_empty() && buf.is_empty() => {
                tracing::debug!("closing a client's connection after Metadata: cut off or disk full");
                reading = false;
            }
        }
    }
}
