//! FindCoordinator (v0–3): the group's coordinator is the leader of its `__consumer_offsets`
//! partition, here this node; the offsets topic is created on first use, as Kafka does.
//! Transaction coordinators are not offered.

use super::context::Broker;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

const GROUP_KEY: i8 = 0;

/// Handles a FindCoordinator request.
pub async fn handle(broker: &dyn Broker, req: FindCoordinatorRequest, version: i16) -> FindCoordinatorResponse {
    let outcome = if req.key_type != GROUP_KEY {
        Err(ResponseError::CoordinatorNotAvailable)
    } else {
        broker.find_coordinator(req.key.to_string()).await
    };
    let node = broker.node();
    match outcome {
        Ok(()) => FindCoordinatorResponse::default()
            .with_node_id(BrokerId(node.node_id))
            .with_host(StrBytes::from_string(node.advertised_host.clone()))
            .with_port(node.advertised_port),
        Err(code) => {
            crate::observability::note_error("FindCoordinator", code);
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
