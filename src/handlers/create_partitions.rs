//! CreatePartitions: grows a topic, with replicas placed as for a new topic or given by the
//! client (Kafka's checks and messages); the new partitions start like any other (the
//! supervisor follows metadata) and the request waits, within its timeout, for their leaders.

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
        let meta = broker.metadata();
        let current = meta.topics.get(&name).map(|m| m.partitions);
        // The controller checks the same count (the topic's replication factor).
        let rf = meta.topics.get(&name).map(|m| m.replication_factor.max(0) as usize);
        let given: Option<Vec<Vec<i32>>> = t
            .assignments
            .as_ref()
            .map(|a| a.iter().map(|p| p.broker_ids.iter().map(|b| b.0).collect()).collect());
        let refused = given.as_deref().and_then(|g| check_given(broker, g, rf).err());
        let outcome = match current {
            None => Err((
                ResponseError::UnknownTopicOrPartition,
                format!("topic {name} does not exist"),
            )),
            Some(n) if t.count == n => Err((
                ResponseError::InvalidPartitions,
                format!("Topic already has {n} partition(s)."),
            )),
            Some(n) if t.count < n => Err((
                ResponseError::InvalidPartitions,
                format!(
                    "The topic {name} currently has {n} partition(s); {} would not be an increase.",
                    t.count
                ),
            )),
            Some(n) if given.as_ref().is_some_and(|g| g.len() as i32 != t.count - n) => Err((
                ResponseError::InvalidReplicaAssignment,
                format!(
                    "Attempted to add {} additional partition(s), but only {} assignment(s) were specified.",
                    t.count - n,
                    given.as_ref().map_or(0, Vec::len)
                ),
            )),
            Some(_) if refused.is_some() => Err(refused.expect("just checked")),
            Some(_) if t.count > 100_000 => {
                Err((ResponseError::InvalidPartitions, "more than 100000 partitions".into()))
            }
            Some(_) if req.validate_only => Ok(()),
            Some(_) => match broker
                .propose(
                    MetaCommand::CreatePartitions {
                        name: name.clone(),
                        count: t.count,
                        // A single node places nothing.
                        assignment: given.filter(|_| !meta.voters.is_empty()),
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

/// Checks the replicas given for the new partitions (each as long as the topic's replication
/// factor).
fn check_given(broker: &dyn Broker, given: &[Vec<i32>], rf: Option<usize>) -> Result<(), (ResponseError, String)> {
    let nodes = super::topic_validation::assignable_nodes(&broker.metadata(), broker.node().node_id);
    super::topic_validation::check_replica_lists(given, rf, &nodes)
}
