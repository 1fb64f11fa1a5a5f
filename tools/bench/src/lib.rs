//! The benchmark tool's library (`raftstream-bench`, feature `bench`): drives any
//! Kafka-compatible broker with librdkafka, checks that every produced record is consumed exactly
//! once, and reports throughput and latency percentiles from histograms that keep every sample.

pub mod consumer;
pub mod idle;
pub mod payload;
pub mod producer;
pub mod report;
pub mod runner;
pub mod scenarios;
pub mod stats;

use clap::Args;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// One workload.
#[derive(Args, Debug, Clone, Serialize, Deserialize)]
pub struct Workload {
    /// Bootstrap address of the broker under test.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub bootstrap: String,
    /// Topic name prefix; each run creates a fresh topic.
    #[arg(long, default_value = "bench")]
    pub topic: String,
    /// Partitions of the topic.
    #[arg(long, default_value_t = 1)]
    pub partitions: i32,
    /// Bytes per record value (at least the 28-byte header).
    #[arg(long, default_value_t = 1024)]
    pub record_size: usize,
    /// Records to produce in total (ignored when --duration-s is given).
    #[arg(long, default_value_t = 100_000)]
    pub records: u64,
    /// Produce for this many seconds instead of a record count.
    #[arg(long)]
    pub duration_s: Option<f64>,
    /// Producer instances, each on its own thread.
    #[arg(long, default_value_t = 1)]
    pub producers: u32,
    /// acks: 0, 1 or all.
    #[arg(long, default_value = "all")]
    pub acks: String,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    pub compression: String,
    /// Producer linger.ms.
    #[arg(long, default_value_t = 1)]
    pub linger_ms: u32,
    /// Producer batch.size in bytes.
    #[arg(long, default_value_t = 131_072)]
    pub batch_bytes: u32,
    /// Record keys: none or random (random keys spread records over partitions by hash).
    #[arg(long, default_value = "none")]
    pub keys: String,
    /// Target rate in records/s over all producers (open loop); 0 means as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Consumer instances (each reads a share of the partitions, from the beginning).
    #[arg(long, default_value_t = 1)]
    pub consumers: u32,
    /// Replicas of each partition of the topic (a cluster's benchmark: 3).
    #[arg(long, default_value_t = 1)]
    #[serde(default = "one")]
    pub replication_factor: i32,
    /// Pid of the broker when it runs on this machine, for CPU and RSS figures.
    #[arg(long)]
    pub broker_pid: Option<u32>,
    /// How long consumers may take, after producers finish, to read everything.
    #[arg(long, default_value_t = 60.0)]
    pub drain_timeout_s: f64,
}

/// Runs recorded before `replication_factor` existed were single-replica.
fn one() -> i32 {
    1
}

impl Workload {
    /// A workload with the command-line defaults (for ordering scenario names).
    pub fn default_for_order() -> Workload {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            w: Workload,
        }
        Wrap::parse_from(["x"]).w
    }

    /// When producers stop: after `records`, or at the deadline.
    pub fn stop_rule(&self) -> StopRule {
        match self.duration_s {
            Some(s) => StopRule::Until(Duration::from_secs_f64(s)),
            None => StopRule::Count(self.records),
        }
    }
}

/// When producing stops.
#[derive(Debug, Clone, Copy)]
pub enum StopRule {
    Count(u64),
    Until(Duration),
}

/// A shared clock: every latency is a difference of nanoseconds since `start`.
#[derive(Clone, Copy)]
pub struct Clock {
    pub start: Instant,
}

impl Clock {
    /// Nanoseconds since the run started.
    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
}
