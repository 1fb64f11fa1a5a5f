//! Where connections find running partitions. The partition supervisor owns it: it publishes
//! a partition's handle once the partition recovered and removes it when it stops or crashes.

use crate::actors::partition::actor::PartitionMsg;
use crate::cluster::network::Peers;
use crate::storage::log::PartitionLog;
use crate::storage::partition_sm::PartitionShared;
use crate::types::TopicPartition;
use crate::types::{NodeId, Raft};
use parking_lot::RwLock;
use ractor::ActorRef;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};

/// A running partition.
pub struct PartitionHandle {
    pub actor: ActorRef<PartitionMsg>,
    pub raft: Raft,
    pub log: Arc<PartitionLog>,
    pub shared: Arc<PartitionShared>,
    /// Bounds produce requests waiting on this partition.
    pub produce_permits: Arc<Semaphore>,
    pub node_id: NodeId,
    /// The node's peers (`None` on a single node): whose liveness fences its leadership.
    pub peers: Option<Arc<Peers>>,
}

impl PartitionHandle {
    /// (leader node id, Raft term) as the Raft group reports them now.
    pub fn leadership(&self) -> (Option<NodeId>, u64) {
        let m = self.raft.metrics();
        let m = m.borrow();
        let liveness = self.peers.as_ref().map(|p| &p.liveness);
        let confirmed = self.shared.confirmed_stalls();
        (crate::cluster::acting_leader(&m, liveness, confirmed), m.current_term)
    }

    /// When this node leads: its in-sync replicas (itself included) — followers heard from
    /// within `lag` that hold every entry the leader holds, or did within that time.
    pub fn in_sync(&self, peers: Option<&Peers>, lag: Duration) -> Option<Vec<i32>> {
        in_sync(&self.raft, &self.shared, self.node_id, peers, lag)
    }
}

/// The in-sync replicas of a group this node leads (see `PartitionHandle::in_sync`).
pub fn in_sync(
    raft: &Raft,
    shared: &PartitionShared,
    node_id: NodeId,
    peers: Option<&Peers>,
    lag: Duration,
) -> Option<Vec<i32>> {
    let m = raft.metrics();
    let m = m.borrow();
    if crate::cluster::acting_leader(&m, peers.map(|p| &p.liveness), shared.confirmed_stalls()) != Some(node_id) {
        return None;
    }
    let caught_up = shared.caught_up.lock();
    let mut ids = vec![node_id as i32];
    for (id, matched) in m.replication.iter().flatten() {
        let alive = peers.is_none_or(|p| p.heard_within(*id, lag));
        let current = matched.map(|l| l.index) >= m.last_log_index;
        let recent = caught_up.get(id).is_some_and(|at| at.elapsed() <= lag);
        if *id != node_id && alive && (current || recent) {
            ids.push(*id as i32);
        }
    }
    ids.sort_unstable();
    Some(ids)
}

/// All partitions running on this node.
pub struct Registry {
    map: RwLock<HashMap<TopicPartition, Arc<PartitionHandle>>>,
    /// Bumped whenever a partition registers, leaves or changes leader.
    pub changed: watch::Sender<u64>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            map: RwLock::new(HashMap::new()),
            changed: watch::channel(0).0,
        }
    }
}

impl Registry {
    /// The running partition `tp`, if any.
    pub fn get(&self, tp: &TopicPartition) -> Option<Arc<PartitionHandle>> {
        self.map.read().get(tp).cloned()
    }

    /// Registers a partition that finished recovery.
    pub fn insert(&self, tp: TopicPartition, handle: Arc<PartitionHandle>) {
        self.map.write().insert(tp, handle);
        self.bump();
    }

    /// Unregisters `tp`, returning its handle.
    pub fn remove(&self, tp: &TopicPartition) -> Option<Arc<PartitionHandle>> {
        let h = self.map.write().remove(tp);
        self.bump();
        h
    }

    /// Every registered partition.
    pub fn all(&self) -> Vec<(TopicPartition, Arc<PartitionHandle>)> {
        self.map.read().iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Tells waiters that something changed.
    pub fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }
}

/// Trims the tail cache of every partition not appended to for `idle` back to its plain limit,
/// every `idle` (a busy partition may hold more: `TailCache`), until the task is aborted.
pub fn spawn_tail_trimmer(registry: Arc<Registry>, idle: Duration) -> tokio::task::JoinHandle<()> {
    crate::tasks::spawn_essential("tail-trimmer", async move {
        loop {
            tokio::time::sleep(idle).await;
            for (_, handle) in registry.all() {
                handle.log.trim_idle_tail(idle);
            }
        }
    })
}
