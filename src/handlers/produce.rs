//! Produce: validates each partition's batch (sans-IO) and hands it to the partition's Raft
//! group; partitions of one request proceed concurrently. acks=0 requests get no response (the
//! connection drops it) but are otherwise handled the same.

use super::context::{Broker, TopicPartition};
use super::topic_config::{effective_i64, timestamp_rules};
use super::topic_validation;
use crate::protocol::batch::validate_produced;
use crate::protocol::batch_rules::{self, Refusal};
use futures::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;

/// How long a produce to an unknown topic waits for auto-creation.
const AUTO_CREATE_WAIT_MS: u64 = 2_000;

/// Handles a Produce request.
pub async fn handle(broker: &dyn Broker, req: ProduceRequest, version: i16) -> ProduceResponse {
    let cfg = broker.config();
    let timeout_ms = (req.timeout_ms.max(1) as u64).min(cfg.request_timeout_max_ms);
    let acks = req.acks;
    let mut topics = Vec::with_capacity(req.topic_data.len());
    for topic in req.topic_data {
        let name = topic.name.0.to_string();
        let known = ensure_topic(broker, &name).await;
        let topic_meta = broker.metadata().topics.get(&name).cloned();
        let partition_count = topic_meta.as_ref().map(|t| t.partitions);
        // Topic overrides take effect on the next request, without restart.
        let max_bytes = topic_meta
            .as_ref()
            .map(|t| effective_i64(cfg, t, "max.message.bytes"))
            .unwrap_or(0) as i32;
        let min_insync = topic_meta
            .as_ref()
            .map(|t| effective_i64(cfg, t, "min.insync.replicas"))
            .unwrap_or(1);
        let rules = topic_meta.as_ref().map(|t| timestamp_rules(cfg, t));
        let futures = topic.partition_data.into_iter().map(|p| {
            let index = p.index;
            let name = name.clone();
            let fut = async move {
                if !(-1..=1).contains(&acks) {
                    return Err(ResponseError::InvalidRequiredAcks.into());
                }
                known?;
                // Clients must not write the coordinator's records (Kafka refuses the same).
                if name == crate::storage::offsets::OFFSETS_TOPIC {
                    return Err(ResponseError::InvalidTopicException.into());
                }
                if !partition_count.is_some_and(|n| index >= 0 && index < n) {
                    return Err(ResponseError::UnknownTopicOrPartition.into());
                }
                let records = p.records.ok_or(ResponseError::CorruptMessage)?;
                let batch = validate_produced(&records, max_bytes)?;
                let now_ms = crate::storage::segment::now_ms();
                let rules = rules.ok_or(ResponseError::UnknownTopicOrPartition)?;
                let batch = batch_rules::apply(batch, &rules, now_ms)?;
                let append_time_ms = if rules.log_append_time { now_ms } else { -1 };
                let bytes = batch.bytes.len() as u64;
                let tp = TopicPartition {
                    topic: name.clone(),
                    partition: index,
                };
                // acks=all fails fast, before anything is written, when fewer replicas than
                // min.insync.replicas are in sync (a follower cannot tell: the leader refuses).
                if acks == -1 {
                    let in_sync = broker.in_sync(&tp).map(|ids| ids.len() as i64);
                    if in_sync.is_some_and(|n| n < min_insync) {
                        return Err(ResponseError::NotEnoughReplicas.into());
                    }
                }
                let base = broker.produce(tp, batch, acks, timeout_ms).await?;
                metrics::counter!(crate::observability::BYTES_IN, "topic" => name).increment(bytes);
                Ok((base, append_time_ms))
            };
            async move { (index, fut.await) }
        });
        let results = join_all(futures).await;
        let partition_responses = results
            .into_iter()
            .map(|(index, r)| {
                let pr = PartitionProduceResponse::default()
                    .with_index(index)
                    .with_log_append_time_ms(-1);
                match r {
                    // log_start_offset exists from v5: a field set outside its versions makes
                    // the response unencodable.
                    Ok((base, append_time_ms)) if version >= 5 => pr
                        .with_base_offset(base)
                        .with_log_append_time_ms(append_time_ms)
                        .with_log_start_offset(start_offset(broker, &topic.name.0, index)),
                    Ok((base, append_time_ms)) => pr.with_base_offset(base).with_log_append_time_ms(append_time_ms),
                    Err(refusal) => refused(pr, refusal, version),
                }
            })
            .collect();
        topics.push(
            TopicProduceResponse::default()
                .with_name(topic.name.clone())
                .with_partition_responses(partition_responses),
        );
    }
    ProduceResponse::default().with_responses(topics)
}

/// A partition's refusal: its code, and from v8 its message and the offending records.
fn refused(pr: PartitionProduceResponse, refusal: Refusal, version: i16) -> PartitionProduceResponse {
    crate::observability::note_error("Produce", refusal.code);
    let pr = pr
        .with_error_code(refusal.code.code())
        .with_base_offset(-1)
        .with_log_start_offset(-1);
    if version < 8 || refusal.message.is_empty() {
        return pr;
    }
    let record_errors = refusal
        .record_errors
        .into_iter()
        .map(|(i, why)| {
            BatchIndexAndErrorMessage::default()
                .with_batch_index(i)
                .with_batch_index_error_message(Some(StrBytes::from_string(why)))
        })
        .collect();
    pr.with_error_message(Some(StrBytes::from_string(refusal.message)))
        .with_record_errors(record_errors)
}

fn start_offset(broker: &dyn Broker, topic: &str, partition: i32) -> i64 {
    broker
        .partition(&TopicPartition {
            topic: topic.to_string(),
            partition,
        })
        .map(|v| v.log.start_offset())
        .unwrap_or(-1)
}

/// Creates `name` if it is unknown and auto-creation is on.
async fn ensure_topic(broker: &dyn Broker, name: &str) -> Result<(), ResponseError> {
    if broker.metadata().topics.contains_key(name) {
        return Ok(());
    }
    let cfg = broker.config();
    if !cfg.auto_create_topics_enable {
        return Err(ResponseError::UnknownTopicOrPartition);
    }
    let cmd = topic_validation::create_command(
        name,
        cfg.num_partitions,
        cfg.default_replication_factor,
        BTreeMap::new(),
        topic_validation::cluster_nodes(&broker.metadata()),
    )
    .map_err(|(code, _)| code)?;
    match broker.propose(cmd, cfg.request_timeout_max_ms).await {
        Ok(_) | Err((ResponseError::TopicAlreadyExists, _)) => {
            broker.wait_topic_ready(name.to_string(), AUTO_CREATE_WAIT_MS).await;
            Ok(())
        }
        Err(_) => Err(ResponseError::UnknownTopicOrPartition),
    }
}
