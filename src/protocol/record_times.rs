//! Record-level timestamps inside one batch. ListOffsets by time answers with the first record
//! whose timestamp is at or after the target and ListOffsets -3 with the first record holding
//! the largest timestamp, looking inside the batch as Kafka does (a batch's first offset is
//! not the answer when its earlier records are older). Uncompressed batches only: compressed
//! ones are answered at batch granularity (decompressing client bytes here is not bounded).

use super::batch::{read_varint, BatchHeader, BATCH_HEADER_BYTES};

/// Timestamp-type attribute bit: set for LogAppendTime batches.
const ATTR_LOG_APPEND_TIME: i16 = 0x08;
/// The smallest record: length, attributes, timestamp delta, offset delta, key length, value
/// length, header count (one byte each).
const MIN_RECORD_BYTES: usize = 7;

/// (offset, timestamp) of every record of an uncompressed batch, walked with every length
/// checked against the bytes left, so client bytes cannot make it allocate or read beyond the
/// batch. `None` for a compressed batch (not decoded: a decompression bomb or a crafted count
/// could exhaust memory) or a malformed one.
pub fn record_times(batch: &[u8]) -> Option<Vec<(i64, i64)>> {
    let header = BatchHeader::parse(batch)?;
    if header.codec() != 0 {
        return None;
    }
    let mut body = batch.get(BATCH_HEADER_BYTES..)?;
    let mut out = Vec::with_capacity((header.record_count.max(0) as usize).min(body.len() / MIN_RECORD_BYTES));
    while !body.is_empty() {
        let (len, used) = read_varint(body)?;
        let len = usize::try_from(len).ok().filter(|l| *l <= body.len() - used)?;
        let record = &body[used..used + len];
        let (ts_delta, ts_used) = read_varint(record.get(1..)?)?;
        let (offset_delta, _) = read_varint(record.get(1 + ts_used..)?)?;
        let timestamp = match header.attributes & ATTR_LOG_APPEND_TIME {
            0 => header.base_timestamp.saturating_add(ts_delta),
            _ => header.max_timestamp,
        };
        out.push((header.base_offset.saturating_add(offset_delta), timestamp));
        body = &body[used + len..];
    }
    Some(out)
}

/// The first record of `batch` (offset order) whose timestamp is >= `target`, with that
/// record's timestamp. Every record of a LogAppendTime batch has the batch's time; a
/// compressed batch answers with its first offset and its max timestamp (the batch the time
/// index points at, without looking inside).
pub fn first_at_or_after(batch: &[u8], target: i64) -> Option<(i64, i64)> {
    let header = BatchHeader::parse(batch)?;
    if header.attributes & ATTR_LOG_APPEND_TIME != 0 || header.codec() != 0 {
        return (header.max_timestamp >= target).then_some((header.base_offset, header.max_timestamp));
    }
    record_times(batch)?.into_iter().find(|&(_, ts)| ts >= target)
}

/// The offset of the first record of `batch` whose timestamp is `ts` (the first of a
/// LogAppendTime batch; `None` for a compressed one).
pub fn first_with_timestamp(batch: &[u8], ts: i64) -> Option<i64> {
    let header = BatchHeader::parse(batch)?;
    if header.attributes & ATTR_LOG_APPEND_TIME != 0 {
        return (header.max_timestamp == ts).then_some(header.base_offset);
    }
    record_times(batch)?
        .into_iter()
        .find(|&(_, t)| t == ts)
        .map(|(offset, _)| offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

    fn batch_with_times(base_offset: i64, times: &[i64], compression: Compression) -> Bytes {
        let records: Vec<Record> = times
            .iter()
            .enumerate()
            .map(|(i, &ts)| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: base_offset + i as i64,
                // One batch needs offset - sequence constant; the batch's base sequence is -1.
                sequence: i as i32 - 1,
                timestamp: ts,
                key: None,
                value: Some(Bytes::from_static(b"v")),
                headers: Default::default(),
            })
            .collect();
        let mut buf = bytes::BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression,
        };
        RecordBatchEncoder::encode(&mut buf, records.iter(), &options).unwrap();
        buf.freeze()
    }

    #[test]
    fn the_record_not_the_batch_answers() {
        // librdkafka's 0054: timestamps 1234 and 999999999999 in one batch.
        let b = batch_with_times(40, &[1234, 999_999_999_999], Compression::None);
        assert_eq!(first_at_or_after(&b, 999_999_999_999), Some((41, 999_999_999_999)));
        assert_eq!(first_at_or_after(&b, 1000), Some((40, 1234)));
        assert_eq!(first_at_or_after(&b, 1_000_000_000_000), None);
        let b = batch_with_times(0, &[5, 9, 7, 9], Compression::None);
        assert_eq!(
            first_with_timestamp(&b, 9),
            Some(1),
            "the first record with the max timestamp"
        );
        assert_eq!(first_at_or_after(&b, 6), Some((1, 9)));
    }

    #[test]
    fn a_lying_record_count_or_length_reads_nothing_beyond_the_batch() {
        let mut b = batch_with_times(0, &[1, 2], Compression::None).to_vec();
        b[57..61].copy_from_slice(&i32::MAX.to_be_bytes()); // record count
        assert_eq!(
            record_times(&b).map(|t| t.len()),
            Some(2),
            "the walk, not the count, decides"
        );
        let last = b.len() - 1;
        b.truncate(last); // the last record's length now overruns the batch
        assert_eq!(record_times(&b), None);
    }

    #[test]
    fn log_append_time_gives_every_record_the_batch_time() {
        let mut b = batch_with_times(10, &[1, 2, 3], Compression::None).to_vec();
        b[22] |= ATTR_LOG_APPEND_TIME as u8; // attributes' low byte (CRC not rechecked here)
        b[35..43].copy_from_slice(&500i64.to_be_bytes());
        assert_eq!(first_at_or_after(&b, 2), Some((10, 500)));
        assert_eq!(first_with_timestamp(&b, 500), Some(10));
    }
}
