//! FindCoordinator (v0–4; v4 batches keys): the group's coordinator is the leader of its
//! `__consumer_offsets` partition (on any node); the offsets topic is created on first use, as
//! Kafka does.
//! Transaction coordinators are not offered.

use super::context::Broker;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

const GROUP_KEY: i8 = 0;

/// Handles a FindCoordinator request.
pub async fn handle(broker: &dyn Broker, req: FindCoordinatorRequest, version: i16) -> FindCoordinatorResponse {
    if version >= 4 {
        let mut coordinators = Vec::new();
        for key in &req.coordinator_keys {
            let outcome = find(broker, req.key_type, key.to_string()).await;
            let c = Coordinator::default().with_key(key.clone());
            coordinators.push(match outcome {
                Ok((id, host, port)) => c
                    .with_node_id(BrokerId(id))
                    .with_host(StrBytes::from_string(host))
                    .with_port(port),
                Err(code) => c
                    .with_error_code(code.code())
                    .with_error_message(Some(StrBytes::from_string(format!("{code:?}"))))
                    .with_node_id(BrokerId(-1))
                    .with_port(-1),
            });
        }
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let outcome = find(broker, req.key_type, req.key.to_string()).await;
    match outcome {
        Ok((id, host, port)) => FindCoordinatorResponse::default()
            .with_node_id(BrokerId(id))
            .with_host(StrBytes::from_string(host))
            .with_port(port),
        Err(code) => {
            let r = FindCoordinatorResponse::default()
                .with_error_code(code.code())
                .with_node_id(BrokerId(-1))
                .with_port(-1);
            // error_message exists from v1.
            if version >= 1 {
                r.with_error_message(Some(StrBytes::from_string(format!("{code:?}"))))
            } else {
                r
            }
        }
    }
}

/// The coordinator's (node id, host, port).
async fn find(broker: &dyn Broker, key_type: i8, key: String) -> Result<(i32, String, i32), ResponseError> {
    let outcome = if key_type != GROUP_KEY {
        Err(ResponseError::CoordinatorNotAvailable)
    } else {
        broker.find_coordinator(key).await.and_then(|id| {
            let node = broker.node();
            if id == node.node_id {
                return Ok((id, node.advertised_host.clone(), node.advertised_port));
            }
            let meta = broker.metadata();
            let b = meta.brokers.get(&id).ok_or(ResponseError::CoordinatorNotAvailable)?;
            Ok((id, b.host.clone(), b.port))
        })
    };
    if let Err(code) = outcome {
        crate::observability::note_error("FindCoordinator", code);
    }
    outcome
}
