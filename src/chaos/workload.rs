//! The chaos workload: idempotent acks=all librdkafka producers writing unique values
//! (`p<producer>.<instance>-<seq>`, round-robin over the partitions) at a fixed rate, plain
//! readers (one reading on, one seeking back to the start every few seconds) and a consumer
//! group committing what it read. Every invoke, ack, error, read and commit goes to the history.
//! A producer whose librdkafka instance hits a fatal idempotence error is replaced by a new
//! instance (a new producer id), as an application would.

use super::history::{Event, History};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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

fn produce(spec: WorkloadSpec, index: u32, history: Arc<History>, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let mut seq = 0u64;
    let mut instance = 0u32;
    let interval = Duration::from_secs_f64(1.0 / spec.rate_per_producer.max(1) as f64);
    while !stop.load(Ordering::Relaxed) {
        let name = format!("p{index}.{instance}");
        let producer: BaseProducer<ProducerCtx> = ClientConfig::new()
            .set("bootstrap.servers", &spec.bootstrap)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "30000")
            .set("request.timeout.ms", "5000")
            .set("retry.backoff.ms", "100")
            .set("retry.backoff.max.ms", "500")
            .create_with_context(ProducerCtx {
                history: history.clone(),
                name: name.clone(),
            })?;
        let mut next = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            if producer.client().fatal_error().is_some() {
                break;
            }
            let partition = (seq % spec.partitions as u64) as i32;
            let value = format!("{name}-{seq}");
            seq += 1;
            history.record(|t_ms| Event::Invoke {
                t_ms,
                producer: name.clone(),
                partition,
                value: value.clone(),
            });
            let mut record = BaseRecord::<(), [u8], _>::with_opaque_to(&spec.topic, Box::new(partition))
                .partition(partition)
                .payload(value.as_bytes());
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((e, r)) => {
                        if producer.client().fatal_error().is_some() || stop.load(Ordering::Relaxed) {
                            let error = e.to_string();
                            history.record(|t_ms| Event::Fail {
                                t_ms,
                                producer: name.clone(),
                                partition,
                                value: value.clone(),
                                error,
                            });
                            break;
                        }
                        record = r;
                        producer.poll(Duration::from_millis(10));
                    }
                }
            }
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

/// A consumer group member committing what it has read every 200 ms (synchronously: a
/// commit is recorded only once the coordinator accepted it).
fn read_group(spec: WorkloadSpec, history: Arc<History>, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let name = "group";
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &spec.bootstrap)
        .set("group.id", "chaos")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .set("fetch.wait.max.ms", "100")
        .create()?;
    consumer.subscribe(&[&spec.topic])?;
    let mut last_commit = Instant::now();
    let mut dirty = false;
    let commit = |consumer: &BaseConsumer| {
        // Positions are the next offsets to read: everything before them was polled.
        let Ok(positions) = consumer.position() else { return };
        if positions.count() == 0 || consumer.commit(&positions, CommitMode::Sync).is_err() {
            return;
        }
        for e in positions.elements() {
            if let Offset::Offset(offset) = e.offset() {
                let partition = e.partition();
                history.record(|t_ms| Event::Commit {
                    t_ms,
                    reader: name.to_string(),
                    partition,
                    offset,
                });
            }
        }
    };
    while !stop.load(Ordering::Relaxed) {
        if dirty && last_commit.elapsed() >= Duration::from_millis(200) {
            commit(&consumer);
            last_commit = Instant::now();
            dirty = false;
        }
        let Some(Ok(msg)) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        record_read(&history, name, &msg);
        dirty = true;
    }
    commit(&consumer);
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
        let (spec, h, stop) = (spec.clone(), history.clone(), stop_reading.clone());
        readers.push(std::thread::spawn(move || read_group(spec, h, stop)));
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
