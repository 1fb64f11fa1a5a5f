//! Moves a partition's Raft group to the replicas a reassignment asks for, run by the group's
//! leader: each new replica joins as a learner and catches up, then one joint-consensus
//! membership change makes the target the voters (a leader that is not among them steps down
//! once that is committed), then learners left over are removed and the controller is told.
//! Every step is idempotent, so a new leader (or a retry after a timeout) starts over safely.

use crate::actors::partition::reports::LeaderReports;
use crate::cluster::network::Peers;
use crate::storage::meta_sm::ClusterMeta;
use crate::types::TopicPartition;
use crate::types::{NodeId, Raft};
use openraft::{BasicNode, ChangeMembers};
use parking_lot::RwLock;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Pause between attempts when a step failed (a target node down, a lost proposal).
const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// How often a catch-up wait looks at the pending target when replication is quiet.
const CATCH_UP_POLL: Duration = Duration::from_millis(200);

/// What a reassignment of one partition needs.
pub struct Reassigner {
    /// The partition being moved.
    pub tp: TopicPartition,
    /// This node (it drives the move only while it leads the group).
    pub node_id: NodeId,
    /// The partition's Raft group.
    pub raft: Raft,
    /// Where new replicas' cluster addresses come from.
    pub peers: Arc<Peers>,
    /// Cluster metadata, holding the pending target.
    pub meta: Arc<RwLock<Arc<ClusterMeta>>>,
    /// Where the finished move is reported for the controller.
    pub reports: Arc<LeaderReports>,
    /// Longest wait for a new replica to catch up before the attempt starts over.
    pub catch_up_timeout: Duration,
    /// Set while a driver runs, so one runs at a time.
    pub running: Arc<AtomicBool>,
}

impl Reassigner {
    /// The target replicas of a pending reassignment of this partition.
    fn target(&self) -> Option<Vec<i32>> {
        let meta = self.meta.read();
        meta.topics
            .get(&self.tp.topic)
            .and_then(|t| t.reassigning.get(&self.tp.partition).cloned())
    }

    fn leading(&self) -> bool {
        self.raft.metrics().borrow().current_leader == Some(self.node_id)
    }

    /// Starts driving the pending reassignment, unless one is being driven already or there is
    /// none; gives up when this node stops leading (the next leader takes over).
    pub fn start(self) {
        if self.target().is_none() || !self.leading() || self.running.swap(true, Ordering::AcqRel) {
            return;
        }
        tokio::spawn(async move {
            // openraft's tick (off in partition groups) is what makes a leader that the new
            // voters leave out step down once that membership is committed.
            self.raft.runtime_config().tick(true);
            let mut stays = true;
            while let Some(target) = self.target() {
                if !self.leading() {
                    break;
                }
                match self.move_voters(&target).await {
                    Ok(()) => {
                        tracing::info!(partition = ?self.tp, replicas = ?target, "reassignment done");
                        stays = target.contains(&(self.node_id as i32));
                        self.reports.reassigned(&self.tp.topic, self.tp.partition, target);
                        break;
                    }
                    Err(why) => {
                        tracing::debug!(partition = ?self.tp, %why, "reassignment step failed; retrying");
                        tokio::time::sleep(RETRY_PAUSE).await;
                    }
                }
            }
            if stays {
                self.raft.runtime_config().tick(false);
            }
            self.running.store(false, Ordering::Release);
        });
    }

    /// Waits until `learner` holds the log up to index `admitted`; gives up when the wait
    /// exceeds the catch-up timeout, this node stops leading, or the target changes (a cancel
    /// must not wait for a node that may never come).
    async fn await_catch_up(&self, learner: NodeId, admitted: u64, target: &BTreeSet<NodeId>) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + self.catch_up_timeout;
        let mut metrics = self.raft.metrics();
        loop {
            {
                let m = metrics.borrow_and_update();
                let matched = m.replication.as_ref().and_then(|r| r.get(&learner).copied().flatten());
                if matched.is_some_and(|l| l.index >= admitted) {
                    return Ok(());
                }
                if m.current_leader != Some(self.node_id) {
                    return Err("no longer leading".into());
                }
            }
            let still: Option<BTreeSet<NodeId>> = self.target().map(|t| t.iter().map(|id| *id as NodeId).collect());
            if still.as_ref() != Some(target) {
                return Err("the target changed".into());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "node {learner} did not catch up within {:?}",
                    self.catch_up_timeout
                ));
            }
            // Woken by replication progress, or every poll interval to see the target.
            if let Ok(Err(_)) = tokio::time::timeout(CATCH_UP_POLL, metrics.changed()).await {
                return Err("the group stopped".into());
            }
        }
    }

    async fn move_voters(&self, target: &[i32]) -> Result<(), String> {
        let target: BTreeSet<NodeId> = target.iter().map(|id| *id as NodeId).collect();
        let membership = self.raft.metrics().borrow().membership_config.membership().clone();
        // Learners of an earlier, cancelled target would go on receiving the log. Removed
        // first: once the voters change, this node may no longer lead.
        let extra: BTreeSet<NodeId> = membership.learner_ids().filter(|id| !target.contains(id)).collect();
        if !extra.is_empty() {
            self.raft
                .change_membership(ChangeMembers::RemoveNodes(extra.clone()), false)
                .await
                .map_err(|e| format!("removing learners {extra:?}: {e}"))?;
        }
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        for id in target.difference(&voters) {
            let addr = self
                .peers
                .addr_of(*id)
                .ok_or_else(|| format!("node {id} has no cluster address"))?;
            let admitted = self
                .raft
                .add_learner(*id, BasicNode::new(addr), false)
                .await
                .map_err(|e| format!("adding node {id} as a learner: {e}"))?
                .log_id
                .index;
            // A voter only once it holds the log up to its own admission. (openraft's blocking
            // add_learner counts a learner within `replication_lag_threshold` entries as caught
            // up, even one that is down and holds nothing.)
            self.await_catch_up(*id, admitted, &target).await?;
        }
        if voters != target || membership.get_joint_config().len() > 1 {
            self.raft
                .change_membership(ChangeMembers::ReplaceAllVoters(target.clone()), false)
                .await
                .map_err(|e| format!("changing voters to {target:?}: {e}"))?;
        }
        Ok(())
    }
}
