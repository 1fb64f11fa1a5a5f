//! A partition actor: owns the partition's openraft group and its log. Produce requests become
//! Raft entries; the log store gives them offsets and the committer makes them durable; the
//! state machine moves the high watermark on commit. Fetches read the log directly through the
//! registry (reads change no state).

use crate::actors::partition::env::PartitionEnv;
use crate::actors::partition::handoff::Handoff;
use crate::actors::partition::registry::PartitionHandle;
use crate::actors::partition::start::{
    debug_delay_recovery, new_shared, open_group, open_log, publish, schedule_ticks,
};
use crate::protocol::batch::BatchHeader;
use crate::storage::log::entry::ProducerInfo;
use crate::storage::log::segment::now_ms;
use crate::storage::log::{LogConfig, PartitionLog};
use crate::storage::partition_sm::PartitionShared;
use crate::storage::producer_state::ProducerStates;
use crate::types::TopicPartition;
use crate::types::{NodeId, Raft};
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

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
    /// Where the started partition's handle goes: to the supervisor, which alone publishes
    /// handles in the registry and removes them.
    pub publish: Option<oneshot::Sender<Arc<PartitionHandle>>>,
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

impl Actor for PartitionActor {
    type Msg = PartitionMsg;
    type State = PartitionState;
    type Arguments = PartitionArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<PartitionMsg>,
        mut args: PartitionArgs,
    ) -> Result<PartitionState, ActorProcessingErr> {
        debug_delay_recovery().await;
        let (log, report) = open_log(&args).await?;
        let shared = new_shared(&args);
        let raft = open_group(&args, log.clone(), shared.clone()).await?;
        tracing::debug!(partition = ?args.tp, entries = report.entries, end_offset = log.end_offset(), "partition recovered");
        publish(&myself, &mut args, &raft, &log, &shared);
        schedule_ticks(&myself, &args.env);
        Ok(PartitionState {
            env: args.env,
            tp: args.tp,
            raft,
            producers: report.producers,
            led_term: None,
            waiters: HashMap::new(),
            last_expiry_ms: now_ms(),
            log,
            shared,
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
                producer,
                result,
                reply,
            } => st.appended(producer, result, reply),
            PartitionMsg::RetentionTick => st.apply_retention().await,
            PartitionMsg::IsrTick => st.report_isr(),
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
            PartitionMsg::Reassign => st.reassign(),
            PartitionMsg::DeleteRecords { offset, reply } => st.delete_records(&myself, offset, reply).await?,
            #[cfg(debug_assertions)]
            PartitionMsg::Crash => panic!("test hook: partition {:?} asked to crash", st.tp),
        }
        Ok(())
    }
}

impl PartitionState {
    /// The group's leader as this node acts on it (`cluster::acting_leader`, with the lease).
    pub(super) fn acting_leader(&self) -> Option<NodeId> {
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
            match self.log.apply_retention(&*self.env.sink, plan, membership).await {
                Ok(removed) => {
                    tracing::info!(topic = %self.tp.topic, partition = self.tp.partition, segments = removed.segments, bytes = removed.bytes, log_start_offset = self.log.start_offset(), "retention removed old segments");
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

/// Shuts a partition's Raft group down, bounded in time; whether it is down.
pub async fn shutdown_raft(handle: &PartitionHandle, timeout: Duration) -> bool {
    if tokio::time::timeout(timeout, handle.raft.shutdown()).await.is_err() {
        tracing::warn!("raft group did not shut down within {timeout:?}");
        return false;
    }
    true
}
