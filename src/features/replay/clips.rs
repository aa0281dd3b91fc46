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

/// Cuts, remuxes, saves and catalogues a clip.
pub async fn create(
    engine: &FeatureEngine,
    stream: &StreamRef,
    start: ClipStart,
    duration_seconds: u32,
    title: String,
) -> Result<ClipRecord> {
    if duration_seconds == 0 {
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
        ClipStart::Time(ms) => {
            if ms < first_ms {
                return Err(Error::invalid(
                    "start_time",
                    "is before the oldest media in the replay buffer",
                ));
            }
            if ms > last_ms {
                return Err(Error::invalid("start_time", "is in the future"));
            }
            let gop = outputs
                .replay
                .find(|g| g.end_ms > ms)
                .ok_or_else(|| Error::invalid("start_time", "is outside the replay buffer"))?;
            // Within the GOP, interpolate wall clock to stream time.
            let into = Duration::from_millis((ms - gop.start_ms).max(0) as u64);
            gop.start_pts + into.min(gop.duration())
        }
    };
    let to = from + Duration::from_secs(duration_seconds.into());
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
    let (start_pts, start_ms) = (first.start_pts, first.start_ms);
    let end_pts = gops.last().map_or(start_pts, |g| g.end_pts);
    // Whole GOPs from the keyframe at or before `from`, cut at `to`.
    let clip_end = end_pts.min(to);
    let id = ids::new_clip_id(now_millis());
    let file_name = format!("{id}.mp4");
    let folder = engine.data().clips_dir(stream);
    let path = folder.join(&file_name);
    let size = engine
        .run_job(JobLane::Bulk, move || {
            let mut units = Vec::new();
            for gop in &gops {
                let held = gop.units().map_err(MediaError::io("reading replay"))?;
                units.extend(
                    held.iter()
                        .filter(|u| u.pts.is_some_and(|p| p < to))
                        .cloned(),
                );
            }
            std::fs::create_dir_all(&folder).map_err(MediaError::io("clip folder"))?;
            // Written beside, then renamed: a crash leaves no partial clip.
            let tmp = path.with_extension("part");
            let size = clip::write_mp4(&units, &tmp)?;
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
