//! What a handler may ask of the broker. The actors implement `Broker`; handlers see only this,
//! so the dependency points from actors to handlers.

use crate::config::Config;
use crate::protocol::batch::ValidBatch;
use crate::storage::log::PartitionLog;
use crate::storage::meta_sm::{ClusterMeta, MetaCommand};
use crate::storage::offsets::{Committed, OffsetKey};
use crate::types::{NodeInfo, TopicPartition};
use bytes::Bytes;
use futures::future::BoxFuture;
use kafka_protocol::error::ResponseError;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Read access to a local partition (fetch, list offsets, metadata).
#[derive(Clone)]
pub struct PartitionView {
    pub log: Arc<PartitionLog>,
    /// Offset after the last committed record.
    pub high_watermark: watch::Receiver<i64>,
    /// Whether this node leads the partition's Raft group, and its term (the leader epoch).
    pub leader: Option<i32>,
    pub leader_epoch: i32,
}

/// A batch in its partition's queue: resolves with its base offset once committed.
pub type Appending = BoxFuture<'static, Result<i64, ResponseError>>;

/// The broker as handlers see it.
pub trait Broker: Send + Sync + 'static {
    /// Settings.
    fn config(&self) -> &Config;
    /// Identity and advertised address.
    fn node(&self) -> &NodeInfo;
    /// Current cluster metadata (a cheap shared snapshot).
    fn metadata(&self) -> Arc<ClusterMeta>;
    /// A local partition, if it is running.
    fn partition(&self, tp: &TopicPartition) -> Option<PartitionView>;
    /// When this node leads `tp`: its in-sync replicas (itself included), computed on demand
    /// (Metadata, acks=all) rather than on every read. `None` elsewhere: a follower cannot know.
    fn in_sync(&self, tp: &TopicPartition) -> Option<Vec<i32>>;
    /// Hands a validated batch to the partition's Raft group: resolves once it is in the
    /// partition's queue (batches handed over one after another are appended in that order)
    /// with what resolves to the base offset once the batch is committed, or a Kafka error.
    fn produce(
        &self,
        tp: TopicPartition,
        batch: ValidBatch,
        acks: i16,
        timeout_ms: u64,
    ) -> BoxFuture<'static, Result<Appending, ResponseError>>;
    /// Proposes a metadata change through the controller group; `Ok` carries the allocated
    /// value of an allocation, `Err` a Kafka error and a message.
    fn propose(&self, cmd: MetaCommand, timeout_ms: u64) -> BoxFuture<'static, Result<i64, (ResponseError, String)>>;
    /// A producer id never handed out before, on this or any earlier run.
    fn allocate_producer_id(&self) -> BoxFuture<'static, Result<i64, ResponseError>>;
    /// The partition's current leader as this node knows it: its own Raft group's view when it
    /// holds a replica, else the leader last recorded in the controller.
    fn leader_of(&self, tp: &TopicPartition) -> Option<i32>;
    /// Hands the partition's leadership to its preferred replica (the first of its replicas),
    /// through the node that leads it; resolves once it moved, or with a Kafka error and why.
    fn elect_preferred(
        &self,
        tp: TopicPartition,
        timeout_ms: u64,
    ) -> BoxFuture<'static, Result<(), (ResponseError, String)>>;
    /// Moves a partition's log start offset to `offset` (-1: the high watermark); resolves with
    /// the new log start offset.
    fn delete_records(
        &self,
        tp: TopicPartition,
        offset: i64,
        timeout_ms: u64,
    ) -> BoxFuture<'static, Result<i64, ResponseError>>;
    /// Makes sure the offsets topic exists and its partition for `group` is served here;
    /// `Err` is the FindCoordinator error.
    fn find_coordinator(&self, group: String) -> BoxFuture<'static, Result<i32, ResponseError>>;
    /// Commits offsets on behalf of `from` (a member, or a standalone consumer); resolves once
    /// durable.
    fn commit_offsets(
        &self,
        group: String,
        from: CommitFrom,
        entries: Vec<(OffsetKey, Committed)>,
    ) -> BoxFuture<'static, Result<(), ResponseError>>;
    /// Committed offsets of a group (all, or of the listed partitions).
    fn fetch_offsets(
        &self,
        group: String,
        wanted: Option<Vec<(String, i32)>>,
    ) -> BoxFuture<'static, Result<Vec<(OffsetKey, Committed)>, ResponseError>>;
    /// JoinGroup: answered once the group's rebalance lets this member in (`Joined.error`
    /// carries the member-level codes, with the member id the client must use).
    fn join_group(&self, args: JoinArgs) -> BoxFuture<'static, Result<Joined, ResponseError>>;
    /// SyncGroup: this member's assignment.
    fn sync_group(&self, args: SyncArgs) -> BoxFuture<'static, Result<Bytes, ResponseError>>;
    /// Heartbeat.
    fn heartbeat(&self, args: HeartbeatArgs) -> BoxFuture<'static, Result<(), ResponseError>>;
    /// LeaveGroup: one outcome per (member id, group.instance.id).
    fn leave_group(&self, group: String, members: Vec<(String, Option<String>)>) -> BoxFuture<'static, EachResult>;
    /// DescribeGroups.
    fn describe_groups(&self, groups: Vec<String>) -> BoxFuture<'static, Result<Vec<GroupDescription>, ResponseError>>;
    /// ListGroups: (group, protocol type, state) of every group with members or offsets.
    fn list_groups(&self) -> BoxFuture<'static, Result<Vec<GroupListing>, ResponseError>>;
    /// DeleteGroups: one outcome per group (only empty groups go, with their offsets).
    fn delete_groups(&self, groups: Vec<String>) -> BoxFuture<'static, EachResult>;
    /// OffsetDelete: one outcome per partition (only partitions no member subscribes to).
    fn delete_offsets(&self, group: String, partitions: Vec<(String, i32)>) -> BoxFuture<'static, EachResult>;
    /// Whether node `id` is live as the controller sees it (not fenced).
    fn node_alive(&self, id: i32) -> bool;
    /// Whether this node heard from node `id` within the leader lease (itself, and any node
    /// on a single node, always): a leader named to clients must be one.
    fn node_heard(&self, id: i32) -> bool;
    /// Whether this node is cut off from the cluster: within the leader lease it heard from no
    /// majority of the registered nodes (itself counted), so it can commit nothing and names
    /// no leader. Never on a single node.
    fn cut_off(&self) -> bool;
    /// Whether a client should ask another node after this one answered its Metadata: in a
    /// cluster, this node is cut off, or its data dir is full (its groups and its copy of the
    /// cluster metadata stop, so it knows no current leader).
    fn sends_clients_elsewhere(&self) -> bool;
    /// The node leading the controller group (-1 while unknown).
    fn controller_id(&self) -> i32;
    /// (total, usable) bytes of the data dir's filesystem, if it can be read.
    fn data_dir_space(&self) -> Option<(i64, i64)>;
    /// Waits (bounded) until every partition of `topic` has a leader locally.
    fn wait_topic_ready(&self, topic: String, timeout_ms: u64) -> BoxFuture<'static, ()>;
}

/// Who sends an OffsetCommit: a group member (member id, generation, maybe a static instance
/// id), or, with generation < 0 and no member id, a consumer that assigns its own partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitFrom {
    pub member_id: String,
    pub generation: i32,
    pub instance_id: Option<String>,
}

/// What a JoinGroup gets back.
#[derive(Debug, Clone, Default)]
pub struct Joined {
    pub error: Option<ResponseError>,
    pub generation: i32,
    pub protocol_type: String,
    pub protocol: String,
    pub leader: String,
    pub member_id: String,
    /// (member id, metadata) of every member: sent to the leader only.
    pub members: Vec<(String, Bytes)>,
}

/// A JoinGroup request.
pub struct JoinArgs {
    pub group: String,
    pub member_id: String,
    pub client_id: String,
    pub protocol_type: String,
    /// (name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    /// v4+: a first join gets MEMBER_ID_REQUIRED and a member id to rejoin with (KIP-394).
    pub require_known_member_id: bool,
    /// Static membership (KIP-345): the member's stable identity across restarts.
    pub group_instance_id: Option<String>,
}

/// A SyncGroup for the coordinator.
pub struct SyncArgs {
    pub group: String,
    pub generation: i32,
    pub member_id: String,
    pub instance_id: Option<String>,
    /// (member id, assignment) from the leader; empty from the others.
    pub assignments: Vec<(String, Bytes)>,
}

/// A Heartbeat for the coordinator.
pub struct HeartbeatArgs {
    pub group: String,
    pub generation: i32,
    pub member_id: String,
    pub instance_id: Option<String>,
}

/// A group as ListGroups shows it: (group, protocol type, state).
pub type GroupListing = (String, String, String);

/// One outcome per item asked about (member, group, partition), or why none could be given.
pub type EachResult = Result<Vec<Result<(), ResponseError>>, ResponseError>;

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone, Default)]
pub struct GroupDescription {
    pub group: String,
    /// Why the group could not be described (e.g. its partition is still loading).
    pub error: Option<ResponseError>,
    /// Kafka's state names: Empty, PreparingRebalance, CompletingRebalance, Stable, Dead.
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<MemberDescription>,
}

/// A member as DescribeGroups shows it.
#[derive(Debug, Clone, Default)]
pub struct MemberDescription {
    pub member_id: String,
    pub client_id: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}
