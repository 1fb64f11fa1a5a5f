//! ListOffsets v0's old-style answer: a list of offsets "before" a time, one per segment, as
//! Kafka computed it before KIP-79. Each segment stands for its first offset and its time (here
//! the newest record's timestamp, where Kafka used the file's modification time); a non-empty
//! active segment adds the log end at the broker's clock.

use crate::storage::log::PartitionLog;

/// ListOffsets v0's "latest" and "earliest" times.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;

impl PartitionLog {
    /// At most `max_offsets` offsets, newest first: for `LATEST` from the log end back, for
    /// `EARLIEST` the log start, else from the newest segment whose time is at or before
    /// `timestamp` back. Offsets above `high_watermark` are not shown to consumers: the high
    /// watermark stands in for them.
    pub fn offsets_before(&self, timestamp: i64, max_offsets: usize, high_watermark: i64, now_ms: i64) -> Vec<i64> {
        if max_offsets == 0 {
            return Vec::new();
        }
        let points: Vec<(i64, i64)> = {
            let segs = self.inner.read();
            let start = self.start_of(&segs);
            let mut points: Vec<(i64, i64)> = segs
                .iter()
                .map(|s| (s.base_offset.max(start), s.max_timestamp))
                .collect();
            if segs.last().is_some_and(|s| s.last.is_some()) {
                let end = segs.last().map(|s| s.next_offset).unwrap_or(start);
                points.push((end.max(start), now_ms));
            }
            points
        };
        let from = match timestamp {
            LATEST => points.len().checked_sub(1),
            EARLIEST => (!points.is_empty()).then_some(0),
            t => points.iter().rposition(|(_, time)| *time <= t),
        };
        let Some(from) = from else {
            return Vec::new();
        };
        let mut offsets: Vec<i64> = points[..=from]
            .iter()
            .rev()
            .take(max_offsets)
            .map(|(o, _)| *o)
            .collect();
        if offsets.iter().any(|o| *o > high_watermark) {
            offsets.retain(|o| *o <= high_watermark);
            offsets.insert(0, high_watermark);
            offsets.truncate(max_offsets);
        }
        offsets.dedup();
        offsets
    }
}

#[cfg(test)]
mod tests {
    use crate::storage::log::{LogConfig, PartitionLog};
    use crate::types::Command;
    use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};

    fn entry(index: u64, timestamp: i64) -> Entry<crate::types::TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(Command::Batch(crate::protocol::batch::tests::batch(
                &[b"a", b"b"],
                timestamp,
            ))),
        }
    }

    #[test]
    fn offsets_before_follow_the_segments() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig {
            segment_bytes: 1024,
            segment_ms: i64::MAX,
            index_interval_bytes: 100,
            tail_cache_bytes: 0,
            max_append_bytes: u64::MAX,
        };
        let (log, _) = PartitionLog::open(dir.path(), cfg).unwrap();
        // Three segments of batches at times 1000, 2000, ...: the size bound rolls them.
        for i in 1..=30u64 {
            log.append_synced(&[entry(i, i as i64 * 1000)]).unwrap();
        }
        let end = log.end_offset();
        let now = 1_000_000;
        assert_eq!(log.offsets_before(-1, 1, end, now), vec![end]);
        assert_eq!(log.offsets_before(-2, 1, end, now), vec![0]);
        assert_eq!(
            log.offsets_before(-1, 1, end - 4, now),
            vec![end - 4],
            "capped at the high watermark"
        );
        let all = log.offsets_before(-1, 100, end, now);
        assert!(all.len() >= 3 && all.windows(2).all(|w| w[0] > w[1]), "{all:?}");
        assert_eq!(*all.last().unwrap(), 0);
        assert_eq!(
            log.offsets_before(500, 10, end, now),
            Vec::<i64>::new(),
            "nothing that old"
        );
        // Before the first segment's newest record: only segments whose records are all older.
        let first_closed = log.offsets_before(30_500, 10, end, now);
        assert_eq!(first_closed.first(), all.get(1), "{first_closed:?} / {all:?}");
    }
}
