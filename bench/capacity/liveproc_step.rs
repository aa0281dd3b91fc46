//! One capacity step against liveproc: a fresh server, N streams with all
//! four features, published in real time by the load over one protocol
//! (SRT or gRPC push), held for the hold time, then judged: did the server
//! keep up with real time, and what did it cost.
//!
//! A step holds when, for every stream: it stayed LIVE; its thumbnails
//! came (every interval, none skipped), none later than the interval
//! after its keyframe was sent, and they did not drift behind real time
//! (the same bound the ffmpeg baseline is held to); the media demuxed by
//! the server never lagged what the load had sent by more than
//! [`MAX_INGEST_LAG`] (sampled through the whole hold). For the sampled
//! streams, the motion clips and the recording made under load are
//! probed: both tracks, at the right duration.

use std::path::PathBuf;
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
use crate::watch::{Received, Subscriptions};

/// The features every stream runs, as the issue sets them.
pub const THUMBNAIL_INTERVAL: u32 = 10;
pub const CLIP_SECONDS: u32 = 3;
pub const CLIP_INTERVAL: u32 = 10;
pub const RECORDING_SEGMENT: u32 = 60;
/// Most a stream's demuxed media may trail what the load sent.
pub const MAX_INGEST_LAG: f64 = 1.0;
/// Most a stream's thumbnails may fall further behind real time over the
/// hold (the baseline's bound too).
pub const MAX_THUMBNAIL_DRIFT: f64 = 2.0;
/// How often the ingest lag is sampled during the hold.
const LAG_SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// The protocol the load publishes with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Srt,
    Push,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Srt => "srt",
            Protocol::Push => "grpc",
        }
    }
}

/// How a step runs.
#[derive(Clone, Debug)]
pub struct StepPlan {
    pub streams: usize,
    pub protocol: Protocol,
    pub hold: Duration,
    /// Stream starts are spread over this long (as real streams are).
    pub stagger: Duration,
    /// Streams (spread over both protocols) also followed for motion
    /// clips and replay segments.
    pub sampled: usize,
    pub replay_seconds: u32,
    /// Where the server's log of a step that did not hold is kept.
    pub log_dir: PathBuf,
    /// Extra flags for the server.
    pub serve_flags: Vec<String>,
}

/// What a step measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StepResult {
    pub streams: usize,
    /// "srt" or "grpc": how every stream of the step was published.
    #[serde(default)]
    pub protocol: String,
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
    /// Most the media a stream's server had demuxed (its video frames)
    /// trailed the media the load had sent it, seconds, over samples
    /// taken through the hold.
    pub max_ingest_lag_seconds: f64,
    /// Most a stream's thumbnails fell further behind real time over the
    /// hold, seconds (as for the baseline).
    #[serde(default)]
    pub max_thumbnail_drift_seconds: f64,
    /// Motion clips and recordings of the sampled streams probed after
    /// the hold (both tracks, right duration).
    #[serde(default)]
    pub motion_clips_checked: usize,
    #[serde(default)]
    pub recordings_checked: usize,
    pub load_max_lateness_ms: f64,
    /// With object storage (`LIVEPROC_TEST_OBJECTS=s3`): the server's
    /// upload reports over the hold, the lowest throughput and the
    /// longest lag from a recording's last write to all of it being up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploads: Option<UploadReport>,
}

/// What the server's upload reports said (`uploads to object storage`,
/// every 30 s).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct UploadReport {
    pub reports: usize,
    pub min_mbit_per_s: f64,
    pub max_lag_ms: u64,
}

impl UploadReport {
    /// The reports in a server log, if any.
    fn of_log(log: &str) -> Option<Self> {
        let field = |line: &str, name: &str| -> Option<f64> {
            let rest = line.split_once(&format!("{name}="))?.1;
            let value: String = rest
                .trim_start_matches('"')
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            value.parse().ok()
        };
        let mut report: Option<Self> = None;
        for line in log
            .lines()
            .filter(|l| l.contains("uploads to object storage parts="))
        {
            let (Some(mbit), Some(lag)) = (field(line, "mbit_per_s"), field(line, "max_lag_ms"))
            else {
                continue;
            };
            let r = report.get_or_insert(Self {
                min_mbit_per_s: f64::MAX,
                ..Default::default()
            });
            r.reports += 1;
            r.min_mbit_per_s = r.min_mbit_per_s.min(mbit);
            r.max_lag_ms = r.max_lag_ms.max(lag as u64);
        }
        report
    }
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

/// Where the load publishes `stream` with `protocol`.
pub fn target_of(server: &Server, stream: &pb::Stream, protocol: Protocol) -> Target {
    let key = stream
        .ingest
        .as_ref()
        .map(|i| i.stream_key.clone())
        .unwrap_or_default();
    match protocol {
        Protocol::Srt => Target::Srt {
            addr: server.srt,
            stream_id: Some(format!("publish:{}:{key}", stream.id)),
        },
        Protocol::Push => Target::Push {
            grpc: server.grpc,
            stream_id: stream.id.clone(),
            stream_key: key,
        },
    }
}

/// Starts one publisher per stream, starts spread over `stagger`.
pub fn start_publishers(
    media: &Arc<Media>,
    server: &Server,
    streams: &[pb::Stream],
    stagger: Duration,
    protocol: Protocol,
) -> Vec<Publisher> {
    let t0 = Instant::now();
    streams
        .iter()
        .enumerate()
        .map(|(i, stream)| {
            let at = t0 + stagger.mul_f64(i as f64 / streams.len() as f64);
            Publisher::start(media.clone(), target_of(server, stream, protocol), at)
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
    let flags: Vec<&str> = plan.serve_flags.iter().map(String::as_str).collect();
    let server = Server::builder().log_filter("info").flags(&flags).start();
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
        protocol: plan.protocol.name().into(),
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
    let publishers = start_publishers(media, &server, &streams, plan.stagger, plan.protocol);

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
    let hold_until = Instant::now() + plan.hold;
    let mut live_client = server.live().await;
    let mut not_live = std::collections::BTreeSet::new();
    loop {
        // Ingest lag after demux: the media time of the frames the server
        // has framed against the media time the load has sent.
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
            let sent = publisher
                .stats
                .media_sent_us
                .load(std::sync::atomic::Ordering::Relaxed) as f64
                / 1e6;
            let frames = got.ingest_stats.map(|s| s.video_frames).unwrap_or(0);
            let demuxed = frames as f64 / f64::from(media.spec.fps);
            result.max_ingest_lag_seconds = result.max_ingest_lag_seconds.max(sent - demuxed);
            if got.state != pb::StreamState::Live as i32 {
                not_live.insert(stream.id.clone());
            }
        }
        let left = hold_until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        tokio::time::sleep(left.min(LAG_SAMPLE_EVERY)).await;
    }
    result.server_cpu_percent = server_cpu.percent();
    result.load_cpu_percent = load_cpu.percent();
    result.server_rss_mib = rss_mib(server.pid());
    let hold_end = SystemTime::now();
    for id in not_live {
        result.fell_behind.push(format!("{id} was not LIVE"));
    }
    let behind_after = server.log().matches("fell behind").count();
    result.uploads = UploadReport::of_log(&server.log());
    if let Some(uploads) = &result.uploads {
        eprintln!("  uploads: {uploads:?}");
    }
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
    check_outputs(
        &server,
        &key,
        &streams,
        &received,
        sample_every,
        plan.hold,
        &mut result,
    )
    .await;

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
        let in_hold: Vec<_> = thumbnails
            .iter()
            .filter(|a| a.at >= hold_start && a.at <= hold_end)
            .collect();
        if let (Some(first), Some(last)) = (in_hold.first(), in_hold.last()) {
            let wall = last
                .at
                .duration_since(first.at)
                .unwrap_or_default()
                .as_secs_f64();
            result.max_thumbnail_drift_seconds = result
                .max_thumbnail_drift_seconds
                .max(wall - (last.pts - first.pts));
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
    if result.max_ingest_lag_seconds > MAX_INGEST_LAG {
        result.fell_behind.push(format!(
            "ingest lag {:.1} s after demux",
            result.max_ingest_lag_seconds
        ));
    }
    if result.max_thumbnail_drift_seconds > MAX_THUMBNAIL_DRIFT {
        result.fell_behind.push(format!(
            "thumbnails fell {:.1} s further behind real time",
            result.max_thumbnail_drift_seconds
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
    if !result.held {
        // What the server said, to find out why.
        let path = plan.log_dir.join(format!(
            "server-{}-{}.log",
            plan.protocol.name(),
            plan.streams
        ));
        if std::fs::create_dir_all(&plan.log_dir)
            .and_then(|_| std::fs::write(&path, server.log()))
            .is_ok()
        {
            eprintln!("  server log: {}", path.display());
        }
    }
    Ok(result)
}

/// Probes what the sampled streams made under load: their latest motion
/// clip (both tracks, [`CLIP_SECONDS`] long) and their first recording
/// (both tracks, a whole [`RECORDING_SEGMENT`]). A missing or wrong one
/// fails the step.
async fn check_outputs(
    server: &Server,
    key: &str,
    streams: &[pb::Stream],
    received: &[Arc<Received>],
    sample_every: usize,
    hold: Duration,
    result: &mut StepResult,
) {
    let mut live = server.live().await;
    for (i, (stream, got)) in streams.iter().zip(received).enumerate() {
        if i % sample_every != 0 {
            continue;
        }
        // The publisher has left: its last recording closes when the
        // session has ended.
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            let state = live
                .get_stream(authed(
                    pb::GetStreamRequest {
                        stream_id: stream.id.clone(),
                    },
                    key,
                ))
                .await
                .map(|r| r.into_inner().state)
                .unwrap_or_default();
            if state != pb::StreamState::Live as i32 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let clip = got.last_motion_clip.lock().unwrap().take();
        match clip.map(|data| probe(&data)) {
            Some(Ok(p)) if p.tracks_ok() && (p.seconds - f64::from(CLIP_SECONDS)).abs() <= 0.6 => {
                result.motion_clips_checked += 1
            }
            Some(Ok(p)) => result
                .fell_behind
                .push(format!("{}: motion clip probed as {p:?}", stream.id)),
            Some(Err(e)) => result
                .fell_behind
                .push(format!("{}: motion clip: {e}", stream.id)),
            None => result
                .fell_behind
                .push(format!("{}: no motion clip", stream.id)),
        }
        // The first segment: a whole one when the stream made more, else
        // at least the hold.
        let recordings = crate::common::list_recordings(server, key, &stream.id).await;
        let wanted = |seconds: f64| {
            if recordings.len() > 1 {
                (seconds - f64::from(RECORDING_SEGMENT)).abs() <= 2.5
            } else {
                seconds >= hold.as_secs_f64() - 1.0
            }
        };
        let Some(first) = recordings.first() else {
            result
                .fell_behind
                .push(format!("{}: no recording", stream.id));
            continue;
        };
        let data = crate::common::download_recording(server, key, &first.id, 0).await;
        match probe(&data) {
            Ok(p) if p.tracks_ok() && wanted(p.seconds) => result.recordings_checked += 1,
            Ok(p) => result
                .fell_behind
                .push(format!("{}: recording probed as {p:?}", stream.id)),
            Err(e) => result
                .fell_behind
                .push(format!("{}: recording: {e}", stream.id)),
        }
    }
}

/// What ffprobe says of a media file.
#[derive(Debug)]
struct Probe {
    seconds: f64,
    video: bool,
    audio: bool,
}

impl Probe {
    fn tracks_ok(&self) -> bool {
        self.video && self.audio
    }
}

fn probe(data: &[u8]) -> anyhow::Result<Probe> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("probe.mp4");
    std::fs::write(&path, data)?;
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
        ])
        .arg(&path)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let kind = |k: &str| {
        json["streams"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["codec_type"] == k))
    };
    Ok(Probe {
        seconds: json["format"]["duration"]
            .as_str()
            .and_then(|d| d.parse().ok())
            .unwrap_or(0.0),
        video: kind("video"),
        audio: kind("audio"),
    })
}
