//! Memory and clip export: the resident memory of idle registered streams,
//! the replay buffer's resident memory against the media bytes it holds
//! (one stream and N streams, replay only), and how long a replay clip of
//! the whole window takes to create.

use std::sync::Arc;
use std::time::{Duration, Instant};

use liveproc::proto::v1 as pb;
use pb::live_processing_client::LiveProcessingClient;
use serde::{Deserialize, Serialize};

use crate::analysis::percentile;
use crate::common::{authed, Server};
use crate::liveproc_step::{create_streams, start_publishers, Protocol};
use crate::media::Media;
use crate::proc_stats::rss_mib;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct IdleResult {
    pub streams: usize,
    pub rss_before_mib: f64,
    pub rss_after_mib: f64,
    pub kib_per_stream: f64,
}

/// Registers `count` streams with every feature configured, none live.
pub async fn idle_streams(count: usize, replay_seconds: u32) -> anyhow::Result<IdleResult> {
    let server = Server::builder().log_filter("info").start();
    let org = server.create_org("bench", true).await;
    let before = rss_mib(server.pid());
    let options = crate::liveproc_step::all_features(replay_seconds);
    create_streams(&server, &org.api_key, count, &options).await?;
    let after = rss_mib(server.pid());
    Ok(IdleResult {
        streams: count,
        rss_before_mib: before,
        rss_after_mib: after,
        kib_per_stream: (after - before) * 1024.0 / count as f64,
    })
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ReplayMemoryResult {
    pub streams: usize,
    pub replay_seconds: u32,
    /// Media bytes the replay buffers hold (the sum of `ReplayWindow.bytes`).
    pub media_held_mib: f64,
    /// Server RSS growth from before any stream was published.
    pub rss_growth_mib: f64,
    /// RSS growth while the buffers filled from `early` to full, against
    /// the media bytes they gained: the buffer's own overhead, without what
    /// a live session costs anyway (pipeline, plugins, sockets).
    pub buffer_rss_mib: f64,
    pub buffer_media_mib: f64,
    /// Total RSS growth (from before any stream was published) against
    /// the media held: everything the replay streams cost beyond their
    /// media, in %.
    pub overhead_percent: f64,
    /// The buffer's own overhead (growth between the two fill levels), %.
    #[serde(default)]
    pub buffer_overhead_percent: f64,
    pub clip_export: Option<ClipExport>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ClipExport {
    pub clips: usize,
    pub clip_seconds: u32,
    pub mean_size_mib: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub mib_per_second_p50: f64,
    /// Clips to the frame (`end_time`) of nearly the whole window, each
    /// starting and ending between frames: how long they present, and how
    /// long making one took.
    #[serde(default)]
    pub exact_seconds: f64,
    #[serde(default)]
    pub exact_p50_ms: f64,
    #[serde(default)]
    pub exact_p99_ms: f64,
}

async fn replay_bytes(server: &Server, key: &str, streams: &[pb::Stream]) -> anyhow::Result<u64> {
    let mut live = server.live().await;
    let mut total = 0;
    for stream in streams {
        let got = live
            .get_stream(authed(
                pb::GetStreamRequest {
                    stream_id: stream.id.clone(),
                },
                key,
            ))
            .await?
            .into_inner();
        total += got.replay_window.map(|w| w.bytes).unwrap_or(0);
    }
    Ok(total)
}

/// Replay only on `count` streams; with `clips`, then creates that many
/// clips of the whole window on the first stream, one after the other.
pub async fn replay_memory(
    media: &Arc<Media>,
    count: usize,
    replay_seconds: u32,
    clips: usize,
) -> anyhow::Result<ReplayMemoryResult> {
    let server = Server::builder().log_filter("info").start();
    let org = server.create_org("bench", true).await;
    let key = org.api_key.clone();
    let options = pb::ProcessingOptions {
        replay: Some(pb::ReplayOptions {
            enabled: true,
            duration_seconds: replay_seconds,
            entire_stream: false,
        }),
        ..Default::default()
    };
    let streams = create_streams(&server, &key, count, &options).await?;
    let rss_start = rss_mib(server.pid());
    let stagger = Duration::from_secs(2);
    let publishers = start_publishers(media, &server, &streams, stagger, Protocol::Srt);

    // Early: a few GOPs in every buffer; full: the whole window.
    let mut bytes = 0;
    let deadline = stagger + Duration::from_secs(30);
    let gop_bytes = media.byte_rate() * media.spec.gop_seconds as f64;
    let start = Instant::now();
    while Instant::now() - start < deadline {
        bytes = replay_bytes(&server, &key, &streams).await?;
        if bytes as f64 >= 3.0 * gop_bytes * count as f64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (early_rss, early_bytes) = (rss_mib(server.pid()), bytes);
    tokio::time::sleep(Duration::from_secs(u64::from(replay_seconds) + 4)).await;
    let (full_rss, full_bytes) = (
        rss_mib(server.pid()),
        replay_bytes(&server, &key, &streams).await?,
    );
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let buffer_media = mib(full_bytes.saturating_sub(early_bytes));
    let buffer_rss = full_rss - early_rss;
    let mut result = ReplayMemoryResult {
        streams: count,
        replay_seconds,
        media_held_mib: mib(full_bytes),
        rss_growth_mib: full_rss - rss_start,
        buffer_rss_mib: buffer_rss,
        buffer_media_mib: buffer_media,
        overhead_percent: 100.0 * ((full_rss - rss_start) / mib(full_bytes).max(0.001) - 1.0),
        buffer_overhead_percent: 100.0 * (buffer_rss / buffer_media.max(0.001) - 1.0),
        clip_export: None,
    };
    if clips > 0 {
        result.clip_export =
            Some(export_clips(&server, &key, &streams[0], replay_seconds, clips).await?);
    }
    for publisher in publishers {
        publisher.stop().await;
    }
    Ok(result)
}

async fn export_clips(
    server: &Server,
    key: &str,
    stream: &pb::Stream,
    seconds: u32,
    clips: usize,
) -> anyhow::Result<ClipExport> {
    let mut live = server.live().await;
    let (mut times, mut sizes) = (vec![], vec![]);
    for i in 0..clips {
        let request = pb::CreateReplayClipRequest {
            stream_id: stream.id.clone(),
            start: Some(pb::create_replay_clip_request::Start::SecondsBeforeLive(
                seconds,
            )),
            duration_seconds: seconds,
            title: format!("bench clip {i}"),
            end_time: None,
        };
        let began = Instant::now();
        let clip = live
            .create_replay_clip(authed(request, key))
            .await?
            .into_inner();
        times.push(began.elapsed().as_secs_f64() * 1e3);
        sizes.push(clip.size_bytes as f64 / (1024.0 * 1024.0));
    }
    let mean_size = sizes.iter().sum::<f64>() / sizes.len() as f64;
    times.sort_by(f64::total_cmp);
    let p50 = percentile(&times, 50.0);
    let (mut exact, exact_seconds) = exact_clips(&mut live, key, stream, seconds, clips).await?;
    exact.sort_by(f64::total_cmp);
    Ok(ClipExport {
        clips,
        clip_seconds: seconds,
        mean_size_mib: mean_size,
        p50_ms: p50,
        p99_ms: percentile(&times, 99.0),
        mib_per_second_p50: mean_size / (p50 / 1e3).max(1e-6),
        exact_seconds,
        exact_p50_ms: percentile(&exact, 50.0),
        exact_p99_ms: percentile(&exact, 99.0),
    })
}

/// Makes `clips` clips to the frame of up to `seconds` of the window,
/// from 0.517 s after its oldest media (between frames) to 1 s before
/// its newest; returns how long each took (ms) and how long the last
/// presents (s).
async fn exact_clips(
    live: &mut LiveProcessingClient<tonic::transport::Channel>,
    key: &str,
    stream: &pb::Stream,
    seconds: u32,
    clips: usize,
) -> anyhow::Result<(Vec<f64>, f64)> {
    let (mut times, mut presents) = (vec![], 0.0);
    for i in 0..clips {
        let window = live
            .get_stream(authed(
                pb::GetStreamRequest {
                    stream_id: stream.id.clone(),
                },
                key,
            ))
            .await?
            .into_inner()
            .replay_window
            .ok_or_else(|| anyhow::anyhow!("no replay window"))?;
        let earliest = window.earliest_time.unwrap_or_default();
        let held = window
            .duration
            .map_or(0.0, |d| d.seconds as f64 + d.nanos as f64 / 1e9);
        let length = (held - 1.517).min(f64::from(seconds));
        let at = |offset: f64| {
            let ms = liveproc::proto::timestamp_to_millis(&earliest) + (offset * 1e3) as i64;
            liveproc::proto::timestamp_from_millis(ms)
        };
        let request = pb::CreateReplayClipRequest {
            stream_id: stream.id.clone(),
            start: Some(pb::create_replay_clip_request::Start::StartTime(at(0.517))),
            duration_seconds: 0,
            title: format!("bench clip to the frame {i}"),
            end_time: Some(at(0.517 + length)),
        };
        let began = Instant::now();
        let clip = live
            .create_replay_clip(authed(request, key))
            .await?
            .into_inner();
        times.push(began.elapsed().as_secs_f64() * 1e3);
        presents = clip
            .duration
            .map_or(0.0, |d| d.seconds as f64 + d.nanos as f64 / 1e9);
    }
    Ok((times, presents))
}
