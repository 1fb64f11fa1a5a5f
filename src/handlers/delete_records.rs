//! DeleteRecords: moves each partition's log start offset forward (durably); whole segments
//! below it are removed at once, and reads below it get OFFSET_OUT_OF_RANGE.

use super::context::Broker;

use crate::types::TopicPartition;
use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

/// Handles a DeleteRecords request.
pub async fn handle(broker: &dyn Broker, req: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let timeout_ms = (req.timeout_ms.max(1) as u64).min(broker.config().request_timeout_max_ms);
    let mut topics = Vec::new();
    for t in req.topics {
        let mut partitions = Vec::new();
        for p in t.partitions {
            let tp = TopicPartition {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
            };
            let r = DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
            // Cutting the offsets topic would silently drop committed offsets.
            let outcome = if tp.topic == crate::storage::offsets::OFFSETS_TOPIC {
                Err(kafka_protocol::error::ResponseError::InvalidTopicException)
            } else {
                broker.delete_records(tp, p.offset, timeout_ms).await
            };
            partitions.push(match outcome {
                Ok(low) => r.with_low_watermark(low),
                Err(code) => {
                    crate::observability::note_error("DeleteRecords", code);
                    r.with_error_code(code.code()).with_low_watermark(-1)
                }
            });
        }
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(partitions),
        );
    }
    DeleteRecordsResponse::default().with_topics(topics)
}
