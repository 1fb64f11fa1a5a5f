//! The node-to-node transport and what every Raft group shares (leadership as the node acts on
//! it, openraft configs); the Raft types themselves are in `crate::types`. The transport: one connection per node pair carries the RPCs of every group (`wire.rs`,
//! `network.rs` for the client side, `server.rs`). A single node needs no transport.

pub mod append_retry;
pub mod auth;
pub mod handover;
pub mod join;
pub mod liveness;
pub mod network;
mod peer_link;
pub mod server;
pub mod wire;

use crate::types::{NodeId, Raft};

/// The group's leader as this node should act on it (`liveness`: the node's peers, `None` on a
/// single node).
///
/// This node's own leadership counts only once a quorum has acknowledged it: openraft restores
/// a restarted leader as the leader of its old term at once, from its stored vote, and until a
/// peer answers it (and it steps down) its log may be far behind the leader a newer term
/// elected while it was down. Answering clients as leader then would tell a consumer its
/// position is out of range (it resets, and re-reads or skips) and Metadata would send
/// producers to a node that cannot commit. In a cluster it also counts only while the node
/// holds its lease (check-quorum, `Liveness::holds_quorum`): a leader cut off from its
/// followers stops answering as leader before they can elect another. Another node is named
/// leader only while it is heard from: clients are not sent to a leader known to be gone.
/// After a stall of this node, its leadership of a group counts again only once the group
/// confirmed it (`confirmed_stalls`, see `confirm_after_stall`).
pub fn acting_leader(
    m: &openraft::RaftMetrics<NodeId, openraft::BasicNode>,
    liveness: Option<&liveness::Liveness>,
    confirmed_stalls: u64,
) -> Option<NodeId> {
    let leader = m.current_leader?;
    let acts = if leader == m.id {
        let confirmed = m.state == openraft::ServerState::Leader && m.millis_since_quorum_ack.is_some();
        let voters = m.membership_config.membership().get_joint_config();
        confirmed && liveness.is_none_or(|l| l.leads(m.id, voters, confirmed_stalls))
    } else {
        liveness.is_none_or(|l| l.within(leader, l.lease()))
    };
    acts.then_some(leader)
}

/// Asks the followers of a group this node leads whether it still leads, if this node stalled
/// since `confirmed_stalls` was last set: a quorum's answer (within `within`) sets it to the
/// stalls counted before asking; a newer term in an answer makes the group step down. Returns
/// whether the leadership is confirmed.
pub async fn confirm_after_stall(
    raft: &Raft,
    liveness: &liveness::Liveness,
    confirmed_stalls: &std::sync::atomic::AtomicU64,
    within: std::time::Duration,
) -> bool {
    use std::sync::atomic::Ordering;
    let stalls = liveness.stalls();
    if confirmed_stalls.load(Ordering::Acquire) >= stalls {
        return true;
    }
    // openraft's read-index round: a heartbeat to every voter, answered by a quorum in this
    // leader's term, or an error once it is not the leader.
    let asked = tokio::time::timeout(within, raft.get_read_log_id()).await;
    let confirmed = matches!(asked, Ok(Ok(_)));
    if confirmed {
        confirmed_stalls.fetch_max(stalls, Ordering::AcqRel);
    }
    confirmed
}

/// Raft timing from the broker config (the controller group: openraft's own timers).
pub fn raft_config(heartbeat_ms: u64, election_ms: u64) -> anyhow::Result<std::sync::Arc<openraft::Config>> {
    Ok(std::sync::Arc::new(base_config(heartbeat_ms, election_ms).validate()?))
}

/// A partition group's config: openraft's per-group tick, heartbeats and election timers are
/// off, because thousands of groups each heartbeating every follower cost a third of a core
/// while idle. Node-level pings (`liveness.rs`) detect failures and
/// `actors/partition/elector.rs` starts the elections; replication, the committed index and
/// everything else work as usual. The intervals still set the leader lease and detection.
pub fn partition_raft_config(heartbeat_ms: u64, election_ms: u64) -> anyhow::Result<std::sync::Arc<openraft::Config>> {
    let cfg = openraft::Config {
        enable_tick: false,
        enable_heartbeat: false,
        enable_elect: false,
        ..base_config(heartbeat_ms, election_ms)
    };
    Ok(std::sync::Arc::new(cfg.validate()?))
}

fn base_config(heartbeat_ms: u64, election_ms: u64) -> openraft::Config {
    openraft::Config {
        cluster_name: "raftstream".into(),
        heartbeat_interval: heartbeat_ms,
        election_timeout_min: election_ms,
        election_timeout_max: election_ms * 2,
        // The log is the Kafka log: never compacted into a Raft snapshot.
        snapshot_policy: openraft::SnapshotPolicy::Never,
        // Retention asks for a snapshot and then a purge up to a segment boundary: keep nothing
        // more than it asked for.
        max_in_snapshot_log_to_keep: 0,
        max_payload_entries: 512,
        ..Default::default()
    }
}
