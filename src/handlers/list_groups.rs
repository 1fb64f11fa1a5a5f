//! ListGroups (v0–4): every group with members or committed offsets, with its state from v4
//! (and the v4 state filter).

use super::context::Broker;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;

/// Handles a ListGroups request.
pub async fn handle(broker: &dyn Broker, req: ListGroupsRequest, version: i16) -> ListGroupsResponse {
    let listed = match broker.list_groups().await {
        Ok(listed) => listed,
        Err(code) => return ListGroupsResponse::default().with_error_code(code.code()),
    };
    let groups = listed
        .into_iter()
        .filter(|(_, _, state)| {
            req.states_filter.is_empty() || req.states_filter.iter().any(|s| s.eq_ignore_ascii_case(state))
        })
        .map(|(group, protocol_type, state)| {
            let g = ListedGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(group)))
                .with_protocol_type(StrBytes::from_string(protocol_type));
            // group_state exists from v4.
            if version >= 4 {
                g.with_group_state(StrBytes::from_string(state))
            } else {
                g
            }
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
