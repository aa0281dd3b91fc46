//! MP4 files written directly from parsed access units (H.264 or H.265, AAC), with
//! the index (`moov`) in front: the remux of clips without a GStreamer
//! pipeline. The rewrite of each unit into a sample
//! ([`super::sample_entry`]) is the only work: one pass over the bytes,
//! into the output.
//!
//! ```text
//! ftyp
//! moov
//!   mvhd                      1 ms movie time scale
//!   trak (1: video)           tkhd, edts/elst (starts at the first PTS),
//!     mdia/minf/stbl          stsd(avc1/avcC or hvc1/hvcC), stts, ctts, stss,
//!                             stsc + stsz + co64 (one chunk)
//!   trak (2: audio, if any)   tkhd, edts/elst (aligned to the video),
//!     mdia/minf/stbl          stsd(mp4a/esds), stts, stsc + stsz + co64
//! mdat (64-bit size)          every video sample, then every audio sample
//! ```
//!
//! Timestamps keep the units' decode times (90 kHz for video, the sample
//! rate for audio); the edit lists start each track where the clip starts.
//! [`write_span`] cuts to the frame: the file holds whole GOPs from the
//! keyframe before the span, and the edit lists present exactly the span
//! (the movie time scale is 90 kHz, so a frame's edge is exact); every
//! frame up to the last one shown, in decode order, is kept, since the
//! last frames shown may be B-frames that need a later reference.
//! Audio that is not on the video's timeline (further from the video than
//! [`crate::media::max_skew`]) is left out, so no edit list
//! ever points past a track's media.

use std::time::Duration;

use super::boxes::{dinf, ftyp, mdhd_hdlr, mvhd, tkhd, Boxes};
use super::sample_entry::{
    raw_aac, video_sample_size, write_video_sample, AudioConfig, VideoConfig, AAC_FRAME_SAMPLES,
};
use crate::media::{max_skew, MediaError, MediaResult};
use crate::media::{ticks, ticks_to_duration, AccessUnit, Codec};

const VIDEO_TIMESCALE: u32 = 90_000;
const MOVIE_TIMESCALE: u32 = 90_000;

/// Whether [`write`] handles these tracks (H.264 or H.265 video, AAC audio).
pub fn supported(video: &[&AccessUnit], audio: &[&AccessUnit]) -> bool {
    video.first().is_some_and(|u| u.codec.is_video()) && audio.iter().all(|u| u.codec == Codec::Aac)
}

/// The audio units that lie on the video's timeline: within
/// [`max_skew`] of the video's presentation span. A track on a timeline of
/// its own (hours away) is left out whole.
pub fn audio_on_video_timeline<'a>(
    video: &[&AccessUnit],
    audio: &[&'a AccessUnit],
) -> Vec<&'a AccessUnit> {
    let pts = || video.iter().filter_map(|u| u.pts);
    let (Some(first), Some(last)) = (pts().min(), pts().max()) else {
        return audio.to_vec();
    };
    let gop = video
        .iter()
        .filter(|u| u.keyframe)
        .filter_map(|u| u.pts)
        .nth(1)
        .map_or(Duration::ZERO, |second| second.saturating_sub(first));
    let skew = max_skew(gop);
    let from = first.saturating_sub(skew);
    let to = last + skew;
    audio
        .iter()
        .copied()
        .filter(|u| u.pts.is_none_or(|p| p >= from && p <= to))
        .collect()
}

/// The units of `video` up to the first keyframe whose track format
/// differs from the first unit's, and that keyframe's PTS if there is one.
fn same_format<'a, 'b>(video: &'b [&'a AccessUnit]) -> (&'b [&'a AccessUnit], Option<Duration>) {
    let Some(first) = video.first() else {
        return (video, None);
    };
    match video
        .iter()
        .position(|u| u.keyframe && u.format != first.format)
    {
        Some(end) => (&video[..end], video[end].pts),
        None => (video, None),
    }
}

/// What a file presents of its media: `from` (a presentation time at or
/// after its first keyframe's) until just before `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub from: Duration,
    pub to: Duration,
}

/// The MP4 file of `video` (decode order, first a keyframe) and `audio`.
/// `out` receives the bytes in order.
pub fn write(
    video: &[&AccessUnit],
    audio: &[&AccessUnit],
    out: &mut impl std::io::Write,
) -> MediaResult<u64> {
    write_span(video, audio, None, out)
}

/// [`write`], presenting only `span` (to the frame) when given.
pub fn write_span(
    video: &[&AccessUnit],
    audio: &[&AccessUnit],
    span: Option<Span>,
    out: &mut impl std::io::Write,
) -> MediaResult<u64> {
    // Frames after the last one shown, in decode order, are not needed.
    let video = match span {
        Some(span) => {
            let last = video
                .iter()
                .rposition(|u| u.pts.is_some_and(|p| p < span.to))
                .ok_or_else(|| MediaError::Unsupported("no frame shown in the span".into()))?;
            &video[..=last]
        }
        None => video,
    };
    // One file describes one format: a clip that runs into a format change
    // (new size, codec or profile) ends there.
    let (video, cut) = same_format(video);
    let audio: Vec<&AccessUnit> = match cut {
        Some(cut) => audio
            .iter()
            .copied()
            .filter(|u| u.pts.is_none_or(|p| p < cut))
            .collect(),
        None => audio.to_vec(),
    };
    let mut audio = audio_on_video_timeline(video, &audio);
    if let Some(span) = span {
        audio.retain(|u| {
            let length = u.duration.unwrap_or(LONGEST_AAC_FRAME);
            u.pts.is_none_or(|p| p < span.to && p + length > span.from)
        });
    }
    let mut video_track = VideoTrack::new(video)?;
    let mut audio_track = AudioTrack::new(&audio)?;
    let start = match span {
        Some(span) => {
            let start = span.from.max(video_track.start_pts);
            let end =
                video_track.start_pts + ticks_to_duration(video_track.duration, VIDEO_TIMESCALE);
            let skip = ticks(start - video_track.start_pts, VIDEO_TIMESCALE);
            video_track.shown = (
                u64::from(video_track.lead) + skip,
                ticks(span.to.min(end).saturating_sub(start), VIDEO_TIMESCALE),
            );
            if let Some(audio) = audio_track.as_mut() {
                audio.limit = Some(to_movie(video_track.shown.1, VIDEO_TIMESCALE));
            }
            start
        }
        None => video_track.start_pts,
    };
    let mut head = Boxes::default();
    ftyp(&mut head, b"isom", &[b"isom", b"iso2", b"avc1", b"mp41"]);
    let ftyp = head.0;
    // The moov's size does not depend on the chunk offsets it holds, so
    // build it once to learn its size, then again with the offsets.
    let header_len = |moov: &[u8]| (ftyp.len() + moov.len() + 16) as u64;
    let draft = moov(&video_track, audio_track.as_ref(), start, [0, 0]);
    let video_at = header_len(&draft);
    let audio_at = video_at + video_track.bytes;
    let moov = moov(
        &video_track,
        audio_track.as_ref(),
        start,
        [video_at, audio_at],
    );
    debug_assert_eq!(moov.len(), draft.len());
    let payload = video_track.bytes + audio_track.as_ref().map_or(0, |a| a.bytes);

    let io = |source| MediaError::Io {
        context: "writing MP4".into(),
        source,
    };
    out.write_all(&ftyp).map_err(io)?;
    out.write_all(&moov).map_err(io)?;
    // mdat with a 64-bit size: the header length is the same whatever the size.
    let mut mdat = Vec::with_capacity(16);
    mdat.extend_from_slice(&1u32.to_be_bytes());
    mdat.extend_from_slice(b"mdat");
    mdat.extend_from_slice(&(16 + payload).to_be_bytes());
    out.write_all(&mdat).map_err(io)?;
    for unit in video {
        write_video_sample(unit, out).map_err(io)?;
    }
    for unit in &audio {
        out.write_all(raw_aac(&unit.data)).map_err(io)?;
    }
    Ok(header_len(&moov) + payload)
}

struct VideoTrack {
    config: VideoConfig,
    /// Per sample: (size, duration, composition offset, keyframe).
    samples: Vec<(u32, u32, u32, bool)>,
    bytes: u64,
    start_pts: Duration,
    /// First PTS minus first DTS, in the track's timescale.
    lead: u32,
    duration: u64,
    /// What the edit list presents: from this media time, this long
    /// (both 90 kHz); all of it unless a span is cut.
    shown: (u64, u64),
}

/// An AAC frame at the lowest rate (1024 samples at 8 kHz): how long a
/// frame of unknown duration may last.
const LONGEST_AAC_FRAME: Duration = Duration::from_millis(128);

impl VideoTrack {
    fn new(video: &[&AccessUnit]) -> MediaResult<VideoTrack> {
        let first = video
            .first()
            .ok_or_else(|| MediaError::Unsupported("clip without video".into()))?;
        let config = VideoConfig::from_keyframe(first)?;
        let dts = |u: &AccessUnit| ticks(u.decode_time().unwrap_or_default(), VIDEO_TIMESCALE);
        let pts = |u: &AccessUnit| u.pts.map(|p| ticks(p, VIDEO_TIMESCALE)).unwrap_or(dts(u));
        let mut samples = Vec::with_capacity(video.len());
        let mut bytes = 0u64;
        for (i, unit) in video.iter().enumerate() {
            let size = video_sample_size(unit);
            let duration = match video.get(i + 1) {
                Some(next) => dts(next).saturating_sub(dts(unit)),
                None => unit
                    .duration
                    .map(|d| ticks(d, VIDEO_TIMESCALE))
                    .or_else(|| samples.last().map(|s: &(u32, u32, u32, bool)| s.1 as u64))
                    .unwrap_or(3000),
            };
            let offset = pts(unit).saturating_sub(dts(unit));
            samples.push((size, duration as u32, offset as u32, unit.keyframe));
            bytes += u64::from(size);
        }
        let duration = samples.iter().map(|s| s.1 as u64).sum();
        let lead = (pts(first).saturating_sub(dts(first))) as u32;
        Ok(VideoTrack {
            config,
            samples,
            bytes,
            start_pts: first.pts.unwrap_or_default(),
            lead,
            duration,
            shown: (u64::from(lead), duration),
        })
    }
}

struct AudioTrack {
    config: AudioConfig,
    sizes: Vec<u32>,
    bytes: u64,
    start_pts: Duration,
    /// With a span: the most the track presents from the clip's start
    /// (movie ticks), so that it ends with the video.
    limit: Option<u64>,
}

impl AudioTrack {
    fn new(audio: &[&AccessUnit]) -> MediaResult<Option<AudioTrack>> {
        let Some(first) = audio.first() else {
            return Ok(None);
        };
        let config = AudioConfig::from_unit(first)?;
        let sizes: Vec<u32> = audio
            .iter()
            .map(|u| raw_aac(&u.data).len() as u32)
            .collect();
        Ok(Some(AudioTrack {
            config,
            bytes: sizes.iter().map(|&s| s as u64).sum(),
            sizes,
            start_pts: first.pts.unwrap_or_default(),
            limit: None,
        }))
    }

    fn duration(&self) -> u64 {
        self.sizes.len() as u64 * u64::from(AAC_FRAME_SAMPLES)
    }
}

fn to_movie(ticks: u64, scale: u32) -> u64 {
    ticks * u64::from(MOVIE_TIMESCALE) / u64::from(scale)
}

fn moov(
    video: &VideoTrack,
    audio: Option<&AudioTrack>,
    start: Duration,
    offsets: [u64; 2],
) -> Vec<u8> {
    let video_duration = to_movie(video.shown.1, VIDEO_TIMESCALE);
    // Audio that starts after the video waits in an empty edit, never
    // longer than the clip.
    let audio_delay = audio.map_or(0, |a| {
        ticks(a.start_pts.saturating_sub(start), MOVIE_TIMESCALE).min(video_duration)
    });
    let audio_duration = audio.map_or(0, |a| audio_delay + to_movie(a.duration(), a.config.rate));
    let duration = match audio.and_then(|a| a.limit) {
        Some(_) => video_duration,
        None => video_duration.max(audio_duration),
    };
    let mut b = Boxes::default();
    b.bx(b"moov", |b| {
        mvhd(
            b,
            MOVIE_TIMESCALE,
            duration,
            if audio.is_some() { 3 } else { 2 },
        );
        video_trak(b, video, offsets[0]);
        if let Some(audio) = audio {
            audio_trak(b, audio, start, audio_delay, offsets[1]);
        }
    });
    b.0
}

/// An edit list: `empty` movie ticks of nothing, then the media from
/// `media_time` (its own timescale) for `duration` movie ticks.
fn edts(b: &mut Boxes, empty: u64, media_time: u64, duration: u64) {
    b.bx(b"edts", |b| {
        b.full(b"elst", 1, 0, |b| {
            b.u32(if empty > 0 { 2 } else { 1 });
            if empty > 0 {
                b.u64(empty);
                b.u64(u64::MAX); // -1: empty edit
                b.u32(0x0001_0000);
            }
            b.u64(duration);
            b.u64(media_time);
            b.u32(0x0001_0000);
        });
    });
}

/// stsc, stsz and co64 of one chunk holding every sample.
fn one_chunk(b: &mut Boxes, sizes: impl ExactSizeIterator<Item = u32>, offset: u64) {
    let count = sizes.len() as u32;
    b.full(b"stsc", 0, 0, |b| {
        b.u32(1);
        b.u32(1);
        b.u32(count);
        b.u32(1);
    });
    b.full(b"stsz", 0, 0, |b| {
        b.u32(0);
        b.u32(count);
        for size in sizes {
            b.u32(size);
        }
    });
    b.full(b"co64", 0, 0, |b| {
        b.u32(1);
        b.u64(offset);
    });
}

/// Run-length (count, value) pairs.
fn runs(values: impl Iterator<Item = u32>) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = vec![];
    for v in values {
        match out.last_mut() {
            Some((n, last)) if *last == v => *n += 1,
            _ => out.push((1, v)),
        }
    }
    out
}

fn video_trak(b: &mut Boxes, t: &VideoTrack, offset: u64) {
    let movie_duration = to_movie(t.shown.1, VIDEO_TIMESCALE);
    b.bx(b"trak", |b| {
        tkhd(
            b,
            1,
            movie_duration,
            false,
            (t.config.width, t.config.height),
        );
        edts(b, 0, t.shown.0, movie_duration);
        b.bx(b"mdia", |b| {
            mdhd_hdlr(b, VIDEO_TIMESCALE, t.duration, b"vide", "liveproc video");
            b.bx(b"minf", |b| {
                b.full(b"vmhd", 0, 1, |b| b.zeros(8));
                dinf(b);
                b.bx(b"stbl", |b| {
                    b.full(b"stsd", 0, 0, |b| {
                        b.u32(1);
                        t.config.write_entry(b);
                    });
                    let durations = runs(t.samples.iter().map(|s| s.1));
                    b.full(b"stts", 0, 0, |b| {
                        b.u32(durations.len() as u32);
                        for (n, d) in &durations {
                            b.u32(*n);
                            b.u32(*d);
                        }
                    });
                    if t.samples.iter().any(|s| s.2 != 0) {
                        let offsets = runs(t.samples.iter().map(|s| s.2));
                        b.full(b"ctts", 0, 0, |b| {
                            b.u32(offsets.len() as u32);
                            for (n, o) in &offsets {
                                b.u32(*n);
                                b.u32(*o);
                            }
                        });
                    }
                    let keys: Vec<u32> = (1..=t.samples.len() as u32)
                        .filter(|&i| t.samples[i as usize - 1].3)
                        .collect();
                    b.full(b"stss", 0, 0, |b| {
                        b.u32(keys.len() as u32);
                        for k in &keys {
                            b.u32(*k);
                        }
                    });
                    one_chunk(b, t.samples.iter().map(|s| s.0), offset);
                });
            });
        });
    });
}

fn audio_trak(b: &mut Boxes, t: &AudioTrack, start: Duration, delay: u64, offset: u64) {
    let rate = t.config.rate;
    let media_duration = t.duration();
    let movie_duration = to_movie(media_duration, rate);
    // Audio that starts before the video is skipped by the edit list, never
    // past the end of the track's media.
    let skip = ticks(start.saturating_sub(t.start_pts), rate).min(media_duration);
    let shown = movie_duration.saturating_sub(to_movie(skip, rate));
    // A span's audio ends with its video.
    let (shown, track_duration) = match t.limit {
        Some(limit) => {
            let shown = shown.min(limit.saturating_sub(delay));
            (shown, delay + shown)
        }
        None => (shown, delay + movie_duration),
    };
    b.bx(b"trak", |b| {
        tkhd(b, 2, track_duration, true, (0, 0));
        edts(b, delay, skip, shown);
        b.bx(b"mdia", |b| {
            mdhd_hdlr(b, rate, media_duration, b"soun", "liveproc audio");
            b.bx(b"minf", |b| {
                b.full(b"smhd", 0, 0, |b| b.zeros(4));
                dinf(b);
                b.bx(b"stbl", |b| {
                    b.full(b"stsd", 0, 0, |b| {
                        b.u32(1);
                        t.config.write_entry(b);
                    });
                    b.full(b"stts", 0, 0, |b| {
                        b.u32(1);
                        b.u32(t.sizes.len() as u32);
                        b.u32(AAC_FRAME_SAMPLES);
                    });
                    one_chunk(b, t.sizes.iter().copied(), offset);
                });
            });
        });
    });
}
