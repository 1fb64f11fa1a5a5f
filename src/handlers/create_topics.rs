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
    let cfg = broker.config();
    let timeout_ms = (req.timeout_ms.max(0) as u64).min(cfg.request_timeout_max_ms);
    let mut seen = HashSet::new();
    let mut results = Vec::new();
    for t in req.topics {
        let name = t.name.0.to_string();
        let mut r = CreatableTopicResult::default()
            .with_name(t.name.clone())
            .with_error_message(None);
        if !seen.insert(name.clone()) {
            results.push(
                r.with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(StrBytes::from_static_str("topic listed twice in one request"))),
            );
            continue;
        }
        let (partitions, rf, assignment) = match shape(broker, &t) {
            Ok(shape) => shape,
            Err((code, msg)) => {
                results.push(
                    r.with_error_code(code.code())
                        .with_error_message(Some(StrBytes::from_string(msg))),
                );
                continue;
            }
        };
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
        let command = topic_validation::create_command(&name, partitions, rf, configs, nodes).map(|mut cmd| {
            if let MetaCommand::CreateTopic { assignment: given, .. } = &mut cmd {
                *given = assignment;
            }
            cmd
        });
        let outcome = match command {
            Err(e) => Err(e),
            Ok(cmd) if req.validate_only => {
                if broker.metadata().topics.contains_key(&name) {
                    Err((
                        ResponseError::TopicAlreadyExists,
                        format!("topic {name} already exists"),
                    ))
                } else {
                    Ok(cmd)
                }
            }
            Ok(cmd) => broker.propose(cmd.clone(), timeout_ms).await.map(|_| cmd),
        };
        match outcome {
            Ok(MetaCommand::CreateTopic {
                topic_id,
                partitions,
                replication_factor,
                ..
            }) => {
                if !req.validate_only {
                    broker.wait_topic_ready(name.clone(), timeout_ms).await;
                    if version >= 7 {
                        r = r.with_topic_id(topic_id);
                    }
                }
                if version >= 5 {
                    r = r
                        .with_num_partitions(partitions)
                        .with_replication_factor(replication_factor);
                }
            }
            Ok(_) => {}
            Err((code, msg)) => {
                r = r
                    .with_error_code(code.code())
                    .with_error_message(Some(StrBytes::from_string(msg)));
            }
        }
        results.push(r);
    }
    CreateTopicsResponse::default().with_topics(results)
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
