//! Replay: an in-memory ring buffer of the newest GOPs of each stream
//! ([`buffer`]), filled by a feature that groups the session's access
//! units into GOPs; segments served to rewinding subscribers as MPEG-TS
//! ([`segment`]); low-latency HLS parts of the newest GOPs, handed over
//! as the GOP is gathered ([`parts`]); and replay clips cut from it on
//! keyframes and remuxed to MP4 ([`clips`]).

pub(crate) mod buffer;
pub(crate) mod clips;
pub(crate) mod parts;
pub(crate) mod segment;
mod spill;
pub(crate) mod spill_store;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::task::TaskTracker;

use crate::features::driver::Feature;
use crate::features::handover::{late_audio, EarlyAudio, LateAudio};
use crate::features::video_required::VideoRequired;
use crate::features::StreamOutputs;
use crate::media::now_millis;
use crate::media::AccessUnit;
use crate::options::{Processing, Replay as Settings, Span};
use crate::streams::LiveStream;
use spill_store::SessionSpill;

/// Audio frames kept before the first keyframe (about 2.7 s at 48 kHz):
/// those that play from the keyframe on belong to the first GOP.
const AUDIO_PREROLL: usize = 128;

/// A closed GOP waiting for its last audio.
struct Closing {
    units: Vec<AccessUnit>,
    end_pts: Duration,
    end_ms: i64,
    /// Where its last part starts in `units`, and how long it is.
    last_part: (usize, Duration),
}

/// The window a setting asks for (`None`: the whole session).
pub fn window(settings: &Settings) -> Option<Duration> {
    match settings.buffer {
        Span::Seconds(s) => Some(Duration::from_secs(s.into())),
        Span::EntireStream => None,
    }
}

/// Fills the stream's replay buffer with whole GOPs, and spills old ones
/// to disk with `entire_stream`.
pub struct ReplayFeature {
    stream: Arc<LiveStream>,
    outputs: Arc<StreamOutputs>,
    /// The GOP being collected, from its keyframe.
    current: Vec<AccessUnit>,
    /// The GOP before it, closed by the current keyframe but still taking
    /// the audio stamped before that keyframe (tracks are interleaved a
    /// little apart): published once audio passes it.
    closing: Option<Closing>,
    /// Where the open part starts in `current`, and its first video
    /// frame's decode time.
    part: (usize, Duration),
    /// Parts of the open GOP cut while the GOP before was still closing.
    waiting_parts: Vec<(Vec<AccessUnit>, Duration)>,
    /// Audio ahead of the newest video ([`crate::features::handover`]).
    early: EarlyAudio,
    video_required: VideoRequired,
    /// Where this session's spilled GOPs go.
    spill: SessionSpill,
    spills: TaskTracker,
}

impl ReplayFeature {
    pub fn new(
        stream: Arc<LiveStream>,
        outputs: Arc<StreamOutputs>,
        settings: Settings,
        spill: SessionSpill,
        spills: TaskTracker,
    ) -> Self {
        // A new session (or replay just turned on): a new timeline.
        outputs.replay.clear();
        outputs.parts.clear();
        outputs.replay.set_window(window(&settings));
        Self {
            stream,
            outputs,
            current: Vec::new(),
            closing: None,
            part: (0, Duration::ZERO),
            waiting_parts: Vec::new(),
            early: EarlyAudio::default(),
            video_required: VideoRequired::new("replay"),
            spill,
            spills,
        }
    }

    /// Closes the current GOP at `end_pts`: published now when it has no
    /// audio, else once the audio passes `end_pts`.
    /// `end_dts` is where its last part ends (the next keyframe's decode
    /// time).
    fn close_gop(&mut self, end_pts: Duration, end_dts: Duration, end_ms: i64) {
        self.publish_closing();
        let units = std::mem::take(&mut self.current);
        let (from, start) = std::mem::replace(&mut self.part, (0, Duration::ZERO));
        let last_part = (from, end_dts.saturating_sub(start));
        if units.first().is_none_or(|u| !u.codec.is_video()) {
            return;
        }
        let closing = Closing {
            units,
            end_pts,
            end_ms,
            last_part,
        };
        if closing.units.iter().any(|u| !u.codec.is_video()) {
            self.closing = Some(closing);
        } else {
            self.publish(closing);
        }
    }

    /// Hands over the open part when a video frame decoded at `dts`
    /// comes [`parts::PART_MIN`] or more after its start: the units from
    /// the part's start up to that frame.
    fn cut_part(&mut self, dts: Duration) {
        let (from, start) = self.part;
        if dts.saturating_sub(start) < parts::PART_MIN {
            return;
        }
        let part = (self.current[from..].to_vec(), dts.saturating_sub(start));
        self.part = (self.current.len(), dts);
        // The GOP before goes first, with its last part: until its late
        // audio is in, this GOP's parts wait.
        self.waiting_parts.push(part);
        if self.closing.is_none() {
            self.hand_over_parts();
        }
    }

    /// Hands the open GOP's waiting parts to the part store.
    fn hand_over_parts(&mut self) {
        let sequence = self.outputs.replay.next_sequence();
        for (units, duration) in self.waiting_parts.drain(..) {
            self.outputs.parts.push(sequence, units, duration, false);
        }
    }

    fn publish_closing(&mut self) {
        if let Some(closing) = self.closing.take() {
            self.publish(closing);
        }
    }

    /// Gives a late audio unit to the closing GOP if it plays before that
    /// GOP's end ([`crate::features::handover`]); publishes the closing
    /// GOP once audio (or video, if the audio stopped) is past it. Returns
    /// whether the unit was taken.
    fn finish_closing(&mut self, unit: &AccessUnit, pts: Duration) -> bool {
        let Some(closing) = &mut self.closing else {
            return false;
        };
        match late_audio(closing.end_pts, unit, pts) {
            LateAudio::Take => {
                closing.units.push(unit.clone());
                true
            }
            LateAudio::Close => {
                self.publish_closing();
                false
            }
            LateAudio::Pass => false,
        }
    }

    fn publish(&mut self, closing: Closing) {
        let Closing {
            units,
            end_pts,
            end_ms,
            last_part: (from, duration),
        } = closing;
        // The GOP's last part, under the sequence the buffer gives it next.
        let sequence = self.outputs.replay.next_sequence();
        let last = units.get(from..).unwrap_or_default().to_vec();
        self.outputs.parts.push(sequence, last, duration, true);
        let (_, spill) = self.outputs.replay.push(units, end_pts, end_ms);
        self.hand_over_parts();
        if spill.is_empty() {
            return;
        }
        let (stream, outputs, place) = (
            Arc::clone(&self.stream),
            Arc::clone(&self.outputs),
            self.spill.clone(),
        );
        self.spills.spawn_blocking(move || {
            let mut failed = false;
            for gop in spill {
                if failed {
                    // The disk just failed: the rest of this batch is not tried.
                    outputs.replay.spill_failed(&gop);
                    continue;
                }
                let written = gop
                    .units()
                    .and_then(|units| place.write(gop.sequence, &units));
                match written {
                    Ok(at) => outputs.replay.spilled(&gop, at),
                    Err(e) => {
                        failed = true;
                        tracing::error!(stream = %stream.stream_ref, error = %e, "replay: cannot spill a GOP; the oldest media is evicted instead");
                        outputs.replay.spill_failed(&gop);
                        stream.report_feature_error(format!(
                            "replay: cannot write older media to disk ({e}); the buffer keeps only what fits in memory"
                        ));
                    }
                }
            }
        });
    }
}

impl Feature for ReplayFeature {
    type Settings = Settings;

    fn settings(processing: &Processing) -> Option<Settings> {
        processing.replay
    }

    fn retune(&mut self, settings: Settings) {
        self.outputs.replay.set_window(window(&settings));
    }

    fn on_unit(&mut self, unit: AccessUnit) {
        self.video_required.on_unit(&unit, &self.stream);
        let Some(pts) = unit.pts else { return };
        if self.finish_closing(&unit, pts) {
            return;
        }
        if unit.codec.is_video() {
            self.early.video(pts);
            if unit.keyframe {
                // Audio that came before the first keyframe but plays from
                // it on starts the first GOP.
                let prerolled = if self.current.first().is_some_and(|u| !u.codec.is_video()) {
                    std::mem::take(&mut self.current)
                } else {
                    Vec::new()
                };
                // Held audio that plays before this keyframe ends the GOP
                // it closes; the rest starts the new one.
                let before = self.early.take(Some(pts));
                self.current.extend(before);
                let dts = unit.decode_time().unwrap_or(pts);
                self.close_gop(pts, dts, unit.received_ms);
                self.part = (0, dts);
                self.current.push(unit);
                self.current.extend(
                    prerolled
                        .into_iter()
                        .filter(|u| u.pts.is_some_and(|p| p >= pts)),
                );
                self.current.extend(self.early.take(None));
            } else {
                if self.current.first().is_some_and(|u| u.codec.is_video()) {
                    self.cut_part(unit.decode_time().unwrap_or(pts));
                    self.current.push(unit);
                }
                let passed = self.early.take(Some(pts + Duration::from_nanos(1)));
                self.current.extend(passed);
            }
        } else if let Some(unit) = self.early.hold(unit, pts) {
            self.current.push(unit);
            // Before the first keyframe only the newest audio is kept.
            if !self.current[0].codec.is_video() && self.current.len() > AUDIO_PREROLL {
                self.current.remove(0);
            }
        }
    }

    fn on_gap(&mut self, skipped: u64) {
        // The GOP has a hole: drop it rather than serve broken media.
        tracing::warn!(stream = %self.stream.stream_ref, skipped, "replay fell behind; dropping a GOP");
        self.publish_closing();
        self.current.clear();
        self.part = (0, Duration::ZERO);
        self.waiting_parts.clear();
        self.outputs.parts.abandon_open();
        self.early.take(None);
    }

    fn end(mut self) {
        let held = self.early.take(None);
        self.current.extend(held);
        self.publish_closing();
        // The last GOP ends where its last video frame ends.
        let end = self
            .current
            .iter()
            .filter(|u| u.codec.is_video())
            .filter_map(|u| u.pts.map(|p| p + u.duration.unwrap_or_default()))
            .max();
        if let Some(end) = end {
            self.close_gop(end, end, now_millis());
            self.publish_closing();
        }
        self.outputs.replay.end_session();
    }
}
