//! The scenario set, named after OpenMessaging Benchmark workloads and scaled to one machine:
//! 1 topic / 1 partition / 100 B, 1 topic / 1 partition / 1 KiB, 1 topic / 16 partitions / 1 KiB,
//! each with acks=1 and acks=all, then a fixed-rate latency run at half the measured acks=all
//! 16-partition peak. Each scenario runs several times; the table reports medians.

use super::report;
use super::runner::{self, RunResult};
use super::Workload;
use std::path::Path;

/// A named scenario.
pub struct Scenario {
    pub name: String,
    pub workload: Workload,
}

/// The throughput scenarios derived from `base` (bootstrap, duration, pid...).
pub fn throughput_set(base: &Workload) -> Vec<Scenario> {
    let mut out = Vec::new();
    for (label, partitions, size) in [
        ("1-topic-1-partition-100b", 1, 100),
        ("1-topic-1-partition-1kb", 1, 1024),
        ("1-topic-16-partitions-1kb", 16, 1024),
    ] {
        for acks in ["1", "all"] {
            let mut w = base.clone();
            w.partitions = partitions;
            w.record_size = size;
            w.acks = acks.into();
            w.rate = 0.0;
            out.push(Scenario {
                name: format!("{label}-acks-{acks}"),
                workload: w,
            });
        }
    }
    out
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    if xs.is_empty() {
        f64::NAN
    } else {
        xs[xs.len() / 2]
    }
}

/// Median figures of one scenario over its runs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub name: String,
    pub runs: usize,
    pub records_per_second: f64,
    pub megabytes_per_second: f64,
    pub ack_p50_ms: f64,
    pub ack_p99_ms: f64,
    pub ack_p999_ms: f64,
    pub e2e_p99_ms: f64,
    pub broker_cpu_cores: Option<f64>,
    pub all_verified: bool,
}

fn row(name: &str, runs: &[RunResult]) -> Row {
    let m = |f: fn(&RunResult) -> f64| median(runs.iter().map(f).collect());
    Row {
        name: name.to_string(),
        runs: runs.len(),
        records_per_second: m(|r| r.records_per_second),
        megabytes_per_second: m(|r| r.megabytes_per_second),
        ack_p50_ms: m(|r| r.ack_latency.p50_ms),
        ack_p99_ms: m(|r| r.ack_latency.p99_ms),
        ack_p999_ms: m(|r| r.ack_latency.p999_ms),
        e2e_p99_ms: m(|r| r.e2e_latency.p99_ms),
        broker_cpu_cores: runs
            .iter()
            .all(|r| r.broker_cpu_cores.is_some())
            .then(|| m(|r| r.broker_cpu_cores.unwrap_or(0.0))),
        all_verified: runs.iter().all(|r| r.verification.passed()),
    }
}

/// Runs every scenario `runs` times, writing each run's JSON/SVG and a summary table to `out`.
pub fn run_all(base: &Workload, runs: usize, out: &Path) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mut peak_all_16 = 0.0;
    let mut scenarios = throughput_set(base);
    let mut i = 0;
    while i < scenarios.len() + 1 {
        if i == scenarios.len() {
            // The latency run at half the measured peak, once the peak is known.
            let mut w = base.clone();
            w.partitions = 16;
            w.record_size = 1024;
            w.acks = "all".into();
            w.rate = (peak_all_16 / 2.0f64).max(1.0);
            scenarios.push(Scenario {
                name: "1-topic-16-partitions-1kb-acks-all-half-peak-rate".into(),
                workload: w,
            });
        }
        let s = &scenarios[i];
        let mut results = Vec::new();
        for run in 0..runs {
            let name = format!("{}-run{}", s.name, run + 1);
            let r = runner::run(&name, &s.workload)?;
            print!("{}", report::summary(&r));
            report::write(out, &r)?;
            results.push(r);
        }
        let row = row(&s.name, &results);
        if s.name == "1-topic-16-partitions-1kb-acks-all" {
            peak_all_16 = row.records_per_second;
        }
        rows.push(row);
        i += 1;
        if i > scenarios.len() {
            break;
        }
    }
    std::fs::write(out.join("summary.json"), serde_json::to_vec_pretty(&rows)?)?;
    std::fs::write(out.join("summary.md"), table(&rows))?;
    Ok(rows)
}

/// A Markdown table of medians.
pub fn table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| scenario | runs | records/s | MB/s | ack p50 ms | ack p99 ms | ack p99.9 ms | e2e p99 ms | broker cores | verified |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        s += &format!(
            "| {} | {} | {:.0} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} |\n",
            r.name,
            r.runs,
            r.records_per_second,
            r.megabytes_per_second,
            r.ack_p50_ms,
            r.ack_p99_ms,
            r.ack_p999_ms,
            r.e2e_p99_ms,
            r.broker_cpu_cores
                .map(|c| format!("{c:.2}"))
                .unwrap_or_else(|| "-".into()),
            if r.all_verified { "yes" } else { "NO" }
        );
    }
    s
}
