//! AlterPartitionReassignments: records target replicas (or cancels a pending move) in the
//! controller and answers once recorded, as Kafka does; each partition's leader then moves its
//! Raft group (see `actors::partition::reassign`) and ListPartitionReassignments shows progress.

use super::context::Broker;
use crate::storage::meta_sm::MetaCommand;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse};
use kafka_protocol::protocol::StrBytes;

/// Handles an AlterPartitionReassignments request.
pub async fn handle(
    broker: &dyn Broker,
    req: AlterPartitionReassignmentsRequest,
    version: i16,
) -> AlterPartitionReassignmentsResponse {
    let timeout_ms = (req.timeout_ms.max(1) as u64).min(broker.config().request_timeout_max_ms);
    // v1 (KIP-860) lets the client forbid changing the replication factor.
    let allow_rf_change = version < 1 || req.allow_replication_factor_change;
    let mut responses = Vec::new();
    for t in req.topics {
        let topic = t.name.0.to_string();
        let mut partitions = Vec::new();
        for p in t.partitions {
            let target: Option<Vec<i32>> = p.replicas.map(|r| r.into_iter().map(|id| id.0).collect());
            let outcome = reassign(broker, &topic, p.partition_index, target, allow_rf_change, timeout_ms).await;
            let r = ReassignablePartitionResponse::default()
                .with_partition_index(p.partition_index)
                .with_error_message(None);
            partitions.push(match outcome {
                Ok(()) => r,
                Err((code, msg)) => {
                    crate::observability::note_error("AlterPartitionReassignments", code);
                    r.with_error_code(code.code())
                        .with_error_message(Some(StrBytes::from_string(msg)))
                }
            });
        }
        responses.push(
            ReassignableTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions),
        );
    }
    AlterPartitionReassignmentsResponse::default()
        .with_error_message(None)
        .with_allow_replication_factor_change(allow_rf_change)
        .with_responses(responses)
}

/// Records one partition's target replicas (`None`: cancels a pending move).
async fn reassign(
    broker: &dyn Broker,
    topic: &str,
    partition: i32,
    target: Option<Vec<i32>>,
    allow_rf_change: bool,
    timeout_ms: u64,
) -> Result<(), (ResponseError, String)> {
    let meta = broker.metadata();
    let Some(m) = meta
        .topics
        .get(topic)
        .filter(|m| (0..m.partitions).contains(&partition))
    else {
        let why = format!("Unable to find partition {topic}:{partition}.");
        return Err((ResponseError::UnknownTopicOrPartition, why));
    };
    let current = m.replicas_of(partition, broker.node().node_id);
    let pending = m.reassigning.contains_key(&partition);
    if let Some(target) = &target {
        // Kafka: a target equal to the current replicas changes nothing and succeeds.
        if *target == current && !pending {
            return Ok(());
        }
        if !allow_rf_change && target.len() != current.len() {
            let why = format!(
                "the target has {} replicas, the partition {}",
                target.len(),
                current.len()
            );
            return Err((ResponseError::InvalidReplicationFactor, why));
        }
    }
    let command = MetaCommand::ReassignPartition {
        topic: topic.to_string(),
        partition,
        target,
    };
    broker.propose(command, timeout_ms).await.map(|_| ())
}
