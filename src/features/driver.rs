//! Runs the features of one live session in one task: follows the
//! stream's processing options (so `UpdateProcessing` applies in place,
//! starting, retuning and ending each feature), holds a subscription to
//! the session's access units only while some feature is on, hands every
//! unit to each feature that is on, and when the session ends lets them
//! take the units still buffered and finish their last piece of work.
//!
//! One task for all of a session's features means one wake-up per access
//! unit, not one per feature: per stream, that is the cost that counts.
//! A feature's own work per unit is small; what is slow (decoding,
//! encoding, files) runs as jobs elsewhere.

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

/// One feature of a session, whatever its type: started, retuned and
/// ended as the options say.
pub trait Slot: Send {
    /// Follows `processing`; returns whether the feature is on.
    fn follow(&mut self, processing: &Processing) -> bool;
    fn on_unit(&mut self, unit: &AccessUnit);
    fn on_gap(&mut self, skipped: u64);
    /// Ends the feature if it is on.
    fn end(&mut self);
}

/// A [`Slot`] for a feature made by `start` when it is turned on.
pub struct FeatureSlot<F: Feature, S> {
    start: S,
    running: Option<(F, F::Settings)>,
}

impl<F: Feature, S: Fn(F::Settings) -> F + Send + 'static> FeatureSlot<F, S> {
    pub fn boxed(start: S) -> Box<dyn Slot> {
        Box::new(Self {
            start,
            running: None,
        })
    }
}

impl<F: Feature, S: Fn(F::Settings) -> F + Send + 'static> Slot for FeatureSlot<F, S> {
    fn follow(&mut self, processing: &Processing) -> bool {
        let wanted = F::settings(processing);
        self.running = match (wanted, self.running.take()) {
            (None, Some((feature, _))) => {
                feature.end();
                None
            }
            (None, None) => None,
            (Some(settings), None) => Some(((self.start)(settings), settings)),
            (Some(settings), Some((mut feature, old))) => {
                if settings != old {
                    feature.retune(settings);
                }
                Some((feature, settings))
            }
        };
        self.running.is_some()
    }

    fn on_unit(&mut self, unit: &AccessUnit) {
        if let Some((feature, _)) = &mut self.running {
            feature.on_unit(unit.clone());
        }
    }

    fn on_gap(&mut self, skipped: u64) {
        if let Some((feature, _)) = &mut self.running {
            feature.on_gap(skipped);
        }
    }

    fn end(&mut self) {
        if let Some((feature, _)) = self.running.take() {
            feature.end();
        }
    }
}

/// The subscription of a session whose features are on when it starts:
/// taken at once, before the session's first unit can be sent, so the
/// features see the session from its start whenever their task runs.
pub fn first_subscription(
    stream: &LiveStream,
    units: &broadcast::Sender<AccessUnit>,
    slots: &mut [Box<dyn Slot>],
) -> Option<broadcast::Receiver<AccessUnit>> {
    follow(slots, &stream.processing().borrow()).then(|| units.subscribe())
}

/// Every slot follows `processing`; whether any feature is on.
fn follow(slots: &mut [Box<dyn Slot>], processing: &Processing) -> bool {
    slots
        .iter_mut()
        .fold(false, |on, slot| slot.follow(processing) | on)
}

/// The next unit of `rx`, or never without a subscription.
async fn next(rx: &mut Option<broadcast::Receiver<AccessUnit>>) -> Result<AccessUnit, RecvError> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Hands `unit` to every feature; a keyframe's lag since it was received
/// goes to the ingest lag histogram.
fn on_unit(slots: &mut [Box<dyn Slot>], unit: &AccessUnit) {
    if unit.keyframe {
        let lag_ms = crate::media::now_millis() - unit.received_ms;
        crate::metrics::get()
            .ingest_lag
            .observe(lag_ms.max(0) as f64 / 1000.0);
    }
    slots.iter_mut().for_each(|s| s.on_unit(unit));
}

/// Hands every feature the units queued in `rx` now.
fn take_queued(rx: &mut Option<broadcast::Receiver<AccessUnit>>, slots: &mut [Box<dyn Slot>]) {
    let Some(receiver) = rx.as_mut() else {
        return;
    };
    loop {
        match receiver.try_recv() {
            Ok(unit) => on_unit(slots, &unit),
            Err(TryRecvError::Lagged(n)) => slots.iter_mut().for_each(|s| s.on_gap(n)),
            Err(_) => return,
        }
    }
}

/// Drives a session's features (already following the options they were
/// started with, see [`first_subscription`]) until the session ends.
pub async fn drive(
    stream: Arc<LiveStream>,
    units: broadcast::Sender<AccessUnit>,
    mut rx: Option<broadcast::Receiver<AccessUnit>>,
    ended: CancellationToken,
    mut slots: Vec<Box<dyn Slot>>,
) {
    let mut options = stream.processing();
    options.borrow_and_update();
    loop {
        tokio::select! {
            biased;
            unit = next(&mut rx) => match unit {
                Ok(unit) => {
                    on_unit(&mut slots, &unit);
                    // The units sent with it, without going back to the
                    // select (a wake-up brings a delivery's several units).
                    take_queued(&mut rx, &mut slots);
                }
                Err(RecvError::Lagged(n)) => slots.iter_mut().for_each(|s| s.on_gap(n)),
                Err(RecvError::Closed) => break,
            },
            changed = options.changed() => {
                if changed.is_err() {
                    break;
                }
                let processing = options.borrow_and_update().clone();
                let on = follow(&mut slots, &processing);
                match (on, rx.is_some()) {
                    // Turned on: the units from now on.
                    (true, false) => rx = Some(units.subscribe()),
                    // All off: no subscription holds units back.
                    (false, true) => rx = None,
                    _ => {}
                }
            }
            _ = ended.cancelled() => {
                // All the session's units were sent before it ended.
                take_queued(&mut rx, &mut slots);
                break;
            }
        }
    }
    slots.iter_mut().for_each(|s| s.end());
}
