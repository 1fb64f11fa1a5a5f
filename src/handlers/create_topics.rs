//! CreateTopics: validates each topic, proposes it through the controller, and waits (within
//! the request's timeout) for its partitions to have leaders.

use super::context::Broker;
use super::topic_validation;
use kafka_protocol::error::ResponseError;
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
        if !t.assignments.is_empty() {
            results.push(
                r.with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(StrBytes::from_static_str(
                        "manual replica assignment is not supported",
                    ))),
            );
            continue;
        }
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
        let outcome = match topic_validation::create_command(&name, partitions, rf, configs, nodes) {
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
            Ok(crate::storage::meta_sm::MetaCommand::CreateTopic {
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
