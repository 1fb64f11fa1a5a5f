//! A partition's log: an ordered list of segments holding Raft entries, each a Kafka batch (or a
//! Raft-internal entry). The Raft log store writes it; fetches read it; both share it.
//! Owns the segment files, their seals and indexes, the tail cache and retention; imports
//! nothing of the actors or handlers.

pub mod entry;
pub mod epochs;
pub mod error;
mod recover;
pub mod retention;
pub mod roll;
pub mod seal;
pub mod segment;
pub mod tail_cache;
pub mod times;

pub use self::error::{LogError, LogResult};
use self::segment::Segment;
use self::tail_cache::TailCache;
use crate::types::{Entry, LogId};
use bytes::{Bytes, BytesMut};
use entry::EntryInfo;
use parking_lot::RwLock;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Sizes that shape a log.
#[derive(Debug, Clone, Copy)]
pub struct LogConfig {
    pub segment_bytes: u64,
    /// Age at which a non-empty active segment rolls on the next append (`segment.ms`).
    pub segment_ms: i64,
    pub index_interval_bytes: u64,
    /// Bytes of recently appended entries kept in memory (0 disables the cache).
    pub tail_cache_bytes: usize,
    /// Most entry bytes one AppendEntries carries to a follower (at least one entry goes).
    pub max_append_bytes: u64,
}

/// What recovery found, for the start-up log line.
#[derive(Debug, Default)]
pub struct RecoveryReport {
    pub segments: usize,
    pub entries: u64,
    /// Bytes cut from a torn or corrupt tail, and why.
    pub truncated: Option<(u64, String)>,
    /// Idempotent-producer state rebuilt from the batch headers.
    pub producers: crate::storage::producer_state::ProducerStates,
}

/// Files an append wrote to, to be made durable.
pub struct Appended {
    pub files: Vec<Arc<File>>,
    pub bytes: u64,
    /// `Some(n)`: only the first `n` entries were written; the active segment must roll (once
    /// the files are durable: `PartitionLog::roll`) before the rest.
    pub rolls_after: Option<usize>,
}

/// Batches read for a fetch.
#[derive(Debug, Default, PartialEq)]
pub struct FetchRead {
    /// Whole batches, concatenated, byte-exact as stored.
    pub records: Bytes,
}

/// A fetch offset outside the log.
#[derive(Debug, PartialEq, Eq)]
pub struct OutOfRange;

/// A partition log shared by its Raft store (writer) and fetches (readers).
pub struct PartitionLog {
    pub(super) dir: PathBuf,
    pub(super) cfg: LogConfig,
    /// Roll size; a topic's `segment.bytes` can change it while the log runs.
    pub(super) segment_bytes: std::sync::atomic::AtomicU64,
    /// Roll age; a topic's `segment.ms` can change it while the log runs.
    pub(super) segment_ms: std::sync::atomic::AtomicI64,
    pub(super) inner: RwLock<Vec<Segment>>,
    /// First offset clients may read (DeleteRecords can move it inside a segment); persisted in
    /// `log-start-offset`. The effective start is the larger of this and the first segment's base.
    pub(super) log_start: std::sync::atomic::AtomicI64,
    /// Producer state of everything appended (for seals), and whether it is exact (a
    /// truncation makes it inexact: seals are then skipped and recovery scans instead).
    pub(super) producers: parking_lot::Mutex<(crate::storage::producer_state::ProducerStates, bool)>,
    /// The most recently appended entries, as written: commit-time apply (which openraft
    /// reads back through the log store) and tail fetches are served from memory.
    pub(super) tail: parking_lot::Mutex<TailCache>,
    /// One past the last Raft index known durable (what was there at open counts as durable).
    pub(super) synced_upto: std::sync::atomic::AtomicU64,
    /// A flush of this log failed: what follows `synced_upto` may be gone from the disk.
    pub(super) sync_failed: std::sync::atomic::AtomicBool,
    /// Counts cuts of the unsynced tail: flushes of appends from before a cut say nothing.
    pub(super) cuts: std::sync::atomic::AtomicU64,
}

impl PartitionLog {
    /// A flush failed and the tail after `synced_upto` has not been cut yet.
    pub fn sync_failed(&self) -> bool {
        self.sync_failed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// One past the last Raft index known durable.
    pub fn synced_upto(&self) -> u64 {
        self.synced_upto.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Which cut of the unsynced tail appends happen after (for `note_synced`).
    pub fn cut_generation(&self) -> u64 {
        self.cuts.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Everything up to Raft index `index`, appended in cut generation `generation`, is durable
    /// (its flush round succeeded). Ignored after a failed flush until the cut: a later fsync
    /// that succeeds does not prove the pages an earlier one failed to write reached the disk.
    pub fn note_synced(&self, index: u64, generation: u64) {
        use std::sync::atomic::Ordering::SeqCst;
        if !self.sync_failed.load(SeqCst) && self.cuts.load(SeqCst) == generation {
            debug_assert!(
                self.last_log_id().is_none_or(|l| index <= l.index),
                "what is synced was written (flushed >= synced)"
            );
            self.synced_upto.fetch_max(index + 1, SeqCst);
        }
    }

    /// A flush of this log failed.
    pub fn note_sync_failed(&self) {
        self.sync_failed.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// After a failed flush, cuts every entry after the last one known durable and returns how
    /// many went (none if no flush failed). The kernel may drop pages it failed to write while
    /// reads still return them ("fsyncgate"): a group restarted on this log must not count those
    /// entries as its own. They were never acknowledged; they come again from the leader. Call
    /// only while no group runs on the log.
    pub fn cut_unsynced(&self) -> LogResult<u64> {
        use std::sync::atomic::Ordering::SeqCst;
        if !self.sync_failed.load(SeqCst) {
            return Ok(0);
        }
        let from = self.synced_upto.load(SeqCst);
        let cut = match self.last_log_id() {
            Some(last) if last.index >= from => {
                self.truncate_from(from)?;
                last.index + 1 - from
            }
            _ => 0,
        };
        self.cuts.fetch_add(1, SeqCst);
        self.sync_failed.store(false, SeqCst);
        Ok(cut)
    }

    /// Changes the size at which the active segment rolls (from the next append on).
    pub fn set_segment_bytes(&self, bytes: u64) {
        self.segment_bytes
            .store(bytes.max(1024), std::sync::atomic::Ordering::Relaxed);
    }

    /// Changes the age at which the active segment rolls (from the next append on).
    pub fn set_segment_ms(&self, ms: i64) {
        self.segment_ms.store(ms.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the active segment must roll before `pending` more bytes go into it: it would
    /// grow past `segment.bytes`, or it holds entries and is older than `segment.ms`.
    pub(super) fn must_roll(&self, active: &Segment, pending: u64, buffered_records: bool, now_ms: i64) -> bool {
        if active.last.is_none() && pending == 0 {
            return false;
        }
        // A segment without records (a new group's blank and membership entries) never rolls:
        // its successor would take the same base offset, hence the same file name, and the
        // roll would truncate the segment it closes.
        if active.next_offset == active.base_offset && !buffered_records {
            return false;
        }
        let full = active.size_bytes + pending >= self.segment_bytes.load(std::sync::atomic::Ordering::Relaxed);
        // Age counts for a segment that held entries before this append: an old, empty active
        // segment takes this append's entries rather than rolling after the first of them.
        let age_ms = now_ms.saturating_sub(active.created_ms);
        full || (active.last.is_some() && age_ms >= self.segment_ms.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Directory of this log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last entry's log id.
    pub fn last_log_id(&self) -> Option<LogId> {
        let segs = self.inner.read();
        segs.iter().rev().find_map(|s| s.last.map(|l| l.log_id))
    }

    /// The first Raft index still in the log.
    pub fn first_index(&self) -> Option<u64> {
        let segs = self.inner.read();
        segs.iter().find(|s| s.last.is_some()).map(|s| s.base_index)
    }

    /// Kafka offset after the last batch (the log end offset).
    pub fn end_offset(&self) -> i64 {
        self.inner.read().last().map(|s| s.next_offset).unwrap_or(0)
    }

    /// First Kafka offset still in the log.
    pub fn start_offset(&self) -> i64 {
        let segs = self.inner.read();
        self.start_of(&segs)
    }

    /// The effective log start given the segment list.
    pub(super) fn start_of(&self, segs: &[Segment]) -> i64 {
        let first = segs.first().map(|s| s.base_offset).unwrap_or(0);
        first.max(self.log_start.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// Reads the entries with Raft index in `start..end`.
    pub fn entries(&self, start: u64, end: u64) -> LogResult<Vec<Entry>> {
        if let Some(cached) = self.tail.lock().range(start, end) {
            return cached
                .into_iter()
                .map(|(info, bytes)| entry::decode(bytes, &info))
                .collect();
        }
        let segs = self.inner.read();
        let mut out = Vec::new();
        let mut idx = start;
        for seg in segs.iter() {
            let Some(last) = seg.last_index() else {
                continue;
            };
            if idx >= end {
                break;
            }
            if last < idx || seg.base_index >= end {
                continue;
            }
            let mut pos = seg.scan_start_for_index(idx);
            while pos < seg.size_bytes && idx < end {
                let (bytes, info) = seg.read_at(pos, 0)?;
                pos += info.disk_bytes;
                if info.log_id.index < idx {
                    continue;
                }
                out.push(entry::decode(bytes, &info)?);
                idx += 1;
            }
        }
        Ok(out)
    }

    /// Producer sequences of every batch appended so far (leader and follower appends alike),
    /// and whether they are exact (not after a truncation). A new leader takes them over.
    pub fn producer_states(&self) -> (crate::storage::producer_state::ProducerStates, bool) {
        self.producers.lock().clone()
    }

    /// Trims the cached tail back to `tail_cache_bytes` if nothing was appended for `idle`.
    pub fn trim_idle_tail(&self, idle: std::time::Duration) {
        self.tail.lock().trim_if_idle(idle);
    }

    /// Forgets the cached tail and the producer sequences (the log was replaced under them).
    pub(super) fn clear_tail_and_producers(&self) {
        self.tail.lock().clear();
        *self.producers.lock() = (Default::default(), false);
    }

    /// Deletes every entry with Raft index >= `index`.
    pub fn truncate_from(&self, index: u64) -> LogResult<()> {
        let mut segs = self.inner.write();
        self.tail.lock().clear();
        while segs.len() > 1 && segs.last().is_some_and(|s| s.base_index >= index) {
            let seg = segs.pop().expect("segment");
            seal::remove(&seg.path)?;
            std::fs::remove_file(&seg.path)?;
        }
        let seg = segs.last_mut().expect("segment");
        seal::remove(&seg.path)?;
        // Truncation is rare (a follower's conflicting tail): a plain scan is fine. The scan
        // carries the next Kafka offset: an entry without records (a new leader's blank entry)
        // takes it as its own, and the log continues from the last kept entry's.
        let mut pos = 0;
        let mut prev: Option<EntryInfo> = None;
        while pos < seg.size_bytes {
            let (_, info) = seg.read_at(pos, prev.map_or(seg.base_offset, |p| p.next_offset))?;
            if info.log_id.index >= index {
                break;
            }
            prev = Some(info);
            pos += info.disk_bytes;
        }
        seg.truncate_at(pos, prev)?;
        seg.file.sync_all()?;
        // The removed entries' producer sequences must go too: a leader that kept them would
        // answer a retry of a batch that is no longer in the log as a duplicate, at an offset
        // that now holds another batch (an acknowledged write lost; found by the chaos suite).
        // They cannot be taken out one by one (older sequences were not kept), so the state is
        // rebuilt: from the newest valid seal before the cut (the state as of its segment's
        // end), scanning only the segments after it, or from the whole log without one.
        let closed = segs.len() - 1;
        let (mut rebuilt, scan_from) = (0..closed)
            .rev()
            .find_map(|i| seal::read_valid(&segs[i].path).map(|s| (s.producers, i + 1)))
            .unwrap_or_default();
        let now_ms = crate::storage::log::segment::now_ms();
        for seg in &segs[scan_from..] {
            let mut pos = 0;
            while pos < seg.size_bytes {
                let (_, info) = seg.read_at(pos, 0)?;
                if let Some(p) = info.producer {
                    rebuilt.record(p.id, p.epoch, p.first_seq, p.count, Some(info.base_offset), now_ms);
                }
                pos += info.disk_bytes;
            }
        }
        *self.producers.lock() = (rebuilt, true);
        Ok(())
    }

    /// Whole batches from the one holding `offset` up to `max_bytes` (at least one batch),
    /// stopping before `high_watermark`.
    pub fn read_batches(&self, offset: i64, max_bytes: usize, high_watermark: i64) -> Result<FetchRead, OutOfRange> {
        let segs = self.inner.read();
        let start = self.start_of(&segs);
        let end = segs.last().map(|s| s.next_offset).unwrap_or(0);
        // Out of range only outside the log, as Kafka answers: between the high watermark and
        // the log end (a new leader whose high watermark has not caught up with what it holds)
        // a fetch gets nothing yet. Refusing it made consumers reset to the earliest offset.
        if offset < start || offset > high_watermark.max(end) {
            return Err(OutOfRange);
        }
        let mut out = BytesMut::new();
        if offset >= high_watermark {
            return Ok(FetchRead::default());
        }
        let first = segs.partition_point(|s| s.base_offset <= offset).saturating_sub(1);
        'segments: for seg in &segs[first..] {
            let mut pos = if out.is_empty() {
                seg.scan_start_for_offset(offset)
            } else {
                0
            };
            while pos < seg.size_bytes {
                let Ok((bytes, info)) = seg.read_at(pos, 0) else {
                    break 'segments;
                };
                pos += info.disk_bytes;
                if !info.is_batch || info.next_offset <= offset {
                    continue;
                }
                if info.base_offset >= high_watermark {
                    break 'segments;
                }
                let batch = entry::batch_payload(&bytes, &info).expect("batch entry");
                if !out.is_empty() && out.len() + batch.len() > max_bytes {
                    break 'segments;
                }
                out.extend_from_slice(&batch);
            }
        }
        Ok(FetchRead { records: out.freeze() })
    }

    /// The first record (offset order) whose timestamp is >= `timestamp`, with its timestamp:
    /// found inside the first batch whose max timestamp is >= `timestamp`.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Option<(i64, i64)> {
        let segs = self.inner.read();
        for seg in segs.iter() {
            if seg.max_timestamp < timestamp {
                continue;
            }
            let mut pos = seg.scan_start_for_time(timestamp);
            while pos < seg.size_bytes {
                let Ok((bytes, info)) = seg.read_at(pos, 0) else {
                    return None;
                };
                pos += info.disk_bytes;
                if info.is_batch && info.max_timestamp >= timestamp {
                    let batch = entry::batch_payload(&bytes, &info)?;
                    // A header's max timestamp is the client's: if no record matches, go on.
                    if let Some(found) = crate::protocol::record_times::first_at_or_after(&batch, timestamp) {
                        return Some(found);
                    }
                }
            }
        }
        None
    }

    /// Writes the encoded entries in `buf` at the end of `seg` with one write, indexes them and
    /// keeps them in the tail cache.
    pub(super) fn flush_buf(
        &self,
        seg: &mut Segment,
        buf: &mut Vec<u8>,
        infos: &mut Vec<EntryInfo>,
        files: &mut Vec<Arc<File>>,
    ) -> LogResult<()> {
        if buf.is_empty() {
            return Ok(());
        }
        seg.file.write_all_at(buf, seg.size_bytes)?;
        let written = Bytes::from(std::mem::take(buf));
        let base = seg.size_bytes;
        let mut tail = self.tail.lock();
        let mut producers = self.producers.lock();
        for info in infos.drain(..) {
            if let Some(p) = info.producer {
                producers.0.record(
                    p.id,
                    p.epoch,
                    p.first_seq,
                    p.count,
                    Some(info.base_offset),
                    crate::storage::log::segment::now_ms(),
                );
            }
            let at = (info.pos - base) as usize;
            tail.push(info, written.slice(at..at + info.disk_bytes as usize));
            seg.note_appended(info);
        }
        if !files.iter().any(|f| Arc::ptr_eq(f, &seg.file)) {
            files.push(seg.file.clone());
        }
        Ok(())
    }

    /// Bytes the log's segment files hold.
    pub fn size_bytes(&self) -> u64 {
        self.inner.read().iter().map(|s| s.size_bytes).sum()
    }

    /// Forces every segment to disk (shutdown).
    pub fn sync_all(&self) -> std::io::Result<()> {
        let segs = self.inner.read();
        for s in segs.iter() {
            s.file.sync_data()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
