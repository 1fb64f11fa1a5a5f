//! Output of a run: a one-screen summary, a JSON file, and an SVG with the latency percentiles
//! over time and the latency distribution, drawn by the tool itself.

use super::runner::RunResult;
use plotters::prelude::*;
use std::path::Path;

/// The one-screen summary.
pub fn summary(r: &RunResult) -> String {
    let w = &r.workload;
    let v = &r.verification;
    let mut s = format!(
        "== {name}: {parts} partition(s), {size} B records, acks={acks}, compression={comp}, producers={prods}, rate={rate}\n",
        name = r.name,
        parts = w.partitions,
        size = w.record_size,
        acks = w.acks,
        comp = w.compression,
        prods = w.producers,
        rate = if w.rate > 0.0 { format!("{:.0}/s", w.rate) } else { "max".into() },
    );
    s += &format!(
        "throughput   {:>12.0} records/s  {:>8.2} MB/s   ({} acked of {} sent in {:.1} s)\n",
        r.records_per_second, r.megabytes_per_second, r.records_acked, r.records_sent, r.produce_seconds
    );
    for (label, p) in [("produce-ack", &r.ack_latency), ("end-to-end ", &r.e2e_latency)] {
        s += &format!(
            "{label}  ms  p50 {:>8.2}  p90 {:>8.2}  p99 {:>8.2}  p99.9 {:>8.2}  max {:>8.2}  (n={})\n",
            p.p50_ms, p.p90_ms, p.p99_ms, p.p999_ms, p.max_ms, p.count
        );
    }
    if let (Some(cpu), Some(rss)) = (r.broker_cpu_cores, r.broker_max_rss_mb) {
        s += &format!("broker       cpu {cpu:.2} cores   max rss {rss:.0} MB\n");
    }
    s += &format!(
        "verified     {}: lost {} duplicated {} corrupt {} phantom {} (produce errors {}{})\n",
        if v.passed() { "OK" } else { "FAILED" },
        v.lost,
        v.duplicated,
        v.corrupt,
        v.phantom,
        v.produce_errors,
        v.first_produce_error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    );
    s
}

type Timeline = Vec<(usize, super::stats::Percentiles)>;
type PickMs = fn(&super::stats::Percentiles) -> f64;

/// Writes `<dir>/<name>.json` and `<dir>/<name>.svg`.
pub fn write(dir: &Path, r: &RunResult) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(format!("{}.json", r.name)), serde_json::to_vec_pretty(r)?)?;
    draw(&dir.join(format!("{}.svg", r.name)), r)?;
    Ok(())
}

/// Two panels: percentiles per second over the run, and the whole distribution.
pub fn draw(path: &Path, r: &RunResult) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (1000, 760)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(380);
    let seconds = r
        .ack_timeline
        .iter()
        .chain(&r.e2e_timeline)
        .map(|(s, _)| *s as f64 + 1.0)
        .fold(1.0, f64::max);
    let y_max = r
        .ack_timeline
        .iter()
        .chain(&r.e2e_timeline)
        .map(|(_, p)| p.p99_ms)
        .fold(1.0, f64::max)
        * 1.2;
    let mut chart = ChartBuilder::on(&top)
        .caption(format!("{}: latency per second (ms)", r.name), ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..seconds, 0f64..y_max)?;
    chart.configure_mesh().x_desc("second of run").y_desc("ms").draw()?;
    let series: [(&str, &Timeline, PickMs, RGBColor); 4] = [
        ("ack p50", &r.ack_timeline, |p| p.p50_ms, BLUE),
        ("ack p99", &r.ack_timeline, |p| p.p99_ms, RED),
        ("e2e p50", &r.e2e_timeline, |p| p.p50_ms, GREEN),
        ("e2e p99", &r.e2e_timeline, |p| p.p99_ms, MAGENTA),
    ];
    for (label, timeline, pick, color) in series {
        chart
            .draw_series(LineSeries::new(
                timeline.iter().map(|(s, p)| (*s as f64 + 0.5, pick(p))),
                color.stroke_width(2),
            ))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;

    // Distribution: x in "nines" (0 = p0, 1 = p90, 2 = p99, 3 = p99.9 ...).
    let nines = |pct: f64| -((1.0 - pct / 100.0).max(1e-5)).log10();
    let d_max = r
        .ack_distribution
        .iter()
        .chain(&r.e2e_distribution)
        .map(|(_, ms)| *ms)
        .fold(1.0, f64::max)
        * 1.1;
    let mut dist = ChartBuilder::on(&bottom)
        .caption(
            "latency distribution (x: 1 = p90, 2 = p99, 3 = p99.9, 4 = p99.99)",
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..5f64, 0f64..d_max)?;
    dist.configure_mesh().x_desc("nines").y_desc("ms").draw()?;
    for (label, points, color) in [
        ("produce-ack", &r.ack_distribution, BLUE),
        ("end-to-end", &r.e2e_distribution, MAGENTA),
    ] {
        dist.draw_series(LineSeries::new(
            points.iter().map(|(pct, ms)| (nines(*pct), *ms)),
            color.stroke_width(2),
        ))?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    dist.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
