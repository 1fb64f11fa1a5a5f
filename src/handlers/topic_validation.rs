//! Topic-name and creation-argument checks shared by CreateTopics and auto-creation.

use crate::storage::meta_sm::MetaCommand;
use kafka_protocol::error::ResponseError;
use std::collections::BTreeMap;

/// Longest topic name Kafka allows.
pub const MAX_TOPIC_NAME_CHARS: usize = 249;

/// Checks a topic name the way Kafka does.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(format!("topic name {name:?} is not allowed"));
    }
    if name.len() > MAX_TOPIC_NAME_CHARS {
        return Err(format!("topic name is longer than {MAX_TOPIC_NAME_CHARS} characters"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "topic name {name:?} contains {c:?}; use ASCII letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// Nodes replicas can be placed on (a single node: 1).
pub fn cluster_nodes(meta: &crate::storage::meta_sm::ClusterMeta) -> i16 {
    meta.voters.len().clamp(1, i16::MAX as usize) as i16
}

/// Builds a create command after checking every argument; `live_brokers` bounds the
/// replication factor; `assignment` is the client's manual one, if any (already checked by
/// `check_replica_lists`).
pub fn create_command(
    name: &str,
    partitions: i32,
    replication_factor: i16,
    configs: BTreeMap<String, String>,
    live_brokers: i16,
    assignment: Option<Vec<Vec<i32>>>,
) -> Result<MetaCommand, (ResponseError, String)> {
    check_name(name).map_err(|m| (ResponseError::InvalidTopicException, m))?;
    if partitions < 1 {
        return Err((
            ResponseError::InvalidPartitions,
            format!("{partitions} partitions: must be at least 1"),
        ));
    }
    if partitions > 100_000 {
        return Err((
            ResponseError::InvalidPartitions,
            format!("{partitions} partitions is more than 100000"),
        ));
    }
    if replication_factor < 1 {
        return Err((
            ResponseError::InvalidReplicationFactor,
            format!("replication factor {replication_factor} must be at least 1"),
        ));
    }
    if replication_factor > live_brokers {
        return Err((
            ResponseError::InvalidReplicationFactor,
            format!("replication factor {replication_factor} is larger than the {live_brokers} live broker(s)"),
        ));
    }
    let configs = crate::topic_config::validate_all(&configs).map_err(|m| (ResponseError::InvalidConfig, m))?;
    Ok(MetaCommand::CreateTopic {
        name: name.to_string(),
        topic_id: uuid::Uuid::new_v4(),
        partitions,
        replication_factor,
        configs,
        assignment,
    })
}

/// Nodes a client may name in a replica assignment: the cluster's nodes, or this one.
pub fn assignable_nodes(meta: &crate::storage::meta_sm::ClusterMeta, me: i32) -> Vec<i32> {
    match meta.voters.is_empty() {
        true => vec![me],
        false => meta.voters.clone(),
    }
}

/// Checks replica lists a client gave (CreateTopics, CreatePartitions) as Kafka does: each
/// non-empty, of known nodes, none twice, all as long as `replication_factor` (or as the
/// first list). Messages are Kafka's.
pub fn check_replica_lists(
    lists: &[Vec<i32>],
    replication_factor: Option<usize>,
    nodes: &[i32],
) -> Result<(), (ResponseError, String)> {
    let bad = |m: String| Err((ResponseError::InvalidReplicaAssignment, m));
    let want = replication_factor.or(lists.first().map(Vec::len));
    for replicas in lists {
        if replicas.is_empty() {
            return bad("The manual partition assignment includes an empty replica list.".into());
        }
        let mut sorted = replicas.clone();
        sorted.sort_unstable();
        for (j, id) in sorted.iter().enumerate() {
            if !nodes.contains(id) {
                return bad(format!(
                    "The manual partition assignment includes broker {id}, but no such broker is registered."
                ));
            }
            if j > 0 && sorted[j - 1] == *id {
                return bad(format!(
                    "The manual partition assignment includes the broker {id} more than once."
                ));
            }
        }
        if want.is_some_and(|n| n != replicas.len()) {
            return bad(format!(
                "The manual partition assignment includes a partition with {} replica(s), but this is not \
                 consistent with previous partitions, which have {} replica(s).",
                replicas.len(),
                want.unwrap_or_default(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_arguments() {
        assert!(check_name("orders.v1_x-2").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a/b").is_err());
        assert!(check_name(&"x".repeat(250)).is_err());
        assert_eq!(
            create_command("t", 1, 3, BTreeMap::new(), 1, None).unwrap_err().0,
            ResponseError::InvalidReplicationFactor
        );
        assert_eq!(
            create_command("t", 0, 1, BTreeMap::new(), 1, None).unwrap_err().0,
            ResponseError::InvalidPartitions
        );
        assert!(create_command("t", 2, 1, BTreeMap::new(), 1, None).is_ok());
    }

    #[test]
    fn replica_lists_are_checked_as_kafka_does() {
        let nodes = [1, 2, 3];
        assert!(check_replica_lists(&[vec![1, 2], vec![2, 3]], None, &nodes).is_ok());
        let code = |lists: &[Vec<i32>], rf| check_replica_lists(lists, rf, &nodes).unwrap_err().0;
        assert_eq!(code(&[vec![]], None), ResponseError::InvalidReplicaAssignment);
        assert_eq!(code(&[vec![1, 4]], None), ResponseError::InvalidReplicaAssignment);
        assert_eq!(code(&[vec![2, 2]], None), ResponseError::InvalidReplicaAssignment);
        assert_eq!(
            code(&[vec![1, 2], vec![3]], None),
            ResponseError::InvalidReplicaAssignment
        );
        assert_eq!(code(&[vec![1]], Some(2)), ResponseError::InvalidReplicaAssignment);
    }
}
