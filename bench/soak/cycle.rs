//! One churn cycle: register streams with every feature, publish to some
//! over SRT and gRPC push while subscribers follow them and others come
//! and vanish, change their options live, fetch HLS, cut replay clips;
//! then delete clips, recordings and streams, and let the server idle.

use std::sync::Arc;
use std::time::Duration;

use liveproc::proto::v1 as pb;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::common::{authed, get, metric, Server};
use crate::load::{Publisher, Target};
use crate::media::Media;
use crate::samples::{Sample, Sampler};
use crate::watch::Subscriptions;

/// What every cycle does.
pub struct CyclePlan {
    /// Streams registered.
    pub streams: usize,
    /// Of those, published (half over SRT, half over gRPC push).
    pub live: usize,
    /// How long they are published.
    pub publish: Duration,
    /// How long the server idles after everything is deleted.
    pub idle: Duration,
    pub replay_seconds: u32,
    /// Thumbnail subscribers, each on its own connection, that come during
    /// the publishing and vanish without a goodbye.
    pub vanishing_subscribers: usize,
}

/// What one cycle did and what the server held around it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CycleResult {
    pub cycle: usize,
    pub before: Sample,
    pub peak_rss_mib: f64,
    /// After everything was deleted and the server idled.
    pub after: Sample,
    /// What the server's allocator had handed out then (its own look,
    /// at most 10 s old): growth here is kept state, growth of the
    /// resident memory alone is free memory the allocator holds.
    #[serde(default)]
    pub heap_in_use_mib: f64,
    pub thumbnails: usize,
    pub motion_clips: usize,
    pub replay_segments: usize,
    pub hls_segments: usize,
    pub replay_clips: usize,
    pub recordings_deleted: usize,
    /// What went wrong on the client side (a publisher or subscriber error).
    pub errors: Vec<String>,
}

impl CycleResult {
    pub fn line(&self) -> String {
        format!(
            "cycle {:>3} at {:>6.1} min: RSS {:.0} -> peak {:.0} -> {:.0} MiB (anon {:.0}, heap {:.1}), \
             fds {} threads {}, data {:.0} MiB; thumbnails {} clips {} segments {} hls {} \
             replay clips {} recordings {}{}",
            self.cycle,
            self.before.minute,
            self.before.rss_mib,
            self.peak_rss_mib,
            self.after.rss_mib,
            self.after.rss_anon_mib,
            self.heap_in_use_mib,
            self.after.fds,
            self.after.threads,
            self.after.data_mib,
            self.thumbnails,
            self.motion_clips,
            self.replay_segments,
            self.hls_segments,
            self.replay_clips,
            self.recordings_deleted,
            if self.errors.is_empty() {
                String::new()
            } else {
                format!(", errors: {:?}", self.errors)
            }
        )
    }
}

fn options(
    replay_seconds: u32,
    thumbnail_interval: u32,
    motion_clips: bool,
) -> pb::ProcessingOptions {
    pb::ProcessingOptions {
        thumbnail: Some(pb::ThumbnailOptions {
            enabled: true,
            interval_seconds: thumbnail_interval,
            ..Default::default()
        }),
        motion_clip: Some(pb::MotionClipOptions {
            enabled: motion_clips,
            duration_seconds: 3,
            interval_seconds: 10,
            ..Default::default()
        }),
        recording: Some(pb::RecordingOptions {
            enabled: true,
            duration_seconds: 10,
            entire_stream: false,
        }),
        replay: Some(pb::ReplayOptions {
            enabled: true,
            duration_seconds: replay_seconds,
            entire_stream: false,
        }),
    }
}

pub async fn run(
    server: &Server,
    key: &str,
    media: &Arc<Media>,
    plan: &CyclePlan,
    number: usize,
    sampler: &Sampler,
) -> anyhow::Result<CycleResult> {
    let mut result = CycleResult {
        cycle: number,
        before: sampler.now(),
        ..Default::default()
    };
    sampler.take_peak_rss_mib();
    let mut live_client = server.live().await;
    let all = options(plan.replay_seconds, 10, true);
    let mut streams = Vec::with_capacity(plan.streams);
    for i in 0..plan.streams {
        let request = pb::CreateStreamRequest {
            stream_id: format!("c{number:03}-{i:03}"),
            processing: Some(all),
            ..Default::default()
        };
        streams.push(
            live_client
                .create_stream(authed(request, key))
                .await?
                .into_inner(),
        );
    }
    let live = &streams[..plan.live];

    let t0 = Instant::now();
    let publishers: Vec<Publisher> = live
        .iter()
        .enumerate()
        .map(|(i, stream)| {
            let at = t0 + Duration::from_millis(100 * i as u64);
            Publisher::start(media.clone(), target(server, stream, i % 2 == 0), at)
        })
        .collect();
    let stop_following = CancellationToken::new();
    let channel = server.channel().await;
    let following: Vec<Subscriptions> = live
        .iter()
        .map(|s| Subscriptions::start(channel.clone(), key, &s.id, true, stop_following.clone()))
        .collect();

    let third = plan.publish / 3;
    tokio::time::sleep_until(t0 + third).await;
    vanishing_subscribers(server, key, live, plan.vanishing_subscribers).await;
    for stream in live {
        let request = pb::UpdateProcessingRequest {
            stream_id: stream.id.clone(),
            processing: Some(options(plan.replay_seconds, 20, false)),
        };
        live_client.update_processing(authed(request, key)).await?;
    }
    tokio::time::sleep_until(t0 + third * 2).await;
    for stream in live {
        let request = pb::UpdateProcessingRequest {
            stream_id: stream.id.clone(),
            processing: Some(all),
        };
        live_client.update_processing(authed(request, key)).await?;
        result.hls_segments += hls_segment(server, key, &stream.id).await;
    }
    tokio::time::sleep_until(t0 + plan.publish).await;
    let mut clips = vec![];
    for stream in live {
        let request = pb::CreateReplayClipRequest {
            stream_id: stream.id.clone(),
            start: Some(pb::create_replay_clip_request::Start::SecondsBeforeLive(5)),
            duration_seconds: 5,
            title: format!("soak {number}"),
            end_time: None,
        };
        match live_client.create_replay_clip(authed(request, key)).await {
            Ok(clip) => clips.push(clip.into_inner().id),
            Err(e) => result
                .errors
                .push(format!("replay clip of {}: {e}", stream.id)),
        }
    }
    result.replay_clips = clips.len();

    for publisher in publishers {
        let stats = publisher.stop().await;
        let error = stats.error.lock().unwrap().clone();
        if let Some(error) = error {
            result.errors.push(format!("publisher: {error}"));
        }
    }
    stop_following.cancel();
    for (stream, subscriptions) in live.iter().zip(following) {
        let received = subscriptions.finish().await;
        let thumbnails = received.thumbnails.lock().unwrap().len();
        if thumbnails == 0 {
            result.errors.push(format!("no thumbnail of {}", stream.id));
        }
        result.thumbnails += thumbnails;
        result.motion_clips += received.motion_clips.lock().unwrap().len();
        result.replay_segments += received.replay_segments.lock().unwrap().len();
        result
            .errors
            .extend(received.errors.lock().unwrap().iter().cloned());
    }

    for clip_id in clips {
        let request = pb::DeleteReplayClipRequest { clip_id };
        live_client.delete_replay_clip(authed(request, key)).await?;
    }
    for stream in live {
        result.recordings_deleted += delete_recordings(server, key, &stream.id).await?;
    }
    for stream in &streams {
        let request = pb::DeleteStreamRequest {
            stream_id: stream.id.clone(),
        };
        live_client.delete_stream(authed(request, key)).await?;
    }
    result.peak_rss_mib = sampler.take_peak_rss_mib();
    tokio::time::sleep(plan.idle).await;
    result.after = sampler.now();
    result.heap_in_use_mib = metric(server, "liveproc_heap_in_use_bytes").await / (1024.0 * 1024.0);
    Ok(result)
}

/// Where stream `stream` is published: SRT or gRPC push.
fn target(server: &Server, stream: &pb::Stream, srt: bool) -> Target {
    let stream_key = stream
        .ingest
        .as_ref()
        .map(|i| i.stream_key.clone())
        .unwrap_or_default();
    if srt {
        Target::Srt {
            addr: server.srt,
            stream_id: Some(format!("publish:{}:{stream_key}", stream.id)),
        }
    } else {
        Target::Push {
            grpc: server.grpc,
            stream_id: stream.id.clone(),
            stream_key,
        }
    }
}

/// `count` thumbnail subscribers over the live streams, each on its own
/// connection, gone after the latest thumbnail or 2 s.
async fn vanishing_subscribers(server: &Server, key: &str, live: &[pb::Stream], count: usize) {
    let mut tasks = vec![];
    for i in 0..count {
        let stream_id = live[i % live.len()].id.clone();
        let channel = server.channel().await;
        let request = authed(
            pb::SubscribeThumbnailsRequest {
                stream_id,
                send_latest: true,
            },
            key,
        );
        tasks.push(tokio::spawn(async move {
            let mut client =
                liveproc::proto::v1::live_processing_client::LiveProcessingClient::new(channel);
            let follow = async {
                let mut stream = client.subscribe_thumbnails(request).await?.into_inner();
                stream.message().await
            };
            let _ = tokio::time::timeout(Duration::from_secs(2), follow).await;
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
}

/// Fetches the HLS replay playlist of a stream and its newest segment, as
/// a player does; 1 when the segment came.
async fn hls_segment(server: &Server, key: &str, stream_id: &str) -> usize {
    let path = format!("/v1/streams/{stream_id}/replay.m3u8");
    let playlist = get(server, &path, Some(key)).await;
    let base = playlist.url().clone();
    let Ok(text) = playlist.text().await else {
        return 0;
    };
    let Some(newest) = text
        .lines()
        .rev()
        .find(|l| !l.is_empty() && !l.starts_with('#'))
    else {
        return 0;
    };
    let Ok(url) = base.join(newest) else {
        return 0;
    };
    let segment = get(server, url.as_str(), Some(key)).await;
    let ok = segment.status().is_success() && segment.bytes().await.is_ok_and(|b| !b.is_empty());
    usize::from(ok)
}

/// Deletes the recordings of a stream once every one is complete; how many.
async fn delete_recordings(server: &Server, key: &str, stream_id: &str) -> anyhow::Result<usize> {
    let mut live_client = server.live().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let recordings = loop {
        let request = pb::ListRecordingsRequest {
            stream_id: stream_id.into(),
            page_size: 1000,
            ..Default::default()
        };
        let listed = live_client
            .list_recordings(authed(request, key))
            .await?
            .into_inner()
            .recordings;
        let complete = listed
            .iter()
            .all(|r| r.state() == pb::RecordingState::Complete);
        if complete || Instant::now() >= deadline {
            break listed;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for recording in &recordings {
        let request = pb::DeleteRecordingRequest {
            recording_id: recording.id.clone(),
        };
        live_client.delete_recording(authed(request, key)).await?;
    }
    Ok(recordings.len())
}
