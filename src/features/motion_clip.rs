//! Motion clips: every `interval_seconds` of stream time, the next
//! `duration_seconds` from a keyframe (the first at or after each
//! boundary), made into a clip of the chosen format. Units are collected
//! only during the clip window (cheap clones of shared bytes), and only
//! the preview formats decode. A window cut short by the end of the session
//! still becomes a (shorter) clip when it holds at least one second.

use std::sync::Arc;
use std::time::Duration;

use super::driver::Feature;
use super::periodic::Periodic;
use super::{clip, FeatureEngine, JobLane, StreamOutputs};
use crate::media::AccessUnit;
use crate::options::{MotionClip as Settings, Processing};
use crate::proto::v1 as pb;
use crate::proto::{timestamp_from_millis, to_duration};
use crate::streams::LiveStream;
use crate::webhooks::{event_types, events};

/// Shortest clip worth sending when a session ends mid-window.
const MIN_PARTIAL_CLIP: Duration = Duration::from_secs(1);

/// A clip being collected.
struct Window {
    start: Duration,
    end: Duration,
    /// PTS just past the last video frame collected.
    reached: Duration,
    units: Vec<AccessUnit>,
    settings: Settings,
}

pub struct MotionClips {
    engine: Arc<FeatureEngine>,
    stream: Arc<LiveStream>,
    outputs: Arc<StreamOutputs>,
    settings: Settings,
    periodic: Periodic,
    window: Option<Window>,
}

impl MotionClips {
    pub fn new(
        engine: Arc<FeatureEngine>,
        stream: Arc<LiveStream>,
        outputs: Arc<StreamOutputs>,
        settings: Settings,
    ) -> Self {
        Self {
            engine,
            stream,
            outputs,
            periodic: Periodic::new(settings.interval_seconds),
            settings,
            window: None,
        }
    }

    /// Makes the clip of a collected window (on the bulk lane) and
    /// publishes it.
    fn emit(&mut self, window: Window) {
        let Window {
            start,
            end,
            units,
            settings,
            ..
        } = window;
        let started_ms = units.first().map(|u| u.received_ms).unwrap_or_default();
        let (engine, stream, outputs) = (
            Arc::clone(&self.engine),
            Arc::clone(&self.stream),
            Arc::clone(&self.outputs),
        );
        self.periodic.run(
            &self.engine,
            JobLane::Bulk,
            &self.stream,
            &self.outputs,
            |o| &o.motion_clips,
            "motion clip",
            move || clip::build(&units, settings.format, settings.width),
            move |made| async move {
                let clip = outputs.motion_clips.publish(|sequence| pb::MotionClip {
                    stream_id: stream.stream_ref.stream_id.clone(),
                    sequence,
                    start_pts: Some(to_duration(start)),
                    duration: Some(to_duration(end - start)),
                    format: settings.format.to_proto() as i32,
                    width: made.width,
                    height: made.height,
                    data: made.data,
                    start_time: Some(timestamp_from_millis(started_ms)),
                });
                tracing::debug!(stream = %stream.stream_ref, sequence = clip.sequence, bytes = clip.data.len(), "motion clip");
                let organization_id = &stream.stream_ref.organization_id;
                engine.events().emit(organization_id, event_types::MOTION_CLIP_CREATED, || {
                    events::motion_clip_created(organization_id, &clip)
                });
            },
        );
    }
}

impl Feature for MotionClips {
    type Settings = Settings;

    fn settings(processing: &Processing) -> Option<Settings> {
        processing.motion_clip
    }

    fn retune(&mut self, settings: Settings) {
        self.periodic.retune(settings.interval_seconds);
        self.settings = settings;
    }

    fn on_unit(&mut self, unit: AccessUnit) {
        let Some(pts) = unit.pts else { return };
        if let Some(window) = &mut self.window {
            if unit.codec.is_video() && pts >= window.end {
                let done = self.window.take().expect("window");
                self.emit(done);
            } else {
                if pts >= window.start {
                    if unit.codec.is_video() {
                        window.reached =
                            window.reached.max(pts + unit.duration.unwrap_or_default());
                    }
                    window.units.push(unit);
                }
                return;
            }
        }
        if unit.codec.is_video() && unit.keyframe && self.periodic.take(pts) {
            self.window = Some(Window {
                start: pts,
                end: pts + Duration::from_secs(self.settings.duration_seconds.into()),
                reached: pts + unit.duration.unwrap_or_default(),
                units: vec![unit],
                settings: self.settings,
            });
        }
    }

    fn on_gap(&mut self, skipped: u64) {
        // The window has a hole: drop it; the next boundary starts anew.
        tracing::warn!(stream = %self.stream.stream_ref, skipped, "motion clips fell behind");
        self.window = None;
    }

    fn end(mut self) {
        if let Some(mut window) = self.window.take() {
            if window.reached - window.start >= MIN_PARTIAL_CLIP {
                window.end = window.reached;
                self.emit(window);
            }
        }
    }
}
