//! The one rule for audio at a cut, shared by the recorder (a file per
//! piece) and replay (a GOP per piece). A piece ends at a video keyframe
//! at `cut`; a muxer interleaves tracks a little apart, so audio stamped
//! before `cut` can still arrive after the keyframe. The piece that was
//! cut takes that audio until audio reaches `cut`, or until video runs
//! [`LAG`] past it (the audio stopped); then it is done.
//!
//! [`LAG`] is the timeline guard's smallest skew: audio the guard lets
//! through is never lost at a cut.

use std::time::Duration;

use crate::media::{AccessUnit, MIN_SKEW};

/// How far video may run past a cut before the piece that was cut stops
/// waiting for its audio.
pub const LAG: Duration = MIN_SKEW;

/// What a unit that arrives after a cut means for the piece that was cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LateAudio {
    /// Audio of the piece that was cut: it goes there.
    Take,
    /// The piece that was cut is done; the unit goes on to the new piece.
    Close,
    /// Nothing yet; the unit goes on to the new piece.
    Pass,
}

/// The rule for `unit` (at `pts`) after a cut at `cut`.
pub fn late_audio(cut: Duration, unit: &AccessUnit, pts: Duration) -> LateAudio {
    if unit.codec.is_video() {
        if pts >= cut + LAG {
            LateAudio::Close
        } else {
            LateAudio::Pass
        }
    } else if pts < cut {
        LateAudio::Take
    } else {
        LateAudio::Close
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::Codec;

    fn unit(codec: Codec) -> AccessUnit {
        AccessUnit {
            codec,
            pts: None,
            dts: None,
            duration: None,
            keyframe: false,
            data: bytes::Bytes::new(),
            format: None,
            received_ms: 0,
            discontinuity: false,
        }
    }

    #[test]
    fn audio_before_the_cut_is_taken_until_audio_or_video_passes_it() {
        let cut = Duration::from_secs(10);
        let (audio, video) = (unit(Codec::Aac), unit(Codec::H264));
        let at = Duration::from_millis;
        assert_eq!(late_audio(cut, &audio, at(9_900)), LateAudio::Take);
        assert_eq!(late_audio(cut, &audio, at(10_000)), LateAudio::Close);
        assert_eq!(late_audio(cut, &video, at(10_500)), LateAudio::Pass);
        assert_eq!(late_audio(cut, &video, cut + LAG), LateAudio::Close);
    }
}
