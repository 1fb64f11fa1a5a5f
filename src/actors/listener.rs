//! The listener: accepts Kafka connections (at most `max.connections` at once) and starts a
//! connection actor, linked to it, for each.

use crate::actors::connection::{Connection, ConnectionArgs};
use crate::handlers::context::Broker;
use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// What the listener needs.
pub struct ListenerArgs {
    pub listener: TcpListener,
    pub broker: Arc<dyn Broker>,
    pub shutdown: watch::Receiver<bool>,
    /// One permit per allowed connection; the broker waits for all of them at shutdown.
    pub connections: Arc<Semaphore>,
}

/// Messages the listener takes (none: it works in its accept task).
pub enum ListenerMsg {}

/// The listener actor.
pub struct Listener;

/// Listener state: the accept task and the connection bound.
pub struct ListenerState {
    accept_task: tokio::task::JoinHandle<()>,
    /// Connections hold permits; all permits back means all connections are gone.
    pub connections: Arc<Semaphore>,
}

impl Actor for Listener {
    type Msg = ListenerMsg;
    type State = ListenerState;
    type Arguments = ListenerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<ListenerMsg>,
        args: ListenerArgs,
    ) -> Result<ListenerState, ActorProcessingErr> {
        let connections = args.connections.clone();
        let limit = connections.clone();
        let ListenerArgs {
            listener,
            broker,
            mut shutdown,
            ..
        } = args;
        let accept_task = crate::tasks::spawn_essential("listener-accept", async move {
            loop {
                let permit = tokio::select! {
                    p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
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
                let args = ConnectionArgs {
                    socket,
                    broker: broker.clone(),
                    shutdown: shutdown.clone(),
                    permit,
                };
                if let Err(e) = Actor::spawn_linked(None, Connection, args, myself.get_cell()).await {
                    tracing::warn!(error = %e, "could not start a connection actor");
                }
            }
        });
        Ok(ListenerState {
            accept_task,
            connections,
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<ListenerMsg>,
        st: &mut ListenerState,
    ) -> Result<(), ActorProcessingErr> {
        st.accept_task.abort();
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<ListenerMsg>,
        evt: SupervisionEvent,
        _st: &mut ListenerState,
    ) -> Result<(), ActorProcessingErr> {
        // A connection that fails affects only its client.
        if let SupervisionEvent::ActorFailed(_, err) = evt {
            tracing::debug!(error = %err, "connection actor failed");
        }
        Ok(())
    }
}
