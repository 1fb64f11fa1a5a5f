//! Moves a partition's leadership back to its preferred replica (the first of its replicas)
//! once that replica is alive and holds the whole log: Kafka's automatic leader rebalancing.
//! openraft 0.9 has no leadership transfer, so the leader (1) stops taking produce requests
//! (clients get NOT_LEADER_OR_FOLLOWER and retry), (2) waits out the followers' leader lease
//! (`election_timeout_max` after the last replication: until then they reject any vote request;
//! partition groups send no heartbeats of their own), (3) asks the preferred replica to
//! campaign. The other followers see their leader alive and do not campaign, so it wins. If it
//! did not win, the old leader simply carries on. A leader whose data dir is full hands its
//! leadership the same way to any in-sync replica, and so does every leader on a node that
//! shuts down (`hand_all_away`, Kafka's controlled shutdown).

use crate::actors::ask::ask;
use crate::actors::partition::actor::PartitionMsg;
use crate::actors::partition::registry::Registry;
use crate::cluster::handover::hand_leadership;
use crate::cluster::network::Peers;
use crate::cluster::wire::GroupId;
use crate::storage::meta_sm::ClusterMeta;
use crate::storage::partition_sm::PartitionShared;
use crate::types::TopicPartition;
use crate::types::{NodeId, Raft};
use parking_lot::RwLock;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// What a leadership handoff needs.
pub struct Handoff {
    /// The partition whose leadership may move.
    pub tp: TopicPartition,
    /// This node, its current leader.
    pub node_id: NodeId,
    /// The partition's Raft group.
    pub raft: Raft,
    /// How the preferred replica is reached and whether it is alive.
    pub peers: Arc<Peers>,
    /// Cluster metadata: the replicas, the preferred one first.
    pub meta: Arc<RwLock<Arc<ClusterMeta>>>,
    /// Where produce learns that a handoff is under way.
    pub shared: Arc<PartitionShared>,
    /// A replica not heard from within this long is not handed leadership.
    pub alive_within: Duration,
    /// Leadership should leave this node (its disk is full or stalled, or it shuts down), not
    /// only go to the preferred
    /// replica.
    pub away: bool,
}

impl Handoff {
    /// The replica that should lead instead of this node now, if any: this node leads, no
    /// reassignment is pending, and the replica is a live voter in sync (holding every entry,
    /// or having held them within `alive_within`, as Kafka's ISR: under steady produce a
    /// follower is rarely level at any one instant; produce stops during the lease wait, so it
    /// catches up before it campaigns). Normally
    /// only the preferred replica; with `away` (leaving this node) any such replica,
    /// the preferred one first.
    fn target(&self) -> Option<NodeId> {
        let replicas: Vec<NodeId> = {
            let meta = self.meta.read();
            let topic = meta.topics.get(&self.tp.topic)?;
            if topic.reassigning.contains_key(&self.tp.partition) {
                return None;
            }
            let all = topic.replicas.get(self.tp.partition as usize)?;
            let wanted = if self.away { all.len() } else { 1 };
            all.iter().take(wanted).map(|r| *r as NodeId).collect()
        };
        let m = self.raft.metrics();
        let m = m.borrow();
        let confirmed = self.shared.confirmed_stalls();
        if crate::cluster::acting_leader(&m, Some(&self.peers.liveness), confirmed) != Some(self.node_id) {
            return None;
        }
        let replication = m.replication.as_ref()?;
        let caught_up = self.shared.caught_up.lock();
        replicas.into_iter().find(|r| {
            let level = replication
                .get(r)
                .is_some_and(|matched| matched.map(|l| l.index) >= m.last_log_index);
            let recently = caught_up.get(r).is_some_and(|at| at.elapsed() <= self.alive_within);
            *r != self.node_id
                && m.membership_config.membership().voter_ids().any(|id| id == *r)
                && (level || recently)
                && self.peers.heard_within(*r, self.alive_within)
        })
    }

    /// Hands leadership to the target replica if there is one; at most one handoff at a time.
    /// `None` when there is no target or a handoff is already under way; else the handoff's
    /// task, which resolves to whether leadership moved.
    pub fn start(self) -> Option<tokio::task::JoinHandle<bool>> {
        let preferred = self.target()?;
        if self.shared.handing_off.swap(true, Ordering::AcqRel) {
            return None;
        }
        Some(tokio::spawn(async move {
            let lease = Duration::from_millis(self.raft.config().election_timeout_max);
            // Done when the target leads (not merely when this node stopped leading: it does on
            // granting the vote, and the target may still lose).
            let leads = |target: NodeId| {
                let raft = self.raft.clone();
                async move {
                    let moved = raft.wait(Some(lease * 2));
                    let moved = moved.metrics(move |m| m.current_leader == Some(target), "leadership moved");
                    moved.await.is_ok()
                }
            };
            let group = GroupId::of(&self.tp);
            let moved = hand_leadership(&self.peers, &group, &[preferred], lease, leads).await;
            match moved {
                Some(to) => tracing::info!(partition = ?self.tp, to, "leadership handed over"),
                None => tracing::debug!(partition = ?self.tp, "the target replica did not take over; leading on"),
            }
            self.shared.handing_off.store(false, Ordering::Release);
            moved.is_some()
        }))
    }
}

/// Every partition led here hands its leadership to an in-sync replica, all at once; bounded
/// by `timeout`. Run when the disk turns low, and at shutdown before the node stops serving
/// clients (Kafka's controlled shutdown): clients then move while this node still answers
/// them. Draining connections first left the partitions led here without a leader for as long
/// as the drain took (up to the shutdown bound: 16.9 s in a chaos run's rolling restart,
/// docs/reliability.md finding 11).
pub async fn hand_all_away(registry: &Registry, timeout: Duration) {
    let led: Vec<_> = registry
        .all()
        .into_iter()
        .filter(|(_, h)| h.peers.is_some() && h.leadership().0 == Some(h.node_id))
        .collect();
    if led.is_empty() {
        return;
    }
    let started = std::time::Instant::now();
    let moved = std::sync::atomic::AtomicUsize::new(0);
    let asks = led.iter().map(|(_, h)| async {
        if let Ok(true) = ask(&h.actor, |r| PartitionMsg::HandAway { reply: r.into() }, None).await {
            moved.fetch_add(1, Ordering::Relaxed);
        }
    });
    let _ = tokio::time::timeout(timeout, futures::future::join_all(asks)).await;
    let moved = moved.load(Ordering::Relaxed);
    let counted = |outcome: &'static str, n: usize| {
        metrics::counter!(crate::observability::HANDAWAY_LEADERSHIPS, "outcome" => outcome).increment(n as u64)
    };
    counted("led", led.len());
    counted("moved", moved);
    tracing::info!(
        led = led.len(),
        moved,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "leaderships handed to other replicas"
    );
}

/// Hands every leadership held here away each time the data dir turns low (full, or its fsyncs
/// stalled), so partitions without produce traffic move too and those with it move at once
/// (produce refused on a low disk starts a handoff as well, for leaderships won later).
pub fn spawn_hand_away_when_low(
    disk: Arc<crate::storage::disk_guard::DiskGuard>,
    registry: Arc<Registry>,
    timeout: Duration,
) -> tokio::task::JoinHandle<()> {
    let mut low = disk.subscribe();
    crate::tasks::spawn_essential("hand-away-when-low", async move {
        loop {
            if *low.borrow_and_update() {
                hand_all_away(&registry, timeout).await;
            }
            if low.changed().await.is_err() {
                return;
            }
        }
    })
}
