//! One capacity step against liveproc: a fresh server, N streams with all
//! four features, published in real time by the load (half over SRT, half
//! over gRPC push), held for the hold time, then judged: did the server
//! keep up with real time, and what did it cost.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use liveproc::proto::v1 as pb;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::analysis::{gaps, stream_latencies, Latency};
use crate::common::{authed, Server};
use crate::load::{Publisher, Target};
use crate::media::Media;
use crate::proc_stats::{rss_mib, CpuWindow};
use crate::watch::Subscriptions;

/// The features every stream runs, as the issue sets them.
pub const THUMBNAIL_INTERVAL: u32 = 10;
pub const CLIP_SECONDS: u32 = 3;
pub const CLIP_INTERVAL: u32 = 10;
pub const RECORDING_SEGMENT: u32 = 60;

/// How a step runs.
#[derive(Clone, Debug)]
pub struct StepPlan {
    pub streams: usize,
    pub hold: Duration,
    /// Stream starts are spread over this long (as real streams are).
    pub stagger: Duration,
    /// Streams (spread over both protocols) also followed for motion
    /// clips and replay segments.
    pub sampled: usize,
    pub replay_seconds: u32,
}

/// What a step measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StepResult {
    pub streams: usize,
    pub held: bool,
    /// Why it did not hold (empty when it held).
    pub fell_behind: Vec<String>,
    pub server_cpu_percent: f64,
    pub server_rss_mib: f64,
    pub load_cpu_percent: f64,
    pub thumbnails_received: usize,
    pub thumbnails_expected: usize,
    pub thumbnail_latency_grpc: Latency,
    pub thumbnail_latency_srt: Latency,
    pub thumbnail_latency_from_capture: Latency,
    pub replay_segment_latency: Latency,
    /// Most media a stream's server side was behind what the load had
    /// sent it at the end of the hold, seconds: over SRT and over gRPC.
    pub max_ingest_lag_seconds: f64,
    pub max_ingest_lag_seconds_srt: f64,
    pub max_ingest_lag_seconds_grpc: f64,
    pub load_max_lateness_ms: f64,
}

/// The processing options of every stream in the benchmark.
pub fn all_features(replay_seconds: u32) -> pb::ProcessingOptions {
    pb::ProcessingOptions {
        thumbnail: Some(pb::ThumbnailOptions {
            enabled: true,
            interval_seconds: THUMBNAIL_INTERVAL,
            ..Default::default()
        }),
        motion_clip: Some(pb::MotionClipOptions {
            enabled: true,
            duration_seconds: CLIP_SECONDS,
            interval_seconds: CLIP_INTERVAL,
            ..Default::default()
        }),
        recording: Some(pb::RecordingOptions {
            enabled: true,
            duration_seconds: RECORDING_SEGMENT,
            entire_stream: false,
        }),
        replay: Some(pb::ReplayOptions {
            enabled: true,
            duration_seconds: replay_seconds,
            entire_stream: false,
        }),
    }
}

/// Registers `count` streams named `s000`… with `processing`.
pub async fn create_streams(
    server: &Server,
    api_key: &str,
    count: usize,
    processing: &pb::ProcessingOptions,
) -> anyhow::Result<Vec<pb::Stream>> {
    let mut live = server.live().await;
    let mut streams = Vec::with_capacity(count);
    for i in 0..count {
        let request = pb::CreateStreamRequest {
            stream_id: format!("s{i:03}"),
            processing: Some(*processing),
            ..Default::default()
        };
        streams.push(
            live.create_stream(authed(request, api_key))
                .await?
                .into_inner(),
        );
    }
    Ok(streams)
}

/// Publishes stream `i` over SRT when even, gRPC push when odd.
pub fn target_of(server: &Server, stream: &pb::Stream, i: usize) -> Target {
    let key = stream
        .ingest
        .as_ref()
        .map(|i| i.stream_key.clone())
        .unwrap_or_default();
    if i % 2 == 0 {
        Target::Srt {
            addr: server.srt,
            stream_id: Some(format!("publish:{}:{key}", stream.id)),
        }
    } else {
        Target::Push {
            grpc: server.grpc,
            stream_id: stream.id.clone(),
            stream_key: key,
        }
    }
}

/// Starts one publisher per stream, starts spread over `stagger`.
pub fn start_publishers(
    media: &Arc<Media>,
    server: &Server,
    streams: &[pb::Stream],
    stagger: Duration,
) -> Vec<Publisher> {
    let t0 = Instant::now();
    streams
        .iter()
        .enumerate()
        .map(|(i, stream)| {
            let at = t0 + stagger.mul_f64(i as f64 / streams.len() as f64);
            Publisher::start(media.clone(), target_of(server, stream, i), at)
        })
        .collect()
}

/// Waits until `ready` holds, checking every 100 ms, for at most `limit`.
pub async fn wait_for(limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !ready() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    true
}

pub async fn run(media: &Arc<Media>, plan: &StepPlan) -> anyhow::Result<StepResult> {
    let server = Server::start_logging(&[], "info");
    let org = server.create_org("bench", true).await;
    let key = org.api_key.clone();
    let streams = create_streams(
        &server,
        &key,
        plan.streams,
        &all_features(plan.replay_seconds),
    )
    .await?;
    let mut result = StepResult {
        streams: plan.streams,
        ..Default::default()
    };

    // Subscribers first, so they see each stream from its first thumbnail.
    let stop = CancellationToken::new();
    let sample_every = (plan.streams / plan.sampled.max(1)).max(1);
    let mut subscriptions = vec![];
    let mut channel = server.channel().await;
    for (i, stream) in streams.iter().enumerate() {
        if i % 32 == 31 {
            channel = server.channel().await;
        }
        let all = i % sample_every == 0 || i % sample_every == 1;
        subscriptions.push(Subscriptions::start(
            channel.clone(),
            &key,
            &stream.id,
            all,
            stop.clone(),
        ));
    }
    let publishers = start_publishers(media, &server, &streams, plan.stagger);

    // Hold starts once every stream delivered its first thumbnail (LIVE).
    let live = wait_for(plan.stagger + Duration::from_secs(30), || {
        subscriptions
            .iter()
            .all(|s| !s.received.thumbnails.lock().unwrap().is_empty())
    })
    .await;
    if !live {
        result.fell_behind.push("not every stream went live".into());
    }
    let log_before = server.log();
    let behind_before = log_before.matches("fell behind").count();
    let hold_start = SystemTime::now();
    let server_cpu = CpuWindow::start(&[server.pid()]);
    let load_cpu = CpuWindow::start(&[std::process::id()]);
    tokio::time::sleep(plan.hold).await;
    result.server_cpu_percent = server_cpu.percent();
    result.load_cpu_percent = load_cpu.percent();
    result.server_rss_mib = rss_mib(server.pid());
    let hold_end = SystemTime::now();

    // Ingest lag: what each publisher sent against what the server got.
    let mut live_client = server.live().await;
    for (stream, publisher) in streams.iter().zip(&publishers) {
        let got = live_client
            .get_stream(authed(
                pb::GetStreamRequest {
                    stream_id: stream.id.clone(),
                },
                &key,
            ))
            .await?
            .into_inner();
        let received = got.ingest_stats.map(|s| s.bytes_received).unwrap_or(0);
        let sent = publisher
            .stats
            .bytes_sent
            .load(std::sync::atomic::Ordering::Relaxed);
        let lag = sent.saturating_sub(received) as f64 / media.byte_rate();
        result.max_ingest_lag_seconds = result.max_ingest_lag_seconds.max(lag);
        let by_protocol = match publisher.target.protocol() {
            "srt" => &mut result.max_ingest_lag_seconds_srt,
            _ => &mut result.max_ingest_lag_seconds_grpc,
        };
        *by_protocol = by_protocol.max(lag);
        if got.state != pb::StreamState::Live as i32 {
            result
                .fell_behind
                .push(format!("{} is not LIVE", stream.id));
        }
    }
    let behind_after = server.log().matches("fell behind").count();
    stop.cancel();
    let mut stats = vec![];
    for publisher in publishers {
        let protocol = publisher.target.protocol();
        stats.push((protocol, publisher.stop().await));
    }
    let mut received = vec![];
    for subscription in subscriptions {
        received.push(subscription.finish().await);
    }

    // Judge the hold window.
    let window = (hold_start, hold_end);
    let expected_per_stream = (plan.hold.as_secs() / u64::from(THUMBNAIL_INTERVAL)) as usize;
    let (mut grpc, mut srt, mut capture, mut replay) = (vec![], vec![], vec![], vec![]);
    for ((protocol, sent), got) in stats.iter().zip(&received) {
        if let Some(error) = sent.error.lock().unwrap().as_ref() {
            result.fell_behind.push(format!("publisher: {error}"));
        }
        for error in got.errors.lock().unwrap().iter() {
            result.fell_behind.push(format!("subscriber: {error}"));
        }
        let lateness = sent
            .max_lateness_us
            .load(std::sync::atomic::Ordering::Relaxed);
        result.load_max_lateness_ms = result.load_max_lateness_ms.max(lateness as f64 / 1e3);
        let thumbnails = got.thumbnails.lock().unwrap().clone();
        let segments = got.replay_segments.lock().unwrap().clone();
        let clips = got.motion_clips.lock().unwrap().clone();
        let in_window = thumbnails
            .iter()
            .filter(|a| a.at >= hold_start && a.at <= hold_end)
            .count();
        result.thumbnails_received += in_window;
        result.thumbnails_expected += expected_per_stream;
        if in_window + 1 < expected_per_stream {
            result.fell_behind.push(format!(
                "{in_window} thumbnails of {expected_per_stream} expected"
            ));
        }
        let dropped = gaps(&thumbnails) + gaps(&segments) + gaps(&clips);
        if dropped > 0 {
            result.fell_behind.push(format!("{dropped} items skipped"));
        }
        let latencies = stream_latencies(media, sent, &thumbnails, &segments, window);
        match *protocol {
            "srt" => srt.extend(latencies.thumbnail),
            _ => grpc.extend(latencies.thumbnail),
        }
        capture.extend(latencies.thumbnail_from_capture);
        replay.extend(latencies.replay_segment);
    }
    result.thumbnail_latency_grpc = Latency::of(grpc);
    result.thumbnail_latency_srt = Latency::of(srt);
    result.thumbnail_latency_from_capture = Latency::of(capture);
    result.replay_segment_latency = Latency::of(replay);
    let interval_ms = f64::from(THUMBNAIL_INTERVAL) * 1e3;
    for (name, latency) in [
        ("gRPC", &result.thumbnail_latency_grpc),
        ("SRT", &result.thumbnail_latency_srt),
    ] {
        if latency.max_ms > interval_ms {
            result.fell_behind.push(format!(
                "a {name} thumbnail was {:.0} ms late",
                latency.max_ms
            ));
        }
    }
    if behind_after > behind_before {
        result.fell_behind.push(format!(
            "server dropped work {} times (\"fell behind\")",
            behind_after - behind_before
        ));
    }
    if result.max_ingest_lag_seconds > 1.0 {
        result.fell_behind.push(format!(
            "ingest lag {:.1} s (SRT {:.1} s, gRPC {:.1} s)",
            result.max_ingest_lag_seconds,
            result.max_ingest_lag_seconds_srt,
            result.max_ingest_lag_seconds_grpc
        ));
    }
    if result.load_max_lateness_ms > 1000.0 {
        result.fell_behind.push(format!(
            "the load itself ran {:.0} ms behind",
            result.load_max_lateness_ms
        ));
    }
    result.fell_behind.sort();
    result.fell_behind.dedup();
    result.held = result.fell_behind.is_empty();
    Ok(result)
}
