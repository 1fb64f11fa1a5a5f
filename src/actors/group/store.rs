//! The group coordinator's stored state: committed offsets and stable group generations, as
//! records of the Raft-replicated `__consumer_offsets` partitions.
//!
//! Writes: a record batch is proposed to the group's partition; the caller is answered, and
//! the state here changes, only once the batch is committed.
//!
//! Bounded replay: the offsets partitions are never cut by retention. Instead each partition is
//! compacted by the coordinator once `offsets.compaction.interval.records` records (or as many
//! as it holds live ones, if more) were written since the last compaction: new writes to the
//! partition are held back, the ones in flight are waited for, the live records (latest value
//! per key; deleted keys are simply absent) are written again at the log end, and the log start
//! is moved to the first of them. A replay therefore reads at most about twice the live state
//! plus the interval, and the records it skips are exactly the ones superseded.

use crate::actors::ask::{send_ask, AskError, Asked};
use crate::actors::group::coordinator::CoordinatorMsg;
use crate::actors::group::load::{offsets_partition, spawn_load, LoadId, LoadResult};
use crate::actors::partition::actor::PartitionMsg;
use crate::actors::partition::registry::{PartitionHandle, Registry};
use crate::protocol::batch::validate_produced;
use crate::storage::offsets::{encode_batch, partition_for, Committed, GroupSnapshot, OffsetKey, OffsetsRecord};
use kafka_protocol::error::ResponseError;
use ractor::ActorRef;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Where a write's outcome goes.
pub type WriteDone = oneshot::Sender<Result<(), ResponseError>>;

/// One group's commits: (topic, partition) → (committed, log offset of the record's batch).
type GroupOffsets = HashMap<(String, i32), (Committed, i64)>;

/// Live records per compaction batch (one Raft entry each).
const COMPACTION_BATCH_RECORDS: usize = 1000;

/// Settings of the store.
pub struct StoreConfig {
    /// `offsets.topic.num.partitions`.
    pub partitions: i32,
    /// How long one write may wait for its batch to be committed.
    pub write_timeout: Duration,
    /// `offsets.compaction.interval.records`.
    pub compaction_interval_records: u64,
    /// `offsets.max.queued.writes`.
    pub max_queued_writes: usize,
}

enum Load {
    /// Replaying; only the result of this load is applied.
    Loading(LoadId),
    /// Replayed by load `id` while this node led the partition in `term`. The cache is exact
    /// for that leadership only: in a later term another node may have led and written.
    Ready { id: LoadId, term: u64 },
}

#[derive(PartialEq, Eq)]
enum Compaction {
    Idle,
    /// Holding new writes back until the ones in flight are done.
    Draining,
    /// Live records are being written.
    Writing,
}

struct PartitionWrites {
    in_flight: usize,
    since_compaction: u64,
    /// Records written since the last compaction at which to look again.
    threshold: u64,
    compaction: Compaction,
    held: VecDeque<(Vec<OffsetsRecord>, WriteDone)>,
}

/// Committed offsets and stored group generations of every loaded offsets partition.
pub struct Store {
    registry: Arc<Registry>,
    cfg: StoreConfig,
    loads: HashMap<i32, Load>,
    offsets: HashMap<String, GroupOffsets>,
    /// group → (stored generation, log offset of its record).
    groups: HashMap<String, (GroupSnapshot, i64)>,
    writes: HashMap<i32, PartitionWrites>,
    next_load: LoadId,
    /// Partitions unloaded since the last `take_unloaded`, whose groups the coordinator drops.
    unloaded: Vec<i32>,
}

impl Store {
    /// An empty store; partitions load on first use.
    pub fn new(registry: Arc<Registry>, cfg: StoreConfig) -> Store {
        Store {
            registry,
            cfg,
            loads: HashMap::new(),
            offsets: HashMap::new(),
            groups: HashMap::new(),
            writes: HashMap::new(),
            next_load: 0,
            unloaded: Vec::new(),
        }
    }

    /// The offsets partition of `group`.
    pub fn partition_of(&self, group: &str) -> i32 {
        partition_for(group, self.cfg.partitions)
    }

    /// `Ok` when the group's partition is loaded for the leadership this node holds now;
    /// otherwise starts loading it.
    pub fn ready(&mut self, me: &ActorRef<CoordinatorMsg>, group: &str) -> Result<(), ResponseError> {
        let p = self.partition_of(group);
        let Some(term) = self.leading_term(p) else {
            // Not (or no longer) the coordinator: the partition's leader is.
            self.unload(p);
            return Err(ResponseError::NotCoordinator);
        };
        match self.loads.get(&p) {
            Some(Load::Ready { term: loaded, .. }) if *loaded == term => Ok(()),
            Some(Load::Loading(_)) => Err(ResponseError::CoordinatorLoadInProgress),
            Some(Load::Ready { .. }) | None => {
                // Loaded in an earlier leadership (or never): what others wrote since is only
                // in the log.
                self.unload(p);
                self.start_load(me, p);
                Err(ResponseError::CoordinatorLoadInProgress)
            }
        }
    }

    /// Brings every offsets partition in line with its leadership here: loads the ones led
    /// here that are not loaded for the current term, and unloads the ones led elsewhere (as
    /// Kafka's coordinator does on election and resignation, so nothing stale outlives a
    /// leadership even when no request asks).
    pub fn load_local(&mut self, me: &ActorRef<CoordinatorMsg>) {
        for p in 0..self.cfg.partitions {
            match (self.leading_term(p), self.loads.get(&p)) {
                (None, None) | (Some(_), Some(Load::Loading(_))) => {}
                (Some(term), Some(Load::Ready { term: loaded, .. })) if *loaded == term => {}
                (None, Some(_)) => self.unload(p),
                (Some(_), _) => {
                    self.unload(p);
                    self.start_load(me, p);
                }
            }
        }
    }

    /// The Raft term in which this node acts as leader of offsets partition `p`, if it does.
    fn leading_term(&self, p: i32) -> Option<u64> {
        let tp = offsets_partition(p);
        let h = self.registry.get(&tp)?;
        let (leader, term) = h.leadership();
        (leader == Some(h.node_id)).then_some(term)
    }

    /// The load whose cache of `p` serves the leadership this node holds now, if any.
    fn serving(&self, p: i32) -> Option<LoadId> {
        match self.loads.get(&p) {
            Some(Load::Ready { id, term }) if self.leading_term(p) == Some(*term) => Some(*id),
            _ => None,
        }
    }

    /// Forgets what was loaded of partition `p` (its leadership moved away, or began anew); a
    /// later leadership replays it again.
    fn unload(&mut self, p: i32) {
        if self.loads.remove(&p).is_none() {
            return;
        }
        let parts = self.cfg.partitions;
        self.offsets.retain(|g, _| partition_for(g, parts) != p);
        self.groups.retain(|g, _| partition_for(g, parts) != p);
        self.unloaded.push(p);
        // Writes held for a compaction were checked against this leadership's groups: they must
        // not go out under the next one (their callers learn NOT_COORDINATOR).
        let w = self.partition_writes(p);
        w.held.clear();
        if w.compaction == Compaction::Draining {
            w.compaction = Compaction::Idle;
        }
    }

    /// Partitions unloaded since the last call: the groups they hold are no longer served here.
    pub fn take_unloaded(&mut self) -> Vec<i32> {
        std::mem::take(&mut self.unloaded)
    }

    fn start_load(&mut self, me: &ActorRef<CoordinatorMsg>, p: i32) {
        self.next_load += 1;
        let id = self.next_load;
        self.loads.insert(p, Load::Loading(id));
        spawn_load(me.clone(), self.registry.clone(), p, id);
    }

    /// Applies a finished replay; returns the stored generations of its groups, to restore.
    pub fn loaded(
        &mut self,
        me: &ActorRef<CoordinatorMsg>,
        partition: i32,
        load: LoadId,
        result: LoadResult,
    ) -> Vec<(String, GroupSnapshot)> {
        if !matches!(self.loads.get(&partition), Some(Load::Loading(id)) if *id == load) {
            // Superseded: the partition was unloaded, or loads again, since this one began.
            return Vec::new();
        }
        let (term, records) = match result {
            Ok(loaded) => loaded,
            Err(why) => {
                tracing::warn!(partition, error = %why, "offsets partition not loaded; will retry");
                self.loads.remove(&partition);
                return Vec::new();
            }
        };
        debug_assert!(
            !self
                .offsets
                .keys()
                .chain(self.groups.keys())
                .any(|g| self.partition_of(g) == partition),
            "a partition loads into an empty cache"
        );
        let replayed = records.len() as u64;
        for (record, log_offset) in records {
            self.apply(record, log_offset);
        }
        self.loads.insert(partition, Load::Ready { id: load, term });
        let w = self.partition_writes(partition);
        w.since_compaction = replayed;
        self.maybe_compact(me, partition);
        self.groups
            .iter()
            .filter(|(g, _)| partition_for(g, self.cfg.partitions) == partition)
            .map(|(g, (s, _))| (g.clone(), s.clone()))
            .collect()
    }

    fn partition_writes(&mut self, p: i32) -> &mut PartitionWrites {
        let interval = self.cfg.compaction_interval_records;
        self.writes.entry(p).or_insert_with(|| PartitionWrites {
            in_flight: 0,
            since_compaction: 0,
            threshold: interval,
            compaction: Compaction::Idle,
            held: VecDeque::new(),
        })
    }

    /// Committed offsets of `group`: all, or those of the `wanted` partitions.
    pub fn committed(&self, group: &str, wanted: Option<Vec<(String, i32)>>) -> Vec<(OffsetKey, Committed)> {
        let Some(all) = self.offsets.get(group) else {
            return Vec::new();
        };
        let key = |(topic, partition): &(String, i32)| OffsetKey {
            group: group.to_string(),
            topic: topic.clone(),
            partition: *partition,
        };
        match wanted {
            None => all.iter().map(|(tp, (c, _))| (key(tp), c.clone())).collect(),
            Some(list) => list
                .into_iter()
                .filter_map(|tp| all.get(&tp).map(|(c, _)| (key(&tp), c.clone())))
                .collect(),
        }
    }

    /// Whether `group` has committed offsets.
    pub fn has_offsets(&self, group: &str) -> bool {
        self.offsets.contains_key(group)
    }

    /// Groups with committed offsets.
    pub fn groups_with_offsets(&self) -> impl Iterator<Item = &String> {
        self.offsets.keys()
    }

    /// The stored generation of `group`, if any.
    pub fn stored_group(&self, group: &str) -> Option<&GroupSnapshot> {
        self.groups.get(group).map(|(s, _)| s)
    }

    /// Every committed offset of every group, for the expiry check.
    pub fn all_offsets(&self) -> impl Iterator<Item = (&String, &(String, i32), &Committed)> {
        self.offsets
            .iter()
            .flat_map(|(g, all)| all.iter().map(move |(tp, (c, _))| (g, tp, c)))
    }

    fn apply(&mut self, record: OffsetsRecord, log_offset: i64) {
        match record {
            OffsetsRecord::Offset(k, v) => {
                let group = self.offsets.entry(k.group.clone()).or_default();
                let key = (k.topic, k.partition);
                // Records apply in log order; a late notice of an older write changes nothing.
                if group.get(&key).is_some_and(|(_, at)| *at > log_offset) {
                    return;
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
            OffsetsRecord::Group(g, v) => {
                if self.groups.get(&g).is_some_and(|(_, at)| *at > log_offset) {
                    return;
                }
                match v {
                    Some(s) => self.groups.insert(g, (s, log_offset)),
                    None => self.groups.remove(&g),
                };
            }
        }
    }

    /// Writes `records` (all of `group`'s partition) as one batch; the receiver gets the
    /// outcome once the batch is committed and applied here.
    pub fn write(
        &mut self,
        me: &ActorRef<CoordinatorMsg>,
        group: &str,
        records: Vec<OffsetsRecord>,
    ) -> Result<oneshot::Receiver<Result<(), ResponseError>>, ResponseError> {
        let p = self.partition_of(group);
        if self.serving(p).is_none() {
            return Err(ResponseError::NotCoordinator);
        }
        let max_held = self.cfg.max_queued_writes;
        let (done, rx) = oneshot::channel();
        let w = self.partition_writes(p);
        if w.compaction != Compaction::Idle {
            if w.held.len() >= max_held {
                return Err(ResponseError::CoordinatorLoadInProgress);
            }
            w.held.push_back((records, done));
            return Ok(rx);
        }
        self.send_write(me, p, records, done)?;
        Ok(rx)
    }

    fn handle(&mut self, p: i32) -> Result<Arc<PartitionHandle>, ResponseError> {
        let tp = offsets_partition(p);
        let handle = self.registry.get(&tp);
        if handle.is_none() {
            self.unload(p);
        }
        handle.ok_or(ResponseError::NotCoordinator)
    }

    fn send_write(
        &mut self,
        me: &ActorRef<CoordinatorMsg>,
        p: i32,
        records: Vec<OffsetsRecord>,
        done: WriteDone,
    ) -> Result<(), ResponseError> {
        // A write is applied only to the cache of the load it was sent under.
        let load = self.serving(p).ok_or(ResponseError::NotCoordinator)?;
        let handle = self.handle(p)?;
        let rx = propose(&handle, &records)?;
        self.partition_writes(p).in_flight += 1;
        let timeout = self.cfg.write_timeout;
        let me = me.clone();
        tokio::spawn(async move {
            let result = outcome(timeout, rx).await;
            let _ = me.send_message(CoordinatorMsg::Written {
                partition: p,
                load,
                records,
                result,
                done,
            });
        });
        Ok(())
    }

    /// A write finished: apply it, answer its caller, and compact if it is time.
    pub fn written(
        &mut self,
        me: &ActorRef<CoordinatorMsg>,
        p: i32,
        load: LoadId,
        records: Vec<OffsetsRecord>,
        result: Result<i64, ResponseError>,
        done: WriteDone,
    ) {
        let same_load = matches!(self.loads.get(&p), Some(Load::Ready { id, .. }) if *id == load);
        let w = self.partition_writes(p);
        w.in_flight -= 1;
        let answer = match result {
            // Committed, so the caller is told so; the cache of a later load (or none) has it
            // from the log, or will.
            Ok(base) => {
                w.since_compaction += records.len() as u64;
                if same_load {
                    for record in records {
                        self.apply(record, base);
                    }
                }
                Ok(())
            }
            Err(code) => Err(code),
        };
        let _ = done.send(answer);
        self.maybe_compact(me, p);
    }

    fn live_records(&self, p: i32) -> Vec<OffsetsRecord> {
        let mut out = Vec::new();
        for (g, all) in self.offsets.iter().filter(|(g, _)| self.partition_of(g) == p) {
            for ((topic, partition), (c, _)) in all {
                let key = OffsetKey {
                    group: g.clone(),
                    topic: topic.clone(),
                    partition: *partition,
                };
                out.push(OffsetsRecord::Offset(key, Some(c.clone())));
            }
        }
        for (g, (s, _)) in self.groups.iter().filter(|(g, _)| self.partition_of(g) == p) {
            out.push(OffsetsRecord::Group(g.clone(), Some(s.clone())));
        }
        out
    }

    fn maybe_compact(&mut self, me: &ActorRef<CoordinatorMsg>, p: i32) {
        let interval = self.cfg.compaction_interval_records;
        if self.serving(p).is_none() {
            // The live records are known only to the cache of the current leadership: without
            // one, rewriting them and moving the log start would drop what others wrote.
            let w = self.partition_writes(p);
            if w.compaction == Compaction::Draining {
                w.compaction = Compaction::Idle;
                w.held.clear(); // their callers learn NOT_COORDINATOR
            }
            return;
        }
        let w = self.partition_writes(p);
        if w.compaction == Compaction::Idle && w.since_compaction >= w.threshold {
            let live = self.live_records(p).len() as u64;
            let w = self.partition_writes(p);
            // Rewriting the live state costs `live` records: do it only once at least as many
            // were written, so compaction at most doubles the write volume.
            w.threshold = interval.max(live);
            if w.since_compaction < w.threshold {
                return;
            }
            w.compaction = Compaction::Draining;
        }
        let w = self.partition_writes(p);
        if w.compaction == Compaction::Draining && w.in_flight == 0 {
            w.compaction = Compaction::Writing;
            self.start_compaction(me, p);
        }
    }

    /// Writes the live records of `p` again (nothing else is being written to it now) and
    /// moves the log start to the first of them.
    fn start_compaction(&mut self, me: &ActorRef<CoordinatorMsg>, p: i32) {
        if self.serving(p).is_none() {
            // The leadership lapsed since `maybe_compact` looked.
            return self.compacted(me, p, Err("no longer serving the partition".into()));
        }
        let live = self.live_records(p);
        let handle = match self.handle(p) {
            Ok(h) => h,
            Err(code) => return self.compacted(me, p, Err(format!("{code:?}"))),
        };
        // Every write is applied (none in flight), so the high watermark covers them all.
        let written_end = *handle.shared.high_watermark.borrow();
        let mut proposals = Vec::new();
        for chunk in live.chunks(COMPACTION_BATCH_RECORDS) {
            match propose(&handle, chunk) {
                Ok(rx) => proposals.push(rx),
                Err(code) => return self.compacted(me, p, Err(format!("{code:?}"))),
            }
        }
        let timeout = self.cfg.write_timeout;
        let me = me.clone();
        let live_count = live.len();
        tokio::spawn(async move {
            let mut first = None;
            let mut failed = None;
            for rx in proposals {
                match outcome(timeout, rx).await {
                    Ok(base) => {
                        first.get_or_insert(base);
                    }
                    Err(code) => {
                        failed = Some(code);
                        break;
                    }
                }
            }
            let result = match failed {
                Some(code) => Err(format!("rewriting live records: {code:?}")),
                // No live records: everything written so far is superseded.
                None => purge(&handle, first.unwrap_or(written_end), timeout)
                    .await
                    .map(|start| {
                        tracing::info!(
                            partition = p,
                            live = live_count,
                            log_start = start,
                            "offsets partition compacted"
                        );
                    }),
            };
            let _ = me.send_message(CoordinatorMsg::Compacted { partition: p, result });
        });
    }

    /// A compaction ended: writes held back go out now.
    pub fn compacted(&mut self, me: &ActorRef<CoordinatorMsg>, p: i32, result: Result<(), String>) {
        let w = self.partition_writes(p);
        w.compaction = Compaction::Idle;
        match result {
            Ok(()) => w.since_compaction = 0,
            // Try again after as many more writes.
            Err(why) => {
                w.threshold = w.since_compaction.saturating_mul(2).max(1);
                tracing::warn!(partition = p, error = %why, "offsets partition compaction failed");
            }
        }
        let held = std::mem::take(&mut w.held);
        for (records, done) in held {
            if let Err(code) = self.send_write(me, p, records, done) {
                tracing::debug!(partition = p, ?code, "held offsets write failed");
            }
        }
    }
}

/// Validates and proposes one batch of `records` to the partition.
fn propose(
    handle: &PartitionHandle,
    records: &[OffsetsRecord],
) -> Result<Asked<Result<i64, ResponseError>>, ResponseError> {
    let batch = encode_batch(records).map_err(|_| ResponseError::UnknownServerError)?;
    let valid = validate_produced(&batch, i32::MAX).map_err(|_| ResponseError::UnknownServerError)?;
    let produce = |reply| PartitionMsg::Produce {
        batch: valid.bytes,
        header: valid.header,
        reply,
    };
    send_ask(&handle.actor, produce).map_err(|_| ResponseError::NotCoordinator)
}

/// A proposal's outcome, in the coordinator's error codes.
async fn outcome(timeout: Duration, asked: Asked<Result<i64, ResponseError>>) -> Result<i64, ResponseError> {
    match asked.within(Some(timeout)).await {
        Ok(Ok(base)) => Ok(base),
        Ok(Err(ResponseError::NotLeaderOrFollower)) | Err(AskError::Gone) => Err(ResponseError::NotCoordinator),
        Ok(Err(_)) => Err(ResponseError::UnknownServerError),
        Err(AskError::TimedOut) => Err(ResponseError::RequestTimedOut),
    }
}

/// Moves the partition's log start to `offset`.
async fn purge(handle: &PartitionHandle, offset: i64, timeout: Duration) -> Result<i64, String> {
    let asked = send_ask(&handle.actor, |reply| PartitionMsg::DeleteRecords { offset, reply })
        .map_err(|_| "partition stopped".to_string())?;
    outcome(timeout, asked)
        .await
        .map_err(|code| format!("purging: {code:?}"))
}
