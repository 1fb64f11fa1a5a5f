//! IncrementalAlterConfigs: SET and DELETE of topic config overrides, applied through the
//! controller group and in effect without restart. APPEND/SUBTRACT apply to list configs, of
//! which none is honoured, so they are INVALID_CONFIG.

use super::context::Broker;
use super::describe_configs::TOPIC;
use crate::storage::meta_sm::MetaCommand;
use crate::topic_config::{spec, validate_all};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;

const SET: i8 = 0;
const DELETE: i8 = 1;

/// Proposes `cmd` unless `validate_only`, checking the topic exists either way.
pub async fn apply(broker: &dyn Broker, cmd: MetaCommand, validate_only: bool) -> Result<(), (ResponseError, String)> {
    if let MetaCommand::AlterTopicConfigs { name, .. } = &cmd {
        if !broker.metadata().topics.contains_key(name) {
            return Err((
                ResponseError::UnknownTopicOrPartition,
                format!("topic {name} does not exist"),
            ));
        }
    }
    if validate_only {
        return Ok(());
    }
    broker
        .propose(cmd, broker.config().request_timeout_max_ms)
        .await
        .map(|_| ())
}

/// Handles an IncrementalAlterConfigs request.
pub async fn handle(broker: &dyn Broker, req: IncrementalAlterConfigsRequest) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::new();
    for res in req.resources {
        let r = AlterConfigsResourceResponse::default()
            .with_error_message(None)
            .with_resource_type(res.resource_type)
            .with_resource_name(res.resource_name.clone());
        let outcome = if res.resource_type != TOPIC {
            Err((
                ResponseError::InvalidRequest,
                "only topic configs can be altered; broker configs are static".into(),
            ))
        } else {
            let mut set = BTreeMap::new();
            let mut delete = Vec::new();
            let mut bad = None;
            for c in &res.configs {
                let name = c.name.to_string();
                match c.config_operation {
                    SET => {
                        set.insert(name, c.value.as_ref().map(|v| v.to_string()).unwrap_or_default());
                    }
                    DELETE if spec(&name).is_some() => delete.push(name),
                    DELETE => bad = Some(format!("topic config {name:?} is not supported")),
                    op => {
                        bad = Some(format!(
                            "operation {op} on {name:?}: only SET and DELETE apply to these configs"
                        ))
                    }
                }
            }
            match (bad, validate_all(&set)) {
                (Some(m), _) | (None, Err(m)) => Err((ResponseError::InvalidConfig, m)),
                (None, Ok(set)) => {
                    let cmd = MetaCommand::AlterTopicConfigs {
                        name: res.resource_name.to_string(),
                        set,
                        delete,
                        replace: false,
                    };
                    apply(broker, cmd, req.validate_only).await
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
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
