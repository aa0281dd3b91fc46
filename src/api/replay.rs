//! The replay RPCs of `LiveProcessing`: rewinding subscriptions over the
//! replay buffer, and replay clips (create, get, list, download, delete).

use std::sync::Arc;
use std::time::Duration;

use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::subscriber::Subscriber;
use super::{files, Services};
use crate::error::{Error, Result};
use crate::features::replay::buffer::{Cursor, Gop, ReplayBuffer};
use crate::features::replay::clips::{ClipLength, ClipStart};
use crate::media::TrackFormat;
use crate::proto::v1 as pb;
use crate::proto::{timestamp_from_millis, timestamp_to_millis, to_duration};
use crate::service::{clips, segments};
use crate::streams::LiveStream;
use crate::validate;

/// Segments buffered per subscriber: a reader that does not keep up is
/// simply not sent more until it reads (the buffer holds the rest).
const SEGMENT_BUFFER: usize = 2;

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
            let ms = timestamp_to_millis(ts);
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
    state: &Services,
    live: Arc<LiveStream>,
    req: &pb::SubscribeReplayRequest,
) -> Result<ReceiverStream<Result<pb::ReplaySegment, Status>>> {
    let format = match pb::SegmentFormat::try_from(req.format) {
        Ok(pb::SegmentFormat::Unspecified | pb::SegmentFormat::MpegTs) => pb::SegmentFormat::MpegTs,
        Ok(pb::SegmentFormat::Fmp4) => pb::SegmentFormat::Fmp4,
        Err(_) => return Err(Error::invalid("format", "must be MPEG_TS or FMP4")),
    };
    let services = state.clone();
    let outputs = state.features.outputs(&live.stream_ref)?;
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
            let made = match format {
                pb::SegmentFormat::Fmp4 => {
                    segments::fmp4(&services, &gop)
                        .await
                        .map(|(init, fragment)| {
                            if last_init.as_ref() == Some(&init) {
                                return fragment;
                            }
                            let mut both = Vec::with_capacity(init.len() + fragment.len());
                            both.extend_from_slice(&init);
                            both.extend_from_slice(&fragment);
                            last_init = Some(init);
                            bytes::Bytes::from(both)
                        })
                }
                _ => segments::mpeg_ts(&services, &gop).await,
            };
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

pub async fn create_clip(
    state: &Services,
    live: &Arc<LiveStream>,
    req: &pb::CreateReplayClipRequest,
) -> Result<pb::ReplayClip> {
    use pb::create_replay_clip_request::Start;
    validate::name("title", &req.title)?;
    let start = match &req.start {
        Some(Start::StartTime(ts)) => ClipStart::Time(timestamp_to_millis(ts)),
        Some(Start::SecondsBeforeLive(s)) => ClipStart::BeforeLive(*s),
        None => {
            return Err(Error::invalid(
                "start",
                "set start_time or seconds_before_live",
            ))
        }
    };
    let length = match (&req.end_time, &req.start, req.duration_seconds) {
        (None, _, seconds) => ClipLength::Seconds(seconds),
        (Some(end), Some(Start::StartTime(_)), 0) => ClipLength::Until(timestamp_to_millis(end)),
        (Some(_), Some(Start::StartTime(_)), _) => {
            return Err(Error::invalid(
                "duration_seconds",
                "must be 0 when end_time is set",
            ))
        }
        (Some(_), _, _) => return Err(Error::invalid("end_time", "needs start_time")),
    };
    let record = clips::create(state, live, start, length, req.title.clone()).await?;
    Ok(clips::to_proto(&record))
}

pub async fn create_session_clip(
    state: &Services,
    org_id: &str,
    req: &pb::CreateSessionClipRequest,
) -> Result<pb::ReplayClip> {
    let time = |field: &'static str, ts: &Option<pbjson_types::Timestamp>| {
        ts.as_ref()
            .map(timestamp_to_millis)
            .ok_or_else(|| Error::invalid(field, "is required"))
    };
    let range = (
        time("start_time", &req.start_time)?,
        time("end_time", &req.end_time)?,
    );
    let stream = crate::ids::StreamRef::new(org_id, &req.stream_id);
    let record = crate::service::session_clips::create(
        state,
        &stream,
        &req.session_id,
        range,
        req.title.clone(),
    )
    .await?;
    Ok(clips::to_proto(&record))
}

pub async fn list_clips(
    state: &Services,
    org_id: &str,
    req: &pb::ListReplayClipsRequest,
) -> Result<pb::ListReplayClipsResponse> {
    let page_size = validate::page_size("page_size", req.page_size)?;
    let page = state
        .registry
        .list_clips(org_id, &req.stream_id, &req.page_token, page_size)
        .await?;
    Ok(pb::ListReplayClipsResponse {
        clips: page.items.iter().map(clips::to_proto).collect(),
        next_page_token: page.next_page_token,
    })
}

pub async fn download_clip(
    state: &Services,
    org_id: &str,
    req: &pb::DownloadReplayClipRequest,
) -> Result<files::Chunks> {
    let clip = clips::find(state, org_id, &req.clip_id).await?;
    files::stream(clips::media(state, &clip).await?, req.offset).await
}
