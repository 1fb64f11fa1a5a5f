//! Value types every layer shares: topic-partitions, node identity, and the Raft type
//! configuration with the commands its entries carry. Imports nothing of the broker, so
//! storage, cluster, actors and handlers may all depend on it without depending on each other.

pub mod meta_error;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::io::Cursor;

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
    /// (host, port) clients are told per listener name (PLAINTEXT, SSL, ...).
    pub listeners: std::collections::BTreeMap<String, (String, i32)>,
}

/// Raft node id (Kafka `node.id`).
pub type NodeId = u64;

/// A Raft entry's application payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// A Kafka record batch for a partition group; the log assigns its offsets.
    Batch(Bytes),
    /// A cluster-metadata change for the controller group (JSON of `MetaCommand`).
    Meta(Bytes),
    /// DeleteRecords on a partition group: every replica moves its log start offset here, so
    /// deleted records stay deleted after a failover.
    LogStart(i64),
}

/// What applying an entry produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CommandResult {
    /// For a batch: the Kafka offset the log gave its first record.
    pub base_offset: i64,
    /// For a metadata change: why it was refused.
    pub error: Option<crate::types::meta_error::MetaError>,
    /// For a metadata change that allocates: the first value allocated (producer ids).
    #[serde(default)]
    pub value: i64,
}

openraft::declare_raft_types!(
    /// The openraft type configuration of every raftstream group.
    pub TypeConfig:
        D = Command,
        R = CommandResult,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
);

/// One Raft group handle.
pub type Raft = openraft::Raft<TypeConfig>;

/// A Raft entry.
pub type Entry = openraft::Entry<TypeConfig>;
/// A Raft log id.
pub type LogId = openraft::LogId<NodeId>;
/// Storage error type.
pub type StorageError = openraft::StorageError<NodeId>;
