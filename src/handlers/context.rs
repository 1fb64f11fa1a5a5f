//! What a handler may ask of the broker. The actors implement `Broker`; handlers see only this,
//! so the dependency points from actors to handlers.

use crate::config::Config;
use crate::protocol::batch::ValidBatch;
use crate::storage::log::PartitionLog;
use crate::storage::meta_sm::{ClusterMeta, MetaCommand};
use crate::storage::offsets::{Committed, OffsetKey};
use futures::future::BoxFuture;
use kafka_protocol::error::ResponseError;
use std::sync::Arc;
use tokio::sync::watch;

/// A topic name and partition index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

/// This node as clients see it.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub node_id: i32,
    pub cluster_id: String,
    pub advertised_host: String,
    pub advertised_port: i32,
}

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
    /// Appends a validated batch through the partition's Raft group; resolves with the base
    /// offset once durable (acks=1) or committed (acks=-1), or with a Kafka error.
    fn produce(
        &self,
        tp: TopicPartition,
        batch: ValidBatch,
        acks: i16,
        timeout_ms: u64,
    ) -> BoxFuture<'static, Result<i64, ResponseError>>;
    /// Proposes a metadata change through the controller group; `Ok` carries the allocated
    /// value of an allocation, `Err` a Kafka error and a message.
    fn propose(&self, cmd: MetaCommand, timeout_ms: u64) -> BoxFuture<'static, Result<i64, (ResponseError, String)>>;
    /// A producer id never handed out before, on this or any earlier run.
    fn allocate_producer_id(&self) -> BoxFuture<'static, Result<i64, ResponseError>>;
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
    fn find_coordinator(&self, group: String) -> BoxFuture<'static, Result<(), ResponseError>>;
    /// Commits offsets for a standalone (memberless) group; resolves once durable.
    fn commit_offsets(
        &self,
        group: String,
        entries: Vec<(OffsetKey, Committed)>,
    ) -> BoxFuture<'static, Result<(), ResponseError>>;
    /// Committed offsets of a group (all, or of the listed partitions).
    fn fetch_offsets(
        &self,
        group: String,
        wanted: Option<Vec<(String, i32)>>,
    ) -> BoxFuture<'static, Result<Vec<(OffsetKey, Committed)>, ResponseError>>;
    /// Waits (bounded) until every partition of `topic` has a leader locally.
    fn wait_topic_ready(&self, topic: String, timeout_ms: u64) -> BoxFuture<'static, ()>;
}
