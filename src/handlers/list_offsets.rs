//! ListOffsets (v1+): earliest (-2), latest (-1, the high watermark), max timestamp (-3: the
//! first record holding it), or the first record whose timestamp is at or after the one asked
//! (the time index finds the batch, the record is found inside it), with that record's
//! timestamp. v0 (old-style offset lists) is `list_offsets_v0.rs`.

use super::context::Broker;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

const EARLIEST: i64 = -2;
const LATEST: i64 = -1;
const MAX_TIMESTAMP: i64 = -3;

/// Handles a ListOffsets request.
pub async fn handle(broker: &dyn Broker, req: ListOffsetsRequest, version: i16) -> ListOffsetsResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let r = ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
                    match lookup(broker, &name, p.partition_index, p.timestamp, p.current_leader_epoch) {
                        // leader_epoch exists from v4.
                        Ok((offset, timestamp, epoch)) if version >= 4 => {
                            r.with_offset(offset).with_timestamp(timestamp).with_leader_epoch(epoch)
                        }
                        Ok((offset, timestamp, _)) => r.with_offset(offset).with_timestamp(timestamp),
                        Err(code) => r.with_error_code(code.code()).with_offset(-1).with_timestamp(-1),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

/// (offset, timestamp, leader epoch) for one partition.
fn lookup(
    broker: &dyn Broker,
    topic: &str,
    partition: i32,
    timestamp: i64,
    current_epoch: i32,
) -> Result<(i64, i64, i32), ResponseError> {
    let view = super::leader_view::leader_view(broker, topic, partition, current_epoch)?;
    let hwm = *view.high_watermark.borrow();
    let epoch = view.leader_epoch;
    Ok(match timestamp {
        EARLIEST => (view.log.start_offset(), -1, epoch),
        LATEST => (hwm, -1, epoch),
        MAX_TIMESTAMP => match view.log.max_timestamp_offset() {
            Some((offset, ts)) if offset < hwm => (offset, ts, epoch),
            _ => (-1, -1, -1),
        },
        ts => match view.log.offset_for_timestamp(ts) {
            Some((offset, batch_ts)) if offset < hwm => (offset, batch_ts, epoch),
            _ => (-1, -1, -1),
        },
    })
}
