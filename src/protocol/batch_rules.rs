//! Topic rules a produced batch is held to before it is proposed, sans-IO:
//! `message.timestamp.type = LogAppendTime` stamps the broker's time into the batch, and under
//! CreateTime every record's timestamp must lie within `message.timestamp.before.max.ms` /
//! `after.max.ms` of the broker's clock (KIP-937), as Kafka's log validator does; and a topic
//! with a `compression.type` codec gets its batches in that codec.

use super::batch::{check_uncompressed_records, BatchHeader, ValidBatch, BATCH_HEADER_BYTES};
use super::compression::{compress, decompress, Codec, CodecError};
use super::record_times::record_times;
use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;

/// Timestamp-type attribute bit: set for LogAppendTime batches.
const ATTR_LOG_APPEND_TIME: i16 = 0x08;
/// Offsets of the attributes and max timestamp in the batch header; the CRC covers bytes 21..
const ATTRIBUTES_POS: usize = 21;
const MAX_TIMESTAMP_POS: usize = 35;
const CRC_POS: usize = 17;
const CRC_FROM: usize = 21;
/// A record without a timestamp (skipped by the bounds, as Kafka does).
const NO_TIMESTAMP: i64 = -1;

/// Why a batch is refused: the partition's error code and message, and each offending
/// record's index in the batch with why (Produce v8+ `record_errors`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ResponseError,
    pub message: String,
    pub record_errors: Vec<(i32, String)>,
}

impl From<ResponseError> for Refusal {
    fn from(code: ResponseError) -> Refusal {
        Refusal {
            code,
            message: String::new(),
            record_errors: Vec::new(),
        }
    }
}

/// How a topic treats timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampRules {
    pub log_append_time: bool,
    /// Records may be at most this much older than the broker's clock (CreateTime).
    pub before_max_ms: i64,
    /// Records may be at most this much ahead of the broker's clock (CreateTime).
    pub after_max_ms: i64,
}

/// The codec bits of a batch's attributes.
const ATTR_COMPRESSION_MASK: i16 = 0x07;
/// Bytes of the header after the batch-length field (batch_length counts from there).
const AFTER_LENGTH_BYTES: usize = 12;

/// `batch` in codec `target` (Kafka's `compression.type` other than `producer`): its records
/// decompressed (at most `limit_bytes`), checked against the header's record count, and
/// compressed again; the header is kept but for the codec bits, the length and the CRC. The
/// result must fit `max_bytes` (`max.message.bytes`).
pub fn recompress(batch: ValidBatch, target: Codec, limit_bytes: usize, max_bytes: i32) -> Result<ValidBatch, Refusal> {
    let from = Codec::from_id(batch.header.codec()).ok_or(ResponseError::UnsupportedCompressionType)?;
    if from == target {
        return Ok(batch);
    }
    let records = decompress(from, &batch.bytes[BATCH_HEADER_BYTES..], limit_bytes).map_err(|e| Refusal {
        code: match e {
            CodecError::TooLarge(_) => ResponseError::MessageTooLarge,
            CodecError::Corrupt(..) => ResponseError::CorruptMessage,
        },
        message: e.to_string(),
        record_errors: Vec::new(),
    })?;
    check_uncompressed_records(&records, batch.header.record_count)?;
    let packed = compress(target, &records);
    let mut b = BytesMut::with_capacity(BATCH_HEADER_BYTES + packed.len());
    b.extend_from_slice(&batch.bytes[..BATCH_HEADER_BYTES]);
    b.extend_from_slice(&packed);
    if b.len() > max_bytes.max(0) as usize {
        return Err(ResponseError::MessageTooLarge.into());
    }
    let batch_length = (b.len() - AFTER_LENGTH_BYTES) as i32;
    b[8..12].copy_from_slice(&batch_length.to_be_bytes());
    let attributes = (batch.header.attributes & !ATTR_COMPRESSION_MASK) | target as i16;
    b[ATTRIBUTES_POS..ATTRIBUTES_POS + 2].copy_from_slice(&attributes.to_be_bytes());
    let crc = crc32c::crc32c(&b[CRC_FROM..]);
    b[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
    let bytes: Bytes = b.freeze();
    let header = BatchHeader::parse(&bytes).expect("a rebuilt batch parses");
    debug_assert_eq!(header.codec(), target as i16);
    debug_assert_eq!(header.batch_length as usize + AFTER_LENGTH_BYTES, bytes.len());
    Ok(ValidBatch { bytes, header })
}

/// Applies `rules` to `batch` at broker time `now_ms`: the batch as it is to be stored.
pub fn apply(batch: ValidBatch, rules: &TimestampRules, now_ms: i64) -> Result<ValidBatch, Refusal> {
    if rules.log_append_time {
        return Ok(stamp_log_append_time(&batch, now_ms));
    }
    if batch.header.attributes & ATTR_LOG_APPEND_TIME != 0 {
        return Err(Refusal {
            code: ResponseError::InvalidTimestamp,
            message: "Invalid timestamp type in the batch: producers must not set LogAppendTime".into(),
            record_errors: Vec::new(),
        });
    }
    if rules.before_max_ms == i64::MAX && rules.after_max_ms == i64::MAX {
        return Ok(batch);
    }
    check_bounds(batch, rules, now_ms)
}

/// The batch with the LogAppendTime bit set and `now_ms` as its max timestamp (every record's
/// timestamp reads as that); the CRC is computed again, the rest is the client's bytes.
fn stamp_log_append_time(batch: &ValidBatch, now_ms: i64) -> ValidBatch {
    let mut b = BytesMut::from(&batch.bytes[..]);
    let attributes = batch.header.attributes | ATTR_LOG_APPEND_TIME;
    b[ATTRIBUTES_POS..ATTRIBUTES_POS + 2].copy_from_slice(&attributes.to_be_bytes());
    b[MAX_TIMESTAMP_POS..MAX_TIMESTAMP_POS + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c(&b[CRC_FROM..]);
    b[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
    let bytes: Bytes = b.freeze();
    let header = BatchHeader::parse(&bytes).expect("a valid batch stays parseable");
    debug_assert_eq!(header.max_timestamp, now_ms);
    ValidBatch { bytes, header }
}

/// Refuses the whole batch if any record's timestamp is out of bounds. A compressed batch is
/// judged by its header's first and max timestamps (its records are not decompressed here).
fn check_bounds(batch: ValidBatch, rules: &TimestampRules, now_ms: i64) -> Result<ValidBatch, Refusal> {
    let earliest = now_ms.saturating_sub(rules.before_max_ms);
    let latest = now_ms.saturating_add(rules.after_max_ms);
    let h = batch.header;
    let times = record_times(&batch.bytes)
        .unwrap_or_else(|| vec![(h.base_offset, h.base_timestamp), (h.last_offset(), h.max_timestamp)]);
    let record_errors: Vec<(i32, String)> = times
        .iter()
        .enumerate()
        .filter(|(_, (_, ts))| *ts != NO_TIMESTAMP && (*ts < earliest || *ts > latest))
        .map(|(i, (offset, ts))| {
            let delta = offset - batch.header.base_offset;
            let message = format!(
                "Timestamp {ts} of message with offset {delta} is out of range. The timestamp should be within [{earliest}, {latest}]"
            );
            (i as i32, message)
        })
        .collect();
    if record_errors.is_empty() {
        return Ok(batch);
    }
    Err(Refusal {
        code: ResponseError::InvalidTimestamp,
        message: "One or more records have been rejected due to invalid timestamp".into(),
        record_errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::batch::{tests::batch, validate_produced};

    const NOW: i64 = 1_700_000_000_000;

    fn valid(timestamp: i64) -> ValidBatch {
        validate_produced(&batch(&[b"a", b"b"], timestamp), 1 << 20).unwrap()
    }

    #[test]
    fn recompression_round_trips_and_keeps_the_header() {
        let plain = valid(NOW);
        for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
            let packed = recompress(plain.clone(), codec, 1 << 20, 1 << 20).unwrap();
            assert_eq!(packed.header.codec(), codec as i16);
            let h = |b: &BatchHeader| (b.base_timestamp, b.max_timestamp, b.record_count, b.producer_id);
            assert_eq!(h(&packed.header), h(&plain.header));
            // The rebuilt batch passes the produce checks (length, CRC, codec).
            validate_produced(&packed.bytes, 1 << 20).unwrap();
            let back = recompress(packed, Codec::None, 1 << 20, 1 << 20).unwrap();
            assert_eq!(back.bytes, plain.bytes, "{codec:?} and back gives the client's bytes");
        }
    }

    #[test]
    fn recompression_refuses_what_does_not_fit_or_does_not_match_its_header() {
        let plain = valid(NOW);
        let too_big = recompress(plain.clone(), Codec::Gzip, 1 << 20, 40).unwrap_err();
        assert_eq!(too_big.code, ResponseError::MessageTooLarge);
        let gz = recompress(plain.clone(), Codec::Gzip, 1 << 20, 1 << 20).unwrap();
        let bomb = recompress(gz.clone(), Codec::Lz4, 4, 1 << 20).unwrap_err();
        assert_eq!(
            bomb.code,
            ResponseError::MessageTooLarge,
            "past the decompression bound"
        );
        // A header claiming three records over two.
        let mut lying = BytesMut::from(&gz.bytes[..]);
        lying[57..61].copy_from_slice(&3i32.to_be_bytes());
        lying[23..27].copy_from_slice(&2i32.to_be_bytes());
        let crc = crc32c::crc32c(&lying[CRC_FROM..]);
        lying[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
        let lying = validate_produced(&lying.freeze(), 1 << 20).unwrap();
        let refused = recompress(lying, Codec::None, 1 << 20, 1 << 20).unwrap_err();
        assert_eq!(refused.code, ResponseError::CorruptMessage);
    }

    fn rules(log_append_time: bool, before: i64, after: i64) -> TimestampRules {
        TimestampRules {
            log_append_time,
            before_max_ms: before,
            after_max_ms: after,
        }
    }

    #[test]
    fn log_append_time_is_stamped_with_a_valid_crc() {
        let stamped = apply(valid(5), &rules(true, i64::MAX, i64::MAX), NOW).unwrap();
        assert_eq!(stamped.header.max_timestamp, NOW);
        assert_ne!(stamped.header.attributes & ATTR_LOG_APPEND_TIME, 0);
        let again = validate_produced(&stamped.bytes, 1 << 20).expect("the CRC matches the new bytes");
        assert_eq!(record_times(&again.bytes).unwrap(), vec![(0, NOW), (1, NOW)]);
    }

    #[test]
    fn create_time_bounds_refuse_the_whole_batch() {
        let default = rules(false, i64::MAX, i64::MAX);
        assert!(apply(valid(5), &default, NOW).is_ok());
        let hour = 3_600_000;
        assert!(apply(valid(NOW - hour / 2), &rules(false, hour, hour), NOW).is_ok());
        let old = apply(valid(NOW - 2 * hour), &rules(false, hour, i64::MAX), NOW).unwrap_err();
        assert_eq!(old.code, ResponseError::InvalidTimestamp);
        assert_eq!(
            old.record_errors.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            vec![0, 1]
        );
        let ahead = apply(valid(NOW + 2 * hour), &rules(false, i64::MAX, hour), NOW).unwrap_err();
        assert_eq!(ahead.code, ResponseError::InvalidTimestamp);
        let stamped = apply(valid(5), &rules(true, i64::MAX, i64::MAX), NOW).unwrap();
        assert_eq!(
            apply(stamped, &default, NOW).unwrap_err().code,
            ResponseError::InvalidTimestamp,
            "a producer may not send LogAppendTime batches to a CreateTime topic"
        );
    }
}
