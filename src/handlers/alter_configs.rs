//! AlterConfigs (the legacy whole-set form): replaces a topic's overrides with the given set.
//! Broker configs are static here and refused.

use super::context::Broker;
use super::describe_configs::TOPIC;
use crate::storage::meta_sm::MetaCommand;
use crate::topic_config::validate_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;

/// Handles an AlterConfigs request.
pub async fn handle(broker: &dyn Broker, req: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut responses = Vec::new();
    for res in req.resources {
        let r = AlterConfigsResourceResponse::default()
            .with_error_message(None)
            .with_resource_type(res.resource_type)
            .with_resource_name(res.resource_name.clone());
        let configs: BTreeMap<String, String> = res
            .configs
            .iter()
            .filter_map(|c| c.value.as_ref().map(|v| (c.name.to_string(), v.to_string())))
            .collect();
        let outcome = if res.resource_type != TOPIC {
            Err((
                ResponseError::InvalidRequest,
                "only topic configs can be altered; broker configs are static".into(),
            ))
        } else {
            match validate_all(&configs) {
                Err(m) => Err((ResponseError::InvalidConfig, m)),
                Ok(set) => {
                    let cmd = MetaCommand::AlterTopicConfigs {
                        name: res.resource_name.to_string(),
                        set,
                        delete: vec![],
                        replace: true,
                    };
                    super::incremental_alter_configs::apply(broker, cmd, req.validate_only).await
                }
            }
        };
        responses.push(match outcome {
            Ok(()) => r,
            Err((code, msg)) => r
                .with_error_code(code.code())
                .with_error_message(Some(StrBytes::from_string(msg))),
        });
    }
    AlterConfigsResponse::default().with_responses(responses)
}
