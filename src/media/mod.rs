//! Encoded media as it leaves the demuxer and parsers, and the facts about
//! codecs every other layer shares. A leaf: it depends on no other module
//! of the crate.
//!
//! - [`AccessUnit`]: one video or audio frame whose bytes are shared, never
//!   copied, between the GStreamer buffer and every consumer; its [`Codec`].
//! - [`ticks`]: stream times in a container's timescale.
//! - [`nal`]: H.264/H.265 Annex-B NAL units; [`aac`]: ADTS framing.
//! - [`max_skew`]: how far audio may stray from video.
//! - [`MediaError`]: what goes wrong with media, typed.

pub mod aac;
mod error;
pub mod nal;
pub mod sps;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use gstreamer as gst;

pub use error::{is_disk_full, MediaError, MediaResult};

/// The codec of a track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    H264,
    H265,
    Aac,
}

impl Codec {
    /// The codec of parsed caps named `caps_name`, if liveproc handles it.
    pub fn from_caps(caps: &gst::CapsRef) -> Option<Codec> {
        let s = caps.structure(0)?;
        match s.name().as_str() {
            "video/x-h264" => Some(Codec::H264),
            "video/x-h265" => Some(Codec::H265),
            // MPEG-1 layer 1-3 audio is not AAC; versions 2 and 4 (or an
            // unfixed template) are.
            "audio/mpeg" => match s.get::<i32>("mpegversion") {
                Ok(1) => None,
                _ => Some(Codec::Aac),
            },
            _ => None,
        }
    }

    pub fn is_video(self) -> bool {
        matches!(self, Codec::H264 | Codec::H265)
    }

    /// The parser element and the caps it must produce: byte-stream,
    /// whole access units, and parameter sets in front of every keyframe so
    /// that any GOP decodes alone.
    pub fn parser(self) -> (&'static str, Option<&'static str>) {
        match self {
            Codec::H264 => (
                "h264parse",
                Some("video/x-h264,stream-format=byte-stream,alignment=au"),
            ),
            Codec::H265 => (
                "h265parse",
                Some("video/x-h265,stream-format=byte-stream,alignment=au"),
            ),
            Codec::Aac => ("aacparse", None),
        }
    }

    /// The codec's name in the API (`IngestStats`).
    pub fn name(self) -> &'static str {
        match self {
            Codec::H264 => "H264",
            Codec::H265 => "H265",
            Codec::Aac => "AAC",
        }
    }

    pub fn track_name(self) -> &'static str {
        if self.is_video() {
            "video"
        } else {
            "audio"
        }
    }
}

/// One encoded frame.
#[derive(Debug, Clone)]
pub struct AccessUnit {
    pub codec: Codec,
    pub pts: Option<Duration>,
    pub dts: Option<Duration>,
    pub duration: Option<Duration>,
    /// A video keyframe (audio frames are all "key").
    pub keyframe: bool,
    pub data: Bytes,
    /// Parsed caps of the track (codec data, picture size); shared.
    pub caps: Option<gst::Caps>,
    /// Wall-clock time the unit left the parser (ms since the epoch).
    pub received_ms: i64,
}

/// `d` in units of 1/`scale` s, rounded (90 kHz stream times that went
/// through nanoseconds come back exact).
pub fn ticks(d: Duration, scale: u32) -> u64 {
    ((d.as_nanos() * u128::from(scale) + 500_000_000) / 1_000_000_000) as u64
}

/// Wall-clock time in milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Audio may lead or trail video by this much at least (muxers interleave
/// within about a second; encoders start tracks a little apart).
pub const MIN_SKEW: Duration = Duration::from_secs(3);

/// The most audio may be away from video before it counts as being on
/// another timeline: one GOP, and never under [`MIN_SKEW`].
pub fn max_skew(gop: Duration) -> Duration {
    gop.max(MIN_SKEW)
}

/// The earliest decode time of `units`.
pub fn earliest_decode_time<'a>(
    units: impl IntoIterator<Item = &'a AccessUnit>,
) -> Option<Duration> {
    units.into_iter().filter_map(AccessUnit::decode_time).min()
}

impl AccessUnit {
    /// When the unit is decoded: its DTS, or its PTS when it has none.
    pub fn decode_time(&self) -> Option<Duration> {
        self.dts.or(self.pts)
    }

    /// Picture size from the caps (video).
    pub fn picture_size(&self) -> Option<(u32, u32)> {
        let s = self.caps.as_ref()?.structure(0)?;
        let w = s.get::<i32>("width").ok()?;
        let h = s.get::<i32>("height").ok()?;
        (w > 0 && h > 0).then_some((w as u32, h as u32))
    }

    /// A GStreamer buffer sharing this unit's bytes, with its timestamps
    /// moved by `-offset`, marked as one whole access unit.
    pub fn to_buffer(&self, offset: Duration) -> gst::Buffer {
        let mut buffer = gst::Buffer::from_slice(self.data.clone());
        let shift = |t: Option<Duration>| {
            t.map(|t| gst::ClockTime::from_nseconds(t.saturating_sub(offset).as_nanos() as u64))
        };
        {
            let b = buffer.get_mut().expect("new buffer is writable");
            b.set_pts(shift(self.pts));
            b.set_dts(shift(self.dts));
            b.set_duration(
                self.duration
                    .map(|d| gst::ClockTime::from_nseconds(d.as_nanos() as u64)),
            );
            if !self.keyframe {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
            // A whole access unit: a parser downstream ends the frame here
            // instead of waiting for the next start code (which shifts
            // every timestamp by one frame and leaves frames without PTS).
            b.set_flags(gst::BufferFlags::MARKER);
        }
        buffer
    }

    /// Wraps a parsed buffer without copying its bytes.
    pub fn from_buffer(codec: Codec, buffer: gst::Buffer, caps: Option<gst::Caps>) -> Option<Self> {
        let to_duration = |t: Option<gst::ClockTime>| t.map(|t| Duration::from_nanos(t.nseconds()));
        let pts = to_duration(buffer.pts());
        let dts = to_duration(buffer.dts());
        let duration = to_duration(buffer.duration());
        let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        let mapped = buffer.into_mapped_buffer_readable().ok()?;
        Some(Self {
            codec,
            pts,
            dts,
            duration,
            keyframe,
            data: Bytes::from_owner(mapped),
            caps,
            received_ms: now_millis(),
        })
    }
}
