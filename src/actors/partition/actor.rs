//! A partition actor: owns the partition's openraft group and its log. Produce requests become
//! Raft entries; the log store gives them offsets and the committer makes them durable; the
//! state machine moves the high watermark on commit. Fetches read the log directly through the
//! registry (reads change no state).

use crate::actors::partition::env::PartitionEnv;
use crate::actors::partition::group::{initialize_group, spawn_leadership_watch};
use crate::actors::partition::handoff::Handoff;
use crate::actors::partition::reassign::Reassigner;
use crate::actors::partition::registry::{in_sync, PartitionHandle};
use crate::cluster::network::Network;
use crate::cluster::wire::GroupId;
use crate::protocol::batch::BatchHeader;
use crate::storage::log::entry::ProducerInfo;
use crate::storage::log::segment::now_ms;
use crate::storage::log::{LogConfig, PartitionLog};
use crate::storage::partition_sm::{PartitionShared, PartitionSm};
use crate::storage::producer_state::ProducerStates;
use crate::storage::raft_log::LogStore;
use crate::types::TopicPartition;
use crate::types::{Command, NodeId, Raft};
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use openraft::error::ClientWriteError;
use openraft::BasicNode;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, watch, Semaphore};

/// Reply to a produce: the batch's base offset, or a Kafka error.
pub type ProduceReply = oneshot::Sender<Result<i64, ResponseError>>;

/// The answer to an election request: done, or a Kafka error and why.
pub type ElectReply = oneshot::Sender<Result<(), (ResponseError, String)>>;

/// Why a partition actor failed when its Raft group stopped on an error (a failed write or
/// fsync): the supervisor hands a leadership it held to another replica.
#[derive(Debug, thiserror::Error)]
#[error("raft group of {tp:?} stopped: {why}")]
pub struct GroupStopped {
    /// The partition.
    pub tp: TopicPartition,
    /// The group's fatal error.
    pub why: String,
}

impl GroupStopped {
    /// The actor's failure for `tp`'s group stopping on `why`.
    pub fn failure(tp: &TopicPartition, why: impl std::fmt::Display) -> ActorProcessingErr {
        Box::new(GroupStopped {
            tp: tp.clone(),
            why: why.to_string(),
        })
    }
}

/// Messages a partition actor takes.
pub enum PartitionMsg {
    /// Append a validated batch; reply once it is committed.
    Produce {
        batch: Bytes,
        header: BatchHeader,
        reply: ProduceReply,
    },
    /// An idempotent batch's append finished: update producer state and answer its waiters.
    Appended {
        producer: ProducerInfo,
        result: Result<i64, ResponseError>,
        reply: ProduceReply,
    },
    /// Apply retention now (sent to itself every `log.retention.check.interval.ms`).
    RetentionTick,
    /// Move the log start offset to `offset` (-1: the high watermark); reply with the new start.
    DeleteRecords { offset: i64, reply: ProduceReply },
    /// A reassignment of this partition may be pending: its leader drives it.
    Reassign,
    /// While leading, report changed in-sync replicas to the controller (sent to itself every
    /// half `replica.lag.time.max.ms`), so nodes that do not lead the partition show them.
    IsrTick,
    /// Check whether leadership should go back to the preferred replica (sent to itself every
    /// `leader.imbalance.check.interval.seconds`).
    RebalanceTick,
    /// This node's first entry of `term` is applied (`ready`), or it was not within an election
    /// timeout: produces held since it became leader go ahead, in order, or are refused.
    LeaderReady { term: u64, ready: bool },
    /// ElectLeaders (preferred): hand leadership to the preferred replica now; reply once it
    /// moved, or why it did not.
    ElectPreferred { reply: ElectReply },
    /// The node is shutting down: hand leadership to any in-sync replica first (Kafka's
    /// controlled shutdown); reply whether it moved (false at once when this node does not
    /// lead or no replica can take over).
    HandAway { reply: RpcReplyPort<bool> },
    /// The Raft group stopped on an error: the actor fails, and the supervisor restarts it.
    GroupStopped(String),
    /// Test hook: panic inside the actor, to exercise supervision.
    #[cfg(debug_assertions)]
    Crash,
}

/// What a partition needs to start.
pub struct PartitionArgs {
    pub env: Arc<PartitionEnv>,
    pub tp: TopicPartition,
    pub dir: PathBuf,
    pub topic_id: uuid::Uuid,
    /// The node-wide log settings with the topic's overrides.
    pub log_config: LogConfig,
    /// Node ids of this partition's replicas: the members of its Raft group.
    pub replicas: Vec<i32>,
}

/// A running partition's state.
pub struct PartitionState {
    pub(super) env: Arc<PartitionEnv>,
    pub(super) tp: TopicPartition,
    pub(super) raft: Raft,
    /// Idempotent producers' sequences, including batches still being appended.
    pub(super) producers: ProducerStates,
    /// The Raft term in which `producers` was last taken over from the log.
    pub(super) led_term: Option<u64>,
    /// Retries of a batch that is still being appended, answered with it.
    pub(super) waiters: HashMap<(i64, i32), Vec<ProduceReply>>,
    pub(super) last_expiry_ms: i64,
    pub(super) log: Arc<PartitionLog>,
    pub(super) shared: Arc<PartitionShared>,
    /// Set while this node drives a reassignment of the partition.
    pub(super) reassigning: Arc<std::sync::atomic::AtomicBool>,
    /// The (leader epoch, in-sync replicas) last reported to the controller.
    pub(super) reported_isr: Option<(i32, Vec<i32>)>,
    /// Log end once every batch submitted in this term is appended (the broken build's
    /// early acknowledgements name offsets from it; see `broken_build`).
    pub(super) predicted_end: i64,
    /// Produces held until this new leader's first entry is applied, in arrival order.
    pub(super) held: std::collections::VecDeque<super::produce::HeldProduce>,
    /// The term whose first applied entry is being waited for.
    pub(super) held_term: Option<u64>,
}

/// The partition actor.
pub struct PartitionActor;

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

impl Actor for PartitionActor {
    type Msg = PartitionMsg;
    type State = PartitionState;
    type Arguments = PartitionArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<PartitionMsg>,
        args: PartitionArgs,
    ) -> Result<PartitionState, ActorProcessingErr> {
        // Debug-build test hook: slow recovery down so readiness can be observed before it ends.
        #[cfg(debug_assertions)]
        if let Some(ms) = std::env::var("RS_DEBUG_RECOVERY_DELAY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        // Creating a partition fsyncs its marker and files, and recovery reads its segments: on
        // the blocking pool, not a runtime worker (a topic of many partitions created at once
        // held both workers long enough for the controller's 50 ms heartbeats to time out).
        let (dir, topic_id, log_config) = (args.dir.clone(), args.topic_id, args.log_config);
        let (log, report) = tokio::task::spawn_blocking(move || {
            claim_dir(&dir, topic_id)?;
            PartitionLog::open(&dir, log_config)
        })
        .await??;
        if let Some((bytes, why)) = &report.truncated {
            tracing::warn!(partition = ?args.tp, bytes, reason = %why, "cut a torn or corrupt tail during recovery");
        }
        let log = Arc::new(log);
        let shared = Arc::new(PartitionShared {
            high_watermark: watch::channel(0).0,
            caught_up: Default::default(),
            membership: Default::default(),
            purge_allowed: Default::default(),
            handing_off: Default::default(),
            // Any stall so far counts as confirmed: a group opened now leads only once a quorum
            // acked it in this run (`acting_leader` wants `millis_since_quorum_ack`, which a new
            // Raft instance sets only from acks it received), so after any earlier stall.
            stall_confirmed: args.env.peers.as_ref().map(|p| p.liveness.stalls()).unwrap_or(0).into(),
        });
        let sm = PartitionSm::open(&args.dir, shared.clone(), log.clone());
        let store = LogStore::new(log.clone(), args.env.sink.clone()).purging_with(shared.clone());
        let group = GroupId::of(&args.tp);
        let raft = Raft::new(
            args.env.node_id,
            args.env.raft_config.clone(),
            Network::new(group, args.env.peers.clone()),
            store,
            sm,
        )
        .await?;
        // A replica being added by a reassignment joins the group as a learner: the leader
        // brings it in; it never forms a group of its own.
        let joining = !args.replicas.contains(&(args.env.node_id as i32));
        if !joining && !raft.is_initialized().await? {
            let members: BTreeMap<NodeId, BasicNode> = match &args.env.peers {
                Some(peers) => args
                    .replicas
                    .iter()
                    .map(|id| {
                        let addr = peers.addr_of(*id as NodeId).unwrap_or_default();
                        (*id as NodeId, BasicNode::new(addr))
                    })
                    .collect(),
                None => BTreeMap::from([(args.env.node_id, BasicNode::default())]),
            };
            let preferred = args.replicas.first().map_or(args.env.node_id, |id| *id as NodeId);
            let (tp, meta) = (args.tp.clone(), args.env.meta.clone());
            initialize_group(
                &raft,
                members,
                preferred,
                args.env.node_id,
                args.env.peers.clone(),
                tp,
                meta,
            )
            .await;
        }
        tracing::debug!(partition = ?args.tp, entries = report.entries, end_offset = log.end_offset(), "partition recovered");
        let (handle_log, handle_shared) = (log.clone(), shared.clone());
        let handle = Arc::new(PartitionHandle {
            actor: myself.clone(),
            raft: raft.clone(),
            log,
            shared,
            produce_permits: Arc::new(Semaphore::new(args.env.max_pending_produces.max(1))),
            node_id: args.env.node_id,
            peers: args.env.peers.clone(),
        });
        args.env.registry.insert(args.tp.clone(), handle);
        spawn_leadership_watch(
            raft.clone(),
            args.env.registry.clone(),
            handle_shared.clone(),
            args.env
                .leader_reports
                .clone()
                .map(|r| (r, args.tp.clone(), args.env.node_id)),
            myself.clone(),
        );
        myself.send_interval(
            Duration::from_millis(args.env.retention_check_interval_ms.max(10)),
            || PartitionMsg::RetentionTick,
        );
        if args.env.leader_reports.is_some() {
            let every = (args.env.replica_lag_time_max / 2).max(Duration::from_millis(100));
            myself.send_interval(every, || PartitionMsg::IsrTick);
        }
        if let (Some(every), Some(_)) = (args.env.leader_rebalance_interval, &args.env.peers) {
            myself.send_interval(every.max(Duration::from_millis(100)), || PartitionMsg::RebalanceTick);
        }
        Ok(PartitionState {
            env: args.env,
            tp: args.tp,
            raft,
            producers: report.producers,
            led_term: None,
            waiters: HashMap::new(),
            last_expiry_ms: now_ms(),
            log: handle_log,
            shared: handle_shared,
            reassigning: Default::default(),
            reported_isr: None,
            predicted_end: 0,
            held: Default::default(),
            held_term: None,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<PartitionMsg>,
        msg: PartitionMsg,
        st: &mut PartitionState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            PartitionMsg::Produce { batch, header, reply } => st.produce(&myself, batch, header, reply).await?,
            PartitionMsg::LeaderReady { term, ready } => st.leader_ready(&myself, term, ready).await?,
            PartitionMsg::Appended {
                producer: p,
                result,
                reply,
            } => {
                match result {
                    Ok(base) => st
                        .producers
                        .record(p.id, p.epoch, p.first_seq, p.count, Some(base), now_ms()),
                    Err(code) => {
                        tracing::debug!(target: "raftstream::idempotence", partition = ?st.tp, producer = p.id,
                            epoch = p.epoch, first_seq = p.first_seq, error = ?code, "append failed; sequence forgotten");
                        st.producers.forget_from(p.id, p.first_seq)
                    }
                }
                let _ = reply.send(result);
                for w in st.waiters.remove(&(p.id, p.first_seq)).unwrap_or_default() {
                    let _ = w.send(result);
                }
                let now = now_ms();
                if now - st.last_expiry_ms > 60_000 {
                    st.producers.expire(now - st.env.producer_expiration_ms);
                    st.last_expiry_ms = now;
                }
            }
            PartitionMsg::RetentionTick => st.apply_retention().await,
            PartitionMsg::IsrTick => {
                let lag = st.env.replica_lag_time_max;
                let isr = in_sync(&st.raft, &st.shared, st.env.node_id, st.env.peers.as_deref(), lag);
                if let (Some(isr), Some(reports)) = (isr, &st.env.leader_reports) {
                    let epoch = st.raft.metrics().borrow().current_term.min(i32::MAX as u64) as i32;
                    let now = Some((epoch, isr));
                    if now != st.reported_isr {
                        let (epoch, isr) = now.clone().expect("just set");
                        reports.isr(&st.tp.topic, st.tp.partition, epoch, isr);
                        st.reported_isr = now;
                    }
                }
            }
            PartitionMsg::RebalanceTick => {
                st.hand_off(false);
            }
            PartitionMsg::ElectPreferred { reply } => st.elect_preferred(reply),
            PartitionMsg::HandAway { reply } => match st.hand_off(true) {
                Some(handoff) => {
                    tokio::spawn(async move {
                        let _ = reply.send(handoff.await.unwrap_or(false));
                    });
                }
                None => {
                    let _ = reply.send(false);
                }
            },
            PartitionMsg::GroupStopped(why) => {
                return Err(GroupStopped::failure(&st.tp, why));
            }
            PartitionMsg::Reassign => {
                if let (Some(peers), Some(reports)) = (&st.env.peers, &st.env.leader_reports) {
                    Reassigner {
                        tp: st.tp.clone(),
                        node_id: st.env.node_id,
                        raft: st.raft.clone(),
                        peers: peers.clone(),
                        meta: st.env.meta.clone(),
                        reports: reports.clone(),
                        catch_up_timeout: st.env.reassignment_catch_up_timeout,
                        running: st.reassigning.clone(),
                    }
                    .start();
                }
            }
            PartitionMsg::DeleteRecords { offset, reply } => {
                let hwm = *st.shared.high_watermark.borrow();
                let target = if offset == -1 { hwm } else { offset };
                if st.acting_leader() != Some(st.env.node_id) {
                    let _ = reply.send(Err(ResponseError::NotLeaderOrFollower));
                } else if target < 0 || target > hwm {
                    let _ = reply.send(Err(ResponseError::OffsetOutOfRange));
                } else {
                    // Through the group, so every replica moves its log start (durably, when it
                    // applies the entry); whole segments below it go with the next retention
                    // passes (a snapshot first, then openraft's purge).
                    let rx = match st.raft.client_write_ff(Command::LogStart(target)).await {
                        Ok(rx) => rx,
                        Err(fatal) => {
                            let _ = reply.send(Err(ResponseError::NotLeaderOrFollower));
                            return Err(GroupStopped::failure(&st.tp, fatal));
                        }
                    };
                    tokio::spawn(async move {
                        let result = match rx.await {
                            Ok(Ok(resp)) => {
                                let _ = myself.send_message(PartitionMsg::RetentionTick);
                                Ok(resp.data.base_offset)
                            }
                            Ok(Err(ClientWriteError::ForwardToLeader(_))) | Err(_) => {
                                Err(ResponseError::NotLeaderOrFollower)
                            }
                            Ok(Err(_)) => Err(ResponseError::KafkaStorageError),
                        };
                        let _ = reply.send(result);
                    });
                }
            }
            #[cfg(debug_assertions)]
            PartitionMsg::Crash => panic!("test hook: partition {:?} asked to crash", st.tp),
        }
        Ok(())
    }
}

impl PartitionState {
    /// The group's leader as this node acts on it (`cluster::acting_leader`, with the lease).
    fn acting_leader(&self) -> Option<NodeId> {
        let liveness = self.env.peers.as_ref().map(|p| &p.liveness);
        let confirmed = self.shared.confirmed_stalls();
        crate::cluster::acting_leader(&self.raft.metrics().borrow(), liveness, confirmed)
    }

    /// Moves leadership to the preferred replica (the first of the partition's replicas), as
    /// ElectLeaders asks; `reply` learns the outcome once the handoff is over.
    fn elect_preferred(&self, reply: ElectReply) {
        let preferred = {
            let meta = self.env.meta.read();
            meta.topics
                .get(&self.tp.topic)
                .and_then(|t| t.replicas.get(self.tp.partition as usize))
                .and_then(|r| r.first().copied())
        };
        let leader = self.acting_leader();
        if leader != Some(self.env.node_id) {
            let _ = reply.send(Err((
                ResponseError::NotLeaderOrFollower,
                "this node does not lead the partition".into(),
            )));
            return;
        }
        if preferred.is_none_or(|p| p as NodeId == self.env.node_id) {
            let _ = reply.send(Err((
                ResponseError::ElectionNotNeeded,
                "the preferred replica leads".into(),
            )));
            return;
        }
        let not_available = |why: &str| Err((ResponseError::PreferredLeaderNotAvailable, why.to_string()));
        let Some(handoff) = self.hand_off(false) else {
            let _ = reply.send(not_available(
                "the preferred replica is not alive, caught up and a voter, or a handoff is under way",
            ));
            return;
        };
        tokio::spawn(async move {
            let answer = match handoff.await {
                Ok(true) => Ok(()),
                _ => not_available("the preferred replica did not win the election"),
            };
            let _ = reply.send(answer);
        });
    }

    /// Starts a leadership handoff: to the preferred replica, or with `away` to any in-sync one.
    /// The handoff's task (resolving to whether leadership moved), if one started.
    pub(super) fn hand_off(&self, away: bool) -> Option<tokio::task::JoinHandle<bool>> {
        let peers = self.env.peers.as_ref()?;
        Handoff {
            tp: self.tp.clone(),
            node_id: self.env.node_id,
            raft: self.raft.clone(),
            peers: peers.clone(),
            meta: self.env.meta.clone(),
            shared: self.shared.clone(),
            alive_within: self.env.replica_lag_time_max,
            away,
        }
        .start()
    }

    /// Removes the segments retention (topic override or broker default) or the log start
    /// offset allow; failures are logged and retried on the next tick.
    async fn apply_retention(&mut self) {
        let limits = self.env.retention_for(self.env.meta.read().topics.get(&self.tp.topic));
        let hwm = *self.shared.high_watermark.borrow();
        let Some(plan) = self.log.retention_plan(now_ms(), limits, hwm) else {
            return;
        };
        // openraft must know what leaves the log (a follower that needs it then gets a
        // snapshot): first a snapshot covering it, then openraft's purge, which removes the
        // segments through the log store.
        self.shared
            .purge_allowed
            .fetch_max(plan.last.index, std::sync::atomic::Ordering::SeqCst);
        let (snapshot, purged) = {
            let m = self.raft.metrics();
            let m = m.borrow();
            (m.snapshot.map(|s| s.index), m.purged.map(|p| p.index))
        };
        let result = if purged >= Some(plan.last.index) {
            // openraft purged this far already (it purges up to every snapshot): it never
            // reads these entries again, so the segments can go now.
            let membership = self.shared.membership.lock().clone();
            match self.log.apply_retention(plan, membership) {
                Ok(bytes) => {
                    tracing::info!(topic = %self.tp.topic, partition = self.tp.partition, segments = plan.segments, bytes, log_start_offset = self.log.start_offset(), "retention removed old segments");
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            }
        } else if snapshot < Some(plan.last.index) {
            self.raft.trigger().snapshot().await.map_err(|e| e.to_string())
        } else {
            self.raft
                .trigger()
                .purge_log(plan.last.index)
                .await
                .map_err(|e| e.to_string())
        };
        if let Err(e) = result {
            tracing::error!(topic = %self.tp.topic, partition = self.tp.partition, error = %e, "retention failed");
        }
    }
}

/// Shuts a partition's Raft group down, bounded in time.
pub async fn shutdown_raft(handle: &PartitionHandle, timeout: Duration) {
    if tokio::time::timeout(timeout, handle.raft.shutdown()).await.is_err() {
        tracing::warn!("raft group did not shut down within {timeout:?}");
    }
}
