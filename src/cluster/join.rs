//! How a node's controller group starts when the node has no controller log yet: it forms the
//! cluster with its peers, or it was replaced (its disk lost) and waits for the leader, or it
//! is a node added to a running cluster and asks to follow the controller group.

use super::network::{cluster_info, join_via, Peers};
use crate::types::NodeId;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Longest wait for one peer's answer while probing.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// Pause between probing rounds and between join requests.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// What a node without a controller log does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControllerStart {
    /// No peer belongs to a formed cluster: form it, every configured node a voter.
    Initialize,
    /// A formed cluster lists this node as a voter (it lost its disk): the leader replicates
    /// to it.
    AwaitLeader,
    /// A formed cluster does not list this node: ask `via` to add it as a learner.
    Join { via: NodeId },
}

/// Asks the configured peers until one belongs to a formed cluster, or a majority of the
/// configured nodes (this one included) say none is formed. Waits for as long as that takes
/// (the other nodes may start later), saying every `log_every` how many answered.
pub async fn decide(peers: &Peers, me: NodeId, log_every: Duration) -> ControllerStart {
    let others: Vec<NodeId> = peers.members().keys().copied().filter(|id| *id != me).collect();
    let started = Instant::now();
    let mut next_log = started + log_every;
    loop {
        let mut unformed = 0;
        for id in &others {
            match cluster_info(peers, *id, PROBE_TIMEOUT).await {
                Ok((cluster_id, voters)) if !cluster_id.is_empty() => {
                    return if voters.contains(&me) {
                        ControllerStart::AwaitLeader
                    } else {
                        ControllerStart::Join { via: *id }
                    };
                }
                Ok(_) => unformed += 1,
                Err(why) => tracing::debug!(peer = id, %why, "peer not answering yet"),
            }
        }
        if (unformed + 1) * 2 > others.len() + 1 {
            return ControllerStart::Initialize;
        }
        if Instant::now() >= next_log {
            tracing::info!(
                answered = unformed,
                peers = others.len(),
                waited_s = started.elapsed().as_secs(),
                "waiting for peers: a majority of the nodes must answer to form the cluster"
            );
            next_log = Instant::now() + log_every;
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// Asks `via` to add this node to the controller group until `joined` says it is in (the
/// leader replicates to it).
pub fn spawn_join(peers: Arc<Peers>, me: NodeId, via: NodeId, joined: impl Fn() -> bool + Send + 'static) {
    crate::tasks::spawn_essential("join", async move {
        let addr = peers.addr_of(me).unwrap_or_default();
        while !joined() {
            match join_via(&peers, via, me, addr.clone(), false, PROBE_TIMEOUT * 4).await {
                Ok(Ok(_)) => tracing::info!(via, "asked to join the controller group"),
                Ok(Err((_, why))) | Err(why) => tracing::debug!(via, %why, "join request failed; retrying"),
            }
            tokio::time::sleep(RETRY_PAUSE * 2).await;
        }
    });
}
