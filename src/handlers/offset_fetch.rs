//! OffsetFetch (v1–7): a group's committed offsets (all, or of the listed partitions); a
//! partition with no commit answers offset -1 and empty metadata, as Kafka does.

use super::context::Broker;
use kafka_protocol::messages::offset_fetch_response::{OffsetFetchResponsePartition, OffsetFetchResponseTopic};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;

/// Handles an OffsetFetch request.
pub async fn handle(broker: &dyn Broker, req: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
    let group = req.group_id.0.to_string();
    let wanted: Option<Vec<(String, i32)>> = req.topics.as_ref().map(|ts| {
        ts.iter()
            .flat_map(|t| t.partition_indexes.iter().map(move |p| (t.name.0.to_string(), *p)))
            .collect()
    });
    let found = match broker.fetch_offsets(group, wanted.clone()).await {
        Ok(found) => found,
        Err(code) => {
            crate::observability::note_error("OffsetFetch", code);
            // A group-level error exists from v2; v1 reports it on every partition.
            let resp = OffsetFetchResponse::default();
            return if version >= 2 {
                resp.with_error_code(code.code())
            } else {
                let topics = by_topic(wanted.unwrap_or_default().into_iter().map(|(t, p)| {
                    (
                        t,
                        OffsetFetchResponsePartition::default()
                            .with_partition_index(p)
                            .with_committed_offset(-1)
                            .with_error_code(code.code()),
                    )
                }));
                resp.with_topics(topics)
            };
        }
    };
    let mut rows: BTreeMap<(String, i32), OffsetFetchResponsePartition> = BTreeMap::new();
    for (tp, _) in wanted.iter().flatten().map(|tp| (tp.clone(), ())) {
        rows.insert(
            tp.clone(),
            OffsetFetchResponsePartition::default()
                .with_partition_index(tp.1)
                .with_committed_offset(-1),
        );
    }
    for (k, c) in found {
        let mut r = OffsetFetchResponsePartition::default()
            .with_partition_index(k.partition)
            .with_committed_offset(c.offset)
            .with_metadata(Some(StrBytes::from_string(c.metadata.unwrap_or_default())));
        // committed_leader_epoch exists from v5.
        if version >= 5 {
            r = r.with_committed_leader_epoch(c.leader_epoch);
        }
        rows.insert((k.topic, k.partition), r);
    }
    OffsetFetchResponse::default().with_topics(by_topic(rows.into_iter().map(|((t, _), r)| (t, r))))
}

fn by_topic(rows: impl Iterator<Item = (String, OffsetFetchResponsePartition)>) -> Vec<OffsetFetchResponseTopic> {
    let mut topics: BTreeMap<String, Vec<OffsetFetchResponsePartition>> = BTreeMap::new();
    for (t, r) in rows {
        topics.entry(t).or_default().push(r);
    }
    topics
        .into_iter()
        .map(|(t, ps)| {
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(StrBytes::from_string(t)))
                .with_partitions(ps)
        })
        .collect()
}
