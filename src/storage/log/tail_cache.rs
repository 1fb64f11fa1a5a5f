//! The in-memory tail of a partition log: the most recently appended entries as written, so
//! that commit-time apply (which openraft reads back through the log store) and replication
//! need no disk read. A partition being appended to may hold up to its burst limit (a few
//! AppendEntries' worth: one ~1 MB batch never fit the 512 KiB limit, so every entry was read
//! back from disk and its CRC verified on every node); one idle for a second is trimmed back
//! to the plain limit (`trim_if_idle`), so memory grows with the busy partitions only.

use crate::storage::log::entry::EntryInfo;
use bytes::Bytes;

/// Consecutive recent entries (by Raft index), each with its encoded bytes.
#[derive(Default)]
pub struct TailCache {
    entries: std::collections::VecDeque<(EntryInfo, Bytes)>,
    bytes: usize,
    /// Bytes kept by an idle partition (0 disables the cache).
    pub limit_bytes: usize,
    /// Bytes kept at most while entries are being appended (at least `limit_bytes`).
    pub burst_limit_bytes: usize,
    /// When the last entry was added.
    last_push: Option<std::time::Instant>,
}

impl TailCache {
    /// An empty cache holding at most `burst_limit_bytes` while appended to and `limit_bytes`
    /// once idle.
    pub fn new(limit_bytes: usize, burst_limit_bytes: usize) -> TailCache {
        TailCache {
            limit_bytes,
            burst_limit_bytes: burst_limit_bytes.max(limit_bytes),
            ..Default::default()
        }
    }

    /// Adds the entry just written; a gap in Raft indexes empties the cache first.
    pub fn push(&mut self, info: EntryInfo, bytes: Bytes) {
        if self
            .entries
            .back()
            .is_some_and(|(last, _)| last.log_id.index + 1 != info.log_id.index)
        {
            self.clear();
        }
        self.bytes += bytes.len();
        self.entries.push_back((info, bytes));
        self.last_push = Some(std::time::Instant::now());
        self.evict_to(self.burst_limit_bytes);
    }

    /// Trims the cache back to `limit_bytes` when nothing was added for `idle`.
    pub fn trim_if_idle(&mut self, idle: std::time::Duration) {
        if self.last_push.is_some_and(|at| at.elapsed() >= idle) {
            self.evict_to(self.limit_bytes);
        }
    }

    /// Drops the oldest entries until at most `limit` bytes are held.
    fn evict_to(&mut self, limit: usize) {
        while self.bytes > limit {
            let Some((_, b)) = self.entries.pop_front() else { break };
            self.bytes -= b.len();
        }
        debug_assert!(self.bytes <= limit || self.entries.is_empty());
    }

    /// Bytes held now.
    pub fn held_bytes(&self) -> usize {
        self.bytes
    }

    /// Forgets everything (truncation).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// Entries `start..end` if the cache holds all of them.
    pub fn range(&self, start: u64, end: u64) -> Option<Vec<(EntryInfo, Bytes)>> {
        let first = self.entries.front()?.0.log_id.index;
        let last = self.entries.back()?.0.log_id.index;
        if start < first || end > last + 1 || start >= end {
            return None;
        }
        Some(
            self.entries
                .range((start - first) as usize..(end - first) as usize)
                .cloned()
                .collect(),
        )
    }
}

impl crate::storage::log::LogConfig {
    /// What the tail cache may hold while entries are appended: four AppendEntries' worth (at
    /// least `tail_cache_bytes`, at most 64 MiB), so that the entries a follower or commit-time
    /// apply reads are still in memory when batches are near `message.max.bytes` (0 when the
    /// cache is off).
    pub fn tail_burst_bytes(&self) -> usize {
        const MAX_BURST_BYTES: u64 = 64 << 20;
        if self.tail_cache_bytes == 0 {
            return 0;
        }
        let burst = self.max_append_bytes.saturating_mul(4).min(MAX_BURST_BYTES) as usize;
        self.tail_cache_bytes.max(burst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, bytes: usize) -> (EntryInfo, Bytes) {
        let info = EntryInfo {
            log_id: openraft::LogId::new(openraft::CommittedLeaderId::new(1, 1), index),
            pos: 0,
            disk_bytes: bytes as u64,
            base_offset: index as i64,
            next_offset: index as i64 + 1,
            max_timestamp: -1,
            is_batch: true,
            producer: None,
        };
        (info, Bytes::from(vec![0u8; bytes]))
    }

    #[test]
    fn a_partition_being_appended_to_keeps_its_burst_then_trims_back_when_idle() {
        let mut cache = TailCache::new(100, 300);
        for i in 1..=3 {
            let (info, bytes) = entry(i, 100);
            cache.push(info, bytes);
        }
        assert_eq!(cache.held_bytes(), 300, "three entries within the burst limit");
        assert!(cache.range(1, 4).is_some());
        cache.trim_if_idle(std::time::Duration::from_secs(3600));
        assert_eq!(cache.held_bytes(), 300, "not idle yet");
        cache.trim_if_idle(std::time::Duration::ZERO);
        assert_eq!(cache.held_bytes(), 100, "idle: back to the plain limit");
        assert!(
            cache.range(3, 4).is_some() && cache.range(2, 4).is_none(),
            "the newest entry stays"
        );
    }

    #[test]
    fn an_entry_larger_than_the_burst_limit_is_not_kept() {
        let mut cache = TailCache::new(100, 300);
        let (info, bytes) = entry(1, 400);
        cache.push(info, bytes);
        assert_eq!(cache.held_bytes(), 0);
        assert!(cache.range(1, 2).is_none());
    }
}
