//! Start-up steps of a node in a multi-node cluster: the node-to-node transport, adopting the
//! cluster's id from the controller (a node that belongs to another cluster refuses to start),
//! and registering the node's Kafka address for Metadata.

use crate::actors::ask::ask;
use crate::actors::controller::actor::ControllerMsg;
use crate::actors::controller::routes::ClusterRoutes;
use crate::actors::partition::registry::Registry;
use crate::actors::partition::reports::LeaderReports;
use crate::cluster::network::Peers;
use crate::cluster::server::{serve, ServerArgs};
use crate::config::Config;
use crate::storage::meta_sm::{ClusterMeta, MetaCommand};
use crate::storage::node_meta::{record_joined, NodeMeta};
use kafka_protocol::error::ResponseError;
use parking_lot::RwLock;
use ractor::ActorRef;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long a proposal after start-up keeps retrying while the controller has no leader.
const JOIN_TIMEOUT: Duration = Duration::from_secs(60);
/// While a starting node waits for its peers, it says so this often.
pub const WAIT_LOG_INTERVAL: Duration = Duration::from_secs(5);

/// A running transport.
pub struct Transport {
    pub peers: Arc<Peers>,
    pub routes: Arc<ClusterRoutes>,
    /// The server task (aborted at shutdown).
    pub server: JoinHandle<()>,
}

/// Starts the node-to-node transport, if `peers` are configured.
pub async fn start_transport(
    cfg: &Config,
    registry: Arc<Registry>,
    identity: &NodeMeta,
) -> anyhow::Result<Option<Transport>> {
    let addrs = cfg.peer_addrs()?;
    if addrs.is_empty() {
        return Ok(None);
    }
    let secret = crate::cluster::auth::ClusterSecret::from_config(&cfg.cluster_secret).map(Arc::new);
    if secret.is_none() {
        tracing::warn!("the cluster port is unauthenticated: any host that reaches it can send Raft RPCs (set cluster.secret on every node)");
    }
    let peers = Peers::with_secret(
        cfg.node_id as u64,
        addrs.into_iter().collect(),
        cfg.cluster_max_frame_bytes,
        cfg.partition_lease(),
        secret.clone(),
    );
    if identity.joined {
        *peers.cluster_id.write() = identity.cluster_id.clone();
    }
    let routes = ClusterRoutes::new(registry, peers.cluster_id.clone());
    let listener = TcpListener::bind(&cfg.cluster_listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {} (cluster): {e}", cfg.cluster_listen))?;
    tracing::info!("cluster listening on {}", listener.local_addr()?);
    let server = crate::tasks::spawn_essential(
        "cluster-server",
        serve(
            listener,
            ServerArgs {
                groups: routes.clone(),
                liveness: peers.liveness.clone(),
                max_frame_bytes: cfg.cluster_max_frame_bytes,
                max_inflight: cfg.cluster_max_inflight_requests,
                secret,
            },
        ),
    );
    Ok(Some(Transport { peers, routes, server }))
}

/// Proposes `cmd` through the controller, retrying for at most a minute while the group has
/// no leader.
pub async fn propose_until_done(controller: &ActorRef<ControllerMsg>, cmd: MetaCommand) -> anyhow::Result<i64> {
    propose_retrying(controller, cmd, Some(JOIN_TIMEOUT)).await
}

/// Proposes `cmd` at start-up, retrying for as long as the controller group has no leader (the
/// other nodes may start later), and saying every few seconds what it waits for.
pub async fn propose_at_boot(controller: &ActorRef<ControllerMsg>, cmd: MetaCommand) -> anyhow::Result<i64> {
    propose_retrying(controller, cmd, None).await
}

async fn propose_retrying(
    controller: &ActorRef<ControllerMsg>,
    cmd: MetaCommand,
    patience: Option<Duration>,
) -> anyhow::Result<i64> {
    let started = tokio::time::Instant::now();
    let mut next_log = started + WAIT_LOG_INTERVAL;
    loop {
        let propose = |reply| ControllerMsg::Propose {
            cmd: cmd.clone(),
            reply,
            forwarded: false,
        };
        let answer = ask(controller, propose, None).await;
        let now = tokio::time::Instant::now();
        match answer {
            Ok(Ok(v)) => return Ok(v),
            // A controller leader whose data dir is full refuses changes until there is room
            // (or another node leads): a node starting then waits, it does not give up.
            Ok(Err((code @ (ResponseError::NotController | ResponseError::KafkaStorageError), why)))
                if patience.is_none_or(|p| now < started + p) =>
            {
                if now >= next_log {
                    tracing::info!(%why, ?code, waited_s = (now - started).as_secs(), "waiting for the controller group to take a change");
                    next_log = now + WAIT_LOG_INTERVAL;
                }
                tracing::debug!(%why, "controller not reachable yet; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(Err((code, why))) => anyhow::bail!("{cmd:?} refused: {code:?} {why}"),
            Err(_) => anyhow::bail!("controller stopped"),
        }
    }
}

/// Agrees on the cluster id: the first node to propose fixes it (with every configured node as
/// voter); every node adopts it, and a node that already belongs to another cluster refuses to
/// start. Returns the node's identity.
pub async fn join_cluster(
    cfg: &Config,
    controller: &ActorRef<ControllerMsg>,
    meta: &Arc<RwLock<Arc<ClusterMeta>>>,
    mut version: watch::Receiver<u64>,
    identity: NodeMeta,
    transport: &Transport,
) -> anyhow::Result<NodeMeta> {
    let current = || meta.read().cluster_id.clone();
    if current().is_empty() {
        let voters = transport.peers.members().keys().map(|id| *id as i32).collect();
        let cmd = MetaCommand::InitCluster {
            cluster_id: identity.cluster_id.clone(),
            voters,
        };
        propose_at_boot(controller, cmd).await?;
    }
    // The proposal is applied here once this node has the committed entry.
    while current().is_empty() {
        match tokio::time::timeout(WAIT_LOG_INTERVAL, version.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => break,
            Err(_) => tracing::info!("waiting for the cluster's id to be replicated to this node"),
        }
    }
    let cluster_id = current();
    anyhow::ensure!(!cluster_id.is_empty(), "the cluster's id never arrived");
    if identity.joined && identity.cluster_id != cluster_id {
        anyhow::bail!(
            "data dir {} belongs to cluster {}, but the peers form cluster {cluster_id}; refusing to start",
            cfg.data_dir.display(),
            identity.cluster_id
        );
    }
    let identity = if identity.joined {
        identity
    } else {
        record_joined(&cfg.data_dir, cfg.node_id, &cluster_id)?
    };
    *transport.routes.cluster_id.write() = cluster_id;
    // A node added to the running cluster: replicas may be placed on it from now on.
    let me = cfg.node_id;
    if !meta.read().voters.contains(&me) {
        propose_at_boot(controller, MetaCommand::AddNode { node_id: me }).await?;
        tracing::info!(node_id = me, "joined the running cluster");
    }
    Ok(identity)
}

/// Waits (at most the join timeout) until this node's metadata satisfies `cond`: a proposal
/// is applied on the leader first, on this node a little later.
pub async fn await_applied(
    meta: &Arc<RwLock<Arc<ClusterMeta>>>,
    mut version: watch::Receiver<u64>,
    cond: impl Fn(&ClusterMeta) -> bool,
) {
    let wait = async {
        while !cond(&meta.read()) {
            if version.changed().await.is_err() {
                return;
            }
        }
    };
    if tokio::time::timeout(JOIN_TIMEOUT, wait).await.is_err() {
        tracing::warn!("metadata did not catch up within {JOIN_TIMEOUT:?}");
    }
}

/// On the controller leader: fences brokers not heard from within `session` and unfences
/// those heard from again (Kafka's broker heartbeats to the controller; here the controller
/// group's own traffic is the heartbeat). A new leader waits one session before fencing anyone:
/// as a follower it heard from the old leader only.
pub fn spawn_liveness_recorder(
    controller: ActorRef<ControllerMsg>,
    controller_leader: Arc<std::sync::atomic::AtomicI32>,
    me: i32,
    peers: Arc<Peers>,
    meta: Arc<RwLock<Arc<ClusterMeta>>>,
    session: Duration,
) {
    crate::tasks::spawn_essential("liveness-recorder", async move {
        let mut leading_since: Option<tokio::time::Instant> = None;
        let mut tick = tokio::time::interval((session / 4).max(Duration::from_millis(100)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if controller_leader.load(std::sync::atomic::Ordering::Relaxed) != me {
                leading_since = None;
                continue;
            }
            let since = *leading_since.get_or_insert_with(tokio::time::Instant::now);
            let settled = since.elapsed() >= session;
            let changes: Vec<(i32, bool)> = {
                let meta = meta.read();
                meta.brokers
                    .keys()
                    .filter_map(|id| {
                        let alive = *id == me || peers.heard_within(*id as u64, session);
                        let fenced = meta.fenced.contains(id);
                        match (alive, fenced) {
                            (true, true) => Some((*id, false)),
                            (false, false) if settled => Some((*id, true)),
                            _ => None,
                        }
                    })
                    .collect()
            };
            if !changes.is_empty() {
                tracing::info!(?changes, "broker liveness changed (node, fenced)");
                if let Err(e) = propose_until_done(&controller, MetaCommand::FenceBrokers { changes }).await {
                    tracing::debug!(error = %e, "liveness not recorded; next check retries");
                }
            }
        }
    });
}

/// Keeps `peers` knowing every registered node's cluster address (nodes added to the running
/// cluster are in no configured peer list).
pub fn spawn_address_book(peers: Arc<Peers>, meta: Arc<RwLock<Arc<ClusterMeta>>>, mut version: watch::Receiver<u64>) {
    crate::tasks::spawn_essential("address-book", async move {
        loop {
            let brokers = meta.read().brokers.clone();
            for (id, b) in brokers {
                peers.learn(id as u64, &b.cluster);
            }
            if version.changed().await.is_err() {
                return;
            }
        }
    });
}

/// Records what partitions report in the controller, many reports per proposal.
pub fn spawn_leader_reporter(controller: ActorRef<ControllerMsg>, reports: Arc<LeaderReports>) {
    crate::tasks::spawn_essential("leader-reporter", async move {
        loop {
            reports.notify.notified().await;
            let mut failed = false;
            for cmd in reports.take() {
                if let Err(e) = propose_until_done(&controller, cmd.clone()).await {
                    tracing::debug!(error = %e, "reports not recorded; retrying");
                    reports.restore(cmd);
                    failed = true;
                }
            }
            if failed {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    });
}
