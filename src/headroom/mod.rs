//! This node's headroom: whether it keeps up with the media it takes,
//! and what follows when it does not.
//!
//! Its signals are measures of lateness where it shows first, rather
//! than estimates of CPU:
//! - SRT input: the age of the oldest datagram a receive thread takes
//!   from its socket in a round (the kernel stamps each datagram as it
//!   arrives), and the datagrams the kernel dropped because the socket's
//!   buffer was full;
//! - SRT sessions: how long payloads wait between their receive thread
//!   and their session (the sessions' demux runs on the async runtime);
//! - the runtime: how late a task due at a known time is woken (gRPC
//!   push and RTMP run there too) ([`monitor::probe_runtime`]).
//!
//! Each lag is the least seen over a quarter second ([`Persistent`]): a
//! queue that drained even once in it was keeping up, however late its
//! oldest item was at times (a CPU quota stalls a whole process for
//! most of each 100 ms period once it is used up); one that never did
//! is behind.
//!
//! [`pressure`] turns them into the node's state every
//! [`monitor::SAMPLE`]; [`monitor`] acts on it:
//! - while the node is behind, new sessions are refused with the reason
//!   ([`Headroom::admit`]: SRT `Overload`, `RESOURCE_EXHAUSTED`, an RTMP
//!   error; a pull waits);
//! - while it stays far behind, the newest session is let go, one at a
//!   time, with its reason, until the rest keep up.
//!
//! Without this, an overloaded node let the kernel choose: its SRT
//! socket's buffer filled, the kernel dropped datagrams of every stream at
//! random, retransmissions added to the load, and every session ended
//! together.

pub mod monitor;
pub mod pressure;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// The signals the ingest paths feed and the admission they read.
#[derive(Default)]
pub struct Headroom {
    /// Largest SRT input lag noted since the monitor last looked, in µs.
    srt_lag_us: AtomicU64,
    /// Largest SRT session queue lag noted since then, in µs.
    sessions_lag_us: AtomicU64,
    /// Largest runtime wake-up lag noted since then, in µs.
    runtime_lag_us: AtomicU64,
    /// SRT datagrams the kernel dropped, over every receive thread.
    srt_dropped: AtomicU64,
    /// Why new sessions are refused, while they are.
    refusing: RwLock<Option<String>>,
}

/// What the monitor reads at each sample.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Signals {
    pub srt_lag: Duration,
    pub sessions_lag: Duration,
    pub runtime_lag: Duration,
    /// Dropped since the node started.
    pub srt_dropped: u64,
}

impl Headroom {
    /// A receive thread's datagrams waited at least `lag` in its socket
    /// over a period.
    pub fn note_srt_lag(&self, lag: Duration) {
        self.srt_lag_us.fetch_max(micros(lag), Ordering::Relaxed);
    }

    /// The kernel dropped `datagrams` more SRT datagrams (a socket's
    /// buffer was full).
    pub fn note_srt_dropped(&self, datagrams: u64) {
        self.srt_dropped.fetch_add(datagrams, Ordering::Relaxed);
        crate::metrics::get()
            .srt_dropped_datagrams
            .inc_by(datagrams);
    }

    /// An SRT session's payloads waited at least `lag` for it over a
    /// period.
    pub fn note_sessions_lag(&self, lag: Duration) {
        self.sessions_lag_us
            .fetch_max(micros(lag), Ordering::Relaxed);
    }

    /// Tasks due at a known time were woken at least `lag` late over a
    /// period.
    pub fn note_runtime_lag(&self, lag: Duration) {
        self.runtime_lag_us
            .fetch_max(micros(lag), Ordering::Relaxed);
    }

    /// Whether a new session may start here now; if not, why.
    pub fn admit(&self) -> Result<(), String> {
        match &*self.refusing.read().expect("headroom lock") {
            Some(reason) => Err(reason.clone()),
            None => Ok(()),
        }
    }

    /// The signals since the last take (lags start again from zero).
    fn take(&self) -> Signals {
        Signals {
            srt_lag: Duration::from_micros(self.srt_lag_us.swap(0, Ordering::Relaxed)),
            sessions_lag: Duration::from_micros(self.sessions_lag_us.swap(0, Ordering::Relaxed)),
            runtime_lag: Duration::from_micros(self.runtime_lag_us.swap(0, Ordering::Relaxed)),
            srt_dropped: self.srt_dropped.load(Ordering::Relaxed),
        }
    }

    fn set_refusing(&self, reason: Option<String>) {
        *self.refusing.write().expect("headroom lock") = reason;
    }
}

/// The least of the lags noted over each [`PERIOD`].
pub struct Persistent {
    least: Option<Duration>,
    since: Instant,
}

/// The period of [`Persistent`]: the monitor's sample.
pub const PERIOD: Duration = Duration::from_millis(250);

impl Persistent {
    pub fn new(now: Instant) -> Self {
        Self {
            least: None,
            since: now,
        }
    }

    /// Notes `lag` at `now`; returns the least of the period that `now`
    /// ends, if it ends one.
    pub fn note(&mut self, lag: Duration, now: Instant) -> Option<Duration> {
        let least = self.least.map_or(lag, |least| least.min(lag));
        if now.duration_since(self.since) < PERIOD {
            self.least = Some(least);
            return None;
        }
        self.least = None;
        self.since = now;
        Some(least)
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_reports_its_least_lag() {
        let start = Instant::now();
        let mut lag = Persistent::new(start);
        let ms = Duration::from_millis;
        assert_eq!(lag.note(ms(90), start), None);
        assert_eq!(lag.note(ms(2), start + ms(100)), None);
        assert_eq!(lag.note(ms(95), start + ms(200)), None);
        // The period ends: it once caught up.
        assert_eq!(lag.note(ms(80), start + PERIOD), Some(ms(2)));
        // The next never does.
        assert_eq!(lag.note(ms(120), start + PERIOD + ms(100)), None);
        assert_eq!(lag.note(ms(150), start + PERIOD * 2), Some(ms(120)));
    }
}
