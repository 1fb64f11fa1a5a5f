//! OffsetFetch (v1–8): a group's committed offsets (all, or of the listed partitions); from v8 a
//! request may ask for several groups at once, each answered with its own error code. A
//! partition with no commit answers offset -1 and empty metadata, as Kafka does.

use super::context::Broker;
use futures::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;

/// One partition's answer: (committed offset, leader epoch, metadata).
type Row = (i64, i32, Option<String>);

/// Rows by (topic, partition).
type Rows = BTreeMap<(String, i32), Row>;

/// Handles an OffsetFetch request.
pub async fn handle(broker: &dyn Broker, req: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
    if version >= 8 {
        let lookups = req.groups.iter().map(|g| {
            let wanted = g.topics.as_ref().map(|ts| {
                ts.iter()
                    .flat_map(|t| t.partition_indexes.iter().map(move |p| (t.name.0.to_string(), *p)))
                    .collect()
            });
            fetch_group(broker, g.group_id.0.to_string(), wanted)
        });
        let results = join_all(lookups).await;
        let groups = req
            .groups
            .iter()
            .zip(results)
            .map(|(g, result)| {
                let out = OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone());
                match result {
                    Ok(rows) => out.with_topics(by_topic_v8(rows)),
                    Err(code) => out.with_error_code(code.code()),
                }
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let wanted: Option<Vec<(String, i32)>> = req.topics.as_ref().map(|ts| {
        ts.iter()
            .flat_map(|t| t.partition_indexes.iter().map(move |p| (t.name.0.to_string(), *p)))
            .collect()
    });
    match fetch_group(broker, req.group_id.0.to_string(), wanted.clone()).await {
        Ok(rows) => OffsetFetchResponse::default().with_topics(by_topic(rows, version)),
        // A group-level error exists from v2; v1 reports it on every partition.
        Err(code) if version >= 2 => OffsetFetchResponse::default().with_error_code(code.code()),
        Err(code) => {
            let rows = wanted
                .unwrap_or_default()
                .into_iter()
                .map(|tp| (tp, (-1, -1, Some(String::new()))));
            let mut topics = by_topic(rows.collect(), version);
            for p in topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                p.error_code = code.code();
            }
            OffsetFetchResponse::default().with_topics(topics)
        }
    }
}

/// The committed offsets of one group; every wanted partition gets a row (-1 if uncommitted).
async fn fetch_group(
    broker: &dyn Broker,
    group: String,
    wanted: Option<Vec<(String, i32)>>,
) -> Result<Rows, ResponseError> {
    let found = broker.fetch_offsets(group, wanted.clone()).await.inspect_err(|code| {
        crate::observability::note_error("OffsetFetch", *code);
    })?;
    let mut rows: Rows = wanted
        .into_iter()
        .flatten()
        .map(|tp| (tp, (-1, -1, Some(String::new()))))
        .collect();
    for (k, c) in found {
        rows.insert(
            (k.topic, k.partition),
            (c.offset, c.leader_epoch, Some(c.metadata.unwrap_or_default())),
        );
    }
    Ok(rows)
}

fn by_topic(rows: Rows, version: i16) -> Vec<OffsetFetchResponseTopic> {
    let mut topics: BTreeMap<String, Vec<OffsetFetchResponsePartition>> = BTreeMap::new();
    for ((t, p), (offset, epoch, metadata)) in rows {
        let mut r = OffsetFetchResponsePartition::default()
            .with_partition_index(p)
            .with_committed_offset(offset)
            .with_metadata(metadata.map(StrBytes::from_string));
        // committed_leader_epoch exists from v5.
        if version >= 5 {
            r = r.with_committed_leader_epoch(epoch);
        }
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

fn by_topic_v8(rows: Rows) -> Vec<OffsetFetchResponseTopics> {
    let mut topics: BTreeMap<String, Vec<OffsetFetchResponsePartitions>> = BTreeMap::new();
    for ((t, p), (offset, epoch, metadata)) in rows {
        topics.entry(t).or_default().push(
            OffsetFetchResponsePartitions::default()
                .with_partition_index(p)
                .with_committed_offset(offset)
                .with_committed_leader_epoch(epoch)
                .with_metadata(metadata.map(StrBytes::from_string)),
        );
    }
    topics
        .into_iter()
        .map(|(t, ps)| {
            OffsetFetchResponseTopics::default()
                .with_name(TopicName(StrBytes::from_string(t)))
                .with_partitions(ps)
        })
        .collect()
}
