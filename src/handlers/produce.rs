//! Produce: validates each partition's batch (sans-IO) and hands it to the partition's Raft
//! group, in the connection's request order; partitions of one request proceed concurrently. acks=0 requests get no response (the
//! connection drops it) but are otherwise handled the same.

use super::context::{Appending, Broker};

use super::produce_batch::StoreForm;
use super::produce_order::ProduceTurn;
use super::topic_validation;
use crate::protocol::batch::{validate_produced, ValidBatch};
use crate::protocol::batch_rules::Refusal;
use crate::types::TopicPartition;
use futures::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;
use std::sync::Arc;

/// How long a produce to an unknown topic waits for auto-creation.
const AUTO_CREATE_WAIT_MS: u64 = 2_000;

/// A partition's batch that passed every check, ready to hand to its partition.
struct Checked {
    tp: TopicPartition,
    /// Taken when handed to the partition.
    batch: Option<ValidBatch>,
    size_bytes: u64,
    append_time_ms: i64,
}

/// A partition's batch as the client sent it, once every check passed.
type Validated = Result<(TopicPartition, ValidBatch), Refusal>;

/// One partition of the request: where it answers, and its batch or refusal.
struct Slot {
    topic: usize,
    index: i32,
    checked: Result<Checked, Refusal>,
}

/// Answers a Produce request; acks=0 gets no response at all.
pub async fn reply(
    broker: &dyn Broker,
    req: ProduceRequest,
    cx: &mut super::RequestCx,
) -> anyhow::Result<super::Reply> {
    let acks = req.acks;
    let resp = handle(broker, req, cx.version, cx.produce_turn.take()).await;
    if acks == 0 {
        return Ok(super::Reply {
            bytes: None,
            then_close: false,
        });
    }
    cx.answer(&resp)
}

/// Handles a Produce request: checks every partition's batch, then — in its connection's order
/// (`turn`) — hands the accepted ones to their partitions, then waits for them to commit.
/// Partitions of one request proceed concurrently.
pub async fn handle(
    broker: &dyn Broker,
    req: ProduceRequest,
    version: i16,
    mut turn: Option<ProduceTurn>,
) -> ProduceResponse {
    let timeout_ms = (req.timeout_ms.max(1) as u64).min(broker.config().request_timeout_max_ms);
    let acks = req.acks;
    let mut names = Vec::with_capacity(req.topic_data.len());
    let mut slots = Vec::new();
    for topic in req.topic_data {
        slots.extend(check_topic(broker, names.len(), &topic, acks, version).await);
        names.push(topic.name);
    }
    if let Some(turn) = turn.as_mut() {
        turn.begin().await;
    }
    // Each partition holds a share of the turn until its batch is in the partition's mailbox
    // (or refused): once all are, the connection's next request may hand over its own. A
    // partition waits for its commit as soon as it is handed over, so its produce permit is
    // freed at commit, not when the slowest partition of the request was handed over.
    let turn = turn.map(Arc::new);
    let results = join_all(slots.iter_mut().map(|slot| {
        let share = turn.clone();
        async move {
            let handed = hand_over(broker, slot, acks, timeout_ms).await;
            drop(share);
            match handed {
                Some(Ok(appending)) => Some(appending.await),
                Some(Err(code)) => Some(Err(code)),
                None => None,
            }
        }
    }))
    .await;
    drop(turn);
    respond(broker, names, slots, results, version)
}

/// Checks every partition of one topic of the request.
async fn check_topic(
    broker: &dyn Broker,
    topic_at: usize,
    topic: &TopicProduceData,
    acks: i16,
    version: i16,
) -> Vec<Slot> {
    let rules = TopicRules::of(broker, topic.name.0.to_string()).await;
    let validated: Vec<(i32, Validated)> = topic
        .partition_data
        .iter()
        .map(|p| (p.index, rules.check(broker, p, acks, version)))
        .collect();
    let form = rules.form;
    join_all(validated.into_iter().map(|(index, checked)| async move {
        let checked = match (checked, form) {
            (Ok((tp, batch)), Some(form)) => form.apply(batch).await.map(|(batch, append_time_ms)| Checked {
                tp,
                size_bytes: batch.bytes.len() as u64,
                batch: Some(batch),
                append_time_ms,
            }),
            (Ok(_), None) => Err(ResponseError::UnknownTopicOrPartition.into()),
            (Err(refusal), _) => Err(refusal),
        };
        Slot {
            topic: topic_at,
            index,
            checked,
        }
    }))
    .await
}

/// What one topic's partitions are checked against (topic overrides take effect on the next
/// request, without restart).
struct TopicRules {
    name: String,
    /// Whether the topic exists (or was created now).
    known: Result<(), ResponseError>,
    partition_count: Option<i32>,
    max_bytes: i32,
    min_insync: i64,
    /// How batches are stored; `None` for an unknown topic.
    form: Option<StoreForm>,
}

impl TopicRules {
    /// The rules of topic `name`, auto-created first if the broker does that.
    async fn of(broker: &dyn Broker, name: String) -> TopicRules {
        let cfg = broker.config();
        let known = ensure_topic(broker, &name).await;
        let topic_meta = broker.metadata().topics.get(&name).cloned();
        let max_bytes = topic_meta
            .as_ref()
            .map(|t| t.overrides.max_message_bytes(cfg))
            .unwrap_or(0);
        TopicRules {
            known,
            partition_count: topic_meta.as_ref().map(|t| t.partitions),
            max_bytes,
            min_insync: topic_meta
                .as_ref()
                .map(|t| t.overrides.min_insync_replicas() as i64)
                .unwrap_or(1),
            form: topic_meta.as_ref().map(|t| StoreForm {
                codec: t.overrides.compression(),
                rules: t.overrides.timestamp_rules(),
                max_bytes,
                decompressed_limit_bytes: cfg.socket_request_max_bytes.max(0) as usize,
            }),
            name,
        }
    }

    /// Checks one partition's data: acks, the topic, the partition, the batch, and for
    /// acks=all the in-sync replicas.
    fn check(&self, broker: &dyn Broker, p: &PartitionProduceData, acks: i16, version: i16) -> Validated {
        if !(-1..=1).contains(&acks) {
            return Err(ResponseError::InvalidRequiredAcks.into());
        }
        self.known?;
        // Clients must not write the coordinator's records (Kafka refuses the same).
        if self.name == crate::storage::offsets::OFFSETS_TOPIC {
            return Err(ResponseError::InvalidTopicException.into());
        }
        if !self.partition_count.is_some_and(|n| p.index >= 0 && p.index < n) {
            return Err(ResponseError::UnknownTopicOrPartition.into());
        }
        let records = p.records.as_ref().ok_or(ResponseError::CorruptMessage)?;
        let batch = validate_produced(records, self.max_bytes)?;
        // zstd arrived with Produce v7 (KIP-110): Kafka refuses it in older versions.
        if version < 7 && batch.header.codec() == crate::protocol::batch::ZSTD {
            return Err(ResponseError::UnsupportedCompressionType.into());
        }
        let tp = TopicPartition {
            topic: self.name.clone(),
            partition: p.index,
        };
        check_in_sync(broker, &tp, acks, self.min_insync)?;
        Ok((tp, batch))
    }
}

/// acks=all fails fast, before anything is written, when fewer replicas than
/// min.insync.replicas are in sync (a follower cannot tell: the leader refuses).
fn check_in_sync(broker: &dyn Broker, tp: &TopicPartition, acks: i16, min_insync: i64) -> Result<(), Refusal> {
    if acks != -1 {
        return Ok(());
    }
    let in_sync = broker.in_sync(tp).map(|ids| ids.len() as i64);
    if in_sync.is_some_and(|n| n < min_insync) {
        return Err(ResponseError::NotEnoughReplicas.into());
    }
    Ok(())
}

/// Hands a checked batch to its partition; `None` for a refused one.
async fn hand_over(
    broker: &dyn Broker,
    slot: &mut Slot,
    acks: i16,
    timeout_ms: u64,
) -> Option<Result<Appending, ResponseError>> {
    let checked = slot.checked.as_mut().ok()?;
    let batch = checked.batch.take()?;
    Some(broker.produce(checked.tp.clone(), batch, acks, timeout_ms).await)
}

/// The response: each partition's base offset or refusal, topics in request order.
fn respond(
    broker: &dyn Broker,
    names: Vec<TopicName>,
    slots: Vec<Slot>,
    results: Vec<Option<Result<i64, ResponseError>>>,
    version: i16,
) -> ProduceResponse {
    let mut per_topic: Vec<Vec<PartitionProduceResponse>> = names.iter().map(|_| Vec::new()).collect();
    for (slot, result) in slots.into_iter().zip(results) {
        let pr = PartitionProduceResponse::default()
            .with_index(slot.index)
            .with_log_append_time_ms(-1);
        let outcome = match (slot.checked, result) {
            (Ok(c), Some(Ok(base))) => Ok((c, base)),
            (Ok(_), Some(Err(code))) => Err(code.into()),
            (Ok(_), None) => Err(ResponseError::UnknownServerError.into()),
            (Err(refusal), _) => Err(refusal),
        };
        let pr = match outcome {
            Ok((c, base)) => {
                metrics::counter!(crate::observability::BYTES_IN, "topic" => c.tp.topic.clone())
                    .increment(c.size_bytes);
                let pr = pr.with_base_offset(base).with_log_append_time_ms(c.append_time_ms);
                // log_start_offset exists from v5: a field set outside its versions makes
                // the response unencodable.
                if version >= 5 {
                    pr.with_log_start_offset(start_offset(broker, &c.tp))
                } else {
                    pr
                }
            }
            Err(refusal) => refused(pr, refusal, version),
        };
        per_topic[slot.topic].push(pr);
    }
    let topics = names
        .into_iter()
        .zip(per_topic)
        .map(|(name, partitions)| {
            TopicProduceResponse::default()
                .with_name(name)
                .with_partition_responses(partitions)
        })
        .collect();
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

fn start_offset(broker: &dyn Broker, tp: &TopicPartition) -> i64 {
    broker.partition(tp).map(|v| v.log.start_offset()).unwrap_or(-1)
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
        None,
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
