//! On-disk encoding of one Raft entry in a segment:
//!
//! `len u32 | crc32c u32 | term u64 | leader node u64 | index u64 | kind u8 | payload`
//!
//! `len` counts everything after itself; the CRC-32C covers term..end of payload. A Kafka batch
//! payload is the client's RecordBatch with its base offset and leader epoch patched (both
//! outside the batch's own CRC), so fetches serve it byte-exact.

use crate::protocol::batch::{BatchHeader, LEADER_EPOCH_POS};
use crate::storage::log::{LogError, LogResult};
use crate::types::{Command, Entry, LogId, NodeId};
use bytes::{BufMut, Bytes};
use openraft::{CommittedLeaderId, EntryPayload};

/// Bytes before the payload.
pub const ENTRY_HEADER_BYTES: usize = 33;
/// Largest entry accepted when reading (guards against a garbage length).
pub const MAX_ENTRY_BYTES: u32 = 256 << 20;

const KIND_BLANK: u8 = 0;
const KIND_BATCH: u8 = 1;
const KIND_MEMBERSHIP: u8 = 2;
const KIND_META: u8 = 3;
const KIND_LOG_START: u8 = 4;

/// Where one entry sits and which Kafka offsets it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EntryInfo {
    pub log_id: LogId,
    /// Position in the segment file.
    pub pos: u64,
    /// Total bytes on disk, header included.
    pub disk_bytes: u64,
    /// First Kafka offset (for a non-batch entry: the next offset, holding nothing).
    pub base_offset: i64,
    /// Offset after the last record (== base_offset for a non-batch entry).
    pub next_offset: i64,
    /// Max timestamp of a batch, or -1.
    pub max_timestamp: i64,
    pub is_batch: bool,
    /// Idempotent producer fields of a batch, when it has a producer id.
    pub producer: Option<ProducerInfo>,
}

/// The producer id, epoch and sequence range a batch carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProducerInfo {
    pub id: i64,
    pub epoch: i16,
    pub first_seq: i32,
    pub count: i32,
}

/// Appends `entry` to `buf`; a batch gets `base_offset` and the entry's term as leader epoch.
pub fn encode(buf: &mut Vec<u8>, entry: &Entry, base_offset: i64) -> LogResult<()> {
    let start = buf.len();
    buf.put_u32(0);
    buf.put_u32(0);
    buf.put_u64(entry.log_id.leader_id.term);
    buf.put_u64(entry.log_id.leader_id.node_id);
    buf.put_u64(entry.log_id.index);
    match &entry.payload {
        EntryPayload::Blank => buf.put_u8(KIND_BLANK),
        EntryPayload::Normal(Command::Batch(batch)) => {
            if batch.len() < crate::protocol::batch::BATCH_HEADER_BYTES {
                return Err(LogError::ShortBatch);
            }
            buf.put_u8(KIND_BATCH);
            buf.put_i64(base_offset);
            buf.put_slice(&batch[8..LEADER_EPOCH_POS]);
            buf.put_i32(entry.log_id.leader_id.term.min(i32::MAX as u64) as i32);
            buf.put_slice(&batch[LEADER_EPOCH_POS + 4..]);
        }
        EntryPayload::Normal(Command::Meta(meta)) => {
            buf.put_u8(KIND_META);
            buf.put_slice(meta);
        }
        EntryPayload::Normal(Command::LogStart(offset)) => {
            buf.put_u8(KIND_LOG_START);
            buf.put_i64(*offset);
        }
        EntryPayload::Membership(m) => {
            buf.put_u8(KIND_MEMBERSHIP);
            buf.put_slice(&serde_json::to_vec(m)?);
        }
    }
    let len = (buf.len() - start - 4) as u32;
    if len > MAX_ENTRY_BYTES {
        return Err(LogError::TooLarge(len));
    }
    buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
    let crc = crc32c::crc32c(&buf[start + 8..]);
    buf[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// Why bytes at a position are not a valid entry.
#[derive(Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than the entry claims: a torn write.
    Incomplete,
    /// Bad length, CRC or kind: corruption.
    Corrupt(&'static str),
}

/// Parses the fixed header: (total bytes on disk, crc) or an error.
pub fn header_len(header: &[u8]) -> Result<u64, DecodeError> {
    if header.len() < ENTRY_HEADER_BYTES {
        return Err(DecodeError::Incomplete);
    }
    let len = u32::from_be_bytes(header[0..4].try_into().expect("4 bytes"));
    if len < (ENTRY_HEADER_BYTES - 4) as u32 || len > MAX_ENTRY_BYTES {
        return Err(DecodeError::Corrupt("entry length out of range"));
    }
    Ok(len as u64 + 4)
}

/// Checks and describes the entry that fills `bytes` exactly (as read from `pos`).
pub fn inspect(bytes: &[u8], pos: u64, next_offset: i64) -> Result<EntryInfo, DecodeError> {
    let total = header_len(bytes)?;
    if (bytes.len() as u64) < total {
        return Err(DecodeError::Incomplete);
    }
    let crc = u32::from_be_bytes(bytes[4..8].try_into().expect("4 bytes"));
    if crc32c::crc32c(&bytes[8..total as usize]) != crc {
        return Err(DecodeError::Corrupt("entry CRC mismatch"));
    }
    describe(bytes, pos, next_offset)
}

/// Like `inspect` without the CRC check: for bytes this process just encoded.
pub fn describe(bytes: &[u8], pos: u64, next_offset: i64) -> Result<EntryInfo, DecodeError> {
    let total = header_len(bytes)?;
    if (bytes.len() as u64) < total {
        return Err(DecodeError::Incomplete);
    }
    let bytes = &bytes[..total as usize];
    let term = u64::from_be_bytes(bytes[8..16].try_into().expect("8 bytes"));
    let node: NodeId = u64::from_be_bytes(bytes[16..24].try_into().expect("8 bytes"));
    let index = u64::from_be_bytes(bytes[24..32].try_into().expect("8 bytes"));
    let log_id = LogId::new(CommittedLeaderId::new(term, node), index);
    let mut info = EntryInfo {
        log_id,
        pos,
        disk_bytes: total,
        base_offset: next_offset,
        next_offset,
        max_timestamp: -1,
        is_batch: false,
        producer: None,
    };
    match bytes[32] {
        KIND_BATCH => {
            let h = BatchHeader::parse(&bytes[ENTRY_HEADER_BYTES..]).ok_or(DecodeError::Corrupt("short batch"))?;
            info.base_offset = h.base_offset;
            info.next_offset = h.last_offset() + 1;
            info.max_timestamp = h.max_timestamp;
            info.is_batch = true;
            if h.producer_id >= 0 {
                info.producer = Some(ProducerInfo {
                    id: h.producer_id,
                    epoch: h.producer_epoch,
                    first_seq: h.base_sequence,
                    count: h.record_count,
                });
            }
        }
        KIND_LOG_START if total as usize != ENTRY_HEADER_BYTES + 8 => {
            return Err(DecodeError::Corrupt("log start entry of the wrong size"))
        }
        KIND_BLANK | KIND_MEMBERSHIP | KIND_META | KIND_LOG_START => {}
        _ => return Err(DecodeError::Corrupt("unknown entry kind")),
    }
    Ok(info)
}

/// Rebuilds the Raft entry from bytes that `inspect` accepted.
pub fn decode(bytes: Bytes, info: &EntryInfo) -> LogResult<Entry> {
    let payload = bytes.slice(ENTRY_HEADER_BYTES..info.disk_bytes as usize);
    let payload = match bytes[32] {
        KIND_BLANK => EntryPayload::Blank,
        KIND_BATCH => EntryPayload::Normal(Command::Batch(payload)),
        KIND_META => EntryPayload::Normal(Command::Meta(payload)),
        KIND_LOG_START => EntryPayload::Normal(Command::LogStart(i64::from_be_bytes(
            payload[..8].try_into().expect("size checked by inspect"),
        ))),
        KIND_MEMBERSHIP => EntryPayload::Membership(serde_json::from_slice(&payload)?),
        k => return Err(LogError::UnknownKind(k)),
    };
    Ok(Entry {
        log_id: info.log_id,
        payload,
    })
}

/// The Kafka batch inside an entry's bytes, if it holds one.
pub fn batch_payload(bytes: &Bytes, info: &EntryInfo) -> Option<Bytes> {
    info.is_batch
        .then(|| bytes.slice(ENTRY_HEADER_BYTES..info.disk_bytes as usize))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::batch::tests::batch;

    #[test]
    fn batch_entry_round_trips_with_patched_offset_and_epoch() {
        let b = batch(&[b"x", b"y", b"z"], 42);
        let e = Entry {
            log_id: LogId::new(CommittedLeaderId::new(7, 1), 9),
            payload: EntryPayload::Normal(Command::Batch(b.clone())),
        };
        let mut buf = Vec::new();
        encode(&mut buf, &e, 100).unwrap();
        let info = inspect(&buf, 0, 100).unwrap();
        assert_eq!((info.base_offset, info.next_offset, info.max_timestamp), (100, 103, 42));
        let bytes = Bytes::from(buf.clone());
        let stored = batch_payload(&bytes, &info).unwrap();
        assert_eq!(&stored[16..], &b[16..], "client bytes from magic on are byte-exact");
        assert_eq!(i32::from_be_bytes(stored[12..16].try_into().unwrap()), 7);
        assert_eq!(decode(bytes, &info).unwrap().log_id, e.log_id);
        let mut torn = buf.clone();
        torn.truncate(buf.len() - 1);
        assert_eq!(inspect(&torn, 0, 0).unwrap_err(), DecodeError::Incomplete);
        let mut flipped = buf.clone();
        flipped[40] ^= 0xff;
        assert!(matches!(inspect(&flipped, 0, 0).unwrap_err(), DecodeError::Corrupt(_)));
    }

    #[test]
    fn log_start_entry_round_trips_and_takes_no_offsets() {
        let e = Entry {
            log_id: LogId::new(CommittedLeaderId::new(3, 2), 5),
            payload: EntryPayload::Normal(Command::LogStart(60)),
        };
        let mut buf = Vec::new();
        encode(&mut buf, &e, 100).unwrap();
        let info = inspect(&buf, 0, 100).unwrap();
        assert_eq!((info.next_offset, info.is_batch), (100, false));
        let back = decode(Bytes::from(buf), &info).unwrap();
        assert!(matches!(back.payload, EntryPayload::Normal(Command::LogStart(60))));
    }
}
