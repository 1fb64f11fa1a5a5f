//! The broker: root supervisor. Starts the committer, the controller (which replays cluster
//! metadata), the partition supervisor and the listener, and runs the graceful shutdown:
//! hand leaderships over, stop accepting, drain connections, stop partitions, final fsync.

use crate::actors::ask::ask;
use crate::actors::broker_start::{
    bind_kafka_ports, bootstrap_users, join_as_cluster_node, log_started, start_committer, start_controller,
    start_coordinator, start_http, start_listeners, start_partitions, Shared,
};
use crate::actors::committer::CommitterMsg;
use crate::actors::controller::actor::ControllerMsg;
use crate::actors::controller::boot::start_transport;
use crate::actors::node::Node;
use crate::actors::partition::registry::Registry;
use crate::actors::partition::supervisor::SupervisorMsg;
use crate::config::Config;
use crate::storage::node_meta::NodeMeta;
use crate::types::NodeInfo;
use parking_lot::Mutex;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};

/// What the broker needs to start.
pub struct BrokerArgs {
    pub config: Arc<Config>,
    pub identity: NodeMeta,
    /// Set to the reason when the broker stops because a child failed.
    pub failure: Arc<Mutex<Option<String>>>,
    /// The metrics recorder to render at `/metrics`.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// Set once the broker serves: where it listens, and its cluster id.
    pub bound: Arc<std::sync::OnceLock<(crate::server::BoundAddrs, String)>>,
}

/// Messages the broker takes.
pub enum BrokerMsg {
    /// Graceful shutdown; answered when done.
    Shutdown(RpcReplyPort<()>),
    /// A node-wide task panicked (`crate::tasks`): stop as when a child actor fails.
    TaskFailed(String),
    /// Debug-build test hook: make every partition actor panic (supervision tests).
    #[cfg(debug_assertions)]
    CrashPartitions,
}

/// Broker state.
pub struct BrokerState {
    config: Arc<Config>,
    committer: ActorRef<CommitterMsg>,
    controller: ActorRef<ControllerMsg>,
    supervisor: ActorRef<SupervisorMsg>,
    /// The accept loop (a node-wide task).
    /// One accept loop per Kafka listener.
    listeners: Vec<tokio::task::JoinHandle<()>>,
    /// Re-reads changed TLS files (TLS listeners only).
    tls_reload: Option<tokio::task::JoinHandle<()>>,
    /// The health and metrics endpoint (a node-wide task), unless `http.listen` is empty.
    http: Option<tokio::task::JoinHandle<()>>,
    registry: Arc<Registry>,
    connections: Arc<Semaphore>,
    shutdown: watch::Sender<bool>,
    failure: Arc<Mutex<Option<String>>>,
    stopping: bool,
    /// The node-to-node server (multi-node clusters only).
    cluster_server: Option<tokio::task::JoinHandle<()>>,
    /// What peers reach on this node (multi-node clusters only): told when it shuts down.
    routes: Option<Arc<crate::actors::controller::routes::ClusterRoutes>>,
    /// Failed partitions being stopped, handed over and restarted (`SupervisorArgs::handovers`).
    handovers: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    /// The node pinger, the partition elector and the disk monitor.
    failure_detection: Vec<tokio::task::JoinHandle<()>>,
}

/// The broker actor.
pub struct Broker;

impl Actor for Broker {
    type Msg = BrokerMsg;
    type State = BrokerState;
    type Arguments = BrokerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<BrokerMsg>,
        args: BrokerArgs,
    ) -> Result<BrokerState, ActorProcessingErr> {
        let cfg = args.config.clone();
        let mut shared = Shared::new(&cfg);
        let (committer, sink) = start_committer(&myself, &cfg, &shared).await?;
        // Health first: while a cluster node waits for its peers it is live, not ready.
        let http = start_http(&cfg, args.metrics.clone(), &shared).await?;
        let transport = start_transport(&cfg, shared.registry.clone(), &args.identity).await?;
        let peers = transport.as_ref().map(|t| t.peers.clone());
        let controller = start_controller(&myself, &cfg, &sink, &mut shared, &transport).await?;
        let mut cluster = join_as_cluster_node(&cfg, &controller, &shared, &transport, &args.identity).await?;
        let partitions = start_partitions(&myself, &cfg, sink, &shared, peers.clone(), &mut cluster).await?;
        let coordinator = start_coordinator(&myself, &cfg, &shared).await?;
        bootstrap_users(&cfg, &controller.actor, &shared).await?;
        let bound = bind_kafka_ports(&cfg, &controller.actor, &shared, transport.is_some()).await?;
        let told: Vec<_> = bound
            .iter()
            .map(|l| (l.protocol, l.bound, l.host.clone(), l.port))
            .collect();
        let (_, first_bound, first_host, first_port) = told.first().cloned().ok_or("no Kafka listener")?;
        let node = Arc::new(Node {
            config: cfg.clone(),
            info: NodeInfo {
                node_id: cfg.node_id,
                cluster_id: cluster.identity.cluster_id.clone(),
                advertised_host: first_host,
                advertised_port: first_port,
                listeners: told
                    .iter()
                    .map(|(p, _, h, port)| (p.name().to_string(), (h.clone(), *port)))
                    .collect(),
            },
            registry: shared.registry.clone(),
            meta: shared.meta.clone(),
            controller: controller.actor.clone(),
            producer_ids: Default::default(),
            coordinator,
            peers,
            controller_leader: controller.leader,
            disk: shared.disk.clone(),
        });
        let listener = start_listeners(&cfg, bound, node)?;
        shared.started.store(true, Ordering::Release);
        let addrs = crate::server::BoundAddrs {
            kafka: first_bound,
            listeners: told.iter().map(|(p, bound, _, _)| (*p, *bound)).collect(),
            http: http.as_ref().map(|(_, addr)| *addr),
        };
        let _ = args.bound.set((addrs, cluster.identity.cluster_id.clone()));
        log_started(&cfg, &told, &cluster.identity.cluster_id);
        let mut failure_detection = partitions.tasks;
        failure_detection.push(forward_task_failures(myself.clone()));
        Ok(BrokerState {
            config: cfg,
            committer,
            controller: controller.actor,
            supervisor: partitions.supervisor,
            listeners: listener.listeners,
            tls_reload: listener.tls_reload,
            http: http.map(|(task, _)| task),
            registry: shared.registry,
            connections: listener.connections,
            shutdown: listener.shutdown,
            failure: args.failure,
            stopping: false,
            routes: transport.as_ref().map(|t| t.routes.clone()),
            cluster_server: transport.map(|t| t.server),
            failure_detection,
            handovers: partitions.handovers,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<BrokerMsg>,
        msg: BrokerMsg,
        st: &mut BrokerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            BrokerMsg::Shutdown(reply) => {
                st.stopping = true;
                graceful_shutdown(st).await;
                let _ = reply.send(());
                myself.stop(None);
            }
            BrokerMsg::TaskFailed(reason) if !st.stopping => fail(&myself, st, reason).await,
            BrokerMsg::TaskFailed(_) => {}
            #[cfg(debug_assertions)]
            BrokerMsg::CrashPartitions => {
                for (tp, h) in st.registry.all() {
                    tracing::warn!(topic = %tp.topic, partition = tp.partition, "test hook: crashing partition actor");
                    let _ = h
                        .actor
                        .send_message(crate::actors::partition::actor::PartitionMsg::Crash);
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<BrokerMsg>,
        evt: SupervisionEvent,
        st: &mut BrokerState,
    ) -> Result<(), ActorProcessingErr> {
        match evt {
            SupervisionEvent::ActorFailed(cell, err) => {
                let name = cell.get_name().unwrap_or_else(|| cell.get_id().to_string());
                fail(&myself, st, format!("{name} failed: {err}")).await;
            }
            SupervisionEvent::ActorTerminated(cell, _, _) if !st.stopping => {
                let name = cell.get_name().unwrap_or_default();
                fail(&myself, st, format!("{name} stopped unexpectedly")).await;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Stops the broker after a failure it cannot heal (exit 1).
async fn fail(myself: &ActorRef<BrokerMsg>, st: &mut BrokerState, reason: String) {
    tracing::error!("{reason}; stopping the broker");
    *st.failure.lock() = Some(reason);
    graceful_shutdown(st).await;
    myself.stop(None);
}

/// Sends the broker the first node-wide task failure after its start
/// (`crate::tasks::spawn_essential`); aborted at shutdown.
fn forward_task_failures(broker: ActorRef<BrokerMsg>) -> tokio::task::JoinHandle<()> {
    let mut failures = crate::tasks::failures();
    let before = failures.borrow().as_ref().map(|(n, _)| *n);
    tokio::spawn(async move {
        let newer = failures.wait_for(|f| f.as_ref().map(|(n, _)| *n) != before).await;
        let reason = newer.ok().and_then(|f| f.as_ref().map(|(_, why)| why.clone()));
        if let Some(reason) = reason {
            let _ = broker.send_message(BrokerMsg::TaskFailed(reason));
        }
    })
}

/// Hand the leaderships held here to other replicas, stop accepting, let connections finish
/// in-flight requests (bounded), stop partitions and the controller, and make everything
/// durable.
async fn graceful_shutdown(st: &mut BrokerState) {
    st.stopping = true;
    let timeout = Duration::from_millis(st.config.shutdown_timeout_ms);
    if let Some(routes) = &st.routes {
        routes.set_leaving();
    }
    crate::actors::partition::handoff::hand_all_away(&st.registry, timeout).await;
    let stopped: Vec<_> = st.handovers.lock().drain(..).collect();
    let _ = tokio::time::timeout(timeout, futures::future::join_all(stopped)).await;
    let _ = st.shutdown.send(true);
    for listener in &st.listeners {
        listener.abort();
    }
    if let Some(reload) = &st.tls_reload {
        reload.abort();
    }
    let all = st.config.max_connections.max(1) as u32;
    if tokio::time::timeout(timeout, st.connections.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("connections still busy after {timeout:?}; closing them");
    }
    for task in st.failure_detection.drain(..) {
        task.abort();
    }
    let _ = ask(&st.supervisor, |r| SupervisorMsg::StopAll(r.into()), Some(timeout)).await;
    st.supervisor.stop(None);
    if let Some(http) = &st.http {
        http.abort();
    }
    st.controller.stop(None);
    if let Some(server) = st.cluster_server.take() {
        server.abort();
    }
    let _ = ask(&st.committer, |r| CommitterMsg::SyncAll(r.into()), Some(timeout)).await;
    tracing::info!(partitions_left = st.registry.all().len(), "shutdown complete");
}
