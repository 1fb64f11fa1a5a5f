//! `raftstream-bench idle`: what many idle partitions cost. Creates one topic with many
//! replicated partitions, waits until every partition has a leader, then measures the CPU of
//! the given broker processes (on this machine) over several windows while nothing is
//! produced. Reports each process's per-window figures and median.

use super::stats::{cpu_cores, sample_proc};
use clap::Args;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use serde::Serialize;
use std::time::{Duration, Instant};

/// The idle-cost measurement.
#[derive(Args, Debug, Clone)]
pub struct IdleWorkload {
    /// Bootstrap address of any node of the cluster.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub bootstrap: String,
    /// Topic to create (it must not exist).
    #[arg(long, default_value = "idle")]
    pub topic: String,
    /// Partitions of the topic.
    #[arg(long, default_value_t = 1000)]
    pub partitions: i32,
    /// Replication factor of the topic.
    #[arg(long, default_value_t = 3)]
    pub replication_factor: i32,
    /// Broker process ids to measure (comma-separated).
    #[arg(long, value_delimiter = ',', required = true)]
    pub pids: Vec<u32>,
    /// Measurement windows.
    #[arg(long, default_value_t = 3)]
    pub windows: usize,
    /// Seconds per window.
    #[arg(long, default_value_t = 10.0)]
    pub window_s: f64,
    /// Seconds to let the cluster settle after the last leader appears.
    #[arg(long, default_value_t = 5.0)]
    pub settle_s: f64,
}

/// What an idle run measured.
#[derive(Debug, Serialize)]
pub struct IdleResult {
    pub partitions: i32,
    pub replication_factor: i32,
    /// Seconds from the create request until every partition had a leader.
    pub all_leaders_s: f64,
    /// Per process: percent of one core in each window.
    pub cpu_percent: Vec<(u32, Vec<f64>)>,
}

impl IdleResult {
    /// One line per process: the windows and their median.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "{} idle partitions (RF {}), every leader after {:.1} s\n",
            self.partitions, self.replication_factor, self.all_leaders_s
        );
        for (pid, windows) in &self.cpu_percent {
            let shown: Vec<String> = windows.iter().map(|c| format!("{c:.1}")).collect();
            out += &format!(
                "pid {pid}: {} % of a core (median {:.1})\n",
                shown.join(" / "),
                median(windows)
            );
        }
        out
    }
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Runs the measurement.
pub fn run(w: &IdleWorkload) -> anyhow::Result<IdleResult> {
    let started = Instant::now();
    super::runner::create_topic(
        &w.bootstrap,
        &w.topic,
        w.partitions,
        w.replication_factor,
        Duration::from_secs(300),
    )?;
    let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &w.bootstrap).create()?;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let md = consumer.fetch_metadata(Some(&w.topic), Duration::from_secs(30))?;
        let led = md
            .topics()
            .iter()
            .flat_map(|t| t.partitions())
            .filter(|p| p.leader() > 0)
            .count();
        if led == w.partitions as usize {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {led} partitions have a leader after 600 s"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let all_leaders_s = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs_f64(w.settle_s));
    let mut cpu_percent: Vec<(u32, Vec<f64>)> = w.pids.iter().map(|p| (*p, Vec::new())).collect();
    for _ in 0..w.windows {
        let before: Vec<_> = w.pids.iter().map(|p| sample_proc(*p)).collect();
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_secs_f64(w.window_s));
        let elapsed = t0.elapsed();
        for (i, pid) in w.pids.iter().enumerate() {
            let (Some(b), Some(a)) = (&before[i], sample_proc(*pid)) else {
                anyhow::bail!("process {pid} is gone (or /proc is unavailable)");
            };
            cpu_percent[i].1.push(100.0 * cpu_cores(b, &a, elapsed));
        }
    }
    Ok(IdleResult {
        partitions: w.partitions,
        replication_factor: w.replication_factor,
        all_leaders_s,
        cpu_percent,
    })
}
