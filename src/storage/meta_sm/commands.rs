//! Applying metadata commands: one function per command, each checking what the command may
//! do against the current metadata (applied on every node from the replicated log, so every
//! refusal is deterministic).

use super::{BrokerAddr, ClusterMeta, MetaCommand, TopicMeta};
use crate::topic_config::TopicOverrides;
use crate::types::meta_error::MetaError;
use std::collections::BTreeMap;

/// Applies one command to `meta`, or says why it cannot be applied. Returns the allocated value
/// for allocations, 0 otherwise.
pub fn apply_command(meta: &mut ClusterMeta, cmd: MetaCommand) -> Result<i64, MetaError> {
    match cmd {
        MetaCommand::CreateTopic {
            name,
            topic_id,
            partitions,
            replication_factor,
            configs,
            assignment,
        } => create_topic(
            meta,
            name,
            topic_id,
            (partitions, replication_factor),
            configs,
            assignment,
        ),
        MetaCommand::DeleteTopic { name } => delete_topic(meta, name),
        MetaCommand::PartitionIsr { isr } => record_isr(meta, isr),
        MetaCommand::FenceBrokers { changes } => fence_brokers(meta, changes),
        MetaCommand::PartitionLeaders { leaders } => record_leaders(meta, leaders),
        MetaCommand::AlterTopicConfigs {
            name,
            set,
            delete,
            replace,
        } => alter_configs(meta, name, set, delete, replace),
        MetaCommand::CreatePartitions {
            name,
            count,
            assignment,
        } => create_partitions(meta, name, count, assignment),
        MetaCommand::ReassignPartition {
            topic,
            partition,
            target,
        } => reassign_partition(meta, topic, partition, target),
        MetaCommand::ReassignmentsDone { done } => reassignments_done(meta, done),
        MetaCommand::InitCluster { cluster_id, voters } => init_cluster(meta, cluster_id, voters),
        MetaCommand::AlterScram { upsert, delete } => super::users::alter_scram(meta, upsert, delete),
        MetaCommand::BootstrapUsers { users, secret } => super::users::bootstrap_users(meta, users, secret),
        MetaCommand::RegisterBroker {
            node_id,
            host,
            port,
            cluster_addr,
            listeners,
        } => {
            let addr = BrokerAddr {
                host,
                port,
                cluster: cluster_addr,
                listeners: listeners.into_iter().map(|(name, h, p)| (name, (h, p))).collect(),
            };
            meta.brokers.insert(node_id, addr);
            Ok(0)
        }
        MetaCommand::AddNode { node_id } => {
            if !meta.voters.contains(&node_id) {
                meta.voters.push(node_id);
            }
            Ok(0)
        }
        MetaCommand::AllocateProducerIds { count } => allocate_producer_ids(meta, count),
    }
}

fn create_topic(
    meta: &mut ClusterMeta,
    name: String,
    topic_id: uuid::Uuid,
    (partitions, replication_factor): (i32, i16),
    configs: BTreeMap<String, String>,
    assignment: Option<Vec<Vec<i32>>>,
) -> Result<i64, MetaError> {
    if meta.topics.contains_key(&name) {
        return Err(MetaError::TopicExists(name));
    }
    let replicas = match assignment {
        Some(given) => assigned(meta, given, partitions, replication_factor)?,
        None => place(meta, 0, partitions, replication_factor)?,
    };
    let mut topic = TopicMeta {
        name: name.clone(),
        topic_id,
        partitions,
        replication_factor,
        configs,
        replicas,
        reassigning: BTreeMap::new(),
        overrides: TopicOverrides::default(),
    };
    topic.configs_changed();
    meta.topics.insert(name, topic);
    Ok(0)
}

fn delete_topic(meta: &mut ClusterMeta, name: String) -> Result<i64, MetaError> {
    if meta.topics.remove(&name).is_none() {
        return Err(MetaError::UnknownTopic(name));
    }
    meta.leaders.remove(&name);
    meta.isr.remove(&name);
    Ok(0)
}

/// Newer in-sync sets (by leader epoch) of partitions of existing topics.
fn record_isr(meta: &mut ClusterMeta, isr: Vec<(String, i32, i32, Vec<i32>)>) -> Result<i64, MetaError> {
    for (topic, partition, epoch, replicas) in isr {
        if !meta.topics.contains_key(&topic) {
            continue;
        }
        let known = meta.isr.entry(topic).or_default();
        if known.get(&partition).is_none_or(|(e, _)| *e <= epoch) {
            known.insert(partition, (epoch, replicas));
        }
    }
    Ok(0)
}

fn fence_brokers(meta: &mut ClusterMeta, changes: Vec<(i32, bool)>) -> Result<i64, MetaError> {
    for (node, fenced) in changes {
        if fenced {
            meta.fenced.insert(node);
        } else {
            meta.fenced.remove(&node);
        }
    }
    Ok(0)
}

/// Newer leaders (by epoch) of partitions of existing topics.
fn record_leaders(meta: &mut ClusterMeta, leaders: Vec<(String, i32, i32, i32)>) -> Result<i64, MetaError> {
    for (topic, partition, leader, epoch) in leaders {
        if !meta.topics.contains_key(&topic) {
            continue;
        }
        let known = meta.leaders.entry(topic).or_default();
        if known.get(&partition).is_none_or(|(_, e)| *e <= epoch) {
            known.insert(partition, (leader, epoch));
        }
    }
    Ok(0)
}

fn alter_configs(
    meta: &mut ClusterMeta,
    name: String,
    set: BTreeMap<String, String>,
    delete: Vec<String>,
    replace: bool,
) -> Result<i64, MetaError> {
    let topic = meta
        .topics
        .get_mut(&name)
        .ok_or_else(|| MetaError::UnknownTopic(name.clone()))?;
    if replace {
        topic.configs.clear();
    }
    for key in delete {
        topic.configs.remove(&key);
    }
    topic.configs.extend(set);
    topic.configs_changed();
    Ok(0)
}

fn create_partitions(
    meta: &mut ClusterMeta,
    name: String,
    count: i32,
    assignment: Option<Vec<Vec<i32>>>,
) -> Result<i64, MetaError> {
    let topic = meta
        .topics
        .get(&name)
        .ok_or_else(|| MetaError::UnknownTopic(name.clone()))?;
    if count <= topic.partitions {
        return Err(MetaError::InvalidPartitions(format!(
            "topic {name} has {} partitions already",
            topic.partitions
        )));
    }
    let (from, rf, placed) = (topic.partitions, topic.replication_factor, !topic.replicas.is_empty());
    let more = match (placed, assignment) {
        (false, _) => Vec::new(),
        (true, Some(given)) => assigned(meta, given, count - from, rf)?,
        (true, None) => place(meta, from, count, rf)?,
    };
    let topic = meta.topics.get_mut(&name).expect("checked above");
    topic.replicas.extend(more);
    topic.partitions = count;
    debug_assert!(topic.replicas.is_empty() || topic.replicas.len() == count as usize);
    Ok(0)
}

/// Starts moving a partition to `target` replicas, or (`None`) cancels a move in progress by
/// moving it back to its current replicas.
fn reassign_partition(
    meta: &mut ClusterMeta,
    topic: String,
    partition: i32,
    target: Option<Vec<i32>>,
) -> Result<i64, MetaError> {
    let known = meta.voters.clone();
    let t = meta
        .topics
        .get_mut(&topic)
        .filter(|t| (0..t.partitions).contains(&partition))
        .ok_or_else(|| MetaError::UnknownPartition {
            topic: topic.clone(),
            partition,
        })?;
    if t.replicas.is_empty() {
        return Err(MetaError::InvalidReplicaAssignment(
            "a single node cannot move partitions".into(),
        ));
    }
    match target {
        Some(target) => {
            check_assignment(&target, &known)?;
            t.reassigning.insert(partition, target);
        }
        None => {
            if !t.reassigning.contains_key(&partition) {
                return Err(MetaError::NoReassignmentInProgress { topic, partition });
            }
            let back = t.replicas_of(partition, -1);
            t.reassigning.insert(partition, back);
        }
    }
    Ok(0)
}

/// Partitions whose Raft groups now have exactly `replicas` as voters.
fn reassignments_done(meta: &mut ClusterMeta, done: Vec<(String, i32, Vec<i32>)>) -> Result<i64, MetaError> {
    for (topic, partition, replicas) in done {
        let Some(t) = meta.topics.get_mut(&topic) else {
            continue;
        };
        let Some(slot) = t.replicas.get_mut(partition as usize) else {
            continue;
        };
        *slot = replicas.clone();
        if t.reassigning.get(&partition) == Some(&replicas) {
            t.reassigning.remove(&partition);
        }
    }
    Ok(0)
}

/// The first cluster id and voters win; later ones (a node that formed alone) change nothing.
fn init_cluster(meta: &mut ClusterMeta, cluster_id: String, voters: Vec<i32>) -> Result<i64, MetaError> {
    if meta.cluster_id.is_empty() {
        meta.cluster_id = cluster_id;
        meta.voters = voters;
    }
    Ok(0)
}

/// Hands out the next `count` producer ids; returns the first.
fn allocate_producer_ids(meta: &mut ClusterMeta, count: i64) -> Result<i64, MetaError> {
    if count <= 0 {
        return Err(MetaError::InvalidProducerIdCount(count));
    }
    let first = meta.next_producer_id;
    meta.next_producer_id += count;
    debug_assert!(meta.next_producer_id > first, "producer ids never repeat");
    Ok(first)
}

/// Replicas for partitions `from..to` of a topic: leaders and followers spread round-robin
/// over the voters, starting where the previous topic's placement ended.
pub(super) fn place(
    meta: &mut ClusterMeta,
    from: i32,
    to: i32,
    replication_factor: i16,
) -> Result<Vec<Vec<i32>>, MetaError> {
    if meta.voters.is_empty() {
        return Ok(Vec::new());
    }
    let n = meta.voters.len();
    if replication_factor < 1 || replication_factor as usize > n {
        return Err(MetaError::InvalidReplicationFactor {
            asked: replication_factor,
            nodes: n,
        });
    }
    let start = meta.placements as usize;
    meta.placements += 1;
    Ok((from..to)
        .map(|p| {
            (0..replication_factor as usize)
                .map(|i| meta.voters[(start + p as usize + i) % n])
                .collect()
        })
        .collect())
}

/// Replicas a client gave for `partitions` partitions of `replication_factor` replicas each,
/// checked again here (the cluster may have changed since the handler looked); a single node
/// places nothing.
fn assigned(
    meta: &ClusterMeta,
    given: Vec<Vec<i32>>,
    partitions: i32,
    replication_factor: i16,
) -> Result<Vec<Vec<i32>>, MetaError> {
    if meta.voters.is_empty() {
        return Ok(Vec::new());
    }
    if given.len() != partitions as usize || given.iter().any(|r| r.len() != replication_factor as usize) {
        return Err(MetaError::InvalidReplicaAssignment(
            "it does not match the partitions asked for".into(),
        ));
    }
    for replicas in &given {
        check_assignment(replicas, &meta.voters)?;
    }
    Ok(given)
}

/// Checks a reassignment target: some replicas, each a node of the cluster, none twice.
fn check_assignment(target: &[i32], nodes: &[i32]) -> Result<(), MetaError> {
    if target.is_empty() {
        return Err(MetaError::InvalidReplicaAssignment("no replicas".into()));
    }
    if let Some(id) = target.iter().find(|id| !nodes.contains(id)) {
        return Err(MetaError::InvalidReplicaAssignment(format!(
            "node {id} is not in the cluster"
        )));
    }
    let mut seen = target.to_vec();
    seen.sort_unstable();
    seen.dedup();
    if seen.len() != target.len() {
        return Err(MetaError::InvalidReplicaAssignment("a node is listed twice".into()));
    }
    Ok(())
}
