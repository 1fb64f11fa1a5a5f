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
use crate::actors::partition::registry::Registry;
use crate::cluster::network::Peers;
use crate::storage::meta_sm::ClusterMeta;
use crate::types::NodeId;
use crate::types::TopicPartition;
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
        let mut leaderless: HashMap<TopicPartition, Leaderless> = HashMap::new();
        let mut last_dead = BTreeSet::new();
        let mut lease_changes = peers.as_ref().map(|p| p.liveness.changes());
        let confirmations = peers.clone().map(|p| StallConfirmations::new(p, registry.clone()));
        let mut registry_changes = registry.changed.subscribe();
        // Leaderships left to confirm after a stall: every round looks again.
        let mut unconfirmed = false;
        for round in 0u64.. {
            ticker.tick().await;
            // Leaderships may have lapsed or come back without any Raft change: waiters on
            // the registry (a coordinator loading its partition, a topic becoming ready)
            // look again.
            if lease_changes.as_mut().is_some_and(|c| c.has_changed().unwrap_or(false)) {
                lease_changes.as_mut().map(|c| c.borrow_and_update());
                registry.bump();
            }
            let returned = peers.as_ref().map(|p| p.liveness.take_returned()).unwrap_or_default();
            let known: BTreeSet<NodeId> = peers
                .as_ref()
                .map(|p| p.members().into_keys().collect())
                .unwrap_or_default();
            let dead: BTreeSet<NodeId> = known
                .iter()
                .copied()
                .filter(|n| *n != cfg.node_id && !peers.as_ref().is_some_and(|p| p.heard_within(*n, cfg.dead_after)))
                .collect();
            // Looking at every group is the elector's whole cost: only when something changed,
            // while some group has no leader, or once a second (a membership change that left
            // a leader out).
            // After a stall, a new leadership here (a registry change) needs confirming too.
            let stalled_once = peers.as_ref().is_some_and(|p| p.liveness.stalls() > 0);
            let new_leaders = stalled_once && registry_changes.has_changed().unwrap_or(false);
            registry_changes.borrow_and_update();
            let sweep = round % SWEEP_EVERY == 0
                || dead != last_dead
                || !returned.is_empty()
                || !leaderless.is_empty()
                || unconfirmed
                || new_leaders;
            last_dead = dead;
            if !sweep {
                continue;
            }
            let alive = |n: NodeId| n == cfg.node_id || (known.contains(&n) && !last_dead.contains(&n));
            leaderless.retain(|tp, _| registry.get(tp).is_some());
            unconfirmed = false;
            for (tp, handle) in registry.all() {
                let g = GroupView::of(
                    &handle.raft.metrics().borrow(),
                    cfg.node_id,
                    &alive,
                    &returned,
                    peers.as_deref(),
                );
                let raft = &handle.raft;
                if g.state == ServerState::Leader || g.healthy || !g.voter {
                    if leaderless.remove(&tp).is_some_and(|l| l.electing) {
                        raft.runtime_config().elect(false);
                        // A reassignment's driver keeps the tick (a removed leader's step-down).
                        if !reassigning(&meta, &tp) {
                            raft.runtime_config().tick(false);
                        }
                        tracing::debug!(partition = ?tp, leader = ?g.leader, "leader found; election timer off");
                    }
                    if g.state == ServerState::Leader && g.heartbeat {
                        let _ = raft.trigger().heartbeat().await;
                    }
                    if g.state == ServerState::Leader {
                        unconfirmed |= confirmations.as_ref().is_some_and(|c| c.start(&tp, &handle));
                    }
                    continue;
                }
                let now = Instant::now();
                let entry = leaderless.entry(tp.clone()).or_insert_with(|| {
                    let turn = cfg.interval * campaign_turn(&tp, cfg.node_id, &g.candidates);
                    let unknown_leader = if g.leader.is_some() {
                        Duration::ZERO
                    } else {
                        cfg.dead_after
                    };
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
                    if !reassigning(&meta, &tp) {
                        raft.runtime_config().tick(false);
                    }
                    tracing::debug!(partition = ?tp, "cut off from a majority; election timer off");
                }
            }
        }
    })
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
