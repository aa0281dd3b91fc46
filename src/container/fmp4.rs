//! Fragmented MP4 written as the media arrives: the recording file. Each
//! fragment goes to the file in one write as soon as it is complete, so a
//! crash loses at most the fragment being gathered ([`FRAGMENT`]); what is
//! on disk always plays. Closing writes the movie's duration into `mehd`;
//! [`repair`] does the same for a file a crash left behind, after cutting
//! off a fragment that was only partly written.
//!
//! ```text
//! ftyp                        iso6 (isom iso6 avc1 mp41)
//! moov
//!   mvhd                      1 ms movie time scale, duration 0
//!   trak (1: video)           tkhd, mdia(mdhd 90 kHz, hdlr vide,
//!                             minf(vmhd, dinf, stbl: stsd(avc1/avcC or
//!                             hvc1/hvcC) and empty stts, stsc, stsz,
//!                             stco))
//!   trak (2: audio, if any)   the same with smhd, stsd(mp4a/esds), the
//!                             sample rate as time scale
//!   mvex
//!     mehd                    version 1: the duration, written at close
//!     trex per track
//! then per fragment:
//! moof
//!   mfhd                      sequence number from 1
//!   traf (video)              tfhd (default-base-is-moof), tfdt (v1),
//!                             trun: data offset; duration, size, flags and
//!                             composition offset of each sample
//!   traf (audio)              tfhd (+ default duration 1024, flags),
//!                             tfdt (v1), trun: data offset, sizes
//! mdat                        the fragment's video samples, then its audio
//! ```
//!
//! Time zero of the file is the first video unit's decode time; each
//! track's `tfdt` is its first unit's time from there, in its own time
//! scale, so audio and video keep the offset they had in the stream.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use super::boxes::{child, children, dinf, ftyp, mdhd_hdlr, mvhd, read_u32, read_u64, tkhd, Boxes};
use super::sample_entry::{
    raw_aac, write_video_sample, AudioConfig, VideoConfig, AAC_FRAME_SAMPLES,
};
use crate::media::{ticks, AccessUnit, Codec};
use crate::media::{MediaError, MediaResult};

/// Media gathered before a fragment is written: the most a crash loses.
pub const FRAGMENT: Duration = Duration::from_secs(1);

const VIDEO_TIMESCALE: u32 = 90_000;
const MOVIE_TIMESCALE: u32 = 1000;
const VIDEO_TRACK: u32 = 1;
const AUDIO_TRACK: u32 = 2;
/// Sample flags: a sync sample (depends on no other).
const SYNC: u32 = 0x0200_0000;
/// Sample flags: depends on others, not a sync sample.
const NON_SYNC: u32 = 0x0101_0000;

/// Whether [`Fmp4Writer`] takes these tracks (H.264 or H.265 video, AAC
/// audio).
pub fn supported(video: &AccessUnit, audio: Option<&AccessUnit>) -> bool {
    video.codec.is_video() && audio.is_none_or(|a| a.codec == Codec::Aac)
}

/// A fragmented MP4 file being written.
pub struct Fmp4Writer<W: Write + Seek> {
    out: W,
    has_audio: bool,
    audio_rate: u32,
    /// Time zero of the file: the first video unit's decode time.
    base: Duration,
    start_pts: Duration,
    end_pts: Duration,
    video: Vec<AccessUnit>,
    audio: Vec<AccessUnit>,
    sequence: u32,
    /// Where the duration field of `mehd` is in the file, if it has one.
    mehd_at: Option<u64>,
    /// Where the next fragment goes.
    position: u64,
    /// Duration of the last video sample written, 90 kHz ticks (for the
    /// very last sample, whose successor never comes).
    last_video_ticks: u64,
    /// Video gathered before a fragment is written; `None`: one fragment
    /// at the end.
    fragment: Option<Duration>,
    /// Where a fragment is put together, kept from one fragment to the
    /// next: a fresh half-megabyte buffer per fragment costs page faults.
    scratch: Vec<u8>,
}

/// How a file's fragments are cut and timed.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// Time zero of the file; `None`: the first unit's decode time.
    pub time_base: Option<Duration>,
    /// Video per fragment; `None`: all of it in one fragment.
    pub fragment: Option<Duration>,
    /// The first fragment's sequence number.
    pub first_sequence: u32,
    /// Whether the file says its duration (`mehd`, written at the end). A
    /// live stream's segments leave it out.
    pub duration: bool,
}

impl Layout {
    /// A recording: time from zero, a fragment per [`FRAGMENT`].
    pub const RECORDING: Layout = Layout {
        time_base: None,
        fragment: Some(FRAGMENT),
        first_sequence: 1,
        duration: true,
    };

    /// One segment of a live stream: the stream's own timeline, one
    /// fragment numbered `sequence`, no duration.
    pub fn segment(sequence: u32) -> Layout {
        Layout {
            time_base: Some(Duration::ZERO),
            fragment: None,
            first_sequence: sequence,
            duration: false,
        }
    }
}

impl<W: Write + Seek> Fmp4Writer<W> {
    /// Starts a file whose first unit will be `keyframe` (with its
    /// parameter sets; pushed like every other unit); `audio` is a unit of the
    /// audio track to come, if any.
    pub fn create(out: W, keyframe: &AccessUnit, audio: Option<&AccessUnit>) -> MediaResult<Self> {
        Self::with_layout(out, keyframe, audio, Layout::RECORDING)
    }

    /// [`Self::create`] with the fragments cut and timed as `layout` says.
    pub fn with_layout(
        mut out: W,
        keyframe: &AccessUnit,
        audio: Option<&AccessUnit>,
        layout: Layout,
    ) -> MediaResult<Self> {
        let video_config = VideoConfig::from_keyframe(keyframe)?;
        let audio_config = audio.map(AudioConfig::from_unit).transpose()?;
        let (init, mehd_at) = init_segment(&video_config, audio_config.as_ref(), layout.duration);
        out.write_all(&init)
            .map_err(MediaError::io("writing the init segment"))?;
        let start_pts = keyframe.pts.unwrap_or_default();
        Ok(Self {
            out,
            has_audio: audio_config.is_some(),
            audio_rate: audio_config.map_or(48_000, |a| a.rate),
            base: layout
                .time_base
                .unwrap_or_else(|| keyframe.decode_time().unwrap_or_default()),
            start_pts,
            end_pts: start_pts,
            video: Vec::new(),
            audio: Vec::new(),
            sequence: layout.first_sequence.saturating_sub(1),
            mehd_at: mehd_at.map(|at| at as u64),
            position: init.len() as u64,
            last_video_ticks: 3000,
            fragment: layout.fragment,
            scratch: Vec::new(),
        })
    }

    /// PTS of the first frame.
    pub fn start_pts(&self) -> Duration {
        self.start_pts
    }

    /// PTS just past the last video frame taken.
    pub fn end_pts(&self) -> Duration {
        self.end_pts
    }

    /// Takes one unit; writes a fragment when a video unit completes
    /// [`FRAGMENT`] of video. Audio from before the first frame, or for a
    /// file without an audio track, is left out.
    pub fn push(&mut self, unit: &AccessUnit) -> std::io::Result<()> {
        let Some(time) = unit.decode_time() else {
            return Ok(());
        };
        if time < self.base {
            return Ok(());
        }
        if unit.codec.is_video() {
            let first = self.video.first().and_then(AccessUnit::decode_time);
            let full = |first: Duration| {
                self.fragment
                    .is_some_and(|fragment| time.saturating_sub(first) >= fragment)
            };
            if first.is_some_and(full) {
                self.write_fragment(Some(time))?;
            }
            let pts = unit.pts.unwrap_or(time);
            self.end_pts = self.end_pts.max(pts + unit.duration.unwrap_or_default());
            self.video.push(unit.clone());
        } else if self.has_audio && unit.pts.unwrap_or(time) >= self.start_pts {
            self.audio.push(unit.clone());
        }
        Ok(())
    }

    /// Writes what is gathered and the duration; returns the output.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.write_fragment(None)?;
        if let Some(mehd_at) = self.mehd_at {
            let duration = ticks(self.end_pts.saturating_sub(self.start_pts), MOVIE_TIMESCALE);
            self.out.seek(SeekFrom::Start(mehd_at))?;
            self.out.write_all(&duration.to_be_bytes())?;
            self.out.seek(SeekFrom::Start(self.position))?;
        }
        self.out.flush()?;
        Ok(self.out)
    }

    /// Writes the gathered units as one fragment, in one write.
    /// `next_video` is the decode time of the video unit that follows.
    fn write_fragment(&mut self, next_video: Option<Duration>) -> std::io::Result<()> {
        if self.video.is_empty() && self.audio.is_empty() {
            return Ok(());
        }
        self.sequence += 1;
        let video = std::mem::take(&mut self.video);
        let audio = std::mem::take(&mut self.audio);
        let at = |t: Duration, scale: u32| ticks(t.saturating_sub(self.base), scale);
        let dts: Vec<u64> = video
            .iter()
            .map(|u| at(u.decode_time().unwrap_or_default(), VIDEO_TIMESCALE))
            .collect();
        let mut samples = Vec::with_capacity(video.len());
        for (i, unit) in video.iter().enumerate() {
            let next = dts
                .get(i + 1)
                .copied()
                .or_else(|| next_video.map(|t| at(t, VIDEO_TIMESCALE)));
            let duration = match next {
                Some(next) => next.saturating_sub(dts[i]),
                None => unit
                    .duration
                    .map_or(self.last_video_ticks, |d| ticks(d, VIDEO_TIMESCALE)),
            };
            self.last_video_ticks = duration.max(1);
            let pts = unit.pts.map_or(dts[i], |p| at(p, VIDEO_TIMESCALE));
            samples.push(VideoSample {
                duration: duration as u32,
                // Known once written below: one walk of the NAL units.
                size: 0,
                flags: if unit.keyframe { SYNC } else { NON_SYNC },
                composition_offset: pts.saturating_sub(dts[i]) as u32,
            });
        }
        let audio_sizes: Vec<u32> = audio
            .iter()
            .map(|u| raw_aac(&u.data).len() as u32)
            .collect();
        let video_start = dts.first().copied().unwrap_or(0);
        let audio_start = audio
            .first()
            .and_then(|u| u.pts.or(u.dts))
            .map_or(0, |t| at(t, self.audio_rate));
        // The moof's size depends on the sample counts alone: the media
        // is written after room for it, then the moof with the sizes.
        let moof_len = moof(self.sequence, (0, &samples), (0, &audio_sizes)).len();
        let mut fragment = std::mem::take(&mut self.scratch);
        fragment.clear();
        let media_len: usize = video.iter().map(|u| u.data.len()).sum::<usize>()
            + audio_sizes.iter().map(|&s| s as usize).sum::<usize>();
        fragment.reserve(moof_len + 8 + media_len);
        fragment.resize(moof_len + 8, 0);
        for (unit, sample) in video.iter().zip(&mut samples) {
            let before = fragment.len();
            write_video_sample(unit, &mut fragment)?;
            sample.size = (fragment.len() - before) as u32;
        }
        for unit in &audio {
            fragment.extend_from_slice(raw_aac(&unit.data));
        }
        let moof = moof(
            self.sequence,
            (video_start, &samples),
            (audio_start, &audio_sizes),
        );
        debug_assert_eq!(moof.len(), moof_len);
        let mdat_len = (fragment.len() - moof_len) as u32;
        fragment[..moof_len].copy_from_slice(&moof);
        fragment[moof_len..moof_len + 4].copy_from_slice(&mdat_len.to_be_bytes());
        fragment[moof_len + 4..moof_len + 8].copy_from_slice(b"mdat");
        self.out.write_all(&fragment)?;
        self.position += fragment.len() as u64;
        self.scratch = fragment;
        Ok(())
    }
}

struct VideoSample {
    duration: u32,
    size: u32,
    flags: u32,
    composition_offset: u32,
}

/// `ftyp` and `moov`; and where the duration field of `mehd` is, with one.
fn init_segment(
    video: &VideoConfig,
    audio: Option<&AudioConfig>,
    with_mehd: bool,
) -> (Vec<u8>, Option<usize>) {
    let mut b = Boxes::default();
    ftyp(&mut b, b"iso6", &[b"isom", b"iso6", b"avc1", b"mp41"]);
    let mut mehd_at = None;
    b.bx(b"moov", |b| {
        mvhd(b, MOVIE_TIMESCALE, 0, if audio.is_some() { 3 } else { 2 });
        b.bx(b"trak", |b| {
            tkhd(b, VIDEO_TRACK, 0, false, (video.width, video.height));
            b.bx(b"mdia", |b| {
                mdhd_hdlr(b, VIDEO_TIMESCALE, 0, b"vide", "liveproc video");
                b.bx(b"minf", |b| {
                    b.full(b"vmhd", 0, 1, |b| b.zeros(8));
                    dinf(b);
                    empty_stbl(b, |b| video.write_entry(b));
                });
            });
        });
        if let Some(audio) = audio {
            b.bx(b"trak", |b| {
                tkhd(b, AUDIO_TRACK, 0, true, (0, 0));
                b.bx(b"mdia", |b| {
                    mdhd_hdlr(b, audio.rate, 0, b"soun", "liveproc audio");
                    b.bx(b"minf", |b| {
                        b.full(b"smhd", 0, 0, |b| b.zeros(4));
                        dinf(b);
                        empty_stbl(b, |b| audio.write_entry(b));
                    });
                });
            });
        }
        b.bx(b"mvex", |b| {
            if with_mehd {
                b.full(b"mehd", 1, 0, |b| {
                    mehd_at = Some(b.len());
                    b.u64(0);
                });
            }
            let tracks: &[(u32, u32)] = if audio.is_some() {
                &[(VIDEO_TRACK, 0), (AUDIO_TRACK, AAC_FRAME_SAMPLES)]
            } else {
                &[(VIDEO_TRACK, 0)]
            };
            for &(id, duration) in tracks {
                b.full(b"trex", 0, 0, |b| {
                    b.u32(id);
                    b.u32(1);
                    b.u32(duration);
                    b.u32(0);
                    b.u32(0);
                });
            }
        });
    });
    (b.0, mehd_at)
}

/// A sample table with only the sample entry: the samples are in the
/// fragments.
fn empty_stbl(b: &mut Boxes, entry: impl FnOnce(&mut Boxes)) {
    b.bx(b"stbl", |b| {
        b.full(b"stsd", 0, 0, |b| {
            b.u32(1);
            entry(b);
        });
        for kind in [b"stts", b"stsc", b"stco"] {
            b.full(kind, 0, 0, |b| b.u32(0));
        }
        b.full(b"stsz", 0, 0, |b| {
            b.u32(0);
            b.u32(0);
        });
    });
}

/// tfhd flag: the data offsets count from the start of the moof.
const DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;
const TFHD_DEFAULT_DURATION: u32 = 0x08;
const TFHD_DEFAULT_FLAGS: u32 = 0x20;
const TRUN_DATA_OFFSET: u32 = 0x001;
const TRUN_DURATION: u32 = 0x100;
const TRUN_SIZE: u32 = 0x200;
const TRUN_FLAGS: u32 = 0x400;
const TRUN_COMPOSITION: u32 = 0x800;

/// The `moof` of one fragment: video samples from `video.0` (90 kHz from
/// time zero of the file), audio frames from `audio.0` (its sample rate).
fn moof(sequence: u32, video: (u64, &[VideoSample]), audio: (u64, &[u32])) -> Vec<u8> {
    let mut b = Boxes::default();
    let mut offsets = vec![];
    b.bx(b"moof", |b| {
        b.full(b"mfhd", 0, 0, |b| b.u32(sequence));
        if !video.1.is_empty() {
            b.bx(b"traf", |b| {
                b.full(b"tfhd", 0, DEFAULT_BASE_IS_MOOF | TFHD_DEFAULT_FLAGS, |b| {
                    b.u32(VIDEO_TRACK);
                    b.u32(NON_SYNC);
                });
                b.full(b"tfdt", 1, 0, |b| b.u64(video.0));
                let flags =
                    TRUN_DATA_OFFSET | TRUN_DURATION | TRUN_SIZE | TRUN_FLAGS | TRUN_COMPOSITION;
                b.full(b"trun", 0, flags, |b| {
                    b.u32(video.1.len() as u32);
                    offsets.push(b.len());
                    b.u32(0);
                    for s in video.1 {
                        b.u32(s.duration);
                        b.u32(s.size);
                        b.u32(s.flags);
                        b.u32(s.composition_offset);
                    }
                });
            });
        }
        if !audio.1.is_empty() {
            b.bx(b"traf", |b| {
                let flags = DEFAULT_BASE_IS_MOOF | TFHD_DEFAULT_DURATION | TFHD_DEFAULT_FLAGS;
                b.full(b"tfhd", 0, flags, |b| {
                    b.u32(AUDIO_TRACK);
                    b.u32(AAC_FRAME_SAMPLES);
                    b.u32(SYNC);
                });
                b.full(b"tfdt", 1, 0, |b| b.u64(audio.0));
                b.full(b"trun", 0, TRUN_DATA_OFFSET | TRUN_SIZE, |b| {
                    b.u32(audio.1.len() as u32);
                    offsets.push(b.len());
                    b.u32(0);
                    for &size in audio.1 {
                        b.u32(size);
                    }
                });
            });
        }
    });
    // The media follows the moof and the mdat header: video, then audio.
    let mut data_at = b.len() as u32 + 8;
    let video_bytes: u32 = video.1.iter().map(|s| s.size).sum();
    let mut track_bytes = vec![];
    if !video.1.is_empty() {
        track_bytes.push(video_bytes);
    }
    if !audio.1.is_empty() {
        track_bytes.push(audio.1.iter().sum());
    }
    for (at, bytes) in offsets.into_iter().zip(track_bytes) {
        b.patch_u32(at, data_at);
        data_at += bytes;
    }
    b.0
}

/// What [`repair`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repaired {
    /// The video's duration in the file.
    pub duration: Duration,
    /// Bytes cut off the end (a fragment only partly written).
    pub truncated: u64,
}

/// Finalizes a fragmented MP4 that a crash left unfinished: cuts off a
/// trailing fragment that was only partly written, and writes the
/// duration (from the last fragment's video `tfdt` and sample durations)
/// into `mehd`. Fails, touching nothing, on a file of another layout.
pub fn repair(path: &Path) -> MediaResult<Repaired> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(MediaError::io("opening"))?;
    let len = file.metadata()?.len();
    let mut moov = None;
    let mut last_moof: Option<(u64, u64)> = None;
    let mut complete_end = 0u64;
    let mut pending_moof: Option<(u64, u64)> = None;
    let mut at = 0u64;
    while at + 8 <= len {
        let (kind, size, header) = read_box_header(&mut file, at, len)?;
        if size < header || at + size > len {
            break;
        }
        match &kind {
            b"moof" => pending_moof = Some((at, size)),
            b"mdat" => {
                // Media counts only with the moof that describes it.
                if let Some(moof) = pending_moof.take() {
                    last_moof = Some(moof);
                    complete_end = at + size;
                }
            }
            _ => {
                if &kind == b"moov" {
                    moov = Some((at, size));
                }
                if pending_moof.is_none() {
                    complete_end = at + size;
                }
            }
        }
        at += size;
    }
    let (moov_at, moov_size) = moov.ok_or_else(|| MediaError::Malformed("no moov".into()))?;
    let moov = read_at(&mut file, moov_at, moov_size)?;
    let (mehd_at, video_track, video_scale) = describe_moov(&moov)?;
    let end_ticks = match last_moof {
        Some((moof_at, moof_size)) => {
            let moof = read_at(&mut file, moof_at, moof_size)?;
            track_end(&moof, video_track)
                .ok_or_else(|| MediaError::Malformed("no video in the last fragment".into()))?
        }
        None => 0,
    };
    let duration = Duration::from_nanos(
        (u128::from(end_ticks) * 1_000_000_000 / u128::from(video_scale)) as u64,
    );
    let truncated = len - complete_end;
    if truncated > 0 {
        file.set_len(complete_end)?;
    }
    file.seek(SeekFrom::Start(moov_at + mehd_at as u64))
        .and_then(|_| file.write_all(&ticks(duration, MOVIE_TIMESCALE).to_be_bytes()))
        .and_then(|_| file.sync_all())
        .map_err(MediaError::io("writing the duration"))?;
    Ok(Repaired {
        duration,
        truncated,
    })
}

/// The length of a fragmented MP4 file's init segment (`ftyp` and
/// `moov`, up to the first `moof`): what an HLS `EXT-X-MAP` names.
pub fn init_segment_length(path: &Path) -> MediaResult<u64> {
    let mut file = File::open(path).map_err(MediaError::io("opening"))?;
    let len = file.metadata()?.len();
    let mut at = 0u64;
    while at + 8 <= len {
        let (kind, size, header) = read_box_header(&mut file, at, len)?;
        if size < header {
            break;
        }
        at += size;
        if &kind == b"moov" && at <= len {
            return Ok(at);
        }
    }
    Err(MediaError::Malformed("no moov".into()))
}

/// The duration of a recording kept as separate pieces: its init segment
/// and its last whole fragment (`moof`, with or without its `mdat`).
pub fn duration_of(init: &[u8], last_fragment: &[u8]) -> MediaResult<Duration> {
    let moov = children(init, 0, init.len())
        .into_iter()
        .find(|b| &b.kind == b"moov")
        .ok_or_else(|| MediaError::Malformed("no moov".into()))?;
    let (_, video_track, video_scale) = describe_moov(&init[moov.start..moov.end])?;
    let moof = children(last_fragment, 0, last_fragment.len())
        .into_iter()
        .find(|b| &b.kind == b"moof")
        .ok_or_else(|| MediaError::Malformed("no moof".into()))?;
    let end_ticks = track_end(&last_fragment[moof.start..moof.end], video_track)
        .ok_or_else(|| MediaError::Malformed("no video in the last fragment".into()))?;
    Ok(Duration::from_nanos(
        (u128::from(end_ticks) * 1_000_000_000 / u128::from(video_scale)) as u64,
    ))
}

/// `init` with its movie duration (`mehd`) set to `duration`.
pub fn init_with_duration(init: &[u8], duration: Duration) -> MediaResult<Vec<u8>> {
    let moov = children(init, 0, init.len())
        .into_iter()
        .find(|b| &b.kind == b"moov")
        .ok_or_else(|| MediaError::Malformed("no moov".into()))?;
    let (mehd_at, _, _) = describe_moov(&init[moov.start..moov.end])?;
    let at = moov.start + mehd_at;
    let mut out = init.to_vec();
    out.get_mut(at..at + 8)
        .ok_or_else(|| MediaError::Malformed("mehd out of the init segment".into()))?
        .copy_from_slice(&ticks(duration, MOVIE_TIMESCALE).to_be_bytes());
    Ok(out)
}

/// Where the init segment (`ftyp` + `moov`) of a file's first bytes
/// ends, once all of it is there.
pub fn init_segment_end(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let (kind, size) = box_header(&bytes[at..])?;
        at = at.checked_add(size)?;
        if at > bytes.len() {
            return None;
        }
        if &kind == b"moov" {
            return Some(at);
        }
    }
    None
}

/// The whole fragments (`moof` + `mdat`, with any boxes between them) at
/// the start of `bytes`, which begin at a fragment's start (or the end of
/// the init segment) of a file being written: their byte ranges. A
/// fragment still being written, and anything after it, is left out.
pub fn whole_fragments(bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut fragments = vec![];
    let (mut start, mut at) = (0, 0);
    while at + 8 <= bytes.len() {
        let Some((kind, size)) = box_header(&bytes[at..]) else {
            break;
        };
        match at.checked_add(size) {
            Some(end) if end <= bytes.len() => at = end,
            _ => break,
        }
        if &kind == b"mdat" {
            fragments.push(start..at);
            start = at;
        }
    }
    fragments
}

/// A box's type and whole size, from its header at the start of `bytes`
/// (`None` when the header is cut or the size is impossible).
fn box_header(bytes: &[u8]) -> Option<([u8; 4], usize)> {
    let size32 = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?);
    let kind: [u8; 4] = bytes.get(4..8)?.try_into().ok()?;
    let (size, header) = match size32 {
        1 => (u64::from_be_bytes(bytes.get(8..16)?.try_into().ok()?), 16),
        0 => return None,
        n => (u64::from(n), 8),
    };
    let size = usize::try_from(size).ok()?;
    (size >= header).then_some((kind, size))
}

fn read_box_header(file: &mut File, at: u64, len: u64) -> MediaResult<([u8; 4], u64, u64)> {
    let mut header = [0u8; 16];
    let n = (len - at).min(16) as usize;
    file.seek(SeekFrom::Start(at))
        .and_then(|_| file.read_exact(&mut header[..n]))?;
    let kind: [u8; 4] = header[4..8].try_into().expect("4 bytes");
    let size32 = u32::from_be_bytes(header[..4].try_into().expect("4 bytes"));
    Ok(match size32 {
        1 if n == 16 => (
            kind,
            u64::from_be_bytes(header[8..16].try_into().expect("8 bytes")),
            16,
        ),
        0 => (kind, len - at, 8),
        s => (kind, u64::from(s), 8),
    })
}

fn read_at(file: &mut File, at: u64, size: u64) -> MediaResult<Vec<u8>> {
    if size > 64 << 20 {
        return Err(MediaError::Malformed("box too large".into()));
    }
    let mut data = vec![0; size as usize];
    file.seek(SeekFrom::Start(at))
        .and_then(|_| file.read_exact(&mut data))?;
    Ok(data)
}

/// From a `moov`: where the duration field of `mehd` is (from the moov's
/// start), and the video track's id and time scale.
fn describe_moov(moov: &[u8]) -> MediaResult<(usize, u32, u32)> {
    let root = children(moov, 0, moov.len())
        .into_iter()
        .next()
        .ok_or_else(|| MediaError::Malformed("empty moov".into()))?;
    let mehd = child(moov, &root, b"mvex", 0)
        .and_then(|mvex| child(moov, &mvex, b"mehd", 0))
        .ok_or_else(|| MediaError::Malformed("no mvex/mehd".into()))?;
    if moov[mehd.body] != 1 || mehd.end < mehd.body + 12 {
        return Err(MediaError::Malformed("mehd is not version 1".into()));
    }
    for trak in children(moov, root.body, root.end) {
        if &trak.kind != b"trak" {
            continue;
        }
        let Some(mdia) = child(moov, &trak, b"mdia", 0) else {
            continue;
        };
        let handler =
            child(moov, &mdia, b"hdlr", 0).and_then(|h| moov.get(h.body + 8..h.body + 12));
        if handler != Some(b"vide") {
            continue;
        }
        let tkhd = child(moov, &trak, b"tkhd", 0)
            .ok_or_else(|| MediaError::Malformed("trak without tkhd".into()))?;
        let mdhd = child(moov, &mdia, b"mdhd", 0)
            .ok_or_else(|| MediaError::Malformed("mdia without mdhd".into()))?;
        let version_skip = |at: usize| if moov[at] == 1 { 4 + 16 } else { 4 + 8 };
        let id = read_u32(moov, tkhd.body + version_skip(tkhd.body))
            .ok_or_else(|| MediaError::Malformed("short tkhd".into()))?;
        let scale = read_u32(moov, mdhd.body + version_skip(mdhd.body))
            .ok_or_else(|| MediaError::Malformed("short mdhd".into()))?;
        if scale == 0 {
            return Err(MediaError::Malformed("zero time scale".into()));
        }
        return Ok((mehd.body + 4, id, scale));
    }
    Err(MediaError::Malformed("no video track".into()))
}

/// The end of `track` in a `moof`: its `tfdt` plus its samples' durations
/// (per sample, or the `tfhd` default), in the track's time scale.
fn track_end(moof: &[u8], track: u32) -> Option<u64> {
    let root = children(moof, 0, moof.len()).into_iter().next()?;
    for traf in children(moof, root.body, root.end) {
        if &traf.kind != b"traf" {
            continue;
        }
        let tfhd = child(moof, &traf, b"tfhd", 0)?;
        if read_u32(moof, tfhd.body + 4)? != track {
            continue;
        }
        let tfhd_flags = read_u32(moof, tfhd.body)? & 0xff_ffff;
        let mut field = tfhd.body + 8;
        if tfhd_flags & 0x01 != 0 {
            field += 8; // base data offset
        }
        if tfhd_flags & 0x02 != 0 {
            field += 4; // sample description index
        }
        let default_duration = (tfhd_flags & TFHD_DEFAULT_DURATION != 0)
            .then(|| read_u32(moof, field))
            .flatten();
        let tfdt = child(moof, &traf, b"tfdt", 0)?;
        let start = if moof[tfdt.body] == 1 {
            read_u64(moof, tfdt.body + 4)?
        } else {
            u64::from(read_u32(moof, tfdt.body + 4)?)
        };
        let trun = child(moof, &traf, b"trun", 0)?;
        let flags = read_u32(moof, trun.body)? & 0xff_ffff;
        let count = read_u32(moof, trun.body + 4)? as usize;
        let mut at = trun.body + 8;
        if flags & TRUN_DATA_OFFSET != 0 {
            at += 4;
        }
        if flags & 0x004 != 0 {
            at += 4; // first sample flags
        }
        let per_sample = [TRUN_DURATION, TRUN_SIZE, TRUN_FLAGS, TRUN_COMPOSITION]
            .iter()
            .filter(|&&f| flags & f != 0)
            .count()
            * 4;
        let mut total = 0u64;
        for i in 0..count {
            let duration = if flags & TRUN_DURATION != 0 {
                read_u32(moof, at + i * per_sample)?
            } else {
                default_duration?
            };
            total += u64::from(duration);
        }
        return Some(start + total);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::boxes::BoxRef;
    use super::*;

    #[test]
    fn moof_data_offsets_point_past_the_mdat_header() {
        let samples = [
            VideoSample {
                duration: 3000,
                size: 100,
                flags: SYNC,
                composition_offset: 0,
            },
            VideoSample {
                duration: 3000,
                size: 50,
                flags: NON_SYNC,
                composition_offset: 6000,
            },
        ];
        let moof = moof(7, (90_000, &samples), (48_000, &[10, 20]));
        let root = children(&moof, 0, moof.len())[0];
        assert_eq!(&root.kind, b"moof");
        assert_eq!(root.end, moof.len());
        let trafs: Vec<_> = children(&moof, root.body, root.end)
            .into_iter()
            .filter(|b| &b.kind == b"traf")
            .collect();
        assert_eq!(trafs.len(), 2);
        let offset = |traf: &BoxRef| {
            let trun = child(&moof, traf, b"trun", 0).unwrap();
            read_u32(&moof, trun.body + 8).unwrap()
        };
        assert_eq!(offset(&trafs[0]), moof.len() as u32 + 8);
        assert_eq!(offset(&trafs[1]), moof.len() as u32 + 8 + 150);
        assert_eq!(track_end(&moof, VIDEO_TRACK), Some(96_000));
        assert_eq!(track_end(&moof, AUDIO_TRACK), Some(48_000 + 2048));
    }

    #[test]
    fn only_whole_fragments_are_listed() {
        let bx = |kind: &[u8; 4], body: usize| {
            let mut b = ((8 + body) as u32).to_be_bytes().to_vec();
            b.extend_from_slice(kind);
            b.resize(8 + body, 7);
            b
        };
        let mut file = [bx(b"ftyp", 8), bx(b"moov", 100)].concat();
        let init = file.len() as u64;
        for body in [300, 500] {
            file.extend(bx(b"moof", 40));
            file.extend(bx(b"mdat", body));
        }
        let whole = file.len() as u64;
        // A third fragment cut short inside its mdat.
        file.extend(bx(b"moof", 40));
        file.extend(&bx(b"mdat", 900)[..100]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.mp4");
        std::fs::write(&path, &file).unwrap();
        assert_eq!(init_segment_length(&path).unwrap(), init);
        let init = init as usize;
        assert_eq!(init_segment_end(&file), Some(init));
        assert_eq!(init_segment_end(&file[..init - 1]), None);
        let fragments = whole_fragments(&file[init..]);
        assert_eq!(fragments, vec![0..48 + 308, 356..356 + 48 + 508]);
        assert_eq!(init + fragments[1].end, whole as usize);
        assert!(whole_fragments(&file[whole as usize..]).is_empty());
        // A size that cannot be (smaller than its header) ends the list.
        let mut bad = file[init..whole as usize].to_vec();
        bad[..4].copy_from_slice(&3u32.to_be_bytes());
        assert!(whole_fragments(&bad).is_empty());
    }
}
