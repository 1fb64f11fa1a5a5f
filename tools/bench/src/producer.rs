//! A producer thread: librdkafka's BaseProducer, delivery reports handled on the same thread
//! (so recording a sample never contends), open-loop pacing when a rate is set. Latency is
//! measured from the *intended* send time, so a slow broker cannot hide queueing delay
//! (coordinated omission).

use super::payload;
use super::stats::LatencyRecorder;
use super::{Clock, StopRule, Workload};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;
use std::sync::Mutex;
use std::time::Duration;

/// Sequence of the warm-up record each producer sends before the clock starts.
const WARM_UP: u64 = u64::MAX;

/// Lines producers up: all warm up, then the runner sets the start time, then all go.
pub struct StartGate {
    pub warmed: std::sync::Barrier,
    pub go: std::sync::Barrier,
    /// Clock time (ns) at which the measured run starts.
    pub start_ns: std::sync::atomic::AtomicU64,
}

impl StartGate {
    /// A gate for `producers` producers and the runner.
    pub fn new(producers: usize) -> StartGate {
        StartGate {
            warmed: std::sync::Barrier::new(producers + 1),
            go: std::sync::Barrier::new(producers + 1),
            start_ns: Default::default(),
        }
    }
}

/// A record in flight: when it was meant to be sent and its checksum.
pub struct Sent {
    seq: u64,
    intended_ns: u64,
    crc: u32,
}

/// What one producer did.
#[derive(Default)]
pub struct ProducerOutcome {
    pub sent: u64,
    pub acked: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// Produce-to-acknowledgement latency of every acknowledged record.
    pub ack_latency: LatencyRecorder,
    /// Wrapping sum of the CRCs of acknowledged records.
    pub acked_checksum: u64,
    /// Bit `seq` set when record `seq` was acknowledged.
    pub acked_bits: Vec<u64>,
}

struct Ctx {
    clock: Clock,
    out: Mutex<ProducerOutcome>,
}

impl ClientContext for Ctx {}

impl ProducerContext for Ctx {
    type DeliveryOpaque = Box<Sent>;

    fn delivery(&self, result: &DeliveryResult<'_>, sent: Box<Sent>) {
        if sent.seq == WARM_UP {
            return;
        }
        let now = self.clock.now_ns();
        let mut out = self.out.lock().expect("producer outcome lock");
        match result {
            Ok(_) => {
                out.acked += 1;
                out.ack_latency.record(now, now.saturating_sub(sent.intended_ns));
                out.acked_checksum = out.acked_checksum.wrapping_add(sent.crc as u64);
                set_bit(&mut out.acked_bits, sent.seq);
            }
            Err((e, _)) => {
                out.errors += 1;
                if out.first_error.is_none() {
                    out.first_error = Some(e.to_string());
                }
            }
        }
    }
}

/// Sets bit `i`, growing the vector.
pub fn set_bit(bits: &mut Vec<u64>, i: u64) -> bool {
    let word = (i / 64) as usize;
    if bits.len() <= word {
        bits.resize(word + 1, 0);
    }
    let mask = 1u64 << (i % 64);
    let was = bits[word] & mask != 0;
    bits[word] |= mask;
    was
}

/// Runs producer `id` from `start_ns` on the clock until `stop`; `rate` is this producer's
/// share in records/s (0 = max).
pub fn run(
    id: u32,
    w: &Workload,
    topic: &str,
    clock: Clock,
    gate: &StartGate,
    stop: StopRule,
    rate: f64,
) -> anyhow::Result<ProducerOutcome> {
    // Connect and learn metadata before the clock starts, so start-up is not measured; every
    // producer reaches the gate even when this fails, or the others would wait for ever.
    let warm = connect_and_warm_up(id, w, topic, clock);
    gate.warmed.wait();
    gate.go.wait();
    let producer = warm?;
    let start_ns = gate.start_ns.load(std::sync::atomic::Ordering::SeqCst);
    let size = w.record_size.max(payload::HEADER_BYTES);
    let mut buf = vec![0u8; size];
    let mut keys = KeyStream(0x2545_F491_4F6C_DD1Du64 ^ (id as u64 + 1));
    let mut seq = 0u64;
    loop {
        let now = clock.now_ns();
        match stop {
            StopRule::Count(n) if seq >= n => break,
            StopRule::Until(d) if now >= start_ns + d.as_nanos() as u64 => break,
            _ => {}
        }
        let intended = if rate > 0.0 {
            start_ns + (seq as f64 * 1e9 / rate) as u64
        } else {
            now
        };
        wait_until(&producer, clock, intended);
        payload::encode(&mut buf, id, seq, intended);
        let crc = u32::from_be_bytes(buf[24..28].try_into().expect("4 bytes"));
        let key = keys.next_key();
        let sent = Box::new(Sent {
            seq,
            intended_ns: intended,
            crc,
        });
        let mut record = BaseRecord::with_opaque_to(topic, sent).payload(&buf[..]);
        if w.keys == "random" {
            record = record.key(&key[..]);
        }
        send_when_queue_has_room(&producer, record).map_err(|e| anyhow::anyhow!("producer {id}: send failed: {e}"))?;
        producer.poll(Duration::ZERO);
        seq += 1;
    }
    producer.flush(Duration::from_secs(120))?;
    let ctx = producer.context();
    let mut out = std::mem::take(&mut *ctx.out.lock().expect("producer outcome lock"));
    out.sent = seq;
    Ok(out)
}

/// Creates the producer and sends one acknowledged warm-up marker.
fn connect_and_warm_up(id: u32, w: &Workload, topic: &str, clock: Clock) -> anyhow::Result<BaseProducer<Ctx>> {
    let ctx = Ctx {
        clock,
        out: Mutex::new(ProducerOutcome::default()),
    };
    let p: BaseProducer<Ctx> = ClientConfig::new()
        .set("bootstrap.servers", &w.bootstrap)
        .set("acks", &w.acks)
        .set("compression.type", &w.compression)
        .set("linger.ms", w.linger_ms.to_string())
        .set("batch.size", w.batch_bytes.to_string())
        .set("message.timeout.ms", "60000")
        .set("queue.buffering.max.kbytes", "262144")
        .create_with_context(ctx)?;
    let mut marker = vec![0u8; payload::HEADER_BYTES + 8];
    payload::encode(&mut marker, payload::MARKER_PRODUCER, u64::MAX - id as u64, 0);
    let warm_up = Box::new(Sent {
        seq: WARM_UP,
        intended_ns: 0,
        crc: 0,
    });
    p.send(BaseRecord::<(), [u8], _>::with_opaque_to(topic, warm_up).payload(&marker[..]))
        .map_err(|(e, _)| e)?;
    p.flush(Duration::from_secs(60))?;
    Ok(p)
}

/// Sleeps (serving callbacks) until `intended_ns` on the clock. Sleeps rather than spins: on a
/// small machine a spinning client steals the CPU the broker under test needs. Records due
/// while asleep go out back to back, and their latency still counts from their intended time.
fn wait_until(producer: &BaseProducer<Ctx>, clock: Clock, intended_ns: u64) {
    let now = clock.now_ns();
    if intended_ns <= now {
        return;
    }
    let wait = Duration::from_nanos(intended_ns - now);
    if wait > Duration::from_millis(2) {
        producer.poll(wait - Duration::from_millis(1));
    }
    let left = intended_ns.saturating_sub(clock.now_ns());
    if left > 0 {
        std::thread::sleep(Duration::from_nanos(left));
    }
}

/// Sends `record`, waiting (serving callbacks) while librdkafka's queue is full.
fn send_when_queue_has_room<'a>(
    producer: &BaseProducer<Ctx>,
    mut record: BaseRecord<'a, [u8], [u8], Box<Sent>>,
) -> Result<(), KafkaError> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                producer.poll(Duration::from_millis(1));
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// Random record keys (xorshift): cheap, and spread over partitions.
struct KeyStream(u64);

impl KeyStream {
    fn next_key(&mut self) -> [u8; 8] {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0.to_be_bytes()
    }
}
