//! Records of the internal `__consumer_offsets` topic, key and value in JSON: one per committed
//! offset (group, topic, partition) and one per group (its last stable generation). A `None`
//! value is a tombstone. The topic's partitions are ordinary Raft-replicated partitions; a group
//! lives on `partition_for(group)`.

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

/// Key of an offset record.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OffsetKey {
    pub group: String,
    pub topic: String,
    pub partition: i32,
}

/// Value of an offset record: what was committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    pub commit_timestamp_ms: i64,
}

/// Value of a group record: a stable generation, so that a coordinator that takes over serves
/// the group's members without making them rebalance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSnapshot {
    pub protocol_type: String,
    pub protocol: String,
    pub generation: i32,
    pub leader: String,
    pub members: Vec<StoredMember>,
}

/// One member of a stored generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub session_timeout_ms: u64,
    pub rebalance_timeout_ms: u64,
    /// Every protocol the member offered, with its metadata.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
}

/// Record keys as stored: the two kinds have disjoint JSON fields.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum StoredKey {
    Offset(OffsetKey),
    Group { group_metadata: String },
}

/// A record's key, value and timestamp bytes.
type StoredRecord = (Vec<u8>, Option<Vec<u8>>, Option<i64>);

/// One record of the offsets topic; `None` values are tombstones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetsRecord {
    /// A committed offset (or its deletion).
    Offset(OffsetKey, Option<Committed>),
    /// A group's stable generation (or the group having no members any more).
    Group(String, Option<GroupSnapshot>),
}

impl OffsetsRecord {
    /// The group the record belongs to.
    pub fn group(&self) -> &str {
        match self {
            OffsetsRecord::Offset(k, _) => &k.group,
            OffsetsRecord::Group(g, _) => g,
        }
    }

    /// (key, value, timestamp) as stored.
    fn key_value(&self) -> serde_json::Result<StoredRecord> {
        Ok(match self {
            OffsetsRecord::Offset(k, v) => (
                serde_json::to_vec(&StoredKey::Offset(k.clone()))?,
                v.as_ref().map(serde_json::to_vec).transpose()?,
                v.as_ref().map(|v| v.commit_timestamp_ms),
            ),
            OffsetsRecord::Group(g, v) => (
                serde_json::to_vec(&StoredKey::Group {
                    group_metadata: g.clone(),
                })?,
                v.as_ref().map(serde_json::to_vec).transpose()?,
                None,
            ),
        })
    }
}

/// One uncompressed batch holding `entries` (written atomically by one Raft entry).
pub fn encode_batch(entries: &[OffsetsRecord]) -> anyhow::Result<Bytes> {
    let now = crate::storage::log::segment::now_ms();
    let records: Vec<Record> = entries
        .iter()
        .enumerate()
        .map(|(i, entry)| -> anyhow::Result<Record> {
            let (key, value, timestamp) = entry.key_value()?;
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
                timestamp: timestamp.unwrap_or(now),
                key: Some(Bytes::from(key)),
                value: value.map(Bytes::from),
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

/// Every record in `records` (concatenated batches, as a fetch returns them).
pub fn decode_records(records: Bytes) -> anyhow::Result<Vec<OffsetsRecord>> {
    let mut buf = records;
    let mut out = Vec::new();
    while !buf.is_empty() {
        let set = RecordBatchDecoder::decode(&mut buf)?;
        for r in set.records {
            let Some(k) = r.key else { continue };
            out.push(match serde_json::from_slice(&k)? {
                StoredKey::Offset(k) => {
                    OffsetsRecord::Offset(k, r.value.map(|v| serde_json::from_slice(&v)).transpose()?)
                }
                StoredKey::Group { group_metadata } => {
                    OffsetsRecord::Group(group_metadata, r.value.map(|v| serde_json::from_slice(&v)).transpose()?)
                }
            });
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
        let snapshot = GroupSnapshot {
            protocol_type: "consumer".into(),
            protocol: "range".into(),
            generation: 7,
            leader: "m1".into(),
            members: vec![StoredMember {
                member_id: "m1".into(),
                instance_id: Some("i1".into()),
                client_id: "c".into(),
                session_timeout_ms: 10_000,
                rebalance_timeout_ms: 30_000,
                protocols: vec![("range".into(), Bytes::from_static(b"\x00\x01sub"))],
                assignment: Bytes::from_static(b"\x00\x01asg"),
            }],
        };
        let records = vec![
            OffsetsRecord::Offset(k.clone(), Some(v)),
            OffsetsRecord::Offset(k, None),
            OffsetsRecord::Group("g".into(), Some(snapshot)),
            OffsetsRecord::Group("g".into(), None),
        ];
        let batch = encode_batch(&records).unwrap();
        let mut two = BytesMut::from(&batch[..]);
        two.extend_from_slice(&batch);
        assert_eq!(decode_records(two.freeze()).unwrap().len(), 8);
        assert_eq!(
            decode_records(batch).unwrap(),
            records,
            "values, tombstones and group records"
        );
    }
}
