//! OffsetDelete (v0): deletes a group's committed offsets for partitions of topics its members
//! are not subscribed to (those get GROUP_SUBSCRIBED_TO_TOPIC), with tombstones.

use super::context::Broker;
use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

/// Handles an OffsetDelete request.
pub async fn handle(broker: &dyn Broker, req: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let partitions: Vec<(String, i32)> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (t.name.0.to_string(), p.partition_index))
        })
        .collect();
    let outcomes = match broker.delete_offsets(req.group_id.to_string(), partitions).await {
        Ok(each) => each,
        Err(code) => return OffsetDeleteResponse::default().with_error_code(code.code()),
    };
    let mut outcomes = outcomes.into_iter();
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let r = OffsetDeleteResponsePartition::default().with_partition_index(p.partition_index);
                    match outcomes.next() {
                        Some(Err(code)) => r.with_error_code(code.code()),
                        _ => r,
                    }
                })
                .collect();
            OffsetDeleteResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetDeleteResponse::default().with_topics(topics)
}
