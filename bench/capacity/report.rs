//! The benchmark's results: one JSON document, a table on stdout and a PNG
//! plot of CPU and RSS against the number of streams.

use std::path::Path;

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::baseline_step::BaselineResult;
use crate::liveproc_step::StepResult;
use crate::memory::{IdleResult, ReplayMemoryResult};

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu: String,
    pub liveproc_build: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct MediaInfo {
    pub file: String,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub video_kbps: u32,
    pub gop_seconds: u32,
    pub measured_mbit_per_second: f64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Largest N every stream of which kept up for the whole hold.
    pub liveproc_max_streams: usize,
    pub baseline_max_streams: usize,
    pub ratio: f64,
    /// The largest held liveproc step, repeated here for convenience.
    pub at_max: Option<StepResult>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Results {
    pub date: String,
    pub mode: String,
    pub machine: Machine,
    pub media: MediaInfo,
    pub hold_seconds: u64,
    pub liveproc_steps: Vec<StepResult>,
    pub baseline_steps: Vec<BaselineResult>,
    pub summary: Summary,
    pub idle_streams: Option<IdleResult>,
    pub replay_memory_one: Option<ReplayMemoryResult>,
    pub replay_memory_n: Option<ReplayMemoryResult>,
}

impl Results {
    pub fn summarize(&mut self) {
        let best_liveproc = self
            .liveproc_steps
            .iter()
            .filter(|s| s.held)
            .max_by_key(|s| s.streams);
        let best_baseline = self
            .baseline_steps
            .iter()
            .filter(|s| s.held)
            .map(|s| s.streams)
            .max()
            .unwrap_or(0);
        let liveproc = best_liveproc.map(|s| s.streams).unwrap_or(0);
        self.summary = Summary {
            liveproc_max_streams: liveproc,
            baseline_max_streams: best_baseline,
            ratio: liveproc as f64 / best_baseline.max(1) as f64,
            at_max: best_liveproc.cloned(),
        };
    }

    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, serde_json::to_string_pretty(self)? + "\n")?;
        Ok(())
    }

    pub fn print_table(&self) {
        println!();
        println!(
            "liveproc, all four features per stream ({} s hold)",
            self.hold_seconds
        );
        println!(
            "{:>7} {:>5} {:>9} {:>9} {:>9} {:>17} {:>17} {:>13} {:>8}",
            "streams",
            "held",
            "cpu %",
            "rss MiB",
            "load %",
            "thumb grpc p50/99",
            "thumb srt p50/99",
            "replay p50/99",
            "lag s"
        );
        for s in &self.liveproc_steps {
            println!(
                "{:>7} {:>5} {:>9.1} {:>9.0} {:>9.1} {:>8.0}/{:<8.0} {:>8.0}/{:<8.0} {:>6.0}/{:<6.0} {:>8.2}",
                s.streams,
                if s.held { "yes" } else { "no" },
                s.server_cpu_percent,
                s.server_rss_mib,
                s.load_cpu_percent,
                s.thumbnail_latency_grpc.p50_ms,
                s.thumbnail_latency_grpc.p99_ms,
                s.thumbnail_latency_srt.p50_ms,
                s.thumbnail_latency_srt.p99_ms,
                s.replay_segment_latency.p50_ms,
                s.replay_segment_latency.p99_ms,
                s.max_ingest_lag_seconds,
            );
            for reason in s.fell_behind.iter().take(5) {
                println!("        behind: {reason}");
            }
        }
        println!();
        println!("baseline, one ffmpeg per stream (decode all, thumbnail, copy recording)");
        println!(
            "{:>7} {:>5} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "streams", "held", "cpu %", "rss MiB", "load %", "speed", "drift s"
        );
        for s in &self.baseline_steps {
            println!(
                "{:>7} {:>5} {:>9.1} {:>9.0} {:>9.1} {:>9.2} {:>9.1}",
                s.streams,
                if s.held { "yes" } else { "no" },
                s.cpu_percent,
                s.rss_mib,
                s.load_cpu_percent,
                s.min_speed,
                s.max_thumbnail_drift_seconds
            );
            for reason in s.fell_behind.iter().take(5) {
                println!("        behind: {reason}");
            }
        }
        println!();
        println!(
            "capacity: liveproc {} streams, baseline {} streams, ratio {:.1}x",
            self.summary.liveproc_max_streams,
            self.summary.baseline_max_streams,
            self.summary.ratio
        );
        if let Some(idle) = &self.idle_streams {
            println!(
                "idle registered stream: {:.1} KiB RSS each ({} streams)",
                idle.kib_per_stream, idle.streams
            );
        }
        for replay in [&self.replay_memory_one, &self.replay_memory_n]
            .into_iter()
            .flatten()
        {
            println!(
                "replay {} s x {} streams: {:.1} MiB media held, buffer RSS {:.1} MiB for {:.1} MiB media ({:+.1} %), RSS growth {:.1} MiB",
                replay.replay_seconds,
                replay.streams,
                replay.media_held_mib,
                replay.buffer_rss_mib,
                replay.buffer_media_mib,
                replay.overhead_percent,
                replay.rss_growth_mib
            );
            if let Some(clip) = &replay.clip_export {
                println!(
                    "clip export: {} s clip ({:.1} MiB) p50 {:.0} ms p99 {:.0} ms, {:.0} MiB/s",
                    clip.clip_seconds,
                    clip.mean_size_mib,
                    clip.p50_ms,
                    clip.p99_ms,
                    clip.mib_per_second_p50
                );
            }
        }
    }

    /// CPU % and RSS against streams, liveproc and baseline side by side.
    pub fn plot(&self, path: &Path) -> anyhow::Result<()> {
        register_font()?;
        let root = BitMapBackend::new(path, (1400, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        let (left, right) = root.split_horizontally(700);
        let max_n = self
            .liveproc_steps
            .iter()
            .map(|s| s.streams)
            .chain(self.baseline_steps.iter().map(|s| s.streams))
            .max()
            .unwrap_or(1) as f64;
        let liveproc = &self.liveproc_steps;
        let baseline = &self.baseline_steps;
        let liveproc_cpu = points(liveproc, |s| (s.streams, s.server_cpu_percent, s.held));
        let load_cpu = points(liveproc, |s| (s.streams, s.load_cpu_percent, s.held));
        let baseline_cpu = points(baseline, |s| (s.streams, s.cpu_percent, s.held));
        let liveproc_rss = points(liveproc, |s| (s.streams, s.server_rss_mib, s.held));
        let baseline_rss = points(baseline, |s| (s.streams, s.rss_mib, s.held));
        chart(
            &left,
            "CPU (% of one core) vs streams (hollow: fell behind)",
            "CPU %",
            max_n,
            &[
                ("liveproc server", &liveproc_cpu, BLUE),
                ("load process (liveproc runs)", &load_cpu, GREEN),
                ("baseline: ffmpeg per stream", &baseline_cpu, RED),
            ],
        )?;
        chart(
            &right,
            "Resident memory vs streams",
            "RSS MiB",
            max_n,
            &[
                ("liveproc server", &liveproc_rss, BLUE),
                ("baseline: ffmpeg per stream", &baseline_rss, RED),
            ],
        )?;
        root.present()?;
        Ok(())
    }
}

/// A named line: (streams, value, held) points.
type Series<'a> = (&'a str, &'a [(f64, f64, bool)], RGBColor);

/// Points sorted by stream count (bisection runs steps out of order).
fn points<T>(steps: &[T], value: impl Fn(&T) -> (usize, f64, bool)) -> Vec<(f64, f64, bool)> {
    let mut points: Vec<(f64, f64, bool)> = steps
        .iter()
        .map(|s| {
            let (n, v, held) = value(s);
            (n as f64, v, held)
        })
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    points
}

fn chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    y_label: &str,
    max_n: f64,
    series: &[Series<'_>],
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let max_y = series
        .iter()
        .flat_map(|(_, points, _)| points.iter().map(|p| p.1))
        .fold(1.0, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..max_n * 1.05, 0.0..max_y)?;
    chart
        .configure_mesh()
        .x_desc("concurrent 1080p30 streams")
        .y_desc(y_label)
        .draw()?;
    for &(name, points, color) in series {
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|p| (p.0, p.1)),
                color.stroke_width(2),
            ))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart.draw_series(points.iter().map(|&(n, v, held)| {
            let style = if held {
                color.filled()
            } else {
                color.stroke_width(2)
            };
            Circle::new((n, v), 5, style)
        }))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// Plot text needs a font: DejaVu Sans from Debian's fonts-dejavu-core.
fn register_font() -> anyhow::Result<()> {
    const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
    let bytes = std::fs::read(FONT)
        .map_err(|e| anyhow::anyhow!("{FONT}: {e} (apt-get install fonts-dejavu-core)"))?;
    plotters::style::register_font(
        "sans-serif",
        FontStyle::Normal,
        Box::leak(bytes.into_boxed_slice()),
    )
    .map_err(|_| anyhow::anyhow!("{FONT} is not a font"))?;
    Ok(())
}
