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

fn run_scenario(s: &Scenario, runs: usize, out: &Path) -> anyhow::Result<Row> {
    let mut results = Vec::new();
    for run in 0..runs {
        let name = format!("{}-run{}", s.name, run + 1);
        let r = runner::run(&name, &s.workload)?;
        print!("{}", report::summary(&r));
        report::write(out, &r)?;
        results.push(r);
    }
    Ok(row(&s.name, &results))
}

/// The name of the fixed-rate latency scenario.
pub const LATENCY_SCENARIO: &str = "1-topic-16-partitions-1kb-acks-all-half-peak-rate";

/// Runs every scenario `runs` times, writing each run's JSON/SVG and a summary table to `out`.
pub fn run_all(base: &Workload, runs: usize, out: &Path) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for s in throughput_set(base) {
        rows.push(run_scenario(&s, runs, out)?);
    }
    // The latency run at half the measured acks=all 16-partition peak.
    let peak = rows
        .iter()
        .find(|r| r.name == "1-topic-16-partitions-1kb-acks-all")
        .map(|r| r.records_per_second)
        .unwrap_or(0.0);
    let mut w = base.clone();
    w.partitions = 16;
    w.record_size = 1024;
    w.acks = "all".into();
    w.rate = (peak / 2.0).max(1.0);
    rows.push(run_scenario(
        &Scenario {
            name: LATENCY_SCENARIO.into(),
            workload: w,
        },
        runs,
        out,
    )?);
    write_summary(out, &rows)?;
    Ok(rows)
}

/// Writes `summary.json` and `summary.md` into `out`.
pub fn write_summary(out: &Path, rows: &[Row]) -> anyhow::Result<()> {
    std::fs::write(out.join("summary.json"), serde_json::to_vec_pretty(rows)?)?;
    std::fs::write(out.join("summary.md"), table(rows))?;
    Ok(())
}

/// Rebuilds the table from the `<scenario>-runN.json` files in `dir`.
pub fn summarize(dir: &Path) -> anyhow::Result<Vec<Row>> {
    let mut by_name: std::collections::BTreeMap<String, Vec<RunResult>> = Default::default();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let Some((scenario, _)) = stem.rsplit_once("-run") else {
            continue;
        };
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let r: RunResult = serde_json::from_slice(&std::fs::read(&path)?)?;
        by_name.entry(scenario.to_string()).or_default().push(r);
    }
    let order = |n: &str| {
        throughput_set(&Workload::default_for_order())
            .iter()
            .position(|s| s.name == n)
            .unwrap_or(usize::MAX)
    };
    let mut rows: Vec<Row> = by_name.iter().map(|(n, runs)| row(n, runs)).collect();
    rows.sort_by_key(|r| order(&r.name));
    write_summary(dir, &rows)?;
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
