//! The group coordinator (offsets part): committed offsets live as records in the Raft-replicated
//! `__consumer_offsets` partitions. Before serving a group, the coordinator replays the group's
//! partition up to its high watermark, answering COORDINATOR_LOAD_IN_PROGRESS meanwhile; a commit
//! is answered, and becomes visible to OffsetFetch, only once its record is committed.
//!
//! Membership (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) follows Kafka's state machine in
//! `group_state.rs`; it is kept in memory (members rejoin after a coordinator restart). Commits
//! come from members (checked against the generation) or from standalone consumers.

use super::group_state::Groups;
use super::partition::PartitionMsg;
use super::registry::Registry;
use crate::handlers::context::TopicPartition;
use crate::handlers::context::{GroupOp, GroupReply};
use crate::protocol::batch::validate_produced;
use crate::storage::offsets::{decode_records, encode_batch, partition_for, Committed, OffsetKey, OFFSETS_TOPIC};
use kafka_protocol::error::ResponseError;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// A replayed offset record and the log offset of its batch.
type Replayed = ((OffsetKey, Committed), i64);

/// One group's commits: (topic, partition) → (committed, log offset of the record's batch).
type GroupOffsets = HashMap<(String, i32), (Committed, i64)>;

/// Offsets fetched for a group.
pub type FetchReply = oneshot::Sender<Result<Vec<(OffsetKey, Committed)>, ResponseError>>;

/// Messages the coordinator takes.
pub enum CoordinatorMsg {
    /// Commit offsets of one group (all in one record batch), from a member or standalone.
    Commit {
        group: String,
        member: Option<(String, i32)>,
        entries: Vec<(OffsetKey, Committed)>,
        reply: oneshot::Sender<Result<(), ResponseError>>,
    },
    /// A membership operation.
    Group {
        op: GroupOp,
        reply: oneshot::Sender<GroupReply>,
    },
    /// Session and rebalance deadlines (every 100 ms).
    Tick,
    /// Committed offsets of a group: all of them, or of the listed partitions.
    Fetch {
        group: String,
        wanted: Option<Vec<(String, i32)>>,
        reply: FetchReply,
    },
    /// A partition's replay finished.
    Loaded {
        partition: i32,
        result: Result<Vec<Replayed>, String>,
    },
    /// Committed records, with the log offset of their batch, to apply.
    Applied {
        entries: Vec<(OffsetKey, Committed)>,
        log_offset: i64,
    },
}

/// What the coordinator needs.
pub struct CoordinatorArgs {
    pub registry: Arc<Registry>,
    /// `offsets.topic.num.partitions`.
    pub partitions: i32,
    /// How long one commit may wait for its record to be committed.
    pub commit_timeout: Duration,
    /// `group.initial.rebalance.delay.ms`.
    pub initial_rebalance_delay: Duration,
}

enum Load {
    Loading,
    Ready,
}

/// Coordinator state.
pub struct CoordinatorState {
    args: CoordinatorArgs,
    loads: HashMap<i32, Load>,
    /// group → (topic, partition) → (committed, log offset of the record's batch).
    offsets: HashMap<String, GroupOffsets>,
    groups: Groups,
}

/// The coordinator actor.
pub struct GroupCoordinator;

impl CoordinatorState {
    /// `Ok` when the group's partition is loaded; otherwise starts loading it.
    fn ready(&mut self, myself: &ActorRef<CoordinatorMsg>, group: &str) -> Result<(), ResponseError> {
        let p = partition_for(group, self.args.partitions);
        match self.loads.get(&p) {
            Some(Load::Ready) => Ok(()),
            Some(Load::Loading) => Err(ResponseError::CoordinatorLoadInProgress),
            None => {
                self.loads.insert(p, Load::Loading);
                spawn_load(myself.clone(), self.args.registry.clone(), p);
                Err(ResponseError::CoordinatorLoadInProgress)
            }
        }
    }

    fn apply(&mut self, entries: Vec<(OffsetKey, Committed)>, log_offset: i64) {
        for (k, v) in entries {
            let group = self.offsets.entry(k.group).or_default();
            let slot = group.entry((k.topic, k.partition));
            match slot {
                std::collections::hash_map::Entry::Occupied(mut o) if o.get().1 <= log_offset => {
                    o.insert((v, log_offset));
                }
                std::collections::hash_map::Entry::Occupied(_) => {}
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert((v, log_offset));
                }
            }
        }
    }
}

/// Replays offsets partition `p` once it has a leader here and every entry in its log is
/// committed (after a restart the high watermark catches up with the log end first).
fn spawn_load(me: ActorRef<CoordinatorMsg>, registry: Arc<Registry>, p: i32) {
    tokio::spawn(async move {
        let tp = TopicPartition {
            topic: OFFSETS_TOPIC.into(),
            partition: p,
        };
        let mut changed = registry.changed.subscribe();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let result = loop {
            if let Some(h) = registry.get(&tp) {
                let mut hwm_rx = h.shared.high_watermark.subscribe();
                let leads = h.leadership().0 == Some(h.node_id);
                let caught_up = tokio::time::timeout_at(deadline, async {
                    while *hwm_rx.borrow_and_update() < h.log.end_offset() {
                        if hwm_rx.changed().await.is_err() {
                            return false;
                        }
                    }
                    true
                })
                .await;
                if leads && matches!(caught_up, Ok(true)) {
                    break replay(&h.log, *h.shared.high_watermark.borrow());
                }
            }
            if tokio::time::timeout_at(deadline, changed.changed()).await.is_err() {
                break Err(format!("offsets partition {p} has no leader here"));
            }
        };
        let _ = me.send_message(CoordinatorMsg::Loaded { partition: p, result });
    });
}

/// Every offset record of a partition below `hwm`, with its batch's log offset.
fn replay(log: &crate::storage::log::PartitionLog, hwm: i64) -> Result<Vec<Replayed>, String> {
    let mut out = Vec::new();
    let mut offset = log.start_offset();
    while offset < hwm {
        let read = log
            .read_batches(offset, 1 << 20, hwm)
            .map_err(|_| format!("offset {offset} out of range"))?;
        let mut rest = read.records.clone();
        if rest.is_empty() {
            break;
        }
        while !rest.is_empty() {
            let header = crate::protocol::batch::BatchHeader::parse(&rest).ok_or("short batch")?;
            let len = header.batch_length as usize + 12;
            let one = rest.split_to(len.min(rest.len()));
            for entry in decode_records(one).map_err(|e| e.to_string())? {
                out.push((entry, header.base_offset));
            }
            offset = header.last_offset() + 1;
        }
    }
    Ok(out)
}

impl Actor for GroupCoordinator {
    type Msg = CoordinatorMsg;
    type State = CoordinatorState;
    type Arguments = CoordinatorArgs;

    async fn pre_start(
        &self,
        me: ActorRef<CoordinatorMsg>,
        args: CoordinatorArgs,
    ) -> Result<CoordinatorState, ActorProcessingErr> {
        me.send_interval(Duration::from_millis(100), || CoordinatorMsg::Tick);
        let groups = Groups::new(args.initial_rebalance_delay);
        Ok(CoordinatorState {
            args,
            loads: HashMap::new(),
            offsets: HashMap::new(),
            groups,
        })
    }

    async fn handle(
        &self,
        me: ActorRef<CoordinatorMsg>,
        msg: CoordinatorMsg,
        st: &mut CoordinatorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            CoordinatorMsg::Commit {
                group,
                member,
                entries,
                reply,
            } => {
                let member_check = match &member {
                    Some((id, generation)) => st.groups.check_commit(&group, *generation, id),
                    // A standalone commit to a group with members would race their commits.
                    None if st.groups.state(&group).is_some() => Err(ResponseError::UnknownMemberId),
                    None => Ok(()),
                };
                if let Err(code) = member_check.and_then(|_| st.ready(&me, &group)) {
                    let _ = reply.send(Err(code));
                    return Ok(());
                }
                let tp = TopicPartition {
                    topic: OFFSETS_TOPIC.into(),
                    partition: partition_for(&group, st.args.partitions),
                };
                let Some(handle) = st.args.registry.get(&tp) else {
                    st.loads.remove(&tp.partition);
                    let _ = reply.send(Err(ResponseError::NotCoordinator));
                    return Ok(());
                };
                let batch = encode_batch(&entries).map_err(|e| format!("encoding offsets: {e}"))?;
                let valid = validate_produced(&batch, i32::MAX).map_err(|e| format!("offsets batch: {e:?}"))?;
                let (tx, rx) = oneshot::channel();
                if handle
                    .actor
                    .send_message(PartitionMsg::Produce {
                        batch: valid.bytes,
                        header: valid.header,
                        reply: tx,
                    })
                    .is_err()
                {
                    let _ = reply.send(Err(ResponseError::NotCoordinator));
                    return Ok(());
                }
                let timeout = st.args.commit_timeout;
                tokio::spawn(async move {
                    let result = match tokio::time::timeout(timeout, rx).await {
                        Ok(Ok(Ok(base))) => {
                            let _ = me.send_message(CoordinatorMsg::Applied {
                                entries,
                                log_offset: base,
                            });
                            Ok(())
                        }
                        Ok(Ok(Err(ResponseError::NotLeaderOrFollower))) | Ok(Err(_)) => {
                            Err(ResponseError::NotCoordinator)
                        }
                        Ok(Ok(Err(_))) => Err(ResponseError::UnknownServerError),
                        Err(_) => Err(ResponseError::RequestTimedOut),
                    };
                    let _ = reply.send(result);
                });
            }
            CoordinatorMsg::Fetch { group, wanted, reply } => {
                if let Err(code) = st.ready(&me, &group) {
                    let _ = reply.send(Err(code));
                    return Ok(());
                }
                let committed = st.offsets.get(&group);
                let key = |(topic, partition): &(String, i32)| OffsetKey {
                    group: group.clone(),
                    topic: topic.clone(),
                    partition: *partition,
                };
                let out = match (wanted, committed) {
                    (None, Some(all)) => all.iter().map(|(tp, (c, _))| (key(tp), c.clone())).collect(),
                    (None, None) => Vec::new(),
                    (Some(list), _) => list
                        .into_iter()
                        .filter_map(|tp| {
                            committed
                                .and_then(|all| all.get(&tp))
                                .map(|(c, _)| (key(&tp), c.clone()))
                        })
                        .collect(),
                };
                let _ = reply.send(Ok(out));
            }
            CoordinatorMsg::Loaded { partition, result } => match result {
                Ok(records) => {
                    for (entry, log_offset) in records {
                        st.apply(vec![entry], log_offset);
                    }
                    st.loads.insert(partition, Load::Ready);
                }
                Err(why) => {
                    tracing::warn!(partition, error = %why, "offsets partition not loaded; will retry on the next request");
                    st.loads.remove(&partition);
                }
            },
            CoordinatorMsg::Applied { entries, log_offset } => st.apply(entries, log_offset),
            CoordinatorMsg::Tick => st.groups.tick(Instant::now()),
            CoordinatorMsg::Group { op, reply } => {
                let now = Instant::now();
                match op {
                    GroupOp::Join(args) => {
                        let (tx, rx) = oneshot::channel();
                        st.groups.join(now, args, tx);
                        tokio::spawn(async move {
                            if let Ok(joined) = rx.await {
                                let _ = reply.send(GroupReply::Joined(joined));
                            }
                        });
                    }
                    GroupOp::Sync {
                        group,
                        generation,
                        member_id,
                        assignments,
                    } => {
                        let (tx, rx) = oneshot::channel();
                        st.groups.sync(now, &group, generation, &member_id, assignments, tx);
                        tokio::spawn(async move {
                            if let Ok(synced) = rx.await {
                                let _ = reply.send(GroupReply::Synced(synced));
                            }
                        });
                    }
                    GroupOp::Heartbeat {
                        group,
                        generation,
                        member_id,
                    } => {
                        let _ = reply.send(GroupReply::Heartbeat(
                            st.groups.heartbeat(now, &group, generation, &member_id),
                        ));
                    }
                    GroupOp::Leave { group, members } => {
                        let _ = reply.send(GroupReply::Left(st.groups.leave(now, &group, &members)));
                    }
                }
            }
        }
        Ok(())
    }
}
