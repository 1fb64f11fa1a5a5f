//! Handing a group's leadership to another voter. openraft 0.9 has no leadership transfer, and a
//! follower refuses every vote request while its leader lease (`election_timeout_max` after the
//! leader last reached it) holds: so the leader (or a stopped leader's node) stops replicating,
//! waits out that lease plus a margin, and asks a candidate to campaign (`Request::Campaign`).
//! The other followers still see this node alive and do not campaign themselves, so the
//! candidate wins unless something moved meanwhile. Used by the preferred-leader handoff, a
//! full or stalled disk, a stopped group and the controller group.

use super::network::Peers;
use super::wire::{GroupId, Request, Response};
use crate::types::NodeId;
use std::future::Future;
use std::time::Duration;

/// Margin added to the lease so that every follower's has expired when the campaign starts.
pub const LEASE_MARGIN: Duration = Duration::from_millis(50);

/// Waits out the followers' lease (`lease` plus [`LEASE_MARGIN`]), then asks each of
/// `candidates` in turn to campaign for `group` until one agrees and `took_over(candidate)`
/// says it leads. Returns that candidate, or `None` when none did. Each ask is bounded by
/// `lease`; `took_over` bounds its own wait.
pub async fn hand_leadership<F, Fut>(
    peers: &Peers,
    group: &GroupId,
    candidates: &[NodeId],
    lease: Duration,
    took_over: F,
) -> Option<NodeId>
where
    F: Fn(NodeId) -> Fut,
    Fut: Future<Output = bool>,
{
    tokio::time::sleep(lease + LEASE_MARGIN).await;
    for &candidate in candidates {
        let answer = peers.call(candidate, Request::Campaign(group.clone()), lease).await;
        match answer {
            Ok(Response::Proposed(Ok(_))) if took_over(candidate).await => return Some(candidate),
            Ok(Response::Proposed(Ok(_))) => {
                tracing::debug!(?group, candidate, "the candidate campaigned but does not lead")
            }
            other => tracing::debug!(?group, candidate, answer = ?other, "the candidate did not campaign"),
        }
    }
    None
}
