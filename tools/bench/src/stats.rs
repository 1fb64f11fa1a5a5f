//! Latency recording (every sample, overall and per second) and broker CPU/RSS from /proc.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::time::Duration;

/// Highest latency tracked: one minute, in microseconds.
const MAX_LATENCY_US: u64 = 60_000_000;

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds")
}

/// Every latency sample of one kind: an overall histogram and one per second of the run.
pub struct LatencyRecorder {
    pub overall: Histogram<u64>,
    pub per_second: Vec<Histogram<u64>>,
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        LatencyRecorder {
            overall: new_histogram(),
            per_second: Vec::new(),
        }
    }
}

impl LatencyRecorder {
    /// Records a latency of `latency_ns` observed `at_ns` into the run.
    pub fn record(&mut self, at_ns: u64, latency_ns: u64) {
        let us = (latency_ns / 1000).clamp(1, MAX_LATENCY_US);
        self.overall.record(us).expect("clamped into range");
        let second = (at_ns / 1_000_000_000) as usize;
        while self.per_second.len() <= second {
            self.per_second.push(new_histogram());
        }
        self.per_second[second].record(us).expect("clamped into range");
    }

    /// Adds another recorder's samples.
    pub fn merge(&mut self, other: &LatencyRecorder) {
        self.overall.add(&other.overall).expect("same bounds");
        while self.per_second.len() < other.per_second.len() {
            self.per_second.push(new_histogram());
        }
        for (mine, theirs) in self.per_second.iter_mut().zip(&other.per_second) {
            mine.add(theirs).expect("same bounds");
        }
    }

    /// p50, p90, p99, p99.9 and max, in milliseconds.
    pub fn summary(&self) -> Percentiles {
        Percentiles::of(&self.overall)
    }

    /// Per-second percentiles from `origin_ns` on (seconds with no sample are skipped).
    pub fn timeline(&self, origin_ns: u64) -> Vec<(usize, Percentiles)> {
        let first = (origin_ns / 1_000_000_000) as usize;
        self.per_second
            .iter()
            .enumerate()
            .skip(first)
            .filter(|(_, h)| !h.is_empty())
            .map(|(s, h)| (s - first, Percentiles::of(h)))
            .collect()
    }

    /// (percentile, latency ms) points of the whole distribution, for the distribution plot.
    pub fn distribution(&self) -> Vec<(f64, f64)> {
        let h = &self.overall;
        if h.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut q = 0.0;
        while q < 0.99999 {
            out.push((q * 100.0, h.value_at_quantile(q) as f64 / 1000.0));
            q += (1.0 - q) / 10.0;
        }
        out.push((100.0, h.max() as f64 / 1000.0));
        out
    }
}

/// Latency percentiles in milliseconds, and the sample count.
#[derive(Debug, Clone, Copy, Default, Serialize, serde::Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Percentiles {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

/// CPU time and RSS of a local process, read from /proc.
pub struct ProcSample {
    pub cpu_ticks: u64,
    pub rss_bytes: u64,
}

/// Reads `/proc/<pid>`; `None` if the process is gone or /proc is unavailable.
pub fn sample_proc(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(ProcSample {
        cpu_ticks: utime + stime,
        rss_bytes: rss_kb * 1024,
    })
}

/// Clock ticks per second for /proc CPU times (USER_HZ; 100 on Linux).
pub const TICKS_PER_SECOND: f64 = 100.0;

/// Broker CPU use over a run: cores used on average.
pub fn cpu_cores(before: &ProcSample, after: &ProcSample, elapsed: Duration) -> f64 {
    (after.cpu_ticks.saturating_sub(before.cpu_ticks)) as f64 / TICKS_PER_SECOND / elapsed.as_secs_f64().max(1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_counts() {
        let mut r = LatencyRecorder::default();
        for i in 0..10_000u64 {
            r.record(i * 1_000_000, (i % 100 + 1) * 1_000_000);
        }
        let s = r.summary();
        assert_eq!(s.count, 10_000);
        assert!((s.p50_ms - 50.0).abs() < 0.5, "{s:?}");
        assert!((s.max_ms - 100.0).abs() < 0.5, "{s:?}");
        assert_eq!(r.timeline(0).len(), 10);
        assert_eq!(r.timeline(3_000_000_000).len(), 7);
        assert!(sample_proc(std::process::id()).is_some());
    }
}
