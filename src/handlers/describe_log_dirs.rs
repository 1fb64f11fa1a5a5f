//! DescribeLogDirs (v1–4): the node's one data dir (its absolute path), and for each local
//! partition asked for (null: all) the bytes its log's segment files hold. offset_lag is 0:
//! a partition's log here is always the current one (no replica is being moved between dirs),
//! as Kafka answers for a current log. v4 adds the filesystem's total and usable bytes.

use super::context::Broker;

use crate::types::TopicPartition;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;

/// Handles a DescribeLogDirs request.
pub async fn handle(broker: &dyn Broker, req: DescribeLogDirsRequest, version: i16) -> DescribeLogDirsResponse {
    let meta = broker.metadata();
    // (topic → partitions asked for); None: every partition of every topic.
    let wanted: Option<BTreeMap<String, Vec<i32>>> = req.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| (t.topic.0.to_string(), t.partitions))
            .collect()
    });
    let mut topics = Vec::new();
    for (name, t) in &meta.topics {
        let partitions: Vec<i32> = match &wanted {
            None => (0..t.partitions).collect(),
            Some(w) => w.get(name).cloned().unwrap_or_default(),
        };
        let described: Vec<DescribeLogDirsPartition> = partitions
            .into_iter()
            .filter_map(|p| {
                let tp = TopicPartition {
                    topic: name.clone(),
                    partition: p,
                };
                let view = broker.partition(&tp)?;
                Some(
                    DescribeLogDirsPartition::default()
                        .with_partition_index(p)
                        .with_partition_size(view.log.size_bytes() as i64)
                        .with_offset_lag(0)
                        .with_is_future_key(false),
                )
            })
            .collect();
        if !described.is_empty() {
            topics.push(
                DescribeLogDirsTopic::default()
                    .with_name(TopicName(StrBytes::from_string(name.clone())))
                    .with_partitions(described),
            );
        }
    }
    let dir = std::path::absolute(&broker.config().data_dir).unwrap_or_else(|_| broker.config().data_dir.clone());
    let mut result = DescribeLogDirsResult::default()
        .with_log_dir(StrBytes::from_string(dir.display().to_string()))
        .with_topics(topics);
    if version >= 4 {
        let (total, usable) = broker.data_dir_space().unwrap_or((-1, -1));
        result = result.with_total_bytes(total).with_usable_bytes(usable);
    }
    DescribeLogDirsResponse::default().with_results(vec![result])
}
