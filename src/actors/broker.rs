//! The broker: root supervisor. Starts the committer, the controller (which replays cluster
//! metadata), the partition supervisor and the listener, and runs the graceful shutdown:
//! hand leaderships over, stop accepting, drain connections, stop partitions, final fsync.

use crate::actors::ask::ask;
use crate::actors::committer::{Committer, CommitterArgs, CommitterHandle, CommitterMsg};
use crate::actors::controller::actor::{Controller, ControllerArgs, ControllerMsg};
use crate::actors::controller::boot::{
    await_applied, join_cluster, propose_at_boot, spawn_address_book, spawn_leader_reporter, spawn_liveness_recorder,
    start_transport,
};
use crate::actors::controller::group::GroupParts;
use crate::actors::group::coordinator::{CoordinatorArgs, GroupCoordinator};
use crate::actors::group::store::StoreConfig;
use crate::actors::http::{Http, HttpArgs, HttpMsg, HttpState};
use crate::actors::listener::{Listener, ListenerArgs, ListenerMsg};
use crate::actors::node::Node;
use crate::actors::partition::elector::{spawn_elector, ElectorConfig};
use crate::actors::partition::env::PartitionEnv;
use crate::actors::partition::registry::Registry;
use crate::actors::partition::reports::LeaderReports;
use crate::actors::partition::supervisor::{PartitionSupervisor, SupervisorArgs, SupervisorMsg};
use crate::cluster::liveness::spawn_pinger;
use crate::cluster::network::Peers;
use crate::cluster::{partition_raft_config, raft_config};
use crate::config::{Config, Durability};
use crate::storage::disk_guard::DiskGuard;
use crate::storage::log::LogConfig;
use crate::storage::meta_sm::{ClusterMeta, MetaCommand};
use crate::storage::node_meta::NodeMeta;
use crate::types::NodeInfo;
use parking_lot::{Mutex, RwLock};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// What the broker needs to start.
pub struct BrokerArgs {
    pub config: Arc<Config>,
    pub identity: NodeMeta,
    /// Set to the reason when the broker stops because a child failed.
    pub failure: Arc<Mutex<Option<String>>>,
    /// The metrics recorder to render at `/metrics`.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
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

/// A partition not appended to for this long trims its tail cache back to
/// `log.tail.cache.bytes`.
const TAIL_IDLE: Duration = Duration::from_secs(1);

/// Broker state.
pub struct BrokerState {
    config: Arc<Config>,
    committer: ActorRef<CommitterMsg>,
    controller: ActorRef<ControllerMsg>,
    supervisor: ActorRef<SupervisorMsg>,
    listener: ActorRef<ListenerMsg>,
    http: Option<ActorRef<HttpMsg>>,
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

/// Starts `/health` and `/metrics` (unless `http.listen` is empty); `/health/ready` answers
/// 503 until `started` is set.
async fn start_http(
    myself: &ActorRef<BrokerMsg>,
    cfg: &Config,
    args: &BrokerArgs,
    registry: Arc<Registry>,
    meta: Arc<RwLock<Arc<ClusterMeta>>>,
    started: Arc<AtomicBool>,
) -> Result<Option<ActorRef<HttpMsg>>, ActorProcessingErr> {
    if cfg.http_listen.is_empty() {
        return Ok(None);
    }
    let http_tcp = TcpListener::bind(&cfg.http_listen)
        .await
        .map_err(|e| format!("cannot listen on {} (http): {e}", cfg.http_listen))?;
    let http_addr = http_tcp.local_addr()?;
    let state = HttpState {
        node_id: cfg.node_id,
        registry,
        meta,
        metrics: args.metrics.clone(),
        started,
    };
    let (http, _) = Actor::spawn_linked(
        Some("http".into()),
        Http,
        HttpArgs {
            listener: http_tcp,
            state,
        },
        myself.get_cell(),
    )
    .await?;
    tracing::info!("http (health) listening on {http_addr}");
    Ok(Some(http))
}

/// The address clients are told: `advertise` if set, else the bound address with a wildcard
/// host replaced by `localhost`.
fn advertised(cfg: &Config, bound: SocketAddr) -> anyhow::Result<(String, i32)> {
    if !cfg.advertise.is_empty() {
        let (host, port) = cfg
            .advertise
            .rsplit_once(':')
            .ok_or_else(|| anyhow::anyhow!("advertise must be HOST:PORT, got {:?}", cfg.advertise))?;
        return Ok((host.trim_matches(['[', ']']).to_string(), port.parse()?));
    }
    let host = if bound.ip().is_unspecified() {
        "localhost".to_string()
    } else {
        bound.ip().to_string()
    };
    Ok((host, bound.port() as i32))
}

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
        let node_id = cfg.node_id as u64;
        let raft_cfg = raft_config(cfg.raft_heartbeat_interval_ms, cfg.raft_election_timeout_ms)?;
        let relaxed = cfg.durability == Durability::Relaxed;
        let disk = DiskGuard::new(cfg.data_dir.clone(), cfg.log_dir_min_free_bytes);
        let (committer, _) = Actor::spawn_linked(
            Some("committer".into()),
            Committer,
            CommitterArgs {
                max_round_bytes: cfg.committer_max_round_bytes,
                flush_interval_ms: cfg.log_flush_interval_ms,
                relaxed,
                // Only where a leadership can move away and acknowledgements wait for fsyncs.
                stall_ms: (!relaxed && !cfg.peer_addrs()?.is_empty()).then_some(cfg.log_flush_stall_ms),
                disk: disk.clone(),
            },
            myself.get_cell(),
        )
        .await?;
        let sink: Arc<dyn crate::storage::FlushSink> = Arc::new(CommitterHandle {
            actor: committer.clone(),
            relaxed,
        });

        let meta = Arc::new(RwLock::new(Arc::new(ClusterMeta::default())));
        let (version_tx, version_rx) = watch::channel(0u64);
        let registry = Arc::new(Registry::default());
        // Health first: while a cluster node waits for its peers it is live, not ready.
        let started = Arc::new(AtomicBool::new(false));
        let http = start_http(&myself, &cfg, &args, registry.clone(), meta.clone(), started.clone()).await?;
        let transport = start_transport(&cfg, registry.clone(), &args.identity).await?;
        let peers = transport.as_ref().map(|t| t.peers.clone());
        let controller_leader = Arc::new(std::sync::atomic::AtomicI32::new(-1));
        let (controller, _) = Actor::spawn_linked(
            Some("controller".into()),
            Controller,
            ControllerArgs {
                group: GroupParts {
                    dir: cfg.data_dir.join("meta"),
                    node_id,
                    raft_config: raft_cfg.clone(),
                    sink: sink.clone(),
                    view: meta.clone(),
                    version: version_tx,
                    peers: peers.clone(),
                    routes: transport.as_ref().map(|t| t.routes.clone()),
                    leader: controller_leader.clone(),
                    disk: disk.clone(),
                },
                ready_timeout: Duration::from_secs(30),
                forward_timeout: Duration::from_millis(cfg.request_timeout_max_ms),
                // The followers' leader lease (openraft's election_timeout_max).
                lease: Duration::from_millis(2 * cfg.raft_election_timeout_ms),
            },
            myself.get_cell(),
        )
        .await?;
        let leader_reports = transport.as_ref().map(|_| {
            let reports = Arc::new(LeaderReports::default());
            spawn_leader_reporter(controller.clone(), reports.clone());
            reports
        });
        // The pinger runs before the node joins: the controller group's pre-vote campaigns only
        // while pings say a majority is reached, and a node still joining sends no other
        // requests. Started after the join, a leader lost during the cluster's start left every
        // joining node's election timer off: no controller, for ever (seen once with 5 nodes).
        let (ping_interval, dead_after) = ping_timing(&cfg);
        let pinger = transport
            .as_ref()
            .map(|t| spawn_pinger(t.peers.clone(), cfg.node_id as u64, ping_interval, dead_after));
        let identity = match &transport {
            Some(t) => {
                t.routes.set_controller(controller.clone());
                spawn_address_book(t.peers.clone(), meta.clone(), version_rx.clone());
                spawn_liveness_recorder(
                    controller.clone(),
                    controller_leader.clone(),
                    cfg.node_id,
                    t.peers.clone(),
                    meta.clone(),
                    Duration::from_millis(cfg.broker_session_timeout_ms),
                );
                join_cluster(&cfg, &controller, &meta, version_rx.clone(), args.identity.clone(), t).await?
            }
            None => args.identity.clone(),
        };

        let disk_monitor = disk.spawn_monitor(crate::storage::disk_guard::CHECK_INTERVAL);
        let handovers = Arc::new(Mutex::new(Vec::new()));
        let (supervisor, _) = Actor::spawn_linked(
            Some("partitions".into()),
            PartitionSupervisor,
            SupervisorArgs {
                env: partition_env(&cfg, node_id, sink, &registry, &meta, &peers, &leader_reports, &disk)?,
                max_restarts: cfg.supervisor_max_restarts,
                restart_window: Duration::from_millis(cfg.supervisor_restart_window_ms),
                handovers: handovers.clone(),
            },
            myself.get_cell(),
        )
        .await?;
        let mut failure_detection = spawn_failure_detection(&cfg, registry.clone(), peers, meta.clone());
        failure_detection.extend(pinger);
        failure_detection.push(disk_monitor);
        failure_detection.push(crate::actors::partition::registry::spawn_tail_trimmer(
            registry.clone(),
            TAIL_IDLE,
        ));
        failure_detection.push(crate::actors::partition::handoff::spawn_hand_away_when_low(
            disk.clone(),
            registry.clone(),
            Duration::from_millis(cfg.shutdown_timeout_ms),
        ));
        let sup = supervisor.clone();
        let mut reconcile_rx = version_rx.clone();
        crate::tasks::spawn_essential("partition-reconcile", async move {
            while reconcile_rx.changed().await.is_ok() {
                if sup.send_message(SupervisorMsg::Reconcile).is_err() {
                    return;
                }
            }
        });

        let (coordinator, _) = Actor::spawn_linked(
            Some("group-coordinator".into()),
            GroupCoordinator,
            CoordinatorArgs {
                registry: registry.clone(),
                store: StoreConfig {
                    partitions: cfg.offsets_topic_num_partitions,
                    write_timeout: Duration::from_millis(cfg.request_timeout_max_ms),
                    compaction_interval_records: cfg.offsets_compaction_interval_records,
                    max_queued_writes: cfg.offsets_max_queued_writes,
                },
                initial_rebalance_delay: Duration::from_millis(cfg.group_initial_rebalance_delay_ms),
                offsets_retention_ms: (cfg.offsets_retention_minutes as i64).saturating_mul(60_000),
                offsets_retention_check_interval: Duration::from_millis(cfg.offsets_retention_check_interval_ms),
            },
            myself.get_cell(),
        )
        .await?;
        let tcp = TcpListener::bind(&cfg.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
        let bound = tcp.local_addr()?;
        let (host, port) = advertised(&cfg, bound)?;
        if transport.is_some() {
            let register = MetaCommand::RegisterBroker {
                node_id: cfg.node_id,
                host: host.clone(),
                port,
                cluster_addr: cfg.cluster_advertise(),
            };
            propose_at_boot(&controller, register).await?;
            // Metadata from this node lists it from the moment it serves.
            let me = cfg.node_id;
            await_applied(&meta, version_rx.clone(), |m| {
                m.brokers.get(&me).is_some_and(|b| b.port == port)
            })
            .await;
        }
        let node = Arc::new(Node {
            config: cfg.clone(),
            info: NodeInfo {
                node_id: cfg.node_id,
                cluster_id: identity.cluster_id.clone(),
                advertised_host: host.clone(),
                advertised_port: port,
            },
            registry: registry.clone(),
            meta: meta.clone(),
            controller: controller.clone(),
            producer_ids: Default::default(),
            coordinator: coordinator.clone(),
            peers: transport.as_ref().map(|t| t.peers.clone()),
            controller_leader,
            disk: disk.clone(),
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let connections = Arc::new(Semaphore::new(cfg.max_connections.max(1)));
        let (listener, _) = Actor::spawn_linked(
            Some("listener".into()),
            Listener,
            ListenerArgs {
                listener: tcp,
                broker: node,
                shutdown: shutdown_rx,
                connections: connections.clone(),
            },
            myself.get_cell(),
        )
        .await?;
        started.store(true, Ordering::Release);
        if crate::actors::broken_build::enabled() {
            tracing::warn!("BROKEN BUILD: produce is acknowledged before it is durable or committed (test switch)");
        }
        tracing::info!(
            listen = %bound,
            advertised = %format!("{host}:{port}"),
            node_id = cfg.node_id,
            cluster_id = %identity.cluster_id,
            data_dir = %cfg.data_dir.display(),
            durability = ?cfg.durability,
            "raftstream listening on {bound} (node {} of cluster {})",
            cfg.node_id,
            identity.cluster_id
        );
        forward_task_failures(myself.clone());
        Ok(BrokerState {
            config: cfg,
            committer,
            controller,
            supervisor,
            listener,
            http,
            registry,
            connections,
            shutdown,
            failure: args.failure,
            stopping: false,
            routes: transport.as_ref().map(|t| t.routes.clone()),
            cluster_server: transport.map(|t| t.server),
            failure_detection,
            handovers,
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

/// What every partition of this node shares, from the config.
#[allow(clippy::too_many_arguments)]
fn partition_env(
    cfg: &Config,
    node_id: crate::types::NodeId,
    sink: Arc<dyn crate::storage::FlushSink>,
    registry: &Arc<Registry>,
    meta: &Arc<RwLock<Arc<ClusterMeta>>>,
    peers: &Option<Arc<Peers>>,
    leader_reports: &Option<Arc<LeaderReports>>,
    disk: &Arc<crate::storage::disk_guard::DiskGuard>,
) -> anyhow::Result<Arc<PartitionEnv>> {
    Ok(Arc::new(PartitionEnv {
        data_dir: cfg.data_dir.clone(),
        node_id,
        raft_config: partition_raft_config(
            cfg.raft_partition_rpc_timeout_ms,
            cfg.raft_partition_election_timeout_ms,
        )?,
        log_config: LogConfig {
            segment_bytes: cfg.log_segment_bytes,
            segment_ms: cfg.log_roll_ms,
            index_interval_bytes: cfg.log_index_interval_bytes,
            tail_cache_bytes: cfg.log_tail_cache_bytes as usize,
            max_append_bytes: cfg.raft_max_append_bytes,
        },
        sink,
        registry: registry.clone(),
        meta: meta.clone(),
        max_pending_produces: cfg.partition_max_pending_produces.max(1),
        producer_expiration_ms: cfg.producer_id_expiration_ms as i64,
        retention: crate::storage::log::retention::RetentionLimits {
            retention_ms: cfg.log_retention_ms,
            retention_bytes: cfg.log_retention_bytes,
        },
        retention_check_interval_ms: cfg.log_retention_check_interval_ms,
        peers: peers.clone(),
        leader_reports: leader_reports.clone(),
        reassignment_catch_up_timeout: Duration::from_millis(cfg.reassignment_catch_up_timeout_ms),
        leader_rebalance_interval: cfg
            .auto_leader_rebalance_enable
            .then(|| Duration::from_secs(cfg.leader_imbalance_check_interval_seconds)),
        replica_lag_time_max: Duration::from_millis(cfg.replica_lag_time_max_ms),
        disk: disk.clone(),
    }))
}

/// Stops the broker after a failure it cannot heal (exit 1).
async fn fail(myself: &ActorRef<BrokerMsg>, st: &mut BrokerState, reason: String) {
    tracing::error!("{reason}; stopping the broker");
    *st.failure.lock() = Some(reason);
    graceful_shutdown(st).await;
    myself.stop(None);
}

/// Sends the broker the first node-wide task failure (`crate::tasks::spawn_essential`).
fn forward_task_failures(broker: ActorRef<BrokerMsg>) {
    let mut failures = crate::tasks::failures();
    tokio::spawn(async move {
        if let Ok(failed) = failures.wait_for(Option::is_some).await {
            let reason = failed.clone().unwrap_or_default();
            let _ = broker.send_message(BrokerMsg::TaskFailed(reason));
        }
    });
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
    st.listener.stop(None);
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
        http.stop(None);
    }
    st.controller.stop(None);
    if let Some(server) = st.cluster_server.take() {
        server.abort();
    }
    let _ = ask(&st.committer, |r| CommitterMsg::SyncAll(r.into()), Some(timeout)).await;
    tracing::info!(partitions_left = st.registry.all().len(), "shutdown complete");
}

/// (ping interval, how long a node unheard counts as dead).
fn ping_timing(cfg: &Config) -> (Duration, Duration) {
    let interval = Duration::from_millis(cfg.raft_partition_heartbeat_interval_ms.max(1));
    // The followers' leader lease (openraft's election_timeout_max) plus one ping: by then a
    // dead leader's lease has expired everywhere, so the first campaign can win.
    (interval, cfg.partition_lease() + interval)
}

/// Starts the partition elector (the node pinger starts before the node joins): partition
/// groups have no election or heartbeat timers of their own (`cluster::partition_raft_config`).
fn spawn_failure_detection(
    cfg: &Config,
    registry: Arc<Registry>,
    peers: Option<Arc<Peers>>,
    meta: Arc<RwLock<Arc<ClusterMeta>>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let (interval, dead_after) = ping_timing(cfg);
    let mut tasks = Vec::new();
    let elector = ElectorConfig {
        node_id: cfg.node_id as u64,
        interval,
        dead_after,
    };
    tasks.push(spawn_elector(elector, registry, peers, meta));
    tasks
}
