//! Replay clips: a moment of a stream cut from the replay buffer
//! ([`cut`]) on keyframes (the clip starts at the keyframe at or before
//! the requested start), or to the frame (whole GOPs under an MP4 edit
//! list that presents exactly the frames asked for), and remuxed to a
//! faststart MP4 without re-encoding: saved in the data dir to be
//! catalogued ([`save`]), so it outlives the buffer, the session and
//! restarts, or made in memory for a URL ([`bytes`]). "The last 30
//! seconds" is one call (`seconds_before_live`). A [`Cut`] can also be
//! made of units read elsewhere (a session's recordings).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::buffer::Gop;
use crate::container::mp4::Span;
use crate::error::{Error, Result};
use crate::features::{clip, FeatureEngine, JobLane};
use crate::ids::{self, StreamRef};
use crate::media::{now_millis, AccessUnit, MediaError};
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

/// A clip's media, ready to be written.
pub struct Cut {
    units: CutUnits,
    /// What the file presents, to the frame; `None`: all of its GOPs.
    span: Option<Span>,
    /// Wall-clock time of the first frame presented, ms since the epoch.
    start_ms: i64,
    /// Stream time of the first frame presented, and of the clip's end.
    start_pts: Duration,
    end_pts: Duration,
}

enum CutUnits {
    /// GOPs of the replay buffer (read in the job: they may be spilled),
    /// their units before `to` (all of them under a span).
    Gops {
        gops: Vec<Arc<Gop>>,
        to: Duration,
    },
    Read(Vec<AccessUnit>),
}

impl Cut {
    /// A cut to the frame of `units` (each track in decode order, the
    /// video starting at a keyframe), presenting `from` until just before
    /// `to` (stream times; `start_ms` is `from`'s wall-clock time).
    pub fn exact(
        units: Vec<AccessUnit>,
        from: Duration,
        to: Duration,
        start_ms: i64,
    ) -> Result<Cut> {
        let video = units.iter().filter(|u| u.codec.is_video());
        let shown = shown_at(video, from)?;
        let end_pts = units
            .iter()
            .filter(|u| u.codec.is_video())
            .filter_map(|u| u.pts.zip(u.duration).map(|(p, d)| p + d))
            .max()
            .unwrap_or(shown)
            .min(to);
        Ok(Cut {
            units: CutUnits::Read(units),
            span: Some(Span {
                from: shown,
                to: end_pts,
            }),
            start_ms: start_ms - from.saturating_sub(shown).as_millis() as i64,
            start_pts: shown,
            end_pts,
        })
    }

    /// How long the clip presents.
    pub fn duration(&self) -> Duration {
        self.end_pts.saturating_sub(self.start_pts)
    }

    /// The units to write (blocking: spilled GOPs are read from disk).
    fn units(self) -> crate::media::MediaResult<(Vec<AccessUnit>, Option<Span>)> {
        let units = match self.units {
            CutUnits::Read(units) => units,
            CutUnits::Gops { gops, to } => {
                let mut units = Vec::new();
                for gop in &gops {
                    let held = gop.units().map_err(MediaError::io("reading replay"))?;
                    // A span keeps the frames after it that frames in it
                    // reference; the edit list hides them.
                    units.extend(
                        held.iter()
                            .filter(|u| self.span.is_some() || u.pts.is_some_and(|p| p < to))
                            .cloned(),
                    );
                }
                units
            }
        };
        Ok((units, self.span))
    }
}

/// Cuts a clip out of the stream's replay buffer.
pub fn cut(
    engine: &FeatureEngine,
    stream: &StreamRef,
    start: ClipStart,
    length: ClipLength,
) -> Result<Cut> {
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
    let (mut start_pts, mut start_ms) = (first.start_pts, first.start_ms);
    let end_pts = gops.last().map_or(start_pts, |g| g.end_pts);
    // Whole GOPs from the keyframe at or before `from`, cut at `to`; or,
    // to the frame, exactly from the frame shown at `from`.
    let clip_end = end_pts.min(to);
    let mut span = None;
    if matches!(length, ClipLength::Until(_)) {
        let shown = frame_shown_at(&gops, from)?;
        start_ms = first.start_ms + shown.saturating_sub(first.start_pts).as_millis() as i64;
        start_pts = shown;
        span = Some(Span {
            from: shown,
            to: clip_end,
        });
    }
    Ok(Cut {
        units: CutUnits::Gops { gops, to },
        span,
        start_ms,
        start_pts,
        end_pts: clip_end,
    })
}

/// Writes `cut` as a clip file of `stream`'s and returns its record, to
/// be catalogued.
pub async fn save(
    engine: &FeatureEngine,
    stream: &StreamRef,
    cut: Cut,
    title: String,
) -> Result<ClipRecord> {
    let id = ids::new_clip_id(now_millis());
    let file_name = format!("{id}.mp4");
    let folder = engine.data().clips_dir(stream);
    let path = folder.join(&file_name);
    let (start_ms, start_pts, duration) = (cut.start_ms, cut.start_pts, cut.duration());
    let size = engine
        .run_job(JobLane::Bulk, move || {
            let (units, span) = cut.units()?;
            std::fs::create_dir_all(&folder).map_err(MediaError::io("clip folder"))?;
            // Written beside, then renamed: a crash leaves no partial clip.
            let tmp = path.with_extension("part");
            let size = clip::write_mp4(&units, span, &tmp)?;
            std::fs::rename(&tmp, &path).map_err(MediaError::io("saving the clip"))?;
            Ok(size)
        })
        .await?;
    Ok(ClipRecord {
        id,
        organization_id: stream.organization_id.clone(),
        stream_id: stream.stream_id.clone(),
        file_name,
        title,
        start_time_ms: start_ms,
        start_pts_ns: start_pts.as_nanos() as u64,
        duration_ns: duration.as_nanos() as u64,
        size_bytes: size,
        create_time_ms: now_millis(),
        uploaded: false,
    })
}

/// `cut` as MP4 bytes, in memory.
pub async fn bytes(engine: &FeatureEngine, cut: Cut) -> Result<Bytes> {
    engine
        .run_job(JobLane::Bulk, move || {
            let (units, span) = cut.units()?;
            clip::mp4_bytes(&units, span)
        })
        .await
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

/// The presentation time of the video frame of `gops` shown at `at`
/// (the first GOP holds `at`: the frame is in it, or among the next one's
/// leading B-frames of an open GOP; later GOPs are not read).
fn frame_shown_at(gops: &[Arc<Gop>], at: Duration) -> Result<Duration> {
    let mut held = Vec::with_capacity(2);
    for gop in gops.iter().take(2) {
        held.push(gop.units().map_err(MediaError::io("reading replay"))?);
    }
    shown_at(
        held.iter()
            .flat_map(|u| u.iter())
            .filter(|u| u.codec.is_video()),
        at,
    )
}

/// The presentation time of the frame of `video` shown at `at`: the
/// latest at or before it.
fn shown_at<'a>(video: impl Iterator<Item = &'a AccessUnit>, at: Duration) -> Result<Duration> {
    video
        .filter_map(|u| u.pts.filter(|&p| p <= at))
        .max()
        .ok_or_else(|| Error::invalid("start_time", "no frame is shown there"))
}
