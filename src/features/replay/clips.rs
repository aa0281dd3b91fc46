//! Replay clips: a moment of a stream cut from the replay buffer on
//! keyframes (the clip starts at the keyframe at or before the requested
//! start) and remuxed to a faststart MP4 without re-encoding, saved in the
//! data dir and catalogued, so it outlives the buffer, the session and
//! restarts. "The last 30 seconds" is one call (`seconds_before_live`).

use std::time::Duration;

use crate::error::{Error, Result};
use crate::features::{clip, FeatureEngine, JobLane};
use crate::ids::{self, StreamRef};
use crate::media::{now_millis, MediaError};
use crate::registry::ClipRecord;

/// Where a clip starts.
#[derive(Debug, Clone, Copy)]
pub enum ClipStart {
    /// Wall-clock time, ms since the epoch.
    Time(i64),
    /// Seconds before the newest media in the buffer.
    BeforeLive(u32),
}

/// How long a clip runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClipLength {
    /// Whole seconds from the keyframe at or before the start.
    Seconds(u32),
    /// To the frame, until this wall-clock time (ms since the epoch),
    /// from exactly the start.
    Until(i64),
}

/// Cuts, remuxes, saves and catalogues a clip.
pub async fn create(
    engine: &FeatureEngine,
    stream: &StreamRef,
    start: ClipStart,
    length: ClipLength,
    title: String,
) -> Result<ClipRecord> {
    if length == ClipLength::Seconds(0) {
        return Err(Error::invalid("duration_seconds", "must be at least 1"));
    }
    let outputs = engine.outputs(stream)?;
    let Some(((first_pts, first_ms), (last_pts, last_ms))) = outputs.replay.edges() else {
        return Err(Error::NotLive {
            stream_id: stream.stream_id.clone(),
            what: "the replay buffer is empty (is replay enabled and the stream live?)",
        });
    };
    let from = match start {
        ClipStart::BeforeLive(seconds) => {
            let back = Duration::from_secs(seconds.into());
            // Timestamps can go backwards across a discontinuity: never
            // subtract past zero.
            let held = last_pts.saturating_sub(first_pts);
            if back > held {
                return Err(Error::invalid(
                    "seconds_before_live",
                    format!(
                        "must be at most {} (the replay buffer holds {:.1} s)",
                        held.as_secs(),
                        held.as_secs_f64()
                    ),
                ));
            }
            last_pts.saturating_sub(back)
        }
        ClipStart::Time(ms) => stream_time(&outputs.replay, "start_time", ms, (first_ms, last_ms))?,
    };
    let to = match length {
        ClipLength::Seconds(seconds) => from + Duration::from_secs(seconds.into()),
        ClipLength::Until(ms) => {
            let to = stream_time(&outputs.replay, "end_time", ms, (first_ms, last_ms))?;
            if to <= from {
                return Err(Error::invalid("end_time", "must be after start_time"));
            }
            to
        }
    };
    let mut gops = outputs.replay.range(from, to);
    let Some(first) = gops.first().cloned() else {
        return Err(Error::invalid(
            "start",
            "no media in the replay buffer there",
        ));
    };
    // One clip, one format: a clip that runs into a format change (new
    // size, codec or profile) ends there.
    if let Some(change) = gops.iter().position(|g| g.format != first.format) {
        gops.truncate(change);
    }
    let exact = matches!(length, ClipLength::Until(_));
    let (mut start_pts, mut start_ms) = (first.start_pts, first.start_ms);
    let end_pts = gops.last().map_or(start_pts, |g| g.end_pts);
    // Whole GOPs from the keyframe at or before `from`, cut at `to`; or,
    // to the frame, exactly from the frame shown at `from`.
    let clip_end = end_pts.min(to);
    let mut span = None;
    if exact {
        let shown = frame_shown_at(&gops, from)?;
        start_ms = first.start_ms + shown.saturating_sub(first.start_pts).as_millis() as i64;
        start_pts = shown;
        span = Some(crate::container::mp4::Span {
            from: shown,
            to: clip_end,
        });
    }
    let id = ids::new_clip_id(now_millis());
    let file_name = format!("{id}.mp4");
    let folder = engine.data().clips_dir(stream);
    let path = folder.join(&file_name);
    let size = engine
        .run_job(JobLane::Bulk, move || {
            let mut units = Vec::new();
            for gop in &gops {
                let held = gop.units().map_err(MediaError::io("reading replay"))?;
                // A span keeps the frames after it that frames in it
                // reference; the edit list hides them.
                units.extend(
                    held.iter()
                        .filter(|u| span.is_some() || u.pts.is_some_and(|p| p < to))
                        .cloned(),
                );
            }
            std::fs::create_dir_all(&folder).map_err(MediaError::io("clip folder"))?;
            // Written beside, then renamed: a crash leaves no partial clip.
            let tmp = path.with_extension("part");
            let size = clip::write_mp4(&units, span, &tmp)?;
            std::fs::rename(&tmp, &path).map_err(MediaError::io("saving the clip"))?;
            Ok(size)
        })
        .await?;

    let record = ClipRecord {
        id,
        organization_id: stream.organization_id.clone(),
        stream_id: stream.stream_id.clone(),
        file_name,
        title,
        start_time_ms: start_ms,
        start_pts_ns: start_pts.as_nanos() as u64,
        duration_ns: clip_end.saturating_sub(start_pts).as_nanos() as u64,
        size_bytes: size,
        create_time_ms: now_millis(),
        uploaded: false,
    };
    Ok(record)
}

/// The stream time of wall-clock `ms` (inside the buffer's `edges`),
/// interpolated within the GOP that holds it; errors name `field`.
fn stream_time(
    replay: &super::buffer::ReplayBuffer,
    field: &'static str,
    ms: i64,
    (first_ms, last_ms): (i64, i64),
) -> Result<Duration> {
    if ms < first_ms {
        return Err(Error::invalid(
            field,
            "is before the oldest media in the replay buffer",
        ));
    }
    if ms > last_ms {
        return Err(Error::invalid(field, "is in the future"));
    }
    let gop = replay
        .find(|g| g.end_ms > ms)
        .ok_or_else(|| Error::invalid(field, "is outside the replay buffer"))?;
    let into = Duration::from_millis((ms - gop.start_ms).max(0) as u64);
    Ok(gop.start_pts + into.min(gop.duration()))
}

/// The presentation time of the video frame shown at `at`: the latest
/// at or before it.
fn frame_shown_at(gops: &[std::sync::Arc<super::buffer::Gop>], at: Duration) -> Result<Duration> {
    let mut shown = None;
    for gop in gops {
        let units = gop.units().map_err(MediaError::io("reading replay"))?;
        for unit in units.iter().filter(|u| u.codec.is_video()) {
            if let Some(pts) = unit.pts.filter(|&p| p <= at) {
                shown = Some(shown.map_or(pts, |s: Duration| s.max(pts)));
            }
        }
    }
    shown.ok_or_else(|| Error::invalid("start_time", "no frame is shown there"))
}
