//! Unit tests of the partition log.

use super::*;
use crate::protocol::batch::tests::batch;
use crate::types::Command;
use openraft::CommittedLeaderId;
use openraft::EntryPayload;

fn batch_entry(index: u64, n: usize) -> Entry {
    let values: Vec<Vec<u8>> = (0..n).map(|i| format!("v{index}-{i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = values.iter().map(|v| v.as_slice()).collect();
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(Command::Batch(batch(&refs, index as i64 * 10))),
    }
}

/// A log in a fresh dir holding batches of `records` records at Raft indexes `1..=last`.
fn log_with_batches(last: u64, records: usize) -> (tempfile::TempDir, PartitionLog) {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), CFG).unwrap();
    for i in 1..=last {
        log.append_synced(&[batch_entry(i, records)]).unwrap();
    }
    (dir, log)
}

/// A blank entry (a new leader's first) of `term` at Raft index `index`.
fn blank_entry(term: u64, index: u64) -> Entry {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
        payload: EntryPayload::Blank,
    }
}

const CFG: LogConfig = LogConfig {
    segment_bytes: 400,
    segment_ms: i64::MAX,
    index_interval_bytes: 100,
    tail_cache_bytes: 1 << 20,
    max_append_bytes: u64::MAX,
};

#[test]
fn append_roll_read_truncate_recover() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), CFG).unwrap();
    log.append_synced(&[blank_entry(1, 1)]).unwrap();
    for i in 2..30 {
        log.append_synced(&[batch_entry(i, 3)]).unwrap();
    }
    assert_eq!(log.end_offset(), 28 * 3);
    assert!(std::fs::read_dir(dir.path()).unwrap().count() > 2, "segments rolled");
    let es = log.entries(5, 9).unwrap();
    assert_eq!(es.iter().map(|e| e.log_id.index).collect::<Vec<_>>(), vec![5, 6, 7, 8]);
    let r = log.read_batches(10, 1, 1000).unwrap();
    let h = crate::protocol::batch::BatchHeader::parse(&r.records).unwrap();
    assert_eq!(h.base_offset, 9, "batch containing offset 10 starts at 9");
    assert_eq!(
        r.records.len(),
        h.batch_length as usize + 12,
        "max_bytes 1 still returns one whole batch"
    );
    assert!(!log.read_batches(0, 1 << 20, 30).unwrap().records.is_empty());
    assert_eq!(log.read_batches(1000, 1, 84), Err(OutOfRange));
    assert_eq!(log.read_batches(28 * 3 + 1, 1, 84), Err(OutOfRange), "past the log end");
    assert_eq!(
        log.read_batches(80, 1, 60),
        Ok(FetchRead::default()),
        "above the high watermark but inside the log: nothing yet, not out of range"
    );
    assert_eq!(log.offset_for_timestamp(150).unwrap().0, (15 - 2) * 3);
    log.truncate_from(20).unwrap();
    assert_eq!(log.last_log_id().unwrap().index, 19);
    assert_eq!(log.end_offset(), 18 * 3);
    drop(log);
    let (log, rep) = PartitionLog::open(dir.path(), CFG).unwrap();
    assert!(rep.truncated.is_none());
    assert_eq!(log.last_log_id().unwrap().index, 19);
    let from_disk = log.entries(5, 9).unwrap();
    assert_eq!(
        from_disk.iter().map(|e| e.log_id.index).collect::<Vec<_>>(),
        vec![5, 6, 7, 8]
    );
    assert_eq!(from_disk, es, "the tail cache and the segments give the same entries");
    assert_eq!(log.end_offset(), 18 * 3);
    log.append_synced(&[batch_entry(20, 2)]).unwrap();
    assert_eq!(log.end_offset(), 18 * 3 + 2);
}

#[test]
fn sealed_segments_load_without_a_scan() {
    let (dir, log) = log_with_batches(29, 2);
    let end = log.end_offset();
    drop(log);
    let seals = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "seal"))
        .count();
    assert!(seals >= 3, "every closed segment has a seal");
    let (log, rep) = PartitionLog::open(dir.path(), CFG).unwrap();
    assert_eq!(log.end_offset(), end);
    assert_eq!(rep.entries, 29);
    assert_eq!(log.entries(1, 30).unwrap().len(), 29);
    assert!(!log.read_batches(10, 1, end).unwrap().records.is_empty());
    // A seal that no longer matches its segment is ignored (the segment is scanned).
    let first = dir.path().join(crate::storage::log::segment::file_name(0));
    let sealed = crate::storage::log::seal::seal_path(&first);
    let mut seal: crate::storage::log::seal::SegmentSeal =
        serde_json::from_slice(&std::fs::read(&sealed).unwrap()).unwrap();
    seal.size_bytes += 1;
    std::fs::write(&sealed, serde_json::to_vec(&seal).unwrap()).unwrap();
    drop(log);
    let (log, _) = PartitionLog::open(dir.path(), CFG).unwrap();
    assert_eq!(log.end_offset(), end);
    assert_eq!(log.entries(1, 30).unwrap().len(), 29);
}

#[test]
fn torn_and_corrupt_tails_are_cut() {
    for flip in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = PartitionLog::open(
            dir.path(),
            LogConfig {
                segment_bytes: 1 << 20,
                segment_ms: i64::MAX,
                index_interval_bytes: 100,
                tail_cache_bytes: 1 << 20,
                max_append_bytes: u64::MAX,
            },
        )
        .unwrap();
        for i in 1..=5 {
            log.append_synced(&[batch_entry(i, 2)]).unwrap();
        }
        drop(log);
        let path = dir.path().join(crate::storage::log::segment::file_name(0));
        let mut data = std::fs::read(&path).unwrap();
        if flip {
            let n = data.len() - 3;
            data[n] ^= 0x55;
        } else {
            data.truncate(data.len() - 7);
        }
        std::fs::write(&path, &data).unwrap();
        let (log, rep) = PartitionLog::open(
            dir.path(),
            LogConfig {
                segment_bytes: 1 << 20,
                segment_ms: i64::MAX,
                index_interval_bytes: 100,
                tail_cache_bytes: 1 << 20,
                max_append_bytes: u64::MAX,
            },
        )
        .unwrap();
        assert!(rep.truncated.is_some());
        assert_eq!(log.last_log_id().unwrap().index, 4);
        assert_eq!(log.end_offset(), 8);
    }
}

/// A one-record batch from producer `pid` (epoch 0) with sequence `seq`.
fn idempotent_entry(index: u64, pid: i64, seq: i32) -> Entry {
    let mut b = batch(&[format!("p{pid}-{seq}").as_bytes()], 0).to_vec();
    b[43..51].copy_from_slice(&pid.to_be_bytes());
    b[51..53].copy_from_slice(&0i16.to_be_bytes());
    b[53..57].copy_from_slice(&seq.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(Command::Batch(bytes::Bytes::from(b))),
    }
}

#[test]
fn truncation_forgets_the_producer_sequences_it_removed() {
    use crate::storage::producer_state::SeqCheck;
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), CFG).unwrap();
    for i in 0..10u64 {
        log.append_synced(&[idempotent_entry(i + 1, 7, i as i32)]).unwrap();
    }
    assert_eq!(log.producer_states().0.check(7, 0, 8, 1), SeqCheck::Duplicate(8));
    let seals = |dir: &std::path::Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "seal"))
            .count()
    };
    assert!(
        seals(dir.path()) >= 2,
        "closed segments are sealed: the rebuild starts from a seal"
    );
    // A deposed leader's uncommitted tail (sequences 6..9) is cut.
    log.truncate_from(7).unwrap();
    let (states, exact) = log.producer_states();
    assert!(exact);
    // Sequence 6 is no longer in the log: it must be appended again, not answered as a
    // duplicate at an offset another batch will take.
    assert_eq!(states.check(7, 0, 6, 1), SeqCheck::Append);
    assert_eq!(states.check(7, 0, 5, 1), SeqCheck::Duplicate(5));
}

#[test]
fn truncation_after_a_blank_entry_keeps_the_kafka_offsets() {
    let (dir, log) = log_with_batches(3, 2);
    // A new leader's blank entry, then a deposed leader's uncommitted batch after it.
    log.append_synced(&[blank_entry(2, 4)]).unwrap();
    log.append_synced(&[batch_entry(5, 2)]).unwrap();
    log.truncate_from(5).unwrap();
    // The cut ends at the blank entry: offsets continue after the batches before it (found by
    // the chaos suite: they restarted at 0, and the replica diverged from the leader).
    assert_eq!(log.end_offset(), 6);
    log.append_synced(&[batch_entry(5, 2)]).unwrap();
    assert_eq!(log.end_offset(), 8);
    drop(log);
    let (log, rep) = PartitionLog::open(dir.path(), CFG).unwrap();
    assert!(rep.truncated.is_none(), "{:?}", rep.truncated);
    assert_eq!(log.end_offset(), 8);
}

#[test]
fn a_failed_flush_cuts_what_followed_the_last_synced_entry() {
    let (dir, log) = log_with_batches(3, 2);
    assert_eq!(log.cut_unsynced().unwrap(), 0, "nothing failed: nothing cut");
    let generation = log.cut_generation();
    log.note_synced(2, generation);
    for i in 4..7 {
        log.append_synced(&[batch_entry(i, 2)]).unwrap();
    }
    log.note_sync_failed();
    // A later fsync that succeeds proves nothing about the pages the failed one dropped.
    log.note_synced(6, generation);
    assert_eq!(log.synced_upto(), 3);
    assert_eq!(log.cut_unsynced().unwrap(), 4, "indexes 3..=6 were never known durable");
    assert_eq!(log.last_log_id().unwrap().index, 2);
    assert_eq!(log.end_offset(), 4);
    // A flush of an append from before the cut says nothing about what is appended after it.
    log.append_synced(&[batch_entry(3, 2)]).unwrap();
    log.note_synced(3, generation);
    assert_eq!(log.synced_upto(), 3);
    log.note_synced(3, log.cut_generation());
    assert_eq!(log.synced_upto(), 4);
    drop(log);
    let (log, _) = PartitionLog::open(dir.path(), CFG).unwrap();
    assert_eq!(log.last_log_id().unwrap().index, 3);
}

#[test]
fn an_active_segment_older_than_segment_ms_rolls_on_the_next_append() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_bytes: 1 << 20,
        segment_ms: 60_000,
        ..CFG
    };
    let (log, _) = PartitionLog::open(dir.path(), cfg).unwrap();
    let segments = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "log"))
            .count()
    };
    let before = segments();
    log.append_synced(&[batch_entry(1, 2)]).unwrap();
    log.append_synced(&[batch_entry(2, 2)]).unwrap();
    assert_eq!(segments(), before, "a young segment takes more batches");
    // The segment is now older than segment.ms (the clock moved on an hour).
    log.inner.write().last_mut().unwrap().created_ms -= 3_600_000;
    log.append_synced(&[batch_entry(3, 2)]).unwrap();
    assert_eq!(segments(), before + 1, "the old segment rolled before the append");
    assert_eq!(log.end_offset(), 6);
    assert!(!log.read_batches(4, 1 << 20, 6).unwrap().records.is_empty());
    // A segment.ms set while the log runs applies from the next append.
    log.set_segment_ms(1);
    log.inner.write().last_mut().unwrap().created_ms -= 3_600_000;
    log.append_synced(&[batch_entry(4, 2)]).unwrap();
    assert_eq!(segments(), before + 2, "the segment holding batch 3 rolled");
}

#[test]
fn an_append_stops_where_the_segment_rolls_and_a_crash_before_the_seal_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), CFG).unwrap();
    let entries: Vec<Entry> = (1..=12).map(|i| batch_entry(i, 3)).collect();
    let part = log.append_part(&entries).unwrap();
    let written = part.rolls_after.expect("400-byte segments cannot take twelve batches");
    assert!(written > 0 && written < entries.len());
    assert_eq!(
        part.files.len(),
        1,
        "the closing segment, to be synced before it closes"
    );
    // Nothing more goes in until the caller rolls.
    assert_eq!(log.last_log_id().unwrap().index, written as u64);
    for f in &part.files {
        f.sync_data().unwrap();
    }
    let rolled = log.roll().unwrap();
    let (seal_path, _) = rolled.seal.expect("exact producer state: a seal to write");
    assert!(!seal_path.exists(), "the roll leaves the seal to the committer");
    let rest = log.append_part(&entries[written..]).unwrap();
    assert!(
        rest.rolls_after.is_none_or(|n| n > 0),
        "a fresh segment takes at least one entry"
    );
    for f in &rest.files {
        f.sync_data().unwrap();
    }
    rolled.dir.sync_data().unwrap();
    let last = log.last_log_id().unwrap().index;
    let end = log.end_offset();
    drop(log);
    // A crash here (the seal never written): recovery scans the closed segment instead.
    let (reopened, _) = PartitionLog::open(dir.path(), CFG).unwrap();
    assert_eq!(reopened.last_log_id().unwrap().index, last);
    assert_eq!(reopened.end_offset(), end);
    let back = reopened.entries(1, last + 1).unwrap();
    assert_eq!(back.len() as u64, last);
    assert!(back.windows(2).all(|w| w[0].log_id.index + 1 == w[1].log_id.index));
}

#[test]
fn a_segment_without_records_never_rolls_onto_its_own_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), CFG).unwrap();
    // A new group's blank entry: a segment holding entries but no records.
    log.append_synced(&[blank_entry(1, 1)]).unwrap();
    log.set_segment_ms(1);
    // What is under test is the segment's age passing segment.ms.
    std::thread::sleep(std::time::Duration::from_millis(5));
    let part = log.append_part(&[batch_entry(2, 2)]).unwrap();
    assert_eq!(part.rolls_after, None, "its successor would reuse base offset 0");
    for f in &part.files {
        f.sync_data().unwrap();
    }
    drop(log);
    let (reopened, _) = PartitionLog::open(dir.path(), CFG).unwrap();
    let back = reopened.entries(1, 3).unwrap();
    assert_eq!(back.iter().map(|e| e.log_id.index).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(reopened.end_offset(), 2);
}
