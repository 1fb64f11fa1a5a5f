//! The state machine of a partition group. The data already sits in the log; applying a
//! committed entry only moves the high watermark and answers the proposer with the entry's
//! Kafka base offset. The applied position is kept in a small file (written without fsync:
//! re-applying from an older position is harmless) so that restart does not re-read the log.

use crate::protocol::batch::BatchHeader;
use crate::storage::log::PartitionLog;
use crate::storage::FlushSink;
use crate::types::{Command, CommandResult, Entry, LogId, NodeId, StorageError, TypeConfig};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, BasicNode, EntryPayload, OptionalSend, RaftSnapshotBuilder, SnapshotMeta, StorageIOError,
    StoredMembership,
};
use serde::{Deserialize, Serialize};
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::watch;

/// State a partition's readers watch.
pub struct PartitionShared {
    /// Offset after the last committed record.
    pub high_watermark: watch::Sender<i64>,
    /// While this node leads: when each follower last had every entry the leader had.
    pub caught_up: parking_lot::Mutex<std::collections::HashMap<NodeId, std::time::Instant>>,
    /// The group's membership as applied (recorded with every purge of the log).
    pub membership: parking_lot::Mutex<StoredMembership<NodeId, BasicNode>>,
    /// Highest Raft index retention allows to remove. openraft purges up to its snapshots on
    /// its own; segments go only as far as retention (time, size, log start) says.
    pub purge_allowed: std::sync::atomic::AtomicU64,
    /// Set while this node hands leadership to the preferred replica: produce is refused.
    pub handing_off: std::sync::atomic::AtomicBool,
    /// The node's stall count when a quorum last confirmed this node's leadership
    /// (`cluster::confirm_after_stall`): a leader acts as one only if no stall came since.
    pub stall_confirmed: std::sync::atomic::AtomicU64,
}

impl PartitionShared {
    /// The stall count the group's leadership was last confirmed at.
    pub fn confirmed_stalls(&self) -> u64 {
        self.stall_confirmed.load(std::sync::atomic::Ordering::Acquire)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Applied {
    last_applied: Option<LogId>,
    membership: StoredMembership<NodeId, BasicNode>,
    high_watermark: i64,
}

/// Partition state machine.
pub struct PartitionSm {
    applied: Applied,
    path: PathBuf,
    shared: Arc<PartitionShared>,
    last_persist: std::time::Instant,
    /// The log, which a snapshot install resets when the leader no longer has what follows it.
    log: Arc<PartitionLog>,
    /// The snapshot last built here (handed to followers that are behind the leader's purge).
    current: CurrentSnapshot,
    /// The committer, through which the log start and a snapshot install's records are
    /// made durable.
    sink: Arc<dyn FlushSink>,
}

/// The snapshot last built, shared by the state machine and its builders.
type CurrentSnapshot = Arc<parking_lot::Mutex<Option<(SnapshotMeta<NodeId, BasicNode>, Vec<u8>)>>>;

/// A partition snapshot's data: where the Kafka offsets continue after it. The records
/// themselves are not in it: a follower that needs a snapshot lacks only records the leader's
/// retention already removed.
#[derive(Debug, Serialize, Deserialize)]
struct SnapshotData {
    next_offset: i64,
}

/// How stale the applied-position file may get; older positions only cost a short re-apply.
const PERSIST_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);

impl PartitionSm {
    /// Loads the applied position from `dir` and publishes the high watermark it implies.
    /// `log_last`/`log_end_offset` describe the recovered log: an applied position beyond it
    /// (possible only with relaxed durability after a crash) is clamped to it.
    pub fn open(
        dir: &std::path::Path,
        shared: Arc<PartitionShared>,
        log: Arc<PartitionLog>,
        sink: Arc<dyn FlushSink>,
    ) -> PartitionSm {
        let (log_last, log_end_offset, log_start_offset) = (log.last_log_id(), log.end_offset(), log.start_offset());
        let path = dir.join("raft-applied.json");
        let mut applied: Applied = std::fs::read(&path)
            .ok()
            .and_then(|d| serde_json::from_slice(&d).ok())
            .unwrap_or_default();
        // The applied file is written lazily; if retention purged past it, everything up to the
        // purge was applied, and the purge record carries the membership.
        if let Some(record) = crate::storage::log::retention::read_purge_record(dir) {
            if applied.last_applied.is_none_or(|a| a.index < record.purged.index) {
                applied.last_applied = Some(record.purged);
                applied.membership = record.membership;
                applied.high_watermark = applied.high_watermark.max(log_start_offset);
            }
        }
        let beyond_log = match (applied.last_applied, log_last) {
            (Some(a), Some(l)) => a.index > l.index,
            (Some(_), None) => true,
            _ => false,
        };
        if beyond_log {
            tracing::warn!(dir = %dir.display(), "applied position beyond the recovered log; clamping to the log end");
            applied.last_applied = log_last;
            applied.high_watermark = log_end_offset;
        }
        shared.high_watermark.send_replace(applied.high_watermark);
        *shared.membership.lock() = applied.membership.clone();
        PartitionSm {
            applied,
            path,
            shared,
            last_persist: std::time::Instant::now(),
            log,
            current: Arc::default(),
            sink,
        }
    }

    fn persist(&self) -> Result<(), StorageError> {
        let data = serde_json::to_vec(&self.applied).map_err(|e| sm_err(&e))?;
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, data)
            .and_then(|_| std::fs::rename(&tmp, &self.path))
            .map_err(|e| sm_err(&e))
    }
}

fn sm_err(e: &(impl std::error::Error + 'static)) -> StorageError {
    StorageError::IO {
        source: StorageIOError::write_state_machine(AnyError::new(e)),
    }
}

impl RaftStateMachine<TypeConfig> for PartitionSm {
    type SnapshotBuilder = PartitionSnapshot;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership<NodeId, BasicNode>), StorageError> {
        Ok((self.applied.last_applied, self.applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandResult>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut out = Vec::new();
        for e in entries {
            self.applied.last_applied = Some(e.log_id);
            let mut res = CommandResult::default();
            match e.payload {
                EntryPayload::Normal(Command::Batch(b)) => {
                    if let Some(h) = BatchHeader::parse(&b) {
                        res.base_offset = h.base_offset;
                        self.applied.high_watermark = h.last_offset() + 1;
                    }
                }
                EntryPayload::Normal(Command::LogStart(offset)) => {
                    // Durable before the leader answers DeleteRecords; whole segments below it
                    // go with the next retention pass.
                    let offset = offset.min(self.applied.high_watermark);
                    self.log
                        .advance_log_start(&*self.sink, offset)
                        .await
                        .map_err(|e| sm_err(&e))?;
                    res.base_offset = self.log.start_offset();
                }
                EntryPayload::Membership(m) => {
                    self.applied.membership = StoredMembership::new(Some(e.log_id), m);
                    *self.shared.membership.lock() = self.applied.membership.clone();
                }
                _ => {}
            }
            out.push(res);
        }
        self.shared.high_watermark.send_replace(self.applied.high_watermark);
        if self.last_persist.elapsed() >= PERSIST_INTERVAL {
            self.persist()?;
            self.last_persist = std::time::Instant::now();
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        PartitionSnapshot {
            last_applied: self.applied.last_applied,
            membership: self.applied.membership.clone(),
            next_offset: self.applied.high_watermark,
            current: self.current.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data: SnapshotData = serde_json::from_slice(snapshot.get_ref()).map_err(|e| sm_err(&e))?;
        if let Some(last) = meta.last_log_id {
            // Keep the log if it already holds the snapshot's last entry; otherwise what it
            // holds is older than (or conflicts with) the leader's log start: it starts over
            // right after the snapshot, at the leader's next offset.
            let holds = self
                .log
                .entries(last.index, last.index + 1)
                .ok()
                .and_then(|e| e.first().map(|e| e.log_id))
                == Some(last);
            if !holds {
                tracing::info!(dir = %self.log.dir().display(), index = last.index, next_offset = data.next_offset, "log replaced by a snapshot");
                metrics::counter!(crate::observability::SNAPSHOT_LOG_RESETS).increment(1);
                self.log
                    .reset_after(&*self.sink, last, meta.last_membership.clone(), data.next_offset)
                    .await
                    .map_err(|e| sm_err(&e))?;
            }
        }
        self.applied.last_applied = meta.last_log_id;
        self.applied.membership = meta.last_membership.clone();
        *self.shared.membership.lock() = self.applied.membership.clone();
        self.applied.high_watermark = self.applied.high_watermark.max(data.next_offset);
        self.shared.high_watermark.send_replace(self.applied.high_watermark);
        self.persist()
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        Ok(self.current.lock().clone().map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}

/// Builds a partition snapshot (applied position, membership, next offset) and keeps it as the
/// current one, as openraft expects.
pub struct PartitionSnapshot {
    last_applied: Option<LogId>,
    membership: StoredMembership<NodeId, BasicNode>,
    next_offset: i64,
    current: CurrentSnapshot,
}

impl RaftSnapshotBuilder<TypeConfig> for PartitionSnapshot {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id: format!("{:?}-{}", self.last_applied.map(|l| l.index), self.next_offset),
        };
        let data = serde_json::to_vec(&SnapshotData {
            next_offset: self.next_offset,
        })
        .map_err(|e| sm_err(&e))?;
        *self.current.lock() = Some((meta.clone(), data.clone()));
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

/// A snapshot that holds only the applied position and membership: the data is the log.
pub struct MetaOnlySnapshot {
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership<NodeId, BasicNode>,
}

impl RaftSnapshotBuilder<TypeConfig> for MetaOnlySnapshot {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id: format!("{:?}", self.last_applied.map(|l| l.index)),
        };
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(Vec::new())),
        })
    }
}
