//! Committed consumer offsets as records of the internal `__consumer_offsets` topic: one record
//! per (group, topic, partition), key and value in JSON. The topic's partitions are ordinary
//! Raft-replicated partitions; a group lives on `partition_for(group)`.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use serde::{Deserialize, Serialize};

/// The internal topic's name.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Which offsets partition holds `group` (Kafka's rule: the group id's Java hash code).
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    let mut h: i32 = 0;
    for unit in group.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(unit as i32);
    }
    // Kafka's Utils.abs: i32::MIN maps to 0.
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions.max(1)
}

/// Record key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OffsetKey {
    pub group: String,
    pub topic: String,
    pub partition: i32,
}

/// Record value: what was committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    pub commit_timestamp_ms: i64,
}

/// One uncompressed batch holding `entries` (written atomically by one Raft entry); `None`
/// values are tombstones (the group's offset was deleted).
pub fn encode_batch(entries: &[(OffsetKey, Option<Committed>)]) -> anyhow::Result<Bytes> {
    let records: Vec<Record> = entries
        .iter()
        .enumerate()
        .map(|(i, (k, v))| -> anyhow::Result<Record> {
            Ok(Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: i as i32 - 1,
                timestamp: v
                    .as_ref()
                    .map(|v| v.commit_timestamp_ms)
                    .unwrap_or_else(crate::storage::segment::now_ms),
                key: Some(Bytes::from(serde_json::to_vec(k)?)),
                value: v.as_ref().map(serde_json::to_vec).transpose()?.map(Bytes::from),
                headers: Default::default(),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )?;
    Ok(buf.freeze())
}

/// Every (key, value) in `records` (concatenated batches, as a fetch returns them).
pub fn decode_records(records: Bytes) -> anyhow::Result<Vec<(OffsetKey, Option<Committed>)>> {
    let mut buf = records;
    let mut out = Vec::new();
    while !buf.is_empty() {
        let set = RecordBatchDecoder::decode(&mut buf)?;
        for r in set.records {
            let Some(k) = r.key else { continue };
            let v = r.value.map(|v| serde_json::from_slice(&v)).transpose()?;
            out.push((serde_json::from_slice(&k)?, v));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_partitioning_and_round_trip() {
        // Values Kafka's own hashing gives (abs(String.hashCode) % 50).
        assert_eq!(
            partition_for("my-group", 50),
            ("my-group"
                .encode_utf16()
                .fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(u as i32))
                .abs()
                % 50)
        );
        assert_eq!(partition_for("", 50), 0);
        let k = OffsetKey {
            group: "g".into(),
            topic: "t".into(),
            partition: 3,
        };
        let v = Committed {
            offset: 42,
            leader_epoch: 1,
            metadata: Some("m".into()),
            commit_timestamp_ms: 5,
        };
        let batch = encode_batch(&[(k.clone(), Some(v.clone())), (k.clone(), None)]).unwrap();
        let mut two = BytesMut::from(&batch[..]);
        two.extend_from_slice(&batch);
        assert_eq!(decode_records(two.freeze()).unwrap().len(), 4);
        assert_eq!(decode_records(batch.clone()).unwrap()[0], (k.clone(), Some(v)));
        assert_eq!(decode_records(batch).unwrap()[1], (k, None), "tombstone");
    }
}
