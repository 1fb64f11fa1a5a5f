//! One chaos run: start the cluster in its namespaces, check it is the cluster we started, run
//! the workload under the scenario's faults, heal, let it recover, read everything back (through
//! Kafka and from every replica's files), check, and write `history.jsonl`, `summary.json` and
//! `timeline.svg` to the run's directory.

use super::checker::{self, Records, Summary};
use super::history::{self, History};
use super::nemesis;
use super::network::{Network, NetworkMode};
use super::nodes::Nodes;
use super::replicas::{read_replica, Writer};
use super::scenarios::{Rng, Scenario};
use super::timeline;
use super::workload::{Workload, WorkloadSpec};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Topic the workload writes.
pub const TOPIC: &str = "chaos";

/// Everything a run needs besides its scenario.
#[derive(Clone)]
pub struct RunOptions {
    /// The raftstream binary.
    pub bin: PathBuf,
    /// Directory for the run's files (a subdirectory per scenario).
    pub out: PathBuf,
    pub nodes: i32,
    pub partitions: i32,
    pub producers: u32,
    pub rate_per_producer: u32,
    /// Extra environment for every node (the broken-build switch).
    pub node_env: Vec<(String, String)>,
    /// Namespaces, the proxy fallback, or whichever works here.
    pub network: NetworkMode,
}

/// Runs `scenario`; returns the checker's summary.
pub fn run(opts: &RunOptions, scenario: &Scenario) -> anyhow::Result<Summary> {
    let dir = opts.out.join(&scenario.name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    let ids: Vec<i32> = (1..=opts.nodes).collect();
    let (network, addrs) = Network::create(&ids, opts.network)?;
    let mut env = opts.node_env.clone();
    let mut disks = Vec::new();
    if scenario.fills_disks() {
        // Each node on a small disk of its own that the nemesis can fill; a node refuses
        // produce below 16 MiB free.
        env.push(("RAFTSTREAM_LOG_DIR_MIN_FREE_BYTES".into(), (16u64 << 20).to_string()));
        for id in &ids {
            disks.push(SmallDisk::mount(&dir.join(format!("node{id}")), "256m")?);
        }
    }
    let mut nodes = Nodes::new(opts.bin.clone(), dir.clone(), ids.clone(), addrs, env);
    let client = start_cluster(opts, &mut nodes)?;
    let bootstrap = nodes.bootstrap();
    let history = Arc::new(History::create(&dir.join("history.jsonl"))?);
    // The nodes' logs carry wall-clock times; this maps the history's times onto them.
    let unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    println!("   history time 0 is unix time {unix_ms} ms");
    let spec = WorkloadSpec {
        bootstrap: bootstrap.clone(),
        topic: TOPIC.into(),
        partitions: opts.partitions,
        producers: opts.producers,
        rate_per_producer: opts.rate_per_producer,
    };
    let mut workload = Workload::start(&spec, history.clone());
    // The schedule starts once the group has committed every partition. Before that a member
    // starts a partition from a logical offset (earliest), and librdkafka (2.12.1) acts on a
    // ListOffsets answer that arrives late from a restarted leader by restarting the partition
    // at earliest again: a client re-read the broker cannot prevent (docs/reliability.md). With
    // a commit everywhere, a re-read below it is the broker's fault, and the checker fails it.
    wait_until("the group committed every partition", Duration::from_secs(60), || {
        history.committed_partitions() >= opts.partitions as usize
    })?;
    run_schedule(scenario, &mut nodes, &network, &client, &history)?;
    nodes.wait_all_ready(Duration::from_secs(120))?;
    std::thread::sleep(Duration::from_millis(scenario.tail_ms));
    workload.stop_producers()?;
    // Every replica back in sync before reading, so the replica logs are complete.
    wait_until("every replica in sync", Duration::from_secs(60), || {
        all_partitions(
            &client,
            |_, leader, replicas, isr| leader >= 0 && isr.len() == replicas.len(),
            opts.partitions,
        )
    })?;
    let final_reads = read_all(&bootstrap, opts.partitions)?;
    workload.stop_readers()?;
    history.flush()?;
    nodes.stop_all()?;
    let (replicas, writers) = read_replicas(opts, &nodes, &ids)?;
    // Replicas are read; the small disks (and their copies of the data) can go.
    drop(disks);
    std::fs::write(dir.join("final-reads.json"), serde_json::to_vec(&final_reads)?)?;
    std::fs::write(dir.join("replicas.json"), serde_json::to_vec(&replicas)?)?;
    std::fs::write(dir.join("writers.json"), serde_json::to_vec(&writers)?)?;
    std::fs::write(dir.join("scenario.json"), serde_json::to_vec_pretty(scenario)?)?;
    check_dir(&dir)
}

/// Starts every node, checks each is the one started, creates the topic and waits for its
/// leaders; returns a metadata client.
fn start_cluster(opts: &RunOptions, nodes: &mut Nodes) -> anyhow::Result<BaseConsumer> {
    for id in nodes.ids().to_vec() {
        nodes.start(id)?;
    }
    nodes.wait_all_ready(Duration::from_secs(120))?;
    check_identity(nodes)?;
    let bootstrap = nodes.bootstrap();
    let rf = 3.min(opts.nodes);
    raftstream_bench::runner::create_topic(&bootstrap, TOPIC, opts.partitions, rf, Duration::from_secs(60))?;
    let client: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &bootstrap).create()?;
    wait_until("every partition has a leader", Duration::from_secs(60), || {
        all_partitions(&client, |_, leader, _, _| leader >= 0, opts.partitions)
    })?;
    Ok(client)
}

/// Applies and heals each step's faults at its time.
fn run_schedule(
    scenario: &Scenario,
    nodes: &mut Nodes,
    network: &Network,
    client: &BaseConsumer,
    history: &History,
) -> anyhow::Result<()> {
    let schedule_start_ms = history.now_ms();
    let mut rng = Rng::new(scenario.seed);
    for step in &scenario.steps {
        let (now, at_ms) = (history.now_ms(), schedule_start_ms + step.at_ms);
        if at_ms > now {
            std::thread::sleep(Duration::from_millis(at_ms - now));
        }
        let applied = nemesis::apply(step, nodes, network, client, TOPIC, &mut rng, history)?;
        std::thread::sleep(Duration::from_millis(step.hold_ms));
        nemesis::heal(applied, nodes, network, history)?;
    }
    Ok(())
}

/// Every stopped node's copy of every partition: its records and who wrote each.
#[allow(clippy::type_complexity)]
fn read_replicas(
    opts: &RunOptions,
    nodes: &Nodes,
    ids: &[i32],
) -> anyhow::Result<(Vec<(i32, i32, Records)>, Vec<(i32, i32, Vec<Writer>)>)> {
    let mut replicas: Vec<(i32, i32, Records)> = Vec::new();
    let mut writers: Vec<(i32, i32, Vec<Writer>)> = Vec::new();
    for id in ids {
        for p in 0..opts.partitions {
            if let Some(r) = read_replica(&nodes.data_dir(*id), TOPIC, p)? {
                replicas.push((*id, p, r.records));
                writers.push((*id, p, r.writers));
            }
        }
    }
    Ok((replicas, writers))
}

/// Checks the run in `dir` from its files (history, final reads, replica reads, schedule) and
/// writes `summary.json` and `timeline.svg`: a run can be checked again after the fact.
pub fn check_dir(dir: &std::path::Path) -> anyhow::Result<Summary> {
    let events = history::read(&dir.join("history.jsonl"))?;
    let final_reads: BTreeMap<i32, Records> = serde_json::from_slice(&std::fs::read(dir.join("final-reads.json"))?)?;
    let replicas: Vec<(i32, i32, Records)> = serde_json::from_slice(&std::fs::read(dir.join("replicas.json"))?)?;
    let replicas: BTreeMap<(i32, i32), Records> = replicas.into_iter().map(|(n, p, r)| ((n, p), r)).collect();
    let scenario: Scenario = serde_json::from_slice(&std::fs::read(dir.join("scenario.json"))?)?;
    // Who wrote each record (older run directories have no such file): explains duplicates.
    let writers: Vec<(i32, i32, Vec<Writer>)> = std::fs::read(dir.join("writers.json"))
        .ok()
        .and_then(|d| serde_json::from_slice(&d).ok())
        .unwrap_or_default();
    let mut writer_of: HashMap<(i32, i64), Writer> = HashMap::new();
    for (_, p, ws) in writers {
        for w in ws {
            writer_of.insert((p, w.0), w);
        }
    }
    let summary = checker::check(&events, &final_reads, &replicas, &writer_of);
    std::fs::write(dir.join("summary.json"), serde_json::to_vec_pretty(&summary)?)?;
    let title = format!(
        "{} (seed {}): acks per partition, faults shaded",
        scenario.name, scenario.seed
    );
    timeline::draw(&dir.join("timeline.svg"), &title, &events, &summary)?;
    Ok(summary)
}

/// Every node answers Metadata for itself at its own address, and all share one cluster id:
/// the processes reached are the ones this run started.
fn check_identity(nodes: &Nodes) -> anyhow::Result<()> {
    let cluster = nodes.cluster_id(nodes.ids()[0])?;
    for &id in nodes.ids() {
        anyhow::ensure!(nodes.cluster_id(id)? == cluster, "node {id} is in another cluster");
        let client: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", nodes.kafka_addr(id))
            .create()?;
        let md = client.fetch_metadata(None, Duration::from_secs(10))?;
        let me = md
            .brokers()
            .iter()
            .find(|b| b.id() == id)
            .ok_or_else(|| anyhow::anyhow!("node {id} missing from its own Metadata"))?;
        anyhow::ensure!(
            format!("{}:{}", me.host(), me.port()) == nodes.kafka_addr(id),
            "node {id} registered {}:{}",
            me.host(),
            me.port()
        );
    }
    Ok(())
}

fn all_partitions(client: &BaseConsumer, ok: impl Fn(i32, i32, &[i32], &[i32]) -> bool, partitions: i32) -> bool {
    let Ok(md) = client.fetch_metadata(Some(TOPIC), Duration::from_secs(5)) else {
        return false;
    };
    let Some(t) = md.topics().iter().find(|t| t.name() == TOPIC) else {
        return false;
    };
    t.partitions().len() == partitions as usize
        && t.partitions()
            .iter()
            .all(|p| ok(p.id(), p.leader(), p.replicas(), p.isr()))
}

fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !cond() {
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Every record of every partition, read through Kafka from the start to the high watermark.
fn read_all(bootstrap: &str, partitions: i32) -> anyhow::Result<BTreeMap<i32, Records>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "chaos-final-read-unused")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "50")
        .create()?;
    let mut out = BTreeMap::new();
    for p in 0..partitions {
        let (_, high) = consumer.fetch_watermarks(TOPIC, p, Duration::from_secs(10))?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(TOPIC, p, Offset::Beginning)?;
        consumer.assign(&tpl)?;
        let mut records: Records = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        while records.last().map_or(high > 0, |(o, _)| *o + 1 < high) {
            anyhow::ensure!(Instant::now() < deadline, "final read of partition {p} stalled");
            if let Some(msg) = consumer.poll(Duration::from_millis(200)) {
                let msg = msg?;
                let value = String::from_utf8_lossy(msg.payload().unwrap_or_default()).into_owned();
                records.push((msg.offset(), value));
            }
        }
        out.insert(p, records);
    }
    Ok(out)
}

/// A tmpfs of a fixed size mounted on a node's data dir (unmounted, and so emptied, on drop).
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &std::path::Path, size: &str) -> anyhow::Result<SmallDisk> {
        std::fs::create_dir_all(dir)?;
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()?;
        anyhow::ensure!(status.success(), "cannot mount a tmpfs on {}", dir.display());
        Ok(SmallDisk(dir.to_path_buf()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
