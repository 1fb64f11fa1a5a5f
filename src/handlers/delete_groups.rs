//! DeleteGroups (v0–2): an empty group's committed offsets are deleted (tombstones in its
//! offsets partition); a group with members gets NON_EMPTY_GROUP.

use super::context::Broker;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

/// Handles a DeleteGroups request.
pub async fn handle(broker: &dyn Broker, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let names: Vec<String> = req.groups_names.iter().map(|g| g.to_string()).collect();
    let results = match broker.delete_groups(names.clone()).await {
        Ok(each) => each,
        Err(code) => names.iter().map(|_| Err(code)).collect(),
    };
    let results = req
        .groups_names
        .into_iter()
        .zip(results)
        .map(|(g, r)| {
            let out = DeletableGroupResult::default().with_group_id(g);
            match r {
                Ok(()) => out,
                Err(code) => out.with_error_code(code.code()),
            }
        })
        .collect();
    DeleteGroupsResponse::default().with_results(results)
}
