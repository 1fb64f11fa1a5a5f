//! Retention and DeleteRecords: whole old segments go (by age, by total size, or when wholly
//! below the log start offset); the log start offset moves and is persisted. Only closed
//! segments wholly below the high watermark are removed, so nothing uncommitted ever goes.
//!
//! Removed segments take Raft entries with them. `raft-purged.json` records, durably and before
//! any file is deleted, the last removed entry's log id and the group's membership, so that on
//! restart openraft sees a consistent purged prefix and the membership is never lost with it.

use crate::storage::durable;
use crate::storage::log::segment::Segment;
use crate::storage::log::PartitionLog;
use crate::storage::FlushSink;
use crate::types::{LogId, NodeId};
use openraft::{BasicNode, StoredMembership};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

const LOG_START_FILE: &str = "log-start-offset";
/// File recording what retention removed from the Raft log.
pub const PURGED_FILE: &str = "raft-purged.json";

/// What retention removed: the last removed entry and the membership in force.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PurgeRecord {
    pub purged: LogId,
    pub membership: StoredMembership<NodeId, BasicNode>,
}

/// Reads the purge record of a log directory, if any.
pub fn read_purge_record(dir: &Path) -> Option<PurgeRecord> {
    serde_json::from_slice(&std::fs::read(dir.join(PURGED_FILE)).ok()?).ok()
}

/// The persisted log start offset (0 if never moved).
pub fn read_log_start(dir: &Path) -> std::io::Result<i64> {
    match std::fs::read_to_string(dir.join(LOG_START_FILE)) {
        Ok(s) => s
            .trim()
            .parse()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{LOG_START_FILE}: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

/// Limits that decide which segments go.
#[derive(Debug, Clone, Copy)]
pub struct RetentionLimits {
    /// Segments whose newest record is older than this go; -1 keeps them.
    pub retention_ms: i64,
    /// Oldest segments go while the rest is still at least this big; -1 keeps them.
    pub retention_bytes: i64,
}

/// Leading segments retention may remove now, and the last Raft entry among them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub segments: usize,
    pub last: LogId,
}

impl PartitionLog {
    /// Which leading segments may go at `now_ms`, given the high watermark.
    pub fn retention_plan(&self, now_ms: i64, limits: RetentionLimits, high_watermark: i64) -> Option<Plan> {
        let segs = self.inner.read();
        let log_start = self.log_start.load(Ordering::SeqCst);
        let mut total: u64 = segs.iter().map(|s| s.size_bytes).sum();
        let mut plan = None;
        // The active (last) segment always stays.
        for (i, seg) in segs.iter().enumerate().take(segs.len().saturating_sub(1)) {
            let Some(last) = seg.last else { break };
            if seg.next_offset > high_watermark {
                break;
            }
            let below_start = seg.next_offset <= log_start;
            let too_old =
                limits.retention_ms >= 0 && seg.max_timestamp >= 0 && seg.max_timestamp < now_ms - limits.retention_ms;
            let too_big = limits.retention_bytes >= 0 && total - seg.size_bytes >= limits.retention_bytes as u64;
            if !(below_start || too_old || too_big) {
                break;
            }
            total -= seg.size_bytes;
            plan = Some(Plan {
                segments: i + 1,
                last: last.log_id,
            });
        }
        plan
    }

    /// Removes the leading closed segments up to `plan.last` (as many as still lie wholly at or
    /// below it: the actor's retention and openraft's purge may both act on one plan), after
    /// durably recording the purge. Every fsync goes through `sink`; unlinks run on the
    /// blocking pool.
    pub async fn apply_retention(
        self: &Arc<Self>,
        sink: &dyn FlushSink,
        plan: Plan,
        membership: StoredMembership<NodeId, BasicNode>,
    ) -> std::io::Result<Removed> {
        let record = PurgeRecord {
            purged: plan.last,
            membership,
        };
        let data = serde_json::to_vec(&record).map_err(std::io::Error::other)?;
        durable::write(sink, self.dir.join(PURGED_FILE), data).await?;
        let log = self.clone();
        let removed = tokio::task::spawn_blocking(move || log.remove_segments_upto(plan.last.index))
            .await
            .map_err(std::io::Error::other)??;
        durable::sync(sink, vec![Arc::new(File::open(&self.dir)?)]).await?;
        metrics::counter!(crate::observability::RETENTION_SEGMENTS_DELETED).increment(removed.segments as u64);
        Ok(removed)
    }

    /// Unlinks the leading closed segments whose entries all lie at or below Raft index `upto`.
    fn remove_segments_upto(&self, upto: u64) -> std::io::Result<Removed> {
        let mut segs = self.inner.write();
        let closed = segs.len().saturating_sub(1);
        let n = segs[..closed]
            .iter()
            .take_while(|s| s.last.is_some_and(|l| l.log_id.index <= upto))
            .count();
        let mut removed = Removed::default();
        for seg in segs.drain(..n) {
            removed.segments += 1;
            removed.bytes += seg.size_bytes;
            crate::storage::log::seal::remove(&seg.path)?;
            std::fs::remove_file(&seg.path)?;
        }
        debug_assert!(!segs.is_empty(), "the active segment never goes");
        Ok(removed)
    }

    /// Leading closed segments whose entries all lie at or below Raft index `upto`.
    pub fn purge_plan(&self, upto: u64) -> Option<Plan> {
        let segs = self.inner.read();
        let mut plan = None;
        for (i, seg) in segs.iter().enumerate().take(segs.len().saturating_sub(1)) {
            match seg.last {
                Some(last) if last.log_id.index <= upto => {
                    plan = Some(Plan {
                        segments: i + 1,
                        last: last.log_id,
                    })
                }
                _ => break,
            }
        }
        plan
    }

    /// Empties the log for a snapshot install: it continues at Raft index `purged.index + 1`
    /// and Kafka offset `next_offset`. The purge record and log start are written first, so a
    /// crash part-way leaves a log that recovery reads as purged up to the snapshot. Every
    /// fsync goes through `sink`.
    pub async fn reset_after(
        self: &Arc<Self>,
        sink: &dyn FlushSink,
        purged: LogId,
        membership: StoredMembership<NodeId, BasicNode>,
        next_offset: i64,
    ) -> std::io::Result<()> {
        let data = serde_json::to_vec(&PurgeRecord { purged, membership }).map_err(std::io::Error::other)?;
        durable::write(sink, self.dir.join(PURGED_FILE), data).await?;
        self.advance_log_start_to(sink, next_offset, true).await?;
        let log = self.clone();
        let dir = tokio::task::spawn_blocking(move || log.replace_segments(next_offset, purged.index + 1))
            .await
            .map_err(std::io::Error::other)??;
        durable::sync(sink, vec![dir]).await
    }

    /// Unlinks every segment and starts an empty one at (`next_offset`, `next_index`); the
    /// caller syncs the returned directory.
    fn replace_segments(&self, next_offset: i64, next_index: u64) -> std::io::Result<Arc<File>> {
        let mut segs = self.inner.write();
        for seg in segs.drain(..) {
            crate::storage::log::seal::remove(&seg.path)?;
            std::fs::remove_file(&seg.path)?;
        }
        let index_interval = self.cfg.index_interval_bytes;
        segs.push(Segment::create_unsynced(
            &self.dir,
            next_offset,
            next_index,
            index_interval,
        )?);
        self.clear_tail_and_producers();
        Ok(Arc::new(File::open(&self.dir)?))
    }

    /// Moves the log start offset forward (DeleteRecords); durable before it takes effect.
    pub async fn advance_log_start(&self, sink: &dyn FlushSink, offset: i64) -> std::io::Result<()> {
        self.advance_log_start_to(sink, offset, false).await
    }

    /// Persists `offset` as the log start, then uses it; only forward unless `reset`.
    async fn advance_log_start_to(&self, sink: &dyn FlushSink, offset: i64, reset: bool) -> std::io::Result<()> {
        if !reset && offset <= self.log_start.load(Ordering::SeqCst) {
            return Ok(());
        }
        let path = self.dir.join(LOG_START_FILE);
        durable::write(sink, path, offset.to_string().into_bytes()).await?;
        self.log_start.store(offset, Ordering::SeqCst);
        Ok(())
    }
}

/// What a retention pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    pub segments: usize,
    pub bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::batch::tests::batch;
    use crate::storage::durable::InlineSink;
    use crate::storage::log::LogConfig;
    use crate::types::{Command, Entry};
    use openraft::{CommittedLeaderId, EntryPayload};

    #[tokio::test]
    async fn size_time_and_log_start_retention() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig {
            segment_bytes: 300,
            segment_ms: i64::MAX,
            index_interval_bytes: 100,
            tail_cache_bytes: 0,
            max_append_bytes: u64::MAX,
        };
        let log = Arc::new(PartitionLog::open(dir.path(), cfg).unwrap().0);
        for i in 1..=20u64 {
            let e = Entry {
                log_id: LogId::new(CommittedLeaderId::new(1, 1), i),
                payload: EntryPayload::Normal(Command::Batch(batch(&[b"0123456789"], i as i64 * 1000))),
            };
            log.append_synced(&[e]).unwrap();
        }
        let keep_all = RetentionLimits {
            retention_ms: -1,
            retention_bytes: -1,
        };
        assert_eq!(log.retention_plan(0, keep_all, 20), None);
        let by_size = RetentionLimits {
            retention_ms: -1,
            retention_bytes: 600,
        };
        assert_eq!(
            log.retention_plan(0, by_size, 0),
            None,
            "nothing above the high watermark goes"
        );
        let plan = log.retention_plan(0, by_size, 20).unwrap();
        log.apply_retention(&InlineSink, plan, StoredMembership::default())
            .await
            .unwrap();
        assert!(log.start_offset() > 0);
        assert_eq!(read_purge_record(dir.path()).unwrap().purged, plan.last);
        let start = log.start_offset();
        assert!(
            log.read_batches(start - 1, 100, 20).is_err(),
            "below the log start is out of range"
        );
        assert!(log.read_batches(start, 100, 20).is_ok());
        let by_time = RetentionLimits {
            retention_ms: 1000,
            retention_bytes: -1,
        };
        assert!(log.retention_plan(25_000, by_time, 20).is_some());
        log.advance_log_start(&InlineSink, 18).await.unwrap();
        assert_eq!(log.start_offset(), 18);
        let plan = log.retention_plan(0, keep_all, 20).unwrap();
        let removed = log
            .apply_retention(&InlineSink, plan, StoredMembership::default())
            .await
            .unwrap();
        assert!(removed.segments > 0);
        // Both the actor's retention and openraft's purge may act on one plan: the second
        // removes nothing more (it drained the plan's segment count again before).
        let again = log
            .apply_retention(&InlineSink, plan, StoredMembership::default())
            .await
            .unwrap();
        assert_eq!(again, Removed::default());
        assert!(
            log.read_batches(18, 100, 20).is_ok(),
            "what the plan did not cover is still there"
        );
        drop(log);
        let (log, _) = PartitionLog::open(dir.path(), cfg).unwrap();
        assert_eq!(log.start_offset(), 18, "the log start survives a restart");
        assert_eq!(log.end_offset(), 20);
    }
}
