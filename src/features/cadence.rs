//! When a periodic feature fires: on the first keyframe, then on the first
//! keyframe at or after each interval boundary of stream time (PTS).
//! Boundaries are counted from the first keyframe taken, so sparse
//! keyframes never make the cadence drift; a new interval is counted from
//! the last keyframe taken, so a change takes effect within one interval.

use std::time::Duration;

#[derive(Debug, Default, Clone)]
pub struct Cadence {
    anchor: Option<Duration>,
    last: Option<Duration>,
    next_due: Option<Duration>,
}

impl Cadence {
    /// Whether a keyframe at `pts` is due.
    pub fn due(&self, pts: Duration) -> bool {
        match (self.next_due, self.last) {
            // Time went backwards (new timeline): start over.
            (_, Some(last)) if pts < last => true,
            (Some(next), _) => pts >= next,
            (None, _) => true,
        }
    }

    /// Records that the keyframe at `pts` was taken.
    pub fn taken(&mut self, pts: Duration, interval: Duration) {
        let anchor = match (self.anchor, self.last) {
            (Some(a), Some(last)) if pts >= last => a,
            _ => pts,
        };
        self.anchor = Some(anchor);
        self.last = Some(pts);
        let steps = (pts - anchor).as_nanos() / interval.as_nanos().max(1) + 1;
        self.next_due = Some(anchor + interval * steps as u32);
    }

    /// Applies a new interval from the last keyframe taken.
    pub fn retime(&mut self, interval: Duration) {
        if let Some(last) = self.last {
            self.anchor = Some(last);
            self.next_due = Some(last + interval);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: f64) -> Duration {
        Duration::from_secs_f64(x)
    }

    /// Feeds keyframes every `gop` ms for `total` ms from `from` ms;
    /// returns the times taken, in seconds.
    fn run(cadence: &mut Cadence, from: u64, gop: u64, total: u64, interval: f64) -> Vec<f64> {
        let mut taken = vec![];
        let mut t = from;
        while t < from + total {
            let pts = Duration::from_millis(t);
            if cadence.due(pts) {
                cadence.taken(pts, s(interval));
                taken.push(t as f64 / 1000.0);
            }
            t += gop;
        }
        taken
    }

    #[test]
    fn first_keyframe_then_each_boundary() {
        let mut c = Cadence::default();
        assert_eq!(
            run(&mut c, 1400, 1000, 35_000, 10.0),
            [1.4, 11.4, 21.4, 31.4]
        );
    }

    #[test]
    fn sparse_keyframes_do_not_drift() {
        let mut c = Cadence::default();
        // GOP 3 s, interval 10 s: boundaries 10, 20, 30 from 0.
        assert_eq!(run(&mut c, 0, 3000, 40_000, 10.0), [0.0, 12.0, 21.0, 30.0]);
    }

    #[test]
    fn retime_counts_from_last_taken() {
        let mut c = Cadence::default();
        c.taken(s(5.0), s(60.0));
        assert!(!c.due(s(20.0)));
        c.retime(s(10.0));
        assert!(!c.due(s(14.0)));
        assert!(c.due(s(15.0)));
    }

    #[test]
    fn timeline_reset_is_due_at_once() {
        let mut c = Cadence::default();
        c.taken(s(100.0), s(10.0));
        assert!(!c.due(s(105.0)));
        assert!(c.due(s(1.0)));
        c.taken(s(1.0), s(10.0));
        assert!(c.due(s(11.0)));
    }
}
