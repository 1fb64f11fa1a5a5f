//! CreatePartitions: grows a topic; the new partitions start like any other (the supervisor
//! follows metadata) and the request waits, within its timeout, for their leaders.

use super::context::Broker;
use crate::storage::meta_sm::MetaCommand;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;

/// Handles a CreatePartitions request.
pub async fn handle(broker: &dyn Broker, req: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let timeout_ms = (req.timeout_ms.max(0) as u64).min(broker.config().request_timeout_max_ms);
    let mut results = Vec::new();
    for t in req.topics {
        let name = t.name.0.to_string();
        let r = CreatePartitionsTopicResult::default().with_name(t.name.clone());
        let current = broker.metadata().topics.get(&name).map(|m| m.partitions);
        let outcome = match current {
            None => Err((
                ResponseError::UnknownTopicOrPartition,
                format!("topic {name} does not exist"),
            )),
            Some(_) if t.assignments.is_some() => Err((
                ResponseError::InvalidReplicaAssignment,
                "manual replica assignment is not supported".to_string(),
            )),
            Some(n) if t.count <= n => Err((
                ResponseError::InvalidPartitions,
                format!("topic {name} has {n} partitions; asked for {}", t.count),
            )),
            Some(_) if t.count > 100_000 => {
                Err((ResponseError::InvalidPartitions, "more than 100000 partitions".into()))
            }
            Some(_) if req.validate_only => Ok(()),
            Some(_) => match broker
                .propose(
                    MetaCommand::CreatePartitions {
                        name: name.clone(),
                        count: t.count,
                    },
                    timeout_ms,
                )
                .await
            {
                Ok(_) => {
                    broker.wait_topic_ready(name, timeout_ms).await;
                    Ok(())
                }
                Err(e) => Err(e),
            },
        };
        results.push(match outcome {
            Ok(()) => r,
            Err((code, msg)) => r
                .with_error_code(code.code())
                .with_error_message(Some(StrBytes::from_string(msg))),
        });
    }
    CreatePartitionsResponse::default().with_results(results)
}
