//! Features cut on video keyframes (recording, replay) have nothing to
//! work with on an audio-only stream. Rather than produce nothing in
//! silence, each says so once, with a `FEATURE_ERROR` event, when a few
//! seconds of audio have come without any video.

use std::time::Duration;

use crate::media::AccessUnit;
use crate::streams::LiveStream;

/// Audio received without video before the feature says it needs video.
const AUDIO_ONLY_AFTER: Duration = Duration::from_secs(5);

/// Watches one feature's units for a stream without video.
#[derive(Debug)]
pub struct VideoRequired {
    feature: &'static str,
    first_audio: Option<Duration>,
    seen_video: bool,
    told: bool,
}

impl VideoRequired {
    pub fn new(feature: &'static str) -> Self {
        Self {
            feature,
            first_audio: None,
            seen_video: false,
            told: false,
        }
    }

    /// Notes a unit; reports once on `stream` when audio has come for
    /// [`AUDIO_ONLY_AFTER`] without video.
    pub fn on_unit(&mut self, unit: &AccessUnit, stream: &LiveStream) {
        if self.seen_video || self.told {
            return;
        }
        if unit.codec.is_video() {
            self.seen_video = true;
            return;
        }
        let Some(pts) = unit.pts else { return };
        let first = *self.first_audio.get_or_insert(pts);
        if pts.saturating_sub(first) >= AUDIO_ONLY_AFTER {
            self.told = true;
            let message = format!(
                "{} needs video (H.264 or H.265): this stream has sent only audio",
                self.feature
            );
            tracing::warn!(stream = %stream.stream_ref, "{message}");
            stream.report_feature_error(message);
        }
    }
}
