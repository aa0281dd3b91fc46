//! Keeps pushed media near real time. A live stream's media clock (its
//! PCR) advances as fast as the wall clock; a publisher that sends much
//! faster (a file pushed without pacing) would make every feature fall
//! behind and skip media. So the session compares the two clocks:
//! - gRPC `PushMedia` is paced: the session stops reading the client's
//!   stream while the media is more than [`PUSH_LEAD`] ahead, which HTTP/2
//!   flow control turns into backpressure on the client;
//! - SRT cannot be held back without holding up the shared socket, so a
//!   caller more than [`SRT_LEAD`] ahead is refused with a clear reason.
//!
//! A jump of the media clock (an encoder restart, a PCR discontinuity)
//! starts a new reference instead of counting as lead.

use std::time::Duration;

use tokio::time::Instant;

/// How far ahead of real time pushed media may be before reading waits.
pub const PUSH_LEAD: Duration = Duration::from_secs(1);
/// How far ahead of real time an SRT caller may be before it is refused.
pub const SRT_LEAD: Duration = Duration::from_secs(10);
/// A PCR step larger than this, forwards or backwards, is a discontinuity.
const JUMP: Duration = Duration::from_secs(5);
/// The PCR wraps at 2^33 ticks of 90 kHz (26.5 hours).
const PCR_WRAP: u64 = 1 << 33;

/// Media clock against wall clock for one session.
#[derive(Debug, Default)]
pub struct Pacer {
    /// (wall clock, PCR) at the reference point.
    reference: Option<(Instant, u64)>,
    /// The last PCR seen.
    last: Option<u64>,
}

fn ticks_to_duration(ticks: u64) -> Duration {
    Duration::from_nanos(ticks * 100_000 / 9)
}

impl Pacer {
    /// Notes the newest PCR at wall-clock `now`; returns how far the media
    /// is ahead of real time.
    pub fn lead(&mut self, pcr: u64, now: Instant) -> Duration {
        // A time a little behind the latest (audio and video decode times
        // interleave slightly out of order) counts as the latest; one far
        // behind is a discontinuity (an encoder restart).
        let pcr = match self.last {
            Some(last)
                if (pcr + PCR_WRAP - last) % PCR_WRAP >= PCR_WRAP / 2
                    && ticks_to_duration((last + PCR_WRAP - pcr) % PCR_WRAP) <= JUMP =>
            {
                last
            }
            _ => pcr,
        };
        let step = self.last.map(|last| (pcr + PCR_WRAP - last) % PCR_WRAP);
        self.last = Some(pcr);
        let discontinuity = step.is_some_and(|s| ticks_to_duration(s) > JUMP);
        let Some((start, start_pcr)) = self.reference.filter(|_| !discontinuity) else {
            self.reference = Some((now, pcr));
            return Duration::ZERO;
        };
        let media = ticks_to_duration((pcr + PCR_WRAP - start_pcr) % PCR_WRAP);
        media.saturating_sub(now.duration_since(start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 90_000;

    #[test]
    fn real_time_media_has_no_lead_and_a_burst_has() {
        let mut pacer = Pacer::default();
        let t0 = Instant::now();
        assert_eq!(pacer.lead(1000, t0), Duration::ZERO);
        // One second of media in one second: on time.
        let lead = pacer.lead(1000 + SECOND, t0 + Duration::from_secs(1));
        assert_eq!(lead, Duration::ZERO);
        // Four more seconds of media a moment later: 4 s ahead.
        let mut pcr = 1000 + SECOND;
        for _ in 0..4 {
            pcr += SECOND;
            pacer.lead(pcr, t0 + Duration::from_secs(1));
        }
        let lead = pacer.lead(pcr, t0 + Duration::from_secs(1));
        assert_eq!(lead, Duration::from_secs(4));
    }

    #[test]
    fn times_a_little_behind_the_latest_keep_the_lead() {
        let mut pacer = Pacer::default();
        let t0 = Instant::now();
        pacer.lead(0, t0);
        // Two seconds of media at once, then times 100 ms and 2 s behind
        // it: the lead stays.
        assert_eq!(pacer.lead(2 * SECOND, t0), Duration::from_secs(2));
        assert_eq!(
            pacer.lead(2 * SECOND - SECOND / 10, t0),
            Duration::from_secs(2)
        );
        assert_eq!(pacer.lead(0, t0), Duration::from_secs(2));
        // A minute behind (an encoder restart): a new reference.
        pacer.lead(60 * SECOND, t0);
        assert_eq!(pacer.lead(0, t0), Duration::ZERO);
        assert_eq!(pacer.lead(SECOND, t0), Duration::from_secs(1));
    }

    #[test]
    fn a_jump_or_a_wrap_is_not_lead() {
        let mut pacer = Pacer::default();
        let t0 = Instant::now();
        pacer.lead(PCR_WRAP - SECOND / 2, t0);
        // Across the wrap: half a second later, half a second of media.
        let lead = pacer.lead(SECOND / 2 - SECOND / 2 + 1, t0 + Duration::from_millis(500));
        assert!(lead < Duration::from_millis(10), "{lead:?}");
        // An encoder restart jumps the clock by an hour: a new reference.
        let lead = pacer.lead(3600 * SECOND, t0 + Duration::from_millis(600));
        assert_eq!(lead, Duration::ZERO);
    }
}
