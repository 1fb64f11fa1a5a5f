//! The listener: accepts Kafka connections (at most `max.connections` at once) and serves each
//! in a task of its own (`connection::spawn_connection`). A node-wide task: if its accept loop
//! panics, the node stops (`crate::tasks`).

use crate::actors::connection::{spawn_connection, ConnectionArgs};
use crate::handlers::context::Broker;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

/// What the listener needs.
pub struct ListenerArgs {
    pub listener: TcpListener,
    pub broker: Arc<dyn Broker>,
    pub shutdown: watch::Receiver<bool>,
    /// One permit per allowed connection; the broker waits for all of them at shutdown.
    pub connections: Arc<Semaphore>,
}

/// Accepts connections until the broker shuts down.
pub fn spawn_listener(args: ListenerArgs) -> JoinHandle<()> {
    let ListenerArgs {
        listener,
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
            });
        }
    })
}
