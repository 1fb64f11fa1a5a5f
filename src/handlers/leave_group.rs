//! LeaveGroup (v0–4): one member (v0–2) or a batch of members (v3+) leave; the group rebalances.

use super::context::Broker;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

/// Handles a LeaveGroup request.
pub async fn handle(broker: &dyn Broker, req: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
    // v3+: a static member may leave by its group.instance.id alone (member id "").
    let ids: Vec<(String, Option<String>)> = if version >= 3 {
        req.members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|i| i.to_string()),
                )
            })
            .collect()
    } else {
        vec![(req.member_id.to_string(), None)]
    };
    let results = match broker.leave_group(req.group_id.to_string(), ids.clone()).await {
        Ok(each) => each,
        Err(code) => ids.iter().map(|_| Err(code)).collect(),
    };
    if version < 3 {
        return match results.first() {
            Some(Err(code)) => LeaveGroupResponse::default().with_error_code(code.code()),
            _ => LeaveGroupResponse::default(),
        };
    }
    let members = req
        .members
        .iter()
        .zip(results)
        .map(|(m, r)| {
            let out = MemberResponse::default()
                .with_member_id(m.member_id.clone())
                .with_group_instance_id(m.group_instance_id.clone());
            match r {
                Ok(()) => out,
                Err(code) => out.with_error_code(code.code()),
            }
        })
        .collect();
    LeaveGroupResponse::default().with_members(members)
}
