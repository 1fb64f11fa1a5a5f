//! A partition actor's start: recover its log (off the runtime workers), open its Raft group
//! (forming it if new), register it for handlers, and start its ticks.

use crate::actors::partition::actor::{PartitionArgs, PartitionMsg};
use crate::actors::partition::env::PartitionEnv;
use crate::actors::partition::group::{initialize_group, spawn_leadership_watch};
use crate::actors::partition::registry::PartitionHandle;
use crate::cluster::network::Network;
use crate::cluster::wire::GroupId;
use crate::storage::log::{PartitionLog, RecoveryReport};
use crate::storage::partition_sm::{PartitionShared, PartitionSm};
use crate::storage::raft_log::LogStore;
use crate::types::{NodeId, Raft};
use openraft::BasicNode;
use ractor::{ActorProcessingErr, ActorRef};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};

/// Debug-build test hook: slows recovery down so readiness can be observed before it ends.
pub(super) async fn debug_delay_recovery() {
    #[cfg(debug_assertions)]
    if let Some(ms) = std::env::var("RS_DEBUG_RECOVERY_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// Claims the partition's directory and recovers its log. Creating a partition fsyncs its
/// marker and files, and recovery reads its segments: on the blocking pool, not a runtime
/// worker (a topic of many partitions created at once held both workers long enough for the
/// controller's 50 ms heartbeats to time out).
pub(super) async fn open_log(args: &PartitionArgs) -> Result<(Arc<PartitionLog>, RecoveryReport), ActorProcessingErr> {
    let (dir, topic_id, log_config) = (args.dir.clone(), args.topic_id, args.log_config);
    let (log, report) = tokio::task::spawn_blocking(move || {
        claim_dir(&dir, topic_id)?;
        Ok::<_, anyhow::Error>(PartitionLog::open(&dir, log_config)?)
    })
    .await??;
    if let Some((bytes, why)) = &report.truncated {
        tracing::warn!(partition = ?args.tp, bytes, reason = %why, "cut a torn or corrupt tail during recovery");
    }
    Ok((Arc::new(log), report))
}

/// Wipes `dir` if it holds data of an earlier topic with the same name.
fn claim_dir(dir: &std::path::Path, topic_id: uuid::Uuid) -> anyhow::Result<()> {
    let marker = dir.join("topic-id");
    match std::fs::read_to_string(&marker) {
        Ok(existing) if existing.trim() == topic_id.to_string() => return Ok(()),
        Ok(_) => {
            tracing::warn!(dir = %dir.display(), "data of a deleted topic with the same name; removing it");
            std::fs::remove_dir_all(dir)?;
        }
        Err(_) => {}
    }
    std::fs::create_dir_all(dir)?;
    crate::storage::write_file_durably(&marker, topic_id.to_string().as_bytes())?;
    Ok(())
}

/// What the partition's actor, state machine and handlers share.
pub(super) fn new_shared(args: &PartitionArgs) -> Arc<PartitionShared> {
    Arc::new(PartitionShared {
        high_watermark: watch::channel(0).0,
        caught_up: Default::default(),
        membership: Default::default(),
        purge_allowed: Default::default(),
        handing_off: Default::default(),
        // Any stall so far counts as confirmed: a group opened now leads only once a quorum
        // acked it in this run (`acting_leader` wants `millis_since_quorum_ack`, which a new
        // Raft instance sets only from acks it received), so after any earlier stall.
        stall_confirmed: args.env.peers.as_ref().map(|p| p.liveness.stalls()).unwrap_or(0).into(),
    })
}

/// Opens the partition's Raft group over its log; forms it if it is new here (a replica
/// being added by a reassignment joins as a learner instead: the leader brings it in).
pub(super) async fn open_group(
    args: &PartitionArgs,
    log: Arc<PartitionLog>,
    shared: Arc<PartitionShared>,
) -> Result<Raft, ActorProcessingErr> {
    let env = &args.env;
    let sm = PartitionSm::open(&args.dir, shared.clone(), log.clone(), env.sink.clone());
    let store = LogStore::new(log, env.sink.clone()).purging_with(shared);
    let network = Network::new(GroupId::of(&args.tp), env.peers.clone());
    let raft = Raft::new(env.node_id, env.raft_config.clone(), network, store, sm).await?;
    let joining = !args.replicas.contains(&(env.node_id as i32));
    if !joining && !raft.is_initialized().await? {
        let members: BTreeMap<NodeId, BasicNode> = match &env.peers {
            Some(peers) => args
                .replicas
                .iter()
                .map(|id| {
                    let addr = peers.addr_of(*id as NodeId).unwrap_or_default();
                    (*id as NodeId, BasicNode::new(addr))
                })
                .collect(),
            None => BTreeMap::from([(env.node_id, BasicNode::default())]),
        };
        let preferred = args.replicas.first().map_or(env.node_id, |id| *id as NodeId);
        let (tp, meta) = (args.tp.clone(), env.meta.clone());
        initialize_group(&raft, members, preferred, env.node_id, env.peers.clone(), tp, meta).await;
    }
    Ok(raft)
}

/// Builds the handle handlers reach the partition by, sends it to the supervisor that
/// publishes it in the registry (`args.publish`), and starts watching the leadership.
pub(super) fn publish(
    myself: &ActorRef<PartitionMsg>,
    args: &mut PartitionArgs,
    raft: &Raft,
    log: &Arc<PartitionLog>,
    shared: &Arc<PartitionShared>,
) {
    let env = args.env.clone();
    let handle = Arc::new(PartitionHandle {
        actor: myself.clone(),
        raft: raft.clone(),
        log: log.clone(),
        shared: shared.clone(),
        produce_permits: Arc::new(Semaphore::new(env.max_pending_produces)),
        node_id: env.node_id,
        peers: env.peers.clone(),
    });
    if let Some(publish) = args.publish.take() {
        let _ = publish.send(handle);
    }
    let reports = env.leader_reports.clone().map(|r| (r, args.tp.clone(), env.node_id));
    spawn_leadership_watch(
        raft.clone(),
        env.registry.clone(),
        shared.clone(),
        reports,
        myself.clone(),
    );
}

/// Retention checks; on a cluster, in-sync replica reports and preferred-leader checks.
pub(super) fn schedule_ticks(myself: &ActorRef<PartitionMsg>, env: &PartitionEnv) {
    myself.send_interval(Duration::from_millis(env.retention_check_interval_ms.max(10)), || {
        PartitionMsg::RetentionTick
    });
    if env.leader_reports.is_some() {
        let every = (env.replica_lag_time_max / 2).max(Duration::from_millis(100));
        myself.send_interval(every, || PartitionMsg::IsrTick);
    }
    if let (Some(every), Some(_)) = (env.leader_rebalance_interval, &env.peers) {
        myself.send_interval(every.max(Duration::from_millis(100)), || PartitionMsg::RebalanceTick);
    }
}
