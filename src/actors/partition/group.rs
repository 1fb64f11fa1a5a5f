//! A partition's Raft group around its actor: forming a new group (who initializes it) and
//! watching its leadership (registry bumps, controller reports, carrying on reassignments).

use crate::actors::partition::actor::PartitionMsg;
use crate::actors::partition::registry::Registry;
use crate::actors::partition::reports::LeaderReports;
use crate::cluster::network::Peers;
use crate::storage::meta_sm::ClusterMeta;
use crate::storage::partition_sm::PartitionShared;
use crate::types::TopicPartition;
use crate::types::{NodeId, Raft};
use openraft::BasicNode;
use ractor::ActorRef;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Bumps the registry whenever this group's leader or term changes (Metadata, readiness
/// waits); ends when the group shuts down.
pub fn spawn_leadership_watch(
    raft: Raft,
    registry: Arc<Registry>,
    shared: Arc<PartitionShared>,
    reports: Option<(Arc<LeaderReports>, TopicPartition, NodeId)>,
    actor: ActorRef<PartitionMsg>,
) {
    let mut metrics = raft.metrics();
    drop(raft);
    let owner = actor.clone();
    let fail_partition = move |why: String| {
        let _ = owner.send_message(PartitionMsg::GroupStopped(why));
    };
    crate::tasks::spawn_watched(
        "leadership-watch",
        async move {
            let mut last = (None, 0);
            loop {
                let now = {
                    let m = metrics.borrow_and_update();
                    // Followers holding everything the leader holds are caught up now (the
                    // in-sync set counts those caught up within replica.lag.time.max.ms).
                    if let Some(replication) = &m.replication {
                        let at = std::time::Instant::now();
                        let mut caught_up = shared.caught_up.lock();
                        for (id, matched) in replication {
                            if matched.map(|l| l.index) >= m.last_log_index {
                                caught_up.insert(*id, at);
                            }
                        }
                    }
                    // A group that stopped on an error (a failed write) makes its actor fail, so
                    // the supervisor restarts it: followers would otherwise never notice.
                    if let Err(fatal) = &m.running_state {
                        if !matches!(fatal, openraft::error::Fatal::Stopped) {
                            let _ = actor.send_message(PartitionMsg::GroupStopped(fatal.to_string()));
                        }
                        return;
                    }
                    // Raft's view without the lease: what the controller records (a leader that
                    // cannot reach it reports nothing anyway).
                    (crate::cluster::acting_leader(&m, None, 0), m.current_term)
                };
                if now != last {
                    last = now;
                    registry.bump();
                    if let Some((reports, tp, me)) = &reports {
                        if now.0 == Some(*me) {
                            let epoch = now.1.min(i32::MAX as u64) as i32;
                            reports.report(&tp.topic, tp.partition, *me as i32, epoch);
                            // A new leader carries on with a pending reassignment.
                            let _ = actor.send_message(PartitionMsg::Reassign);
                        }
                    }
                }
                if metrics.changed().await.is_err() {
                    return;
                }
            }
        },
        fail_partition,
    );
}

/// Forms a new group. openraft's `initialize` starts an election at once, so the preferred
/// replica (the first) initializes right away and becomes the first leader: leaders spread as
/// placement spread them. The other replicas get the group from it by replication (their
/// votes count while they wait); only if the preferred replica is down (unheard for three
/// election timeouts) do they initialize themselves. Each initializes with the same members;
/// one that already has the group's log is told so, which is fine.
pub async fn initialize_group(
    raft: &Raft,
    members: BTreeMap<NodeId, BasicNode>,
    preferred: NodeId,
    me: NodeId,
    peers: Option<Arc<Peers>>,
    tp: TopicPartition,
    meta: Arc<parking_lot::RwLock<Arc<ClusterMeta>>>,
) {
    // A group that ever had a leader exists elsewhere: a replica without data (it was down
    // when the group formed, or lost its disk) joins it by replication and never initializes,
    // which would only start competing elections.
    let formed = move || {
        let meta = meta.read();
        meta.leaders
            .get(&tp.topic)
            .is_some_and(|l| l.contains_key(&tp.partition))
    };
    if formed() {
        return;
    }
    if preferred == me {
        if let Err(e) = raft.initialize(members).await {
            tracing::debug!(error = %e, "partition group already initialized");
        }
        return;
    }
    let raft = raft.clone();
    let wait = Duration::from_millis(3 * raft.config().election_timeout_max);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(wait).await;
            if formed() || !matches!(raft.is_initialized().await, Ok(false)) {
                return;
            }
            // Still forming: the preferred replica (alive) is campaigning; competing with it
            // would only split the votes.
            if peers.as_ref().is_some_and(|p| p.heard_within(preferred, wait)) {
                continue;
            }
            if let Err(e) = raft.initialize(members).await {
                tracing::debug!(error = %e, "partition group already initialized");
            }
            return;
        }
    });
}
