//! A Kafka listener: accepts connections (at most `max.connections` at once over every
//! listener) and serves each in a task of its own (`connection::spawn_connection`), over TLS
//! on a TLS listener. A node-wide task: if its accept loop panics, the node stops
//! (`crate::tasks`).

use crate::actors::connection::{spawn_connection, ConnectionArgs};
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
    } = args;
    crate::tasks::spawn_essential("listener-accept", async move {
        loop {
            let permit = tokio::select! {
                p = connections.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
                _ = shutdown.changed() => return,
            };
            let socket = tokio::select! {
                r = listener.accept() => match r {
                    Ok((s, _)) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                },
                _ = shutdown.changed() => return,
            };
            spawn_connection(ConnectionArgs {
                socket,
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
