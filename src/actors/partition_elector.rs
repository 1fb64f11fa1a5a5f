//! Starts partition elections for the whole node. Partition groups run with openraft's
//! election and heartbeat timers off (`cluster::partition_raft_config`); instead, every
//! `interval` this task looks at each group hosted here:
//! - a follower whose leader is dead (its node unheard for `dead_after`), no longer a voter,
//!   or unknown campaigns — the live voters take turns in replica order, one `stagger` apart,
//!   so the preferred live replica goes first and two rarely split the vote; a round that
//!   elects nobody starts over. An unknown leader is waited for `dead_after` first: a node
//!   that just restarted hears from its live leaders within a ping or two.
//! - a leader whose follower or learner restarted (a new incarnation) sends it a heartbeat at
//!   once, so an idle group's restarted replica learns its leader and is probed for what it
//!   lacks (otherwise only the next write would reach it).
//!
//! Data replication retries on its own (openraft's backoff), so only these two need timers.

use super::registry::Registry;
use crate::cluster::network::Peers;
use crate::cluster::NodeId;
use crate::handlers::context::TopicPartition;
use crate::storage::meta_sm::ClusterMeta;
use openraft::ServerState;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How the elector decides.
pub struct ElectorConfig {
    /// This node.
    pub node_id: NodeId,
    /// How often each group is looked at (the partition heartbeat interval).
    pub interval: Duration,
    /// A node unheard for this long is dead (the leader lease plus one ping).
    pub dead_after: Duration,
    /// Pause between the turns of consecutive replicas (the election timeout).
    pub stagger: Duration,
}

/// Every this many intervals all groups are looked at even when nothing changed.
const SWEEP_EVERY: u64 = 10;

/// A group without a live leader, as first seen.
struct Leaderless {
    since: Instant,
    /// Whether a leader was known then (dead) or not (waited for first).
    leader_known: bool,
    /// Elections this node started for it.
    attempts: u32,
}

/// Runs the elector until the task is aborted.
pub fn spawn_elector(
    cfg: ElectorConfig,
    registry: Arc<Registry>,
    peers: Option<Arc<Peers>>,
    meta: Arc<RwLock<Arc<ClusterMeta>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(cfg.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut leaderless: HashMap<TopicPartition, Leaderless> = HashMap::new();
        let mut last_dead = BTreeSet::new();
        for round in 0u64.. {
            ticker.tick().await;
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
            // while some group waits for a leader, or once a second (a membership change that
            // left a leader out).
            let sweep = round % SWEEP_EVERY == 0 || dead != last_dead || !returned.is_empty() || !leaderless.is_empty();
            last_dead = dead;
            if !sweep {
                continue;
            }
            let alive = |n: NodeId| n == cfg.node_id || (known.contains(&n) && !last_dead.contains(&n));
            leaderless.retain(|tp, _| registry.get(tp).is_some());
            for (tp, handle) in registry.all() {
                let (state, leader, healthy, voter, heartbeat) = {
                    let m = handle.raft.metrics();
                    let m = m.borrow();
                    let membership = m.membership_config.membership();
                    let is_voter = |n: NodeId| membership.voter_ids().any(|v| v == n);
                    let healthy = m
                        .current_leader
                        .is_some_and(|l| l != cfg.node_id && is_voter(l) && alive(l));
                    let heartbeat = !returned.is_empty() && membership.nodes().any(|(id, _)| returned.contains(id));
                    (m.state, m.current_leader, healthy, is_voter(cfg.node_id), heartbeat)
                };
                if state == ServerState::Leader {
                    leaderless.remove(&tp);
                    if heartbeat {
                        let _ = handle.raft.trigger().heartbeat().await;
                    }
                    continue;
                }
                if healthy || !voter {
                    leaderless.remove(&tp);
                    continue;
                }
                let now = Instant::now();
                let entry = leaderless.entry(tp.clone()).or_insert(Leaderless {
                    since: now,
                    leader_known: leader.is_some(),
                    attempts: 0,
                });
                let voters: BTreeSet<NodeId> = handle
                    .raft
                    .metrics()
                    .borrow()
                    .membership_config
                    .membership()
                    .voter_ids()
                    .collect();
                let turns = live_turns(&tp, &voters, &meta, alive);
                let Some(rank) = turns.iter().position(|n| *n == cfg.node_id) else {
                    continue;
                };
                let wait = if entry.leader_known {
                    Duration::ZERO
                } else {
                    cfg.dead_after
                };
                let round = cfg.stagger * turns.len() as u32;
                let due = entry.since + wait + cfg.stagger * rank as u32 + round * entry.attempts;
                if now >= due {
                    entry.attempts += 1;
                    tracing::debug!(partition = ?tp, ?leader, rank, attempt = entry.attempts, "campaigning");
                    let _ = handle.raft.trigger().elect().await;
                }
            }
        }
    })
}

/// The live voters that may campaign, in replica order (the preferred replica first; voters
/// not in the placement, during a reassignment, after them by id).
fn live_turns(
    tp: &TopicPartition,
    voters: &BTreeSet<NodeId>,
    meta: &RwLock<Arc<ClusterMeta>>,
    alive: impl Fn(NodeId) -> bool,
) -> Vec<NodeId> {
    let placed: Vec<NodeId> = {
        let meta = meta.read().expect("meta lock");
        meta.topics
            .get(&tp.topic)
            .and_then(|t| t.replicas.get(tp.partition as usize))
            .map(|r| r.iter().map(|id| *id as NodeId).collect())
            .unwrap_or_default()
    };
    let mut order: Vec<NodeId> = placed.into_iter().filter(|n| voters.contains(n)).collect();
    order.extend(voters.iter().filter(|n| !order.contains(n)).collect::<Vec<_>>());
    order.into_iter().filter(|n| alive(*n)).collect()
}
