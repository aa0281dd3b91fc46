//! The benchmark's results: one JSON document, a table on stdout and a PNG
//! plot of CPU and RSS against the number of streams.

use std::path::Path;

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::baseline_step::BaselineResult;
use crate::liveproc_step::StepResult;
use crate::memory::{IdleResult, ReplayMemoryResult};
use crate::overload_step::OverloadResult;
use crate::plot_font::register_font;

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

/// Server CPU per stream at one N, every side under the same load.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FixedN {
    pub streams: usize,
    /// % of one core per stream; `None` where that side was not run at N.
    pub liveproc_srt: Option<f64>,
    pub ffmpeg_keyframes: Option<f64>,
    pub ffmpeg_every_frame: Option<f64>,
    /// Whether each side held at N (CPU of a side that fell behind is
    /// what it managed, not what it needed).
    pub held: Vec<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Largest N (all published over SRT, the headline: what encoders
    /// use) every stream of which kept up for the whole hold.
    pub liveproc_max_streams_srt: usize,
    /// The same, all published over gRPC push.
    pub liveproc_max_streams_push: usize,
    /// One ffmpeg per stream, keyframe-only decoding (the baseline).
    pub baseline_keyframes_max_streams: usize,
    /// One ffmpeg per stream decoding every frame (reference).
    pub baseline_every_frame_max_streams: usize,
    /// liveproc's SRT capacity over the keyframe baseline's.
    pub capacity_ratio_vs_keyframe_baseline: f64,
    pub fixed_n: Vec<FixedN>,
    /// Keyframe baseline's CPU per stream over liveproc's (all four
    /// features, SRT), at the largest fixed N both held.
    pub cpu_per_stream_ratio_vs_keyframe_baseline: f64,
    /// The largest held SRT step, repeated here for convenience.
    pub at_max_srt: Option<StepResult>,
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
    /// liveproc over SRT past its measured capacity.
    #[serde(default)]
    pub overload: Option<OverloadResult>,
}

impl Results {
    pub fn summarize(&mut self) {
        let max_liveproc = |protocol: &str| {
            self.liveproc_steps
                .iter()
                .filter(|s| s.held && s.protocol == protocol)
                .max_by_key(|s| s.streams)
        };
        let max_baseline = |decode: &str| {
            self.baseline_steps
                .iter()
                .filter(|s| s.held && s.decode == decode)
                .map(|s| s.streams)
                .max()
                .unwrap_or(0)
        };
        let srt = max_liveproc("srt");
        let liveproc_srt = srt.map(|s| s.streams).unwrap_or(0);
        let keyframes = max_baseline("keyframes");
        let mut fixed_n: Vec<FixedN> = [8, 50]
            .into_iter()
            .map(|n| self.fixed_n(n))
            .filter(|f| f.liveproc_srt.is_some() || f.ffmpeg_keyframes.is_some())
            .collect();
        if fixed_n.is_empty() {
            // Short runs: the smallest N both sides ran.
            if let Some(n) = self
                .liveproc_steps
                .iter()
                .map(|s| s.streams)
                .filter(|n| self.baseline_steps.iter().any(|b| b.streams == *n))
                .min()
            {
                fixed_n.push(self.fixed_n(n));
            }
        }
        let cpu_ratio = fixed_n
            .iter()
            .rev()
            .find(|f| {
                f.held.iter().any(|h| h == "liveproc_srt")
                    && f.held.iter().any(|h| h == "ffmpeg_keyframes")
            })
            .and_then(|f| Some(f.ffmpeg_keyframes? / f.liveproc_srt?))
            .unwrap_or(0.0);
        self.summary = Summary {
            liveproc_max_streams_srt: liveproc_srt,
            liveproc_max_streams_push: max_liveproc("grpc").map(|s| s.streams).unwrap_or(0),
            baseline_keyframes_max_streams: keyframes,
            baseline_every_frame_max_streams: max_baseline("every_frame"),
            capacity_ratio_vs_keyframe_baseline: liveproc_srt as f64 / keyframes.max(1) as f64,
            fixed_n,
            cpu_per_stream_ratio_vs_keyframe_baseline: (cpu_ratio * 100.0).round() / 100.0,
            at_max_srt: srt.cloned(),
        };
    }

    /// Per-stream CPU of every side that ran `n` streams.
    fn fixed_n(&self, n: usize) -> FixedN {
        let mut held = vec![];
        let liveproc = self
            .liveproc_steps
            .iter()
            .find(|s| s.streams == n && s.protocol == "srt");
        if liveproc.is_some_and(|s| s.held) {
            held.push("liveproc_srt".to_string());
        }
        let baseline = |decode: &str| {
            self.baseline_steps
                .iter()
                .find(|s| s.streams == n && s.decode == decode)
        };
        for (name, decode) in [
            ("ffmpeg_keyframes", "keyframes"),
            ("ffmpeg_every_frame", "every_frame"),
        ] {
            if baseline(decode).is_some_and(|s| s.held) {
                held.push(name.to_string());
            }
        }
        let per_stream = |cpu: f64| (cpu / n as f64 * 1000.0).round() / 1000.0;
        FixedN {
            streams: n,
            liveproc_srt: liveproc.map(|s| per_stream(s.server_cpu_percent)),
            ffmpeg_keyframes: baseline("keyframes").map(|s| per_stream(s.cpu_percent)),
            ffmpeg_every_frame: baseline("every_frame").map(|s| per_stream(s.cpu_percent)),
            held,
        }
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
            "{:>5} {:>7} {:>5} {:>9} {:>9} {:>9} {:>17} {:>17} {:>13} {:>8}",
            "via",
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
                "{:>5} {:>7} {:>5} {:>9.1} {:>9.0} {:>9.1} {:>8.0}/{:<8.0} {:>8.0}/{:<8.0} {:>6.0}/{:<6.0} {:>8.2}",
                s.protocol,
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
        if let Some(o) = &self.overload {
            println!(
                "overloaded: {} SRT streams ({} held): {} kept, {} refused, {} shed, {} lost; \
                 kernel drops {}, cpu {:.0} %, held: {}",
                o.streams,
                o.capacity,
                o.kept,
                o.refused,
                o.shed,
                o.lost.len(),
                o.kernel_drops,
                o.server_cpu_percent,
                if o.held { "yes" } else { "no" }
            );
        }
        println!();
        println!("baseline, one ffmpeg per stream (thumbnail, copy recording)");
        println!(
            "{:>11} {:>7} {:>5} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "decoding", "streams", "held", "cpu %", "rss MiB", "load %", "speed", "drift s"
        );
        for s in &self.baseline_steps {
            println!(
                "{:>11} {:>7} {:>5} {:>9.1} {:>9.0} {:>9.1} {:>9.2} {:>9.1}",
                s.decode,
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
        let summary = &self.summary;
        println!(
            "capacity: liveproc {} streams over SRT, {} over gRPC push; ffmpeg keyframe-only {}, every frame {} ({:.1}x the keyframe baseline)",
            summary.liveproc_max_streams_srt,
            summary.liveproc_max_streams_push,
            summary.baseline_keyframes_max_streams,
            summary.baseline_every_frame_max_streams,
            summary.capacity_ratio_vs_keyframe_baseline
        );
        for f in &summary.fixed_n {
            let show = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
            println!(
                "N={}: % of a core per stream: liveproc {} | ffmpeg keyframes {} | every frame {} (held: {})",
                f.streams,
                show(f.liveproc_srt),
                show(f.ffmpeg_keyframes),
                show(f.ffmpeg_every_frame),
                f.held.join(", ")
            );
        }
        println!(
            "CPU per stream, keyframe baseline / liveproc: {:.2}x",
            summary.cpu_per_stream_ratio_vs_keyframe_baseline
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
                "replay {} s x {} streams: {:.1} MiB media held, RSS growth {:.1} MiB ({:+.1} % over the media); buffer alone {:.1} MiB RSS for {:.1} MiB media ({:+.1} %)",
                replay.replay_seconds,
                replay.streams,
                replay.media_held_mib,
                replay.rss_growth_mib,
                replay.overhead_percent,
                replay.buffer_rss_mib,
                replay.buffer_media_mib,
                replay.buffer_overhead_percent
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
                println!(
                    "clip to the frame: {:.1} s p50 {:.0} ms p99 {:.0} ms",
                    clip.exact_seconds, clip.exact_p50_ms, clip.exact_p99_ms
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
        let srt: Vec<StepResult> = self
            .liveproc_steps
            .iter()
            .filter(|s| s.protocol == "srt")
            .cloned()
            .collect();
        let push: Vec<StepResult> = self
            .liveproc_steps
            .iter()
            .filter(|s| s.protocol == "grpc")
            .cloned()
            .collect();
        let decoding = |decode: &str| -> Vec<BaselineResult> {
            self.baseline_steps
                .iter()
                .filter(|s| s.decode == decode)
                .cloned()
                .collect()
        };
        let (keyframes, every) = (decoding("keyframes"), decoding("every_frame"));
        let cpu = |s: &StepResult| (s.streams, s.server_cpu_percent, s.held);
        let rss = |s: &StepResult| (s.streams, s.server_rss_mib, s.held);
        let ffmpeg_cpu = |s: &BaselineResult| (s.streams, s.cpu_percent, s.held);
        let ffmpeg_rss = |s: &BaselineResult| (s.streams, s.rss_mib, s.held);
        let load_cpu = points(&srt, |s| (s.streams, s.load_cpu_percent, s.held));
        chart(
            &left,
            "CPU (% of one core) vs streams (hollow: fell behind)",
            "CPU %",
            max_n,
            &[
                ("liveproc, SRT", &points(&srt, cpu), BLUE),
                ("liveproc, gRPC push", &points(&push, cpu), CYAN),
                ("load process (liveproc SRT runs)", &load_cpu, GREEN),
                (
                    "ffmpeg per stream, keyframes only",
                    &points(&keyframes, ffmpeg_cpu),
                    RED,
                ),
                (
                    "ffmpeg per stream, every frame",
                    &points(&every, ffmpeg_cpu),
                    MAGENTA,
                ),
            ],
        )?;
        chart(
            &right,
            "Resident memory vs streams",
            "RSS MiB",
            max_n,
            &[
                ("liveproc, SRT", &points(&srt, rss), BLUE),
                ("liveproc, gRPC push", &points(&push, rss), CYAN),
                (
                    "ffmpeg per stream, keyframes only",
                    &points(&keyframes, ffmpeg_rss),
                    RED,
                ),
                (
                    "ffmpeg per stream, every frame",
                    &points(&every, ffmpeg_rss),
                    MAGENTA,
                ),
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
