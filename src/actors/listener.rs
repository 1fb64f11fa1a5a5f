//! A Kafka listener: accepts connections (at most `max.connections` at once over every
//! listener) and serves each in a task of its own (`connection::spawn_connection`), over TLS
//! on a TLS listener. A node-wide task: if its accept loop panics, the node stops
//! (`crate::tasks`).

use crate::actors::connection::{spawn_connection, ConnectionArgs};
use crate::actors::connection_limits::ConnectionLimits;
use crate::handlers::context::Broker;
use crate::security::tls::TlsServer;
use crate::security::SecurityProtocol;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

/// What a listener needs.
pub struct ListenerArgs {
    pub listener: TcpListener,
    /// Its security protocol (its name).
    pub protocol: SecurityProtocol,
    /// The TLS material, on a TLS listener.
    pub tls: Option<Arc<TlsServer>>,
    /// A TLS handshake not done within this long closes the connection.
    pub handshake_timeout: Duration,
    pub broker: Arc<dyn Broker>,
    pub shutdown: watch::Receiver<bool>,
    /// One permit per allowed connection; the broker waits for all of them at shutdown.
    pub connections: Arc<Semaphore>,
    /// Per-address and unauthenticated-connection limits, shared by every listener.
    pub limits: Arc<ConnectionLimits>,
}

/// Accepts connections until the broker shuts down.
pub fn spawn_listener(args: ListenerArgs) -> JoinHandle<()> {
    let ListenerArgs {
        listener,
        protocol,
        tls,
        handshake_timeout,
        broker,
        mut shutdown,
        connections,
        limits,
    } = args;
    crate::tasks::spawn_essential("listener-accept", async move {
        loop {
            let permit = tokio::select! {
                p = connections.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
                _ = shutdown.changed() => return,
            };
            let (socket, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                },
                _ = shutdown.changed() => return,
            };
            let Some(ip_slot) = limits.admit(peer.ip()) else {
                metrics::counter!(crate::observability::CONNECTIONS_REFUSED, "why" => "per_ip").increment(1);
                continue;
            };
            // TLS and SASL connections hold a place among those authenticating until done.
            let authenticating = if protocol.tls() || protocol.sasl() {
                match limits.authenticating() {
                    Some(place) => Some(place),
                    None => {
                        metrics::counter!(crate::observability::CONNECTIONS_REFUSED, "why" => "unauthenticated")
                            .increment(1);
                        continue;
                    }
                }
            } else {
                None
            };
            spawn_connection(ConnectionArgs {
                socket,
                ip_slot,
                authenticating,
                limits: limits.clone(),
                broker: broker.clone(),
                shutdown: shutdown.clone(),
                permit,
                protocol,
                // The current material: a rotated certificate applies from the next accept.
                tls: tls.as_ref().map(|t| t.acceptor()),
                handshake_timeout,
            });
        }
    })
}
