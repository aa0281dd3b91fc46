//! The replay RPCs of `LiveProcessing`: rewinding subscriptions over the
//! replay buffer, and replay clips (create, get, list, download, delete).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::subscriber::Subscriber;
use super::{files, ApiState};
use crate::error::{Error, Result};
use crate::features::replay::buffer::{Cursor, Gop, ReplayBuffer};
use crate::features::replay::clips::{self, ClipStart};
use crate::features::replay::segment;
use crate::features::JobLane;
use crate::ids::StreamRef;
use crate::media::{MediaError, TrackFormat};
use crate::proto::v1 as pb;
use crate::proto::{timestamp_from_millis, to_duration};
use crate::registry::ClipRecord;
use crate::streams::LiveStream;
use crate::validate;

/// Segments buffered per subscriber: a reader that does not keep up is
/// simply not sent more until it reads (the buffer holds the rest).
const SEGMENT_BUFFER: usize = 2;

fn millis(ts: &prost_types::Timestamp) -> i64 {
    ts.seconds * 1000 + i64::from(ts.nanos) / 1_000_000
}

/// The first sequence a subscription starting at `start` reads.
fn first_sequence(buffer: &ReplayBuffer, start: Option<&pb::replay_start::Start>) -> Result<u64> {
    use pb::replay_start::Start;
    Ok(match start {
        None | Some(Start::LiveEdge(_)) => buffer.next_sequence(),
        Some(Start::Earliest(_)) => buffer.earliest(),
        Some(Start::SecondsBeforeLive(seconds)) => {
            let Some((_, (last_pts, _))) = buffer.edges() else {
                return Ok(buffer.next_sequence());
            };
            let target = last_pts.saturating_sub(Duration::from_secs((*seconds).into()));
            buffer
                .find(|g| g.end_pts > target)
                .map_or(buffer.earliest(), |g| g.sequence)
        }
        Some(Start::Time(ts)) => {
            let ms = millis(ts);
            if ms > crate::media::now_millis() {
                return Err(Error::invalid("start.time", "is in the future"));
            }
            buffer
                .find(|g| g.end_ms > ms)
                .map_or(buffer.next_sequence(), |g| g.sequence)
        }
    })
}

fn segment_message(
    stream_id: &str,
    gop: &Gop,
    data: bytes::Bytes,
    skipped: u64,
) -> pb::ReplaySegment {
    pb::ReplaySegment {
        stream_id: stream_id.to_string(),
        sequence: gop.sequence,
        start_pts: Some(to_duration(gop.start_pts)),
        start_time: Some(timestamp_from_millis(gop.start_ms)),
        duration: Some(to_duration(gop.duration())),
        format: pb::SegmentFormat::MpegTs as i32,
        data,
        skipped,
        discontinuity: false,
    }
}

/// Sends the buffered GOPs from the start point as fast as the client
/// reads, then follows the live edge.
pub fn subscribe(
    state: &ApiState,
    live: Arc<LiveStream>,
    req: &pb::SubscribeReplayRequest,
) -> Result<ReceiverStream<Result<pb::ReplaySegment, Status>>> {
    let format = match pb::SegmentFormat::try_from(req.format) {
        Ok(pb::SegmentFormat::Unspecified | pb::SegmentFormat::MpegTs) => pb::SegmentFormat::MpegTs,
        Ok(pb::SegmentFormat::Fmp4) => pb::SegmentFormat::Fmp4,
        Err(_) => return Err(Error::invalid("format", "must be MPEG_TS or FMP4")),
    };
    let engine = Arc::clone(&state.features);
    let outputs = engine.outputs(&live.stream_ref)?;
    let mut cursor = Cursor::at(first_sequence(
        &outputs.replay,
        req.start.as_ref().and_then(|s| s.start.as_ref()),
    )?);
    let (subscriber, responses) = Subscriber::new(Arc::clone(&live), SEGMENT_BUFFER);
    tokio::spawn(async move {
        let replay = &outputs.replay;
        let mut newest = replay.subscribe();
        // FMP4: the init segment goes first, in the first segment's data,
        // and again whenever the media's format changes.
        let mut last_init: Option<bytes::Bytes> = None;
        // The format of the last GOP sent.
        let mut last_format: Option<Option<Arc<TrackFormat>>> = None;
        loop {
            let Some((gop, skipped)) = cursor.advance(replay) else {
                // At the live edge of a session that has ended: all sent.
                if replay.session_ended() {
                    return;
                }
                // Else wait for the next GOP.
                match subscriber.wait(newest.changed()).await {
                    Some(Ok(())) => continue,
                    _ => return,
                }
            };
            let job_gop = Arc::clone(&gop);
            let sent_init = last_init.clone();
            let made = engine.run_job(JobLane::Bulk, move || match format {
                pb::SegmentFormat::Fmp4 => segment::fmp4(&job_gop).map(|(init, fragment)| {
                    if sent_init.as_ref() == Some(&init) {
                        return (None, fragment);
                    }
                    let mut both = Vec::with_capacity(init.len() + fragment.len());
                    both.extend_from_slice(&init);
                    both.extend_from_slice(&fragment);
                    (Some(init), bytes::Bytes::from(both))
                }),
                _ => segment::mpeg_ts(&job_gop).map(|ts| (None, ts)),
            });
            let made = made.await.map(|(init, data)| {
                if init.is_some() {
                    last_init = init;
                }
                data
            });
            let data = match made {
                Ok(data) => data,
                Err(e) => return subscriber.fail(e.into()).await,
            };
            let mut message = segment_message(&live.stream_ref.stream_id, &gop, data, skipped);
            message.format = format as i32;
            message.discontinuity = last_format.as_ref().is_some_and(|f| *f != gop.format);
            last_format = Some(gop.format.clone());
            if !subscriber.send(message).await {
                return;
            }
        }
    });
    Ok(responses)
}

/// A frame at wall-clock moment `at` inside the replay window, decoded on
/// demand from the GOP that holds it (only as far as that frame) and
/// encoded like the stream's thumbnails.
pub async fn thumbnail_at(
    state: &ApiState,
    live: &Arc<LiveStream>,
    at: &prost_types::Timestamp,
) -> Result<pb::Thumbnail> {
    let ms = millis(at);
    let replay = &state.features.outputs(&live.stream_ref)?.replay;
    let Some(((_, first_ms), (_, last_ms))) = replay.edges() else {
        return Err(Error::NotLive {
            stream_id: live.stream_ref.stream_id.clone(),
            what: "the replay buffer is empty (is replay enabled and the stream live?)",
        });
    };
    if ms < first_ms || ms > last_ms {
        return Err(Error::invalid("at", "must be inside the replay window"));
    }
    let gop = replay
        .find(|g| g.end_ms > ms)
        .ok_or_else(|| Error::invalid("at", "must be inside the replay window"))?;
    let target = gop.start_pts + Duration::from_millis((ms - gop.start_ms).max(0) as u64);
    let target = target.min(gop.end_pts.saturating_sub(Duration::from_millis(1)));
    let settings = live.processing().borrow().thumbnail;
    let (width, height, format) = settings.map_or((None, None, Default::default()), |t| {
        (t.width, t.height, t.format)
    });
    let job_gop = Arc::clone(&gop);
    let image = state
        .features
        .run_job(JobLane::Bulk, move || {
            let units = job_gop.units().map_err(MediaError::io("reading replay"))?;
            let video: Vec<_> = units.iter().filter(|u| u.codec.is_video()).collect();
            crate::features::still::encode_at(&video, Some(target), width, height, format)
        })
        .await?;
    Ok(pb::Thumbnail {
        stream_id: live.stream_ref.stream_id.clone(),
        sequence: 0,
        pts: Some(to_duration(image.pts.unwrap_or(target))),
        capture_time: Some(timestamp_from_millis(ms)),
        width: image.width,
        height: image.height,
        format: format.to_proto() as i32,
        data: image.data,
    })
}

/// What a stream's replay buffer holds, for `Stream.replay_window`.
pub fn window_of(replay: &ReplayBuffer) -> Option<pb::ReplayWindow> {
    let held = replay.held();
    let ((_, earliest_ms), _) = replay.edges()?;
    Some(pb::ReplayWindow {
        earliest_time: Some(timestamp_from_millis(earliest_ms)),
        duration: Some(to_duration(held.duration)),
        gops: held.gops as u32,
        bytes: held.bytes as u64,
        disk_bytes: held.disk_bytes as u64,
    })
}

pub fn clip_path(state: &ApiState, clip: &ClipRecord) -> PathBuf {
    state
        .features
        .data()
        .clips_dir(&StreamRef::new(&clip.organization_id, &clip.stream_id))
        .join(&clip.file_name)
}

pub fn to_proto(clip: &ClipRecord) -> pb::ReplayClip {
    pb::ReplayClip {
        id: clip.id.clone(),
        stream_id: clip.stream_id.clone(),
        start_time: Some(timestamp_from_millis(clip.start_time_ms)),
        duration: Some(to_duration(Duration::from_nanos(clip.duration_ns))),
        size_bytes: clip.size_bytes,
        create_time: Some(timestamp_from_millis(clip.create_time_ms)),
        title: clip.title.clone(),
        start_pts: Some(to_duration(Duration::from_nanos(clip.start_pts_ns))),
    }
}

pub async fn create_clip(
    state: &ApiState,
    live: &Arc<LiveStream>,
    req: &pb::CreateReplayClipRequest,
) -> Result<pb::ReplayClip> {
    use pb::create_replay_clip_request::Start;
    validate::name("title", &req.title)?;
    let start = match &req.start {
        Some(Start::StartTime(ts)) => ClipStart::Time(millis(ts)),
        Some(Start::SecondsBeforeLive(s)) => ClipStart::BeforeLive(*s),
        None => {
            return Err(Error::invalid(
                "start",
                "set start_time or seconds_before_live",
            ))
        }
    };
    let started = std::time::Instant::now();
    let record = clips::create(
        &state.features,
        &live.stream_ref,
        start,
        req.duration_seconds,
        req.title.clone(),
    )
    .await?;
    state.registry.put_clip(&record)?;
    tracing::info!(
        stream = %live.stream_ref,
        clip = %record.id,
        bytes = record.size_bytes,
        media_ms = record.duration_ns / 1_000_000,
        took_ms = started.elapsed().as_secs_f64() * 1000.0,
        "replay clip created"
    );
    Ok(to_proto(&record))
}

pub fn find_clip(state: &ApiState, org_id: &str, clip_id: &str) -> Result<ClipRecord> {
    validate::id("clip_id", clip_id)?;
    state
        .registry
        .clip(org_id, clip_id)?
        .ok_or_else(|| Error::NotFound {
            kind: "replay clip",
            name: clip_id.to_string(),
        })
}

pub fn list_clips(
    state: &ApiState,
    org_id: &str,
    req: &pb::ListReplayClipsRequest,
) -> Result<pb::ListReplayClipsResponse> {
    let page_size = validate::page_size("page_size", req.page_size)?;
    let page = state
        .registry
        .list_clips(org_id, &req.stream_id, &req.page_token, page_size)?;
    Ok(pb::ListReplayClipsResponse {
        clips: page.items.iter().map(to_proto).collect(),
        next_page_token: page.next_page_token,
    })
}

pub async fn download_clip(
    state: &ApiState,
    org_id: &str,
    req: &pb::DownloadReplayClipRequest,
) -> Result<files::Chunks> {
    let clip = find_clip(state, org_id, &req.clip_id)?;
    files::stream(clip_path(state, &clip), req.offset).await
}

pub fn delete_clip(state: &ApiState, org_id: &str, clip_id: &str) -> Result<()> {
    let clip = find_clip(state, org_id, clip_id)?;
    state.registry.delete_clip(&clip)?;
    let _ = std::fs::remove_file(clip_path(state, &clip));
    tracing::info!(clip = %clip.id, "replay clip deleted");
    Ok(())
}
