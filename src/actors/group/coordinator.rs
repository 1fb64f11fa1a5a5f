//! The group coordinator actor. Membership (JoinGroup, SyncGroup, Heartbeat, LeaveGroup)
//! follows Kafka's state machine in `group_state.rs`; committed offsets and each group's last
//! stable generation are records of the Raft-replicated `__consumer_offsets` partitions
//! (`actors/group/store.rs`). Before serving a group, the coordinator replays the group's
//! partition, answering COORDINATOR_LOAD_IN_PROGRESS meanwhile; restored generations let members
//! carry on without a rebalance. Commits come from members (checked against the generation) or
//! from standalone consumers and are answered once their record is committed.

use crate::actors::group::load::{LoadId, LoadResult};
use crate::actors::group::ops::{group_op, GroupOp};
use crate::actors::group::state::Groups;
use crate::actors::group::store::{Store, StoreConfig, WriteDone};
use crate::actors::partition::registry::Registry;
use crate::handlers::context::CommitFrom;
use crate::storage::offsets::{Committed, OffsetKey, OffsetsRecord};
use kafka_protocol::error::ResponseError;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Offsets fetched for a group.
pub type FetchReply = oneshot::Sender<Result<Vec<(OffsetKey, Committed)>, ResponseError>>;

/// How often the coordinator looks for offsets partitions to load.
const LOAD_CHECK_EVERY_TICKS: u64 = 10;

/// Messages the coordinator takes.
pub enum CoordinatorMsg {
    /// Commit offsets of one group (all in one record batch), from a member or standalone.
    Commit {
        group: String,
        from: CommitFrom,
        entries: Vec<(OffsetKey, Committed)>,
        reply: oneshot::Sender<Result<(), ResponseError>>,
    },
    /// A membership or group admin operation, with its own typed reply.
    Group(GroupOp),
    /// Session and rebalance deadlines, offset expiry, partitions to load (every 100 ms).
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
        load: LoadId,
        result: LoadResult,
    },
    /// A write to an offsets partition finished (with its batch's log offset).
    Written {
        partition: i32,
        load: LoadId,
        records: Vec<OffsetsRecord>,
        result: Result<i64, ResponseError>,
        done: WriteDone,
    },
    /// A compaction of an offsets partition finished.
    Compacted { partition: i32, result: Result<(), String> },
}

/// What the coordinator needs.
pub struct CoordinatorArgs {
    pub registry: Arc<Registry>,
    pub store: StoreConfig,
    /// `group.initial.rebalance.delay.ms`.
    pub initial_rebalance_delay: Duration,
    /// `offsets.retention.minutes`, in ms.
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms`.
    pub offsets_retention_check_interval: Duration,
}

/// Coordinator state.
pub struct CoordinatorState {
    pub(super) store: Store,
    pub(super) groups: Groups,
    pub(super) ticks: u64,
    pub(super) offsets_retention_ms: i64,
    pub(super) retention_check_interval: Duration,
    pub(super) last_retention_check: Instant,
    /// Groups without members, since when (ms), for offset expiry.
    pub(super) empty_since_ms: HashMap<String, i64>,
}

/// The coordinator actor.
pub struct GroupCoordinator;

impl CoordinatorState {
    /// An OffsetCommit: refused (group not loaded here, or a stale member), or written and
    /// answered once the offsets partition committed it.
    fn commit(
        &mut self,
        me: &ActorRef<CoordinatorMsg>,
        group: String,
        from: CommitFrom,
        entries: Vec<(OffsetKey, Committed)>,
        reply: oneshot::Sender<Result<(), ResponseError>>,
    ) {
        let checked = self
            .store
            .ready(me, &group)
            .and_then(|_| self.groups.check_commit(Instant::now(), &group, &from));
        match checked {
            Err(code) => drop(reply.send(Err(code))),
            Ok(()) => {
                let records = entries
                    .into_iter()
                    .map(|(k, v)| OffsetsRecord::Offset(k, Some(v)))
                    .collect();
                answer_when_written(self.store.write(me, &group, records), reply);
            }
        }
    }

    /// Every 100 ms: group deadlines, changed groups stored, now and then partitions to load
    /// and offsets to expire.
    fn tick(&mut self, me: &ActorRef<CoordinatorMsg>) {
        let now = Instant::now();
        self.groups.tick(now);
        self.store_changed_groups(me);
        self.ticks += 1;
        if self.ticks.is_multiple_of(LOAD_CHECK_EVERY_TICKS) {
            self.store.load_local(me);
        }
        if now.duration_since(self.last_retention_check) >= self.retention_check_interval {
            self.last_retention_check = now;
            self.expire_offsets(me, crate::storage::log::segment::now_ms());
        }
    }

    /// Drops the groups of the offsets partitions the store unloaded: their members are
    /// answered NOT_COORDINATOR and find the partition's leader, which loads them from the log.
    fn forget_unloaded_groups(&mut self) {
        for p in self.store.take_unloaded() {
            let store = &self.store;
            self.groups.forget(|g| store.partition_of(g) == p);
        }
    }

    /// Stores the generations that changed (a new stable generation, or no members left).
    fn store_changed_groups(&mut self, me: &ActorRef<CoordinatorMsg>) {
        for (group, snapshot) in self.groups.take_changed() {
            if self.store.stored_group(&group) == snapshot.as_ref() {
                continue;
            }
            let record = OffsetsRecord::Group(group.clone(), snapshot);
            // Not waited for: if it is lost, members find out by ILLEGAL_GENERATION and rejoin.
            if let Err(code) = self.store.write(me, &group, vec![record]) {
                tracing::debug!(group, ?code, "group generation not stored");
            }
        }
    }

    /// Deletes the offsets that expired (see `expired_offsets`).
    fn expire_offsets(&mut self, me: &ActorRef<CoordinatorMsg>, now_ms: i64) {
        let with_members: BTreeSet<String> = self.groups.names().into_iter().collect();
        self.empty_since_ms.retain(|g, _| !with_members.contains(g));
        for g in self.store.groups_with_offsets() {
            if !with_members.contains(g) {
                self.empty_since_ms.entry(g.clone()).or_insert(now_ms);
            }
        }
        let expired = expired_offsets(
            self.store.all_offsets(),
            &self.empty_since_ms,
            now_ms,
            self.offsets_retention_ms,
        );
        for (group, keys) in expired {
            let tombstones = keys.into_iter().map(|k| OffsetsRecord::Offset(k, None)).collect();
            if let Err(code) = self.store.write(me, &group, tombstones) {
                tracing::debug!(group, ?code, "expired offsets not deleted");
            }
        }
    }
}

/// Offsets to delete: those of groups without members (`empty_since_ms`) whose commit and the
/// group becoming empty both lie `retention_ms` or longer in the past (Kafka's KIP-211 rule).
pub fn expired_offsets<'a>(
    offsets: impl Iterator<Item = (&'a String, &'a (String, i32), &'a Committed)>,
    empty_since_ms: &HashMap<String, i64>,
    now_ms: i64,
    retention_ms: i64,
) -> Vec<(String, Vec<OffsetKey>)> {
    let mut out: HashMap<String, Vec<OffsetKey>> = HashMap::new();
    for (group, (topic, partition), committed) in offsets {
        let Some(empty_since) = empty_since_ms.get(group) else {
            continue;
        };
        if now_ms - committed.commit_timestamp_ms.max(*empty_since) >= retention_ms {
            out.entry(group.clone()).or_default().push(OffsetKey {
                group: group.clone(),
                topic: topic.clone(),
                partition: *partition,
            });
        }
    }
    out.into_iter().collect()
}

/// Sends `reply` the outcome of `write` once it is known.
fn answer_when_written(
    write: Result<oneshot::Receiver<Result<(), ResponseError>>, ResponseError>,
    reply: oneshot::Sender<Result<(), ResponseError>>,
) {
    match write {
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
        Ok(CoordinatorState {
            store: Store::new(args.registry, args.store),
            groups: Groups::new(args.initial_rebalance_delay),
            ticks: 0,
            offsets_retention_ms: args.offsets_retention_ms,
            retention_check_interval: args.offsets_retention_check_interval,
            last_retention_check: Instant::now(),
            empty_since_ms: HashMap::new(),
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
                from,
                entries,
                reply,
            } => st.commit(&me, group, from, entries, reply),
            CoordinatorMsg::Fetch { group, wanted, reply } => {
                let result = st.store.ready(&me, &group).map(|_| st.store.committed(&group, wanted));
                let _ = reply.send(result);
            }
            CoordinatorMsg::Loaded {
                partition,
                load,
                result,
            } => {
                let now = Instant::now();
                for (group, snapshot) in st.store.loaded(&me, partition, load, result) {
                    st.groups.restore(now, &group, snapshot);
                }
            }
            CoordinatorMsg::Written {
                partition,
                load,
                records,
                result,
                done,
            } => st.store.written(&me, partition, load, records, result, done),
            CoordinatorMsg::Compacted { partition, result } => st.store.compacted(&me, partition, result),
            CoordinatorMsg::Tick => st.tick(&me),
            CoordinatorMsg::Group(op) => {
                group_op(&me, st, op);
                st.store_changed_groups(&me);
            }
        }
        st.forget_unloaded_groups();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_expire_only_for_empty_groups_after_retention() {
        let committed = |ts| Committed {
            offset: 1,
            leader_epoch: -1,
            metadata: None,
            commit_timestamp_ms: ts,
        };
        let (old, fresh) = (committed(1_000), committed(9_000));
        let (g_empty, g_live) = ("empty".to_string(), "live".to_string());
        let tp = ("t".to_string(), 0);
        let tp1 = ("t".to_string(), 1);
        let offsets = vec![(&g_empty, &tp, &old), (&g_empty, &tp1, &fresh), (&g_live, &tp, &old)];
        let retention = 5_000;
        // The group became empty recently: nothing expires yet, however old the commit.
        let recently: HashMap<String, i64> = [(g_empty.clone(), 8_000)].into();
        assert!(expired_offsets(offsets.clone().into_iter(), &recently, 10_000, retention).is_empty());
        // Empty for long enough: the old commit expires, the fresh one stays; a group with
        // members (absent from the map) keeps everything.
        let long_ago: HashMap<String, i64> = [(g_empty.clone(), 2_000)].into();
        let expired = expired_offsets(offsets.into_iter(), &long_ago, 10_000, retention);
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].0, "empty");
        assert_eq!(expired[0].1.len(), 1);
        assert_eq!(expired[0].1[0].partition, 0);
    }
}
