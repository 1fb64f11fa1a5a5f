//! Leaderships after a stall. A node that was stalled (SIGSTOP, a VM pause) may have been
//! replaced as leader of any group it led, and nothing it knows says which: each group asks a
//! quorum of its voters (`cluster::confirm_after_stall`) before this node acts as its leader
//! again. A group whose followers elected another leader meanwhile learns the new term from
//! their answers and steps down; the others lead on as soon as their quorum answered.

use crate::actors::partition::registry::{PartitionHandle, Registry};
use crate::cluster::network::Peers;
use crate::types::TopicPartition;
use parking_lot::Mutex;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Groups asking their quorum at one time, at most (each sends one heartbeat per voter).
const CONFIRMING_AT_ONCE: usize = 64;

/// The confirmations under way on this node.
pub struct StallConfirmations {
    in_flight: Arc<Mutex<HashSet<TopicPartition>>>,
    permits: Arc<Semaphore>,
    peers: Arc<Peers>,
    registry: Arc<Registry>,
}

impl StallConfirmations {
    /// Confirmations over `peers`' liveness; a confirmed group bumps `registry`, so waiters
    /// for a leader look again.
    pub fn new(peers: Arc<Peers>, registry: Arc<Registry>) -> StallConfirmations {
        StallConfirmations {
            in_flight: Arc::default(),
            permits: Arc::new(Semaphore::new(CONFIRMING_AT_ONCE)),
            peers,
            registry,
        }
    }

    /// Starts confirming the leadership of `tp` (led here) if a stall came since it was last
    /// confirmed; returns whether it is still unconfirmed.
    pub fn start(&self, tp: &TopicPartition, handle: &Arc<PartitionHandle>) -> bool {
        if handle.shared.confirmed_stalls() >= self.peers.liveness.stalls() {
            return false;
        }
        if !self.in_flight.lock().insert(tp.clone()) {
            return true;
        }
        let (tp, handle) = (tp.clone(), handle.clone());
        let (in_flight, permits, peers, registry) = (
            self.in_flight.clone(),
            self.permits.clone(),
            self.peers.clone(),
            self.registry.clone(),
        );
        tokio::spawn(async move {
            let _permit = permits.acquire_owned().await;
            let lease = peers.liveness.lease();
            let confirmed = crate::cluster::confirm_after_stall(
                &handle.raft,
                &peers.liveness,
                &handle.shared.stall_confirmed,
                lease,
            )
            .await;
            in_flight.lock().remove(&tp);
            tracing::debug!(partition = ?tp, confirmed, "leadership checked after a stall");
            if confirmed {
                registry.bump();
            }
        });
        true
    }
}
