//! The in-memory tail of a partition log: the most recently appended entries as written, so
//! that commit-time apply (which openraft reads back through the log store) needs no disk read.

use super::entry::EntryInfo;
use bytes::Bytes;

/// Consecutive recent entries (by Raft index), each with its encoded bytes.
#[derive(Default)]
pub struct TailCache {
    entries: std::collections::VecDeque<(EntryInfo, Bytes)>,
    bytes: usize,
    /// Bytes kept at most (0 disables the cache).
    pub limit_bytes: usize,
}

impl TailCache {
    /// An empty cache holding at most `limit_bytes`.
    pub fn new(limit_bytes: usize) -> TailCache {
        TailCache {
            limit_bytes,
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
        while self.bytes > self.limit_bytes && !self.entries.is_empty() {
            if let Some((_, b)) = self.entries.pop_front() {
                self.bytes -= b.len();
            }
        }
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
