//! CreatePartitions: grows a topic, with replicas placed as for a new topic or given by the
//! client (Kafka's checks and messages); the new partitions start like any other (the
//! supervisor follows metadata) and the request waits, within its timeout, for their leaders.

use super::context::Broker;
use crate::storage::meta_sm::MetaCommand;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;

/// A refusal: a Kafka error and its message.
type Refused = (ResponseError, String);

/// Handles a CreatePartitions request.
pub async fn handle(broker: &dyn Broker, req: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let timeout_ms = (req.timeout_ms.max(0) as u64).min(broker.config().request_timeout_max_ms);
    let mut results = Vec::new();
    for t in req.topics {
        let r = CreatePartitionsTopicResult::default().with_name(t.name.clone());
        let outcome = grow(broker, &t, req.validate_only, timeout_ms).await;
        results.push(match outcome {
            Ok(()) => r,
            Err((code, msg)) => r
                .with_error_code(code.code())
                .with_error_message(Some(StrBytes::from_string(msg))),
        });
    }
    CreatePartitionsResponse::default().with_results(results)
}

/// Checks one topic's growth and, unless only validating, has the controller apply it and
/// waits for the new partitions' leaders.
async fn grow(
    broker: &dyn Broker,
    t: &CreatePartitionsTopic,
    validate_only: bool,
    timeout_ms: u64,
) -> Result<(), Refused> {
    let name = t.name.0.to_string();
    let meta = broker.metadata();
    let given: Option<Vec<Vec<i32>>> = t
        .assignments
        .as_ref()
        .map(|a| a.iter().map(|p| p.broker_ids.iter().map(|b| b.0).collect()).collect());
    check_growth(broker, &name, t.count, given.as_deref())?;
    if validate_only {
        return Ok(());
    }
    let command = MetaCommand::CreatePartitions {
        name: name.clone(),
        count: t.count,
        // A single node places nothing.
        assignment: given.filter(|_| !meta.voters.is_empty()),
    };
    broker.propose(command, timeout_ms).await?;
    broker.wait_topic_ready(name, timeout_ms).await;
    Ok(())
}

/// Kafka's checks of a new partition count and of the replicas given for the new partitions.
fn check_growth(broker: &dyn Broker, name: &str, count: i32, given: Option<&[Vec<i32>]>) -> Result<(), Refused> {
    let meta = broker.metadata();
    let Some(topic) = meta.topics.get(name) else {
        return Err((
            ResponseError::UnknownTopicOrPartition,
            format!("topic {name} does not exist"),
        ));
    };
    let n = topic.partitions;
    if count == n {
        return Err((
            ResponseError::InvalidPartitions,
            format!("Topic already has {n} partition(s)."),
        ));
    }
    if count < n {
        let why = format!("The topic {name} currently has {n} partition(s); {count} would not be an increase.");
        return Err((ResponseError::InvalidPartitions, why));
    }
    if let Some(g) = given.filter(|g| g.len() as i32 != count - n) {
        let why = format!(
            "Attempted to add {} additional partition(s), but only {} assignment(s) were specified.",
            count - n,
            g.len()
        );
        return Err((ResponseError::InvalidReplicaAssignment, why));
    }
    // The controller checks the same count (the topic's replication factor).
    let rf = Some(topic.replication_factor.max(0) as usize);
    if let Some(g) = given {
        check_given(broker, g, rf)?;
    }
    if count > 100_000 {
        return Err((ResponseError::InvalidPartitions, "more than 100000 partitions".into()));
    }
    Ok(())
}

/// Checks the replicas given for the new partitions (each as long as the topic's replication
/// factor).
fn check_given(broker: &dyn Broker, given: &[Vec<i32>], rf: Option<usize>) -> Result<(), Refused> {
    let nodes = super::topic_validation::assignable_nodes(&broker.metadata(), broker.node().node_id);
    super::topic_validation::check_replica_lists(given, rf, &nodes)
}
