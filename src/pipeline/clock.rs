//! One pushed session's timeline, from the encoder's 33-bit 90 kHz clock.
//!
//! - The clock is unwrapped (it wraps every 26.5 hours) next to the last
//!   timestamp seen, and counted from one second before the first one, so
//!   that B-frame decode times and audio that starts a little early stay
//!   positive.
//! - A jump of the clock (an encoder restart, a spliced feed, a clock
//!   reset: forward by more than [`FORWARD_JUMP`] or back by more than
//!   [`BACKWARD_JUMP`]) starts a new epoch whose timestamps are moved to
//!   continue the session's timeline one frame after its newest time.
//!   Every feature then sees one timeline that only moves forward: nothing
//!   is dropped as "older than what came before", and durations are those
//!   of the media. The jump is reported once ([`SessionClock::take_jump`])
//!   so that the stream can say so and the recorder can start a new file.
//! - Video drives the epochs (audio when there is no video). Audio follows
//!   the epoch whose clock it is near: audio of the old epoch that arrives
//!   after the jump (tracks are interleaved a little apart) keeps the old
//!   epoch's offset; audio on a timeline of its own is left as it is, for
//!   the timeline guard to judge.

use std::time::Duration;

/// The 33-bit clock wraps here.
const WRAP: u64 = 1 << 33;
/// Headroom before the first timestamp (1 s of 90 kHz).
const HEADROOM: u64 = 90_000;
/// A forward step of the driving track larger than this is a jump
/// (ffmpeg's `dts_delta_threshold` for discontinuous formats is 10 s).
pub const FORWARD_JUMP: Duration = Duration::from_secs(10);
/// A backward step larger than this is a jump (presentation times go back
/// by less than the reorder depth, well under this).
pub const BACKWARD_JUMP: Duration = Duration::from_secs(2);
/// Where a new epoch starts after the newest time: one frame at 30 fps.
const CONTINUE_AFTER: u64 = 3000;

fn ticks_of(d: Duration) -> u64 {
    (d.as_nanos() * 9 / 100_000) as u64
}

/// One stretch of the encoder's clock without a jump.
#[derive(Debug, Clone, Copy)]
struct Epoch {
    /// The newest raw (unwrapped) time of the driving track in it.
    last_raw: u64,
    /// Added to a raw time to place it on the session's timeline.
    offset: i64,
}

impl Epoch {
    fn holds(&self, raw: u64) -> bool {
        let near_ahead = raw >= self.last_raw && raw - self.last_raw <= ticks_of(FORWARD_JUMP);
        let near_behind = raw < self.last_raw && self.last_raw - raw <= ticks_of(BACKWARD_JUMP);
        near_ahead || near_behind
    }

    /// Audio may lead or trail video a little more than video moves.
    fn near(&self, raw: u64) -> bool {
        raw.abs_diff(self.last_raw) <= ticks_of(FORWARD_JUMP)
    }

    fn place(&self, raw: u64) -> u64 {
        (raw as i64 + self.offset).max(0) as u64
    }
}

/// A jump of the encoder's clock, as reported once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Jump {
    /// How far the clock jumped (ns; negative: back).
    pub by_ns: i64,
    /// Where the new epoch starts on the session's timeline.
    pub at: Duration,
}

/// The session's timeline: see the module doc.
#[derive(Debug, Default)]
pub struct SessionClock {
    last_ticks: Option<u64>,
    current: Option<Epoch>,
    previous: Option<Epoch>,
    /// The newest time placed on the timeline (ticks).
    newest: u64,
    jump: Option<Jump>,
}

impl SessionClock {
    /// The session time of a 90 kHz timestamp of the driving track
    /// (`drives`: video, or audio when there is no video) or of a track
    /// that follows it.
    pub fn time(&mut self, ticks: u64, drives: bool) -> Duration {
        let raw = self.unwrap(ticks);
        let epoch = match self.current.as_mut() {
            None => {
                let epoch = Epoch {
                    last_raw: raw,
                    offset: -(raw.saturating_sub(HEADROOM) as i64),
                };
                self.current = Some(epoch);
                epoch
            }
            Some(current) if drives && current.holds(raw) => {
                current.last_raw = current.last_raw.max(raw);
                *current
            }
            Some(current) if drives => {
                let start = self.newest + CONTINUE_AFTER;
                let epoch = Epoch {
                    last_raw: raw,
                    offset: start as i64 - raw as i64,
                };
                self.jump = Some(Jump {
                    by_ns: (raw as i64 - current.last_raw as i64) * 100_000 / 9,
                    at: Duration::from_nanos(start * 100_000 / 9),
                });
                self.previous = Some(*current);
                *current = epoch;
                epoch
            }
            Some(current) => {
                if current.near(raw) {
                    *current
                } else {
                    match self.previous {
                        Some(previous) if previous.near(raw) => previous,
                        _ => *current,
                    }
                }
            }
        };
        let placed = epoch.place(raw);
        self.newest = self.newest.max(placed);
        Duration::from_nanos(placed * 100_000 / 9)
    }

    /// The jump of the clock seen since the last call, if any.
    pub fn take_jump(&mut self) -> Option<Jump> {
        self.jump.take()
    }

    /// Unwraps a 33-bit timestamp next to the last one.
    fn unwrap(&mut self, ticks: u64) -> u64 {
        let unwrapped = match self.last_ticks {
            None => ticks + WRAP,
            Some(last) => {
                let epoch = last / WRAP;
                [epoch.saturating_sub(1), epoch, epoch + 1]
                    .into_iter()
                    .map(|e| e * WRAP + ticks)
                    .min_by_key(|t| t.abs_diff(last))
                    .expect("three candidates")
            }
        };
        self.last_ticks = Some(unwrapped);
        unwrapped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 90_000;
    const FRAME: u64 = 3000;

    fn secs(d: Duration) -> f64 {
        d.as_secs_f64()
    }

    #[test]
    fn counts_from_a_second_before_the_first_time_and_unwraps() {
        let mut clock = SessionClock::default();
        assert_eq!(clock.time(WRAP - SECOND, true), Duration::from_secs(1));
        // Across the wrap: two seconds later.
        assert_eq!(clock.time(SECOND, true), Duration::from_secs(3));
        assert_eq!(clock.take_jump(), None);
    }

    #[test]
    fn a_jump_back_continues_the_timeline_and_is_reported_once() {
        let mut clock = SessionClock::default();
        let start = 10 * 3600 * SECOND;
        for i in 0..300 {
            clock.time(start + i * FRAME, true);
        }
        let before = clock.time(start + 300 * FRAME, true);
        // Audio of the old epoch, a little behind.
        clock.time(start + 290 * FRAME, false);
        // The encoder's clock goes back two hours.
        let back = start - 2 * 3600 * SECOND;
        let after = clock.time(back, true);
        let jump = clock.take_jump().expect("a jump");
        assert_eq!(clock.take_jump(), None);
        assert!(
            (jump.by_ns as f64 / 1e9 + 7200.0 + 10.0).abs() < 0.1,
            "{jump:?}"
        );
        assert_eq!(after, before + Duration::from_nanos(FRAME * 100_000 / 9));
        assert_eq!(jump.at, after);
        // Late audio of the old epoch keeps the old offset; audio of the
        // new epoch follows the new one.
        let late = clock.time(start + 299 * FRAME, false);
        assert!(late < after, "{} < {}", secs(late), secs(after));
        let new_audio = clock.time(back + FRAME, false);
        assert!(new_audio > after);
        // Times go on from there.
        assert_eq!(
            clock.time(back + 30 * FRAME, true),
            after + Duration::from_secs(1)
        );
    }

    #[test]
    fn a_jump_forward_is_closed_up_and_small_steps_are_not_jumps() {
        let mut clock = SessionClock::default();
        clock.time(0, true);
        let a = clock.time(SECOND, true);
        // B-frame presentation times step back a little: not a jump.
        clock.time(SECOND - 2 * FRAME, true);
        // A 5 s gap (a stall): kept as it is.
        let b = clock.time(6 * SECOND, true);
        assert_eq!(b - a, Duration::from_secs(5));
        assert_eq!(clock.take_jump(), None);
        // Two hours ahead: a jump, closed up.
        let c = clock.time(6 * SECOND + 7200 * SECOND, true);
        assert!(clock.take_jump().is_some());
        assert_eq!(c, b + Duration::from_nanos(FRAME * 100_000 / 9));
    }
}
