//! Clips of a publishing session's recordings, to the frame: the range
//! `start..end` (wall-clock) may run across the session's files. Each
//! file that holds part of it is read by byte ranges
//! ([`RecordingFrames::units_between`]: from the keyframe before the
//! start, through the fragment holding the end), its units placed on the
//! stream's timeline (a file's first frame at its `start_pts`, so the
//! files of a session follow each other), and the whole cut like a
//! replay clip: whole GOPs under an edit list that presents exactly the
//! frames asked for. Only finished files are read; a session still
//! recording can be clipped up to its last finished file.

use std::time::Duration;

use bytes::Bytes;

use super::recording_frames::RecordingFrames;
use super::{clips, recordings, Services};
use crate::error::{Error, Result};
use crate::features::replay::clips::Cut;
use crate::ids::StreamRef;
use crate::registry::ClipRecord;

/// The longest clip [`create`] makes: its media is held in memory while
/// the file is written.
pub const LONGEST: Duration = Duration::from_secs(30 * 60);

/// Cuts `start_ms..end_ms` out of the session's recordings and
/// catalogues it as a clip of the stream.
pub async fn create(
    services: &Services,
    stream: &StreamRef,
    session_id: &str,
    (start_ms, end_ms): (i64, i64),
    title: String,
) -> Result<ClipRecord> {
    crate::validate::name("title", &title)?;
    if end_ms.saturating_sub(start_ms) > LONGEST.as_millis() as i64 {
        return Err(Error::invalid(
            "end_time",
            format!("a session clip runs at most {} s", LONGEST.as_secs()),
        ));
    }
    let cut = cut(services, stream, session_id, (start_ms, end_ms)).await?;
    clips::catalogue(services, stream, cut, title, None).await
}

/// The MP4 of `start_ms..end_ms` of the session, made in memory and not
/// kept.
pub async fn bytes(
    services: &Services,
    stream: &StreamRef,
    session_id: &str,
    (start_ms, end_ms): (i64, i64),
) -> Result<Bytes> {
    clips::check_in_memory_length(start_ms, end_ms)?;
    let cut = cut(services, stream, session_id, (start_ms, end_ms)).await?;
    crate::features::replay::clips::bytes(&services.features, cut).await
}

/// The session's media from `start_ms` until just before `end_ms`.
async fn cut(
    services: &Services,
    stream: &StreamRef,
    session_id: &str,
    (start_ms, end_ms): (i64, i64),
) -> Result<Cut> {
    if end_ms <= start_ms {
        return Err(Error::invalid("end_time", "must be after start_time"));
    }
    let (playable, _) = recordings::playable_of_session(
        services,
        &stream.organization_id,
        &stream.stream_id,
        session_id,
    )
    .await?;
    let spans: Vec<_> = playable
        .iter()
        .map(|p| {
            let duration = Duration::from_nanos(p.record.duration_ns);
            let start = p.record.start_time_ms;
            (p, start, start + duration.as_millis() as i64, duration)
        })
        .collect();
    let (Some(first), Some(last)) = (spans.first(), spans.last()) else {
        return Err(Error::NotFound {
            kind: "session with finished recordings",
            name: session_id.to_string(),
        });
    };
    if start_ms < first.1 {
        return Err(Error::invalid(
            "start_time",
            "is before the session's first recording",
        ));
    }
    if end_ms > last.2 {
        return Err(Error::invalid(
            "end_time",
            "is after the session's last finished recording",
        ));
    }
    let (mut units, mut from, mut to) = (Vec::new(), None, Duration::ZERO);
    for &(p, file_start, file_end, duration) in &spans {
        if file_end <= start_ms || file_start >= end_ms {
            continue;
        }
        let origin = Duration::from_nanos(p.record.start_pts_ns);
        let offset = |ms: i64| Duration::from_millis((ms - file_start).max(0) as u64).min(duration);
        let (a, b) = (offset(start_ms), offset(end_ms));
        from.get_or_insert(origin + a);
        to = origin + b;
        let frames = RecordingFrames::open(recordings::media(services, &p.record).await?).await?;
        units.extend(frames.units_between(a, b, origin).await?);
    }
    let from = from.ok_or_else(|| Error::invalid("start_time", "no recording holds it"))?;
    Cut::exact(units, from, to, start_ms)
}
