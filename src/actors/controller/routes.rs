//! What the node-to-node server reaches on this node: the controller's Raft group (set as soon
//! as it exists, before it has a leader, so that votes can be answered), the partitions'
//! groups through the registry, and the controller actor for forwarded proposals.

use crate::actors::ask::{ask, AskError};
use crate::actors::controller::actor::ControllerMsg;
use crate::actors::partition::actor::PartitionMsg;
use crate::actors::partition::registry::Registry;
use crate::cluster::server::LocalGroups;
use crate::cluster::wire::GroupId;
use crate::storage::meta_sm::MetaCommand;
use crate::types::TopicPartition;
use crate::types::{NodeId, Raft};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use kafka_protocol::error::ResponseError;
use parking_lot::RwLock;
use ractor::ActorRef;
use std::sync::{Arc, OnceLock};

/// Longest a peer's ElectPreferred waits for the handoff (a lease wait and an election take
/// about a second).
const ELECT_PREFERRED_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// This node's Raft groups and controller, for peers.
pub struct ClusterRoutes {
    /// Replaced when the controller reopens its group after it stopped on a failed write.
    controller_raft: RwLock<Option<Raft>>,
    controller: OnceLock<ActorRef<ControllerMsg>>,
    registry: Arc<Registry>,
    /// This node's cluster id (empty until adopted from the controller).
    pub cluster_id: Arc<RwLock<String>>,
    /// Set when the node starts shutting down (`LocalGroups::leaving`).
    leaving: std::sync::atomic::AtomicBool,
}

impl ClusterRoutes {
    /// Routes to partitions in `registry`; the controller is set when it starts.
    pub fn new(registry: Arc<Registry>, cluster_id: Arc<RwLock<String>>) -> Arc<ClusterRoutes> {
        Arc::new(ClusterRoutes {
            controller_raft: RwLock::new(None),
            controller: OnceLock::new(),
            registry,
            cluster_id,
            leaving: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The node is shutting down: peers' requests to campaign are refused from now on.
    pub fn set_leaving(&self) {
        self.leaving.store(true, std::sync::atomic::Ordering::Release);
    }

    /// The controller group exists (again, after a reopen).
    pub fn set_controller_raft(&self, raft: Raft) {
        *self.controller_raft.write() = Some(raft);
    }

    fn controller_raft(&self) -> Option<Raft> {
        self.controller_raft.read().clone()
    }

    /// The controller actor runs.
    pub fn set_controller(&self, actor: ActorRef<ControllerMsg>) {
        let _ = self.controller.set(actor);
    }
}

impl LocalGroups for ClusterRoutes {
    fn leaving(&self) -> bool {
        self.leaving.load(std::sync::atomic::Ordering::Acquire)
    }

    fn raft(&self, group: &GroupId) -> Option<Raft> {
        match group {
            GroupId::Controller => self.controller_raft(),
            GroupId::Partition { topic, partition } => self
                .registry
                .get(&TopicPartition {
                    topic: topic.clone(),
                    partition: *partition,
                })
                .map(|h| h.raft.clone()),
        }
    }

    fn propose(&self, cmd: Bytes) -> BoxFuture<'static, Result<i64, (i16, String)>> {
        let actor = self.controller.get().cloned();
        async move {
            let not_controller = ResponseError::NotController.code();
            let actor = actor.ok_or((not_controller, "controller not running".to_string()))?;
            let cmd: MetaCommand =
                serde_json::from_slice(&cmd).map_err(|e| (ResponseError::InvalidRequest.code(), e.to_string()))?;
            let propose = |reply| ControllerMsg::Propose {
                cmd,
                reply,
                forwarded: true,
            };
            match ask(&actor, propose, None).await {
                Ok(r) => r.map_err(|(code, why)| (code.code(), why)),
                Err(_) => Err((not_controller, "controller stopped".to_string())),
            }
        }
        .boxed()
    }

    fn elect_preferred(&self, group: &GroupId) -> BoxFuture<'static, Result<i64, (i16, String)>> {
        let handle = match group {
            GroupId::Controller => None,
            GroupId::Partition { topic, partition } => self.registry.get(&TopicPartition {
                topic: topic.clone(),
                partition: *partition,
            }),
        };
        async move {
            let not_leader = || {
                (
                    ResponseError::NotLeaderOrFollower.code(),
                    "the partition does not run here".to_string(),
                )
            };
            let handle = handle.ok_or_else(not_leader)?;
            // Bounded: the request holds one of the connection's server permits meanwhile.
            let elect = |reply| PartitionMsg::ElectPreferred { reply };
            match ask(&handle.actor, elect, Some(ELECT_PREFERRED_TIMEOUT)).await {
                Ok(r) => r.map(|()| 0).map_err(|(code, why)| (code.code(), why)),
                Err(AskError::Gone) => Err(not_leader()),
                Err(AskError::TimedOut) => Err((
                    ResponseError::RequestTimedOut.code(),
                    "the handoff did not finish in time".to_string(),
                )),
            }
        }
        .boxed()
    }

    fn cluster_id(&self) -> String {
        self.cluster_id.read().clone()
    }

    fn controller_voters(&self) -> Vec<NodeId> {
        self.controller_raft()
            .map(|raft| {
                raft.metrics()
                    .borrow()
                    .membership_config
                    .membership()
                    .voter_ids()
                    .collect()
            })
            .unwrap_or_default()
    }

    fn join_controller(
        &self,
        node_id: NodeId,
        addr: String,
        forwarded: bool,
    ) -> BoxFuture<'static, Result<i64, (i16, String)>> {
        let actor = self.controller.get().cloned();
        async move {
            let not_controller = ResponseError::NotController.code();
            let actor = actor.ok_or((not_controller, "controller not running".to_string()))?;
            let add = |reply| ControllerMsg::AddLearner {
                node_id,
                addr,
                reply,
                forwarded,
            };
            match ask(&actor, add, None).await {
                Ok(r) => r.map_err(|(code, why)| (code.code(), why)),
                Err(_) => Err((not_controller, "controller stopped".to_string())),
            }
        }
        .boxed()
    }
}
