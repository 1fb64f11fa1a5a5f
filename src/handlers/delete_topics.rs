//! DeleteTopics: by name (all versions) or by topic id (v6+), through the controller.

use super::context::Broker;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

/// Handles a DeleteTopics request.
pub async fn handle(broker: &dyn Broker, req: DeleteTopicsRequest, version: i16) -> DeleteTopicsResponse {
    let timeout_ms = (req.timeout_ms.max(0) as u64).min(broker.config().request_timeout_max_ms);
    let targets: Vec<(Option<String>, uuid::Uuid)> = if version >= 6 {
        req.topics
            .into_iter()
            .map(|t| (t.name.map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        req.topic_names
            .into_iter()
            .map(|n| (Some(n.0.to_string()), uuid::Uuid::nil()))
            .collect()
    };
    let mut results = Vec::new();
    for (name, id) in targets {
        let meta = broker.metadata();
        let found = match &name {
            Some(n) => meta.topics.get(n),
            None => meta.topics.values().find(|t| t.topic_id == id),
        };
        // topic_id exists from v6, error_message from v5.
        let mut r = DeletableTopicResult::default();
        if version >= 6 {
            r = r.with_topic_id(id);
        }
        if let Some(n) = &name {
            r = r.with_name(Some(TopicName(StrBytes::from_string(n.clone()))));
        }
        let Some(topic) = found else {
            let code = if name.is_none() {
                ResponseError::UnknownTopicId
            } else {
                ResponseError::UnknownTopicOrPartition
            };
            results.push(r.with_error_code(code.code()));
            continue;
        };
        let topic_name = topic.name.clone();
        if topic_name == crate::storage::offsets::OFFSETS_TOPIC {
            // Deleting it would drop every group's committed offsets.
            results.push(r.with_error_code(ResponseError::InvalidRequest.code()));
            continue;
        }
        r = r.with_name(Some(TopicName(StrBytes::from_string(topic_name.clone()))));
        if version >= 6 {
            r = r.with_topic_id(topic.topic_id);
        }
        let cmd = crate::storage::meta_sm::MetaCommand::DeleteTopic { name: topic_name };
        if let Err((code, msg)) = broker.propose(cmd, timeout_ms).await {
            r = r.with_error_code(code.code());
            if version >= 5 {
                r = r.with_error_message(Some(StrBytes::from_string(msg)));
            }
        }
        results.push(r);
    }
    DeleteTopicsResponse::default().with_responses(results)
}
