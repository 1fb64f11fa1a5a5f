//! Record-level timestamps inside one batch. ListOffsets by time answers with the first record
//! whose timestamp is at or after the target and ListOffsets -3 with the first record holding
//! the largest timestamp, looking inside the batch as Kafka does (a batch's first offset is
//! not the answer when its earlier records are older).

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;

/// Timestamp-type attribute bit: set for LogAppendTime batches.
const ATTR_LOG_APPEND_TIME: i16 = 0x08;

/// (offset, timestamp) of every record of `batch`, decompressing it. In a LogAppendTime batch
/// every record's timestamp is the batch's max timestamp. `None` if the batch does not decode.
pub fn record_times(batch: &Bytes) -> Option<Vec<(i64, i64)>> {
    let header = super::batch::BatchHeader::parse(batch)?;
    if header.attributes & ATTR_LOG_APPEND_TIME != 0 {
        let last = header.last_offset();
        return Some((header.base_offset..=last).map(|o| (o, header.max_timestamp)).collect());
    }
    let mut buf = batch.clone();
    let set = RecordBatchDecoder::decode(&mut buf).ok()?;
    Some(set.records.iter().map(|r| (r.offset, r.timestamp)).collect())
}

/// The first record of `batch` (offset order) whose timestamp is >= `target`, with that
/// record's timestamp.
pub fn first_at_or_after(batch: &Bytes, target: i64) -> Option<(i64, i64)> {
    record_times(batch)?.into_iter().find(|&(_, ts)| ts >= target)
}

/// The offset of the first record of `batch` whose timestamp is `ts`.
pub fn first_with_timestamp(batch: &Bytes, ts: i64) -> Option<i64> {
    record_times(batch)?
        .into_iter()
        .find(|&(_, t)| t == ts)
        .map(|(offset, _)| offset)
}

#[cfg(test)]
mod tests {
    use super::*;
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
        for compression in [
            Compression::None,
            Compression::Gzip,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let b = batch_with_times(40, &[1234, 999_999_999_999], compression);
            assert_eq!(first_at_or_after(&b, 999_999_999_999), Some((41, 999_999_999_999)));
            assert_eq!(first_at_or_after(&b, 1000), Some((40, 1234)));
            assert_eq!(first_at_or_after(&b, 1_000_000_000_000), None);
        }
        let b = batch_with_times(0, &[5, 9, 7, 9], Compression::None);
        assert_eq!(
            first_with_timestamp(&b, 9),
            Some(1),
            "the first record with the max timestamp"
        );
        assert_eq!(first_at_or_after(&b, 6), Some((1, 9)));
    }

    #[test]
    fn log_append_time_gives_every_record_the_batch_time() {
        let mut b = batch_with_times(10, &[1, 2, 3], Compression::None).to_vec();
        b[22] |= ATTR_LOG_APPEND_TIME as u8; // attributes' low byte (CRC not rechecked here)
        b[35..43].copy_from_slice(&500i64.to_be_bytes());
        let b = Bytes::from(b);
        assert_eq!(first_at_or_after(&b, 2), Some((10, 500)));
        assert_eq!(first_with_timestamp(&b, 500), Some(10));
    }
}
