//! Why the controller's state machine refused a metadata command. Applied on every node from
//! the replicated log, so the refusal is deterministic; the controller answers the proposer
//! with `code()`, the one place these map to Kafka error codes.

use kafka_protocol::error::ResponseError;
use serde::{Deserialize, Serialize};

/// A refused metadata command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum MetaError {
    /// CreateTopics of a name in use.
    #[error("topic {0} already exists")]
    TopicExists(String),
    /// A change to a topic that does not exist (or no longer does).
    #[error("topic {0} does not exist")]
    UnknownTopic(String),
    /// More replicas asked for than the cluster has nodes, or fewer than one.
    #[error("invalid replication factor {asked}: the cluster has {nodes} node(s)")]
    InvalidReplicationFactor { asked: i16, nodes: usize },
    /// A replica list that does not fit the cluster or the request.
    #[error("invalid replica assignment: {0}")]
    InvalidReplicaAssignment(String),
    /// A change to a partition the topic does not have.
    #[error("partition {topic}-{partition} does not exist")]
    UnknownPartition { topic: String, partition: i32 },
    /// Cancelling a reassignment of a partition that is not moving.
    #[error("no reassignment in progress for {topic}-{partition}")]
    NoReassignmentInProgress { topic: String, partition: i32 },
    /// CreatePartitions that would not add partitions.
    #[error("invalid partitions: {0}")]
    InvalidPartitions(String),
    /// A producer-id block of no ids.
    #[error("cannot allocate {0} producer ids")]
    InvalidProducerIdCount(i64),
    /// Deleting a SCRAM credential the user does not have.
    #[error("user {user} has no {mechanism} credential")]
    UnknownScramCredential { user: String, mechanism: String },
    /// An entry that is not a metadata command this version knows.
    #[error("undecodable metadata command: {0}")]
    Undecodable(String),
}

impl MetaError {
    /// The Kafka error code a client gets for this refusal.
    pub fn code(&self) -> ResponseError {
        match self {
            MetaError::TopicExists(_) => ResponseError::TopicAlreadyExists,
            MetaError::UnknownTopic(_) | MetaError::UnknownPartition { .. } => ResponseError::UnknownTopicOrPartition,
            MetaError::InvalidReplicationFactor { .. } => ResponseError::InvalidReplicationFactor,
            MetaError::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
            MetaError::NoReassignmentInProgress { .. } => ResponseError::NoReassignmentInProgress,
            MetaError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
            MetaError::UnknownScramCredential { .. } => ResponseError::ResourceNotFound,
            MetaError::InvalidProducerIdCount(_) | MetaError::Undecodable(_) => ResponseError::InvalidRequest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_has_its_kafka_code_and_the_text_clients_saw_before() {
        let cases = [
            (
                MetaError::TopicExists("t".into()),
                ResponseError::TopicAlreadyExists,
                "topic t already exists",
            ),
            (
                MetaError::UnknownTopic("t".into()),
                ResponseError::UnknownTopicOrPartition,
                "topic t does not exist",
            ),
            (
                MetaError::InvalidReplicationFactor { asked: 4, nodes: 3 },
                ResponseError::InvalidReplicationFactor,
                "invalid replication factor 4: the cluster has 3 node(s)",
            ),
            (
                MetaError::NoReassignmentInProgress {
                    topic: "t".into(),
                    partition: 1,
                },
                ResponseError::NoReassignmentInProgress,
                "no reassignment in progress for t-1",
            ),
            (
                MetaError::InvalidProducerIdCount(0),
                ResponseError::InvalidRequest,
                "cannot allocate 0 producer ids",
            ),
        ];
        for (refused, code, text) in cases {
            assert_eq!(refused.code(), code, "{refused:?}");
            assert_eq!(refused.to_string(), text);
        }
    }
}
