//! A thumbnail of any moment of a stream: from the replay window, the
//! frame at that wall-clock time, decoded on demand from the GOP that
//! holds it (only as far as that frame); before the window (or when the
//! stream is not live), the keyframe at or before that time in the
//! recording that holds it ([`super::recording_frames`]). Encoded like
//! the stream's thumbnails.

use std::sync::Arc;
use std::time::Duration;

use super::recording_frames::RecordingFrames;
use super::Services;
use crate::error::{Error, Result};
use crate::features::JobLane;
use crate::media::MediaError;
use crate::proto::v1 as pb;
use crate::proto::{timestamp_from_millis, to_duration};
use crate::streams::LiveStream;

/// The picture of the stream at `at_ms` (ms since the epoch): from the
/// replay window, or else from a recording.
pub async fn at(services: &Services, live: &Arc<LiveStream>, at_ms: i64) -> Result<pb::Thumbnail> {
    let in_window = services
        .features
        .outputs(&live.stream_ref)
        .ok()
        .and_then(|outputs| outputs.replay.edges())
        .is_some_and(|((_, first_ms), (_, last_ms))| (first_ms..=last_ms).contains(&at_ms));
    if in_window {
        return in_replay(services, live, at_ms).await;
    }
    in_recording(services, live, at_ms).await
}

/// The keyframe at or before `at_ms` in the stream's recording that holds
/// it.
async fn in_recording(
    services: &Services,
    live: &Arc<LiveStream>,
    at_ms: i64,
) -> Result<pb::Thumbnail> {
    let stream = &live.stream_ref;
    let record = services
        .registry
        .recording_at(&stream.organization_id, &stream.stream_id, at_ms)
        .await?
        .ok_or_else(|| Error::NotFound {
            kind: "replay window or recording holding that time, of stream",
            name: stream.stream_id.clone(),
        })?;
    let media = super::recordings::media(services, &record).await?;
    let frames = RecordingFrames::open(media).await?;
    let offset = Duration::from_millis((at_ms - record.start_time_ms).max(0) as u64);
    let keyframe = frames.keyframe_at(offset).await?;
    let shown_at = record.start_time_ms + keyframe.pts.unwrap_or_default().as_millis() as i64;
    let (width, height, format) = thumbnail_settings(live);
    let image = services
        .features
        .run_job(JobLane::Bulk, move || {
            crate::features::still_makers::encode(&keyframe, width, height, format)
        })
        .await?;
    Ok(pb::Thumbnail {
        stream_id: stream.stream_id.clone(),
        sequence: 0,
        pts: Some(to_duration(
            Duration::from_nanos(record.start_pts_ns) + image.pts.unwrap_or_default(),
        )),
        capture_time: Some(timestamp_from_millis(shown_at)),
        width: image.width,
        height: image.height,
        format: format.to_proto() as i32,
        data: image.data,
    })
}

/// The size and format the stream's thumbnails are made in.
fn thumbnail_settings(
    live: &LiveStream,
) -> (Option<u32>, Option<u32>, crate::options::ImageFormat) {
    let settings = live.processing().borrow().thumbnail;
    settings.map_or((None, None, Default::default()), |t| {
        (t.width, t.height, t.format)
    })
}

/// The frame at `at_ms` of the stream's replay window.
async fn in_replay(
    services: &Services,
    live: &Arc<LiveStream>,
    at_ms: i64,
) -> Result<pb::Thumbnail> {
    let replay = &services.features.outputs(&live.stream_ref)?.replay;
    let Some(((_, first_ms), (_, last_ms))) = replay.edges() else {
        return Err(Error::NotLive {
            stream_id: live.stream_ref.stream_id.clone(),
            what: "the replay buffer is empty (is replay enabled and the stream live?)",
        });
    };
    if at_ms < first_ms || at_ms > last_ms {
        return Err(Error::invalid("at", "must be inside the replay window"));
    }
    let gop = replay
        .find(|g| g.end_ms > at_ms)
        .ok_or_else(|| Error::invalid("at", "must be inside the replay window"))?;
    let target = gop.start_pts + Duration::from_millis((at_ms - gop.start_ms).max(0) as u64);
    let target = target.min(gop.end_pts.saturating_sub(Duration::from_millis(1)));
    let (width, height, format) = thumbnail_settings(live);
    let job_gop = Arc::clone(&gop);
    let image = services
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
        capture_time: Some(timestamp_from_millis(at_ms)),
        width: image.width,
        height: image.height,
        format: format.to_proto() as i32,
        data: image.data,
    })
}
