//! What every partition of this node shares: node-wide settings and handles, built once by the
//! broker and held by the supervisor and each partition as one `Arc` (they were copied field by
//! field three times before).

use crate::actors::partition::registry::Registry;
use crate::actors::partition::reports::LeaderReports;
use crate::cluster::network::Peers;
use crate::storage::disk_guard::DiskGuard;
use crate::storage::log::retention::RetentionLimits;
use crate::storage::log::LogConfig;
use crate::storage::meta_sm::{ClusterMeta, TopicMeta};
use crate::storage::FlushSink;
use crate::types::{NodeId, TopicPartition};
use parking_lot::RwLock;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Node-wide settings and handles of the partitions.
pub struct PartitionEnv {
    pub data_dir: PathBuf,
    pub node_id: NodeId,
    pub raft_config: Arc<openraft::Config>,
    /// The broker's log settings; a topic's `segment.bytes`/`segment.ms` replace its defaults.
    pub log_config: LogConfig,
    pub sink: Arc<dyn FlushSink>,
    pub registry: Arc<Registry>,
    /// Cluster metadata (for the topics' overrides).
    pub meta: Arc<RwLock<Arc<ClusterMeta>>>,
    /// Produces one partition holds at once (`partition.max.pending.produces`, at least one).
    pub max_pending_produces: usize,
    /// Idle time after which a producer's sequence state is forgotten.
    pub producer_expiration_ms: i64,
    /// Broker-wide retention defaults.
    pub retention: RetentionLimits,
    pub retention_check_interval_ms: u64,
    /// The other nodes (none for a single node).
    pub peers: Option<Arc<Peers>>,
    /// Where won leaderships are reported for the controller (multi-node clusters).
    pub leader_reports: Option<Arc<LeaderReports>>,
    /// Bound of one catch-up wait of a reassignment.
    pub reassignment_catch_up_timeout: Duration,
    /// How often leaders check for their preferred replica (None: never).
    pub leader_rebalance_interval: Option<Duration>,
    /// A replica not heard from within this long counts as down.
    pub replica_lag_time_max: Duration,
    /// Free space of the data dir: produce is refused while it is low.
    pub disk: Arc<DiskGuard>,
}

impl PartitionEnv {
    /// Where `tp`'s files live.
    pub fn partition_dir(&self, tp: &TopicPartition) -> PathBuf {
        self.data_dir
            .join("topics")
            .join(format!("{}-{}", tp.topic, tp.partition))
    }

    /// The log settings of a partition of `topic`: the node's, with the topic's segment
    /// overrides.
    pub fn log_config_for(&self, topic: Option<&TopicMeta>) -> LogConfig {
        let o = topic.map(|t| &t.overrides);
        LogConfig {
            segment_bytes: o.and_then(|o| o.segment_bytes).unwrap_or(self.log_config.segment_bytes),
            segment_ms: o.and_then(|o| o.segment_ms).unwrap_or(self.log_config.segment_ms),
            ..self.log_config
        }
    }

    /// The retention of a partition of `topic`: the topic's overrides, else the broker's.
    pub fn retention_for(&self, topic: Option<&TopicMeta>) -> RetentionLimits {
        let o = topic.map(|t| &t.overrides);
        RetentionLimits {
            retention_ms: o.and_then(|o| o.retention_ms).unwrap_or(self.retention.retention_ms),
            retention_bytes: o
                .and_then(|o| o.retention_bytes)
                .unwrap_or(self.retention.retention_bytes),
        }
    }

    /// Longest wait for a new leader's first entry (the election timeout).
    pub fn leader_ready_wait(&self) -> Duration {
        Duration::from_millis(self.raft_config.election_timeout_max)
    }
}
