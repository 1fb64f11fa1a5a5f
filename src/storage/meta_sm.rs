//! The controller group's state machine: topics, their ids, partition counts and configs.
//! Rebuilt at start by replaying the controller log (it is small).

use crate::storage::partition_sm::MetaOnlySnapshot;
use crate::topic_config::TopicOverrides;
use crate::types::meta_error::MetaError;
use crate::types::{Command, CommandResult, Entry, LogId, NodeId, StorageError, TypeConfig};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{BasicNode, EntryPayload, OptionalSend, SnapshotMeta, StoredMembership};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::Arc;
use tokio::sync::watch;

/// A change to cluster metadata, proposed through the controller group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MetaCommand {
    CreateTopic {
        name: String,
        topic_id: uuid::Uuid,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
        /// Replicas given by the client for every partition (checked by the handler; on a
        /// single node, which places nothing, absent).
        #[serde(default)]
        assignment: Option<Vec<Vec<i32>>>,
    },
    DeleteTopic {
        name: String,
    },
    /// Reserve `count` producer ids; the result's `value` is the first.
    AllocateProducerIds {
        count: i64,
    },
    /// Set and remove topic config overrides (already validated); `replace` drops every
    /// override not in `set` first (AlterConfigs).
    AlterTopicConfigs {
        name: String,
        set: BTreeMap<String, String>,
        delete: Vec<String>,
        replace: bool,
    },
    /// Grow a topic to `count` partitions (`assignment`: the new partitions' replicas, given
    /// by the client).
    CreatePartitions {
        name: String,
        count: i32,
        #[serde(default)]
        assignment: Option<Vec<Vec<i32>>>,
    },
    /// Fix the cluster's id and voters (the first one applied wins; later ones are no-ops).
    InitCluster {
        cluster_id: String,
        voters: Vec<i32>,
    },
    /// A node's Kafka address, as clients are to reach it, and its cluster address.
    RegisterBroker {
        node_id: i32,
        host: String,
        port: i32,
        #[serde(default)]
        cluster_addr: String,
    },
    /// In-sync replicas reported by partition leaders: (topic, partition, leader epoch, ISR);
    /// an older epoch never overwrites.
    PartitionIsr {
        isr: Vec<(String, i32, i32, Vec<i32>)>,
    },
    /// Brokers the controller leader stopped (true) or started again (false) hearing from
    /// within `broker.session.timeout.ms`.
    FenceBrokers {
        changes: Vec<(i32, bool)>,
    },
    /// A node added to a running cluster: replicas may be placed on it from now on.
    AddNode {
        node_id: i32,
    },
    /// Partitions whose Raft leader changed: (topic, partition, leader, leader epoch). Kept for
    /// nodes without a replica, which cannot ask the group; an older epoch never overwrites.
    PartitionLeaders {
        leaders: Vec<(String, i32, i32, i32)>,
    },
    /// Move a partition's replicas to `target` (the preferred leader first); `None` cancels a
    /// pending move, which then goes back to the current replicas.
    ReassignPartition {
        topic: String,
        partition: i32,
        target: Option<Vec<i32>>,
    },
    /// Partitions whose Raft groups now have exactly these voters: (topic, partition, replicas).
    ReassignmentsDone {
        done: Vec<(String, i32, Vec<i32>)>,
    },
}

/// What the cluster knows about one topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicMeta {
    pub name: String,
    pub topic_id: uuid::Uuid,
    pub partitions: i32,
    pub replication_factor: i16,
    pub configs: BTreeMap<String, String>,
    /// Replica node ids of each partition, the preferred leader first (empty: a topic from
    /// before placement existed, on this node only).
    #[serde(default)]
    pub replicas: Vec<Vec<i32>>,
    /// Pending reassignments: each partition's target replicas.
    #[serde(default)]
    pub reassigning: BTreeMap<i32, Vec<i32>>,
    /// `configs`, typed: parsed once whenever they change (`TopicMeta::set_configs`).
    #[serde(skip)]
    pub overrides: TopicOverrides,
}

impl TopicMeta {
    /// Re-parses `configs` into `overrides` after they changed. A value refused here can only
    /// come from an entry written before its key was validated: it is dropped (the broker
    /// default applies) and said once, on every node alike.
    fn configs_changed(&mut self) {
        self.overrides = TopicOverrides::parse(&self.configs).unwrap_or_else(|e| {
            tracing::warn!(topic = %self.name, error = %e, "ignoring a stored topic config");
            let valid = self
                .configs
                .iter()
                .filter(|(k, v)| TopicOverrides::parse(&BTreeMap::from([((*k).clone(), (*v).clone())])).is_ok())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            TopicOverrides::parse(&valid).expect("each kept config parses alone")
        });
    }

    /// The replicas of partition `p` (its Raft voters); `local` when the topic predates
    /// placement.
    pub fn replicas_of(&self, p: i32, local: i32) -> Vec<i32> {
        self.replicas.get(p as usize).cloned().unwrap_or_else(|| vec![local])
    }

    /// Every node holding partition `p` now: during a reassignment the target replicas followed
    /// by the ones being removed (Kafka's full replica set), else its replicas.
    pub fn hosts_of(&self, p: i32, local: i32) -> Vec<i32> {
        let current = self.replicas_of(p, local);
        match self.reassigning.get(&p) {
            None => current,
            Some(target) => {
                let mut all = target.clone();
                all.extend(current.into_iter().filter(|id| !target.contains(id)));
                all
            }
        }
    }
}

/// A node as clients reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerAddr {
    pub host: String,
    pub port: i32,
    /// Where its peers reach it (node-to-node transport).
    #[serde(default)]
    pub cluster: String,
}

/// Cluster metadata as applied so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterMeta {
    pub topics: BTreeMap<String, TopicMeta>,
    /// The next producer id never handed out (ids are unique across restarts).
    #[serde(default)]
    pub next_producer_id: i64,
    /// The cluster id every node adopts (empty until the first InitCluster).
    #[serde(default)]
    pub cluster_id: String,
    /// The nodes replicas are placed on: the first controller voters, then nodes added to the
    /// running cluster (which join the controller group as learners).
    #[serde(default)]
    pub voters: Vec<i32>,
    /// Kafka addresses of the nodes that registered.
    #[serde(default)]
    pub brokers: BTreeMap<i32, BrokerAddr>,
    /// Topics placed so far: where the next topic's first leader goes.
    #[serde(default)]
    pub placements: u64,
    /// Last reported (leader, leader epoch) of each partition, by topic.
    #[serde(default)]
    pub leaders: BTreeMap<String, BTreeMap<i32, (i32, i32)>>,
    /// Last reported (leader epoch, in-sync replicas) of each partition, by topic.
    #[serde(default)]
    pub isr: BTreeMap<String, BTreeMap<i32, (i32, Vec<i32>)>>,
    /// Brokers the controller does not hear from: their replicas are offline.
    #[serde(default)]
    pub fenced: std::collections::BTreeSet<i32>,
}

impl ClusterMeta {
    /// The recorded in-sync replicas of a partition, if recorded in leader epoch `epoch`.
    pub fn isr_in(&self, topic: &str, partition: i32, epoch: i32) -> Option<Vec<i32>> {
        self.isr
            .get(topic)
            .and_then(|t| t.get(&partition))
            .filter(|(e, _)| *e == epoch)
            .map(|(_, isr)| isr.clone())
    }
}

/// Replicas for partitions `from..to` of a topic: leaders and followers spread round-robin
/// over the voters, starting where the previous topic's placement ended.
fn place(meta: &mut ClusterMeta, from: i32, to: i32, replication_factor: i16) -> Result<Vec<Vec<i32>>, MetaError> {
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

/// Controller state machine; `view` is what handlers read, `version` ticks on every change.
pub struct MetaSm {
    view: Arc<RwLock<Arc<ClusterMeta>>>,
    version: watch::Sender<u64>,
    /// The last applied entry and membership; shared, so a reopened group carries on from it.
    progress: Arc<parking_lot::Mutex<Applied>>,
}

/// How far a controller state machine got: its last applied entry and membership.
pub type Applied = (Option<LogId>, StoredMembership<NodeId, BasicNode>);

impl MetaSm {
    /// A state machine publishing into `view` and bumping `version`.
    pub fn new(view: Arc<RwLock<Arc<ClusterMeta>>>, version: watch::Sender<u64>) -> MetaSm {
        MetaSm::resume(view, version, (None, StoredMembership::default()))
    }

    /// A state machine that carries on from what `view` already holds: applied up to
    /// `last_applied` with `membership` (the controller's group reopened after it stopped), so
    /// nothing is applied twice.
    pub fn resume(view: Arc<RwLock<Arc<ClusterMeta>>>, version: watch::Sender<u64>, applied: Applied) -> MetaSm {
        MetaSm {
            view,
            version,
            progress: Arc::new(parking_lot::Mutex::new(applied)),
        }
    }

    /// How far this state machine got, kept current as it applies.
    pub fn progress(&self) -> Arc<parking_lot::Mutex<Applied>> {
        self.progress.clone()
    }

    fn applied(&self) -> parking_lot::MutexGuard<'_, Applied> {
        self.progress.lock()
    }
}

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
        } => {
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
        }
        MetaCommand::DeleteTopic { name } => {
            if meta.topics.remove(&name).is_none() {
                return Err(MetaError::UnknownTopic(name));
            }
            meta.leaders.remove(&name);
            meta.isr.remove(&name);
        }
        MetaCommand::PartitionIsr { isr } => {
            for (topic, partition, epoch, replicas) in isr {
                if !meta.topics.contains_key(&topic) {
                    continue;
                }
                let known = meta.isr.entry(topic).or_default();
                if known.get(&partition).is_none_or(|(e, _)| *e <= epoch) {
                    known.insert(partition, (epoch, replicas));
                }
            }
        }
        MetaCommand::FenceBrokers { changes } => {
            for (node, fenced) in changes {
                if fenced {
                    meta.fenced.insert(node);
                } else {
                    meta.fenced.remove(&node);
                }
            }
        }
        MetaCommand::PartitionLeaders { leaders } => {
            for (topic, partition, leader, epoch) in leaders {
                if !meta.topics.contains_key(&topic) {
                    continue;
                }
                let known = meta.leaders.entry(topic).or_default();
                if known.get(&partition).is_none_or(|(_, e)| *e <= epoch) {
                    known.insert(partition, (leader, epoch));
                }
            }
        }
        MetaCommand::AlterTopicConfigs {
            name,
            set,
            delete,
            replace,
        } => {
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
        }
        MetaCommand::CreatePartitions {
            name,
            count,
            assignment,
        } => {
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
        }
        MetaCommand::ReassignPartition {
            topic,
            partition,
            target,
        } => {
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
        }
        MetaCommand::ReassignmentsDone { done } => {
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
        }
        MetaCommand::InitCluster { cluster_id, voters } => {
            if meta.cluster_id.is_empty() {
                meta.cluster_id = cluster_id;
                meta.voters = voters;
            }
        }
        MetaCommand::RegisterBroker {
            node_id,
            host,
            port,
            cluster_addr,
        } => {
            meta.brokers.insert(
                node_id,
                BrokerAddr {
                    host,
                    port,
                    cluster: cluster_addr,
                },
            );
        }
        MetaCommand::AddNode { node_id } => {
            if !meta.voters.contains(&node_id) {
                meta.voters.push(node_id);
            }
        }
        MetaCommand::AllocateProducerIds { count } => {
            if count <= 0 {
                return Err(MetaError::InvalidProducerIdCount(count));
            }
            let first = meta.next_producer_id;
            meta.next_producer_id += count;
            return Ok(first);
        }
    }
    Ok(0)
}

impl RaftStateMachine<TypeConfig> for MetaSm {
    type SnapshotBuilder = MetaOnlySnapshot;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership<NodeId, BasicNode>), StorageError> {
        Ok(self.applied().clone())
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandResult>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut out = Vec::new();
        let mut changed = false;
        for e in entries {
            self.applied().0 = Some(e.log_id);
            let mut res = CommandResult::default();
            match e.payload {
                EntryPayload::Normal(Command::Meta(bytes)) => match serde_json::from_slice::<MetaCommand>(&bytes) {
                    Ok(cmd) => {
                        let mut view = self.view.write();
                        match apply_command(Arc::make_mut(&mut view), cmd) {
                            Ok(value) => {
                                res.value = value;
                                changed = true;
                            }
                            Err(why) => res.error = Some(why),
                        }
                    }
                    Err(e) => res.error = Some(MetaError::Undecodable(e.to_string())),
                },
                EntryPayload::Membership(m) => self.applied().1 = StoredMembership::new(Some(e.log_id), m),
                _ => {}
            }
            out.push(res);
        }
        if changed {
            self.version.send_modify(|v| *v += 1);
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        let (last_applied, membership) = self.applied().clone();
        MetaOnlySnapshot {
            last_applied,
            membership,
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        _snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        *self.applied() = (meta.last_log_id, meta.last_membership.clone());
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests;
