//! Node-level failure detection: one ping per node pair every partition heartbeat interval
//! stands in for the per-group heartbeats of thousands of partition groups (which run with
//! openraft's timers off). Every frame from a peer counts as hearing from it; a ping also
//! carries the sender's incarnation, so a peer that restarted is noticed even when it was
//! back before anyone missed it. Who acts on it: `actors/partition_elector.rs`.

use super::network::Peers;
use super::wire::{Request, Response};
use super::NodeId;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Default)]
struct Seen {
    /// When each peer was last heard from.
    heard: HashMap<NodeId, Instant>,
    /// Each peer's incarnation, as its last ping or pong said.
    incarnation: HashMap<NodeId, u64>,
    /// Peers that restarted (a new incarnation) since the last `take_returned`.
    returned: BTreeSet<NodeId>,
}

/// When each peer was last heard from, on either side of the transport (a follower that
/// leads nothing only receives), and which peers restarted.
#[derive(Clone)]
pub struct Liveness {
    seen: Arc<Mutex<Seen>>,
    /// This process's incarnation: different on every start.
    pub incarnation: u64,
}

impl Default for Liveness {
    fn default() -> Self {
        let incarnation = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Liveness {
            seen: Arc::default(),
            incarnation,
        }
    }
}

impl Liveness {
    /// Notes that `node` was just heard from.
    pub fn record(&self, node: NodeId) {
        self.seen
            .lock()
            .expect("liveness lock")
            .heard
            .insert(node, Instant::now());
    }

    /// Notes `node`'s incarnation (from a ping or pong); a new one marks it returned.
    pub fn observe(&self, node: NodeId, incarnation: u64) {
        let mut seen = self.seen.lock().expect("liveness lock");
        seen.heard.insert(node, Instant::now());
        if seen.incarnation.insert(node, incarnation) != Some(incarnation) {
            seen.returned.insert(node);
        }
    }

    /// Whether `node` was heard from within `within`.
    pub fn within(&self, node: NodeId, within: Duration) -> bool {
        self.seen
            .lock()
            .expect("liveness lock")
            .heard
            .get(&node)
            .is_some_and(|at| at.elapsed() <= within)
    }

    /// The peers that restarted or were first met since the last call.
    pub fn take_returned(&self) -> BTreeSet<NodeId> {
        std::mem::take(&mut self.seen.lock().expect("liveness lock").returned)
    }
}

/// Pings every known peer each `interval` (waiting at most `timeout` for each answer) until
/// the task is aborted; answers feed `peers.liveness`.
pub fn spawn_pinger(
    peers: Arc<Peers>,
    me: NodeId,
    interval: Duration,
    timeout: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let incarnation = peers.liveness.incarnation;
        loop {
            ticker.tick().await;
            for node in peers.members().into_keys().filter(|n| *n != me) {
                let peers = peers.clone();
                tokio::spawn(async move {
                    if let Ok(Response::Pong { incarnation: theirs }) =
                        peers.call(node, Request::Ping { incarnation }, timeout).await
                    {
                        peers.liveness.observe(node, theirs);
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
}
