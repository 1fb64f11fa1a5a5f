//! The timeline picture of a chaos run: acknowledgements per partition per 250 ms, with every
//! fault drawn as a shaded band from its start to its heal, and the windows the checker found
//! a partition unavailable marked under the axis.

use super::checker::Summary;
use super::history::Event;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

const BUCKET_MS: u64 = 250;

/// Draws `path` (SVG).
pub fn draw(path: &Path, title: &str, events: &[Event], summary: &Summary) -> anyhow::Result<()> {
    let end_ms = events.iter().map(Event::t_ms).max().unwrap_or(0).max(1);
    let mut acks: BTreeMap<i32, Vec<u32>> = BTreeMap::new();
    let buckets = (end_ms / BUCKET_MS + 1) as usize;
    let mut faults = Vec::new();
    let mut open: BTreeMap<String, (u64, Vec<i32>)> = BTreeMap::new();
    for e in events {
        match e {
            Event::Ack { t_ms, partition, .. } => {
                acks.entry(*partition).or_insert_with(|| vec![0; buckets])[(*t_ms / BUCKET_MS) as usize] += 1;
            }
            Event::Fault { t_ms, what, nodes } => {
                open.insert(what.clone(), (*t_ms, nodes.clone()));
            }
            Event::Heal { t_ms, what } => {
                if let Some((from, nodes)) = open.remove(what) {
                    faults.push((what.clone(), nodes, from, *t_ms));
                }
            }
            _ => {}
        }
    }
    faults.extend(
        open.into_iter()
            .map(|(what, (from, nodes))| (what, nodes, from, end_ms)),
    );
    let per_second = 1000.0 / BUCKET_MS as f64;
    let y_max = acks.values().flatten().copied().max().unwrap_or(1) as f64 * per_second * 1.3;
    let x_max = end_ms as f64 / 1000.0;
    // Wider for long runs, so fault labels stay apart.
    let width = (x_max * 4.0).clamp(1200.0, 3200.0) as u32;
    let root = SVGBackend::new(path, (width, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..x_max, (-0.08 * y_max)..y_max)?;
    chart
        .configure_mesh()
        .x_desc("second of run")
        .y_desc("acks/s per partition")
        .draw()?;
    for (i, (what, nodes, from, to)) in faults.iter().enumerate() {
        let (x0, x1) = (*from as f64 / 1000.0, *to as f64 / 1000.0);
        chart.draw_series(std::iter::once(Rectangle::new(
            [(x0, 0.0), (x1, y_max)],
            Palette99::pick(i).mix(0.15).filled(),
        )))?;
        let label = format!("{what} {nodes:?}");
        let y = y_max * (0.95 - 0.06 * (i % 5) as f64);
        chart.draw_series(std::iter::once(Text::new(label, (x0, y), ("sans-serif", 12))))?;
    }
    for (i, (p, counts)) in acks.iter().enumerate() {
        let color = Palette99::pick(i + 20);
        chart
            .draw_series(LineSeries::new(
                counts
                    .iter()
                    .enumerate()
                    .map(|(b, n)| ((b as f64 + 0.5) * BUCKET_MS as f64 / 1000.0, *n as f64 * per_second)),
                color.stroke_width(2),
            ))?
            .label(format!("partition {p}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart.draw_series(summary.unavailable.iter().map(|w| {
        Rectangle::new(
            [
                (w.from_ms as f64 / 1000.0, -0.07 * y_max),
                (w.to_ms as f64 / 1000.0, -0.02 * y_max),
            ],
            RED.mix(0.6).filled(),
        )
    }))?;
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
