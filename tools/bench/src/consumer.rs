//! A consumer thread: reads its share of the partitions from the beginning with librdkafka,
//! verifies every record, marks it seen (duplicates counted), records end-to-end latency.

use super::payload;
use super::producer::set_bit;
use super::stats::LatencyRecorder;
use super::{Clock, Workload};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What one consumer saw.
#[derive(Default)]
pub struct ConsumerOutcome {
    pub consumed: u64,
    pub duplicates: u64,
    pub corrupt: u64,
    /// Intended send to receipt, per record.
    pub e2e_latency: LatencyRecorder,
    /// Wrapping sum of CRCs of first sightings.
    pub checksum: u64,
    /// Per producer: bit `seq` set when seen.
    pub seen: Vec<Vec<u64>>,
}

/// Shared between consumers and the coordinator.
pub struct Progress {
    /// Distinct records consumed so far by all consumers.
    pub consumed: AtomicU64,
    /// Set when consumers should stop.
    pub stop: AtomicBool,
    /// Consumers that have read the warm-up marker of each of their partitions (the measured
    /// producers wait for all of them, so end-to-end latency excludes consumer start-up).
    pub ready: std::sync::atomic::AtomicU32,
}

/// Runs consumer `index` of `count` until told to stop.
pub fn run(
    index: u32,
    count: u32,
    w: &Workload,
    topic: &str,
    clock: Clock,
    progress: Arc<Progress>,
) -> anyhow::Result<ConsumerOutcome> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &w.bootstrap)
        .set("group.id", "raftstream-bench")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "100")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for p in (0..w.partitions).filter(|p| (*p as u32) % count == index) {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let mut out = ConsumerOutcome::default();
    let assigned = tpl.count();
    let mut markers = std::collections::HashSet::new();
    if assigned == 0 {
        progress.ready.fetch_add(1, Ordering::Relaxed);
    }
    while !progress.stop.load(Ordering::Relaxed) {
        let Some(msg) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let msg = msg?;
        let now = clock.now_ns();
        let Some(d) = msg.payload().and_then(payload::decode) else {
            out.corrupt += 1;
            continue;
        };
        if d.producer == payload::MARKER_PRODUCER {
            if markers.insert(msg.partition()) && markers.len() == assigned {
                progress.ready.fetch_add(1, Ordering::Relaxed);
            }
            continue;
        }
        let p = d.producer as usize;
        if out.seen.len() <= p {
            out.seen.resize(p + 1, Vec::new());
        }
        if set_bit(&mut out.seen[p], d.seq) {
            out.duplicates += 1;
            continue;
        }
        out.consumed += 1;
        out.checksum = out.checksum.wrapping_add(d.crc as u64);
        out.e2e_latency.record(now, now.saturating_sub(d.send_ns));
        progress.consumed.fetch_add(1, Ordering::Relaxed);
    }
    Ok(out)
}
