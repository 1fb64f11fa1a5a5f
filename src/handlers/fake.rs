//! A fake `Broker` for handler unit tests: metadata, local partitions, the nodes it hears and
//! the coordinator's availability are set by the test; proposals are recorded, not applied.
//! Everything a test does not set answers as an unreachable broker would.

use super::context::{
    Appending, Broker, CommitFrom, EachResult, GroupDescription, GroupListing, HeartbeatArgs, JoinArgs, Joined,
    PartitionView, SyncArgs,
};
use crate::config::Config;
use crate::protocol::batch::ValidBatch;
use crate::storage::meta_sm::{ClusterMeta, MetaCommand};
use crate::storage::offsets::{Committed, OffsetKey};
use crate::types::{NodeInfo, TopicPartition};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use kafka_protocol::error::ResponseError;
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The fake.
pub struct FakeBroker {
    pub config: Config,
    pub node: NodeInfo,
    pub meta: Arc<ClusterMeta>,
    pub partitions: BTreeMap<TopicPartition, PartitionView>,
    /// Nodes this node hears from (itself always).
    pub heard: BTreeSet<i32>,
    /// Whether this node sends clients elsewhere (cut off, or its disk full).
    pub elsewhere: bool,
    /// What every coordinator operation answers when it cannot be served.
    pub coordinator_down: Option<ResponseError>,
    /// Metadata changes proposed so far.
    pub proposed: Mutex<Vec<MetaCommand>>,
}

impl FakeBroker {
    /// Node `node_id` of cluster "fake", with no topics, hearing only itself.
    pub fn new(node_id: i32) -> FakeBroker {
        FakeBroker {
            config: Config::default(),
            node: NodeInfo {
                node_id,
                cluster_id: "fake".into(),
                advertised_host: "localhost".into(),
                advertised_port: 9092,
                listeners: Default::default(),
            },
            meta: Arc::new(ClusterMeta::default()),
            partitions: BTreeMap::new(),
            heard: BTreeSet::from([node_id]),
            elsewhere: false,
            coordinator_down: Some(ResponseError::CoordinatorNotAvailable),
            proposed: Mutex::new(Vec::new()),
        }
    }

    fn coordinator<T: Send + 'static>(&self) -> BoxFuture<'static, Result<T, ResponseError>> {
        let code = self.coordinator_down.unwrap_or(ResponseError::CoordinatorNotAvailable);
        async move { Err(code) }.boxed()
    }
}

impl Broker for FakeBroker {
    fn config(&self) -> &Config {
        &self.config
    }
    fn node(&self) -> &NodeInfo {
        &self.node
    }
    fn metadata(&self) -> Arc<ClusterMeta> {
        self.meta.clone()
    }
    fn partition(&self, tp: &TopicPartition) -> Option<PartitionView> {
        self.partitions.get(tp).cloned()
    }
    fn in_sync(&self, tp: &TopicPartition) -> Option<Vec<i32>> {
        let view = self.partitions.get(tp)?;
        (view.leader == Some(self.node.node_id)).then(|| vec![self.node.node_id])
    }
    fn produce(
        &self,
        _tp: TopicPartition,
        _batch: ValidBatch,
        _acks: i16,
        _timeout_ms: u64,
    ) -> BoxFuture<'static, Result<Appending, ResponseError>> {
        async { Err(ResponseError::NotLeaderOrFollower) }.boxed()
    }
    fn propose(&self, cmd: MetaCommand, _timeout_ms: u64) -> BoxFuture<'static, Result<i64, (ResponseError, String)>> {
        self.proposed.lock().push(cmd);
        async { Ok(0) }.boxed()
    }
    fn allocate_producer_id(&self) -> BoxFuture<'static, Result<i64, ResponseError>> {
        async { Err(ResponseError::NotController) }.boxed()
    }
    fn leader_of(&self, tp: &TopicPartition) -> Option<i32> {
        self.partitions.get(tp).and_then(|v| v.leader)
    }
    fn elect_preferred(
        &self,
        _tp: TopicPartition,
        _timeout_ms: u64,
    ) -> BoxFuture<'static, Result<(), (ResponseError, String)>> {
        async { Err((ResponseError::LeaderNotAvailable, "fake".to_string())) }.boxed()
    }
    fn delete_records(
        &self,
        _tp: TopicPartition,
        _offset: i64,
        _timeout_ms: u64,
    ) -> BoxFuture<'static, Result<i64, ResponseError>> {
        async { Err(ResponseError::NotLeaderOrFollower) }.boxed()
    }
    fn find_coordinator(&self, _group: String) -> BoxFuture<'static, Result<i32, ResponseError>> {
        self.coordinator()
    }
    fn commit_offsets(
        &self,
        _group: String,
        _from: CommitFrom,
        _entries: Vec<(OffsetKey, Committed)>,
    ) -> BoxFuture<'static, Result<(), ResponseError>> {
        self.coordinator()
    }
    fn fetch_offsets(
        &self,
        _group: String,
        _wanted: Option<Vec<(String, i32)>>,
    ) -> BoxFuture<'static, Result<Vec<(OffsetKey, Committed)>, ResponseError>> {
        self.coordinator()
    }
    fn join_group(&self, _args: JoinArgs) -> BoxFuture<'static, Result<Joined, ResponseError>> {
        self.coordinator()
    }
    fn sync_group(&self, _args: SyncArgs) -> BoxFuture<'static, Result<Bytes, ResponseError>> {
        self.coordinator()
    }
    fn heartbeat(&self, _args: HeartbeatArgs) -> BoxFuture<'static, Result<(), ResponseError>> {
        self.coordinator()
    }
    fn leave_group(&self, _group: String, _members: Vec<(String, Option<String>)>) -> BoxFuture<'static, EachResult> {
        self.coordinator()
    }
    fn describe_groups(
        &self,
        _groups: Vec<String>,
    ) -> BoxFuture<'static, Result<Vec<GroupDescription>, ResponseError>> {
        self.coordinator()
    }
    fn list_groups(&self) -> BoxFuture<'static, Result<Vec<GroupListing>, ResponseError>> {
        self.coordinator()
    }
    fn delete_groups(&self, _groups: Vec<String>) -> BoxFuture<'static, EachResult> {
        self.coordinator()
    }
    fn delete_offsets(&self, _group: String, _partitions: Vec<(String, i32)>) -> BoxFuture<'static, EachResult> {
        self.coordinator()
    }
    fn node_alive(&self, id: i32) -> bool {
        !self.meta.fenced.contains(&id)
    }
    fn node_heard(&self, id: i32) -> bool {
        self.heard.contains(&id)
    }
    fn cut_off(&self) -> bool {
        self.elsewhere
    }
    fn sends_clients_elsewhere(&self) -> bool {
        self.elsewhere
    }
    fn controller_id(&self) -> i32 {
        self.node.node_id
    }
    fn data_dir_space(&self) -> Option<(i64, i64)> {
        None
    }
    fn wait_topic_ready(&self, _topic: String, _timeout_ms: u64) -> BoxFuture<'static, ()> {
        async {}.boxed()
    }
}
