//! The openraft log store of a group IS its partition log: `append` writes entries to the active
//! segment and asks the committer to make them durable; openraft's flush callback fires only
//! once the committer says the fsync is done (in `relaxed` durability it says so at once).

use super::durable;
use super::FlushSink;
use crate::storage::log::PartitionLog;
use crate::types::{Entry, LogId, NodeId, StorageError, TypeConfig};
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{AnyError, LogState, OptionalSend, RaftLogReader, StorageIOError, Vote};
use std::fmt::Debug;
use std::fs::File;
use std::ops::{Bound, RangeBounds};
use std::path::PathBuf;
use std::sync::Arc;

/// Raft log storage over a `PartitionLog`.
#[derive(Clone)]
pub struct LogStore {
    log: Arc<PartitionLog>,
    sink: Arc<dyn FlushSink>,
    vote_path: PathBuf,
    committed_path: PathBuf,
    /// When the committed hint was last written (it is rewritten at most every 200 ms).
    committed_written: Option<std::time::Instant>,
    /// Where the group's membership is found when openraft purges (partitions only; the
    /// controller's log is never purged).
    purge_membership: Option<Arc<crate::storage::partition_sm::PartitionShared>>,
}

/// How stale the committed-index hint may get; a stale hint only delays a restart's re-apply.
const COMMITTED_HINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);

fn io_err(e: impl std::fmt::Display, write: bool) -> StorageError {
    let any = AnyError::error(e.to_string());
    let io = if write {
        StorageIOError::write_logs(any)
    } else {
        StorageIOError::read_logs(any)
    };
    StorageError::IO { source: io }
}

impl LogStore {
    /// A store over `log`; Raft's vote and committed index live beside the segments.
    pub fn new(log: Arc<PartitionLog>, sink: Arc<dyn FlushSink>) -> LogStore {
        let dir = log.dir().to_path_buf();
        LogStore {
            log,
            sink,
            vote_path: dir.join("raft-vote.json"),
            committed_path: dir.join("raft-committed.json"),
            committed_written: None,
            purge_membership: None,
        }
    }

    /// Lets openraft's purges remove whole segments (recording `shared`'s membership).
    pub fn purging_with(mut self, shared: Arc<crate::storage::partition_sm::PartitionShared>) -> LogStore {
        self.purge_membership = Some(shared);
        self
    }

    /// Hands `files` to the committer; once durable, notes how far the log is synced and tells
    /// openraft (`callback`). Rounds complete in order: what a successful one covers is
    /// durable; after a failed one, the unsynced tail is cut before the group runs again.
    fn flush_then(&self, files: Vec<Arc<File>>, bytes: u64, last: Option<u64>, callback: LogFlushed<TypeConfig>) {
        let (log, generation) = (self.log.clone(), self.log.cut_generation());
        self.sink.flush(
            files,
            bytes,
            Box::new(move |r| {
                match (&r, last) {
                    (Ok(()), Some(last)) => log.note_synced(last, generation),
                    (Ok(()), None) => {}
                    (Err(_), _) => log.note_sync_failed(),
                }
                callback.log_io_completed(r)
            }),
        );
    }

    /// Makes the segment about to close durable (through the committer, whatever the
    /// durability setting) and waits for it: its successor may hold nothing before.
    async fn sync_before_roll(&self, files: Vec<Arc<File>>, bytes: u64, last: Option<u64>) -> Result<(), StorageError> {
        let generation = self.log.cut_generation();
        let (done, outcome) = durable::awaited();
        self.sink.sync(files, bytes, done);
        match outcome.await {
            // After an earlier failed flush a later success proves nothing about the pages
            // the kernel dropped: no seal may vouch for this segment; the group stops and the
            // unsynced tail is cut before it runs again.
            Ok(()) if self.log.sync_failed() => Err(io_err("an earlier flush of this log failed".to_string(), true)),
            Ok(()) => {
                if let Some(last) = last {
                    self.log.note_synced(last, generation);
                }
                Ok(())
            }
            Err(e) => {
                self.log.note_sync_failed();
                Err(io_err(format!("syncing a segment before it closes: {e}"), true))
            }
        }
    }

    /// Writes a closed segment's seal durably through the committer and waits for it. A seal
    /// that could not be written only costs a scan of its segment at recovery.
    async fn write_seal(&self, path: std::path::PathBuf, data: Vec<u8>) {
        let shown = path.display().to_string();
        if let Err(e) = durable::write(&*self.sink, path, data).await {
            tracing::warn!(seal = %shown, error = %e, "could not write a segment's seal; recovery will scan it");
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(s) => *s,
            Bound::Excluded(s) => s + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(e) => e + 1,
            Bound::Excluded(e) => *e,
            Bound::Unbounded => u64::MAX,
        };
        self.log
            .entries(start, end)
            .map_err(|e| io_err(format!("{e:#}"), false))
    }

    /// What one AppendEntries carries: entries from `start` on, up to `end` and up to
    /// `raft.max.append.bytes` of payload, at least one (openraft sends the rest next).
    async fn limited_get_log_entries(&mut self, start: u64, end: u64) -> Result<Vec<Entry>, StorageError> {
        let budget_bytes = self.log.cfg.max_append_bytes;
        let mut out = Vec::new();
        let mut taken_bytes = 0u64;
        let mut at = start;
        while at < end {
            let chunk = self
                .log
                .entries(at, end.min(at + LIMITED_READ_STEP))
                .map_err(|e| io_err(format!("{e:#}"), false))?;
            if chunk.is_empty() {
                break;
            }
            for e in chunk {
                let size = payload_bytes(&e);
                if !out.is_empty() && taken_bytes + size > budget_bytes {
                    return Ok(out);
                }
                taken_bytes += size;
                at = e.log_id.index + 1;
                out.push(e);
            }
        }
        debug_assert!(out.len() as u64 <= end - start);
        Ok(out)
    }
}

/// Entries read at a time while filling a byte-bounded AppendEntries.
const LIMITED_READ_STEP: u64 = 16;

/// The bytes an entry adds to an AppendEntries (its payload; the rest is a few dozen bytes).
fn payload_bytes(e: &Entry) -> u64 {
    match &e.payload {
        openraft::EntryPayload::Normal(crate::types::Command::Batch(b) | crate::types::Command::Meta(b)) => {
            b.len() as u64
        }
        _ => 64,
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last = self.log.last_log_id();
        // Retention removes whole committed segments; its record says how far.
        let purged = crate::storage::log::retention::read_purge_record(self.log.dir()).map(|r| r.purged);
        Ok(LogState {
            last_purged_log_id: purged,
            last_log_id: last.or(purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        let data = serde_json::to_vec(vote).map_err(|e| io_err(e, true))?;
        // Two fsyncs: through the committer, off the runtime's worker threads, or a burst of
        // elections (a node's worth of partitions failing over) stalls every other task.
        let written = durable::write(&*self.sink, self.vote_path.clone(), data).await;
        written.map_err(|e| StorageError::IO {
            source: StorageIOError::write_vote(AnyError::new(&e)),
        })
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        match std::fs::read(&self.vote_path) {
            Ok(data) => serde_json::from_slice(&data).map(Some).map_err(|e| StorageError::IO {
                source: StorageIOError::read_vote(AnyError::new(&e)),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::IO {
                source: StorageIOError::read_vote(AnyError::new(&e)),
            }),
        }
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // A hint for faster restart only (a lost or stale one is recovered by the next
        // commit), so it is written without fsync and not on every commit.
        if self
            .committed_written
            .is_some_and(|t| t.elapsed() < COMMITTED_HINT_INTERVAL)
        {
            return Ok(());
        }
        self.committed_written = Some(std::time::Instant::now());
        let data = serde_json::to_vec(&committed).map_err(|e| io_err(e, true))?;
        let tmp = self.committed_path.with_extension("tmp");
        std::fs::write(&tmp, data)
            .and_then(|_| std::fs::rename(&tmp, &self.committed_path))
            .map_err(|e| io_err(e, true))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        let Ok(data) = std::fs::read(&self.committed_path) else {
            return Ok(None);
        };
        let committed: Option<LogId> = serde_json::from_slice(&data).unwrap_or(None);
        // Never claim more than the log holds (a torn tail may have been cut).
        let last = self.log.last_log_id();
        Ok(match (committed, last) {
            (Some(c), Some(l)) if c.index <= l.index => Some(c),
            (Some(_), Some(_)) => None,
            _ => None,
        })
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let mut rest: &[Entry] = &entries;
        let mut new_dirs = Vec::new();
        loop {
            let mut part = self.log.append_part(rest).map_err(|e| io_err(format!("{e:#}"), true))?;
            part.files.append(&mut new_dirs);
            let Some(written) = part.rolls_after else {
                self.flush_then(part.files, part.bytes, rest.last().map(|e| e.log_id.index), callback);
                return Ok(());
            };
            let last = rest[..written].last().map(|e| e.log_id.index);
            self.sync_before_roll(part.files, part.bytes, last).await?;
            let rolled = self.log.roll().map_err(|e| io_err(format!("{e:#}"), true))?;
            if let Some((path, data)) = rolled.seal {
                self.write_seal(path, data).await;
            }
            new_dirs.push(rolled.dir);
            rest = &rest[written..];
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // Cuts, rescans and fsyncs: off the runtime's workers.
        let log = self.log.clone();
        tokio::task::spawn_blocking(move || log.truncate_from(log_id.index))
            .await
            .map_err(|e| io_err(format!("{e}"), true))?
            .map_err(|e| io_err(format!("{e:#}"), true))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // Whole closed segments up to `log_id` go, as far as retention allows (a partly covered
        // one stays until later); openraft never reads below `log_id` again either way.
        let Some(shared) = &self.purge_membership else {
            return Ok(());
        };
        let membership = shared.membership.lock().clone();
        let allowed = shared.purge_allowed.load(std::sync::atomic::Ordering::SeqCst);
        if let Some(plan) = self.log.purge_plan(log_id.index.min(allowed)) {
            let removed = self
                .log
                .apply_retention(&*self.sink, plan, membership)
                .await
                .map_err(|e| io_err(format!("purging segments: {e}"), true))?;
            tracing::info!(dir = %self.log.dir().display(), segments = removed.segments, bytes = removed.bytes, log_start_offset = self.log.start_offset(), "retention removed old segments");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::log::LogConfig;
    use crate::types::Command;
    use openraft::{CommittedLeaderId, EntryPayload};

    use crate::storage::durable::InlineSink;

    #[tokio::test]
    async fn an_append_entries_read_stops_at_the_byte_bound_but_carries_at_least_one_entry() {
        let dir = tempfile::tempdir().unwrap();
        let batch = crate::protocol::batch::tests::batch(&[&[7u8; 1000]], 1);
        let cfg = LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: i64::MAX,
            index_interval_bytes: 4096,
            tail_cache_bytes: 0,
            max_append_bytes: 3 * batch.len() as u64,
        };
        let (log, _) = PartitionLog::open(dir.path(), cfg).unwrap();
        let entries: Vec<Entry> = (1..=40u64)
            .map(|i| Entry {
                log_id: LogId::new(CommittedLeaderId::new(1, 1), i),
                payload: EntryPayload::Normal(Command::Batch(batch.clone())),
            })
            .collect();
        log.append_synced(&entries).unwrap();
        let mut store = LogStore::new(Arc::new(log), Arc::new(InlineSink));
        let got = store.limited_get_log_entries(1, 41).await.unwrap();
        assert_eq!(got.iter().map(|e| e.log_id.index).collect::<Vec<_>>(), vec![1, 2, 3]);
        let got = store.limited_get_log_entries(38, 40).await.unwrap();
        assert_eq!(got.len(), 2, "the range end bounds it too");
        let mut tiny = LogStore::new(
            Arc::new(
                PartitionLog::open(
                    dir.path(),
                    LogConfig {
                        max_append_bytes: 1,
                        ..cfg
                    },
                )
                .unwrap()
                .0,
            ),
            Arc::new(InlineSink),
        );
        assert_eq!(
            tiny.limited_get_log_entries(5, 41).await.unwrap().len(),
            1,
            "one entry however large"
        );
    }

    /// Counts the durable writes it is asked for (and does them inline).
    #[derive(Default)]
    struct CountingSink(std::sync::atomic::AtomicUsize);

    impl FlushSink for CountingSink {
        fn flush(&self, files: Vec<Arc<File>>, bytes: u64, done: crate::storage::FlushDone) {
            InlineSink.flush(files, bytes, done)
        }
        fn sync(&self, files: Vec<Arc<File>>, bytes: u64, done: crate::storage::FlushDone) {
            InlineSink.sync(files, bytes, done)
        }
        fn write_durably(&self, path: PathBuf, data: Vec<u8>, done: crate::storage::FlushDone) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            InlineSink.write_durably(path, data, done)
        }
    }

    #[tokio::test]
    async fn a_vote_is_written_through_the_committer_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: i64::MAX,
            index_interval_bytes: 4096,
            tail_cache_bytes: 0,
            max_append_bytes: u64::MAX,
        };
        let (log, _) = PartitionLog::open(dir.path(), cfg).unwrap();
        let sink = Arc::new(CountingSink::default());
        let mut store = LogStore::new(Arc::new(log), sink.clone());
        let vote = Vote::new(3, 2);
        store.save_vote(&vote).await.unwrap();
        assert_eq!(
            sink.0.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "the vote went to the sink"
        );
        assert_eq!(store.read_vote().await.unwrap(), Some(vote));
    }
}
