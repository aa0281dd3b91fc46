//! Soak: hours of churn against one server, to show that what a server
//! holds comes back when its work goes. `make soak` (`cargo bench --bench
//! soak`) runs two hours and writes `bench/soak.json` and
//! `bench/soak.png`; under `cargo test` a few short cycles check the
//! harness end to end and that nothing was kept.
//!
//! Each cycle ([`cycle`]) registers streams with every feature, publishes
//! to some of them over SRT and gRPC push with subscribers coming and
//! going, changes their options live, cuts replay clips, then deletes
//! clips, recordings and streams and lets the server idle. [`samples`]
//! reads the server's resident memory, open files and threads every
//! second; [`report`] writes the per-minute curves, the value after each
//! cycle's idle, and the verdict.
//!
//! The capacity benchmark's media, load, subscribers and /proc readers are
//! shared, not copied.

#[path = "../../tests/common/mod.rs"]
mod common;

#[allow(dead_code)]
#[path = "../capacity/load.rs"]
mod load;
#[allow(dead_code)]
#[path = "../capacity/media.rs"]
mod media;
#[path = "../capacity/plot_font.rs"]
mod plot_font;
#[allow(dead_code)]
#[path = "../capacity/proc_stats.rs"]
mod proc_stats;
#[path = "../capacity/srt_load.rs"]
mod srt_load;
#[allow(dead_code)]
#[path = "../capacity/watch.rs"]
mod watch;

mod cycle;
mod report;
mod samples;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;

use common::Server;
use cycle::CyclePlan;
use media::{Media, MediaSpec};
use report::Soak;
use samples::Sampler;

#[derive(Parser, Debug)]
#[command(about = "liveproc soak: hours of churn, memory, files and threads")]
struct Args {
    /// Set by `cargo bench`: the full soak. Without it, the smoke run.
    #[arg(long)]
    bench: bool,
    /// How long to churn, minutes (full: 120).
    #[arg(long)]
    minutes: Option<f64>,
    /// Streams registered per cycle (full: 200).
    #[arg(long)]
    streams: Option<usize>,
    /// Of those, how many are published (full: 20).
    #[arg(long)]
    live: Option<usize>,
    /// Seconds the server idles after each cycle (full: 60).
    #[arg(long)]
    idle: Option<u64>,
    /// Thumbnail subscribers per cycle that vanish (full: 50).
    #[arg(long)]
    vanishing_subscribers: Option<usize>,
    /// Where soak.json and soak.png go.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Test-name filters `cargo test` may pass along; the smoke run only
    /// runs when none is given or one matches "soak".
    filters: Vec<String>,
}

/// Everything a run needs, full or smoke.
struct Plan {
    mode: &'static str,
    media: MediaSpec,
    media_dir: PathBuf,
    duration: Duration,
    /// How often the curves get a point.
    sample_every: Duration,
    cycle: CyclePlan,
    out: PathBuf,
}

impl Plan {
    fn from(args: &Args) -> Plan {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let mut plan = if args.bench {
            Plan {
                mode: "full",
                media: MediaSpec::full(),
                media_dir: root.join("bench/work"),
                duration: Duration::from_secs(120 * 60),
                // Not a minute: cycles last a little over two, so a
                // point a minute drifts slowly through their phases and
                // drew a slow wave of live-phase peaks (and of threads)
                // that was only the sampling beating against the cycle.
                sample_every: Duration::from_secs(10),
                cycle: CyclePlan {
                    streams: 200,
                    live: 20,
                    publish: Duration::from_secs(60),
                    idle: Duration::from_secs(60),
                    replay_seconds: 60,
                    vanishing_subscribers: 50,
                },
                out: root.join("bench"),
            }
        } else {
            Plan {
                mode: "smoke",
                media: MediaSpec::smoke(),
                media_dir: root.join("target/bench-smoke"),
                duration: Duration::from_secs(100),
                sample_every: Duration::from_secs(5),
                cycle: CyclePlan {
                    streams: 20,
                    live: 4,
                    publish: Duration::from_secs(15),
                    idle: Duration::from_secs(15),
                    replay_seconds: 10,
                    vanishing_subscribers: 20,
                },
                out: root.join("target/soak-smoke"),
            }
        };
        if let Some(minutes) = args.minutes {
            plan.duration = Duration::from_secs_f64(minutes * 60.0);
        }
        if let Some(streams) = args.streams {
            plan.cycle.streams = streams;
        }
        if let Some(live) = args.live {
            plan.cycle.live = live.min(plan.cycle.streams);
        }
        if let Some(count) = args.vanishing_subscribers {
            plan.cycle.vanishing_subscribers = count;
        }
        if let Some(idle) = args.idle {
            plan.cycle.idle = Duration::from_secs(idle);
        }
        if let Some(out) = &args.out {
            plan.out = out.clone();
        }
        plan
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.bench && !args.filters.is_empty() && !args.filters.iter().any(|f| "soak".contains(f)) {
        return Ok(());
    }
    let plan = Plan::from(&args);
    std::fs::create_dir_all(&plan.out)?;
    std::fs::create_dir_all(&plan.media_dir)?;
    let media = Arc::new(Media::prepare(plan.media.clone(), &plan.media_dir)?);
    eprintln!(
        "soak ({}): {:.0} min of cycles of {} streams, {} live for {:?}, idle {:?}",
        plan.mode,
        plan.duration.as_secs_f64() / 60.0,
        plan.cycle.streams,
        plan.cycle.live,
        plan.cycle.publish,
        plan.cycle.idle
    );

    // The subscribers all come from one address: past the default limit
    // of connections per address, lift it.
    let per_address = if plan.cycle.vanishing_subscribers > 200 {
        "0"
    } else {
        "256"
    };
    let server = Server::builder()
        .log_filter("info")
        .flags(&[
            "--metrics-listen",
            "127.0.0.1:0",
            "--http-max-connections-per-address",
            per_address,
        ])
        .start();
    let org = server.create_org("soak", true).await;
    let sampler = Sampler::start(
        server.pid(),
        server.data_dir.clone(),
        server.metrics.expect("started with --metrics-listen"),
        plan.sample_every,
    );
    let started = sampler.now();
    let began = Instant::now();
    let mut cycles = vec![];
    while began.elapsed() < plan.duration || cycles.is_empty() {
        let number = cycles.len() + 1;
        let result =
            cycle::run(&server, &org.api_key, &media, &plan.cycle, number, &sampler).await?;
        eprintln!("{}", result.line());
        cycles.push(result);
    }
    let soak = Soak::new(plan.mode, &plan.cycle, started, sampler.finish(), cycles);
    let (json, png) = (plan.out.join("soak.json"), plan.out.join("soak.png"));
    std::fs::write(&json, serde_json::to_vec_pretty(&soak)?)?;
    soak.plot(&png)?;
    soak.print();
    eprintln!("wrote {} and {}", json.display(), png.display());
    drop(server);
    soak.verdict()
}
