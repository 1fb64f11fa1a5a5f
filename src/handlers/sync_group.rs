//! SyncGroup (v0–5): the leader hands in every member's assignment; each member gets its own.

use super::context::{Broker, SyncArgs};
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};

/// Handles a SyncGroup request.
pub async fn handle(broker: &dyn Broker, req: SyncGroupRequest, version: i16) -> SyncGroupResponse {
    let args = SyncArgs {
        group: req.group_id.to_string(),
        generation: req.generation_id,
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.as_ref().map(|i| i.to_string()),
        assignments: req
            .assignments
            .iter()
            .map(|a| (a.member_id.to_string(), a.assignment.clone()))
            .collect(),
    };
    match broker.sync_group(args).await {
        Ok(assignment) => {
            let resp = SyncGroupResponse::default().with_assignment(assignment);
            // protocol_type and protocol_name exist from v5.
            if version >= 5 {
                resp.with_protocol_type(req.protocol_type)
                    .with_protocol_name(req.protocol_name)
            } else {
                resp
            }
        }
        Err(code) => {
            crate::observability::note_error("SyncGroup", code);
            SyncGroupResponse::default().with_error_code(code.code())
        }
    }
}
