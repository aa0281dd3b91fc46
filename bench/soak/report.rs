//! The soak's results: the per-minute curves and each cycle's values in
//! one JSON document, a table on stdout, a PNG of the curves, and the
//! verdict (nothing kept: memory back near where it started, no upward
//! trend of memory, files or threads from cycle to cycle).

use std::path::Path;

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::cycle::{CyclePlan, CycleResult};
use crate::plot_font::register_font;
use crate::samples::Sample;

/// Most the resident memory after a cycle may exceed what the first cycle
/// left (which is above where the server started by what a first stream
/// loads once: GStreamer's plugins and registry, the kept still-image
/// pipelines, the runtime's threads; the summary shows both).
const RSS_RETURN_LIMIT: f64 = 1.10;
/// Idle heap the server leaves by design, MiB: it trims only above this
/// (`src/heap.rs`).
const IDLE_HEAP_LEFT_MIB: f64 = 16.0;
/// Most the resident memory after cycles may grow per cycle, fitted over
/// the cycles after the first, as a share of what the first cycle left.
const RSS_GROWTH_PER_CYCLE_LIMIT: f64 = 0.005;
/// Cycles a trend is fitted over at the least (a few short cycles show
/// the allocator's noise, not a trend).
const TREND_CYCLES: usize = 10;
/// Open files or threads the second half of the cycles may leave beyond
/// the most the first half left (a connection closing as it is read).
const COUNT_SLACK: u64 = 2;

#[derive(Debug, Serialize, Deserialize)]
pub struct Summary {
    pub cycles: usize,
    pub minutes: f64,
    /// Before the first cycle (the server started, one organization).
    pub rss_start_mib: f64,
    pub rss_after_first_cycle_mib: f64,
    pub rss_after_last_cycle_mib: f64,
    pub rss_peak_mib: f64,
    /// Least-squares slope of RSS after each cycle, cycles 2 on, MiB per
    /// cycle.
    pub rss_growth_mib_per_cycle: f64,
    pub rss_anon_start_mib: f64,
    pub rss_anon_after_last_cycle_mib: f64,
    pub fds_start: u64,
    pub fds_after_first_cycle: u64,
    /// Most open files after a cycle of the first half of the cycles, and
    /// of the second: caches that fill once (kept pipelines) show in the
    /// first; what grows with every cycle shows in the second.
    pub fds_most_first_half: u64,
    pub fds_most_second_half: u64,
    pub threads_start: u64,
    pub threads_after_first_cycle: u64,
    pub threads_most_first_half: u64,
    pub threads_most_second_half: u64,
    pub data_after_last_cycle_mib: f64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Soak {
    pub mode: String,
    pub streams_per_cycle: usize,
    pub live_per_cycle: usize,
    pub publish_seconds: f64,
    pub idle_seconds: f64,
    pub started: Sample,
    pub summary: Summary,
    pub cycles: Vec<CycleResult>,
    /// A point every 10 s (smoke: every 5 s).
    pub curve: Vec<Sample>,
}

impl Soak {
    pub fn new(
        mode: &str,
        plan: &CyclePlan,
        started: Sample,
        curve: Vec<Sample>,
        cycles: Vec<CycleResult>,
    ) -> Soak {
        let after =
            |f: fn(&Sample) -> f64| -> Vec<f64> { cycles.iter().map(|c| f(&c.after)).collect() };
        let rss_after = after(|s| s.rss_mib);
        let half = cycles.len().div_ceil(2);
        let most = |cycles: &[CycleResult], f: fn(&Sample) -> u64| {
            cycles.iter().map(|c| f(&c.after)).max().unwrap_or(0)
        };
        let (first_half, second_half) = cycles.split_at(half);
        let first = cycles.first().map(|c| c.after).unwrap_or_default();
        let last = cycles.last().map(|c| c.after).unwrap_or_default();
        let summary = Summary {
            cycles: cycles.len(),
            minutes: last.minute,
            rss_start_mib: started.rss_mib,
            rss_after_first_cycle_mib: first.rss_mib,
            rss_after_last_cycle_mib: last.rss_mib,
            rss_peak_mib: cycles.iter().map(|c| c.peak_rss_mib).fold(0.0, f64::max),
            rss_growth_mib_per_cycle: slope(rss_after.get(1..).unwrap_or_default()),
            rss_anon_start_mib: started.rss_anon_mib,
            rss_anon_after_last_cycle_mib: last.rss_anon_mib,
            fds_start: started.fds,
            fds_after_first_cycle: first.fds,
            fds_most_first_half: most(first_half, |s| s.fds),
            fds_most_second_half: most(second_half, |s| s.fds),
            threads_start: started.threads,
            threads_after_first_cycle: first.threads,
            threads_most_first_half: most(first_half, |s| s.threads),
            threads_most_second_half: most(second_half, |s| s.threads),
            data_after_last_cycle_mib: last.data_mib,
        };
        Soak {
            mode: mode.into(),
            streams_per_cycle: plan.streams,
            live_per_cycle: plan.live,
            publish_seconds: plan.publish.as_secs_f64(),
            idle_seconds: plan.idle.as_secs_f64(),
            started,
            summary,
            cycles,
            curve,
        }
    }

    pub fn print(&self) {
        let s = &self.summary;
        println!(
            "soak: {} cycles in {:.0} min, {} streams each, {} live for {:.0} s",
            s.cycles, s.minutes, self.streams_per_cycle, self.live_per_cycle, self.publish_seconds
        );
        println!(
            "RSS MiB: start {:.0}, after cycle 1 {:.0}, after the last {:.0} ({:+.1} % of start), \
             peak {:.0}, growth {:+.2} MiB per cycle; anon {:.0} -> {:.0}",
            s.rss_start_mib,
            s.rss_after_first_cycle_mib,
            s.rss_after_last_cycle_mib,
            100.0 * (s.rss_after_last_cycle_mib / s.rss_start_mib - 1.0),
            s.rss_peak_mib,
            s.rss_growth_mib_per_cycle,
            s.rss_anon_start_mib,
            s.rss_anon_after_last_cycle_mib
        );
        println!(
            "fds: start {}, after cycle 1 {}, most after a cycle of the first half {} and of \
             the second {}; threads: start {}, after cycle 1 {}, most {} and {}; \
             data left {:.1} MiB",
            s.fds_start,
            s.fds_after_first_cycle,
            s.fds_most_first_half,
            s.fds_most_second_half,
            s.threads_start,
            s.threads_after_first_cycle,
            s.threads_most_first_half,
            s.threads_most_second_half,
            s.data_after_last_cycle_mib
        );
    }

    /// Err with every reason the soak failed.
    pub fn verdict(&self) -> anyhow::Result<()> {
        let s = &self.summary;
        let mut failed = vec![];
        for cycle in &self.cycles {
            if !cycle.errors.is_empty() {
                failed.push(format!("cycle {}: {:?}", cycle.cycle, cycle.errors));
            }
            if cycle.thumbnails == 0 || cycle.motion_clips == 0 || cycle.replay_segments == 0 {
                failed.push(format!(
                    "cycle {}: a feature delivered nothing",
                    cycle.cycle
                ));
            }
        }
        let first = s.rss_after_first_cycle_mib;
        let limit = first * RSS_RETURN_LIMIT + IDLE_HEAP_LEFT_MIB;
        for cycle in &self.cycles {
            if cycle.after.rss_mib > limit {
                failed.push(format!(
                    "RSS after cycle {} {:.0} MiB, over the {limit:.0} MiB allowed \
                     ({:.0} % of the {first:.0} MiB the first left, plus the idle heap \
                     left untrimmed)",
                    cycle.cycle,
                    cycle.after.rss_mib,
                    100.0 * RSS_RETURN_LIMIT,
                ));
            }
        }
        if s.cycles >= TREND_CYCLES
            && s.rss_growth_mib_per_cycle > first * RSS_GROWTH_PER_CYCLE_LIMIT
        {
            failed.push(format!(
                "RSS after each cycle grows {:.2} MiB per cycle",
                s.rss_growth_mib_per_cycle
            ));
        }
        if s.fds_most_second_half > s.fds_most_first_half + COUNT_SLACK {
            failed.push(format!(
                "open files grew: at most {} after the cycles of the first half, {} later",
                s.fds_most_first_half, s.fds_most_second_half
            ));
        }
        if s.threads_most_second_half > s.threads_most_first_half + COUNT_SLACK {
            failed.push(format!(
                "threads grew: at most {} after the cycles of the first half, {} later",
                s.threads_most_first_half, s.threads_most_second_half
            ));
        }
        anyhow::ensure!(failed.is_empty(), "soak failed: {}", failed.join("; "));
        Ok(())
    }

    /// Three charts over the minutes of the soak: memory, open files,
    /// threads; the value after each cycle's idle marked.
    pub fn plot(&self, path: &Path) -> anyhow::Result<()> {
        register_font()?;
        let root = BitMapBackend::new(path, (1400, 900)).into_drawing_area();
        root.fill(&WHITE)?;
        let areas = root.split_evenly((3, 1));
        let minutes = self.curve.last().map(|s| s.minute).unwrap_or(1.0).max(1.0);
        let ends = |f: fn(&Sample) -> f64| -> Vec<(f64, f64)> {
            self.cycles
                .iter()
                .map(|c| (c.after.minute, f(&c.after)))
                .collect()
        };
        let line = |f: fn(&Sample) -> f64| -> Vec<(f64, f64)> {
            self.curve.iter().map(|s| (s.minute, f(s))).collect()
        };
        chart(
            &areas[0],
            "Resident memory (dots: after each cycle's idle)",
            "MiB",
            minutes,
            &[
                ("RSS", &line(|s| s.rss_mib), &ends(|s| s.rss_mib), BLUE),
                (
                    "anonymous",
                    &line(|s| s.rss_anon_mib),
                    &ends(|s| s.rss_anon_mib),
                    CYAN,
                ),
                ("heap in use", &line(|s| s.heap_in_use_mib), &[], MAGENTA),
            ],
        )?;
        chart(
            &areas[1],
            "Open file descriptors",
            "fds",
            minutes,
            &[("fds", &line(|s| s.fds as f64), &ends(|s| s.fds as f64), RED)],
        )?;
        chart(
            &areas[2],
            "Threads",
            "threads",
            minutes,
            &[(
                "threads",
                &line(|s| s.threads as f64),
                &ends(|s| s.threads as f64),
                GREEN,
            )],
        )?;
        root.present()?;
        Ok(())
    }
}

/// Least-squares slope of `values` against their index (0 with fewer than
/// two).
fn slope(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    if values.len() < 2 {
        return 0.0;
    }
    let mean_x = (n - 1.0) / 2.0;
    let mean_y = values.iter().sum::<f64>() / n;
    let (mut covariance, mut variance) = (0.0, 0.0);
    for (i, y) in values.iter().enumerate() {
        let dx = i as f64 - mean_x;
        covariance += dx * (y - mean_y);
        variance += dx * dx;
    }
    covariance / variance
}

/// A named curve, its marked points, its colour.
type Series<'a> = (&'a str, &'a [(f64, f64)], &'a [(f64, f64)], RGBColor);

fn chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    y_label: &str,
    minutes: f64,
    series: &[Series<'_>],
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let max_y = series
        .iter()
        .flat_map(|(_, line, _, _)| line.iter().map(|p| p.1))
        .fold(1.0, f64::max)
        * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..minutes * 1.02, 0.0..max_y)?;
    chart
        .configure_mesh()
        .x_desc("minutes")
        .y_desc(y_label)
        .draw()?;
    for &(name, line, marks, color) in series {
        chart
            .draw_series(LineSeries::new(line.iter().copied(), color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart.draw_series(marks.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
