//! One benchmark run: create a fresh topic, start consumers then producers, wait until every
//! acknowledged record has been read (or the drain timeout), verify, and summarise.

use super::consumer::{self, ConsumerOutcome, Progress};
use super::producer::{self, ProducerOutcome};
use super::stats::{cpu_cores, sample_proc, LatencyRecorder, Percentiles, ProcSample};
use super::{Clock, StopRule, Workload};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What verification found; a run passes only when every count is zero.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct Verification {
    /// Acknowledged records never consumed.
    pub lost: u64,
    /// Records consumed more than once.
    pub duplicated: u64,
    /// Values that failed their checksum.
    pub corrupt: u64,
    /// Records consumed that no producer sent.
    pub phantom: u64,
    /// Producer-side send errors (records not acknowledged; not a loss).
    pub produce_errors: u64,
    pub first_produce_error: Option<String>,
}

impl Verification {
    /// True when nothing was lost, duplicated, corrupted or invented.
    pub fn passed(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.corrupt == 0 && self.phantom == 0
    }
}

/// The result of one run.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RunResult {
    pub name: String,
    pub workload: Workload,
    pub topic: String,
    pub produce_seconds: f64,
    pub records_sent: u64,
    pub records_acked: u64,
    pub records_consumed: u64,
    pub records_per_second: f64,
    pub megabytes_per_second: f64,
    pub ack_latency: Percentiles,
    pub e2e_latency: Percentiles,
    /// (second, percentiles) of produce-ack latency.
    pub ack_timeline: Vec<(usize, Percentiles)>,
    /// (second, percentiles) of end-to-end latency.
    pub e2e_timeline: Vec<(usize, Percentiles)>,
    /// (percentile, ms) of the whole ack-latency distribution.
    pub ack_distribution: Vec<(f64, f64)>,
    pub e2e_distribution: Vec<(f64, f64)>,
    pub broker_cpu_cores: Option<f64>,
    pub broker_max_rss_mb: Option<f64>,
    pub verification: Verification,
}

/// Creates `topic` with `partitions` partitions of `replication_factor` replicas through
/// `bootstrap`, waiting at most `timeout` for the broker to confirm.
pub fn create_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    replication_factor: i32,
    timeout: Duration,
) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", bootstrap).create()?;
        let opts = AdminOptions::new().operation_timeout(Some(timeout));
        let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication_factor));
        for r in admin.create_topics(&[new], &opts).await? {
            r.map_err(|(t, e)| anyhow::anyhow!("creating {t}: {e}"))?;
        }
        Ok(())
    })
}

/// Writes one warm-up marker to every partition and waits for them to be acknowledged.
fn send_markers(w: &Workload, topic: &str) -> anyhow::Result<()> {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &w.bootstrap)
        .set("acks", "all")
        .create()?;
    let mut buf = vec![0u8; super::payload::HEADER_BYTES + 8];
    for p in 0..w.partitions {
        super::payload::encode(&mut buf, super::payload::MARKER_PRODUCER, p as u64, 0);
        producer
            .send(BaseRecord::<(), [u8]>::to(topic).partition(p).payload(&buf[..]))
            .map_err(|(e, _)| e)?;
    }
    producer.flush(Duration::from_secs(60))?;
    Ok(())
}

/// Runs workload `w` once under `name`.
pub fn run(name: &str, w: &Workload) -> anyhow::Result<RunResult> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let topic = format!("{}-{}-{}", w.topic, name, stamp);
    create_topic(
        &w.bootstrap,
        &topic,
        w.partitions,
        w.replication_factor,
        Duration::from_secs(30),
    )?;
    let clock = Clock { start: Instant::now() };
    let progress = Arc::new(Progress {
        consumed: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        ready: std::sync::atomic::AtomicU32::new(0),
    });
    let consumers = start_consumers(w, &topic, clock, &progress);
    send_markers(w, &topic)?;
    wait_consumers_ready(w, &progress)?;
    let (producers, gate) = start_producers(w, &topic, clock);
    gate.warmed.wait();
    // Throughput and the timelines count from here, once every consumer is reading and every
    // producer is connected.
    let produce_start = Instant::now();
    let start_ns = clock.now_ns();
    gate.start_ns.store(start_ns, Ordering::SeqCst);
    gate.go.wait();
    let sampler = w.broker_pid.map(BrokerSampler::start);
    let outcomes = joined(producers, "producer")?;
    let produce_seconds = produce_start.elapsed().as_secs_f64();
    let acked: u64 = outcomes.iter().map(|o| o.acked).sum();
    let drain_deadline = Instant::now() + Duration::from_secs_f64(w.drain_timeout_s);
    while progress.consumed.load(Ordering::Relaxed) < acked && Instant::now() < drain_deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    progress.stop.store(true, Ordering::Relaxed);
    let readers = joined(consumers, "consumer")?;
    let broker = sampler.and_then(|s| s.finish(produce_seconds));
    let measured = Measured {
        produce_seconds,
        start_ns,
        broker,
    };
    Ok(summarise(name, w, topic, &outcomes, &readers, measured))
}

/// Starts the consumer threads; they count what they read in `progress`.
fn start_consumers(
    w: &Workload,
    topic: &str,
    clock: Clock,
    progress: &Arc<Progress>,
) -> Vec<std::thread::JoinHandle<anyhow::Result<ConsumerOutcome>>> {
    (0..w.consumers.max(1))
        .map(|i| {
            let (w, topic, progress) = (w.clone(), topic.to_string(), progress.clone());
            std::thread::spawn(move || consumer::run(i, w.consumers.max(1), &w, &topic, clock, progress))
        })
        .collect()
}

/// Waits (60 s at most) until every consumer read its warm-up marker.
fn wait_consumers_ready(w: &Workload, progress: &Progress) -> anyhow::Result<()> {
    let ready_deadline = Instant::now() + Duration::from_secs(60);
    while progress.ready.load(Ordering::Relaxed) < w.consumers.max(1) && Instant::now() < ready_deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    anyhow::ensure!(
        progress.ready.load(Ordering::Relaxed) >= w.consumers.max(1),
        "consumers did not read the warm-up markers within 60 s"
    );
    Ok(())
}

/// Starts the producer threads, each with its share of the rate and of a count limit; they
/// wait at the returned gate.
#[allow(clippy::type_complexity)]
fn start_producers(
    w: &Workload,
    topic: &str,
    clock: Clock,
) -> (
    Vec<std::thread::JoinHandle<anyhow::Result<ProducerOutcome>>>,
    Arc<producer::StartGate>,
) {
    let n = w.producers.max(1);
    let rate_each = w.rate / n as f64;
    let stop = match w.stop_rule() {
        StopRule::Count(total) => StopRule::Count(total / n as u64),
        s => s,
    };
    let gate = Arc::new(producer::StartGate::new(n as usize));
    let producers = (0..n)
        .map(|i| {
            let (w, topic, gate) = (w.clone(), topic.to_string(), gate.clone());
            std::thread::spawn(move || producer::run(i, &w, &topic, clock, &gate, stop, rate_each))
        })
        .collect();
    (producers, gate)
}

/// Joins `threads`, failing on the first that panicked or failed.
fn joined<T>(threads: Vec<std::thread::JoinHandle<anyhow::Result<T>>>, what: &str) -> anyhow::Result<Vec<T>> {
    threads
        .into_iter()
        .map(|t| t.join().map_err(|_| anyhow::anyhow!("{what} thread panicked"))?)
        .collect()
}

/// Samples the broker process's CPU time and memory while producers run.
struct BrokerSampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(Option<ProcSample>, Option<ProcSample>, u64)>,
}

impl BrokerSampler {
    fn start(pid: u32) -> BrokerSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let first = sample_proc(pid);
            let mut max_rss = 0u64;
            while !stopped.load(Ordering::Relaxed) {
                if let Some(s) = sample_proc(pid) {
                    max_rss = max_rss.max(s.rss_bytes);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            (first, sample_proc(pid), max_rss)
        });
        BrokerSampler { stop, thread }
    }

    /// (CPU cores used over `seconds`, peak RSS in MB), if the process could be read.
    fn finish(self, seconds: f64) -> Option<(f64, f64)> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.join().ok()? {
            (Some(a), Some(b), rss) => Some((cpu_cores(&a, &b, Duration::from_secs_f64(seconds)), rss as f64 / 1e6)),
            _ => None,
        }
    }
}

/// What the run measured besides the clients' outcomes.
struct Measured {
    produce_seconds: f64,
    start_ns: u64,
    /// (CPU cores, peak RSS MB) of the broker.
    broker: Option<(f64, f64)>,
}

/// The run's result from what producers and consumers report.
fn summarise(
    name: &str,
    w: &Workload,
    topic: String,
    outcomes: &[ProducerOutcome],
    readers: &[ConsumerOutcome],
    m: Measured,
) -> RunResult {
    let verification = verify(outcomes, readers);
    let mut ack = LatencyRecorder::default();
    for o in outcomes {
        ack.merge(&o.ack_latency);
    }
    let mut e2e = LatencyRecorder::default();
    for r in readers {
        e2e.merge(&r.e2e_latency);
    }
    let acked: u64 = outcomes.iter().map(|o| o.acked).sum();
    let value_bytes = w.record_size.max(super::payload::HEADER_BYTES) as f64;
    RunResult {
        name: name.to_string(),
        workload: w.clone(),
        topic,
        produce_seconds: m.produce_seconds,
        records_sent: outcomes.iter().map(|o| o.sent).sum(),
        records_acked: acked,
        records_consumed: readers.iter().map(|r| r.consumed).sum(),
        records_per_second: acked as f64 / m.produce_seconds,
        megabytes_per_second: acked as f64 * value_bytes / m.produce_seconds / 1e6,
        ack_latency: ack.summary(),
        e2e_latency: e2e.summary(),
        ack_timeline: ack.timeline(m.start_ns),
        e2e_timeline: e2e.timeline(m.start_ns),
        ack_distribution: ack.distribution(),
        e2e_distribution: e2e.distribution(),
        broker_cpu_cores: m.broker.map(|b| b.0),
        broker_max_rss_mb: m.broker.map(|b| b.1),
        verification,
    }
}

/// Compares what producers were told with what consumers read.
fn verify(producers: &[ProducerOutcome], readers: &[ConsumerOutcome]) -> Verification {
    let mut v = Verification {
        produce_errors: producers.iter().map(|p| p.errors).sum(),
        first_produce_error: producers.iter().find_map(|p| p.first_error.clone()),
        corrupt: readers.iter().map(|r| r.corrupt).sum(),
        duplicated: readers.iter().map(|r| r.duplicates).sum(),
        ..Default::default()
    };
    let max_producers = producers
        .len()
        .max(readers.iter().map(|r| r.seen.len()).max().unwrap_or(0));
    for p in 0..max_producers {
        // Merge what all consumers saw of producer p; a record seen by two consumers is a duplicate.
        let mut seen: Vec<u64> = Vec::new();
        for r in readers {
            if let Some(bits) = r.seen.get(p) {
                if seen.len() < bits.len() {
                    seen.resize(bits.len(), 0);
                }
                for (s, b) in seen.iter_mut().zip(bits) {
                    v.duplicated += (*s & *b).count_ones() as u64;
                    *s |= *b;
                }
            }
        }
        let (acked, sent) = producers
            .get(p)
            .map(|o| (o.acked_bits.as_slice(), o.sent))
            .unwrap_or((&[], 0));
        for (i, a) in acked.iter().enumerate() {
            v.lost += (a & !seen.get(i).copied().unwrap_or(0)).count_ones() as u64;
        }
        for (i, s) in seen.iter().enumerate() {
            for bit in 0..64 {
                if s & (1 << bit) != 0 && (i as u64 * 64 + bit) >= sent {
                    v.phantom += 1;
                }
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer::set_bit;

    fn producer(acked: &[u64], sent: u64) -> ProducerOutcome {
        let mut p = ProducerOutcome {
            sent,
            acked: acked.len() as u64,
            ..Default::default()
        };
        for s in acked {
            set_bit(&mut p.acked_bits, *s);
        }
        p
    }

    fn reader(seen: &[(usize, u64)]) -> ConsumerOutcome {
        let mut r = ConsumerOutcome::default();
        for (p, s) in seen {
            if r.seen.len() <= *p {
                r.seen.resize(p + 1, Vec::new());
            }
            set_bit(&mut r.seen[*p], *s);
        }
        r
    }

    #[test]
    fn the_checker_catches_loss_duplicates_and_phantoms() {
        let ok = verify(&[producer(&[0, 1, 2], 3)], &[reader(&[(0, 0), (0, 1), (0, 2)])]);
        assert!(ok.passed(), "{ok:?}");
        let lost = verify(&[producer(&[0, 1, 2], 3)], &[reader(&[(0, 0), (0, 2)])]);
        assert_eq!(lost.lost, 1);
        assert!(!lost.passed());
        let dup = verify(&[producer(&[0, 1], 2)], &[reader(&[(0, 0), (0, 1)]), reader(&[(0, 1)])]);
        assert_eq!(dup.duplicated, 1);
        let phantom = verify(&[producer(&[0], 1)], &[reader(&[(0, 0), (0, 5)])]);
        assert_eq!(phantom.phantom, 1);
        // A record sent but not acknowledged may or may not be stored: not a failure.
        let ambiguous = verify(&[producer(&[0], 2)], &[reader(&[(0, 0), (0, 1)])]);
        assert!(ambiguous.passed());
    }
}
