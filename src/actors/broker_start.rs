//! The broker's start, step by step: committer, health endpoint, transport, controller, the
//! cluster services and join, partitions and failure detection, group coordinator, the Kafka
//! port, listener. `Broker::pre_start` runs these in order; a failed step stops the start.

use crate::actors::broker::BrokerMsg;
use crate::actors::committer::{Committer, CommitterArgs, CommitterHandle, CommitterMsg};
use crate::actors::controller::actor::{Controller, ControllerArgs, ControllerMsg};
use crate::actors::controller::boot::{
    await_applied, join_cluster, propose_at_boot, spawn_address_book, spawn_leader_reporter, spawn_liveness_recorder,
    Transport,
};
use crate::actors::controller::group::GroupParts;
use crate::actors::group::coordinator::{CoordinatorArgs, CoordinatorMsg, GroupCoordinator};
use crate::actors::group::store::StoreConfig;
use crate::actors::http::{spawn_http, HttpState};
use crate::actors::listener::{spawn_listener, ListenerArgs};
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
use crate::security::scram::{Mechanism, ScramCredential, MIN_ITERATIONS};
use crate::security::{ListenerSpec, SecurityProtocol};
use crate::storage::disk_guard::DiskGuard;
use crate::storage::log::LogConfig;
use crate::storage::meta_sm::{ClusterMeta, MetaCommand};
use crate::storage::node_meta::NodeMeta;
use crate::storage::FlushSink;
use parking_lot::{Mutex, RwLock};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

/// A partition not appended to for this long trims its tail cache back to
/// `log.tail.cache.bytes`.
const TAIL_IDLE: Duration = Duration::from_secs(1);

/// What the node's parts share from the first step on.
pub(super) struct Shared {
    pub meta: Arc<RwLock<Arc<ClusterMeta>>>,
    /// Ticks on every metadata change (the controller's state machine sends).
    pub version_tx: Option<watch::Sender<u64>>,
    pub version_rx: watch::Receiver<u64>,
    pub registry: Arc<Registry>,
    /// Set once the node serves: `/health/ready` answers 503 until then.
    pub started: Arc<AtomicBool>,
    pub disk: Arc<DiskGuard>,
    /// Which broker of this process this is (0: the first): names its child actors.
    pub instance: u64,
}

impl Shared {
    /// The name of this broker's child actor `name`: plain for the process's first broker,
    /// numbered after it (actor names are process-wide; in-process tests start several).
    pub fn child_name(&self, name: &str) -> Option<String> {
        Some(match self.instance {
            0 => name.to_string(),
            n => format!("{name}#{n}"),
        })
    }

    pub fn new(cfg: &Config) -> Shared {
        let (version_tx, version_rx) = watch::channel(0u64);
        Shared {
            meta: Arc::new(RwLock::new(Arc::new(ClusterMeta::default()))),
            version_tx: Some(version_tx),
            version_rx,
            registry: Arc::new(Registry::default()),
            started: Arc::new(AtomicBool::new(false)),
            disk: DiskGuard::new(cfg.data_dir.clone(), cfg.log_dir_min_free_bytes),
            instance: {
                static BROKERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                BROKERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            },
        }
    }
}

/// Starts the committer; returns it and the sink logs flush through.
pub(super) async fn start_committer(
    myself: &ActorRef<BrokerMsg>,
    cfg: &Config,
    shared: &Shared,
) -> Result<(ActorRef<CommitterMsg>, Arc<dyn FlushSink>), ActorProcessingErr> {
    let disk = &shared.disk;
    let relaxed = cfg.durability == Durability::Relaxed;
    let args = CommitterArgs {
        max_round_bytes: cfg.committer_max_round_bytes,
        flush_interval_ms: cfg.log_flush_interval_ms,
        relaxed,
        // Only where a leadership can move away and acknowledgements wait for fsyncs.
        stall_ms: (!relaxed && !cfg.peer_addrs()?.is_empty()).then_some(cfg.log_flush_stall_ms),
        disk: disk.clone(),
    };
    let (committer, _) =
        Actor::spawn_linked(shared.child_name("committer"), Committer, args, myself.get_cell()).await?;
    let sink = Arc::new(CommitterHandle {
        actor: committer.clone(),
        relaxed,
    });
    Ok((committer, sink))
}

/// Starts `/health` and `/metrics` (unless `http.listen` is empty); `/health/ready` answers
/// 503 until `started` is set.
pub(super) async fn start_http(
    cfg: &Config,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    shared: &Shared,
) -> Result<Option<(JoinHandle<()>, SocketAddr)>, ActorProcessingErr> {
    if cfg.http_listen.is_empty() {
        return Ok(None);
    }
    let http_tcp = TcpListener::bind(&cfg.http_listen)
        .await
        .map_err(|e| format!("cannot listen on {} (http): {e}", cfg.http_listen))?;
    let http_addr = http_tcp.local_addr()?;
    let state = HttpState {
        node_id: cfg.node_id,
        registry: shared.registry.clone(),
        meta: shared.meta.clone(),
        metrics,
        started: shared.started.clone(),
    };
    let http = spawn_http(http_tcp, state);
    tracing::info!("http (health) listening on {http_addr}");
    Ok(Some((http, http_addr)))
}

/// The controller and the group leader it keeps (-1 while unknown).
pub(super) struct ControllerParts {
    pub actor: ActorRef<ControllerMsg>,
    pub leader: Arc<std::sync::atomic::AtomicI32>,
}

/// Starts the controller, which replays the cluster metadata into `shared.meta`.
pub(super) async fn start_controller(
    myself: &ActorRef<BrokerMsg>,
    cfg: &Config,
    sink: &Arc<dyn FlushSink>,
    shared: &mut Shared,
    transport: &Option<Transport>,
) -> Result<ControllerParts, ActorProcessingErr> {
    let leader = Arc::new(std::sync::atomic::AtomicI32::new(-1));
    let args = ControllerArgs {
        group: GroupParts {
            dir: cfg.data_dir.join("meta"),
            node_id: cfg.node_id as u64,
            raft_config: raft_config(cfg.raft_heartbeat_interval_ms, cfg.raft_election_timeout_ms)?,
            sink: sink.clone(),
            view: shared.meta.clone(),
            version: shared.version_tx.take().expect("the controller starts once"),
            peers: transport.as_ref().map(|t| t.peers.clone()),
            routes: transport.as_ref().map(|t| t.routes.clone()),
            leader: leader.clone(),
            disk: shared.disk.clone(),
        },
        ready_timeout: Duration::from_secs(30),
        forward_timeout: Duration::from_millis(cfg.request_timeout_max_ms),
        // The followers' leader lease (openraft's election_timeout_max).
        lease: Duration::from_millis(2 * cfg.raft_election_timeout_ms),
    };
    let (actor, _) = Actor::spawn_linked(shared.child_name("controller"), Controller, args, myself.get_cell()).await?;
    Ok(ControllerParts { actor, leader })
}

/// What a cluster node runs besides its actors, and who it is.
pub(super) struct ClusterParts {
    pub identity: NodeMeta,
    pub leader_reports: Option<Arc<LeaderReports>>,
    pub pinger: Option<JoinHandle<()>>,
}

/// On a multi-node cluster: the leader reporter, the pinger, the address book and liveness
/// recorder, then the join (adopting the cluster's id). A single node is itself.
pub(super) async fn join_as_cluster_node(
    cfg: &Config,
    controller: &ControllerParts,
    shared: &Shared,
    transport: &Option<Transport>,
    identity: &NodeMeta,
) -> anyhow::Result<ClusterParts> {
    let Some(t) = transport else {
        return Ok(ClusterParts {
            identity: identity.clone(),
            leader_reports: None,
            pinger: None,
        });
    };
    let reports = Arc::new(LeaderReports::default());
    spawn_leader_reporter(controller.actor.clone(), reports.clone());
    // The pinger runs before the node joins: the controller group's pre-vote campaigns only
    // while pings say a majority is reached, and a node still joining sends no other
    // requests. Started after the join, a leader lost during the cluster's start left every
    // joining node's election timer off: no controller, for ever (seen once with 5 nodes).
    let (ping_interval, dead_after) = ping_timing(cfg);
    let pinger = spawn_pinger(t.peers.clone(), cfg.node_id as u64, ping_interval, dead_after);
    t.routes.set_controller(controller.actor.clone());
    spawn_address_book(t.peers.clone(), shared.meta.clone(), shared.version_rx.clone());
    spawn_liveness_recorder(
        controller.actor.clone(),
        controller.leader.clone(),
        cfg.node_id,
        t.peers.clone(),
        shared.meta.clone(),
        Duration::from_millis(cfg.broker_session_timeout_ms),
    );
    let (meta, version) = (&shared.meta, shared.version_rx.clone());
    let identity = join_cluster(cfg, &controller.actor, meta, version, identity.clone(), t).await?;
    Ok(ClusterParts {
        identity,
        leader_reports: Some(reports),
        pinger: Some(pinger),
    })
}

/// The partition supervisor, the handovers it leaves for the shutdown to await, and the
/// node-wide partition tasks (pinger, elector, disk monitor, tail trimmer, disk handoff).
pub(super) struct PartitionParts {
    pub supervisor: ActorRef<SupervisorMsg>,
    pub handovers: Arc<Mutex<Vec<JoinHandle<()>>>>,
    pub tasks: Vec<JoinHandle<()>>,
}

/// Starts the partition supervisor (which starts this node's partitions as metadata says) and
/// the tasks every partition relies on.
pub(super) async fn start_partitions(
    myself: &ActorRef<BrokerMsg>,
    cfg: &Config,
    sink: Arc<dyn FlushSink>,
    shared: &Shared,
    peers: Option<Arc<Peers>>,
    cluster: &mut ClusterParts,
) -> Result<PartitionParts, ActorProcessingErr> {
    let disk_monitor = shared.disk.spawn_monitor(crate::storage::disk_guard::CHECK_INTERVAL);
    let handovers = Arc::new(Mutex::new(Vec::new()));
    let env = partition_env(cfg, sink, shared, peers.clone(), cluster.leader_reports.clone())?;
    let args = SupervisorArgs {
        env,
        max_restarts: cfg.supervisor_max_restarts,
        restart_window: Duration::from_millis(cfg.supervisor_restart_window_ms),
        handovers: handovers.clone(),
    };
    let (supervisor, _) = Actor::spawn_linked(
        shared.child_name("partitions"),
        PartitionSupervisor,
        args,
        myself.get_cell(),
    )
    .await?;
    let (interval, dead_after) = ping_timing(cfg);
    let elector = ElectorConfig {
        node_id: cfg.node_id as u64,
        interval,
        dead_after,
    };
    let registry = &shared.registry;
    let mut tasks = vec![spawn_elector(elector, registry.clone(), peers, shared.meta.clone())];
    tasks.extend(cluster.pinger.take());
    tasks.push(disk_monitor);
    tasks.push(crate::actors::partition::registry::spawn_tail_trimmer(
        registry.clone(),
        TAIL_IDLE,
    ));
    let handoff_timeout = Duration::from_millis(cfg.shutdown_timeout_ms);
    let disk = shared.disk.clone();
    tasks.push(crate::actors::partition::handoff::spawn_hand_away_when_low(
        disk,
        registry.clone(),
        handoff_timeout,
    ));
    spawn_reconcile(supervisor.clone(), shared.version_rx.clone());
    Ok(PartitionParts {
        supervisor,
        handovers,
        tasks,
    })
}

/// Tells the supervisor of every metadata change (it starts and stops partitions to match).
fn spawn_reconcile(supervisor: ActorRef<SupervisorMsg>, mut version: watch::Receiver<u64>) {
    crate::tasks::spawn_essential("partition-reconcile", async move {
        while version.changed().await.is_ok() {
            if supervisor.send_message(SupervisorMsg::Reconcile).is_err() {
                return;
            }
        }
    });
}

/// What every partition of this node shares, from the config.
fn partition_env(
    cfg: &Config,
    sink: Arc<dyn FlushSink>,
    shared: &Shared,
    peers: Option<Arc<Peers>>,
    leader_reports: Option<Arc<LeaderReports>>,
) -> anyhow::Result<Arc<PartitionEnv>> {
    Ok(Arc::new(PartitionEnv {
        data_dir: cfg.data_dir.clone(),
        node_id: cfg.node_id as u64,
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
        registry: shared.registry.clone(),
        meta: shared.meta.clone(),
        max_pending_produces: cfg.partition_max_pending_produces.max(1),
        producer_expiration_ms: cfg.producer_id_expiration_ms as i64,
        retention: crate::storage::log::retention::RetentionLimits {
            retention_ms: cfg.log_retention_ms,
            retention_bytes: cfg.log_retention_bytes,
        },
        retention_check_interval_ms: cfg.log_retention_check_interval_ms,
        peers,
        leader_reports,
        reassignment_catch_up_timeout: Duration::from_millis(cfg.reassignment_catch_up_timeout_ms),
        leader_rebalance_interval: cfg
            .auto_leader_rebalance_enable
            .then(|| Duration::from_secs(cfg.leader_imbalance_check_interval_seconds)),
        replica_lag_time_max: Duration::from_millis(cfg.replica_lag_time_max_ms),
        disk: shared.disk.clone(),
    }))
}

/// (ping interval, how long a node unheard counts as dead).
fn ping_timing(cfg: &Config) -> (Duration, Duration) {
    let interval = Duration::from_millis(cfg.raft_partition_heartbeat_interval_ms.max(1));
    // The followers' leader lease (openraft's election_timeout_max) plus one ping: by then a
    // dead leader's lease has expired everywhere, so the first campaign can win.
    (interval, cfg.partition_lease() + interval)
}

/// Starts the group coordinator.
pub(super) async fn start_coordinator(
    myself: &ActorRef<BrokerMsg>,
    cfg: &Config,
    shared: &Shared,
) -> Result<ActorRef<CoordinatorMsg>, ActorProcessingErr> {
    let registry = &shared.registry;
    let args = CoordinatorArgs {
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
    };
    let name = shared.child_name("group-coordinator");
    let (coordinator, _) = Actor::spawn_linked(name, GroupCoordinator, args, myself.get_cell()).await?;
    Ok(coordinator)
}

/// On the cluster's first start with SASL (or bootstrap users) configured, creates the
/// `sasl.bootstrap.users` (SCRAM-SHA-256 and -512 credentials) and the cluster's SASL secret;
/// a later start, on any node, changes nothing (the controller applies the first only).
pub(super) async fn bootstrap_users(
    cfg: &Config,
    controller: &ActorRef<ControllerMsg>,
    shared: &Shared,
) -> Result<(), ActorProcessingErr> {
    let sasl = cfg.listener_specs()?.iter().any(|s| s.protocol.sasl());
    if (!sasl && cfg.sasl_bootstrap_users.is_empty()) || shared.meta.read().users_bootstrapped {
        return Ok(());
    }
    let given = crate::security::sasl::parse_bootstrap_users(&cfg.sasl_bootstrap_users)?;
    // PBKDF2 at 4096 iterations per user and mechanism: off the runtime's workers.
    let users = tokio::task::spawn_blocking(move || {
        let mechanisms = [Mechanism::Sha256, Mechanism::Sha512];
        given
            .iter()
            .flat_map(|(user, password)| {
                mechanisms.map(|m| {
                    (
                        user.clone(),
                        m,
                        ScramCredential::from_password(m, password, MIN_ITERATIONS),
                    )
                })
            })
            .collect::<Vec<_>>()
    })
    .await?;
    let secret: [u8; 32] = rand::random();
    let count = users.len() / 2;
    propose_at_boot(
        controller,
        MetaCommand::BootstrapUsers {
            users,
            secret: secret.to_vec(),
        },
    )
    .await?;
    await_applied(&shared.meta, shared.version_rx.clone(), |m| m.users_bootstrapped).await;
    tracing::info!(users = count, "SASL users bootstrapped");
    Ok(())
}

/// A bound Kafka listener and the address its clients are told.
pub(super) struct BoundListener {
    pub protocol: SecurityProtocol,
    pub tcp: TcpListener,
    pub bound: SocketAddr,
    pub host: String,
    pub port: i32,
}

/// Binds every Kafka listener; on a cluster, registers the node's addresses with the
/// controller and waits until this node's metadata lists them (Metadata from this node lists
/// it from the moment it serves).
pub(super) async fn bind_kafka_ports(
    cfg: &Config,
    controller: &ActorRef<ControllerMsg>,
    shared: &Shared,
    clustered: bool,
) -> Result<Vec<BoundListener>, ActorProcessingErr> {
    let mut bound_listeners = Vec::new();
    for spec in cfg.listener_specs()? {
        let tcp = TcpListener::bind(&spec.bind)
            .await
            .map_err(|e| format!("cannot listen on {} ({}): {e}", spec.bind, spec.protocol.name()))?;
        let bound = tcp.local_addr()?;
        let (host, port) = advertised(&spec, bound);
        bound_listeners.push(BoundListener {
            protocol: spec.protocol,
            tcp,
            bound,
            host,
            port,
        });
    }
    let first = bound_listeners.first().ok_or("no Kafka listener configured")?;
    if clustered {
        let listeners: Vec<(String, String, i32)> = bound_listeners
            .iter()
            .map(|l| (l.protocol.name().to_string(), l.host.clone(), l.port))
            .collect();
        let register = MetaCommand::RegisterBroker {
            node_id: cfg.node_id,
            host: first.host.clone(),
            port: first.port,
            cluster_addr: cfg.cluster_advertise(),
            listeners: listeners.clone(),
        };
        propose_at_boot(controller, register).await?;
        let me = cfg.node_id;
        let want: BTreeMap<String, (String, i32)> = listeners.into_iter().map(|(n, h, p)| (n, (h, p))).collect();
        let registered = |m: &ClusterMeta| m.brokers.get(&me).is_some_and(|b| b.listeners == want);
        await_applied(&shared.meta, shared.version_rx.clone(), registered).await;
    }
    Ok(bound_listeners)
}

/// The address clients are told: the advertised one if given, else the bound address with a
/// wildcard host replaced by `localhost`.
fn advertised(spec: &ListenerSpec, bound: SocketAddr) -> (String, i32) {
    if let Some((host, port)) = &spec.advertised {
        return (host.clone(), *port as i32);
    }
    let host = if bound.ip().is_unspecified() {
        "localhost".to_string()
    } else {
        bound.ip().to_string()
    };
    (host, bound.port() as i32)
}

/// The listeners and what the shutdown uses to stop them.
pub(super) struct ListenerParts {
    pub listeners: Vec<JoinHandle<()>>,
    pub shutdown: watch::Sender<bool>,
    pub connections: Arc<Semaphore>,
    /// Re-reads the TLS files when they change (TLS listeners only).
    pub tls_reload: Option<JoinHandle<()>>,
}

/// Starts accepting clients on every listener, each connection served against `node`.
pub(super) fn start_listeners(
    cfg: &Config,
    bound: Vec<BoundListener>,
    node: Arc<Node>,
) -> Result<ListenerParts, ActorProcessingErr> {
    let tls = match cfg.tls_files()? {
        Some(files) => Some(crate::security::tls::TlsServer::load(files)?),
        None => None,
    };
    let (shutdown, shutdown_rx) = watch::channel(false);
    let connections = Arc::new(Semaphore::new(cfg.max_connections.max(1)));
    let limits = Arc::new(crate::actors::connection_limits::ConnectionLimits::new(
        cfg.max_connections_per_ip,
        &cfg.max_connections_per_ip_overrides,
        cfg.connections_max_unauthenticated,
    )?);
    let listeners = bound
        .into_iter()
        .map(|l| {
            spawn_listener(ListenerArgs {
                listener: l.tcp,
                protocol: l.protocol,
                tls: tls.clone().filter(|_| l.protocol.tls()),
                handshake_timeout: Duration::from_millis(cfg.connections_handshake_timeout_ms),
                broker: node.clone(),
                shutdown: shutdown_rx.clone(),
                connections: connections.clone(),
                limits: limits.clone(),
            })
        })
        .collect();
    let tls_reload = tls.map(|t| t.spawn_reloader(Duration::from_millis(cfg.ssl_reload_interval_ms)));
    Ok(ListenerParts {
        listeners,
        shutdown,
        connections,
        tls_reload,
    })
}

/// The info lines a started node logs: one per listener, then the node's.
pub(super) fn log_started(cfg: &Config, listeners: &[(SecurityProtocol, SocketAddr, String, i32)], cluster_id: &str) {
    if crate::actors::broken_build::enabled() {
        tracing::warn!("BROKEN BUILD: produce is acknowledged before it is durable or committed (test switch)");
    }
    for (protocol, bound, host, port) in listeners {
        tracing::info!(
            listener = protocol.name(),
            advertised = %format!("{host}:{port}"),
            "{} listener on {bound}",
            protocol.name()
        );
    }
    let Some((_, bound, host, port)) = listeners.first() else {
        return;
    };
    tracing::info!(
        listen = %bound,
        advertised = %format!("{host}:{port}"),
        node_id = cfg.node_id,
        cluster_id = %cluster_id,
        data_dir = %cfg.data_dir.display(),
        durability = ?cfg.durability,
        "raftstream listening on {bound} (node {} of cluster {})",
        cfg.node_id,
        cluster_id
    );
}
