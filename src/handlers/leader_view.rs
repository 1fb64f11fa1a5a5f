//! The partition a leader-only request is about, when this node leads it: the checks ListOffsets
//! and OffsetForLeaderEpoch share (unknown partition, not the leader, KIP-320 epoch fencing).

use super::context::{Broker, PartitionView};

use crate::types::TopicPartition;
use kafka_protocol::error::ResponseError;

/// This node's view of `topic`/`partition` if it leads it in `current_epoch` (-1: unchecked).
pub fn leader_view(
    broker: &dyn Broker,
    topic: &str,
    partition: i32,
    current_epoch: i32,
) -> Result<PartitionView, ResponseError> {
    let tp = TopicPartition {
        topic: topic.to_string(),
        partition,
    };
    let Some(view) = broker.partition(&tp) else {
        let known = broker
            .metadata()
            .topics
            .get(topic)
            .is_some_and(|t| partition >= 0 && partition < t.partitions);
        return Err(if known {
            ResponseError::NotLeaderOrFollower
        } else {
            ResponseError::UnknownTopicOrPartition
        });
    };
    if view.leader != Some(broker.node().node_id) {
        return Err(ResponseError::NotLeaderOrFollower);
    }
    super::fetch::check_epoch(current_epoch, view.leader_epoch)?;
    Ok(view)
}
