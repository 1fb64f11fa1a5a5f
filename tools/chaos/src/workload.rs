//! The chaos workload: idempotent acks=all librdkafka producers writing unique values
//! (`p<producer>.<instance>-<seq>`, round-robin over the partitions) at a fixed rate, with a
//! burst of near-megabyte batches every thousand records, plain
//! readers (one reading on, one seeking back to the start every few seconds) and a consumer
//! group committing what it read, with one member that leaves and rejoins every few seconds
//! so rebalances happen all through the run. Every invoke, ack, error, read and commit goes to the history.
//! A producer whose librdkafka instance hits a fatal idempotence error is replaced by a new
//! instance (a new producer id), as an application would.

use super::history::{Event, History};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the churning group member stays in the group before leaving.
const CHURN_IN_GROUP: Duration = Duration::from_secs(6);
/// How long it stays away before joining again.
const CHURN_AWAY: Duration = Duration::from_secs(3);

/// What to run.
#[derive(Clone)]
pub struct WorkloadSpec {
    pub bootstrap: String,
    pub topic: String,
    pub partitions: i32,
    pub producers: u32,
    /// Records per second per producer.
    pub rate_per_producer: u32,
}

/// The running workload's threads.
pub struct Workload {
    stop_producing: Arc<AtomicBool>,
    stop_reading: Arc<AtomicBool>,
    producers: Vec<JoinHandle<anyhow::Result<()>>>,
    readers: Vec<JoinHandle<anyhow::Result<()>>>,
}

struct ProducerCtx {
    history: Arc<History>,
    name: String,
}

impl ClientContext for ProducerCtx {}

impl ProducerContext for ProducerCtx {
    type DeliveryOpaque = Box<i32>;

    fn delivery(&self, result: &DeliveryResult<'_>, partition: Box<i32>) {
        let producer = self.name.clone();
        let partition = *partition;
        match result {
            Ok(m) => {
                let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
                let offset = m.offset();
                self.history.record(|t_ms| Event::Ack {
                    t_ms,
                    producer,
                    partition,
                    value,
                    offset,
                });
            }
            Err((e, m)) => {
                let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
                let error = e.to_string();
                self.history.record(|t_ms| Event::Fail {
                    t_ms,
                    producer,
                    partition,
                    value,
                    error,
                });
            }
        }
    }
}

/// Every this many records a producer sends a burst: `BURST_RECORDS` records back to back to
/// one partition, each with a `BURST_PAD_BYTES` header, so librdkafka's default batching
/// (batch.size 1,000,000) fills batches near `message.max.bytes` — replication of megabyte
/// entries under faults, not only of the steady trickle. (Every 1,000 filled the nodes'
/// 256 MiB data dirs in a 10-minute run.)
const BURST_EVERY: u64 = 5_000;

/// The producers' `request.timeout.ms`: how long a request to a paused node waits before the
/// client looks for another leader (the availability bounds count it).
pub const REQUEST_TIMEOUT_MS: u64 = 5_000;
/// Records in one burst.
const BURST_RECORDS: u64 = 800;
/// Header bytes of each burst record (the value stays the unique string the checker reads).
const BURST_PAD_BYTES: usize = 1_024;

fn produce(spec: WorkloadSpec, index: u32, history: Arc<History>, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let mut seq = 0u64;
    let mut instance = 0u32;
    let interval = Duration::from_secs_f64(1.0 / spec.rate_per_producer.max(1) as f64);
    let pad = vec![b'~'; BURST_PAD_BYTES];
    while !stop.load(Ordering::Relaxed) {
        let name = format!("p{index}.{instance}");
        let producer: BaseProducer<ProducerCtx> = ClientConfig::new()
            .set("bootstrap.servers", &spec.bootstrap)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("batch.size", "1000000")
            .set("message.timeout.ms", "30000")
            .set("request.timeout.ms", REQUEST_TIMEOUT_MS.to_string())
            .set("retry.backoff.ms", "100")
            .set("retry.backoff.max.ms", "500")
            .create_with_context(ProducerCtx {
                history: history.clone(),
                name: name.clone(),
            })?;
        let sender = Sender {
            producer: &producer,
            history: &history,
            name: &name,
            topic: &spec.topic,
            stop: &stop,
        };
        let mut next = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            if producer.client().fatal_error().is_some() {
                break;
            }
            if seq > 0 && seq.is_multiple_of(BURST_EVERY) {
                let partition = ((seq / BURST_EVERY) % spec.partitions as u64) as i32;
                for _ in 0..BURST_RECORDS {
                    sender.send(partition, seq, Some(&pad));
                    seq += 1;
                }
            }
            sender.send((seq % spec.partitions as u64) as i32, seq, None);
            seq += 1;
            next += interval;
            let now = Instant::now();
            if next > now {
                producer.poll(next - now);
            } else {
                producer.poll(Duration::ZERO);
                next = now;
            }
        }
        // Every queued value gets its delivery report (ack or error) before the instance goes.
        let _ = producer.flush(Duration::from_secs(60));
        instance += 1;
    }
    Ok(())
}

/// One producer instance, as the workload sends through it.
struct Sender<'a> {
    producer: &'a BaseProducer<ProducerCtx>,
    history: &'a History,
    name: &'a str,
    topic: &'a str,
    stop: &'a AtomicBool,
}

impl Sender<'_> {
    /// Sends value `<name>-<seq>` to `partition` (with a `pad` header if given), waiting while
    /// librdkafka's queue is full; records the invoke, and the failure if it cannot be queued.
    fn send(&self, partition: i32, seq: u64, pad: Option<&[u8]>) {
        let value = format!("{}-{seq}", self.name);
        self.history.record(|t_ms| Event::Invoke {
            t_ms,
            producer: self.name.to_string(),
            partition,
            value: value.clone(),
        });
        let mut record = BaseRecord::<(), [u8], _>::with_opaque_to(self.topic, Box::new(partition))
            .partition(partition)
            .payload(value.as_bytes());
        if let Some(pad) = pad {
            record = record.headers(OwnedHeaders::new().insert(Header {
                key: "pad",
                value: Some(pad),
            }));
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return,
                Err((e, r)) => {
                    if self.producer.client().fatal_error().is_some() || self.stop.load(Ordering::Relaxed) {
                        let error = e.to_string();
                        self.history.record(|t_ms| Event::Fail {
                            t_ms,
                            producer: self.name.to_string(),
                            partition,
                            value: value.clone(),
                            error,
                        });
                        return;
                    }
                    record = r;
                    self.producer.poll(Duration::from_millis(10));
                }
            }
        }
    }
}

/// How far back the seeking reader jumps, per partition (re-reading everything each time would
/// grow the history quadratically over a long run).
const RESEEK_BACK_RECORDS: i64 = 2000;

/// A plain reader of every partition from the start; with `reseek_every`, it seeks every
/// partition back `RESEEK_BACK_RECORDS` that often (re-reading must show the same values).
fn read_plain(
    spec: WorkloadSpec,
    name: String,
    reseek_every: Option<Duration>,
    history: Arc<History>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &spec.bootstrap)
        .set("group.id", format!("chaos-{name}-unused"))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        .create()?;
    let assign = |from: Offset| -> anyhow::Result<()> {
        let mut tpl = TopicPartitionList::new();
        for p in 0..spec.partitions {
            tpl.add_partition_offset(&spec.topic, p, from)?;
        }
        consumer.assign(&tpl)?;
        Ok(())
    };
    assign(Offset::Beginning)?;
    let mut last_seek = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if reseek_every.is_some_and(|every| last_seek.elapsed() >= every) {
            assign(Offset::OffsetTail(RESEEK_BACK_RECORDS))?;
            last_seek = Instant::now();
        }
        let Some(Ok(msg)) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        record_read(&history, &name, &msg);
    }
    Ok(())
}

fn record_read(history: &History, reader: &str, msg: &impl Message) {
    let value = String::from_utf8_lossy(msg.payload().unwrap_or_default()).into_owned();
    history.record(|t_ms| Event::Read {
        t_ms,
        reader: reader.to_string(),
        partition: msg.partition(),
        offset: msg.offset(),
        value,
    });
}

/// A group member's callbacks: before partitions are taken away it commits what it read of
/// them (as applications do, so the next owner starts where it stopped); after an assignment
/// it records what it was given.
struct MemberCtx {
    history: Arc<History>,
    name: String,
    /// Set before the consumer is closed: closing revokes through this callback while
    /// rust-rdkafka discards the messages still queued, which moves librdkafka's positions past
    /// records the application never saw (committing them would skip them for the next owner).
    closing: AtomicBool,
    /// Print librdkafka's log lines (`RS_CHAOS_GROUP_DEBUG` is set).
    debug: bool,
}

/// librdkafka `debug` contexts for the group members, from the environment (a diagnosis aid).
const GROUP_DEBUG: &str = "RS_CHAOS_GROUP_DEBUG";

/// Sets librdkafka's `debug` from `RS_CHAOS_GROUP_DEBUG` when it is set.
trait DebugFromEnv {
    fn set_debug_from_env(&mut self) -> &mut Self;
}

impl DebugFromEnv for ClientConfig {
    fn set_debug_from_env(&mut self) -> &mut Self {
        match std::env::var(GROUP_DEBUG) {
            Ok(contexts) => self
                .set("debug", contexts)
                .set_log_level(rdkafka::config::RDKafkaLogLevel::Debug),
            Err(_) => self,
        }
    }
}

impl ClientContext for MemberCtx {
    /// librdkafka's own log lines of a group member, on the harness's stderr: with
    /// `RS_CHAOS_GROUP_DEBUG=fetch,consumer` (librdkafka `debug` contexts) they show which
    /// answer moved a member's position (the open `group_reread` finding).
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        if self.debug {
            eprintln!("{} {:?} {fac} {log_message}", self.name, level);
        }
    }
}

impl ConsumerContext for MemberCtx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(_) = rebalance {
            if !self.closing.load(Ordering::Relaxed) {
                commit_positions(consumer, &self.history, &self.name);
            }
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(parts) = rebalance {
            let partitions = parts.elements().iter().map(|e| e.partition()).collect();
            let reader = self.name.clone();
            self.history.record(|t_ms| Event::Assigned {
                t_ms,
                reader,
                partitions,
            });
        }
    }
}

/// Commits the member's positions (synchronously: a commit is recorded only once the
/// coordinator accepted it).
fn commit_positions(consumer: &BaseConsumer<MemberCtx>, history: &History, name: &str) {
    // Positions are the next offsets to read: everything before them was polled.
    let Ok(positions) = consumer.position() else { return };
    let positions = positions.elements();
    let committable: Vec<_> = positions
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(offset) => Some((e.partition(), offset)),
            _ => None,
        })
        .collect();
    if committable.is_empty() {
        return;
    }
    let mut list = TopicPartitionList::new();
    for e in &positions {
        let _ = list.add_partition_offset(e.topic(), e.partition(), e.offset());
    }
    if consumer.commit(&list, CommitMode::Sync).is_err() {
        return;
    }
    for (partition, offset) in committable {
        history.record(|t_ms| Event::Commit {
            t_ms,
            reader: name.to_string(),
            partition,
            offset,
        });
    }
}

/// How a group member comes and goes: `None` stays for the whole run; `Some((on, off))` is
/// in the group for `on`, leaves (a rebalance for the others), is away for `off`, and joins
/// again (another rebalance), for as long as the run lasts.
type Churn = Option<(Duration, Duration)>;

/// A consumer group member committing what it has read every 200 ms and before a rebalance
/// takes partitions away.
fn read_group(
    spec: WorkloadSpec,
    name: String,
    churn: Churn,
    history: Arc<History>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    while !stop.load(Ordering::Relaxed) {
        let consumer: BaseConsumer<MemberCtx> = ClientConfig::new()
            .set("bootstrap.servers", &spec.bootstrap)
            .set("group.id", "chaos")
            .set("client.id", &name)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "10000")
            .set("fetch.wait.max.ms", "100")
            .set_debug_from_env()
            .create_with_context(MemberCtx {
                history: history.clone(),
                name: name.clone(),
                closing: AtomicBool::new(false),
                debug: std::env::var_os(GROUP_DEBUG).is_some(),
            })?;
        consumer.subscribe(&[&spec.topic])?;
        let joined = Instant::now();
        let mut last_commit = Instant::now();
        let mut dirty = false;
        while !stop.load(Ordering::Relaxed) && churn.is_none_or(|(on, _)| joined.elapsed() < on) {
            if dirty && last_commit.elapsed() >= Duration::from_millis(200) {
                commit_positions(&consumer, &history, &name);
                last_commit = Instant::now();
                dirty = false;
            }
            let Some(Ok(msg)) = consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            record_read(&history, &name, &msg);
            dirty = true;
        }
        commit_positions(&consumer, &history, &name);
        // Dropping the consumer closes it: it leaves the group, without committing again.
        consumer.context().closing.store(true, Ordering::Relaxed);
        drop(consumer);
        let Some((_, off)) = churn else { break };
        let away = Instant::now();
        while !stop.load(Ordering::Relaxed) && away.elapsed() < off {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(())
}

impl Workload {
    /// Starts producers and readers.
    pub fn start(spec: &WorkloadSpec, history: Arc<History>) -> Workload {
        let stop_producing = Arc::new(AtomicBool::new(false));
        let stop_reading = Arc::new(AtomicBool::new(false));
        let producers = (0..spec.producers)
            .map(|i| {
                let (spec, h, stop) = (spec.clone(), history.clone(), stop_producing.clone());
                std::thread::spawn(move || produce(spec, i, h, stop))
            })
            .collect();
        let mut readers = Vec::new();
        for (name, reseek) in [("reader", None), ("seeker", Some(Duration::from_secs(7)))] {
            let (spec, h, stop) = (spec.clone(), history.clone(), stop_reading.clone());
            readers.push(std::thread::spawn(move || {
                read_plain(spec, name.into(), reseek, h, stop)
            }));
        }
        // One member stays; another comes and goes, forcing rebalances all through the run.
        let members = [("group", None), ("group-churn", Some((CHURN_IN_GROUP, CHURN_AWAY)))];
        for (name, churn) in members {
            let (spec, h, stop) = (spec.clone(), history.clone(), stop_reading.clone());
            readers.push(std::thread::spawn(move || {
                read_group(spec, name.into(), churn, h, stop)
            }));
        }
        Workload {
            stop_producing,
            stop_reading,
            producers,
            readers,
        }
    }

    /// Stops producing and waits until every value has its ack or error.
    pub fn stop_producers(&mut self) -> anyhow::Result<()> {
        self.stop_producing.store(true, Ordering::Relaxed);
        for p in self.producers.drain(..) {
            p.join().map_err(|_| anyhow::anyhow!("producer thread panicked"))??;
        }
        Ok(())
    }

    /// Stops the readers.
    pub fn stop_readers(&mut self) -> anyhow::Result<()> {
        self.stop_reading.store(true, Ordering::Relaxed);
        for r in self.readers.drain(..) {
            r.join().map_err(|_| anyhow::anyhow!("reader thread panicked"))??;
        }
        Ok(())
    }
}
