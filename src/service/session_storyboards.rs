//! Storyboards of a publishing session's recordings, on the timeline of
//! the session's playlist (`recordings.m3u8`: each recording after the
//! previous, from zero). That timeline is cut into slots of the
//! storyboard interval; slot k's tile is the keyframe shown at k·interval,
//! read from the recording that holds it ([`RecordingFrames`]). The VTT
//! needs no decoding (a cue per slot, at its fixed place); a sheet's
//! tiles are decoded when the sheet is asked for (on the bulk job lane,
//! as many at once as it has slots), and a finished session's sheets are
//! kept, the most recent few.

use std::time::Duration;

use bytes::Bytes;

use super::recording_frames::RecordingFrames;
use super::Services;
use crate::error::{Error, Result};
use crate::features::storyboard::{compose, vtt_header, write_cue, Layout};
use crate::features::JobLane;
use crate::ids::StreamRef;
use crate::options::ImageFormat;
use crate::registry::RecordingRecord;

/// A session's recordings on its playlist's timeline.
struct Timeline {
    /// Each playable recording, where it starts on the timeline, and its
    /// duration.
    parts: Vec<(RecordingRecord, Duration, Duration)>,
    total: Duration,
    /// Wall-clock start of the first recording.
    origin_ms: i64,
    /// The session is still recording (its storyboard grows).
    recording: bool,
}

impl Timeline {
    /// The recording holding `at`, and `at` from its start. Durations
    /// are rounded to nanoseconds, so a file may seem to end a hair after
    /// the next one starts: `at` within a millisecond of a file's start
    /// is that file's.
    fn holding(&self, at: Duration) -> Option<(&RecordingRecord, Duration)> {
        const ROUNDING: Duration = Duration::from_millis(1);
        self.parts
            .iter()
            .rev()
            .find(|(_, start, _)| *start <= at + ROUNDING)
            .map(|(record, start, _)| (record, at.saturating_sub(*start)))
    }

    /// Slots on the timeline.
    fn slots(&self, layout: &Layout) -> i64 {
        let interval = layout.interval.as_millis().max(1);
        self.total.as_millis().div_ceil(interval) as i64
    }
}

async fn timeline(services: &Services, stream: &StreamRef, session_id: &str) -> Result<Timeline> {
    let (playable, recording) = super::recordings::playable_of_session(
        services,
        &stream.organization_id,
        &stream.stream_id,
        session_id,
    )
    .await?;
    let mut parts = Vec::with_capacity(playable.len());
    let mut total = Duration::ZERO;
    for p in playable {
        let duration = Duration::from_nanos(p.record.duration_ns);
        parts.push((p.record, total, duration));
        total += duration;
    }
    let origin_ms = parts
        .first()
        .map(|(r, _, _)| r.start_time_ms)
        .ok_or_else(|| Error::NotFound {
            kind: "session with finished recordings",
            name: session_id.to_string(),
        })?;
    Ok(Timeline {
        parts,
        total,
        origin_ms,
        recording,
    })
}

/// A tile's size: the width of the layout, the picture's aspect.
async fn cell(services: &Services, timeline: &Timeline, layout: &Layout) -> Result<(u32, u32)> {
    let (first, _, _) = &timeline.parts[0];
    let frames = RecordingFrames::open(super::recordings::media(services, first).await?).await?;
    let picture = frames.picture_size().unwrap_or((16, 9));
    // The size the still makers give a tile of that width.
    Ok(crate::features::geometry::fit(
        picture,
        Some(layout.tile_width),
        None,
    ))
}

/// The WebVTT of the session's storyboard; `sheet_url` names a sheet.
pub async fn vtt(
    services: &Services,
    stream: &StreamRef,
    session_id: &str,
    sheet_url: impl Fn(i64) -> String,
) -> Result<String> {
    let layout = services.features.storyboard_layout();
    let timeline = timeline(services, stream, session_id).await?;
    let cell = cell(services, &timeline, &layout).await?;
    let interval = layout.interval.as_millis() as i64;
    let total = timeline.total.as_millis() as i64;
    let mut out = vtt_header(timeline.origin_ms);
    for slot in 0..timeline.slots(&layout) {
        let cue = (slot * interval, ((slot + 1) * interval).min(total));
        let url = sheet_url(layout.place(slot).0);
        write_cue(&mut out, &layout, slot, cue, &url, cell);
    }
    Ok(out)
}

/// Sheet `n` of the session's storyboard, as a JPEG.
pub async fn sheet(
    services: &Services,
    stream: &StreamRef,
    session_id: &str,
    n: i64,
) -> Result<Bytes> {
    let outputs = services.features.outputs(stream)?;
    if let Some(kept) = outputs.session_sheets.get(session_id, n) {
        return Ok(kept);
    }
    let layout = services.features.storyboard_layout();
    let timeline = timeline(services, stream, session_id).await?;
    let per_sheet = i64::from(layout.columns * layout.rows);
    let slots = (n * per_sheet)..((n + 1) * per_sheet).min(timeline.slots(&layout));
    if n < 0 || slots.is_empty() {
        return Err(Error::NotFound {
            kind: "storyboard sheet",
            name: n.to_string(),
        });
    }
    let cell = cell(services, &timeline, &layout).await?;
    // Each recording is opened once for the sheet's slots in it.
    let mut keyframes = Vec::new();
    let mut opened: Option<(String, RecordingFrames)> = None;
    for slot in slots {
        let at = layout.interval * slot as u32;
        let Some((record, offset)) = timeline.holding(at) else {
            continue;
        };
        if opened.as_ref().is_none_or(|(id, _)| *id != record.id) {
            let media = super::recordings::media(services, record).await?;
            opened = Some((record.id.clone(), RecordingFrames::open(media).await?));
        }
        let (_, frames) = opened.as_ref().expect("opened above");
        keyframes.push((slot, frames.keyframe_at(offset).await?));
    }
    let width = layout.tile_width;
    let tiles = futures::future::join_all(keyframes.into_iter().map(|(slot, keyframe)| {
        let job = services.features.run_job(JobLane::Bulk, move || {
            crate::features::still_makers::encode(&keyframe, Some(width), None, ImageFormat::Jpeg)
        });
        async move { (slot, job.await) }
    }))
    .await;
    let tiles: Vec<(i64, Bytes)> = tiles
        .into_iter()
        .filter_map(|(slot, still)| match still {
            Ok(still) => Some((slot, still.data)),
            Err(e) => {
                tracing::debug!(slot, error = %e, "no storyboard tile");
                None
            }
        })
        .collect();
    let jpeg = services
        .features
        .run_job(JobLane::Bulk, move || {
            let placed: Vec<(i64, &Bytes)> = tiles.iter().map(|(s, t)| (*s, t)).collect();
            compose(&layout, cell, &placed)
        })
        .await?;
    if !timeline.recording {
        outputs.session_sheets.put(session_id, n, jpeg.clone());
    }
    Ok(jpeg)
}
