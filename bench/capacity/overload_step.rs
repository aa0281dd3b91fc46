//! The overload step: liveproc over SRT at [`OVERLOAD_FACTOR`] times the
//! capacity the SRT steps measured, judged as `tests/overload.rs` judges
//! its small version in CI: every publisher is kept live to the end,
//! refused, or ended by the node with its reason, and none ends by
//! itself. The load's publishers retry a refused connection for about 5 s
//! (as encoders retry), so a refused one may still be admitted later.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::common::fate::{tally, Fate};
use crate::common::{metric, Server};
use crate::liveproc_step::{all_features, create_streams, start_publishers, Protocol};
use crate::media::Media;
use crate::proc_stats::CpuWindow;

/// Streams of the step, against the measured capacity.
pub const OVERLOAD_FACTOR: f64 = 1.3;

/// What the overload step found.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct OverloadResult {
    /// The capacity it was made from, and its streams.
    pub capacity: usize,
    pub streams: usize,
    /// Live to the end.
    pub kept: usize,
    /// Never admitted (the publisher gave up).
    pub refused: usize,
    /// Ended by the node with its reason.
    pub shed: usize,
    /// Sessions that ended by themselves, with what their stream said.
    pub lost: Vec<String>,
    pub kernel_drops: f64,
    pub server_cpu_percent: f64,
    /// Nothing lost, some refused or shed, some kept.
    pub held: bool,
}

pub async fn run(
    media: &Arc<Media>,
    capacity: usize,
    hold: Duration,
    stagger: Duration,
    replay_seconds: u32,
) -> anyhow::Result<OverloadResult> {
    let streams = ((capacity as f64) * OVERLOAD_FACTOR).ceil() as usize;
    let server = Server::builder()
        .log_filter("info")
        .flags(&["--metrics-listen", "127.0.0.1:0"])
        .start();
    let org = server.create_org("bench", true).await;
    let key = org.api_key.clone();
    let registered = create_streams(&server, &key, streams, &all_features(replay_seconds)).await?;
    let publishers = start_publishers(media, &server, &registered, stagger, Protocol::Srt);
    let server_cpu = CpuWindow::start(&[server.pid()]);
    tokio::time::sleep(stagger + hold).await;

    let mut result = OverloadResult {
        capacity,
        streams,
        server_cpu_percent: server_cpu.percent(),
        kernel_drops: metric(&server, "liveproc_srt_dropped_datagrams_total ").await,
        ..Default::default()
    };
    let mut fates = vec![];
    for (stream, publisher) in registered.iter().zip(&publishers) {
        let failed = publisher.stats.error.lock().unwrap().clone();
        match Fate::of(&server, &key, &stream.id, failed).await {
            Fate::Lost(what) => fates.push(Fate::Lost(format!("{}: {what}", stream.id))),
            fate => fates.push(fate),
        }
    }
    (result.kept, result.refused, result.shed, result.lost) = tally(&fates);
    for publisher in publishers {
        publisher.stop().await;
    }
    result.held = result.lost.is_empty() && result.refused + result.shed > 0 && result.kept > 0;
    if !result.held {
        let log = std::env::temp_dir().join(format!("liveproc-overload-{streams}.log"));
        std::fs::write(&log, server.log())?;
        eprintln!("  server log kept in {}", log.display());
    }
    Ok(result)
}
