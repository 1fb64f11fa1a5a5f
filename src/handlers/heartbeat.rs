//! Heartbeat (v0–4): keeps a member's session alive and tells it when to rejoin.

use super::context::{Broker, HeartbeatArgs};
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

/// Handles a Heartbeat request.
pub async fn handle(broker: &dyn Broker, req: HeartbeatRequest) -> HeartbeatResponse {
    let args = HeartbeatArgs {
        group: req.group_id.to_string(),
        generation: req.generation_id,
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.as_ref().map(|i| i.to_string()),
    };
    match broker.heartbeat(args).await {
        Ok(()) => HeartbeatResponse::default(),
        Err(code) => HeartbeatResponse::default().with_error_code(code.code()),
    }
}
