//! CreateTopics: validates each topic, proposes it through the controller, and waits (within
//! the request's timeout) for its partitions to have leaders.

use super::context::Broker;
use super::topic_validation;
use crate::storage::meta_sm::MetaCommand;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;
use std::collections::{BTreeMap, HashSet};

/// Handles a CreateTopics request.
pub async fn handle(broker: &dyn Broker, req: CreateTopicsRequest, version: i16) -> CreateTopicsResponse {
    let timeout_ms = (req.timeout_ms.max(0) as u64).min(broker.config().request_timeout_max_ms);
    let mut seen = HashSet::new();
    let mut results = Vec::new();
    for t in req.topics {
        let r = CreatableTopicResult::default()
            .with_name(t.name.clone())
            .with_error_message(None);
        if !seen.insert(t.name.0.to_string()) {
            let why = (
                ResponseError::InvalidRequest,
                "topic listed twice in one request".to_string(),
            );
            results.push(refused(r, why));
            continue;
        }
        results.push(match create(broker, &t, req.validate_only, timeout_ms).await {
            Ok(cmd) => created(broker, r, cmd, req.validate_only, timeout_ms, version).await,
            Err(why) => refused(r, why),
        });
    }
    CreateTopicsResponse::default().with_topics(results)
}

/// Checks one topic and, unless `validate_only`, proposes it: the command as proposed.
async fn create(
    broker: &dyn Broker,
    t: &CreatableTopic,
    validate_only: bool,
    timeout_ms: u64,
) -> Result<MetaCommand, (ResponseError, String)> {
    let name = t.name.0.to_string();
    let (partitions, rf, assignment) = shape(broker, t)?;
    let configs: BTreeMap<String, String> = t
        .configs
        .iter()
        .map(|c| {
            (
                c.name.to_string(),
                c.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
            )
        })
        .collect();
    let nodes = topic_validation::cluster_nodes(&broker.metadata());
    let cmd = topic_validation::create_command(&name, partitions, rf, configs, nodes, assignment)?;
    if !validate_only {
        broker.propose(cmd.clone(), timeout_ms).await?;
    } else if broker.metadata().topics.contains_key(&name) {
        return Err((
            ResponseError::TopicAlreadyExists,
            format!("topic {name} already exists"),
        ));
    }
    Ok(cmd)
}

/// The result of a created (or validated) topic: once its partitions have leaders (within the
/// timeout), its id from v7 and its shape from v5.
async fn created(
    broker: &dyn Broker,
    mut r: CreatableTopicResult,
    cmd: MetaCommand,
    validate_only: bool,
    timeout_ms: u64,
    version: i16,
) -> CreatableTopicResult {
    let MetaCommand::CreateTopic {
        name,
        topic_id,
        partitions,
        replication_factor,
        ..
    } = cmd
    else {
        debug_assert!(false, "create_command builds CreateTopic");
        return r;
    };
    if !validate_only {
        broker.wait_topic_ready(name, timeout_ms).await;
        if version >= 7 {
            r = r.with_topic_id(topic_id);
        }
    }
    if version >= 5 {
        r = r
            .with_num_partitions(partitions)
            .with_replication_factor(replication_factor);
    }
    r
}

fn refused(r: CreatableTopicResult, (code, why): (ResponseError, String)) -> CreatableTopicResult {
    r.with_error_code(code.code())
        .with_error_message(Some(StrBytes::from_string(why)))
}

/// (partitions, replication factor, replicas given by the client) of a topic to create.
type Shape = (i32, i16, Option<Vec<Vec<i32>>>);

/// The shape of a topic to create. With manual assignments (Kafka's rules): both counts must
/// be -1, the partition ids 0..n-1 once each, the lists as `check_replica_lists` wants; on a
/// single node the assignment names this node and nothing needs placing.
fn shape(broker: &dyn Broker, t: &CreatableTopic) -> Result<Shape, (ResponseError, String)> {
    let cfg = broker.config();
    if t.assignments.is_empty() {
        let partitions = if t.num_partitions == -1 {
            cfg.num_partitions
        } else {
            t.num_partitions
        };
        let rf = if t.replication_factor == -1 {
            cfg.default_replication_factor
        } else {
            t.replication_factor
        };
        return Ok((partitions, rf, None));
    }
    let invalid = |m: &str| Err((ResponseError::InvalidRequest, m.to_string()));
    if t.replication_factor != -1 {
        return invalid("A manual partition assignment was specified, but replication factor was not set to -1.");
    }
    if t.num_partitions != -1 {
        return invalid("A manual partition assignment was specified, but numPartitions was not set to -1.");
    }
    let mut by_partition = BTreeMap::new();
    for a in &t.assignments {
        let replicas: Vec<i32> = a.broker_ids.iter().map(|b| b.0).collect();
        if by_partition.insert(a.partition_index, replicas).is_some() {
            return Err((
                ResponseError::InvalidReplicaAssignment,
                format!(
                    "Found multiple manual partition assignments for partition {}",
                    a.partition_index
                ),
            ));
        }
    }
    let n = by_partition.len() as i32;
    if by_partition.keys().copied().ne(0..n) {
        return Err((
            ResponseError::InvalidReplicaAssignment,
            "partitions should be a consecutive 0-based integer sequence".into(),
        ));
    }
    let lists: Vec<Vec<i32>> = by_partition.into_values().collect();
    let meta = broker.metadata();
    let nodes = topic_validation::assignable_nodes(&meta, broker.node().node_id);
    topic_validation::check_replica_lists(&lists, None, &nodes)?;
    let rf = lists[0].len() as i16;
    let placed = !meta.voters.is_empty();
    Ok((n, rf, placed.then_some(lists)))
}
