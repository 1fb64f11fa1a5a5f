//! ElectLeaders: moves partitions' leadership to their preferred replica (election type 0), or
//! asks for an unclean election (type 1).
//!
//! Preferred: as Kafka, ELECTION_NOT_NEEDED when the preferred replica (the first of the
//! partition's replicas) already leads, PREFERRED_LEADER_NOT_AVAILABLE when it is not alive and
//! caught up; otherwise the partition's leader hands leadership over (the same handoff as the
//! automatic leader rebalance) and the answer comes once it moved.
//!
//! Unclean: Raft elects only a replica that holds every committed record, and does so on its
//! own whenever a leader is lost, so there is no unclean election to run: a partition with a
//! leader answers ELECTION_NOT_NEEDED (as Kafka does), one without answers
//! ELIGIBLE_LEADERS_NOT_AVAILABLE until Raft elects one.
//!
//! Null partitions means every partition; then, as Kafka, partitions that needed no election
//! are left out of the answer.

use super::context::Broker;

use crate::types::TopicPartition;
use futures::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

/// Kafka's election types.
const PREFERRED: i8 = 0;
const UNCLEAN: i8 = 1;

/// Handles an ElectLeaders request.
pub async fn handle(broker: &dyn Broker, req: ElectLeadersRequest, version: i16) -> ElectLeadersResponse {
    // v0 has no election type: it is always a preferred election.
    let election_type = if version == 0 { PREFERRED } else { req.election_type };
    if election_type != PREFERRED && election_type != UNCLEAN {
        return ElectLeadersResponse::default().with_error_code(ResponseError::InvalidRequest.code());
    }
    let every_partition = req.topic_partitions.is_none();
    let asked = asked_partitions(broker, req.topic_partitions);
    let timeout_ms = (req.timeout_ms.max(1) as u64).min(broker.config().request_timeout_max_ms);
    let results = join_all(asked.iter().map(|tp| elect(broker, tp, election_type, timeout_ms))).await;
    let mut topics: Vec<ReplicaElectionResult> = Vec::new();
    for (tp, result) in asked.into_iter().zip(results) {
        if every_partition && matches!(result, Err((ResponseError::ElectionNotNeeded, _))) {
            continue;
        }
        let partition = match result {
            Ok(()) => PartitionResult::default()
                .with_partition_id(tp.partition)
                .with_error_message(None),
            Err((code, why)) => {
                crate::observability::note_error("ElectLeaders", code);
                PartitionResult::default()
                    .with_partition_id(tp.partition)
                    .with_error_code(code.code())
                    .with_error_message(Some(StrBytes::from_string(why)))
            }
        };
        match topics.last_mut() {
            Some(t) if t.topic.0.as_str() == tp.topic => t.partition_result.push(partition),
            _ => topics.push(
                ReplicaElectionResult::default()
                    .with_topic(TopicName(StrBytes::from_string(tp.topic)))
                    .with_partition_result(vec![partition]),
            ),
        }
    }
    ElectLeadersResponse::default().with_replica_election_results(topics)
}

/// The partitions asked about, in request order; `None`: every partition of every topic.
fn asked_partitions(
    broker: &dyn Broker,
    asked: Option<Vec<kafka_protocol::messages::elect_leaders_request::TopicPartitions>>,
) -> Vec<TopicPartition> {
    let tp = |topic: &str, partition: i32| TopicPartition {
        topic: topic.to_string(),
        partition,
    };
    match asked {
        Some(topics) => topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| tp(t.topic.0.as_str(), *p)))
            .collect(),
        None => broker
            .metadata()
            .topics
            .iter()
            .flat_map(|(name, t)| (0..t.partitions).map(|p| tp(name, p)))
            .collect(),
    }
}

/// One partition's election.
async fn elect(
    broker: &dyn Broker,
    tp: &TopicPartition,
    election_type: i8,
    timeout_ms: u64,
) -> Result<(), (ResponseError, String)> {
    let preferred = {
        let meta = broker.metadata();
        let topic = meta
            .topics
            .get(&tp.topic)
            .filter(|t| tp.partition >= 0 && tp.partition < t.partitions);
        let Some(topic) = topic else {
            return Err((
                ResponseError::UnknownTopicOrPartition,
                "no such topic or partition".into(),
            ));
        };
        topic.replicas_of(tp.partition, broker.node().node_id).first().copied()
    };
    let leader = broker.leader_of(tp);
    if election_type == UNCLEAN {
        return match leader {
            Some(_) => Err((ResponseError::ElectionNotNeeded, "the partition has a leader".into())),
            None => Err((
                ResponseError::EligibleLeadersNotAvailable,
                "Raft elects only a replica holding every committed record, on its own: no unclean election".into(),
            )),
        };
    }
    if leader.is_some() && leader == preferred {
        return Err((ResponseError::ElectionNotNeeded, "the preferred replica leads".into()));
    }
    broker.elect_preferred(tp.clone(), timeout_ms).await
}
