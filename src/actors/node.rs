//! `Node`: the broker as handlers see it (the `handlers::context::Broker` trait), backed by the
//! registry of partitions and the controller actor.

use crate::actors::ask::{ask, send_ask, AskError};
use crate::actors::controller::actor::ControllerMsg;
use crate::actors::group::coordinator::CoordinatorMsg;
use crate::actors::group::ops::GroupOp;
use crate::actors::partition::actor::PartitionMsg;
use crate::actors::partition::registry::Registry;
use crate::cluster::network::CallError;
use crate::cluster::wire::{GroupId, Request, Response};
use crate::config::Config;
use crate::handlers::context::{
    Appending, Broker, CommitFrom, EachResult, GroupDescription, GroupListing, HeartbeatArgs, JoinArgs, Joined,
    PartitionView, SyncArgs,
};
use crate::protocol::batch::ValidBatch;
use crate::storage::meta_sm::{ClusterMeta, MetaCommand};
use crate::storage::offsets::{partition_for, Committed, OffsetKey, OFFSETS_TOPIC};
use crate::types::{NodeInfo, TopicPartition};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use kafka_protocol::error::ResponseError;
use parking_lot::RwLock;
use ractor::ActorRef;
use std::sync::Arc;
use std::time::Duration;

/// Producer ids reserved per controller round trip.
const PRODUCER_ID_BLOCK: i64 = 1000;

/// Producer ids reserved through the controller and not yet handed out.
#[derive(Debug, Default)]
pub struct IdBlock {
    next: i64,
    end: i64,
}

impl IdBlock {
    fn take(&mut self) -> Option<i64> {
        (self.next < self.end).then(|| {
            self.next += 1;
            self.next - 1
        })
    }
}

/// The broker behind the handlers.
pub struct Node {
    pub config: Arc<Config>,
    pub info: NodeInfo,
    pub registry: Arc<Registry>,
    pub meta: Arc<RwLock<Arc<ClusterMeta>>>,
    pub controller: ActorRef<ControllerMsg>,
    pub producer_ids: Arc<parking_lot::Mutex<IdBlock>>,
    pub coordinator: ActorRef<CoordinatorMsg>,
    /// The other nodes (none for a single node).
    pub peers: Option<Arc<crate::cluster::network::Peers>>,
    /// The controller group's leader (-1 while unknown), kept by the controller.
    pub controller_leader: Arc<std::sync::atomic::AtomicI32>,
    /// The data dir's free-space guard.
    pub disk: Arc<crate::storage::disk_guard::DiskGuard>,
}

impl Node {
    /// Asks the group coordinator; unbounded (a join waits out its rebalance, and the
    /// coordinator bounds every wait of its own). A coordinator that is gone or dropped the
    /// request is COORDINATOR_NOT_AVAILABLE.
    fn ask_coordinator<R: Send + 'static>(
        &self,
        op: impl FnOnce(tokio::sync::oneshot::Sender<R>) -> GroupOp,
    ) -> BoxFuture<'static, Result<R, ResponseError>> {
        let asked = send_ask(&self.coordinator, |reply| CoordinatorMsg::Group(op(reply)));
        async move {
            asked
                .map_err(|_| ResponseError::CoordinatorNotAvailable)?
                .within(None)
                .await
                .map_err(|_| ResponseError::CoordinatorNotAvailable)
        }
        .boxed()
    }
}

impl Broker for Node {
    fn config(&self) -> &Config {
        &self.config
    }

    fn node(&self) -> &NodeInfo {
        &self.info
    }

    fn metadata(&self) -> Arc<ClusterMeta> {
        self.meta.read().clone()
    }

    fn partition(&self, tp: &TopicPartition) -> Option<PartitionView> {
        let h = self.registry.get(tp)?;
        let (leader, term) = h.leadership();
        Some(PartitionView {
            log: h.log.clone(),
            high_watermark: h.shared.high_watermark.subscribe(),
            leader: leader.map(|l| l as i32),
            leader_epoch: term.min(i32::MAX as u64) as i32,
        })
    }

    fn in_sync(&self, tp: &TopicPartition) -> Option<Vec<i32>> {
        let lag = Duration::from_millis(self.config.replica_lag_time_max_ms);
        self.registry.get(tp)?.in_sync(self.peers.as_deref(), lag)
    }

    fn produce(
        &self,
        tp: TopicPartition,
        batch: ValidBatch,
        acks: i16,
        timeout_ms: u64,
    ) -> BoxFuture<'static, Result<Appending, ResponseError>> {
        let handle = self.registry.get(&tp);
        async move {
            let Some(handle) = handle else {
                return Err(ResponseError::NotLeaderOrFollower);
            };
            let timeout = Duration::from_millis(timeout_ms.max(1));
            let deadline = tokio::time::Instant::now() + timeout;
            let permit = match tokio::time::timeout_at(deadline, handle.produce_permits.clone().acquire_owned()).await {
                Ok(Ok(p)) => p,
                Ok(Err(_)) => return Err(ResponseError::NotLeaderOrFollower),
                Err(_) => return Err(ResponseError::RequestTimedOut),
            };
            let asked = send_ask(&handle.actor, |reply| PartitionMsg::Produce {
                batch: batch.bytes,
                header: batch.header,
                reply,
            })
            .map_err(|e| e.code(ResponseError::NotLeaderOrFollower))?;
            // acks=1 and acks=-1 both wait for commit: on a group of one, commit is the
            // leader's own fsync; in a cluster acks=1 is still never weaker than promised.
            let _ = acks;
            let committed = async move {
                let result = asked
                    .until(deadline)
                    .await
                    .unwrap_or_else(|e| Err(e.code(ResponseError::NotLeaderOrFollower)));
                drop(permit);
                result
            };
            Ok(committed.boxed())
        }
        .boxed()
    }

    fn leader_of(&self, tp: &TopicPartition) -> Option<i32> {
        if let Some(handle) = self.registry.get(tp) {
            return handle.leadership().0.map(|l| l as i32);
        }
        let meta = self.meta.read();
        meta.leaders
            .get(&tp.topic)
            .and_then(|l| l.get(&tp.partition))
            .map(|(leader, _)| *leader)
    }

    fn elect_preferred(
        &self,
        tp: TopicPartition,
        timeout_ms: u64,
    ) -> BoxFuture<'static, Result<(), (ResponseError, String)>> {
        let leader = self.leader_of(&tp);
        let local = self.registry.get(&tp);
        let peers = self.peers.clone();
        let me = self.info.node_id;
        let timeout = Duration::from_millis(timeout_ms.max(1));
        async move {
            let timed_out = || {
                (
                    ResponseError::RequestTimedOut,
                    "the election did not finish in time".to_string(),
                )
            };
            match (leader, local, peers) {
                (Some(l), Some(handle), _) if l == me => {
                    match ask(
                        &handle.actor,
                        |reply| PartitionMsg::ElectPreferred { reply },
                        Some(timeout),
                    )
                    .await
                    {
                        Ok(answer) => answer,
                        Err(AskError::Gone) => {
                            Err((ResponseError::NotLeaderOrFollower, "the partition stopped".into()))
                        }
                        Err(AskError::TimedOut) => Err(timed_out()),
                    }
                }
                (Some(l), _, Some(peers)) if l != me => {
                    let req = Request::ElectPreferred(GroupId::of(&tp));
                    match peers.call(l as crate::types::NodeId, req, timeout).await {
                        Ok(Response::Proposed(Ok(_))) => Ok(()),
                        Ok(Response::Proposed(Err((code, why)))) => Err((
                            ResponseError::try_from_code(code).unwrap_or(ResponseError::UnknownServerError),
                            why,
                        )),
                        Ok(other) => Err((
                            ResponseError::LeaderNotAvailable,
                            format!("the leader answered {other:?}"),
                        )),
                        Err(CallError::Timeout(_)) => Err(timed_out()),
                        Err(CallError::Unreachable(why) | CallError::Failed(why)) => {
                            Err((ResponseError::LeaderNotAvailable, why))
                        }
                    }
                }
                _ => Err((
                    ResponseError::LeaderNotAvailable,
                    "the partition has no leader now".to_string(),
                )),
            }
        }
        .boxed()
    }

    fn propose(&self, cmd: MetaCommand, timeout_ms: u64) -> BoxFuture<'static, Result<i64, (ResponseError, String)>> {
        let controller = self.controller.clone();
        async move {
            let asked = send_ask(&controller, |reply| ControllerMsg::Propose {
                cmd,
                reply,
                forwarded: false,
            })
            .map_err(|_| (ResponseError::NotController, "controller is not running".to_string()))?;
            match asked.within(Some(Duration::from_millis(timeout_ms.max(1)))).await {
                Ok(r) => r,
                Err(AskError::Gone) => Err((ResponseError::NotController, "controller stopped".into())),
                Err(AskError::TimedOut) => Err((
                    ResponseError::RequestTimedOut,
                    "metadata change not applied in time".into(),
                )),
            }
        }
        .boxed()
    }

    fn delete_records(
        &self,
        tp: TopicPartition,
        offset: i64,
        timeout_ms: u64,
    ) -> BoxFuture<'static, Result<i64, ResponseError>> {
        let handle = self.registry.get(&tp);
        let known = self
            .meta
            .read()
            .topics
            .get(&tp.topic)
            .is_some_and(|t| tp.partition >= 0 && tp.partition < t.partitions);
        async move {
            let Some(handle) = handle else {
                return Err(if known {
                    ResponseError::NotLeaderOrFollower
                } else {
                    ResponseError::UnknownTopicOrPartition
                });
            };
            let timeout = Some(Duration::from_millis(timeout_ms));
            ask(
                &handle.actor,
                |reply| PartitionMsg::DeleteRecords { offset, reply },
                timeout,
            )
            .await
            .unwrap_or_else(|e| Err(e.code(ResponseError::NotLeaderOrFollower)))
        }
        .boxed()
    }

    fn find_coordinator(&self, group: String) -> BoxFuture<'static, Result<i32, ResponseError>> {
        let exists = self.meta.read().topics.contains_key(OFFSETS_TOPIC);
        let partitions = self.config.offsets_topic_num_partitions;
        let create = (!exists).then(|| {
            // Committed offsets must never be cut by time or size retention.
            let configs =
                [("retention.ms", "-1"), ("retention.bytes", "-1")].map(|(k, v)| (k.to_string(), v.to_string()));
            let cmd = MetaCommand::CreateTopic {
                name: OFFSETS_TOPIC.into(),
                topic_id: uuid::Uuid::new_v4(),
                partitions,
                // Kafka's offsets.topic.replication.factor (3), capped by the cluster's size.
                replication_factor: crate::handlers::topic_validation::cluster_nodes(&self.meta.read()).min(3),
                configs: configs.into_iter().collect(),
                assignment: None,
            };
            self.propose(cmd, 10_000)
        });
        let registry = self.registry.clone();
        let meta = self.meta.clone();
        let wait = self.wait_topic_ready(OFFSETS_TOPIC.into(), 10_000);
        async move {
            if let Some(create) = create {
                match create.await {
                    Ok(_) | Err((ResponseError::TopicAlreadyExists, _)) => {}
                    Err(_) => return Err(ResponseError::CoordinatorNotAvailable),
                }
            }
            wait.await;
            let meta = meta.read().clone();
            // The topic's own partition count decides, whatever this node's config says.
            let partitions = meta.topics.get(OFFSETS_TOPIC).map_or(partitions, |t| t.partitions);
            let tp = TopicPartition {
                topic: OFFSETS_TOPIC.into(),
                partition: partition_for(&group, partitions),
            };
            // A node without a replica of the partition knows its leader from the controller.
            let recorded = || {
                meta.leaders
                    .get(OFFSETS_TOPIC)
                    .and_then(|l| l.get(&tp.partition))
                    .map(|(leader, _)| *leader)
            };
            match registry.get(&tp) {
                Some(h) => h.leadership().0.map(|l| l as i32),
                None => recorded(),
            }
            .ok_or(ResponseError::CoordinatorNotAvailable)
        }
        .boxed()
    }

    fn commit_offsets(
        &self,
        group: String,
        from: CommitFrom,
        entries: Vec<(OffsetKey, Committed)>,
    ) -> BoxFuture<'static, Result<(), ResponseError>> {
        let coordinator = self.coordinator.clone();
        async move {
            let commit = |reply| CoordinatorMsg::Commit {
                group,
                from,
                entries,
                reply,
            };
            // Unbounded here: the coordinator bounds its writes (offsets.commit.timeout).
            ask(&coordinator, commit, None)
                .await
                .unwrap_or(Err(ResponseError::CoordinatorNotAvailable))
        }
        .boxed()
    }

    fn fetch_offsets(
        &self,
        group: String,
        wanted: Option<Vec<(String, i32)>>,
    ) -> BoxFuture<'static, Result<Vec<(OffsetKey, Committed)>, ResponseError>> {
        let coordinator = self.coordinator.clone();
        async move {
            ask(
                &coordinator,
                |reply| CoordinatorMsg::Fetch { group, wanted, reply },
                None,
            )
            .await
            .unwrap_or(Err(ResponseError::CoordinatorNotAvailable))
        }
        .boxed()
    }

    fn join_group(&self, args: JoinArgs) -> BoxFuture<'static, Result<Joined, ResponseError>> {
        self.ask_coordinator(|reply| GroupOp::Join(args, reply))
    }

    fn sync_group(&self, args: SyncArgs) -> BoxFuture<'static, Result<Bytes, ResponseError>> {
        let asked = self.ask_coordinator(|reply| GroupOp::Sync(args, reply));
        async move { asked.await.and_then(|r| r) }.boxed()
    }

    fn heartbeat(&self, args: HeartbeatArgs) -> BoxFuture<'static, Result<(), ResponseError>> {
        let asked = self.ask_coordinator(|reply| GroupOp::Heartbeat(args, reply));
        async move { asked.await.and_then(|r| r) }.boxed()
    }

    fn leave_group(&self, group: String, members: Vec<(String, Option<String>)>) -> BoxFuture<'static, EachResult> {
        self.ask_coordinator(|reply| GroupOp::Leave { group, members, reply })
    }

    fn describe_groups(&self, groups: Vec<String>) -> BoxFuture<'static, Result<Vec<GroupDescription>, ResponseError>> {
        self.ask_coordinator(|reply| GroupOp::Describe { groups, reply })
    }

    fn list_groups(&self) -> BoxFuture<'static, Result<Vec<GroupListing>, ResponseError>> {
        self.ask_coordinator(|reply| GroupOp::List { reply })
    }

    fn delete_groups(&self, groups: Vec<String>) -> BoxFuture<'static, EachResult> {
        let asked = self.ask_coordinator(|reply| GroupOp::Delete { groups, reply });
        async move { asked.await.and_then(|r| r) }.boxed()
    }

    fn delete_offsets(&self, group: String, partitions: Vec<(String, i32)>) -> BoxFuture<'static, EachResult> {
        let asked = self.ask_coordinator(|reply| GroupOp::DeleteOffsets {
            group,
            partitions,
            reply,
        });
        async move { asked.await.and_then(|r| r) }.boxed()
    }

    fn allocate_producer_id(&self) -> BoxFuture<'static, Result<i64, ResponseError>> {
        let ids = self.producer_ids.clone();
        let propose = self.propose(
            MetaCommand::AllocateProducerIds {
                count: PRODUCER_ID_BLOCK,
            },
            10_000,
        );
        async move {
            if let Some(id) = ids.lock().take() {
                return Ok(id);
            }
            // The block is used up: reserve the next one through the controller group.
            let first = propose.await.map_err(|(code, msg)| {
                tracing::debug!(error = %msg, "could not allocate producer ids");
                if code == ResponseError::RequestTimedOut {
                    code
                } else {
                    ResponseError::CoordinatorNotAvailable
                }
            })?;
            let mut block = ids.lock();
            *block = IdBlock {
                next: first + 1,
                end: first + PRODUCER_ID_BLOCK,
            };
            Ok(first)
        }
        .boxed()
    }

    fn node_alive(&self, id: i32) -> bool {
        // The controller's view, so that every node answers alike.
        !self.meta.read().fenced.contains(&id)
    }

    fn node_heard(&self, id: i32) -> bool {
        match &self.peers {
            Some(p) if id != self.info.node_id => id >= 0 && p.heard_within(id as u64, p.liveness.lease()),
            _ => true,
        }
    }

    fn sends_clients_elsewhere(&self) -> bool {
        self.peers.is_some() && (self.disk.is_low() || self.cut_off())
    }

    fn cut_off(&self) -> bool {
        if self.peers.is_none() {
            return false;
        }
        let meta = self.metadata();
        let me = self.info.node_id;
        if !meta.brokers.contains_key(&me) {
            return false; // not registered yet: no cluster view to be cut off from
        }
        let heard = meta.brokers.keys().filter(|id| self.node_heard(**id)).count();
        2 * heard <= meta.brokers.len()
    }

    fn controller_id(&self) -> i32 {
        let leader = self.controller_leader.load(std::sync::atomic::Ordering::Relaxed);
        // A leader silent for two election timeouts is being replaced: clients told "none
        // yet" ask again, while clients told the dead node wait on it (librdkafka's admin
        // requests go to the controller).
        let silent_for = Duration::from_millis(2 * self.config.raft_election_timeout_ms.max(1));
        match &self.peers {
            Some(p) if leader >= 0 && leader != self.info.node_id && !p.heard_within(leader as u64, silent_for) => -1,
            _ => leader,
        }
    }

    fn data_dir_space(&self) -> Option<(i64, i64)> {
        let (total, usable) = crate::storage::disk_guard::DiskGuard::space(&self.config.data_dir)?;
        Some((total.min(i64::MAX as u64) as i64, usable.min(i64::MAX as u64) as i64))
    }

    fn wait_topic_ready(&self, topic: String, timeout_ms: u64) -> BoxFuture<'static, ()> {
        let node_id = self.info.node_id;
        let registry = self.registry.clone();
        let meta = self.meta.clone();
        let mut changed = registry.changed.subscribe();
        async move {
            // Every partition with a replica here has a leader.
            let ready = || {
                let Some(t) = meta.read().topics.get(&topic).cloned() else {
                    return false;
                };
                t.partitions > 0
                    && (0..t.partitions)
                        .filter(|p| t.replicas_of(*p, node_id).contains(&node_id))
                        .all(|p| {
                            registry
                                .get(&TopicPartition {
                                    topic: topic.clone(),
                                    partition: p,
                                })
                                .is_some_and(|h| h.leadership().0.is_some())
                        })
            };
            let _ = tokio::time::timeout(Duration::from_millis(timeout_ms), async {
                while !ready() {
                    if changed.changed().await.is_err() {
                        return;
                    }
                }
            })
            .await;
        }
        .boxed()
    }
}
