//! Starts and stops partition actors to match cluster metadata, and restarts a partition actor
//! that panics or fails: its Raft group is shut down, then a new actor recovers from the files.
//! Too many restarts of one partition within a window escalate to the broker.

use crate::actors::partition::actor::{shutdown_raft, GroupStopped, PartitionActor, PartitionArgs, PartitionMsg};
use crate::actors::partition::env::PartitionEnv;
use crate::actors::partition::registry::PartitionHandle;
use crate::cluster::handover::hand_leadership;
use crate::cluster::network::Peers;
use crate::cluster::wire::GroupId;
use crate::types::NodeId;
use crate::types::TopicPartition;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Messages the partition supervisor takes.
pub enum SupervisorMsg {
    /// Metadata changed: start and stop partitions to match it.
    Reconcile,
    /// A partition actor finished starting, with the handle to publish (or failed to start).
    Started {
        tp: TopicPartition,
        result: Result<(ActorRef<PartitionMsg>, Arc<PartitionHandle>), String>,
    },
    /// Start `tp` again after a failure (its old Raft group is already shut down).
    Restart(TopicPartition),
    /// Stop every partition (shutdown) and answer.
    StopAll(RpcReplyPort<()>),
    /// A failed partition's Raft group would not shut down: a new one must not open the same
    /// files, so the failure escalates to the broker.
    Stuck(TopicPartition),
}

/// What the supervisor needs.
pub struct SupervisorArgs {
    /// What every partition shares.
    pub env: Arc<PartitionEnv>,
    pub max_restarts: u32,
    pub restart_window: Duration,
    /// The tasks that stop a failed partition's group, hand a leadership it held over and
    /// restart it: the broker waits for them as it stops (a broker stopping because a
    /// partition keeps failing would end a handover otherwise).
    pub handovers: Arc<parking_lot::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

struct Child {
    actor: Option<ActorRef<PartitionMsg>>,
    topic_id: uuid::Uuid,
    restarts: VecDeque<Instant>,
}

/// Supervisor state.
pub struct SupervisorState {
    args: SupervisorArgs,
    children: HashMap<TopicPartition, Child>,
    by_actor: HashMap<ActorId, TopicPartition>,
    stopping: bool,
}

/// The partition supervisor actor.
pub struct PartitionSupervisor;

impl PartitionSupervisor {
    fn start_child(myself: &ActorRef<SupervisorMsg>, st: &SupervisorState, tp: TopicPartition, topic_id: uuid::Uuid) {
        let topic = st.args.env.meta.read().topics.get(&tp.topic).cloned();
        let env = &st.args.env;
        let (publish, published) = tokio::sync::oneshot::channel();
        let args = PartitionArgs {
            env: env.clone(),
            dir: env.partition_dir(&tp),
            tp: tp.clone(),
            topic_id,
            log_config: env.log_config_for(topic.as_ref()),
            replicas: topic
                .as_ref()
                .map(|t| t.replicas_of(tp.partition, env.node_id as i32))
                .unwrap_or_default(),
            publish: Some(publish),
        };
        let me = myself.clone();
        // Recovery runs in the child's pre_start; spawning from a task keeps this supervisor
        // responsive while many partitions recover.
        tokio::spawn(async move {
            let result = match Actor::spawn_linked(None, PartitionActor, args, me.get_cell()).await {
                // A started partition sent its handle before its pre_start returned.
                Ok((actor, _)) => match published.await {
                    Ok(handle) => Ok((actor, handle)),
                    Err(_) => Err("partition started without a handle".to_string()),
                },
                Err(e) => Err(format!("{e}")),
            };
            let _ = me.send_message(SupervisorMsg::Started { tp, result });
        });
    }

    /// Publishes a partition that started; one that failed before this (its failure event
    /// found no partition to restart) is failed now.
    fn started(
        myself: &ActorRef<SupervisorMsg>,
        st: &mut SupervisorState,
        tp: TopicPartition,
        actor: ActorRef<PartitionMsg>,
        handle: Arc<PartitionHandle>,
    ) -> Result<(), ActorProcessingErr> {
        if !st.children.contains_key(&tp) || st.stopping {
            actor.stop(None);
            let mut tasks = st.args.handovers.lock();
            tasks.push(tokio::spawn(async move { retire(&handle).await }));
            return Ok(());
        }
        st.args.env.registry.insert(tp.clone(), handle);
        if !ractor::ACTIVE_STATES.contains(&actor.get_status()) {
            return PartitionSupervisor::failed(myself, st, tp, false);
        }
        st.by_actor.insert(actor.get_id(), tp.clone());
        if let Some(c) = st.children.get_mut(&tp) {
            c.actor = Some(actor);
        }
        Ok(())
    }

    /// Starts and stops partitions to match the metadata.
    async fn reconcile(myself: &ActorRef<SupervisorMsg>, st: &mut SupervisorState) {
        PartitionSupervisor::apply_segment_sizes(st);
        let wanted = PartitionSupervisor::wanted(st);
        let gone: Vec<TopicPartition> = st
            .children
            .iter()
            .filter(|(tp, c)| wanted.get(*tp) != Some(&c.topic_id))
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in gone {
            tracing::info!(topic = %tp.topic, partition = tp.partition, "stopping a partition no longer held here");
            PartitionSupervisor::stop_child(st, &tp, true).await;
        }
        PartitionSupervisor::nudge_reassignments(st);
        for (tp, topic_id) in wanted {
            if !st.children.contains_key(&tp) {
                let child = Child {
                    actor: None,
                    topic_id,
                    restarts: VecDeque::new(),
                };
                st.children.insert(tp.clone(), child);
                PartitionSupervisor::start_child(myself, st, tp, topic_id);
            }
        }
    }

    /// The partitions this node holds a replica of, or is to hold (reassignments), with their
    /// topics' ids.
    fn wanted(st: &SupervisorState) -> HashMap<TopicPartition, uuid::Uuid> {
        let local = st.args.env.node_id as i32;
        let meta = st.args.env.meta.read();
        meta.topics
            .values()
            .flat_map(|t| {
                (0..t.partitions)
                    .filter(move |p| t.hosts_of(*p, local).contains(&local))
                    .map(move |p| {
                        let tp = TopicPartition {
                            topic: t.name.clone(),
                            partition: p,
                        };
                        (tp, t.topic_id)
                    })
            })
            .collect()
    }

    /// Gives every running partition its topic's `segment.bytes` and `segment.ms` (override or
    /// broker default).
    fn apply_segment_sizes(st: &SupervisorState) {
        let meta = st.args.env.meta.read().clone();
        for (tp, handle) in st.args.env.registry.all() {
            if let Some(topic) = meta.topics.get(&tp.topic) {
                let cfg = st.args.env.log_config_for(Some(topic));
                handle.log.set_segment_bytes(cfg.segment_bytes);
                handle.log.set_segment_ms(cfg.segment_ms);
            }
        }
    }

    /// Tells every running partition with a pending reassignment; its leader drives it.
    fn nudge_reassignments(st: &SupervisorState) {
        let meta = st.args.env.meta.read().clone();
        for t in meta.topics.values().filter(|t| !t.reassigning.is_empty()) {
            for p in t.reassigning.keys() {
                let tp = TopicPartition {
                    topic: t.name.clone(),
                    partition: *p,
                };
                if let Some(actor) = st.children.get(&tp).and_then(|c| c.actor.as_ref()) {
                    let _ = actor.send_message(PartitionMsg::Reassign);
                }
            }
        }
    }

    /// Counts a failure of `tp`; `Err` means the restart limit is exceeded.
    fn note_failure(st: &mut SupervisorState, tp: &TopicPartition) -> Result<(), ActorProcessingErr> {
        let (max, window) = (st.args.max_restarts, st.args.restart_window);
        let Some(child) = st.children.get_mut(tp) else {
            return Ok(());
        };
        child.actor = None;
        let now = Instant::now();
        child.restarts.push_back(now);
        while child.restarts.front().is_some_and(|t| now.duration_since(*t) > window) {
            child.restarts.pop_front();
        }
        if child.restarts.len() as u32 > max {
            let msg = format!(
                "partition {}-{} failed {} times within {:?}; escalating to the broker",
                tp.topic,
                tp.partition,
                child.restarts.len(),
                window
            );
            tracing::error!("{msg}");
            return Err(msg.into());
        }
        Ok(())
    }

    /// A partition failed: counts the failure (`Err` past the restart limit) and schedules its
    /// restart. A failure while the data dir is full is the disk's, not the partition's: it is
    /// not counted and the restart waits for room. A group this node led that stopped on an
    /// error (or on a full disk) is handed to another replica first (`hand_over_stopped`), even
    /// when this failure escalates: the broker waits for that handover as it stops.
    fn failed(
        myself: &ActorRef<SupervisorMsg>,
        st: &mut SupervisorState,
        tp: TopicPartition,
        group_stopped: bool,
    ) -> Result<(), ActorProcessingErr> {
        let disk_full = st.args.env.disk.check();
        if !st.stopping {
            let handle = st.args.env.registry.remove(&tp);
            let hand_over = disk_full || group_stopped;
            let peers = st.args.env.peers.clone().filter(|_| hand_over);
            let restart = Restart {
                supervisor: myself.clone(),
                disk: disk_full.then(|| st.args.env.disk.clone()),
            };
            let task = tokio::spawn(stop_and_restart(
                handle,
                peers,
                st.args.env.node_id,
                tp.clone(),
                restart,
            ));
            let mut tasks = st.args.handovers.lock();
            tasks.retain(|t| !t.is_finished());
            tasks.push(task);
        }
        if disk_full {
            tracing::warn!(topic = %tp.topic, partition = tp.partition, "partition stopped with the data dir full; restarting it once there is room");
            if let Some(child) = st.children.get_mut(&tp) {
                child.actor = None;
            }
            Ok(())
        } else {
            PartitionSupervisor::note_failure(st, &tp)
        }
    }

    async fn stop_child(st: &mut SupervisorState, tp: &TopicPartition, delete_data: bool) {
        if let Some(child) = st.children.remove(tp) {
            if let Some(actor) = child.actor {
                st.by_actor.remove(&actor.get_id());
                actor.stop(None);
            }
        }
        if let Some(handle) = st.args.env.registry.remove(tp) {
            retire(&handle).await;
        }
        if delete_data {
            let dir = st.args.env.partition_dir(tp);
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "could not remove a deleted partition's data");
            }
        }
    }
}

impl Actor for PartitionSupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        myself.send_message(SupervisorMsg::Reconcile)?;
        Ok(SupervisorState {
            args,
            children: HashMap::new(),
            by_actor: HashMap::new(),
            stopping: false,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        st: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Reconcile if !st.stopping => PartitionSupervisor::reconcile(&myself, st).await,
            SupervisorMsg::Reconcile => {}
            SupervisorMsg::Started { tp, result } => match result {
                Ok((actor, handle)) => PartitionSupervisor::started(&myself, st, tp, actor, handle)?,
                Err(e) => {
                    tracing::error!(topic = %tp.topic, partition = tp.partition, error = %e, "partition failed to start");
                    PartitionSupervisor::failed(&myself, st, tp, false)?;
                }
            },
            SupervisorMsg::Restart(tp) => {
                if let Some(child) = st.children.get(&tp) {
                    if child.actor.is_none() && !st.stopping {
                        let topic_id = child.topic_id;
                        PartitionSupervisor::start_child(&myself, st, tp, topic_id);
                    }
                }
            }
            SupervisorMsg::Stuck(tp) => {
                let why =
                    format!("the raft group of {tp:?} did not shut down after a failure; escalating to the broker");
                tracing::error!("{why}");
                return Err(why.into());
            }
            SupervisorMsg::StopAll(reply) => {
                st.stopping = true;
                let all: Vec<TopicPartition> = st.children.keys().cloned().collect();
                for tp in all {
                    PartitionSupervisor::stop_child(st, &tp, false).await;
                }
                let _ = reply.send(());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        evt: SupervisionEvent,
        st: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match evt {
            SupervisionEvent::ActorFailed(cell, err) => {
                let Some(tp) = st.by_actor.remove(&cell.get_id()) else {
                    return Ok(());
                };
                tracing::error!(topic = %tp.topic, partition = tp.partition, error = %err, "partition actor failed; restarting it");
                metrics::counter!(crate::observability::ACTOR_RESTARTS).increment(1);
                let group_stopped = err.downcast_ref::<GroupStopped>().is_some();
                PartitionSupervisor::failed(&myself, st, tp, group_stopped)?;
            }
            SupervisionEvent::ActorTerminated(cell, _, _) => {
                st.by_actor.remove(&cell.get_id());
            }
            _ => {}
        }
        Ok(())
    }
}

/// Shuts down a stopped partition's Raft group and syncs its log.
async fn retire(handle: &PartitionHandle) {
    shutdown_raft(handle, Duration::from_secs(5)).await;
    if let Err(e) = handle.log.sync_all() {
        tracing::error!(error = %e, "final sync failed");
    }
}

/// The group's voters, those holding the most of the log first: by the replication progress
/// the group last reported and, once that is gone (a group that stopped clears it), by when
/// each was last seen holding every entry. Only a replica with every committed entry can win,
/// and the others see the stopped leader alive, so they would not campaign themselves. Asking
/// a replica behind another left the partition without a leader until this node had room
/// again (8.5 s in a chaos run).
fn most_caught_up_first(handle: &PartitionHandle) -> Vec<NodeId> {
    let m = handle.raft.metrics().borrow().clone();
    let caught_up = handle.shared.caught_up.lock().clone();
    let matched = |id: &NodeId| {
        m.replication
            .as_ref()
            .and_then(|r| r.get(id).copied().flatten())
            .map(|l| l.index)
    };
    let mut voters: Vec<NodeId> = m.membership_config.membership().voter_ids().collect();
    voters.sort_by_key(|id| std::cmp::Reverse((matched(id), caught_up.get(id).copied())));
    voters
}

/// How much longer a failed partition's group may take to shut down (after the first 5 s)
/// before the failure escalates.
const STUCK_AFTER: Duration = Duration::from_secs(25);

/// Where a failed partition goes once its group is down and any handover is done.
struct Restart {
    supervisor: ActorRef<SupervisorMsg>,
    /// Set when the data dir is full: the restart waits for room.
    disk: Option<Arc<crate::storage::disk_guard::DiskGuard>>,
}

/// Shuts a failed partition's group down (cutting what a failed fsync may have dropped); if
/// this node led it and `peers` is given, hands the leadership over (`hand_over_stopped`); then
/// restarts the partition (on its own task, so the broker's wait for handovers does not wait
/// for a full disk to empty). The handover comes before the restart: openraft restores a
/// leadership its vote records, and a group restarted at once led again, replicated (renewing
/// the followers' lease, so the campaign lost) and failed again, until the broker stopped.
async fn stop_and_restart(
    handle: Option<Arc<PartitionHandle>>,
    peers: Option<Arc<Peers>>,
    node_id: NodeId,
    tp: TopicPartition,
    restart: Restart,
) {
    if let Some(handle) = handle {
        // Read before the shutdown: who led, and how far each replica got.
        let led = handle.raft.metrics().borrow().current_leader == Some(node_id);
        let candidates: Vec<NodeId> = most_caught_up_first(&handle)
            .into_iter()
            .filter(|v| *v != node_id)
            .collect();
        let lease = Duration::from_millis(handle.raft.config().election_timeout_max);
        // The lease runs from the group's last replication, which the shutdown ends.
        if !shutdown_raft(&handle, Duration::from_secs(5)).await && !shutdown_raft(&handle, STUCK_AFTER).await {
            let _ = restart.supervisor.send_message(SupervisorMsg::Stuck(tp));
            return;
        }
        cut_unsynced(&handle.log, &tp.topic, tp.partition);
        if let (true, Some(peers)) = (led, peers) {
            hand_over_stopped(&peers, &tp, &candidates, lease).await;
        }
    }
    tokio::spawn(async move {
        if let Some(disk) = restart.disk {
            disk.wait_not_low(crate::storage::disk_guard::CHECK_INTERVAL).await;
        }
        let _ = restart.supervisor.send_message(SupervisorMsg::Restart(tp));
    });
}

/// Asks the most caught-up of `candidates` to campaign for a group this node led, which
/// stopped (a write or fsync failed, or the disk is full), once the followers' vote lease ran
/// out. The others see this node alive and would wait for it: 2.5–3.1 s without
/// acknowledgements under failing fsyncs in chaos runs, 0.6–0.7 s with this. This node's group
/// is down, so it cannot see who won: the first candidate that campaigns is the answer (its own
/// election timer takes over if it loses).
async fn hand_over_stopped(peers: &Peers, tp: &TopicPartition, candidates: &[NodeId], lease: Duration) {
    let group = GroupId::of(tp);
    if let Some(to) = hand_leadership(peers, &group, candidates, lease, |_| async { true }).await {
        tracing::info!(partition = ?tp, to, "asked a replica to take over leadership");
    }
}

/// After a failed fsync, cuts the log back to what was last synced before its group restarts
/// (see `PartitionLog::cut_unsynced`).
fn cut_unsynced(log: &crate::storage::log::PartitionLog, topic: &str, partition: i32) {
    match log.cut_unsynced() {
        Ok(0) => {}
        Ok(entries) => {
            tracing::warn!(
                topic,
                partition,
                entries,
                "cut the entries written after the last successful fsync"
            )
        }
        Err(e) => tracing::error!(topic, partition, error = %e, "cutting the unsynced tail failed"),
    }
}
