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
use crate::handlers::context::{GroupDescription, GroupOp, GroupReply};
use crate::protocol::batch::validate_produced;
use crate::storage::offsets::{decode_records, encode_batch, partition_for, Committed, OffsetKey, OFFSETS_TOPIC};
use kafka_protocol::error::ResponseError;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// A replayed offset record and the log offset of its batch.
type Replayed = ((OffsetKey, Option<Committed>), i64);

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
        entries: Vec<(OffsetKey, Option<Committed>)>,
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

    fn apply(&mut self, entries: Vec<(OffsetKey, Option<Committed>)>, log_offset: i64) {
        for (k, v) in entries {
            let group = self.offsets.entry(k.group.clone()).or_default();
            let key = (k.topic, k.partition);
            // Records apply in log order; a late notice of an older write changes nothing.
            if group.get(&key).is_some_and(|(_, at)| *at > log_offset) {
                continue;
            }
            match v {
                Some(v) => {
                    group.insert(key, (v, log_offset));
                }
                None => {
                    group.remove(&key);
                }
            }
            if group.is_empty() {
                self.offsets.remove(&k.group);
            }
        }
    }

    /// Writes `entries` to the group's offsets partition; `then` gets the outcome once the
    /// record batch is committed (and applied here).
    fn write(
        &mut self,
        me: &ActorRef<CoordinatorMsg>,
        group: &str,
        entries: Vec<(OffsetKey, Option<Committed>)>,
    ) -> Result<oneshot::Receiver<Result<(), ResponseError>>, ResponseError> {
        let tp = TopicPartition {
            topic: OFFSETS_TOPIC.into(),
            partition: partition_for(group, self.args.partitions),
        };
        let Some(handle) = self.args.registry.get(&tp) else {
            self.loads.remove(&tp.partition);
            return Err(ResponseError::NotCoordinator);
        };
        let batch = encode_batch(&entries).map_err(|_| ResponseError::UnknownServerError)?;
        let valid = validate_produced(&batch, i32::MAX).map_err(|_| ResponseError::UnknownServerError)?;
        let (tx, rx) = oneshot::channel();
        handle
            .actor
            .send_message(PartitionMsg::Produce {
                batch: valid.bytes,
                header: valid.header,
                reply: tx,
            })
            .map_err(|_| ResponseError::NotCoordinator)?;
        let (done_tx, done_rx) = oneshot::channel();
        let timeout = self.args.commit_timeout;
        let me = me.clone();
        tokio::spawn(async move {
            let result = match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(Ok(base))) => {
                    let _ = me.send_message(CoordinatorMsg::Applied {
                        entries,
                        log_offset: base,
                    });
                    Ok(())
                }
                Ok(Ok(Err(ResponseError::NotLeaderOrFollower))) | Ok(Err(_)) => Err(ResponseError::NotCoordinator),
                Ok(Ok(Err(_))) => Err(ResponseError::UnknownServerError),
                Err(_) => Err(ResponseError::RequestTimedOut),
            };
            let _ = done_tx.send(result);
        });
        Ok(done_rx)
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
                let entries = entries.into_iter().map(|(k, v)| (k, Some(v))).collect();
                match st.write(&me, &group, entries) {
                    Ok(done) => {
                        tokio::spawn(async move {
                            let _ = reply.send(done.await.unwrap_or(Err(ResponseError::NotCoordinator)));
                        });
                    }
                    Err(code) => {
                        let _ = reply.send(Err(code));
                    }
                }
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
                        instance_id,
                        assignments,
                    } => {
                        let (tx, rx) = oneshot::channel();
                        st.groups.sync(
                            now,
                            &group,
                            generation,
                            &member_id,
                            instance_id.as_deref(),
                            assignments,
                            tx,
                        );
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
                        instance_id,
                    } => {
                        let _ = reply.send(GroupReply::Heartbeat(st.groups.heartbeat(
                            now,
                            &group,
                            generation,
                            &member_id,
                            instance_id.as_deref(),
                        )));
                    }
                    GroupOp::Leave { group, members } => {
                        let _ = reply.send(GroupReply::Left(st.groups.leave(now, &group, &members)));
                    }
                    GroupOp::Describe { groups } => {
                        let described = groups
                            .into_iter()
                            .map(|g| {
                                st.groups.describe(&g).unwrap_or_else(|| {
                                    // Known only by its offsets (or not at all): Empty, or Dead.
                                    let state = if st.offsets.contains_key(&g) { "Empty" } else { "Dead" };
                                    GroupDescription {
                                        group: g,
                                        state: state.into(),
                                        ..Default::default()
                                    }
                                })
                            })
                            .collect();
                        let _ = reply.send(GroupReply::Described(described));
                    }
                    GroupOp::List => {
                        let mut listed: Vec<(String, String, String)> = st
                            .groups
                            .names()
                            .into_iter()
                            .filter_map(|g| st.groups.describe(&g))
                            .map(|d| (d.group, d.protocol_type, d.state))
                            .collect();
                        for g in st.offsets.keys() {
                            if st.groups.state(g).is_none() {
                                listed.push((g.clone(), String::new(), "Empty".into()));
                            }
                        }
                        listed.sort();
                        let _ = reply.send(GroupReply::Listed(listed));
                    }
                    GroupOp::DeleteOffsets { group, partitions } => {
                        let known = st.groups.state(&group).is_some() || st.offsets.contains_key(&group);
                        if !known {
                            let _ = reply.send(GroupReply::OffsetsDeleted(Err(ResponseError::GroupIdNotFound)));
                        } else if let Err(code) = st.ready(&me, &group) {
                            let _ = reply.send(GroupReply::OffsetsDeleted(Err(code)));
                        } else {
                            let subscribed = st.groups.subscribed_topics(&group);
                            let outcomes: Vec<Result<(), ResponseError>> = partitions
                                .iter()
                                .map(|(t, _)| {
                                    if subscribed.contains(t) {
                                        Err(ResponseError::GroupSubscribedToTopic)
                                    } else {
                                        Ok(())
                                    }
                                })
                                .collect();
                            let tombstones: Vec<(OffsetKey, Option<Committed>)> = partitions
                                .iter()
                                .zip(&outcomes)
                                .filter(|(_, o)| o.is_ok())
                                .map(|((t, p), _)| {
                                    (
                                        OffsetKey {
                                            group: group.clone(),
                                            topic: t.clone(),
                                            partition: *p,
                                        },
                                        None,
                                    )
                                })
                                .collect();
                            let write = if tombstones.is_empty() {
                                None
                            } else {
                                Some(st.write(&me, &group, tombstones))
                            };
                            tokio::spawn(async move {
                                let written = match write {
                                    None => Ok(()),
                                    Some(Ok(done)) => done.await.unwrap_or(Err(ResponseError::NotCoordinator)),
                                    Some(Err(code)) => Err(code),
                                };
                                let result = written.map(|_| outcomes);
                                let _ = reply.send(GroupReply::OffsetsDeleted(result));
                            });
                        }
                    }
                    GroupOp::Delete { groups } => {
                        let mut pending = Vec::new();
                        for g in groups {
                            let outcome = if st.groups.describe(&g).is_some_and(|d| !d.members.is_empty()) {
                                Err(ResponseError::NonEmptyGroup)
                            } else if let Err(code) = st.ready(&me, &g) {
                                Err(code)
                            } else {
                                let tombstones: Vec<(OffsetKey, Option<Committed>)> = st
                                    .offsets
                                    .get(&g)
                                    .map(|all| {
                                        all.keys()
                                            .map(|(t, p)| {
                                                (
                                                    OffsetKey {
                                                        group: g.clone(),
                                                        topic: t.clone(),
                                                        partition: *p,
                                                    },
                                                    None,
                                                )
                                            })
                                            .collect()
                                    })
                                    .unwrap_or_default();
                                if tombstones.is_empty() {
                                    Err(ResponseError::GroupIdNotFound)
                                } else {
                                    st.write(&me, &g, tombstones)
                                }
                            };
                            pending.push(outcome);
                        }
                        tokio::spawn(async move {
                            let mut results = Vec::new();
                            for p in pending {
                                results.push(match p {
                                    Ok(done) => done.await.unwrap_or(Err(ResponseError::NotCoordinator)),
                                    Err(code) => Err(code),
                                });
                            }
                            let _ = reply.send(GroupReply::Deleted(results));
                        });
                    }
                }
            }
        }
        Ok(())
    }
}
