//! Plots of a run's latency over time, as SVG files beside its report: one chart per workload,
//! p50 and p99 per second on a logarithmic axis, drawn with `plotters`.

use crate::timeline::Second;
use anyhow::Context;
use plotters::prelude::*;
use std::path::Path;

/// Writes `series` (one workload's seconds) to `path` as an SVG chart titled `title`.
pub fn latency_svg(path: &Path, title: &str, series: &[Second]) -> anyhow::Result<()> {
    let seen: Vec<&Second> = series.iter().filter(|s| s.count > 0).collect();
    let top = seen.iter().map(|s| s.p99_ms).fold(1.0, f64::max) * 2.0;
    let bottom = seen.iter().map(|s| s.p50_ms).fold(top, f64::min).max(0.001) / 2.0;
    let width = series.len().max(2) as f64;
    let root = SVGBackend::new(path, (900, 360)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..width, (bottom..top).log_scale())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    chart.configure_mesh().x_desc("seconds").y_desc("latency, ms").draw().map_err(|e| anyhow::anyhow!("{e}"))?;
    for (name, colour, pick) in [("p50", BLUE, 0), ("p99", RED, 1)] {
        let points = seen.iter().map(|s| (s.second as f64, if pick == 0 { s.p50_ms } else { s.p99_ms }));
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    root.present().with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_an_svg_with_both_lines() {
        let dir = std::env::temp_dir().join(format!("olive-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("latency-chat.svg");
        let series: Vec<Second> = (0..30)
            .map(|s| Second { second: s, count: 100, p50_ms: 5.0 + s as f64, p99_ms: 20.0 + s as f64, max_ms: 40.0 })
            .collect();
        latency_svg(&path, "chat delivery", &series).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("chat delivery"));
        assert!(svg.matches("<polyline").count() >= 2, "p50 and p99");
        latency_svg(&dir.join("empty.svg"), "nothing", &[]).unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }
}
