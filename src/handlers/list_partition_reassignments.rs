//! ListPartitionReassignments: the pending reassignments recorded in the controller, each with
//! its full replica set and the replicas being added and removed.

use super::context::Broker;
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse};
use std::collections::BTreeMap;

fn ids(v: impl IntoIterator<Item = i32>) -> Vec<BrokerId> {
    v.into_iter().map(BrokerId).collect()
}

/// Handles a ListPartitionReassignments request (null topics: every pending reassignment).
pub async fn handle(broker: &dyn Broker, req: ListPartitionReassignmentsRequest) -> ListPartitionReassignmentsResponse {
    let meta = broker.metadata();
    let local = broker.node().node_id;
    let asked: Option<BTreeMap<String, Vec<i32>>> = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    let mut topics = Vec::new();
    for (name, tm) in &meta.topics {
        let wanted = match &asked {
            None => None,
            Some(a) => match a.get(name) {
                None => continue,
                Some(ps) => Some(ps),
            },
        };
        let mut partitions = Vec::new();
        for (p, target) in &tm.reassigning {
            if wanted.is_some_and(|ps| !ps.contains(p)) {
                continue;
            }
            let current = tm.replicas_of(*p, local);
            partitions.push(
                OngoingPartitionReassignment::default()
                    .with_partition_index(*p)
                    .with_replicas(ids(tm.hosts_of(*p, local)))
                    .with_adding_replicas(ids(target.iter().copied().filter(|id| !current.contains(id))))
                    .with_removing_replicas(ids(current.iter().copied().filter(|id| !target.contains(id)))),
            );
        }
        if !partitions.is_empty() {
            topics.push(
                OngoingTopicReassignment::default()
                    .with_name(kafka_protocol::messages::TopicName(name.clone().into()))
                    .with_partitions(partitions),
            );
        }
    }
    ListPartitionReassignmentsResponse::default()
        .with_error_message(None)
        .with_topics(topics)
}
