//! Decides, for the whole node, which partition groups run openraft's election timer.
//! Partition groups start with openraft's tick, heartbeats and elections off
//! (`cluster::partition_raft_config`): thousands of idle groups each heartbeating every
//! follower cost a third of a core. Every `interval` this task looks at the groups hosted here:
//! - a follower whose leader is dead (its node unheard for `dead_after`, see
//!   `cluster/liveness.rs`) or no longer a voter gets openraft's tick and election timer back
//!   until a live leader is known again: openraft's randomized timers elect the new leader
//!   (the leader lease and timeouts as configured). An unknown leader is waited for
//!   `dead_after` first: a node that just restarted hears from its live leaders within a ping
//!   or two, and a new group's first replica is campaigning already. A replica that does not
//!   hear a majority of the group's voters does not campaign (a pre-vote on node liveness):
//!   cut off, it would only raise its term and depose the others' leader when it is back.
//! - a leader whose follower or learner restarted (a new incarnation) sends it a heartbeat at
//!   once, so an idle group's restarted replica learns its leader and is probed for what it
//!   lacks (otherwise only the next write would reach it).
//! - after a stall of this node, a leader here asks its group's quorum whether it still leads
//!   before acting as leader again (`partition_confirm.rs`).
//!
//! The replicas that may campaign for a group take turns, one elector interval apart, in an
//! order that differs by partition: when a leader dies both of its followers notice in the same
//! ping round, and two campaigns at once split the votes, round after round of openraft's
//! randomized timeouts (2.5 s in a long chaos run).
//!
//! Data replication retries on its own (openraft's backoff), so only these two need timers.

use crate::actors::partition::confirm::StallConfirmations;
use crate::actors::partition::registry::{PartitionHandle, Registry};
use crate::cluster::network::Peers;
use crate::storage::meta_sm::ClusterMeta;
use crate::types::TopicPartition;
use crate::types::{NodeId, Raft};
use openraft::ServerState;
use parking_lot::RwLock;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the elector decides.
pub struct ElectorConfig {
    /// This node.
    pub node_id: NodeId,
    /// How often each group is looked at (the partition heartbeat interval).
    pub interval: Duration,
    /// A node unheard for this long is dead (the leader lease plus one ping).
    pub dead_after: Duration,
}

/// Every this many intervals all groups are looked at even when nothing changed.
const SWEEP_EVERY: u64 = 10;

/// A group without a live leader here.
struct Leaderless {
    /// When openraft's election timer is (or was) switched on for it.
    elect_from: Instant,
    /// Whether it is on.
    electing: bool,
}

/// Runs the elector until the task is aborted.
pub fn spawn_elector(
    cfg: ElectorConfig,
    registry: Arc<Registry>,
    peers: Option<Arc<Peers>>,
    meta: Arc<RwLock<Arc<ClusterMeta>>>,
) -> tokio::task::JoinHandle<()> {
    crate::tasks::spawn_essential("partition-elector", async move {
        let mut ticker = tokio::time::interval(cfg.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut elector = Elector {
            leaderless: HashMap::new(),
            last_dead: BTreeSet::new(),
            lease_changes: peers.as_ref().map(|p| p.liveness.changes()),
            confirmations: peers.clone().map(|p| StallConfirmations::new(p, registry.clone())),
            registry_changes: registry.changed.subscribe(),
            unconfirmed: false,
            cfg,
            registry,
            peers,
            meta,
        };
        for round in 0u64.. {
            ticker.tick().await;
            elector.round(round).await;
        }
    })
}

/// The elector's state between rounds.
struct Elector {
    cfg: ElectorConfig,
    registry: Arc<Registry>,
    peers: Option<Arc<Peers>>,
    meta: Arc<RwLock<Arc<ClusterMeta>>>,
    leaderless: HashMap<TopicPartition, Leaderless>,
    /// The peers found dead in the last round.
    last_dead: BTreeSet<NodeId>,
    lease_changes: Option<tokio::sync::watch::Receiver<u64>>,
    confirmations: Option<StallConfirmations>,
    registry_changes: tokio::sync::watch::Receiver<u64>,
    /// Leaderships left to confirm after a stall: every round looks again.
    unconfirmed: bool,
}

impl Elector {
    /// One look: every group when something changed, else nothing.
    async fn round(&mut self, round: u64) {
        // Leaderships may have lapsed or come back without any Raft change: waiters on the
        // registry (a coordinator loading its partition, a topic becoming ready) look again.
        if let Some(changes) = self.lease_changes.as_mut().filter(|c| c.has_changed().unwrap_or(false)) {
            changes.borrow_and_update();
            self.registry.bump();
        }
        let returned = self
            .peers
            .as_ref()
            .map(|p| p.liveness.take_returned())
            .unwrap_or_default();
        let known: BTreeSet<NodeId> = self
            .peers
            .as_ref()
            .map(|p| p.members().into_keys().collect())
            .unwrap_or_default();
        let dead = self.dead_of(&known);
        let sweep = self.must_sweep(round, &dead, &returned);
        self.last_dead = dead;
        if sweep {
            self.sweep(&known, &returned).await;
        }
    }

    /// The known peers not heard from within `dead_after`.
    fn dead_of(&self, known: &BTreeSet<NodeId>) -> BTreeSet<NodeId> {
        let heard = |n: NodeId| {
            self.peers
                .as_ref()
                .is_some_and(|p| p.heard_within(n, self.cfg.dead_after))
        };
        known
            .iter()
            .copied()
            .filter(|n| *n != self.cfg.node_id && !heard(*n))
            .collect()
    }

    /// Looking at every group is the elector's whole cost: only when something changed, while
    /// some group has no leader, or once a second (a membership change that left a leader
    /// out). After a stall, a new leadership here (a registry change) needs confirming too.
    fn must_sweep(&mut self, round: u64, dead: &BTreeSet<NodeId>, returned: &BTreeSet<NodeId>) -> bool {
        let stalled_once = self.peers.as_ref().is_some_and(|p| p.liveness.stalls() > 0);
        let new_leaders = stalled_once && self.registry_changes.has_changed().unwrap_or(false);
        self.registry_changes.borrow_and_update();
        round.is_multiple_of(SWEEP_EVERY)
            || *dead != self.last_dead
            || !returned.is_empty()
            || !self.leaderless.is_empty()
            || self.unconfirmed
            || new_leaders
    }

    /// Looks at every group hosted here.
    async fn sweep(&mut self, known: &BTreeSet<NodeId>, returned: &BTreeSet<NodeId>) {
        let node_id = self.cfg.node_id;
        let last_dead = self.last_dead.clone();
        let alive = |n: NodeId| n == node_id || (known.contains(&n) && !last_dead.contains(&n));
        let registry = self.registry.clone();
        self.leaderless.retain(|tp, _| registry.get(tp).is_some());
        self.unconfirmed = false;
        for (tp, handle) in registry.all() {
            let g = GroupView::of(
                &handle.raft.metrics().borrow(),
                node_id,
                &alive,
                returned,
                self.peers.as_deref(),
            );
            if g.state == ServerState::Leader || g.healthy || !g.voter {
                self.led_or_healthy(&tp, &handle, &g).await;
            } else {
                self.without_live_leader(&tp, &handle.raft, &g);
            }
        }
    }

    /// A group with a live leader: its election timer goes off; a leader here heartbeats a
    /// restarted replica and confirms its leadership after a stall.
    async fn led_or_healthy(&mut self, tp: &TopicPartition, handle: &Arc<PartitionHandle>, g: &GroupView) {
        let raft = &handle.raft;
        if self.leaderless.remove(tp).is_some_and(|l| l.electing) {
            raft.runtime_config().elect(false);
            // A reassignment's driver keeps the tick (a removed leader's step-down).
            if !reassigning(&self.meta, tp) {
                raft.runtime_config().tick(false);
            }
            tracing::debug!(partition = ?tp, leader = ?g.leader, "leader found; election timer off");
        }
        if g.state == ServerState::Leader && g.heartbeat {
            let _ = raft.trigger().heartbeat().await;
        }
        if g.state == ServerState::Leader {
            self.unconfirmed |= self.confirmations.as_ref().is_some_and(|c| c.start(tp, handle));
        }
    }

    /// A group without a live leader: its election timer goes on at this replica's turn, and
    /// off while this replica cannot hear a majority.
    fn without_live_leader(&mut self, tp: &TopicPartition, raft: &Raft, g: &GroupView) {
        let now = Instant::now();
        let (interval, dead_after, node_id) = (self.cfg.interval, self.cfg.dead_after, self.cfg.node_id);
        let entry = self.leaderless.entry(tp.clone()).or_insert_with(|| {
            let turn = interval * campaign_turn(tp, node_id, &g.candidates);
            let unknown_leader = if g.leader.is_some() { Duration::ZERO } else { dead_after };
            Leaderless {
                elect_from: now + turn + unknown_leader,
                electing: false,
            }
        });
        if !entry.electing && now >= entry.elect_from && g.may_campaign {
            entry.electing = true;
            raft.runtime_config().elect(true);
            raft.runtime_config().tick(true);
            tracing::debug!(partition = ?tp, leader = ?g.leader, "no live leader; election timer on");
        } else if entry.electing && !g.may_campaign {
            entry.electing = false;
            raft.runtime_config().elect(false);
            if !reassigning(&self.meta, tp) {
                raft.runtime_config().tick(false);
            }
            tracing::debug!(partition = ?tp, "cut off from a majority; election timer off");
        }
    }
}

/// What the elector needs to know of one group, read from its metrics.
struct GroupView {
    state: ServerState,
    leader: Option<NodeId>,
    /// Another node leads, a voter this node hears from.
    healthy: bool,
    /// This node votes in the group.
    voter: bool,
    /// A member restarted or came back: a leader here sends it a heartbeat.
    heartbeat: bool,
    /// The liveness pre-vote allows a campaign.
    may_campaign: bool,
    /// The live voters other than the leader: those that may campaign.
    candidates: Vec<NodeId>,
}

impl GroupView {
    fn of(
        m: &openraft::RaftMetrics<NodeId, openraft::BasicNode>,
        me: NodeId,
        alive: &impl Fn(NodeId) -> bool,
        returned: &BTreeSet<NodeId>,
        peers: Option<&Peers>,
    ) -> GroupView {
        let membership = m.membership_config.membership();
        let is_voter = |n: NodeId| membership.voter_ids().any(|v| v == n);
        let healthy = m.current_leader.is_some_and(|l| l != me && is_voter(l) && alive(l));
        let heartbeat = !returned.is_empty() && membership.nodes().any(|(id, _)| returned.contains(id));
        // A pre-vote on node liveness: campaign only while a majority of the voters is reached,
        // and a majority of them no longer hears the leader (peers' pongs say whom they hear).
        // A cut-off replica, or one alone in not hearing the leader (a bridge), would only
        // raise its term and depose the leader the others have.
        let configs = membership.get_joint_config();
        let may_campaign = peers.is_none_or(|p| {
            p.liveness.holds_quorum(me, configs)
                && m.current_leader
                    .filter(|l| is_voter(*l))
                    .is_none_or(|l| p.liveness.majority_lost(me, l, configs))
        });
        let candidates = membership
            .voter_ids()
            .filter(|v| Some(*v) != m.current_leader && alive(*v))
            .collect();
        GroupView {
            state: m.state,
            leader: m.current_leader,
            healthy,
            voter: is_voter(me),
            heartbeat,
            may_campaign,
            candidates,
        }
    }
}

fn reassigning(meta: &RwLock<Arc<ClusterMeta>>, tp: &TopicPartition) -> bool {
    let meta = meta.read();
    meta.topics
        .get(&tp.topic)
        .is_some_and(|t| t.reassigning.contains_key(&tp.partition))
}

/// This node's turn (0 first) among the group's `candidates` to start campaigning: their ids
/// in order, rotated by a hash of the partition, so the first to campaign (usually the new
/// leader) differs from partition to partition.
fn campaign_turn(tp: &TopicPartition, me: NodeId, candidates: &[NodeId]) -> u32 {
    let mut order: Vec<NodeId> = candidates.to_vec();
    order.sort_unstable();
    order.dedup();
    let Some(mine) = order.iter().position(|n| *n == me) else {
        return 0;
    };
    let shift = crc32c::crc32c_append(crc32c::crc32c(tp.topic.as_bytes()), &tp.partition.to_be_bytes()) as usize;
    ((mine + order.len() - shift % order.len()) % order.len()) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_take_distinct_turns_and_the_first_differs_by_partition() {
        let mut firsts = BTreeSet::new();
        for p in 0..32 {
            let tp = TopicPartition {
                topic: "t".into(),
                partition: p,
            };
            let turns: Vec<u32> = [1, 3].iter().map(|me| campaign_turn(&tp, *me, &[3, 1])).collect();
            assert!(turns.contains(&0) && turns.contains(&1), "{turns:?}");
            firsts.insert(if turns[0] == 0 { 1 } else { 3 });
        }
        assert_eq!(firsts.len(), 2, "each candidate goes first for some partitions");
        let tp = TopicPartition {
            topic: "t".into(),
            partition: 0,
        };
        assert_eq!(
            campaign_turn(&tp, 2, &[1, 3]),
            0,
            "a node that is no candidate waits for nothing"
        );
    }
}
