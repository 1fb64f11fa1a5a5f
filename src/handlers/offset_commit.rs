//! OffsetCommit (v2–8), from group members (checked against their generation and the group's
//! state, as Kafka's classic coordinator does) or from standalone consumers (generation -1, no
//! member id): the offsets are written to the group's `__consumer_offsets` partition and
//! answered once committed.

use super::context::{Broker, CommitFrom};
use crate::storage::offsets::{Committed, OffsetKey};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

/// Handles an OffsetCommit request.
pub async fn handle(broker: &dyn Broker, req: OffsetCommitRequest) -> OffsetCommitResponse {
    let group = req.group_id.0.to_string();
    let meta = broker.metadata();
    let now_ms = crate::storage::log::segment::now_ms();
    let from = CommitFrom {
        member_id: req.member_id.to_string(),
        generation: req.generation_id_or_member_epoch,
        instance_id: req.group_instance_id.as_ref().map(|i| i.to_string()),
    };
    let mut entries = Vec::new();
    // (topic index, partition, early error)
    let mut slots: Vec<(usize, i32, Option<ResponseError>)> = Vec::new();
    for (ti, t) in req.topics.iter().enumerate() {
        let topic = t.name.0.to_string();
        let count = meta.topics.get(&topic).map(|m| m.partitions);
        for p in &t.partitions {
            let early = if !count.is_some_and(|n| p.partition_index >= 0 && p.partition_index < n) {
                Some(ResponseError::UnknownTopicOrPartition)
            } else {
                entries.push((
                    OffsetKey {
                        group: group.clone(),
                        topic: topic.clone(),
                        partition: p.partition_index,
                    },
                    Committed {
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                        commit_timestamp_ms: now_ms,
                    },
                ));
                None
            };
            slots.push((ti, p.partition_index, early));
        }
    }
    let group_result = if entries.is_empty() {
        Ok(())
    } else {
        broker.commit_offsets(group, from, entries).await
    };
    let mut topics: Vec<OffsetCommitResponseTopic> = req
        .topics
        .iter()
        .map(|t| OffsetCommitResponseTopic::default().with_name(t.name.clone()))
        .collect();
    for (ti, partition, early) in slots {
        let code = early.or(group_result.err());
        let mut r = OffsetCommitResponsePartition::default().with_partition_index(partition);
        if let Some(code) = code {
            crate::observability::note_error("OffsetCommit", code);
            r = r.with_error_code(code.code());
        }
        topics[ti].partitions.push(r);
    }
    OffsetCommitResponse::default().with_topics(topics)
}
