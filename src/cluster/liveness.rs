//! Node-level failure detection: one ping per node pair every partition heartbeat interval
//! stands in for the per-group heartbeats of thousands of partition groups (which run with
//! openraft's timers off). Every frame from a peer counts as hearing from it; a ping also
//! carries the sender's incarnation, so a peer that restarted is noticed even when it was
//! back before anyone missed it. Who acts on it: `actors/partition/elector.rs`.
//!
//! The same record is every leader's check-quorum and lease (`cluster::acting_leader`): a
//! node acts as a group's leader only while it heard from a majority of the group's voters
//! within the lease, and while its own clock kept running. The followers of a cut-off leader
//! wait the lease plus a ping before they campaign, so the old leader has stopped answering
//! as leader before a new one can be elected. A node that finds itself stalled (its pinger
//! ran late by more than the lease: SIGSTOP, a VM pause, a starved runtime) counts the stall,
//! and each group it led acts as leader again only once a quorum of its voters answered it
//! after the stall (`cluster::confirm_after_stall`, run by the elector): a group whose
//! followers elected another leader meanwhile learns the new term from their answers instead.

use super::network::Peers;
use super::wire::{Request, Response};
use crate::types::NodeId;
use parking_lot::Mutex;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// The lease when none is configured (twice openraft's default minimum election timeout).
const DEFAULT_LEASE: Duration = Duration::from_millis(500);

#[derive(Default)]
struct Seen {
    /// When each peer was last heard from.
    heard: HashMap<NodeId, Instant>,
    /// Each peer's incarnation, as its last ping or pong said.
    incarnation: HashMap<NodeId, u64>,
    /// Peers that restarted (a new incarnation), came back after being unheard for longer
    /// than the lease, or all peers after this node stalled, since the last `take_returned`.
    returned: BTreeSet<NodeId>,
    /// When this node's pinger last ran.
    last_tick: Option<Instant>,
    /// When each peer last answered a request (a ping, a Raft RPC), as the request's send
    /// time: proof that both directions worked then (frames heard prove only one).
    acked: HashMap<NodeId, Instant>,
    /// The peers whose answers are within the lease, at the last tick.
    live: BTreeSet<NodeId>,
    /// Whom each peer heard from within the lease, as its last pong said, and when that came.
    views: HashMap<NodeId, (Instant, Vec<NodeId>)>,
}

impl Seen {
    fn heard(&mut self, node: NodeId, now: Instant, lease: Duration) {
        let before = self.heard.insert(node, now);
        if before.is_some_and(|at| now.duration_since(at) > lease) {
            self.returned.insert(node);
        }
    }
}

/// When each peer was last heard from, on either side of the transport (a follower that
/// leads nothing only receives), and which peers restarted.
#[derive(Clone)]
pub struct Liveness {
    seen: Arc<Mutex<Seen>>,
    /// Bumped by the pinger whenever leaderships may have lapsed or come back: a peer's
    /// answers got older than the lease or fresh again, a stall.
    changes: Arc<watch::Sender<u64>>,
    /// Stalls of this node so far: a leadership confirmed before the latest one does not count.
    stalls: Arc<AtomicU64>,
    /// This process's incarnation: different on every start.
    pub incarnation: u64,
    /// How recently a majority must have been heard for this node to lead a group.
    lease: Duration,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness::new(DEFAULT_LEASE)
    }
}

impl Liveness {
    /// A record whose leaders need a majority heard within `lease`.
    pub fn new(lease: Duration) -> Liveness {
        let incarnation = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Liveness {
            seen: Arc::default(),
            changes: Arc::new(watch::channel(0).0),
            stalls: Arc::default(),
            incarnation,
            lease,
        }
    }

    /// How recently a majority must have been heard for this node to lead.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// The same record with another lease (the controller group's timers are shorter).
    pub fn with_lease(&self, lease: Duration) -> Liveness {
        Liveness { lease, ..self.clone() }
    }

    /// Notes that `node` was just heard from.
    pub fn record(&self, node: NodeId) {
        self.seen.lock().heard(node, Instant::now(), self.lease);
    }

    /// Notes `node`'s incarnation (from a ping or pong); a new one marks it returned.
    pub fn observe(&self, node: NodeId, incarnation: u64) {
        let mut seen = self.seen.lock();
        seen.heard(node, Instant::now(), self.lease);
        if seen.incarnation.insert(node, incarnation) != Some(incarnation) {
            seen.returned.insert(node);
        }
    }

    /// Notes that `node` answered a request this node sent at `sent_at` (a ping, a Raft RPC).
    pub fn answered(&self, node: NodeId, sent_at: Instant) {
        let mut seen = self.seen.lock();
        let acked = seen.acked.entry(node).or_insert(sent_at);
        *acked = (*acked).max(sent_at);
    }

    /// Whether `node` was heard from within `within`.
    pub fn within(&self, node: NodeId, within: Duration) -> bool {
        self.seen
            .lock()
            .heard
            .get(&node)
            .is_some_and(|at| at.elapsed() <= within)
    }

    /// The peers that restarted or were first met since the last call.
    pub fn take_returned(&self) -> BTreeSet<NodeId> {
        std::mem::take(&mut self.seen.lock().returned)
    }

    /// The pinger's clock: called every ping interval. A call later than the lease after the
    /// previous one means this node was stalled; returns whether it was.
    pub fn tick(&self) -> bool {
        let now = Instant::now();
        let mut seen = self.seen.lock();
        let stalled = seen.last_tick.is_some_and(|at| now.duration_since(at) > self.lease);
        seen.last_tick = Some(now);
        let live: BTreeSet<NodeId> = recent(&seen.acked, now, self.lease).collect();
        let changed = live != seen.live || stalled;
        seen.live = live;
        if stalled {
            // Every leadership here waits for its group's confirmation from now on.
            self.stalls.fetch_add(1, Ordering::AcqRel);
            // Every group this node leads asks its followers (a heartbeat) at once: one that
            // was replaced during the stall learns the new term and steps down.
            let peers: Vec<NodeId> = seen.heard.keys().chain(seen.acked.keys()).copied().collect();
            seen.returned.extend(peers);
        }
        drop(seen);
        if changed {
            self.changes.send_modify(|v| *v += 1);
        }
        stalled
    }

    /// The peers this node heard from within the lease (what its pongs tell).
    pub fn hearing(&self) -> Vec<NodeId> {
        let now = Instant::now();
        let seen = self.seen.lock();
        recent(&seen.heard, now, self.lease).collect()
    }

    /// Notes whom `node` hears from, as its pong said.
    pub fn view(&self, node: NodeId, hears: Vec<NodeId>) {
        let mut seen = self.seen.lock();
        seen.views.insert(node, (Instant::now(), hears));
    }

    /// Pre-vote: whether a majority of each voter config (this node included, which no longer
    /// hears `leader`) has lost `leader` — each peer by its last pong within the lease. A
    /// replica that alone cannot hear a leader the others hear (a bridge, a one-way cut) does
    /// not campaign: it would only depose a working leader.
    pub fn majority_lost(&self, me: NodeId, leader: NodeId, configs: &[BTreeSet<NodeId>]) -> bool {
        let now = Instant::now();
        let seen = self.seen.lock();
        let lost = |v: &NodeId| {
            *v == me
                || seen.views.get(v).is_some_and(|(at, hears)| {
                    *v != leader && now.saturating_duration_since(*at) <= self.lease && !hears.contains(&leader)
                })
        };
        configs
            .iter()
            .all(|c| 2 * c.iter().filter(|v| lost(v)).count() > c.len())
    }

    /// A receiver that sees a change whenever leaderships may have lapsed or come back.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Check-quorum and lease: whether `me` may act as leader of a group whose voters are
    /// `configs` (one set, or two during a joint membership change) — a majority of each
    /// answered a ping sent within the lease (`me` counts) and this node's clock ran (its
    /// pinger ran within the lease). A group of this node alone always holds: nobody can
    /// replace it.
    pub fn holds_quorum(&self, me: NodeId, configs: &[BTreeSet<NodeId>]) -> bool {
        if alone(me, configs) {
            return true;
        }
        let now = Instant::now();
        let seen = self.seen.lock();
        let clock_ran = seen.last_tick.is_none_or(|at| now.duration_since(at) <= self.lease);
        if !clock_ran {
            return false;
        }
        let fresh = |v: &NodeId| {
            *v == me
                || seen
                    .acked
                    .get(v)
                    .is_some_and(|at| now.saturating_duration_since(*at) <= self.lease)
        };
        configs
            .iter()
            .all(|c| 2 * c.iter().filter(|v| fresh(v)).count() > c.len())
    }
}

impl Liveness {
    /// Whether `me` may act as leader of a group of `configs` whose leadership was last
    /// confirmed by a quorum after `confirmed_stalls` stalls: it holds its lease, and no stall
    /// came since (a group of this node alone needs neither).
    pub fn leads(&self, me: NodeId, configs: &[BTreeSet<NodeId>], confirmed_stalls: u64) -> bool {
        // The lease first: it sees the pinger's latest tick, and a tick that found a stall
        // counted it before anyone could see that tick.
        alone(me, configs) || (self.holds_quorum(me, configs) && confirmed_stalls >= self.stalls())
    }

    /// How many stalls this node had.
    pub fn stalls(&self) -> u64 {
        self.stalls.load(Ordering::Acquire)
    }
}

/// Whether `me` is the only voter of every config.
fn alone(me: NodeId, configs: &[BTreeSet<NodeId>]) -> bool {
    configs.iter().all(|c| c.len() == 1 && c.contains(&me))
}

/// The nodes whose time in `times` is within `within` of `now`.
fn recent(times: &HashMap<NodeId, Instant>, now: Instant, within: Duration) -> impl Iterator<Item = NodeId> + '_ {
    times
        .iter()
        .filter(move |(_, at)| now.saturating_duration_since(**at) <= within)
        .map(|(n, _)| *n)
}

/// Pings every known peer each `interval` (waiting at most `timeout` for each answer) until
/// the task is aborted; answers feed `peers.liveness`.
pub fn spawn_pinger(
    peers: Arc<Peers>,
    me: NodeId,
    interval: Duration,
    timeout: Duration,
) -> tokio::task::JoinHandle<()> {
    crate::tasks::spawn_essential("pinger", async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let incarnation = peers.liveness.incarnation;
        loop {
            ticker.tick().await;
            if peers.liveness.tick() {
                tracing::warn!(
                    me,
                    "this node was stalled for longer than the leader lease; leading nothing until its groups checked"
                );
            }
            for node in peers.members().into_keys().filter(|n| *n != me) {
                let peers = peers.clone();
                tokio::spawn(async move {
                    if let Ok(Response::Pong {
                        incarnation: theirs,
                        hears,
                    }) = peers.call(node, Request::Ping { incarnation }, timeout).await
                    {
                        peers.liveness.observe(node, theirs);
                        peers.liveness.view(node, hears);
                    }
                });
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_incarnation_is_reported_once() {
        let l = Liveness::default();
        assert!(!l.within(2, Duration::from_secs(1)));
        l.observe(2, 7);
        assert!(l.within(2, Duration::from_secs(1)));
        assert_eq!(l.take_returned(), BTreeSet::from([2]), "first met");
        l.observe(2, 7);
        assert!(l.take_returned().is_empty(), "same incarnation");
        l.observe(2, 8);
        l.observe(3, 1);
        assert_eq!(l.take_returned(), BTreeSet::from([2, 3]), "restarted, and a new peer");
    }

    fn set(ids: &[NodeId]) -> Vec<BTreeSet<NodeId>> {
        vec![ids.iter().copied().collect()]
    }

    #[test]
    fn a_leader_needs_a_majority_answering_within_the_lease() {
        let l = Liveness::new(Duration::from_millis(200));
        assert!(l.holds_quorum(1, &set(&[1])), "a group of one");
        assert!(!l.holds_quorum(1, &set(&[1, 2, 3])), "nobody answered");
        l.record(2);
        assert!(
            !l.holds_quorum(1, &set(&[1, 2, 3])),
            "heard is not answered: one way may be cut"
        );
        l.answered(2, Instant::now());
        assert!(l.holds_quorum(1, &set(&[1, 2, 3])));
        assert!(!l.holds_quorum(1, &set(&[1, 2, 3, 4])), "two of four is no majority");
        let joint = vec![BTreeSet::from([1, 2, 3]), BTreeSet::from([1, 4, 5])];
        assert!(!l.holds_quorum(1, &joint), "a majority of each config");
        l.answered(4, Instant::now());
        assert!(l.holds_quorum(1, &joint));
        l.answered(3, Instant::now() - Duration::from_millis(300));
        assert!(
            !l.holds_quorum(1, &set(&[1, 3, 5])),
            "an answer to a ping sent before the lease"
        );
        std::thread::sleep(Duration::from_millis(250));
        assert!(
            !l.holds_quorum(1, &set(&[1, 2, 3])),
            "node 2's answer older than the lease"
        );
    }

    #[test]
    fn a_replica_campaigns_only_when_a_majority_lost_the_leader() {
        let l = Liveness::new(Duration::from_millis(200));
        let voters = set(&[1, 2, 3]);
        // Node 1 no longer hears leader 2; node 3 (the bridge) still does.
        l.view(3, vec![1, 2]);
        assert!(!l.majority_lost(1, 2, &voters), "node 3 hears the leader");
        l.view(3, vec![1]);
        assert!(l.majority_lost(1, 2, &voters), "nobody hears the leader");
        std::thread::sleep(Duration::from_millis(250));
        assert!(!l.majority_lost(1, 2, &voters), "node 3's view is older than the lease");
    }

    #[test]
    fn a_stalled_node_leads_a_group_again_only_once_the_group_confirmed_it() {
        let l = Liveness::new(Duration::from_millis(200));
        let voters = set(&[1, 2, 3]);
        let changes = l.changes();
        assert!(!l.tick(), "the first tick");
        l.answered(2, Instant::now());
        assert!(l.leads(1, &voters, 0));
        std::thread::sleep(Duration::from_millis(250));
        l.answered(2, Instant::now());
        assert!(
            !l.leads(1, &voters, 0),
            "the pinger has not run for longer than the lease"
        );
        assert!(l.leads(1, &set(&[1]), 0), "nobody can replace a group of one");
        assert!(l.tick(), "the stall is seen");
        assert_eq!(l.stalls(), 1);
        assert!(changes.has_changed().unwrap());
        assert!(l.take_returned().contains(&2), "its groups ask their followers");
        assert!(l.holds_quorum(1, &voters), "it reaches a majority again");
        assert!(!l.leads(1, &voters, 0), "but no group confirmed its leadership since");
        assert!(l.leads(1, &voters, 1), "one that did leads");
        assert!(l.leads(1, &set(&[1]), 0), "a group of one needs no confirmation");
    }
}
