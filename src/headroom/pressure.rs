//! The node's pressure from its signals, sample by sample: whether to
//! refuse new sessions, and when to let the newest one go. Pure (time is
//! given), so that every rule is tested as it is written.
//!
//! - Behind: in the last [`WINDOW`] samples, at least two lag by
//!   [`REFUSE_LAG`] or more, or the kernel dropped SRT datagrams in the
//!   last one. New sessions are refused from then until [`RECOVERY`] has
//!   passed without being behind.
//! - Far behind: at least three of the last [`WINDOW`] samples lag by
//!   [`SHED_LAG`] or more (past SRT's default 120 ms latency, its packets
//!   arrive too late to be used), or drops in two of them. The newest
//!   session is then let go, and another only after [`SHED_SETTLE`], if
//!   the lag has not come down by a quarter since (an input queue needs
//!   a moment to drain once its load is gone).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::Signals;

/// Samples looked at.
pub const WINDOW: usize = 4;
/// Lag at which the node counts as behind.
pub const REFUSE_LAG: Duration = Duration::from_millis(50);
/// Lag at which the node counts as far behind.
pub const SHED_LAG: Duration = Duration::from_millis(150);
/// How long the node must keep up before it takes sessions again.
pub const RECOVERY: Duration = Duration::from_secs(5);
/// Least time between two sessions let go.
pub const SHED_SETTLE: Duration = Duration::from_secs(2);

/// One sample: the worst lag and the datagrams dropped since the last.
#[derive(Debug, Clone)]
struct Sample {
    lag: Duration,
    dropped: u64,
    /// What it says, for the logs and the refusals.
    reason: String,
}

/// What to do after a sample.
#[derive(Debug, Default, PartialEq)]
pub struct Verdict {
    /// Refuse new sessions, for this reason.
    pub refuse: Option<String>,
    /// Let the newest session go, for this reason.
    pub shed: Option<String>,
}

#[derive(Default)]
pub struct Pressure {
    samples: VecDeque<Sample>,
    last_dropped: Option<u64>,
    /// Refusing until then, for this reason.
    refusing: Option<(Instant, String)>,
    /// When the last session was let go, and the lag then.
    last_shed: Option<(Instant, Duration)>,
}

impl Pressure {
    /// Takes one sample of `signals`, read at `now`.
    pub fn observe(&mut self, now: Instant, signals: Signals) -> Verdict {
        let dropped = signals
            .srt_dropped
            .saturating_sub(self.last_dropped.unwrap_or(signals.srt_dropped));
        self.last_dropped = Some(signals.srt_dropped);
        let sample = describe(signals, dropped);
        if self.samples.len() == WINDOW {
            self.samples.pop_front();
        }
        self.samples.push_back(sample.clone());

        let lagging = |at: Duration| self.samples.iter().filter(|s| s.lag >= at).count();
        let dropping = self.samples.iter().filter(|s| s.dropped > 0).count();
        let behind = lagging(REFUSE_LAG) >= 2 || sample.dropped > 0;
        let far_behind = lagging(SHED_LAG) >= 3 || dropping >= 2;

        // What the window says: drops now, or its worst lag.
        let worst = self.samples.iter().max_by_key(|s| s.lag);
        let worst_lag = worst.map(|s| s.lag).unwrap_or_default();
        let reason = if sample.dropped > 0 {
            sample.reason.clone()
        } else {
            worst.map(|s| s.reason.clone()).unwrap_or_default()
        };
        if behind {
            self.refusing = Some((now + RECOVERY, reason.clone()));
        }
        if self
            .refusing
            .as_ref()
            .is_some_and(|(until, _)| now >= *until)
        {
            self.refusing = None;
        }
        let shed = far_behind
            && match self.last_shed {
                None => true,
                Some((at, lag_then)) => {
                    now.duration_since(at) >= SHED_SETTLE
                        && (worst_lag * 4 > lag_then * 3 || sample.dropped > 0)
                }
            };
        if shed {
            self.last_shed = Some((now, worst_lag));
        }
        Verdict {
            refuse: self.refusing.as_ref().map(|(_, reason)| reason.clone()),
            shed: shed.then_some(reason),
        }
    }
}

/// A sample and what it says.
fn describe(signals: Signals, dropped: u64) -> Sample {
    let lag = signals
        .srt_lag
        .max(signals.sessions_lag)
        .max(signals.runtime_lag);
    let reason = if dropped > 0 {
        format!("the kernel dropped {dropped} SRT datagrams: a receive buffer was full")
    } else if lag == signals.srt_lag {
        format!("SRT input {} ms behind", lag.as_millis())
    } else if lag == signals.sessions_lag {
        format!("SRT sessions {} ms behind their input", lag.as_millis())
    } else {
        format!("tasks woken {} ms late", lag.as_millis())
    };
    Sample {
        lag,
        dropped,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: Duration = Duration::from_millis(250);

    /// Feeds `lags` (ms of SRT lag) one sample apart from `start`;
    /// returns the verdicts.
    fn feed(p: &mut Pressure, start: Instant, lags: &[u64]) -> Vec<Verdict> {
        lags.iter()
            .enumerate()
            .map(|(i, ms)| {
                p.observe(
                    start + SAMPLE * i as u32,
                    Signals {
                        srt_lag: Duration::from_millis(*ms),
                        ..Signals::default()
                    },
                )
            })
            .collect()
    }

    /// The samples at which a session was let go.
    fn shed_at(verdicts: &[Verdict]) -> Vec<usize> {
        let shed = verdicts
            .iter()
            .enumerate()
            .filter(|(_, v)| v.shed.is_some());
        shed.map(|(i, _)| i).collect()
    }

    #[test]
    fn one_late_round_refuses_nothing() {
        let mut p = Pressure::default();
        let verdicts = feed(&mut p, Instant::now(), &[5, 80, 5, 5, 5, 90, 5]);
        assert!(
            verdicts.iter().all(|v| *v == Verdict::default()),
            "{verdicts:?}"
        );
    }

    #[test]
    fn being_behind_refuses_until_the_node_keeps_up_for_a_while() {
        let mut p = Pressure::default();
        let mut lags = vec![60, 70];
        lags.resize(40, 0);
        let verdicts = feed(&mut p, Instant::now(), &lags);
        assert_eq!(verdicts[0].refuse, None);
        assert_eq!(
            verdicts[1].refuse.as_deref(),
            Some("SRT input 70 ms behind")
        );
        assert!(verdicts.iter().all(|v| v.shed.is_none()));
        // The window (4 samples) holds both late ones until sample 3;
        // RECOVERY (20 samples) later new sessions are taken again.
        let taken_again = 1 + verdicts[1..]
            .iter()
            .position(|v| v.refuse.is_none())
            .unwrap();
        assert_eq!(taken_again, 3 + 20);
        assert!(verdicts[taken_again..].iter().all(|v| v.refuse.is_none()));
    }

    #[test]
    fn far_behind_sheds_one_then_waits_for_the_queue_to_drain() {
        let mut p = Pressure::default();
        let start = Instant::now();
        let verdicts = feed(
            &mut p,
            start,
            &[200, 300, 400, 400, 350, 300, 300, 300, 250, 250, 250, 250],
        );
        let shed = shed_at(&verdicts);
        // The third far-behind sample sheds; 2 s later (sample 10) the
        // window's worst lag has come down by a quarter (400 → 300), and
        // nothing more goes though it is still far behind.
        assert_eq!(shed, vec![2]);
        assert_eq!(verdicts[2].shed.as_deref(), Some("SRT input 400 ms behind"));
    }

    #[test]
    fn a_lag_that_does_not_come_down_sheds_again_after_the_settle_time() {
        let mut p = Pressure::default();
        let start = Instant::now();
        let verdicts = feed(&mut p, start, &[200; 16]);
        let shed = shed_at(&verdicts);
        assert_eq!(shed, vec![2, 10]);
    }

    #[test]
    fn kernel_drops_refuse_at_once_and_shed_when_they_go_on() {
        let mut p = Pressure::default();
        let start = Instant::now();
        let at = |i: u32, dropped: u64| {
            (
                start + SAMPLE * i,
                Signals {
                    srt_dropped: dropped,
                    ..Signals::default()
                },
            )
        };
        let (t, s) = at(0, 1000);
        assert_eq!(
            p.observe(t, s),
            Verdict::default(),
            "drops before the node started"
        );
        let (t, s) = at(1, 1010);
        let first = p.observe(t, s);
        assert_eq!(
            first.refuse.as_deref(),
            Some("the kernel dropped 10 SRT datagrams: a receive buffer was full")
        );
        assert_eq!(first.shed, None);
        let (t, s) = at(2, 1050);
        assert!(p.observe(t, s).shed.is_some());
    }

    #[test]
    fn the_runtime_lag_counts_and_is_named() {
        let mut p = Pressure::default();
        let start = Instant::now();
        let late = Signals {
            runtime_lag: Duration::from_millis(90),
            srt_lag: Duration::from_millis(3),
            ..Signals::default()
        };
        p.observe(start, late);
        let verdict = p.observe(start + SAMPLE, late);
        assert_eq!(verdict.refuse.as_deref(), Some("tasks woken 90 ms late"));
    }
}
