//! Runs the node's [`Pressure`] on a thread of its own (it must act when
//! the async runtime is the part that is behind): every [`SAMPLE`] it
//! takes the signals, sets whether new sessions are refused, lets the
//! newest session go when told, and says so in the log and the metrics.
//! Also the runtime's probe, a task that measures how late it is woken.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::pressure::Pressure;
use super::{Headroom, Persistent, Signals, PERIOD};
use crate::metrics::{self, SourceLabel};

/// How often the monitor samples.
pub const SAMPLE: Duration = PERIOD;
/// How often the runtime's probe asks to be woken.
const PROBE_EVERY: Duration = Duration::from_millis(50);

/// Starts the monitor's thread. `shed` lets the newest session go for
/// the reason given and returns what it was (`None`: there was none).
pub fn start(
    headroom: Arc<Headroom>,
    shed: impl Fn(&str) -> Option<String> + Send + 'static,
    shutdown: CancellationToken,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("liveproc-headroom".into())
        .spawn(move || run(&headroom, &shed, &shutdown))
}

fn run(headroom: &Headroom, shed: &dyn Fn(&str) -> Option<String>, shutdown: &CancellationToken) {
    let mut pressure = Pressure::default();
    let mut refusing = false;
    while !shutdown.is_cancelled() {
        std::thread::sleep(SAMPLE);
        let signals = headroom.take();
        report(&signals);
        let verdict = pressure.observe(Instant::now(), signals);
        match (&verdict.refuse, refusing) {
            (Some(reason), false) => {
                tracing::warn!(%reason, "node overloaded: refusing new sessions");
            }
            (None, true) => tracing::info!("node keeps up again: taking new sessions"),
            _ => {}
        }
        refusing = verdict.refuse.is_some();
        metrics::get().admission_refusing.set(i64::from(refusing));
        headroom.set_refusing(verdict.refuse);
        if let Some(reason) = verdict.shed {
            if let Some(stream) = shed(&reason) {
                metrics::get().sessions_shed.inc();
                tracing::warn!(%stream, %reason, "node overloaded: ended its newest session");
            }
        }
    }
}

fn report(signals: &Signals) {
    let m = metrics::get();
    for (source, lag) in [
        ("srt", signals.srt_lag),
        ("srt_sessions", signals.sessions_lag),
        ("runtime", signals.runtime_lag),
    ] {
        m.headroom_lag
            .get_or_create(&SourceLabel { source })
            .set(lag.as_secs_f64());
    }
}

/// Measures, until `shutdown`, how late the runtime wakes a task that
/// asked to be woken at a known time.
pub async fn probe_runtime(headroom: Arc<Headroom>, shutdown: CancellationToken) {
    let mut due = tokio::time::Instant::now();
    let mut lag = Persistent::new(Instant::now());
    loop {
        due += PROBE_EVERY;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep_until(due) => {}
        }
        let now = tokio::time::Instant::now();
        if let Some(least) = lag.note(now.saturating_duration_since(due), now.into_std()) {
            headroom.note_runtime_lag(least);
        }
        // A late wake-up is counted once, not again at every tick after.
        due = due.max(now);
    }
}
