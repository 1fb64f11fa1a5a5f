//! Idempotent-producer state of one partition: for each producer id its epoch and the last five
//! batches' sequence ranges and offsets. Rebuilt from the log's batch headers at recovery, so it
//! survives restarts; updated by the partition actor as batches are appended.

use kafka_protocol::error::ResponseError;
use std::collections::{HashMap, VecDeque};

/// Batches remembered per producer (Kafka keeps five: a producer has at most five in flight).
pub const BATCHES_PER_PRODUCER: usize = 5;

/// One remembered batch. `base_offset` is `None` while it is being appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BatchSeq {
    pub first_seq: i32,
    pub last_seq: i32,
    pub base_offset: Option<i64>,
}

/// What is known about one producer id.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ProducerEntry {
    pub epoch: i16,
    pub batches: VecDeque<BatchSeq>,
    /// Wall-clock ms of the last append (for expiry).
    pub last_append_ms: i64,
}

/// What to do with an idempotent batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqCheck {
    /// In sequence: append it.
    Append,
    /// A retry of a batch already appended at this base offset.
    Duplicate(i64),
    /// A retry of a batch still being appended: answer when it is.
    DuplicateInFlight,
    /// Ahead of the next expected sequence: an earlier batch of this producer was refused (or
    /// has not arrived) and will be retried. Refused as retriable and not persisted, so the
    /// client resends both in order. (Kafka answers OUT_OF_ORDER_SEQUENCE_NUMBER, on which
    /// librdkafka bumps the producer epoch and renumbers every unacknowledged message, even
    /// ones that may already be in a log: duplicates, found by the chaos suite.)
    Gap,
    /// Refuse with this error.
    Reject(ResponseError),
}

/// Last sequence of a batch starting at `first` with `count` records (sequences wrap at i32::MAX).
pub fn last_seq(first: i32, count: i32) -> i32 {
    ((first as i64 + count as i64 - 1) % (i32::MAX as i64 + 1)) as i32
}

fn next_seq(last: i32) -> i32 {
    if last == i32::MAX {
        0
    } else {
        last + 1
    }
}

/// All producers of one partition.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerStates {
    /// Kafka's sequence rules for a batch of `count` records from `(pid, epoch)` starting at `first_seq`.
    pub fn check(&self, pid: i64, epoch: i16, first_seq: i32, count: i32) -> SeqCheck {
        let Some(entry) = self.producers.get(&pid) else {
            // Unknown (new, or expired) producer: any sequence starts its history.
            return SeqCheck::Append;
        };
        if epoch < entry.epoch {
            return SeqCheck::Reject(ResponseError::InvalidProducerEpoch);
        }
        if epoch > entry.epoch {
            // A bumped epoch restarts sequences at 0.
            return if first_seq == 0 {
                SeqCheck::Append
            } else {
                SeqCheck::Reject(ResponseError::OutOfOrderSequenceNumber)
            };
        }
        let last = last_seq(first_seq, count);
        if let Some(b) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == first_seq && b.last_seq == last)
        {
            return match b.base_offset {
                Some(offset) => SeqCheck::Duplicate(offset),
                None => SeqCheck::DuplicateInFlight,
            };
        }
        match entry.batches.back() {
            Some(b) if first_seq != next_seq(b.last_seq) => {
                // Sequences wrap at i32::MAX: "ahead" is a forward distance under half the range.
                let ahead = (first_seq as i64 - next_seq(b.last_seq) as i64).rem_euclid(1 << 31) < 1 << 30;
                if ahead {
                    SeqCheck::Gap
                } else {
                    SeqCheck::Reject(ResponseError::OutOfOrderSequenceNumber)
                }
            }
            _ => SeqCheck::Append,
        }
    }

    /// Remembers a batch (in flight when `base_offset` is `None`).
    pub fn record(&mut self, pid: i64, epoch: i16, first_seq: i32, count: i32, base_offset: Option<i64>, now_ms: i64) {
        let entry = self.producers.entry(pid).or_default();
        if epoch != entry.epoch {
            entry.batches.clear();
            entry.epoch = epoch;
        }
        let last = last_seq(first_seq, count);
        if let Some(b) = entry
            .batches
            .iter_mut()
            .find(|b| b.first_seq == first_seq && b.last_seq == last)
        {
            b.base_offset = base_offset.or(b.base_offset);
        } else {
            entry.batches.push_back(BatchSeq {
                first_seq,
                last_seq: last,
                base_offset,
            });
            while entry.batches.len() > BATCHES_PER_PRODUCER {
                entry.batches.pop_front();
            }
        }
        entry.last_append_ms = now_ms;
    }

    /// Forgets an in-flight batch that failed, and every later one of the same producer
    /// (they cannot have been appended either).
    pub fn forget_from(&mut self, pid: i64, first_seq: i32) {
        if let Some(entry) = self.producers.get_mut(&pid) {
            if let Some(i) = entry
                .batches
                .iter()
                .position(|b| b.first_seq == first_seq && b.base_offset.is_none())
            {
                entry.batches.truncate(i);
            }
            if entry.batches.is_empty() {
                self.producers.remove(&pid);
            }
        }
    }

    /// Drops producers idle since before `cutoff_ms`.
    pub fn expire(&mut self, cutoff_ms: i64) {
        self.producers
            .retain(|_, e| e.last_append_ms >= cutoff_ms || e.batches.iter().any(|b| b.base_offset.is_none()));
    }

    /// Number of producers tracked.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// True when no producer is tracked.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_sequence_rules() {
        let mut s = ProducerStates::default();
        assert_eq!(s.check(1, 0, 0, 5), SeqCheck::Append);
        s.record(1, 0, 0, 5, None, 0);
        assert_eq!(s.check(1, 0, 0, 5), SeqCheck::DuplicateInFlight);
        s.record(1, 0, 0, 5, Some(100), 0);
        assert_eq!(s.check(1, 0, 0, 5), SeqCheck::Duplicate(100));
        assert_eq!(s.check(1, 0, 5, 3), SeqCheck::Append);
        assert_eq!(s.check(1, 0, 9, 1), SeqCheck::Gap, "ahead: an earlier batch is missing");
        assert_eq!(
            s.check(1, -1, 5, 1),
            SeqCheck::Reject(ResponseError::InvalidProducerEpoch)
        );
        assert_eq!(
            s.check(1, 1, 3, 1),
            SeqCheck::Reject(ResponseError::OutOfOrderSequenceNumber)
        );
        assert_eq!(s.check(1, 1, 0, 1), SeqCheck::Append);
        assert_eq!(s.check(2, 0, 77, 1), SeqCheck::Append, "unknown producer: any sequence");
        s.record(1, 0, 5, 3, None, 0);
        s.record(1, 0, 8, 2, None, 0);
        s.forget_from(1, 5);
        assert_eq!(
            s.check(1, 0, 5, 3),
            SeqCheck::Append,
            "failed batch and its successors are forgotten"
        );
        assert_eq!(last_seq(i32::MAX, 2), 0);
        for i in 0..10 {
            s.record(3, 0, i, 1, Some(i as i64), 0);
        }
        assert_eq!(
            s.check(3, 0, 2, 1),
            SeqCheck::Reject(ResponseError::OutOfOrderSequenceNumber),
            "only five remembered: an older retry is out of order"
        );
        s.record(4, 0, i32::MAX - 1, 2, Some(0), 0);
        assert_eq!(s.check(4, 0, 0, 1), SeqCheck::Append, "sequences wrap");
        assert_eq!(s.check(4, 0, 3, 1), SeqCheck::Gap, "ahead across the wrap");
        assert_eq!(
            s.check(4, 0, i32::MAX - 5, 1),
            SeqCheck::Reject(ResponseError::OutOfOrderSequenceNumber),
            "behind across the wrap"
        );
        assert_eq!(s.check(3, 0, 9, 1), SeqCheck::Duplicate(9));
        s.expire(1);
        assert!(s.is_empty());
    }
}
