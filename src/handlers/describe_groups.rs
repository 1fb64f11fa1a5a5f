//! DescribeGroups (v0–5): state, protocol and members (with metadata and assignment) of groups.

use super::context::Broker;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, GroupId};
use kafka_protocol::protocol::StrBytes;

/// Handles a DescribeGroups request.
pub async fn handle(broker: &dyn Broker, req: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let names: Vec<String> = req.groups.iter().map(|g| g.to_string()).collect();
    let described = match broker.describe_groups(names.clone()).await {
        Ok(described) => described,
        Err(code) => {
            let failed = names.into_iter().map(|g| {
                DescribedGroup::default()
                    .with_group_id(GroupId(StrBytes::from_string(g)))
                    .with_error_code(code.code())
            });
            return DescribeGroupsResponse::default().with_groups(failed.collect());
        }
    };
    let groups = described
        .into_iter()
        .map(|d| {
            if let Some(code) = d.error {
                return DescribedGroup::default()
                    .with_group_id(GroupId(StrBytes::from_string(d.group)))
                    .with_error_code(code.code());
            }
            DescribedGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(d.group)))
                .with_group_state(StrBytes::from_string(d.state))
                .with_protocol_type(StrBytes::from_string(d.protocol_type))
                .with_protocol_data(StrBytes::from_string(d.protocol))
                .with_members(
                    d.members
                        .into_iter()
                        .map(|m| {
                            DescribedGroupMember::default()
                                .with_member_id(StrBytes::from_string(m.member_id))
                                .with_client_id(StrBytes::from_string(m.client_id))
                                .with_member_metadata(m.metadata)
                                .with_member_assignment(m.assignment)
                        })
                        .collect(),
                )
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}
