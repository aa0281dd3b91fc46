//! Validated processing options of a stream: the domain form of
//! `liveproc.v1.ProcessingOptions`, stored in the registry and read by the
//! pipeline. A feature that is `None` is off. Parsing from the API form (with
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thumbnail {
    pub interval_seconds: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MotionClip {
    pub duration_seconds: u32,
    pub interval_seconds: u32,
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
            }),
            motion_clip: self.motion_clip.map(|m| pb::MotionClipOptions {
                enabled: true,
                duration_seconds: m.duration_seconds,
                interval_seconds: m.interval_seconds,
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
