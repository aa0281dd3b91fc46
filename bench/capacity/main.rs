//! Capacity benchmark: how many live 1080p30 streams one machine processes
//! with all four features on, against one ffmpeg per stream, with latency,
//! clip export and memory. `make bench` (`cargo bench --bench capacity`)
//! runs it in full and writes `bench/results.json` and `bench/results.png`;
//! under `cargo test` it runs a short smoke version that checks the whole
//! harness works end to end.
//!
//! Modules: [`media`] makes and indexes the input; [`load`] publishes it in
//! real time (SRT and gRPC push); [`watch`] subscribes to the outputs;
//! [`analysis`] turns both into latencies and gaps; [`liveproc_step`] and
//! [`baseline_step`] run one step of N streams; [`overload_step`] runs
//! liveproc past its measured capacity; [`memory`] measures idle
//! streams, the replay buffer and clip export; [`proc_stats`] reads CPU and
//! RSS from /proc; [`report`] prints, writes and plots the results, with
//! the font [`plot_font`] registers.

#[path = "../../tests/common/mod.rs"]
mod common;

mod analysis;
mod baseline_step;
mod liveproc_step;
mod load;
mod media;
mod memory;
mod overload_step;
mod plot_font;
// Shared with the soak, which also reads open files and threads.
#[allow(dead_code)]
mod proc_stats;
mod report;
mod srt_load;
mod watch;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use baseline_step::Decode;
use liveproc_step::Protocol;
use media::{Media, MediaSpec};
use report::{Machine, MediaInfo, Results};

#[derive(Parser, Debug)]
#[command(about = "liveproc capacity benchmark")]
struct Args {
    /// Set by `cargo bench`: the full run. Without it, the smoke run.
    #[arg(long)]
    bench: bool,
    /// Stream counts to try with liveproc over SRT, smallest first (each
    /// of these lists: 0 for none).
    #[arg(long, value_delimiter = ',')]
    steps: Option<Vec<usize>>,
    /// Stream counts to try with liveproc over gRPC push.
    #[arg(long, value_delimiter = ',')]
    push_steps: Option<Vec<usize>>,
    /// Stream counts to try with the keyframe-only ffmpeg baseline.
    #[arg(long, value_delimiter = ',')]
    baseline_steps: Option<Vec<usize>>,
    /// Stream counts to try with the every-frame ffmpeg reference.
    #[arg(long, value_delimiter = ',')]
    full_decode_steps: Option<Vec<usize>>,
    /// Seconds each step is held.
    #[arg(long)]
    hold: Option<u64>,
    /// Streams registered (not live) for the idle memory measurement.
    #[arg(long)]
    idle_streams: Option<usize>,
    /// Skip the ffmpeg baseline.
    #[arg(long)]
    skip_baseline: bool,
    /// Skip the memory and clip measurements.
    #[arg(long)]
    skip_memory: bool,
    /// Skip the liveproc capacity steps.
    #[arg(long)]
    skip_liveproc: bool,
    /// Run the overload step from this capacity (SRT streams) rather than
    /// the one the SRT steps measured.
    #[arg(long)]
    overload_capacity: Option<usize>,
    /// Start from the results.json already in the output folder and
    /// replace only the parts this run measures (to re-run one part).
    #[arg(long)]
    update: bool,
    /// Where results.json and results.png go.
    #[arg(long)]
    out: Option<PathBuf>,
    /// A flag for the server of the liveproc steps (repeat for more), to
    /// measure a setting: `--serve-flag=--srt-receive-threads=2`.
    #[arg(long, allow_hyphen_values = true)]
    serve_flag: Vec<String>,
    /// Test-name filters `cargo test` may pass along; the smoke run only
    /// runs when none is given or one matches "capacity".
    filters: Vec<String>,
}

/// Stream counts given on the command line; 0 is none (`--push-steps 0`
/// skips that kind of step).
fn given(steps: &[usize]) -> Vec<usize> {
    steps.iter().copied().filter(|&n| n > 0).collect()
}

/// Everything a run needs, full or smoke.
struct Plan {
    mode: &'static str,
    media: MediaSpec,
    media_dir: PathBuf,
    /// liveproc over SRT (the headline), then over gRPC push.
    steps: Vec<usize>,
    push_steps: Vec<usize>,
    /// ffmpeg per stream decoding keyframes only, then every frame.
    baseline_steps: Vec<usize>,
    full_decode_steps: Vec<usize>,
    hold: Duration,
    stagger: Duration,
    sampled: usize,
    replay_seconds: u32,
    clips: usize,
    idle_streams: usize,
    out: PathBuf,
    /// Stop stepping at the first step that falls behind (then bisect).
    stop_at_first_miss: bool,
    skip_memory: bool,
    skip_baseline: bool,
    skip_liveproc: bool,
    overload_capacity: Option<usize>,
    update: bool,
    serve_flags: Vec<String>,
}

impl Plan {
    fn from(args: &Args) -> Plan {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let mut plan = if args.bench {
            Plan {
                mode: "full",
                media: MediaSpec::full(),
                media_dir: root.join("bench/work"),
                // 8 and 50 are the fixed N both sides are compared at.
                steps: vec![8, 50, 100, 150, 200],
                push_steps: vec![50, 100, 150],
                baseline_steps: vec![8, 24, 50, 75, 100],
                full_decode_steps: vec![2, 4, 8, 12],
                hold: Duration::from_secs(60),
                stagger: Duration::from_secs(10),
                sampled: 8,
                replay_seconds: 60,
                clips: 20,
                idle_streams: 1000,
                out: root.join("bench"),
                stop_at_first_miss: true,
                skip_memory: args.skip_memory,
                skip_baseline: args.skip_baseline,
                skip_liveproc: args.skip_liveproc,
                overload_capacity: args.overload_capacity,
                update: args.update,
                serve_flags: args.serve_flag.clone(),
            }
        } else {
            Plan {
                mode: "smoke",
                media: MediaSpec::smoke(),
                media_dir: root.join("target/bench-smoke"),
                steps: vec![1, 2],
                push_steps: vec![1],
                baseline_steps: vec![1],
                full_decode_steps: vec![1],
                hold: Duration::from_secs(11),
                stagger: Duration::from_secs(1),
                sampled: 2,
                replay_seconds: 5,
                clips: 3,
                idle_streams: 50,
                out: root.join("target/bench-smoke"),
                stop_at_first_miss: false,
                skip_memory: args.skip_memory,
                skip_baseline: args.skip_baseline,
                skip_liveproc: args.skip_liveproc,
                overload_capacity: args.overload_capacity,
                update: args.update,
                serve_flags: args.serve_flag.clone(),
            }
        };
        if let Some(steps) = &args.steps {
            plan.steps = given(steps);
        }
        if let Some(steps) = &args.push_steps {
            plan.push_steps = given(steps);
        }
        if let Some(steps) = &args.baseline_steps {
            plan.baseline_steps = given(steps);
        }
        if let Some(steps) = &args.full_decode_steps {
            plan.full_decode_steps = given(steps);
        }
        if let Some(hold) = args.hold {
            plan.hold = Duration::from_secs(hold);
        }
        if let Some(idle) = args.idle_streams {
            plan.idle_streams = idle;
        }
        if let Some(out) = &args.out {
            plan.out = out.clone();
        }
        plan
    }
}

/// Runs `run(n)` for each n of `steps` in order. With `stop_at_first_miss`,
/// stops at the first n that does not hold, then tries midpoints between
/// the largest held n and it while they are more than 10 % apart.
async fn step_through<R, F, Fut>(
    steps: &[usize],
    stop_at_first_miss: bool,
    mut run: F,
) -> anyhow::Result<Vec<R>>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<(R, bool)>>,
{
    let mut results = vec![];
    let mut held_max = 0;
    let mut missed = None;
    for &n in steps {
        let (result, held) = run(n).await?;
        results.push(result);
        if held {
            held_max = n;
        } else if stop_at_first_miss {
            missed = Some(n);
            break;
        }
    }
    if let Some(mut missed) = missed {
        while missed - held_max > 1 && (missed - held_max) * 10 > held_max.max(1) {
            let mid = (held_max + missed) / 2;
            if mid == held_max {
                break;
            }
            let (result, held) = run(mid).await?;
            results.push(result);
            if held {
                held_max = mid;
            } else {
                missed = mid;
            }
        }
    }
    Ok(results)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_default()
}

async fn run(plan: &Plan) -> anyhow::Result<Results> {
    eprintln!("preparing media {:?}", plan.media);
    let media = Arc::new(Media::prepare(plan.media.clone(), &plan.media_dir)?);
    let previous: Option<Results> = if plan.update {
        let json = std::fs::read(plan.out.join("results.json"))?;
        Some(serde_json::from_slice(&json)?)
    } else {
        None
    };
    let mut results = Results {
        date: String::from_utf8(
            std::process::Command::new("date")
                .arg("-Is")
                .output()?
                .stdout,
        )?
        .trim()
        .to_string(),
        mode: plan.mode.into(),
        machine: Machine {
            cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            cpu: cpu_model(),
            liveproc_build: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
            .into(),
        },
        media: MediaInfo {
            file: media
                .path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into(),
            width: plan.media.width,
            height: plan.media.height,
            fps: plan.media.fps,
            video_kbps: plan.media.video_kbps,
            gop_seconds: plan.media.gop_seconds,
            measured_mbit_per_second: media.byte_rate() * 8.0 / 1e6,
        },
        hold_seconds: plan.hold.as_secs(),
        ..Default::default()
    };
    if let Some(previous) = previous {
        results.liveproc_steps = previous.liveproc_steps;
        results.baseline_steps = previous.baseline_steps;
        results.idle_streams = previous.idle_streams;
        results.replay_memory_one = previous.replay_memory_one;
        results.replay_memory_n = previous.replay_memory_n;
        results.overload = previous.overload;
        results.summarize();
    }

    if !plan.skip_memory {
        eprintln!("idle registered streams: {}", plan.idle_streams);
        results.idle_streams =
            Some(memory::idle_streams(plan.idle_streams, plan.replay_seconds).await?);
        eprintln!("replay memory and clip export, 1 stream");
        results.replay_memory_one =
            Some(memory::replay_memory(&media, 1, plan.replay_seconds, plan.clips).await?);
    }

    if !plan.skip_liveproc {
        results.liveproc_steps.clear();
        for (protocol, steps) in [
            (Protocol::Srt, &plan.steps),
            (Protocol::Push, &plan.push_steps),
        ] {
            let step = liveproc_step::StepPlan {
                streams: 0,
                protocol,
                hold: plan.hold,
                stagger: plan.stagger,
                sampled: plan.sampled,
                replay_seconds: plan.replay_seconds,
                log_dir: plan.out.clone(),
                serve_flags: plan.serve_flags.clone(),
            };
            let ran = step_through(steps, plan.stop_at_first_miss, |n| {
                let (media, step) = (
                    media.clone(),
                    liveproc_step::StepPlan {
                        streams: n,
                        ..step.clone()
                    },
                );
                async move {
                    eprintln!("liveproc over {}: {n} streams", protocol.name());
                    let result = liveproc_step::run(&media, &step).await?;
                    eprintln!(
                        "  held={} server cpu {:.0} % rss {:.0} MiB, load cpu {:.0} % {:?}",
                        result.held,
                        result.server_cpu_percent,
                        result.server_rss_mib,
                        result.load_cpu_percent,
                        result.fell_behind
                    );
                    let held = result.held;
                    Ok((result, held))
                }
            })
            .await?;
            results.liveproc_steps.extend(ran);
        }
    }
    results.summarize();

    // The smoke run's steps are too small to overload anything.
    let measured = !plan.skip_liveproc && plan.mode == "full";
    let capacity = plan
        .overload_capacity
        .or(measured.then_some(results.summary.liveproc_max_streams_srt))
        .filter(|n| *n > 0);
    if let Some(capacity) = capacity {
        eprintln!(
            "liveproc overloaded: {capacity} streams held, so {:.1}× that",
            overload_step::OVERLOAD_FACTOR
        );
        let result = overload_step::run(
            &media,
            capacity,
            plan.hold,
            plan.stagger,
            plan.replay_seconds,
        )
        .await?;
        eprintln!(
            "  held={} kept {} refused {} shed {} lost {:?}, kernel drops {}",
            result.held, result.kept, result.refused, result.shed, result.lost, result.kernel_drops
        );
        results.overload = Some(result);
    }

    if !plan.skip_memory {
        let n = results.summary.liveproc_max_streams_srt.max(1);
        eprintln!("replay memory, {n} streams");
        results.replay_memory_n =
            Some(memory::replay_memory(&media, n, plan.replay_seconds, 0).await?);
    }

    if !plan.skip_baseline {
        results.baseline_steps.clear();
        for (decode, steps) in [
            (Decode::Keyframes, &plan.baseline_steps),
            (Decode::Every, &plan.full_decode_steps),
        ] {
            let ran = step_through(steps, plan.stop_at_first_miss, |n| {
                let media = media.clone();
                let (hold, stagger) = (plan.hold, plan.stagger);
                async move {
                    eprintln!("baseline decoding {}: {n} streams", decode.name());
                    let result = baseline_step::run(&media, n, decode, hold, stagger).await?;
                    eprintln!(
                        "  held={} ffmpeg cpu {:.0} % rss {:.0} MiB, speed {:.2} {:?}",
                        result.held,
                        result.cpu_percent,
                        result.rss_mib,
                        result.min_speed,
                        result.fell_behind
                    );
                    let held = result.held;
                    Ok((result, held))
                }
            })
            .await?;
            results.baseline_steps.extend(ran);
        }
    }
    results.summarize();
    Ok(results)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.bench
        && !args.filters.is_empty()
        && !args.filters.iter().any(|f| "capacity".contains(f.as_str()))
    {
        return Ok(());
    }
    let plan = Plan::from(&args);
    let runtime = tokio::runtime::Runtime::new()?;
    let results = runtime.block_on(run(&plan))?;
    std::fs::create_dir_all(&plan.out)?;
    let json = plan.out.join("results.json");
    let png = plan.out.join("results.png");
    results.write_json(&json)?;
    results.plot(&png)?;
    results.print_table();
    println!("\nwrote {} and {}", json.display(), png.display());
    if !args.bench {
        smoke_checks(&results, &json, &png)?;
    }
    Ok(())
}

/// What the smoke run must show for the harness to be working.
fn smoke_checks(
    results: &Results,
    json: &std::path::Path,
    png: &std::path::Path,
) -> anyhow::Result<()> {
    let first = results
        .liveproc_steps
        .first()
        .ok_or_else(|| anyhow::anyhow!("no liveproc step ran"))?;
    anyhow::ensure!(first.held, "1 stream did not hold: {:?}", first.fell_behind);
    anyhow::ensure!(first.server_cpu_percent > 0.0, "server CPU not measured");
    anyhow::ensure!(
        first.motion_clips_checked > 0 && first.recordings_checked > 0,
        "motion clips and recordings not checked under load"
    );
    for protocol in ["srt", "grpc"] {
        anyhow::ensure!(
            results
                .liveproc_steps
                .iter()
                .any(|s| s.protocol == protocol && s.held),
            "no {protocol} step held: {:?}",
            results
                .liveproc_steps
                .iter()
                .filter(|s| s.protocol == protocol)
                .map(|s| &s.fell_behind)
                .collect::<Vec<_>>()
        );
    }
    for decode in ["keyframes", "every_frame"] {
        let steps: Vec<_> = results
            .baseline_steps
            .iter()
            .filter(|s| s.decode == decode)
            .collect();
        anyhow::ensure!(
            steps.iter().any(|s| s.held),
            "no {decode} baseline step held: {:?}",
            steps.iter().map(|s| &s.fell_behind).collect::<Vec<_>>()
        );
    }
    anyhow::ensure!(
        results.summary.cpu_per_stream_ratio_vs_keyframe_baseline > 0.0,
        "no CPU ratio against the keyframe baseline"
    );
    anyhow::ensure!(
        first.thumbnail_latency_from_capture.count > 0,
        "no thumbnail latency measured"
    );
    anyhow::ensure!(
        results
            .liveproc_steps
            .iter()
            .any(|s| s.replay_segment_latency.count > 0),
        "no replay segment latency measured"
    );
    let baseline = results
        .baseline_steps
        .first()
        .ok_or_else(|| anyhow::anyhow!("no baseline step ran"))?;
    anyhow::ensure!(
        baseline.held,
        "1 ffmpeg did not hold: {:?}",
        baseline.fell_behind
    );
    anyhow::ensure!(baseline.cpu_percent > 0.0, "ffmpeg CPU not measured");
    let replay = results
        .replay_memory_one
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no replay memory measured"))?;
    anyhow::ensure!(replay.media_held_mib > 0.0, "replay held nothing");
    let clips = replay
        .clip_export
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no clip exported"))?;
    anyhow::ensure!(
        clips.mean_size_mib > 0.0 && clips.p50_ms > 0.0,
        "clip export not measured"
    );
    let written: serde_json::Value = serde_json::from_slice(&std::fs::read(json)?)?;
    anyhow::ensure!(written["liveproc_steps"]
        .as_array()
        .is_some_and(|s| !s.is_empty()));
    let plot = image::open(png)?;
    anyhow::ensure!(
        plot.width() == 1400 && plot.height() == 560,
        "plot has the wrong size"
    );
    eprintln!("smoke run: harness works end to end");
    Ok(())
}
