//! Encoded media as it leaves the demuxer and parsers, and the facts about
//! codecs every other layer shares. A leaf: it depends on no other module
//! of the crate.
//!
//! - [`AccessUnit`]: one video or audio frame whose bytes are shared, never
//!   copied, between the demuxer (or GStreamer buffer) and every consumer;
//!   its [`Codec`] and its track's [`format::TrackFormat`].
//! - [`format`]: a track's format, typed (parameter sets, picture,
//!   AudioSpecificConfig), and how it is followed as units go by.
//! - [`ticks`]: stream times in a container's timescale.
//! - [`nal`]: H.264/H.265 Annex-B NAL units; [`aac`]: ADTS framing.
//! - [`max_skew`]: how far audio may stray from video.
//! - [`MediaError`]: what goes wrong with media, typed.

pub mod aac;
mod error;
pub mod format;
pub mod nal;
pub mod sps;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::sync::Arc;

use bytes::Bytes;

pub use error::{is_disk_full, MediaError, MediaResult};
pub use format::TrackFormat;

/// The codec of a track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    H264,
    H265,
    Aac,
}

impl Codec {
    pub fn is_video(self) -> bool {
        matches!(self, Codec::H264 | Codec::H265)
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
    /// The track's format (parameter sets, picture, audio config),
    /// shared by every unit until it changes.
    pub format: Option<Arc<TrackFormat>>,
    /// Wall-clock time the unit left the parser (ms since the epoch).
    pub received_ms: i64,
    /// The first unit after a jump of the publisher's clock: its
    /// timestamps (and those after it) were moved to continue the
    /// session's timeline. Recordings start a new file here.
    pub discontinuity: bool,
}

/// `d` in units of 1/`scale` s, rounded (90 kHz stream times that went
/// through nanoseconds come back exact).
pub fn ticks(d: Duration, scale: u32) -> u64 {
    ((d.as_nanos() * u128::from(scale) + 500_000_000) / 1_000_000_000) as u64
}

/// `ticks` of 1/`scale` s as a duration (the inverse of [`ticks`]).
pub fn ticks_to_duration(ticks: u64, scale: u32) -> Duration {
    Duration::from_nanos((u128::from(ticks) * 1_000_000_000 / u128::from(scale.max(1))) as u64)
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

    /// Picture size from the track's format (video).
    pub fn picture_size(&self) -> Option<(u32, u32)> {
        self.format.as_ref()?.picture_size()
    }
}
