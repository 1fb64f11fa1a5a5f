//! Fetch: whole batches from the one containing the fetch offset, up to the high watermark,
//! byte-exact; long-polls until `min_bytes` are there or `max_wait_ms` passes (both bounded).
//! Topics are named (v4–v12) or given by id (v13+). No fetch sessions: session id 0 tells
//! clients to send full requests.

use super::context::{Broker, PartitionView};

use crate::protocol::compression::Codec;
use crate::types::TopicPartition;
use bytes::Bytes;
use futures::future::select_all;
use futures::FutureExt;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::time::Duration;

/// Kafka's leader-epoch check (KIP-320): -1 means "not checked".
pub fn check_epoch(requested: i32, current: i32) -> Result<(), ResponseError> {
    if requested < 0 || requested == current {
        Ok(())
    } else if requested < current {
        Err(ResponseError::FencedLeaderEpoch)
    } else {
        Err(ResponseError::UnknownLeaderEpoch)
    }
}

/// One partition of the request, resolved.
struct Slot {
    topic_index: usize,
    partition: i32,
    fetch_offset: i64,
    max_bytes: usize,
    view: Result<PartitionView, ResponseError>,
    result: Option<(Result<Bytes, ResponseError>, i64, i64)>,
}

/// The topics of a request as the response names them, and their partitions resolved.
struct Resolved {
    /// (name, id) per topic in request order.
    topics: Vec<(TopicName, uuid::Uuid)>,
    slots: Vec<Slot>,
}

/// Handles a Fetch request: resolves each partition, reads, long-polls until enough bytes or
/// the deadline, answers.
pub async fn handle(broker: &dyn Broker, req: FetchRequest, version: i16) -> FetchResponse {
    let cfg = broker.config();
    let max_wait = Duration::from_millis((req.max_wait_ms.max(0) as u64).min(cfg.request_timeout_max_ms));
    let deadline = tokio::time::Instant::now() + max_wait;
    let min_bytes = req.min_bytes.max(0) as usize;
    let total_max = if req.max_bytes <= 0 {
        i32::MAX as usize
    } else {
        req.max_bytes as usize
    };
    let Resolved { topics, mut slots } = resolve(broker, req.topics, version);
    long_poll(&mut slots, total_max, min_bytes, deadline).await;
    respond(topics, slots, version)
}

/// Finds each asked topic (by name, or by id from v13) and each partition's local view, or
/// why it cannot be read here.
fn resolve(
    broker: &dyn Broker,
    asked: Vec<kafka_protocol::messages::fetch_request::FetchTopic>,
    version: i16,
) -> Resolved {
    let meta = broker.metadata();
    let node_id = broker.node().node_id;
    let mut topics: Vec<(TopicName, uuid::Uuid)> = Vec::new();
    let mut slots: Vec<Slot> = Vec::new();
    for t in asked {
        let by_id = version >= 13;
        let found = if by_id {
            meta.topics.values().find(|m| m.topic_id == t.topic_id)
        } else {
            meta.topics.get(t.topic.0.as_str())
        };
        let name = found.map(|m| m.name.clone()).unwrap_or_else(|| t.topic.0.to_string());
        topics.push((TopicName(StrBytes::from_string(name.clone())), t.topic_id));
        for p in t.partitions {
            let view = match found {
                None if by_id => Err(ResponseError::UnknownTopicId),
                None => Err(ResponseError::UnknownTopicOrPartition),
                Some(m) if p.partition < 0 || p.partition >= m.partitions => {
                    Err(ResponseError::UnknownTopicOrPartition)
                }
                // Clients before Fetch v10 cannot read zstd (KIP-110): Kafka refuses them a
                // topic whose compression.type is zstd (zstd batches a producer sent to another
                // topic are served as they are, as by Kafka).
                Some(m) if version < 10 && m.overrides.compression() == Some(Codec::Zstd) => {
                    Err(ResponseError::UnsupportedCompressionType)
                }
                Some(_) => match broker.partition(&TopicPartition {
                    topic: name.clone(),
                    partition: p.partition,
                }) {
                    None => Err(ResponseError::NotLeaderOrFollower),
                    Some(v) if v.leader != Some(node_id) => Err(ResponseError::NotLeaderOrFollower),
                    Some(v) => check_epoch(p.current_leader_epoch, v.leader_epoch).map(|_| v),
                },
            };
            slots.push(Slot {
                topic_index: topics.len() - 1,
                partition: p.partition,
                fetch_offset: p.fetch_offset,
                max_bytes: p.partition_max_bytes.max(0) as usize,
                view,
                result: None,
            });
        }
    }
    Resolved { topics, slots }
}

/// Reads, and reads again whenever a partition's high watermark moves, until `min_bytes` are
/// there, a partition failed, or `deadline`.
async fn long_poll(slots: &mut [Slot], total_max: usize, min_bytes: usize, deadline: tokio::time::Instant) {
    loop {
        let total = read_all(slots, total_max);
        let any_error = slots.iter().any(|s| matches!(s.result, Some((Err(_), _, _))));
        let now = tokio::time::Instant::now();
        if total >= min_bytes.max(1) || any_error || now >= deadline || min_bytes == 0 {
            return;
        }
        // Wait for any partition's high watermark to move, or the deadline.
        let mut waits: Vec<_> = slots
            .iter()
            .filter_map(|s| s.view.as_ref().ok())
            .map(|v| {
                let mut rx = v.high_watermark.clone();
                async move {
                    let _ = rx.changed().await;
                }
                .boxed()
            })
            .collect();
        if waits.is_empty() {
            tokio::time::sleep_until(deadline).await;
            continue;
        }
        waits.push(tokio::time::sleep_until(deadline).boxed());
        let _ = select_all(waits).await;
    }
}

/// The response: every partition's records or error, under its topic.
fn respond(topics: Vec<(TopicName, uuid::Uuid)>, slots: Vec<Slot>, version: i16) -> FetchResponse {
    let topic_names: Vec<String> = topics.iter().map(|(n, _)| n.0.to_string()).collect();
    let mut responses: Vec<FetchableTopicResponse> = topics
        .into_iter()
        .map(|(name, id)| {
            // Topics are named up to v12 and identified from v13.
            if version >= 13 {
                FetchableTopicResponse::default().with_topic_id(id)
            } else {
                FetchableTopicResponse::default().with_topic(name)
            }
        })
        .collect();
    for s in slots {
        let (res, hwm, start) = s.result.unwrap_or((Ok(Bytes::new()), -1, -1));
        let mut pd = PartitionData::default()
            .with_partition_index(s.partition)
            .with_high_watermark(hwm)
            .with_last_stable_offset(hwm)
            .with_aborted_transactions(Some(Vec::new()));
        if version >= 5 {
            pd = pd.with_log_start_offset(start);
        }
        match res {
            Ok(records) => {
                if !records.is_empty() {
                    let topic = topic_names[s.topic_index].clone();
                    metrics::counter!(crate::observability::BYTES_OUT, "topic" => topic)
                        .increment(records.len() as u64);
                }
                pd = pd.with_records(Some(records));
            }
            Err(code) => {
                crate::observability::note_error("Fetch", code);
                pd = pd.with_error_code(code.code()).with_records(Some(Bytes::new()));
            }
        }
        responses[s.topic_index].partitions.push(pd);
    }
    FetchResponse::default().with_responses(responses)
}

/// Reads every slot once (re-reading on each long-poll wake-up); returns the bytes gathered.
fn read_all(slots: &mut [Slot], total_max: usize) -> usize {
    let mut total = 0usize;
    for s in slots.iter_mut() {
        let view = match &s.view {
            Ok(v) => v,
            Err(code) => {
                s.result = Some((Err(*code), -1, -1));
                continue;
            }
        };
        let hwm = *view.high_watermark.borrow();
        let start = view.log.start_offset();
        // The first partition with data may exceed the total limit by one batch (KIP-74).
        let budget = if total == 0 {
            s.max_bytes.min(total_max)
        } else {
            s.max_bytes.min(total_max.saturating_sub(total))
        };
        if budget == 0 && total > 0 {
            s.result = Some((Ok(Bytes::new()), hwm, start));
            continue;
        }
        let r = match view.log.read_batches(s.fetch_offset, budget.max(1), hwm) {
            Ok(read) => {
                total += read.records.len();
                Ok(read.records)
            }
            Err(_) => Err(ResponseError::OffsetOutOfRange),
        };
        s.result = Some((r, hwm, start));
    }
    total
}
