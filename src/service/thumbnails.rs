//! A thumbnail of any moment of the replay window: the frame at that
//! wall-clock time, decoded on demand from the GOP that holds it (only as
//! far as that frame) and encoded like the stream's thumbnails.

use std::sync::Arc;
use std::time::Duration;

use super::Services;
use crate::error::{Error, Result};
use crate::features::JobLane;
use crate::media::MediaError;
use crate::proto::v1 as pb;
use crate::proto::{timestamp_from_millis, to_duration};
use crate::streams::LiveStream;

/// The frame at `at_ms` (ms since the epoch) of the stream's replay
/// window.
pub async fn at(services: &Services, live: &Arc<LiveStream>, at_ms: i64) -> Result<pb::Thumbnail> {
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
    let settings = live.processing().borrow().thumbnail;
    let (width, height, format) = settings.map_or((None, None, Default::default()), |t| {
        (t.width, t.height, t.format)
    });
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
