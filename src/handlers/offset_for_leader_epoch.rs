//! OffsetForLeaderEpoch (v2–4, KIP-101/320): where a leader epoch (a Raft term) ends in the
//! leader's log, so that a consumer that fetched under an older leader can tell whether the log
//! it read was cut since. Answered by the partition's leader only, with the current leader
//! epoch checked as Fetch checks it.

use super::context::Broker;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

/// Handles an OffsetForLeaderEpoch request.
pub async fn handle(broker: &dyn Broker, req: OffsetForLeaderEpochRequest) -> OffsetForLeaderEpochResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let out = EpochEndOffset::default().with_partition(p.partition);
                    match end_of(broker, &t.topic.0, p.partition, p.current_leader_epoch, p.leader_epoch) {
                        Ok((epoch, end)) => out.with_leader_epoch(epoch).with_end_offset(end),
                        Err(code) => {
                            crate::observability::note_error("OffsetForLeaderEpoch", code);
                            out.with_error_code(code.code())
                                .with_leader_epoch(-1)
                                .with_end_offset(-1)
                        }
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

fn end_of(
    broker: &dyn Broker,
    topic: &str,
    partition: i32,
    current_epoch: i32,
    epoch: i32,
) -> Result<(i32, i64), ResponseError> {
    let view = super::leader_view::leader_view(broker, topic, partition, current_epoch)?;
    crate::storage::log::epochs::end_offset_for(&view.log, epoch).map_err(|_| ResponseError::KafkaStorageError)
}
