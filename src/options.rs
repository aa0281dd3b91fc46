//! Validated processing options of a stream: the domain form of
//! `liveproc.v1.ProcessingOptions`, stored in the registry and read by
//! each stream's features (live, as they change). A feature that is `None`
//! is off. Parsing from the API form (with
//! range checks) lives in [`crate::validate`].

use serde::{Deserialize, Serialize};

use crate::proto::v1 as pb;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Processing {
    pub thumbnail: Option<Thumbnail>,
    pub motion_clip: Option<MotionClip>,
    pub recording: Option<Recording>,
    pub replay: Option<Replay>,
}

/// Encoding of a thumbnail.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageFormat {
    #[default]
    Jpeg,
    Png,
    Webp,
}

/// Encoding of a motion clip.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClipFormat {
    /// Remuxed, no decode.
    #[default]
    Mp4,
    /// Decoded, scaled, low-bitrate H.264 without audio.
    Mp4Preview,
    /// Decoded, scaled, a few frames per second.
    Gif,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thumbnail {
    pub interval_seconds: u32,
    #[serde(default)]
    pub format: ImageFormat,
    /// Requested size; `None` keeps the source size (or aspect).
    #[serde(default)]
    pub width: Option<u32>,
    #[serde(default)]
    pub height: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MotionClip {
    pub duration_seconds: u32,
    pub interval_seconds: u32,
    #[serde(default)]
    pub format: ClipFormat,
    /// Width of the decoded formats.
    #[serde(default = "default_preview_width")]
    pub width: u32,
}

/// Width of MP4_PREVIEW and GIF clips when none is asked for.
pub const DEFAULT_PREVIEW_WIDTH: u32 = 320;

fn default_preview_width() -> u32 {
    DEFAULT_PREVIEW_WIDTH
}

impl ImageFormat {
    pub fn to_proto(self) -> pb::ImageFormat {
        match self {
            ImageFormat::Jpeg => pb::ImageFormat::Jpeg,
            ImageFormat::Png => pb::ImageFormat::Png,
            ImageFormat::Webp => pb::ImageFormat::Webp,
        }
    }

    pub fn from_proto(format: pb::ImageFormat) -> Self {
        match format {
            pb::ImageFormat::Unspecified | pb::ImageFormat::Jpeg => ImageFormat::Jpeg,
            pb::ImageFormat::Png => ImageFormat::Png,
            pb::ImageFormat::Webp => ImageFormat::Webp,
        }
    }

    /// File extension of the format.
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpg",
            ImageFormat::Png => "png",
            ImageFormat::Webp => "webp",
        }
    }

    /// MIME type of the format (also its GStreamer caps name).
    pub fn mime_type(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
            ImageFormat::Webp => "image/webp",
        }
    }
}

impl ClipFormat {
    pub fn to_proto(self) -> pb::ClipFormat {
        match self {
            ClipFormat::Mp4 => pb::ClipFormat::Mp4,
            ClipFormat::Mp4Preview => pb::ClipFormat::Mp4Preview,
            ClipFormat::Gif => pb::ClipFormat::Gif,
        }
    }

    pub fn from_proto(format: pb::ClipFormat) -> Self {
        match format {
            pb::ClipFormat::Unspecified | pb::ClipFormat::Mp4 => ClipFormat::Mp4,
            pb::ClipFormat::Mp4Preview => ClipFormat::Mp4Preview,
            pb::ClipFormat::Gif => ClipFormat::Gif,
        }
    }
}

/// How much of the stream a feature spans: a number of seconds, or all of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Span {
    Seconds(u32),
    EntireStream,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recording {
    /// Length of each VOD segment.
    pub segment: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replay {
    /// Length of the rewind buffer.
    pub buffer: Span,
}

impl Processing {
    /// True when any feature is on (and so the package is needed).
    pub fn any_enabled(&self) -> bool {
        self.enabled_features().next().is_some()
    }

    /// API names of the features that are on.
    pub fn enabled_features(&self) -> impl Iterator<Item = &'static str> {
        [
            self.thumbnail.map(|_| "thumbnail"),
            self.motion_clip.map(|_| "motion_clip"),
            self.recording.map(|_| "recording"),
            self.replay.map(|_| "replay"),
        ]
        .into_iter()
        .flatten()
    }

    pub fn to_proto(&self) -> pb::ProcessingOptions {
        let span = |s: Span| match s {
            Span::Seconds(n) => (n, false),
            Span::EntireStream => (0, true),
        };
        pb::ProcessingOptions {
            thumbnail: self.thumbnail.map(|t| pb::ThumbnailOptions {
                enabled: true,
                interval_seconds: t.interval_seconds,
                format: t.format.to_proto() as i32,
                width: t.width.unwrap_or(0),
                height: t.height.unwrap_or(0),
            }),
            motion_clip: self.motion_clip.map(|m| pb::MotionClipOptions {
                enabled: true,
                duration_seconds: m.duration_seconds,
                interval_seconds: m.interval_seconds,
                format: m.format.to_proto() as i32,
                width: if m.format == ClipFormat::Mp4 {
                    0
                } else {
                    m.width
                },
            }),
            recording: self.recording.map(|r| {
                let (duration_seconds, entire_stream) = span(r.segment);
                pb::RecordingOptions {
                    enabled: true,
                    duration_seconds,
                    entire_stream,
                }
            }),
            replay: self.replay.map(|r| {
                let (duration_seconds, entire_stream) = span(r.buffer);
                pb::ReplayOptions {
                    enabled: true,
                    duration_seconds,
                    entire_stream,
                }
            }),
        }
    }
}
