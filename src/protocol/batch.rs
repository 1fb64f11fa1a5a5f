//! Kafka RecordBatch (magic 2) header access and validation.
//!
//! Layout (big-endian): baseOffset i64 @0, batchLength i32 @8, partitionLeaderEpoch i32 @12,
//! magic i8 @16, crc u32 @17 (CRC-32C over bytes 21..end), attributes i16 @21,
//! lastOffsetDelta i32 @23, baseTimestamp i64 @27, maxTimestamp i64 @35, producerId i64 @43,
//! producerEpoch i16 @51, baseSequence i32 @53, recordCount i32 @57, records @61.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;

/// Size of the fixed batch header.
pub const BATCH_HEADER_BYTES: usize = 61;
/// Offset of the leader-epoch field (outside the CRC).
pub const LEADER_EPOCH_POS: usize = 12;

const ATTR_COMPRESSION_MASK: i16 = 0x07;
const ATTR_TRANSACTIONAL: i16 = 0x10;
const ATTR_CONTROL: i16 = 0x20;

fn i16_at(b: &[u8], pos: usize) -> i16 {
    i16::from_be_bytes([b[pos], b[pos + 1]])
}
fn i32_at(b: &[u8], pos: usize) -> i32 {
    i32::from_be_bytes(b[pos..pos + 4].try_into().expect("4 bytes"))
}
fn i64_at(b: &[u8], pos: usize) -> i64 {
    i64::from_be_bytes(b[pos..pos + 8].try_into().expect("8 bytes"))
}

/// Read-only view of a batch header that has already been length-checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

impl BatchHeader {
    /// Parses the fixed header; `None` if `b` is shorter than a header.
    pub fn parse(b: &[u8]) -> Option<BatchHeader> {
        if b.len() < BATCH_HEADER_BYTES {
            return None;
        }
        Some(BatchHeader {
            base_offset: i64_at(b, 0),
            batch_length: i32_at(b, 8),
            leader_epoch: i32_at(b, 12),
            magic: b[16] as i8,
            crc: u32::from_be_bytes(b[17..21].try_into().expect("4 bytes")),
            attributes: i16_at(b, 21),
            last_offset_delta: i32_at(b, 23),
            base_timestamp: i64_at(b, 27),
            max_timestamp: i64_at(b, 35),
            producer_id: i64_at(b, 43),
            producer_epoch: i16_at(b, 51),
            base_sequence: i32_at(b, 53),
            record_count: i32_at(b, 57),
        })
    }

    /// Offset of the last record in the batch.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }

    /// Compression codec id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn codec(&self) -> i16 {
        self.attributes & ATTR_COMPRESSION_MASK
    }
}

/// Kafka's codec id for zstd (KIP-110), which Produce v7+ and Fetch v10+ carry.
pub const ZSTD: i16 = 4;

/// A produced batch that passed validation.
#[derive(Debug, Clone)]
pub struct ValidBatch {
    /// The client's bytes, untouched.
    pub bytes: Bytes,
    pub header: BatchHeader,
}

/// Validates a produce request's records for one partition: exactly one magic-2 batch whose
/// length, CRC-32C, codec and record count are consistent, no larger than `max_bytes`.
pub fn validate_produced(records: &Bytes, max_bytes: i32) -> Result<ValidBatch, ResponseError> {
    if records.len() > max_bytes.max(0) as usize {
        return Err(ResponseError::MessageTooLarge);
    }
    let header = BatchHeader::parse(records).ok_or(ResponseError::CorruptMessage)?;
    if header.magic != 2 {
        return Err(ResponseError::UnsupportedForMessageFormat);
    }
    let total = header.batch_length as i64 + 12;
    if header.batch_length < (BATCH_HEADER_BYTES as i32 - 12) || total != records.len() as i64 {
        // Either a truncated batch or several batches; Kafka accepts exactly one per partition.
        return Err(ResponseError::CorruptMessage);
    }
    if crc32c::crc32c(&records[21..]) != header.crc {
        return Err(ResponseError::CorruptMessage);
    }
    if header.codec() > 4 {
        return Err(ResponseError::UnsupportedCompressionType);
    }
    if header.attributes & (ATTR_CONTROL | ATTR_TRANSACTIONAL) != 0 {
        // Transactions are not offered (InitProducerId with a transactional id is not advertised).
        return Err(ResponseError::InvalidRecord);
    }
    if header.record_count <= 0 || header.last_offset_delta != header.record_count - 1 {
        return Err(ResponseError::InvalidRecord);
    }
    if header.codec() == 0 {
        check_uncompressed_records(&records[BATCH_HEADER_BYTES..], header.record_count)?;
    }
    Ok(ValidBatch {
        bytes: records.clone(),
        header,
    })
}

/// Walks the length-prefixed records of an uncompressed batch: their number must equal
/// `count` and they must end exactly at the end of the batch.
pub(crate) fn check_uncompressed_records(mut body: &[u8], count: i32) -> Result<(), ResponseError> {
    let mut seen = 0i32;
    while !body.is_empty() {
        let (len, used) = read_varint(body).ok_or(ResponseError::CorruptMessage)?;
        if len < 0 || (len as usize) > body.len() - used {
            return Err(ResponseError::CorruptMessage);
        }
        body = &body[used + len as usize..];
        seen += 1;
        if seen > count {
            return Err(ResponseError::CorruptMessage);
        }
    }
    if seen != count {
        return Err(ResponseError::CorruptMessage);
    }
    Ok(())
}

/// Zig-zag varint as used inside records; returns (value, bytes used).
pub(crate) fn read_varint(b: &[u8]) -> Option<(i64, usize)> {
    let mut raw: u64 = 0;
    for (i, byte) in b.iter().take(10).enumerate() {
        raw |= ((byte & 0x7f) as u64) << (7 * i);
        if byte & 0x80 == 0 {
            let value = ((raw >> 1) as i64) ^ -((raw & 1) as i64);
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};

    fn put_varint(buf: &mut BytesMut, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        loop {
            if z < 0x80 {
                buf.put_u8(z as u8);
                return;
            }
            buf.put_u8((z as u8 & 0x7f) | 0x80);
            z >>= 7;
        }
    }

    /// Builds a valid uncompressed batch of `values` (test helper shared with storage tests).
    pub fn batch(values: &[&[u8]], timestamp: i64) -> Bytes {
        let mut records = BytesMut::new();
        for (i, v) in values.iter().enumerate() {
            let mut r = BytesMut::new();
            r.put_u8(0); // attributes
            put_varint(&mut r, 0); // timestamp delta
            put_varint(&mut r, i as i64); // offset delta
            put_varint(&mut r, -1); // null key
            put_varint(&mut r, v.len() as i64);
            r.put_slice(v);
            put_varint(&mut r, 0); // headers
            put_varint(&mut records, r.len() as i64);
            records.put_slice(&r);
        }
        let mut b = BytesMut::new();
        b.put_i64(0);
        b.put_i32((BATCH_HEADER_BYTES - 12 + records.len()) as i32);
        b.put_i32(0);
        b.put_i8(2);
        b.put_u32(0);
        b.put_i16(0);
        b.put_i32(values.len() as i32 - 1);
        b.put_i64(timestamp);
        b.put_i64(timestamp);
        b.put_i64(-1);
        b.put_i16(-1);
        b.put_i32(-1);
        b.put_i32(values.len() as i32);
        b.put_slice(&records);
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b.freeze()
    }

    #[test]
    fn accepts_a_valid_batch() {
        let b = batch(&[b"a", b"bc"], 5);
        let v = validate_produced(&b, 1 << 20).unwrap();
        assert_eq!(v.header.record_count, 2);
        assert_eq!(v.header.max_timestamp, 5);
    }

    #[test]
    fn rejects_bad_crc_size_magic_count() {
        let b = batch(&[b"a"], 0);
        let mut bad = b.to_vec();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(
            validate_produced(&Bytes::from(bad), 1 << 20).unwrap_err(),
            ResponseError::CorruptMessage
        );
        assert_eq!(validate_produced(&b, 10).unwrap_err(), ResponseError::MessageTooLarge);
        let mut m = b.to_vec();
        m[16] = 1;
        assert_eq!(
            validate_produced(&Bytes::from(m), 1 << 20).unwrap_err(),
            ResponseError::UnsupportedForMessageFormat
        );
        let mut c = b.to_vec();
        c[57..61].copy_from_slice(&2i32.to_be_bytes());
        c[23..27].copy_from_slice(&1i32.to_be_bytes());
        let crc = crc32c::crc32c(&c[21..]);
        c[17..21].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(
            validate_produced(&Bytes::from(c), 1 << 20).unwrap_err(),
            ResponseError::CorruptMessage
        );
        assert!(validate_produced(&Bytes::from_static(b"short"), 1 << 20).is_err());
    }
}
