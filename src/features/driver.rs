//! Runs one feature for one live session: follows the stream's processing
//! options (so `UpdateProcessing` applies in place), holds a subscription to
//! the session's access units only while the feature is on, and when the
//! session ends lets the feature take the units still buffered and finish
//! its last piece of work.

use std::sync::Arc;

use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio_util::sync::CancellationToken;

use crate::media::AccessUnit;
use crate::options::Processing;
use crate::streams::LiveStream;

/// A feature driven by [`drive`].
pub trait Feature: Send + 'static {
    type Settings: Copy + PartialEq + Send + Sync + 'static;

    /// The feature's settings in the stream's options, `None` when off.
    fn settings(processing: &Processing) -> Option<Self::Settings>;
    /// The settings changed while on.
    fn retune(&mut self, settings: Self::Settings);
    /// One access unit of the session.
    fn on_unit(&mut self, unit: AccessUnit);
    /// The subscription lost `skipped` units.
    fn on_gap(&mut self, skipped: u64);
    /// The session ended (or the feature was turned off).
    fn end(self);
}

/// The subscription a feature that is on when its session starts reads
/// from: taken at once, before the session's first unit can be sent, so
/// the feature sees the session from its start whenever its task runs.
pub fn first_subscription<F: Feature>(
    stream: &LiveStream,
    units: &broadcast::Sender<AccessUnit>,
) -> Option<broadcast::Receiver<AccessUnit>> {
    F::settings(&stream.processing().borrow()).map(|_| units.subscribe())
}

/// Drives a feature made by `start` until the session ends; `first` is
/// its [`first_subscription`].
pub async fn drive<F: Feature>(
    stream: Arc<LiveStream>,
    units: broadcast::Sender<AccessUnit>,
    mut first: Option<broadcast::Receiver<AccessUnit>>,
    ended: CancellationToken,
    start: impl Fn(F::Settings) -> F,
) {
    let mut options = stream.processing();
    loop {
        let settings = F::settings(&options.borrow_and_update());
        let Some(mut settings) = settings else {
            first = None;
            // Off: no subscription; wait to be turned on.
            tokio::select! {
                changed = options.changed() => if changed.is_err() { return },
                _ = ended.cancelled() => return,
            }
            continue;
        };
        let mut rx = first.take().unwrap_or_else(|| units.subscribe());
        let mut feature = start(settings);
        loop {
            tokio::select! {
                biased;
                unit = rx.recv() => match unit {
                    Ok(unit) => feature.on_unit(unit),
                    Err(RecvError::Lagged(n)) => feature.on_gap(n),
                    Err(RecvError::Closed) => {
                        feature.end();
                        return;
                    }
                },
                changed = options.changed() => {
                    if changed.is_err() {
                        feature.end();
                        return;
                    }
                    match F::settings(&options.borrow_and_update()) {
                        Some(new) if new != settings => {
                            feature.retune(new);
                            settings = new;
                        }
                        Some(_) => {}
                        None => {
                            feature.end();
                            break;
                        }
                    }
                }
                _ = ended.cancelled() => {
                    // All the session's units were sent before it ended.
                    loop {
                        match rx.try_recv() {
                            Ok(unit) => feature.on_unit(unit),
                            Err(TryRecvError::Lagged(n)) => feature.on_gap(n),
                            Err(_) => break,
                        }
                    }
                    feature.end();
                    return;
                }
            }
        }
    }
}
