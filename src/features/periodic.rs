//! What the periodic features (thumbnails, motion clips) share: a cadence
//! of stream time ([`Cadence`]), at most one job in flight per stream (a
//! keyframe that comes due while the last one is still being made is
//! passed over, and a later one will do), and the job run on its lane
//! with a failure reported the same way: logged, counted as a gap in the
//! feature's feed, and told to the stream's watchers.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::cadence::Cadence;
use super::feed::Feed;
use super::{FeatureEngine, JobLane, StreamOutputs};
use crate::media::MediaResult;
use crate::streams::LiveStream;

pub struct Periodic {
    cadence: Cadence,
    interval: Duration,
    /// A job is being made: later keyframes wait for it.
    busy: Arc<AtomicBool>,
}

impl Periodic {
    pub fn new(interval_seconds: u32) -> Self {
        Self {
            cadence: Cadence::default(),
            interval: Duration::from_secs(interval_seconds.into()),
            busy: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Follows a new interval (from the last keyframe taken).
    pub fn retune(&mut self, interval_seconds: u32) {
        let interval = Duration::from_secs(interval_seconds.into());
        if interval != self.interval {
            self.interval = interval;
            self.cadence.retime(interval);
        }
    }

    /// Whether a keyframe at `pts` starts the next one (it is then taken):
    /// due, and no job in flight.
    pub fn take(&mut self, pts: Duration) -> bool {
        if !self.cadence.due(pts) || self.busy.load(Ordering::SeqCst) {
            return false;
        }
        self.cadence.taken(pts, self.interval);
        true
    }

    /// Runs `job` on `lane`; its result goes to `publish`, a failure to
    /// the stream's feed of `what` (`feed`) and its watchers. No other
    /// job of this feature starts until it is done.
    #[allow(clippy::too_many_arguments)]
    pub fn run<M, T, Fut>(
        &self,
        engine: &Arc<FeatureEngine>,
        lane: JobLane,
        stream: &Arc<LiveStream>,
        outputs: &Arc<StreamOutputs>,
        feed: fn(&StreamOutputs) -> &Feed<M>,
        what: &'static str,
        job: impl FnOnce() -> MediaResult<T> + Send + 'static,
        publish: impl FnOnce(T) -> Fut + Send + 'static,
    ) where
        M: Clone + Send + 'static,
        T: Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        self.busy.store(true, Ordering::SeqCst);
        let (engine, stream, outputs, busy) = (
            Arc::clone(engine),
            Arc::clone(stream),
            Arc::clone(outputs),
            Arc::clone(&self.busy),
        );
        tokio::spawn(async move {
            let result = engine.run_job(lane, job).await;
            busy.store(false, Ordering::SeqCst);
            match result {
                Ok(made) => publish(made).await,
                Err(e) => {
                    tracing::warn!(stream = %stream.stream_ref, error = %e, "{what} failed");
                    feed(&outputs).skip();
                    stream.report_feature_error(format!("{what} failed: {e}"));
                }
            }
        });
    }
}
