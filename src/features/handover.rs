//! Audio around a cut, in one place for the recorder (a file per piece)
//! and replay (a GOP per piece). A piece ends at a video keyframe at
//! `cut`, and a muxer interleaves tracks a little apart, both ways:
//! - audio stamped from `cut` on can arrive before the keyframe: it is
//!   held ([`EarlyAudio`]) until video passes it, so that a cut between
//!   them sends it to the piece it plays in;
//! - audio stamped before `cut` can arrive after the keyframe: the piece
//!   that was cut takes it ([`late_audio`]) until audio reaches `cut`, or
//!   until video runs [`LAG`] past it (the audio stopped); then it is done.
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

/// Audio that arrived ahead of the newest video, held until video passes
/// it or a cut decides its piece.
#[derive(Debug, Default)]
pub struct EarlyAudio {
    held: Vec<AccessUnit>,
    newest_video: Option<Duration>,
}

impl EarlyAudio {
    /// Notes a video unit at `pts`.
    pub fn video(&mut self, pts: Duration) {
        self.newest_video = Some(self.newest_video.map_or(pts, |v| v.max(pts)));
    }

    /// Holds an audio unit that plays after the newest video (by at most
    /// [`LAG`]: further ahead, it is on a timeline of its own and goes on);
    /// returns the unit when it is not held.
    pub fn hold(&mut self, unit: AccessUnit, pts: Duration) -> Option<AccessUnit> {
        let ahead = self.newest_video.is_some_and(|v| pts > v && pts <= v + LAG);
        if ahead {
            self.held.push(unit);
            None
        } else {
            Some(unit)
        }
    }

    /// Holds an audio unit whatever its time (a piece with a track for it
    /// is still to come).
    pub fn hold_anyway(&mut self, unit: AccessUnit) {
        self.held.push(unit);
    }

    /// Takes the held audio that plays before `until` (all with `None`),
    /// in order.
    pub fn take(&mut self, until: Option<Duration>) -> Vec<AccessUnit> {
        let held = std::mem::take(&mut self.held);
        let (go, keep) = held
            .into_iter()
            .partition(|u| until.is_none_or(|t| u.pts.is_some_and(|p| p < t)));
        self.held = keep;
        go
    }

    /// How many units are held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Takes the oldest held unit.
    pub fn take_oldest(&mut self) -> Option<AccessUnit> {
        (!self.held.is_empty()).then(|| self.held.remove(0))
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

    #[test]
    fn audio_ahead_of_video_waits_for_the_cut_that_decides_its_piece() {
        let at = Duration::from_millis;
        let mut early = EarlyAudio::default();
        // Before any video, nothing is ahead of it.
        assert!(early.hold(unit(Codec::Aac), at(500)).is_some());
        early.video(at(1000));
        let mut a = unit(Codec::Aac);
        a.pts = Some(at(1200));
        let mut b = unit(Codec::Aac);
        b.pts = Some(at(2100));
        assert!(early.hold(a, at(1200)).is_none());
        assert!(early.hold(b, at(2100)).is_none());
        // Far ahead: a timeline of its own, not held.
        assert!(early
            .hold(unit(Codec::Aac), at(1000) + LAG + at(1))
            .is_some());
        // A cut at 2 s: what plays before it ends the old piece.
        let before: Vec<_> = early.take(Some(at(2000)));
        assert_eq!(before.len(), 1);
        assert_eq!(early.len(), 1);
        assert_eq!(early.take(None).len(), 1);
    }
}
