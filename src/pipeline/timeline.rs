//! Keeps the tracks of one stream on one timeline before their units reach
//! any feature.
//!
//! An encoder stamps audio and video from one clock, so at any moment the
//! newest audio frame is close to the newest video frame. When a track is
//! on a timeline of its own (a broken encoder, a muxer that restarted one
//! track, a source that offsets one track by hours), writers that trust the
//! timestamps produce files whose stray track players skip whole. The guard
//! drops audio units that are more than [`crate::media::max_skew`] away from the newest
//! video frame, says so once in the stream's log when it starts and once
//! when the tracks meet again, and counts what it dropped. Video is the
//! reference: every feature is cut on video keyframes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::media::max_skew;

const NONE: u64 = u64::MAX;

/// Shared by the track taps of one pipeline (each runs on its own
/// streaming thread).
pub(crate) struct TimelineGuard {
    stream: String,
    /// PTS of the newest video frame, ns ([`NONE`] before the first).
    video_pts: AtomicU64,
    /// PTS of the newest video keyframe, ns.
    keyframe_pts: AtomicU64,
    /// Length of the last whole GOP, ns.
    gop: AtomicU64,
    dropping: AtomicBool,
    dropped: AtomicU64,
}

impl TimelineGuard {
    pub fn new(stream: impl Into<String>) -> Self {
        Self {
            stream: stream.into(),
            video_pts: AtomicU64::new(NONE),
            keyframe_pts: AtomicU64::new(NONE),
            gop: AtomicU64::new(0),
            dropping: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
        }
    }

    /// Notes a video frame.
    pub fn on_video(&self, pts: Duration, keyframe: bool) {
        let ns = pts.as_nanos() as u64;
        self.video_pts.store(ns, Ordering::Relaxed);
        if keyframe {
            let previous = self.keyframe_pts.swap(ns, Ordering::Relaxed);
            if previous != NONE && ns > previous {
                self.gop.store(ns - previous, Ordering::Relaxed);
            }
        }
    }

    /// Whether an audio frame at `pts` is on the video's timeline (always,
    /// before the first video frame).
    pub fn admit_audio(&self, pts: Duration) -> bool {
        let video = self.video_pts.load(Ordering::Relaxed);
        if video == NONE {
            return true;
        }
        let video = Duration::from_nanos(video);
        let skew = max_skew(Duration::from_nanos(self.gop.load(Ordering::Relaxed)));
        let apart = pts.abs_diff(video);
        let admit = apart <= skew;
        let was_dropping = self.dropping.swap(!admit, Ordering::Relaxed);
        if !admit {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            if !was_dropping {
                tracing::warn!(
                    stream = %self.stream,
                    audio_s = pts.as_secs_f64(),
                    video_s = video.as_secs_f64(),
                    "audio is {:.1} s away from video (more than {:.1} s): dropping audio until the tracks meet again",
                    apart.as_secs_f64(),
                    skew.as_secs_f64(),
                );
            }
        } else if was_dropping {
            tracing::info!(
                stream = %self.stream,
                dropped = self.dropped.load(Ordering::Relaxed),
                "audio is back on the video's timeline"
            );
        }
        admit
    }

    /// Audio frames dropped so far for being off the video's timeline.
    #[cfg(test)]
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::MIN_SKEW;

    fn s(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    #[test]
    fn audio_before_any_video_passes() {
        let guard = TimelineGuard::new("t");
        assert!(guard.admit_audio(s(3_600_000.0)));
    }

    #[test]
    fn audio_on_another_timeline_is_dropped_until_it_meets_video() {
        let guard = TimelineGuard::new("t");
        guard.on_video(s(3_600_004.0), true);
        assert!(!guard.admit_audio(s(4.0)));
        assert!(!guard.admit_audio(s(4.02)));
        assert_eq!(guard.dropped(), 2);
        assert!(guard.admit_audio(s(3_600_003.5)));
        assert_eq!(guard.dropped(), 2);
    }

    #[test]
    fn the_tolerance_is_one_gop_and_at_least_min_skew() {
        let guard = TimelineGuard::new("t");
        guard.on_video(s(100.0), true);
        assert!(guard.admit_audio(s(100.0) + MIN_SKEW));
        assert!(!guard.admit_audio(s(100.1) + MIN_SKEW));
        // A 10 s GOP widens it.
        guard.on_video(s(110.0), true);
        assert!(guard.admit_audio(s(118.0)));
        assert!(guard.admit_audio(s(101.0)));
        assert!(!guard.admit_audio(s(99.0)));
    }
}
