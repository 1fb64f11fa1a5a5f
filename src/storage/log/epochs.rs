//! Leader epochs of a partition log (KIP-101/320). A batch's leader epoch is the Raft term it
//! was appended in, and terms never decrease along the log, so the end of an epoch is found by
//! binary search over the log's entries: no epoch cache to keep in step with truncation.

use crate::storage::log::{LogResult, PartitionLog};
use crate::types::Command;
use openraft::EntryPayload;

/// Kafka's answer for "where does `epoch` end": (the largest epoch <= `epoch` in the log, the
/// first offset after it). `(-1, -1)` for an epoch newer than the log's last one; for an epoch
/// older than any in the log, (`epoch`, the log's first offset).
pub fn end_offset_for(log: &PartitionLog, epoch: i32) -> LogResult<(i32, i64)> {
    let (Some(first), Some(last)) = (log.first_index(), log.last_log_id()) else {
        return Ok((-1, -1));
    };
    let term_at = |index: u64| -> LogResult<u64> {
        let e = log.entries(index, index + 1)?;
        Ok(e.first().map(|e| e.log_id.leader_id.term).unwrap_or(0))
    };
    let epoch = epoch.max(0) as u64;
    let latest = last.leader_id.term;
    if epoch == latest {
        return Ok((latest as i32, log.end_offset()));
    }
    if epoch > latest {
        return Ok((-1, -1));
    }
    // The first index whose term is above `epoch`: it exists, as the last entry's term is.
    let (mut lo, mut hi) = (first, last.index);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if term_at(mid)? > epoch {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let end = first_offset_from(log, lo)?;
    if lo == first {
        return Ok((epoch as i32, end));
    }
    Ok((term_at(lo - 1)? as i32, end))
}

/// The Kafka offset of the first batch at or after Raft index `index` (blank and membership
/// entries carry none), or the log end offset.
fn first_offset_from(log: &PartitionLog, index: u64) -> LogResult<i64> {
    const SCAN: u64 = 16;
    let mut at = index;
    loop {
        let entries = log.entries(at, at + SCAN)?;
        if entries.is_empty() {
            return Ok(log.end_offset());
        }
        for e in &entries {
            if let EntryPayload::Normal(Command::Batch(b)) = &e.payload {
                if b.len() >= 8 {
                    return Ok(i64::from_be_bytes(b[..8].try_into().expect("8 bytes")));
                }
            }
        }
        at += entries.len() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::batch::tests::batch;
    use crate::storage::log::LogConfig;
    use crate::types::Entry;
    use openraft::{CommittedLeaderId, LogId};

    fn entry(term: u64, index: u64, records: Option<usize>) -> Entry {
        let payload = match records {
            None => EntryPayload::Blank,
            Some(n) => {
                let values: Vec<&[u8]> = (0..n).map(|_| &b"v"[..]).collect();
                EntryPayload::Normal(Command::Batch(batch(&values, 0)))
            }
        };
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
            payload,
        }
    }

    #[test]
    fn epoch_ends_follow_kafka_rules() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig {
            segment_bytes: 300,
            segment_ms: i64::MAX,
            index_interval_bytes: 100,
            tail_cache_bytes: 0,
            max_append_bytes: u64::MAX,
        };
        let (log, _) = PartitionLog::open(dir.path(), cfg).unwrap();
        // Term 1: offsets 0..12; term 3: 12..21; term 5: 21..24 (each term opens with a blank).
        let mut index = 0;
        for (term, batches) in [(1, 4), (3, 3), (5, 1)] {
            index += 1;
            log.append_synced(&[entry(term, index, None)]).unwrap();
            for _ in 0..batches {
                index += 1;
                log.append_synced(&[entry(term, index, Some(3))]).unwrap();
            }
        }
        assert_eq!(log.end_offset(), 24);
        let answers: Vec<(i32, i64)> = (0..=6).map(|e| end_offset_for(&log, e).unwrap()).collect();
        assert_eq!(
            answers,
            vec![(0, 0), (1, 12), (1, 12), (3, 21), (3, 21), (5, 24), (-1, -1)],
            "epochs 0..=6"
        );
    }
}
