//! The controller group's state machine: topics, their ids, partition counts and configs.
//! Rebuilt at start by replaying the controller log (it is small).

mod commands;
mod users;
pub use commands::apply_command;

use crate::security::scram::{Mechanism, ScramCredential};
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
    /// Sets and deletes SCRAM credentials (AlterUserScramCredentials): all applied, or none
    /// when a deletion names a credential that does not exist.
    AlterScram {
        upsert: Vec<(String, Mechanism, ScramCredential)>,
        delete: Vec<(String, Mechanism)>,
    },
    /// The credentials of `sasl.bootstrap.users`: applied only by the first bootstrap of the
    /// cluster (later ones, from any node's restart, are no-ops).
    BootstrapUsers {
        users: Vec<(String, Mechanism, ScramCredential)>,
        /// The cluster's secret for made-up SCRAM salts of unknown users.
        secret: Vec<u8>,
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
        /// (listener name, host, port) per Kafka listener.
        #[serde(default)]
        listeners: Vec<(String, String, i32)>,
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
    /// (host, port) clients are told per listener name; empty in records of nodes from before
    /// listeners (then `host`/`port` are their PLAINTEXT listener).
    #[serde(default)]
    pub listeners: BTreeMap<String, (String, i32)>,
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
    /// SCRAM credentials by user and mechanism (never a password).
    #[serde(default)]
    pub scram: BTreeMap<String, BTreeMap<Mechanism, ScramCredential>>,
    /// Whether `sasl.bootstrap.users` were applied (once per cluster).
    #[serde(default)]
    pub users_bootstrapped: bool,
    /// Keys the made-up salts SCRAM tells about unknown users: the same on every node and
    /// across restarts, so a user's existence does not show in its salt.
    #[serde(default)]
    pub sasl_secret: Vec<u8>,
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
